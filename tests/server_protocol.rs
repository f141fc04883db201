//! The wire protocol against the real binary: pipelining, inline commands, protocol errors (the cases of
//! Redis's `tests/unit/protocol.tcl`), RESP3 through HELLO, and transactions (MULTI/EXEC/DISCARD/WATCH).
mod common;

use common::{start, wait_until, Server};

// --- Pipelining ---

#[test]
fn pipeline_of_1000_commands_with_the_redis_crate_replies_in_order() {
    let (_dir, server) = start("pipeline-crate");
    let mut connection = server.connection();
    let mut pipeline = redis::pipe();
    for index in 0..1000 {
        if index % 2 == 0 {
            pipeline.cmd("INCR").arg("counter");
        } else {
            pipeline.cmd("SET").arg(format!("key:{index}")).arg(index);
        }
    }
    let replies: Vec<redis::Value> = pipeline.query(&mut connection).expect("pipeline");
    assert_eq!(replies.len(), 1000);
    for (index, reply) in replies.iter().enumerate() {
        if index % 2 == 0 {
            assert_eq!(
                *reply,
                redis::Value::Int(index as i64 / 2 + 1),
                "reply {index}"
            );
        } else {
            assert_eq!(*reply, redis::Value::Okay, "reply {index}");
        }
    }
    let mut pipeline = redis::pipe();
    for index in (1..1000).step_by(2) {
        pipeline.cmd("GET").arg(format!("key:{index}"));
    }
    let values: Vec<i64> = pipeline.query(&mut connection).expect("pipeline of GETs");
    let expected: Vec<i64> = (1..1000).step_by(2).collect();
    assert_eq!(values, expected);
}

#[test]
fn pipeline_of_1000_raw_commands_in_one_write_replies_in_order() {
    let (_dir, server) = start("pipeline-raw");
    let mut client = server.raw();
    let mut request = Vec::new();
    for index in 0..1000 {
        let text = index.to_string();
        request.extend_from_slice(
            format!("*2\r\n$4\r\nECHO\r\n${}\r\n{text}\r\n", text.len()).as_bytes(),
        );
    }
    client.send(&request);
    for index in 0..1000 {
        let text = index.to_string();
        assert_eq!(
            client.read_reply_string(),
            format!("${}\r\n{text}\r\n", text.len()),
            "reply {index}"
        );
    }
    // Mixed inline and multibulk in one write, too.
    client.send(b"PING\r\n*1\r\n$4\r\nPING\r\nECHO hi\r\n");
    assert_eq!(client.read_reply_string(), "+PONG\r\n");
    assert_eq!(client.read_reply_string(), "+PONG\r\n");
    assert_eq!(client.read_reply_string(), "$2\r\nhi\r\n");
}

#[test]
fn a_pipeline_longer_than_one_iteration_budget_and_a_large_value() {
    let (_dir, server) = start("pipeline-long");
    let mut client = server.raw();
    let request = b"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n".repeat(10_000);
    client.send(&request);
    for index in 1..=10_000 {
        assert_eq!(client.read_reply_string(), format!(":{index}\r\n"));
    }
    // A 5 MB value arrives over many reads and many loop iterations.
    let mut connection = server.connection();
    let value: Vec<u8> = (0..5 * 1024 * 1024)
        .map(|index| (index % 251) as u8)
        .collect();
    let _: () = redis::cmd("SET")
        .arg("large")
        .arg(&value)
        .query(&mut connection)
        .unwrap();
    let back: Vec<u8> = redis::cmd("GET")
        .arg("large")
        .query(&mut connection)
        .unwrap();
    assert!(back == value, "the 5 MB value came back different");
    assert_eq!(client.call(&["STRLEN", "large"]), ":5242880\r\n");
}

#[test]
fn a_client_that_half_closes_still_gets_every_reply() {
    let (_dir, server) = start("half-close");
    let mut client = server.raw();
    client.send(b"SET a 1\r\nINCR a\r\nGET a\r\n");
    client
        .stream
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    assert_eq!(client.read_reply_string(), "+OK\r\n");
    assert_eq!(client.read_reply_string(), ":2\r\n");
    assert_eq!(client.read_reply_string(), "$1\r\n2\r\n");
    assert!(client.is_closed_by_server());
    let mut other = server.raw();
    assert_eq!(other.call(&["GET", "a"]), "$1\r\n2\r\n");
}

// --- Inline commands ---

