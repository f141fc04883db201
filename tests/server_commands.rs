//! Commands against the real binary: expiry (and its survival across a restart), the exact wording of
//! every error, the string, set, key and introspection commands, SHUTDOWN, and real clients (redis-cli,
//! redis-benchmark, redis-py).
mod common;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{start, wait_until, RawClient, Server, TempDir};

/// The integer of a `:<n>\r\n` reply.
fn integer(reply: &str) -> i64 {
    reply
        .strip_prefix(':')
        .and_then(|rest| rest.strip_suffix("\r\n"))
        .unwrap_or_else(|| panic!("not an integer reply: {reply:?}"))
        .parse()
        .unwrap()
}

fn unix_time_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn wait_for(duration: Duration) {
    let from = Instant::now();
    wait_until("time to pass", || from.elapsed() >= duration);
}

// --- Expiry ---

#[test]
fn set_options_nx_xx_get_keepttl() {
    let (_dir, server) = start("set-options");
    let mut client = server.raw();
    assert_eq!(client.call(&["SET", "k", "v", "KEEPTTL"]), "+OK\r\n");
    assert_eq!(client.call(&["SET", "k", "v", "NX"]), "$-1\r\n");
    assert_eq!(client.call(&["SET", "k", "w", "XX", "GET"]), "$1\r\nv\r\n");
    assert_eq!(client.call(&["SET", "n", "v", "XX"]), "$-1\r\n");
    assert_eq!(client.call(&["EXISTS", "n"]), ":0\r\n");
    assert_eq!(client.call(&["SET", "n", "v", "NX", "GET"]), "$-1\r\n");
    assert_eq!(client.call(&["GET", "n"]), "$1\r\nv\r\n");
    assert_eq!(
        client.call(&["SET", "k", "v", "GET", "EX", "100"]),
        "$1\r\nw\r\n"
    );
    assert_eq!(client.call(&["TTL", "k"]), ":100\r\n");
    assert_eq!(client.call(&["SET", "k", "v2", "KEEPTTL"]), "+OK\r\n");
    assert_eq!(client.call(&["TTL", "k"]), ":100\r\n");
    assert_eq!(client.call(&["SET", "k", "v3"]), "+OK\r\n");
    assert_eq!(client.call(&["TTL", "k"]), ":-1\r\n");
    assert_eq!(client.call(&["SET", "k", "v", "PX", "100000"]), "+OK\r\n");
    let pttl = integer(&client.call(&["PTTL", "k"]));
    assert!((99_000..=100_000).contains(&pttl), "PTTL {pttl}");
    let at_seconds = unix_time_ms() / 1000 + 1000;
    assert_eq!(
        client.call(&["SET", "k", "v", "EXAT", &at_seconds.to_string()]),
        "+OK\r\n"
    );
    let ttl = integer(&client.call(&["TTL", "k"]));
    assert!((998..=1000).contains(&ttl), "TTL {ttl}");
    let at_ms = unix_time_ms() + 50_000;
    assert_eq!(
        client.call(&["SET", "k", "v", "PXAT", &at_ms.to_string()]),
        "+OK\r\n"
    );
    let pttl = integer(&client.call(&["PTTL", "k"]));
    assert!((48_000..=50_000).contains(&pttl), "PTTL {pttl}");
    // A time already past: the key is gone at once.
    assert_eq!(client.call(&["SET", "k", "v", "EXAT", "1"]), "+OK\r\n");
    assert_eq!(client.call(&["EXISTS", "k"]), ":0\r\n");
    // Refused combinations and values.
    for (arguments, error) in [
        (
            &["SET", "k", "v", "EX", "0"][..],
            "-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            &["SET", "k", "v", "PX", "-5"],
            "-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            &["SET", "k", "v", "EX", "abc"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (
            &["SET", "k", "v", "EX", "10", "PX", "10"],
            "-ERR syntax error\r\n",
        ),
        (&["SET", "k", "v", "NX", "XX"], "-ERR syntax error\r\n"),
        (
            &["SET", "k", "v", "KEEPTTL", "EX", "10"],
            "-ERR syntax error\r\n",
        ),
        (&["SET", "k", "v", "EX"], "-ERR syntax error\r\n"),
        (&["SET", "k", "v", "FOO"], "-ERR syntax error\r\n"),
    ] {
        assert_eq!(client.call(arguments), error, "{arguments:?}");
    }
    assert_eq!(client.call(&["EXISTS", "k"]), ":0\r\n");
    // SET ... GET on a set is WRONGTYPE and changes nothing.
    assert_eq!(client.call(&["SADD", "s", "a"]), ":1\r\n");
    assert_eq!(
        client.call(&["SET", "s", "v", "GET"]),
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
    assert_eq!(client.call(&["TYPE", "s"]), "+set\r\n");
    // Plain SET replaces a set.
    assert_eq!(client.call(&["SET", "s", "v"]), "+OK\r\n");
    assert_eq!(client.call(&["TYPE", "s"]), "+string\r\n");
}

#[test]
fn setex_psetex_and_expire_family_with_conditions() {
    let (_dir, server) = start("expire-family");
    let mut client = server.raw();
    assert_eq!(client.call(&["SETEX", "k", "100", "v"]), "+OK\r\n");
    assert_eq!(client.call(&["TTL", "k"]), ":100\r\n");
    assert_eq!(client.call(&["PSETEX", "p", "100000", "v"]), "+OK\r\n");
    assert!(integer(&client.call(&["PTTL", "p"])) > 99_000);
    assert_eq!(
        client.call(&["SETEX", "k", "-1", "v"]),
        "-ERR invalid expire time in 'setex' command\r\n"
    );
    assert_eq!(
        client.call(&["PSETEX", "k", "0", "v"]),
        "-ERR invalid expire time in 'psetex' command\r\n"
    );
    assert_eq!(
        client.call(&["SETEX", "k", "x", "v"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(client.call(&["TTL", "k"]), ":100\r\n");

    assert_eq!(client.call(&["SET", "k", "v"]), "+OK\r\n");
    let steps: &[(&[&str], &str)] = &[
        (&["EXPIRE", "k", "100", "XX"], ":0\r\n"),
        (&["EXPIRE", "k", "100", "GT"], ":0\r\n"),
        (&["EXPIRE", "k", "100", "NX"], ":1\r\n"),
        (&["EXPIRE", "k", "100", "NX"], ":0\r\n"),
        (&["EXPIRE", "k", "50", "GT"], ":0\r\n"),
        (&["EXPIRE", "k", "200", "GT"], ":1\r\n"),
        (&["EXPIRE", "k", "100", "LT"], ":1\r\n"),
        (&["EXPIRE", "k", "150", "LT"], ":0\r\n"),
        (&["EXPIRE", "k", "100", "XX"], ":1\r\n"),
        (&["PERSIST", "k"], ":1\r\n"),
        (&["PERSIST", "k"], ":0\r\n"),
        (&["TTL", "k"], ":-1\r\n"),
        (&["PTTL", "k"], ":-1\r\n"),
        (&["EXPIRE", "k", "100", "LT"], ":1\r\n"),
        (&["TTL", "k"], ":100\r\n"),
        (&["PEXPIRE", "k", "200000", "GT"], ":1\r\n"),
        (&["TTL", "k"], ":200\r\n"),
        (&["TTL", "missing"], ":-2\r\n"),
        (&["PTTL", "missing"], ":-2\r\n"),
        (&["EXPIRE", "missing", "10"], ":0\r\n"),
        (&["PERSIST", "missing"], ":0\r\n"),
        (
            &["EXPIRE", "k", "10", "NX", "XX"],
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n",
        ),
        (
            &["EXPIRE", "k", "10", "GT", "LT"],
            "-ERR GT and LT options at the same time are not compatible\r\n",
        ),
        (
            &["EXPIRE", "k", "10", "FOO"],
            "-ERR Unsupported option FOO\r\n",
        ),
        (
            &["EXPIRE", "k", "abc"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (
            &["EXPIRE", "k", "9223372036854775807"],
            "-ERR invalid expire time in 'expire' command\r\n",
        ),
        (
            &["PEXPIRE", "k", "9223372036854775807"],
            "-ERR invalid expire time in 'pexpire' command\r\n",
        ),
        (&["TTL", "k"], ":200\r\n"),
    ];
    for (arguments, expected) in steps {
        assert_eq!(client.call(arguments), *expected, "{arguments:?}");
    }
    let at_seconds = unix_time_ms() / 1000 + 500;
    assert_eq!(
        client.call(&["EXPIREAT", "k", &at_seconds.to_string()]),
        ":1\r\n"
    );
    let ttl = integer(&client.call(&["TTL", "k"]));
    assert!((498..=500).contains(&ttl), "TTL {ttl}");
    let at_ms = unix_time_ms() + 400_000;
    assert_eq!(
        client.call(&["PEXPIREAT", "k", &at_ms.to_string(), "GT"]),
        ":0\r\n"
    );
    assert_eq!(
        client.call(&["PEXPIREAT", "k", &at_ms.to_string(), "LT"]),
        ":1\r\n"
    );
    let ttl = integer(&client.call(&["TTL", "k"]));
    assert!((398..=400).contains(&ttl), "TTL {ttl}");
    // A time in the past deletes the key.
    assert_eq!(client.call(&["EXPIRE", "k", "-1"]), ":1\r\n");
    assert_eq!(client.call(&["EXISTS", "k"]), ":0\r\n");
    assert_eq!(client.call(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(client.call(&["PEXPIREAT", "k", "1000"]), ":1\r\n");
    assert_eq!(client.call(&["EXISTS", "k"]), ":0\r\n");
}

#[test]
fn keys_expire_lazily_and_actively() {
    let (_dir, server) = start("expiry");
    let mut client = server.raw();
    assert_eq!(client.call(&["SET", "lazy", "v", "PX", "50"]), "+OK\r\n");
    assert_eq!(client.call(&["GET", "lazy"]), "$1\r\nv\r\n");
    wait_for(Duration::from_millis(60));
    assert_eq!(client.call(&["GET", "lazy"]), "$-1\r\n");
    assert_eq!(client.call(&["TTL", "lazy"]), ":-2\r\n");

    // Active: nobody touches these keys; DBSIZE (which counts keys not yet deleted) drops to the one
    // key without expiry.
    assert_eq!(client.call(&["SET", "stays", "v"]), "+OK\r\n");
    let mut request = Vec::new();
    for index in 0..200 {
        let key = format!("active:{index}");
        request.extend_from_slice(
            format!(
                "*5\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$1\r\nv\r\n$2\r\nPX\r\n$3\r\n100\r\n",
                key.len()
            )
            .as_bytes(),
        );
    }
    client.send(&request);
    for _ in 0..200 {
        assert_eq!(client.read_reply_string(), "+OK\r\n");
    }
    assert_eq!(client.call(&["SADD", "set", "a"]), ":1\r\n");
    assert_eq!(client.call(&["PEXPIRE", "set", "100"]), ":1\r\n");
    wait_until("active expiry to delete 201 keys", || {
        client.call(&["DBSIZE"]) == ":1\r\n"
    });
    let info = client.call(&["INFO", "stats"]);
    assert!(info.contains("expired_keys:"), "{info}");
    let expired: u64 = info
        .split("expired_keys:")
        .nth(1)
        .unwrap()
        .split("\r\n")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(expired >= 201, "expired_keys:{expired}");
}

#[test]
fn expiry_survives_a_restart_as_absolute_times() {
    let dir = TempDir::new("expiry-restart");
    let mut server = Server::start(dir.path(), &[]);
    let mut client = server.raw();
    assert_eq!(client.call(&["SET", "long", "v", "EX", "100"]), "+OK\r\n");
    assert_eq!(client.call(&["SETEX", "setex", "100", "v"]), "+OK\r\n");
    assert_eq!(client.call(&["SET", "expire", "v"]), "+OK\r\n");
    assert_eq!(client.call(&["EXPIRE", "expire", "100"]), ":1\r\n");
    assert_eq!(client.call(&["SET", "short", "v", "PX", "300"]), "+OK\r\n");
    assert_eq!(
        client.call(&["SET", "persisted", "v", "EX", "1"]),
        "+OK\r\n"
    );
    assert_eq!(client.call(&["PERSIST", "persisted"]), ":1\r\n");
    assert_eq!(client.call(&["SET", "kept", "v", "EX", "100"]), "+OK\r\n");
    assert_eq!(client.call(&["SET", "kept", "w", "KEEPTTL"]), "+OK\r\n");
    let set_at = Instant::now();
    drop(client);
    server.kill();
    // "short" expires while the server is down.
    wait_for(Duration::from_millis(400).saturating_sub(set_at.elapsed()));
    server.restart();
    let mut client = server.raw();
    for key in ["long", "setex", "expire", "kept"] {
        let ttl = integer(&client.call(&["TTL", key]));
        assert!(ttl > 0 && ttl <= 100, "TTL {key} {ttl}");
    }
    assert_eq!(client.call(&["GET", "kept"]), "$1\r\nw\r\n");
    assert_eq!(client.call(&["GET", "short"]), "$-1\r\n");
    assert_eq!(client.call(&["TTL", "persisted"]), ":-1\r\n");
    assert_eq!(client.call(&["DBSIZE"]), ":5\r\n");
}

/// Every key with its type, value (set members sorted) and whether it has an expiry.
fn snapshot(client: &mut RawClient) -> Vec<(String, String, String, bool)> {
    let mut connection_keys: Vec<String> = Vec::new();
    let listing = client.call(&["KEYS", "*"]);
    for line in listing.split("\r\n").skip(1).collect::<Vec<_>>().chunks(2) {
        if line.len() == 2 {
            connection_keys.push(line[1].to_string());
        }
    }
    connection_keys.sort();
    connection_keys
        .into_iter()
        .map(|key| {
            let kind = client.call(&["TYPE", &key]);
            let value = if kind == "+set\r\n" {
                let reply = client.call(&["SMEMBERS", &key]);
                let mut members: Vec<&str> = reply.split("\r\n").skip(1).collect();
                members.sort();
                members.join(",")
            } else {
                client.call(&["GET", &key])
            };
            let expiring = integer(&client.call(&["PTTL", &key])) >= 0;
            (key, kind, value, expiring)
        })
        .collect()
}

#[test]
fn a_restart_rebuilds_exactly_the_same_keyspace() {
    let dir = TempDir::new("restart-same");
    let mut server = Server::start(dir.path(), &[]);
    let mut client = server.raw();
    let script: &[&[&str]] = &[
        &["SET", "plain", "v"],
        &["SET", "gone", "v"],
        &["GETDEL", "gone"],
        &["MSET", "m1", "1", "m2", "2"],
        &["INCRBY", "m1", "41"],
        &["DECR", "m2"],
        &["APPEND", "m2", "tail"],
        &["APPEND", "fresh", "start"],
        &["SETNX", "plain", "ignored"],
        &["SETNX", "nx", "v"],
        &["SADD", "set", "a", "b", "c", "d", "e"],
        &["SREM", "set", "b"],
        &["SPOP", "set"],
        &["SPOP", "set", "2"],
        &["SADD", "emptied", "x"],
        &["SREM", "emptied", "x"],
        &["SET", "ttl", "v", "EX", "100"],
        &["SET", "ttl", "w", "KEEPTTL"],
        &["INCR", "counter"],
        &["EXPIRE", "counter", "100"],
        &["INCR", "counter"],
        &["SET", "persist", "v", "PX", "100000"],
        &["PERSIST", "persist"],
        &["SETEX", "setex", "100", "v"],
        &["PSETEX", "psetex", "100000", "v"],
        &["EXPIRE", "plain", "100", "NX"],
        &["PEXPIRE", "plain", "200000", "GT"],
        &["SET", "past", "v", "EXAT", "1"],
        &["SET", "deleted", "v"],
        &["DEL", "deleted", "missing"],
        &["SET", "unlinked", "v"],
        &["UNLINK", "unlinked"],
        &["SET", "replaced", "v", "EX", "100"],
        &["SET", "replaced", "w"],
        &["SET", "ex-then-gone", "v", "PX", "1"],
    ];
    for arguments in script {
        let reply = client.call(arguments);
        assert!(!reply.starts_with('-'), "{arguments:?}: {reply}");
    }
    // A transaction, logged as one record.
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["INCR", "tx"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["SADD", "txset", "m"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["EXEC"]), "*2\r\n:1\r\n:1\r\n");
    wait_until("ex-then-gone to expire", || {
        client.call(&["EXISTS", "ex-then-gone"]) == ":0\r\n"
    });
    let before = snapshot(&mut client);
    let names: Vec<&str> = before.iter().map(|(key, ..)| key.as_str()).collect();
    assert_eq!(
        names,
        [
            "counter", "fresh", "m1", "m2", "nx", "persist", "plain", "psetex", "replaced", "set",
            "setex", "ttl", "tx", "txset"
        ]
    );
    let ttl_before = integer(&client.call(&["PTTL", "ttl"]));
    let measured_at = Instant::now();
    drop(client);
    server.restart();
    let mut client = server.raw();
    let after = snapshot(&mut client);
    assert_eq!(before, after);
    // Expiry times are absolute: the time spent restarting is not given back.
    let ttl_after = integer(&client.call(&["PTTL", "ttl"]));
    let elapsed = measured_at.elapsed().as_millis() as i64;
    assert!(
        ttl_after <= ttl_before - elapsed + 5,
        "PTTL {ttl_before} before, {ttl_after} after {elapsed} ms"
    );
    // FLUSHALL is logged too.
    assert_eq!(client.call(&["FLUSHALL"]), "+OK\r\n");
    drop(client);
    server.restart();
    let mut client = server.raw();
    assert_eq!(client.call(&["DBSIZE"]), ":0\r\n");
}

// --- Errors, worded as Redis words them ---

#[test]
fn errors_are_worded_as_in_redis_and_change_nothing() {
    let (_dir, server) = start("errors");
    let mut client = server.raw();
    assert_eq!(
        client.call(&["foo", "a", "b"]),
        "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n"
    );
    assert_eq!(
        client.call(&["foo"]),
        "-ERR unknown command 'foo', with args beginning with: \r\n"
    );
    // As in Redis, the argument list stops once it reaches 128 bytes, cutting the argument that
    // crosses the mark; the name is cut at 128 bytes.
    let (a, b, c) = ("a".repeat(100), "b".repeat(100), "c".repeat(100));
    assert_eq!(
        client.call(&["FOO", &a, &b, &c]),
        format!(
            "-ERR unknown command 'FOO', with args beginning with: '{a}' '{}' \r\n",
            "b".repeat(25)
        )
    );
    let long_name = "x".repeat(200);
    assert_eq!(
        client.call(&[&long_name, "y"]),
        format!(
            "-ERR unknown command '{}', with args beginning with: 'y' \r\n",
            "x".repeat(128)
        )
    );
    assert_eq!(
        client.call(&[""]),
        "-ERR unknown command '', with args beginning with: \r\n"
    );
    assert_eq!(
        client.call(&["GET"]),
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(
        client.call(&["get", "a", "b"]),
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(
        client.call(&["PING", "a", "b"]),
        "-ERR wrong number of arguments for 'ping' command\r\n"
    );
    assert_eq!(client.call(&["SADD", "set", "a"]), ":1\r\n");
    let wrong_type = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    for arguments in [
        &["GET", "set"][..],
        &["INCR", "set"],
        &["APPEND", "set", "x"],
        &["STRLEN", "set"],
        &["GETDEL", "set"],
        &["INCRBY", "set", "1"],
    ] {
        assert_eq!(client.call(arguments), wrong_type, "{arguments:?}");
    }
    assert_eq!(client.call(&["SET", "string", "x"]), "+OK\r\n");
    for arguments in [
        &["SADD", "string", "a"][..],
        &["SMEMBERS", "string"],
        &["SCARD", "string"],
        &["SISMEMBER", "string", "a"],
        &["SPOP", "string"],
        &["SSCAN", "string", "0"],
    ] {
        assert_eq!(client.call(arguments), wrong_type, "{arguments:?}");
    }
    // Failing commands change nothing.
    assert_eq!(client.call(&["SMEMBERS", "set"]), "*1\r\n$1\r\na\r\n");
    assert_eq!(client.call(&["GET", "string"]), "$1\r\nx\r\n");
    let not_an_integer = "-ERR value is not an integer or out of range\r\n";
    assert_eq!(client.call(&["INCR", "string"]), not_an_integer);
    assert_eq!(client.call(&["GET", "string"]), "$1\r\nx\r\n");
    assert_eq!(client.call(&["SET", "float", "1.5"]), "+OK\r\n");
    assert_eq!(client.call(&["INCR", "float"]), not_an_integer);
    assert_eq!(client.call(&["SET", "spaced", " 1"]), "+OK\r\n");
    assert_eq!(client.call(&["INCR", "spaced"]), not_an_integer);
    assert_eq!(client.call(&["INCRBY", "counter", "abc"]), not_an_integer);
    assert_eq!(client.call(&["EXISTS", "counter"]), ":0\r\n");
    assert_eq!(
        client.call(&["INCRBY", "counter", "9223372036854775807"]),
        ":9223372036854775807\r\n"
    );
    assert_eq!(
        client.call(&["INCR", "counter"]),
        "-ERR increment or decrement would overflow\r\n"
    );
    assert_eq!(
        client.call(&["INCRBY", "counter", "9223372036854775808"]),
        not_an_integer
    );
    assert_eq!(
        client.call(&["GET", "counter"]),
        "$19\r\n9223372036854775807\r\n"
    );
    assert_eq!(
        client.call(&["SET", "low", "-9223372036854775808"]),
        "+OK\r\n"
    );
    assert_eq!(
        client.call(&["DECR", "low"]),
        "-ERR increment or decrement would overflow\r\n"
    );
    assert_eq!(
        client.call(&["DECRBY", "zero", "-9223372036854775808"]),
        "-ERR decrement would overflow\r\n"
    );
    assert_eq!(client.call(&["EXISTS", "zero"]), ":0\r\n");
    assert_eq!(
        client.call(&["SET", "k", "v", "XX", "NX"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(client.call(&["EXISTS", "k"]), ":0\r\n");
    // MSET with an odd number of arguments sets nothing.
    assert_eq!(
        client.call(&["MSET", "a", "1", "b"]),
        "-ERR wrong number of arguments for 'mset' command\r\n"
    );
    assert_eq!(client.call(&["EXISTS", "a", "b"]), ":0\r\n");
    assert_eq!(client.call(&["SELECT", "abc"]), not_an_integer);
    assert_eq!(client.call(&["SCAN", "abc"]), "-ERR invalid cursor\r\n");
    assert_eq!(
        client.call(&["SCAN", "0", "COUNT", "0"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(client.call(&["SCAN", "0", "FOO"]), "-ERR syntax error\r\n");
    assert_eq!(
        client.call(&["SPOP", "set", "-1"]),
        "-ERR value is out of range, must be positive\r\n"
    );
    assert_eq!(client.call(&["SRANDMEMBER", "set", "abc"]), not_an_integer);
    assert_eq!(client.call(&["SCARD", "set"]), ":1\r\n");
    assert_eq!(
        client.call(&["ECHO"]),
        "-ERR wrong number of arguments for 'echo' command\r\n"
    );
}

#[test]
fn authentication_is_required_with_requirepass() {
    let dir = TempDir::new("auth");
    let server = Server::start(dir.path(), &["--requirepass", "secret"]);
    let mut client = server.raw();
    assert_eq!(
        client.call(&["GET", "k"]),
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        client.call(&["SET", "k", "v"]),
        "-NOAUTH Authentication required.\r\n"
    );
    // Unknown commands and wrong arity are reported as such even before AUTH (as in Redis).
    assert!(client
        .call(&["NOSUCH"])
        .starts_with("-ERR unknown command 'NOSUCH'"));
    assert_eq!(
        client.call(&["GET"]),
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(client.call(&["PING"]), "+PONG\r\n");
    assert_eq!(
        client.call(&["AUTH", "wrong"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        client.call(&["AUTH", "default", "wrong"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        client.call(&["AUTH", "someone", "secret"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        client.call(&["GET", "k"]),
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(client.call(&["AUTH", "secret"]), "+OK\r\n");
    assert_eq!(client.call(&["SET", "k", "v"]), "+OK\r\n");
    let mut other = server.raw();
    assert_eq!(other.call(&["AUTH", "default", "secret"]), "+OK\r\n");
    assert_eq!(other.call(&["GET", "k"]), "$1\r\nv\r\n");
    // HELLO with AUTH.
    let mut hello = server.raw();
    assert_eq!(
        hello.call(&["HELLO", "3", "AUTH", "default", "wrong"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert!(hello.call(&["HELLO", "3"]).starts_with("-NOAUTH"));
    assert!(hello
        .call(&["HELLO", "3", "AUTH", "default", "secret"])
        .starts_with("%7\r\n"));
    assert_eq!(hello.call(&["GET", "k"]), "$1\r\nv\r\n");
    // Queued commands before AUTH: MULTI itself needs auth.
    let mut late = server.raw();
    assert_eq!(
        late.call(&["MULTI"]),
        "-NOAUTH Authentication required.\r\n"
    );
    // The redis crate with a password in the URL.
    let client =
        redis::Client::open(format!("redis://:secret@127.0.0.1:{}/", server.port)).unwrap();
    let mut connection = client.get_connection().unwrap();
    let value: String = redis::cmd("GET").arg("k").query(&mut connection).unwrap();
    assert_eq!(value, "v");
}

// --- Commands ---

#[test]
fn client_subcommands() {
    let (_dir, server) = start("client");
    let mut client = server.raw();
    let id = integer(&client.call(&["CLIENT", "ID"]));
    let mut other = server.raw();
    assert_eq!(integer(&other.call(&["CLIENT", "ID"])), id + 1);
    assert_eq!(client.call(&["CLIENT", "GETNAME"]), "$-1\r\n");
    assert_eq!(client.call(&["CLIENT", "SETNAME", "worker-1"]), "+OK\r\n");
    assert_eq!(client.call(&["CLIENT", "GETNAME"]), "$8\r\nworker-1\r\n");
    assert_eq!(
        client.call(&["CLIENT", "SETNAME", "a b"]),
        "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
    );
    assert_eq!(client.call(&["CLIENT", "GETNAME"]), "$8\r\nworker-1\r\n");
    assert_eq!(
        client.call(&["CLIENT", "SETINFO", "LIB-NAME", "mylib"]),
        "+OK\r\n"
    );
    assert_eq!(
        client.call(&["CLIENT", "SETINFO", "lib-ver", "1.2"]),
        "+OK\r\n"
    );
    assert!(client
        .call(&["CLIENT", "SETINFO", "other", "x"])
        .starts_with("-ERR Unrecognized option"));
    let info = client.call(&["CLIENT", "INFO"]);
    for field in [
        format!("id={id} "),
        "name=worker-1 ".to_string(),
        "lib-name=mylib".to_string(),
        "lib-ver=1.2".to_string(),
        "cmd=client".to_string(),
        "resp=2".to_string(),
    ] {
        assert!(info.contains(&field), "{field:?} missing from {info:?}");
    }
    let list = client.call(&["CLIENT", "LIST"]);
    let body = list.split_once("\r\n").unwrap().1;
    let lines: Vec<&str> = body.trim_end().lines().collect();
    assert_eq!(lines.len(), 2, "{list:?}");
    assert!(lines
        .iter()
        .any(|line| line.starts_with(&format!("id={id} "))));
    assert!(lines
        .iter()
        .any(|line| line.starts_with(&format!("id={} ", id + 1))));
    let ids: HashSet<&str> = lines
        .iter()
        .map(|line| line.split(' ').next().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "each client listed once: {list:?}");
    assert_eq!(client.call(&["CLIENT", "SETNAME", ""]), "+OK\r\n");
    assert_eq!(client.call(&["CLIENT", "GETNAME"]), "$-1\r\n");
    assert!(client
        .call(&["CLIENT", "NOSUCH"])
        .starts_with("-ERR unknown subcommand 'NOSUCH'. Try CLIENT HELP."));
    assert_eq!(
        client.call(&["CLIENT"]),
        "-ERR wrong number of arguments for 'client' command\r\n"
    );
    drop(other);
    wait_until("the closed client to leave CLIENT LIST", || {
        let list = client.call(&["CLIENT", "LIST"]);
        list.matches("id=").count() == 1
    });
}

#[test]
fn select_command_and_config() {
    let (_dir, server) = start("introspection");
    let mut client = server.raw();
    assert_eq!(client.call(&["SELECT", "0"]), "+OK\r\n");
    assert_eq!(
        client.call(&["SELECT", "1"]),
        "-ERR DB index is out of range\r\n"
    );
    let count = integer(&client.call(&["COMMAND", "COUNT"]));
    assert!(count >= 50, "COMMAND COUNT {count}");
    let info = client.call(&["COMMAND", "INFO", "get", "nosuch"]);
    assert!(
        info.starts_with("*2\r\n*10\r\n$3\r\nget\r\n:2\r\n"),
        "COMMAND INFO: {info:?}"
    );
    assert!(
        info.ends_with("*-1\r\n"),
        "unknown command is a null: {info:?}"
    );
    let info = client.call(&["COMMAND", "INFO", "mset"]);
    assert!(info.contains("$4\r\nmset\r\n:-3\r\n"), "{info:?}");
    assert!(
        info.contains(":1\r\n:-1\r\n:2\r\n"),
        "keys 1, -1, step 2: {info:?}"
    );
    let docs = client.call(&["COMMAND", "DOCS", "get"]);
    assert!(
        docs.starts_with("*2\r\n$3\r\nget\r\n"),
        "COMMAND DOCS: {docs:?}"
    );
    assert!(docs.contains("summary"), "{docs:?}");
    let all = client.call(&["COMMAND"]);
    assert!(all.starts_with(&format!("*{count}\r\n")));

    assert_eq!(
        client.call(&["CONFIG", "GET", "maxclients"]),
        "*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n"
    );
    assert_eq!(client.call(&["CONFIG", "GET", "nosuch"]), "*0\r\n");
    let several = client.call(&["CONFIG", "GET", "max*"]);
    assert!(
        several.contains("maxclients") && several.contains("maxmemory"),
        "{several:?}"
    );
    assert_eq!(
        client.call(&["CONFIG", "SET", "maxclients", "3"]),
        "+OK\r\n"
    );
    assert_eq!(
        client.call(&["CONFIG", "GET", "maxclients"]),
        "*2\r\n$10\r\nmaxclients\r\n$1\r\n3\r\n"
    );
    assert!(client
        .call(&["CONFIG", "SET", "maxclients", "abc"])
        .starts_with("-ERR CONFIG SET failed (possibly related to argument 'maxclients')"));
    assert_eq!(
        client.call(&["CONFIG", "SET", "nosuch", "1"]),
        "-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\r\n"
    );
    assert_eq!(
        client.call(&["CONFIG", "SET", "port", "1"]),
        "-ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config\r\n"
    );
    // A refused pair refuses the whole call.
    assert!(client
        .call(&["CONFIG", "SET", "maxclients", "7", "port", "1"])
        .starts_with("-ERR"));
    assert_eq!(
        client.call(&["CONFIG", "GET", "maxclients"]),
        "*2\r\n$10\r\nmaxclients\r\n$1\r\n3\r\n"
    );
    // maxclients 3 holds: this client and two more.
    let mut second = server.raw();
    assert_eq!(second.call(&["PING"]), "+PONG\r\n");
    let mut third = server.raw();
    assert_eq!(third.call(&["PING"]), "+PONG\r\n");
    let mut fourth = server.raw();
    assert_eq!(
        fourth.read_reply_string(),
        "-ERR max number of clients reached\r\n"
    );
    assert!(fourth.is_closed_by_server());
    assert!(client
        .call(&["CONFIG", "GET"])
        .starts_with("-ERR wrong number of arguments for 'config|get' command"));
}

#[test]
fn config_set_requirepass_takes_effect_for_new_connections() {
    let (_dir, server) = start("config-requirepass");
    let mut client = server.raw();
    assert_eq!(
        client.call(&["CONFIG", "SET", "requirepass", "s3cret"]),
        "+OK\r\n"
    );
    // The connection that set it stays authenticated.
    assert_eq!(client.call(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(
        client.call(&["CONFIG", "GET", "requirepass"]),
        "*2\r\n$11\r\nrequirepass\r\n$6\r\ns3cret\r\n"
    );
    let mut other = server.raw();
    assert_eq!(
        other.call(&["GET", "k"]),
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(other.call(&["AUTH", "s3cret"]), "+OK\r\n");
    assert_eq!(other.call(&["GET", "k"]), "$1\r\nv\r\n");
    assert_eq!(
        client.call(&["CONFIG", "SET", "requirepass", ""]),
        "+OK\r\n"
    );
    assert_eq!(
        client.call(&["CONFIG", "GET", "requirepass"]),
        "*2\r\n$11\r\nrequirepass\r\n$0\r\n\r\n"
    );
    let mut third = server.raw();
    assert_eq!(third.call(&["GET", "k"]), "$1\r\nv\r\n");
}

#[test]
fn info_sections_dbsize_flushall() {
    let (_dir, server) = start("info");
    let mut client = server.raw();
    assert_eq!(client.call(&["DBSIZE"]), ":0\r\n");
    assert_eq!(client.call(&["MSET", "a", "1", "b", "2"]), "+OK\r\n");
    assert_eq!(client.call(&["SADD", "s", "x"]), ":1\r\n");
    assert_eq!(client.call(&["EXPIRE", "a", "100"]), ":1\r\n");
    assert_eq!(client.call(&["DBSIZE"]), ":3\r\n");
    let info = client.call(&["INFO"]);
    let mut position = 0;
    for section in [
        "# Server\r\n",
        "# Clients\r\n",
        "# Memory\r\n",
        "# Persistence\r\n",
        "# Stats\r\n",
        "# Replication\r\n",
        "# CPU\r\n",
        "# Keyspace\r\n",
    ] {
        let found = info[position..]
            .find(section)
            .unwrap_or_else(|| panic!("{section:?} missing or out of order in {info}"));
        position += found;
    }
    for field in [
        "redis_version:",
        "tcp_port:",
        "connected_clients:1\r\n",
        "used_memory:",
        "used_memory_rss:",
        "aof_enabled:1\r\n",
        "total_commands_processed:",
        "client_output_buffer_limit_disconnections:0\r\n",
        "db0:keys=3,expires=1,",
    ] {
        assert!(info.contains(field), "{field:?} missing in {info}");
    }
    let keyspace = client.call(&["INFO", "keyspace"]);
    assert!(keyspace.contains("# Keyspace\r\ndb0:keys=3,"), "{keyspace}");
    assert!(!keyspace.contains("# Server"), "{keyspace}");
    assert_eq!(client.call(&["FLUSHALL"]), "+OK\r\n");
    assert_eq!(client.call(&["DBSIZE"]), ":0\r\n");
    let keyspace = client.call(&["INFO", "keyspace"]);
    assert!(!keyspace.contains("db0:"), "{keyspace}");
    assert_eq!(client.call(&["FLUSHALL", "ASYNC"]), "+OK\r\n");
    assert_eq!(client.call(&["FLUSHALL", "NOW"]), "-ERR syntax error\r\n");
}

#[test]
fn keys_type_del_unlink_exists() {
    let (_dir, server) = start("keys");
    let mut client = server.raw();
    assert_eq!(client.call(&["SET", "str", "v"]), "+OK\r\n");
    assert_eq!(client.call(&["SADD", "set", "m"]), ":1\r\n");
    assert_eq!(client.call(&["TYPE", "str"]), "+string\r\n");
    assert_eq!(client.call(&["TYPE", "set"]), "+set\r\n");
    assert_eq!(client.call(&["TYPE", "missing"]), "+none\r\n");
    assert_eq!(
        client.call(&["EXISTS", "str", "str", "set", "missing"]),
        ":3\r\n"
    );
    assert_eq!(client.call(&["DEL", "str", "missing"]), ":1\r\n");
    assert_eq!(client.call(&["DEL", "str"]), ":0\r\n");
    assert_eq!(client.call(&["MSET", "a", "1", "b", "2"]), "+OK\r\n");
    assert_eq!(client.call(&["UNLINK", "a", "b", "set", "zzz"]), ":3\r\n");
    assert_eq!(client.call(&["DBSIZE"]), ":0\r\n");
}

#[test]
fn scan_walks_every_key_with_match_count_and_type() {
    let (_dir, server) = start("scan");
    let mut connection = server.connection();
    let mut pipeline = redis::pipe();
    for index in 0..300 {
        pipeline
            .cmd("SET")
            .arg(format!("str:{index}"))
            .arg(index)
            .ignore();
    }
    for index in 0..200 {
        pipeline
            .cmd("SADD")
            .arg(format!("set:{index}"))
            .arg("m")
            .ignore();
    }
    pipeline.query::<()>(&mut connection).unwrap();

    let walk = |connection: &mut redis::Connection, options: &[&str]| -> Vec<String> {
        let mut cursor = 0u64;
        let mut keys = Vec::new();
        let mut calls = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg(options)
                .query(connection)
                .unwrap();
            keys.extend(batch);
            calls += 1;
            assert!(calls < 10_000, "SCAN does not terminate");
            if next == 0 {
                return keys;
            }
            cursor = next;
        }
    };
    let everything = walk(&mut connection, &["COUNT", "37"]);
    let unique: HashSet<&String> = everything.iter().collect();
    assert_eq!(unique.len(), 500);
    // Nothing changed during the walk: each key exactly once.
    assert_eq!(everything.len(), 500);
    let strings = walk(&mut connection, &["MATCH", "str:1*"]);
    let expected: HashSet<String> = (0..300)
        .map(|index| format!("str:{index}"))
        .filter(|key| key.starts_with("str:1"))
        .collect();
    assert_eq!(strings.iter().cloned().collect::<HashSet<_>>(), expected);
    let sets = walk(&mut connection, &["TYPE", "set", "COUNT", "1000"]);
    assert_eq!(sets.len(), 200);
    assert!(sets.iter().all(|key| key.starts_with("set:")));
    let none = walk(&mut connection, &["TYPE", "string", "MATCH", "set:*"]);
    assert!(none.is_empty());

    // Keys present throughout are returned at least once even when others come and go.
    let mut cursor = 0u64;
    let mut seen = HashSet::new();
    let mut round = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(20)
            .query(&mut connection)
            .unwrap();
        seen.extend(batch);
        let _: () = redis::cmd("DEL")
            .arg(format!("set:{round}"))
            .query(&mut connection)
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg(format!("new:{round}"))
            .arg(1)
            .query(&mut connection)
            .unwrap();
        round += 1;
        if next == 0 {
            break;
        }
        cursor = next;
    }
    for index in 0..300 {
        assert!(seen.contains(&format!("str:{index}")), "str:{index} missed");
    }
    for index in round..200 {
        assert!(seen.contains(&format!("set:{index}")), "set:{index} missed");
    }
}

#[test]
fn set_commands() {
    let (_dir, server) = start("sets");
    let mut client = server.raw();
    assert_eq!(client.call(&["SADD", "s", "a", "b", "c", "a"]), ":3\r\n");
    assert_eq!(client.call(&["SADD", "s", "c", "d"]), ":1\r\n");
    assert_eq!(client.call(&["SCARD", "s"]), ":4\r\n");
    assert_eq!(client.call(&["SISMEMBER", "s", "a"]), ":1\r\n");
    assert_eq!(client.call(&["SISMEMBER", "s", "z"]), ":0\r\n");
    assert_eq!(client.call(&["SISMEMBER", "missing", "a"]), ":0\r\n");
    assert_eq!(
        client.call(&["SMISMEMBER", "s", "a", "z", "d"]),
        "*3\r\n:1\r\n:0\r\n:1\r\n"
    );
    assert_eq!(client.call(&["SMISMEMBER", "missing", "a"]), "*1\r\n:0\r\n");
    assert_eq!(client.call(&["SREM", "s", "a", "z"]), ":1\r\n");
    assert_eq!(client.call(&["SCARD", "s"]), ":3\r\n");
    assert_eq!(client.call(&["SCARD", "missing"]), ":0\r\n");
    assert_eq!(client.call(&["SMEMBERS", "missing"]), "*0\r\n");
    let mut connection = server.connection();
    let members: HashSet<String> = redis::cmd("SMEMBERS")
        .arg("s")
        .query(&mut connection)
        .unwrap();
    assert_eq!(
        members,
        ["b", "c", "d"]
            .iter()
            .map(|member| member.to_string())
            .collect()
    );
    // Removing the last member removes the key.
    assert_eq!(client.call(&["SREM", "s", "b", "c", "d"]), ":3\r\n");
    assert_eq!(client.call(&["EXISTS", "s"]), ":0\r\n");

    // SPOP, with and without a count.
    let all: Vec<String> = (0..20).map(|index| format!("m{index}")).collect();
    let _: () = redis::cmd("SADD")
        .arg("pop")
        .arg(&all)
        .query(&mut connection)
        .unwrap();
    let one: String = redis::cmd("SPOP")
        .arg("pop")
        .query(&mut connection)
        .unwrap();
    assert!(all.contains(&one));
    let some: Vec<String> = redis::cmd("SPOP")
        .arg("pop")
        .arg(5)
        .query(&mut connection)
        .unwrap();
    assert_eq!(some.len(), 5);
    assert!(!some.contains(&one));
    assert_eq!(some.iter().collect::<HashSet<_>>().len(), 5);
    assert_eq!(client.call(&["SCARD", "pop"]), ":14\r\n");
    assert_eq!(client.call(&["SPOP", "pop", "0"]), "*0\r\n");
    let rest: Vec<String> = redis::cmd("SPOP")
        .arg("pop")
        .arg(100)
        .query(&mut connection)
        .unwrap();
    assert_eq!(rest.len(), 14);
    let mut popped: HashSet<String> = rest.into_iter().chain(some).collect();
    popped.insert(one);
    assert_eq!(popped, all.iter().cloned().collect());
    assert_eq!(client.call(&["EXISTS", "pop"]), ":0\r\n");
    assert_eq!(client.call(&["SPOP", "pop"]), "$-1\r\n");
    assert_eq!(client.call(&["SPOP", "pop", "3"]), "*0\r\n");

    // SRANDMEMBER: positive counts are distinct, negative counts may repeat; nothing is removed.
    let _: () = redis::cmd("SADD")
        .arg("rand")
        .arg(&["a", "b", "c"])
        .query(&mut connection)
        .unwrap();
    let one: String = redis::cmd("SRANDMEMBER")
        .arg("rand")
        .query(&mut connection)
        .unwrap();
    assert!(["a", "b", "c"].contains(&one.as_str()));
    let two: Vec<String> = redis::cmd("SRANDMEMBER")
        .arg("rand")
        .arg(2)
        .query(&mut connection)
        .unwrap();
    assert_eq!(two.len(), 2);
    assert_ne!(two[0], two[1]);
    let capped: Vec<String> = redis::cmd("SRANDMEMBER")
        .arg("rand")
        .arg(10)
        .query(&mut connection)
        .unwrap();
    assert_eq!(capped.iter().collect::<HashSet<_>>().len(), 3);
    assert_eq!(capped.len(), 3);
    let repeated: Vec<String> = redis::cmd("SRANDMEMBER")
        .arg("rand")
        .arg(-10)
        .query(&mut connection)
        .unwrap();
    assert_eq!(repeated.len(), 10);
    assert!(repeated
        .iter()
        .all(|member| ["a", "b", "c"].contains(&member.as_str())));
    assert_eq!(client.call(&["SRANDMEMBER", "rand", "0"]), "*0\r\n");
    assert_eq!(client.call(&["SRANDMEMBER", "missing"]), "$-1\r\n");
    assert_eq!(client.call(&["SRANDMEMBER", "missing", "3"]), "*0\r\n");
    assert_eq!(client.call(&["SCARD", "rand"]), ":3\r\n");
}

#[test]
fn sscan_walks_every_member() {
    let (_dir, server) = start("sscan");
    let mut connection = server.connection();
    let members: Vec<String> = (0..250).map(|index| format!("member:{index}")).collect();
    let _: () = redis::cmd("SADD")
        .arg("big")
        .arg(&members)
        .query(&mut connection)
        .unwrap();
    let mut cursor = 0u64;
    let mut seen = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SSCAN")
            .arg("big")
            .arg(cursor)
            .arg("COUNT")
            .arg(17)
            .query(&mut connection)
            .unwrap();
        seen.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 250);
    assert_eq!(
        seen.into_iter().collect::<HashSet<_>>(),
        members.into_iter().collect()
    );
    let (next, matched): (u64, Vec<String>) = redis::cmd("SSCAN")
        .arg("big")
        .arg(0)
        .arg("MATCH")
        .arg("member:1?")
        .arg("COUNT")
        .arg(1000)
        .query(&mut connection)
        .unwrap();
    assert_eq!(next, 0);
    assert_eq!(matched.len(), 10);
    let (next, empty): (u64, Vec<String>) = redis::cmd("SSCAN")
        .arg("missing")
        .arg(0)
        .query(&mut connection)
        .unwrap();
    assert_eq!((next, empty.len()), (0, 0));
}

#[test]
fn string_commands() {
    let (_dir, server) = start("strings");
    let mut client = server.raw();
    assert_eq!(
        client.call(&["MSET", "a", "1", "b", "2", "a", "3"]),
        "+OK\r\n"
    );
    assert_eq!(
        client.call(&["MGET", "a", "b", "missing"]),
        "*3\r\n$1\r\n3\r\n$1\r\n2\r\n$-1\r\n"
    );
    assert_eq!(client.call(&["SADD", "set", "m"]), ":1\r\n");
    // MGET answers nil for a key of another type.
    assert_eq!(
        client.call(&["MGET", "set", "a"]),
        "*2\r\n$-1\r\n$1\r\n3\r\n"
    );
    assert_eq!(client.call(&["GETDEL", "a"]), "$1\r\n3\r\n");
    assert_eq!(client.call(&["GETDEL", "a"]), "$-1\r\n");
    assert_eq!(client.call(&["EXISTS", "a"]), ":0\r\n");
    assert_eq!(client.call(&["INCRBY", "c", "10"]), ":10\r\n");
    assert_eq!(client.call(&["DECRBY", "c", "15"]), ":-5\r\n");
    assert_eq!(client.call(&["INCRBY", "c", "-5"]), ":-10\r\n");
    assert_eq!(client.call(&["INCR", "c"]), ":-9\r\n");
    assert_eq!(client.call(&["DECR", "c"]), ":-10\r\n");
    assert_eq!(client.call(&["GET", "c"]), "$3\r\n-10\r\n");
    assert_eq!(client.call(&["STRLEN", "c"]), ":3\r\n");
    assert_eq!(client.call(&["STRLEN", "missing"]), ":0\r\n");
    assert_eq!(client.call(&["APPEND", "ap", "hello"]), ":5\r\n");
    assert_eq!(client.call(&["APPEND", "ap", " world"]), ":11\r\n");
    assert_eq!(client.call(&["GET", "ap"]), "$11\r\nhello world\r\n");
    assert_eq!(client.call(&["APPEND", "c", "0"]), ":4\r\n");
    assert_eq!(client.call(&["INCR", "c"]), ":-99\r\n");
    // INCR keeps an expiry, as in Redis.
    assert_eq!(client.call(&["SET", "t", "1", "EX", "100"]), "+OK\r\n");
    assert_eq!(client.call(&["INCR", "t"]), ":2\r\n");
    assert_eq!(client.call(&["TTL", "t"]), ":100\r\n");
    assert_eq!(client.call(&["SETNX", "t", "x"]), ":0\r\n");
    assert_eq!(client.call(&["SETNX", "u", "x"]), ":1\r\n");
    // Binary-safe values.
    client.send(b"*3\r\n$3\r\nSET\r\n$3\r\nbin\r\n$4\r\n\x00\r\n\xff\r\n");
    assert_eq!(client.read_reply_string(), "+OK\r\n");
    assert_eq!(client.call(&["STRLEN", "bin"]), ":4\r\n");
    client.command(&["GET", "bin"]);
    assert_eq!(client.read_reply(), b"$4\r\n\x00\r\n\xff\r\n");
}

#[test]
fn quit_replies_ok_and_closes() {
    let (_dir, server) = start("quit");
    let mut client = server.raw();
    client.send(b"QUIT\r\nPING\r\n");
    assert_eq!(client.read_reply_string(), "+OK\r\n");
    assert!(client.is_closed_by_server());
    let mut other = server.raw();
    assert_eq!(other.call(&["PING"]), "+PONG\r\n");
}

#[test]
fn shutdown_exits_zero_and_a_restart_has_the_data() {
    let dir = TempDir::new("shutdown");
    let mut server = Server::start(dir.path(), &[]);
    let mut client = server.raw();
    assert_eq!(client.call(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(client.call(&["SADD", "s", "a", "b"]), ":2\r\n");
    assert_eq!(client.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(client.call(&["INCR", "n"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["INCR", "n"]), "+QUEUED\r\n");
    assert_eq!(client.call(&["EXEC"]), "*2\r\n:1\r\n:2\r\n");
    client.command(&["SHUTDOWN"]);
    assert_eq!(
        server.wait_exit(),
        Some(0),
        "log:\n{}",
        server.log.join("\n")
    );
    server.restart();
    let mut client = server.raw();
    assert_eq!(client.call(&["GET", "k"]), "$1\r\nv\r\n");
    assert_eq!(client.call(&["SCARD", "s"]), ":2\r\n");
    assert_eq!(client.call(&["GET", "n"]), "$1\r\n2\r\n");
}

// --- Real clients ---

fn tool_available(tool: &str) -> bool {
    let available = Command::new(tool).arg("--version").output().is_ok();
    if !available {
        println!("skipped: {tool} is not installed");
    }
    available
}

#[test]
fn redis_cli_runs_commands() {
    if !tool_available("redis-cli") {
        return;
    }
    let (_dir, server) = start("redis-cli");
    let port = server.port.to_string();
    let run = |arguments: &[&str]| -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &port])
            .args(arguments)
            .output()
            .expect("run redis-cli");
        assert!(
            output.status.success(),
            "redis-cli {arguments:?}: {output:?}"
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert_eq!(run(&["PING"]), "PONG\n");
    assert_eq!(run(&["SET", "greeting", "hello world"]), "OK\n");
    assert_eq!(run(&["GET", "greeting"]), "hello world\n");
    assert_eq!(run(&["INCRBY", "counter", "5"]), "5\n");
    assert_eq!(run(&["SADD", "set", "a", "b"]), "2\n");
    assert_eq!(run(&["SCARD", "set"]), "2\n");
    assert_eq!(run(&["GET", "missing"]), "\n");
    assert!(run(&["INFO", "server"]).contains("redis_version:"));
    assert!(run(&["-3", "HELLO", "3"]).contains("proto"));
    assert!(run(&["NOSUCH"]).contains("ERR unknown command"));
    // Commands from standard input.
    let mut child = Command::new("redis-cli")
        .args(["-p", &port])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SET piped 42\nINCR piped\nGET piped\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "OK\n43\n43\n");
}

#[test]
fn redis_benchmark_runs_without_errors_in_resp2_and_resp3() {
    if !tool_available("redis-benchmark") {
        return;
    }
    let (_dir, server) = start("redis-benchmark");
    let port = server.port.to_string();
    for protocol in [None, Some("-3")] {
        let output = Command::new("redis-benchmark")
            .args(["-p", &port, "-t", "ping,set,get,incr,sadd,spop,mset"])
            .args(["-n", "2000", "-q"])
            .args(protocol)
            .output()
            .expect("run redis-benchmark");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{protocol:?}: {text}");
        assert!(!text.contains("ERR"), "{protocol:?}: {text}");
        for test in ["PING_INLINE", "SET", "GET", "INCR", "SADD", "SPOP", "MSET"] {
            assert!(text.contains(test), "{test} missing in {text}");
        }
    }
    let mut client = server.raw();
    assert_eq!(client.call(&["PING"]), "+PONG\r\n");
}

#[test]
fn redis_py_pipelines_and_transactions() {
    let has_redis_py = Command::new("python3")
        .args(["-c", "import redis"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !has_redis_py {
        println!("skipped: python3 with the redis package is not available");
        return;
    }
    let (_dir, server) = start("redis-py");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/pipeline_transaction.py"
    );
    let output = Command::new("python3")
        .arg(script)
        .arg(server.port.to_string())
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut client: RawClient = server.raw();
    assert_eq!(client.call(&["GET", "py:counter"]), "$1\r\n3\r\n");
}