#[test]
fn inline_commands_are_split_with_quotes() {
    let (_dir, server) = start("inline");
    let mut client = server.raw();
    client.send(b"PING\r\n");
    assert_eq!(client.read_reply_string(), "+PONG\r\n");
    client.send(b"SET a \"b c\"\r\n");
    assert_eq!(client.read_reply_string(), "+OK\r\n");
    assert_eq!(client.call(&["GET", "a"]), "$3\r\nb c\r\n");
    client.send(b"SET q 'it''s'\r\n");
    assert!(client
        .read_reply_string()
        .starts_with("-ERR Protocol error: unbalanced quotes"));
    assert!(client.is_closed_by_server());
    let mut client = server.raw();
    // A bare LF ends an inline command too, and blank lines are ignored.
    client.send(b"\r\n\nSET e \"x\\ty\"\nGET e\r\n");
    assert_eq!(client.read_reply_string(), "+OK\r\n");
    assert_eq!(client.read_reply_string(), "$3\r\nx\ty\r\n");
}

// --- Protocol errors ---

/// Sends `request` on a fresh connection and checks the reply is `-ERR Protocol error: <expected>...` and
/// that the server closes this connection, while `bystander` (opened before) keeps being served.
fn assert_protocol_error(server: &Server, request: &[u8], expected: &str) {
    let mut bystander = server.raw();
    assert_eq!(bystander.call(&["PING"]), "+PONG\r\n");
    let mut client = server.raw();
    client.send(request);
    let reply = client.read_reply_string();
    assert!(
        reply.starts_with(&format!("-ERR Protocol error: {expected}")),
        "request {:?}: got {reply:?}",
        String::from_utf8_lossy(&request[..request.len().min(64)])
    );
    assert!(
        client.is_closed_by_server(),
        "connection stays open after {reply:?}"
    );
    assert_eq!(bystander.call(&["SET", "still", "served"]), "+OK\r\n");
    assert_eq!(bystander.call(&["GET", "still"]), "$6\r\nserved\r\n");
}

#[test]
fn protocol_errors_reply_and_close_only_that_connection() {
    let (_dir, server) = start("protocol-errors");
    assert_protocol_error(&server, b"*3000000000\r\n", "invalid multibulk length");
    assert_protocol_error(
        &server,
        b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
        "expected '$', got 'f'",
    );
    assert_protocol_error(&server, b"*1\r\nfoo\r\n", "expected '$', got 'f'");
    assert_protocol_error(
        &server,
        b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n",
        "invalid bulk length",
    );
    assert_protocol_error(
        &server,
        b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n",
        "invalid bulk length",
    );
    assert_protocol_error(
        &server,
        b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n",
        "invalid bulk length",
    );
    assert_protocol_error(&server, &vec![b'a'; 70 * 1024], "too big inline request");
    assert_protocol_error(&server, &vec![b'1'; 70 * 1024], "too big inline request");
    let mut header = b"*".to_vec();
    header.extend(vec![b'1'; 70 * 1024]);
    assert_protocol_error(&server, &header, "too big mbulk count string");
    let mut header = b"*1\r\n$".to_vec();
    header.extend(vec![b'1'; 70 * 1024]);
    assert_protocol_error(&server, &header, "too big bulk count string");
    assert_protocol_error(
        &server,
        b"set \"\"\"test-key\"\"\" test-value\r\nping\r\n",
        "unbalanced quotes",
    );
    assert_protocol_error(&server, b"SET a \"b\r\n", "unbalanced quotes");
    // Requests before the bad one in the same write are answered first.
    let mut client = server.raw();
    client.send(b"*1\r\n$4\r\nPING\r\n*1\r\nfoo\r\nPING\r\n");
    assert_eq!(client.read_reply_string(), "+PONG\r\n");
    assert_eq!(
        client.read_reply_string(),
        "-ERR Protocol error: expected '$', got 'f'\r\n"
    );
    assert!(client.is_closed_by_server());
    // The server itself is fine afterwards.
    let mut connection = server.connection();
    let reply: String = redis::cmd("PING").query(&mut connection).unwrap();
    assert_eq!(reply, "PONG");
}

/// Redis's "Protocol desync regression test": a client that starts a request badly and then streams bytes
/// without a newline is cut off with a protocol error, not buffered forever.
#[test]
fn a_desynchronised_client_streaming_garbage_is_cut_off() {
    let (_dir, server) = start("desync");
    for start in [&b"\x00"[..], b"*\x00", b"$\x00"] {
        let mut client = server.raw();
        client.send(start);
        let payload = [b'A'; 1024];
        let mut sent = 0usize;
        let cut_off = loop {
            if std::io::Write::write_all(&mut client.stream, &payload).is_err() {
                break true;
            }
            sent += payload.len();
            if sent > 64 * 1024 * 1024 {
                break false;
            }
        };
        assert!(cut_off, "{start:?}: the server kept reading {sent} bytes");
        // The error reply may or may not survive the reset; the connection must be gone either way.
        let mut bystander = server.raw();
        assert_eq!(bystander.call(&["PING"]), "+PONG\r\n");
    }
    let mut client = server.raw();
    client.send(b"*\x00");
    client.send(&[b'A'; 70 * 1024]);
    assert_eq!(
        client.read_reply_string(),
        "-ERR Protocol error: too big mbulk count string\r\n"
    );
    let mut client = server.raw();
    client.send(b"$\x00");
    client.send(&[b'A'; 70 * 1024]);
    assert_eq!(
        client.read_reply_string(),
        "-ERR Protocol error: too big inline request\r\n"
    );
}

#[test]
fn negative_and_zero_multibulk_counts_are_ignored() {
    let (_dir, server) = start("negative-multibulk");
    let mut client = server.raw();
    client.send(b"*-10\r\n");
    client.send(b"*0\r\n");
    client.send(b"*1\r\n$4\r\nPING\r\n");
    assert_eq!(client.read_reply_string(), "+PONG\r\n");
}

#[test]
fn a_request_split_across_many_writes_is_assembled() {
    let (_dir, server) = start("split-request");
    let mut client = server.raw();
    let request = b"*3\r\n$3\r\nSET\r\n$5\r\nsplit\r\n$10\r\n0123456789\r\n";
    for byte in request {
        client.send(&[*byte]);
    }
    assert_eq!(client.read_reply_string(), "+OK\r\n");
    assert_eq!(client.call(&["GET", "split"]), "$10\r\n0123456789\r\n");
}

// --- RESP3 ---

#[test]
fn hello_3_switches_to_resp3_types_and_hello_2_back() {
    let (_dir, server) = start("resp3");
    let mut client = server.raw();
    let id = client.call(&["CLIENT", "ID"]);
    let id = id.trim_start_matches(':').trim_end();
    let reply = client.call(&["HELLO", "3"]);
    assert!(reply.starts_with("%7\r\n"), "HELLO 3 map: {reply:?}");
    for field in [
        "$6\r\nserver\r\n$4\r\ndibs\r\n".to_string(),
        "$7\r\nversion\r\n$".to_string(),
        "$5\r\nproto\r\n:3\r\n".to_string(),
        format!("$2\r\nid\r\n:{id}\r\n"),
        "$4\r\nmode\r\n$10\r\nstandalone\r\n".to_string(),
        "$4\r\nrole\r\n$6\r\nmaster\r\n".to_string(),
    ] {
        assert!(reply.contains(&field), "{field:?} missing from {reply:?}");
    }
    assert_eq!(client.call(&["GET", "missing"]), "_\r\n");
    assert_eq!(
        client.call(&["CONFIG", "GET", "maxclients"]),
        "%1\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n"
    );
    assert_eq!(client.call(&["SADD", "set", "a"]), ":1\r\n");
    assert_eq!(client.call(&["SMEMBERS", "set"]), "~1\r\n$1\r\na\r\n");
    assert_eq!(
        client.call(&["MGET", "set2", "missing"]),
        "*2\r\n_\r\n_\r\n"
    );
    assert_eq!(
        client.call(&["HELLO", "4"]),
        "-NOPROTO unsupported protocol version\r\n"
    );
    // A refused HELLO changes nothing: still RESP3.
    assert_eq!(client.call(&["GET", "missing"]), "_\r\n");
    let reply = client.call(&["HELLO", "2"]);
    assert!(reply.starts_with("*14\r\n"), "HELLO 2 array: {reply:?}");
    assert!(reply.contains("$5\r\nproto\r\n:2\r\n"), "{reply:?}");
    assert_eq!(client.call(&["GET", "missing"]), "$-1\r\n");
    assert_eq!(client.call(&["SMEMBERS", "set"]), "*1\r\n$1\r\na\r\n");
    assert_eq!(
        client.call(&["CONFIG", "GET", "maxclients"]),
        "*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n"
    );
    // HELLO without a version answers in the current protocol.
    assert!(client.call(&["HELLO"]).starts_with("*14\r\n"));
    assert_eq!(
        client.call(&["HELLO", "x"]),
        "-ERR Protocol version is not an integer or out of range\r\n"
    );
}

#[test]
fn resp3_null_array_and_transactions() {
    let (_dir, server) = start("resp3-exec");
    let mut client = server.raw();
    client.call(&["HELLO", "3"]);
    let mut other = server.raw();
    assert_eq!(client.call(&["WATCH", "k"]), "+OK\r\n");
    assert_eq!(other.call(&["SET", "k", "1"]), "+OK\r\n");
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["GET", "k"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["EXEC"]), "_\r\n");
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["GET", "nothing"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["SMEMBERS", "nothing"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["EXEC"]), "*2\r\n_\r\n~0\r\n");
}

// --- MULTI / EXEC ---

#[test]
fn multi_exec_queues_and_runs_in_order() {
    let (_dir, server) = start("multi");
    let mut client = server.raw();
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["SET", "a", "1"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["INCR", "a"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["GET", "a"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["SADD", "s", "x", "y"]), "+QUEUED\r\n");
    // Nothing ran yet: another client sees no key.
    let mut other = server.raw();
    assert_eq!(other.call(&["EXISTS", "a"]), ":0\r\n");
    assert_eq!(
        client.call(&["EXEC"]),
        "*4\r\n+OK\r\n:2\r\n$1\r\n2\r\n:2\r\n"
    );
    assert_eq!(other.call(&["GET", "a"]), "$1\r\n2\r\n");
    // An empty transaction.
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["EXEC"]), "*0\r\n");
}

#[test]
fn errors_inside_exec_do_not_stop_the_others() {
    let (_dir, server) = start("multi-runtime-error");
    let mut client = server.raw();
    assert_eq!(client.call(&["SET", "a", "x"]), "+OK\r\n");
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["SET", "a", "y"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["INCR", "a"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["SADD", "a", "m"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["GET", "a"]), "+QUEUED\r\n");
    assert_eq!(
        client.call(&["EXEC"]),
        "*4\r\n+OK\r\n-ERR value is not an integer or out of range\r\n\
         -WRONGTYPE Operation against a key holding the wrong kind of value\r\n$1\r\ny\r\n"
    );
}

#[test]
fn a_queue_time_error_aborts_exec() {
    let (_dir, server) = start("multi-execabort");
    let mut client = server.raw();
    assert_eq!(client.call(&["SET", "a", "before"]), "+OK\r\n");
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["SET", "a", "during"]), "+QUEUED\r\n");
    assert_eq!(
        client.call(&["FOO", "a", "b"]),
        "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n"
    );
    assert_eq!(
        client.call(&["EXEC"]),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(client.call(&["GET", "a"]), "$6\r\nbefore\r\n");
    // Wrong arity while queueing aborts too; the transaction is over afterwards.
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["SET", "a", "during"]), "+QUEUED\r\n");
    assert_eq!(
        client.call(&["GET"]),
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(
        client.call(&["EXEC"]),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(client.call(&["GET", "a"]), "$6\r\nbefore\r\n");
    assert_eq!(client.call(&["EXEC"]), "-ERR EXEC without MULTI\r\n");
    // A fresh transaction after an aborted one works.
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["SET", "a", "after"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["EXEC"]), "*1\r\n+OK\r\n");
}

#[test]
fn discard_nested_multi_and_exec_without_multi() {
    let (_dir, server) = start("multi-discard");
    let mut client = server.raw();
    assert_eq!(client.call(&["EXEC"]), "-ERR EXEC without MULTI\r\n");
    assert_eq!(client.call(&["DISCARD"]), "-ERR DISCARD without MULTI\r\n");
    assert_eq!(client.call(&["SET", "a", "1"]), "+OK\r\n");
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["SET", "a", "2"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["DISCARD"]), "+OK\r\n");
    assert_eq!(client.call(&["GET", "a"]), "$1\r\n1\r\n");
    assert_eq!(client.call(&["EXEC"]), "-ERR EXEC without MULTI\r\n");
    // Nested MULTI is refused but does not abort the transaction (as in Redis).
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(
        client.call(&["MULTI"]),
        "-ERR MULTI calls can not be nested\r\n"
    );
    assert_eq!(client.call(&["INCR", "a"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["EXEC"]), "*1\r\n:2\r\n");
}

// --- WATCH ---

#[test]
fn watch_makes_exec_fail_when_another_client_changed_the_key() {
    let (_dir, server) = start("watch");
    let mut client = server.raw();
    let mut other = server.raw();
    assert_eq!(client.call(&["SET", "k", "0"]), "+OK\r\n");
    assert_eq!(client.call(&["WATCH", "k"]), "+OK\r\n");
    assert_eq!(other.call(&["SET", "k", "changed"]), "+OK\r\n");
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["SET", "k", "mine"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["EXEC"]), "*-1\r\n");
    assert_eq!(client.call(&["GET", "k"]), "$7\r\nchanged\r\n");

    // Untouched: EXEC runs.
    assert_eq!(client.call(&["WATCH", "k"]), "+OK\r\n");
    assert_eq!(other.call(&["SET", "unrelated", "1"]), "+OK\r\n");
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["SET", "k", "mine"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["EXEC"]), "*1\r\n+OK\r\n");
    assert_eq!(client.call(&["GET", "k"]), "$4\r\nmine\r\n");

    // EXEC forgets the watch: a later change does not affect the next transaction.
    assert_eq!(other.call(&["SET", "k", "again"]), "+OK\r\n");
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["GET", "k"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["EXEC"]), "*1\r\n$5\r\nagain\r\n");

    // A key that did not exist and then was created counts as modified; so does a deleted one.
    assert_eq!(client.call(&["WATCH", "new"]), "+OK\r\n");
    assert_eq!(other.call(&["SET", "new", "1"]), "+OK\r\n");
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["EXEC"]), "*-1\r\n");
    assert_eq!(client.call(&["WATCH", "new"]), "+OK\r\n");
    assert_eq!(other.call(&["DEL", "new"]), ":1\r\n");
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["EXEC"]), "*-1\r\n");

    // A command that changes nothing (a failed one, or SREM of a missing member) is not a change.
    assert_eq!(other.call(&["SADD", "s", "a"]), ":1\r\n");
    assert_eq!(client.call(&["WATCH", "s"]), "+OK\r\n");
    assert_eq!(other.call(&["SREM", "s", "zzz"]), ":0\r\n");
    assert!(other.call(&["INCR", "s"]).starts_with("-WRONGTYPE"));
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["SCARD", "s"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["EXEC"]), "*1\r\n:1\r\n");
}

#[test]
fn watch_inside_multi_unwatch_and_discard() {
    let (_dir, server) = start("watch-misc");
    let mut client = server.raw();
    let mut other = server.raw();
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(
        client.call(&["WATCH", "k"]),
        "-ERR WATCH inside MULTI is not allowed\r\n"
    );
    assert_eq!(client.call(&["SET", "k", "1"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["EXEC"]), "*1\r\n+OK\r\n");

    assert_eq!(client.call(&["WATCH", "k"]), "+OK\r\n");
    assert_eq!(other.call(&["SET", "k", "2"]), "+OK\r\n");
    assert_eq!(client.call(&["UNWATCH"]), "+OK\r\n");
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["INCR", "k"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["EXEC"]), "*1\r\n:3\r\n");

    // DISCARD forgets the watch too.
    assert_eq!(client.call(&["WATCH", "k"]), "+OK\r\n");
    assert_eq!(other.call(&["SET", "k", "4"]), "+OK\r\n");
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["DISCARD"]), "+OK\r\n");
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["INCR", "k"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["EXEC"]), "*1\r\n:5\r\n");

    // A client's own change also counts (as in Redis).
    assert_eq!(client.call(&["WATCH", "k"]), "+OK\r\n");
    assert_eq!(client.call(&["INCR", "k"]), ":6\r\n");
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["INCR", "k"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["EXEC"]), "*-1\r\n");

    // FLUSHALL changes every watched key that existed.
    assert_eq!(client.call(&["WATCH", "k"]), "+OK\r\n");
    assert_eq!(other.call(&["FLUSHALL"]), "+OK\r\n");
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["EXEC"]), "*-1\r\n");
}

#[test]
fn a_watched_key_that_expires_counts_as_modified() {
    let (_dir, server) = start("watch-expiry");
    let mut client = server.raw();
    let mut other = server.raw();
    assert_eq!(client.call(&["SET", "k", "v", "PX", "100"]), "+OK\r\n");
    assert_eq!(client.call(&["WATCH", "k"]), "+OK\r\n");
    wait_until("k to expire", || other.call(&["EXISTS", "k"]) == ":0\r\n");
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["SET", "k", "new"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["EXEC"]), "*-1\r\n");
    assert_eq!(client.call(&["EXISTS", "k"]), ":0\r\n");

    // The same when nobody looked at the key before EXEC (only the clock moved).
    assert_eq!(client.call(&["SET", "j", "v", "PX", "50"]), "+OK\r\n");
    assert_eq!(client.call(&["WATCH", "j"]), "+OK\r\n");
    let watched_at = std::time::Instant::now();
    wait_until("j's 50 ms to pass", || {
        watched_at.elapsed() > std::time::Duration::from_millis(60)
    });
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["EXEC"]), "*-1\r\n");
}
