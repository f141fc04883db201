//! Blocked clients against the real binary: BLPOP fairness (longest-waiting first), one push serving many,
//! timeouts and their reply shapes in RESP2 and RESP3, disconnects while blocked, blocking commands inside
//! MULTI, pipelined requests behind a blocked one, chains of BLMOVE, CLIENT UNBLOCK, served pops
//! surviving kill -9, and a served pop's reply held until its record is durable (under strace's slow fsync).
//!
//! Ordering is made certain by waiting (with a deadline) for INFO's `blocked_clients` to count each client
//! before the next one starts, never by sleeping.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use redis::{Commands, Direction};

use common::{info_field, start, strace_usable, wait_until, RawClient, Server, TempDir};

/// What `[BLPOP, BLPOP, BLMOVE]` answer inside one transaction.
type TransactionReplies = (
    Option<(String, String)>,
    Option<(String, String)>,
    Option<String>,
);

fn wait_for_blocked(server: &Server, count: u64) {
    let mut observer = server.raw();
    wait_until(&format!("{count} blocked clients"), || {
        info_field(&mut observer, "blocked_clients") == count
    });
}

/// Three clients blocked on one key are served in the order they blocked, by one RPUSH of three elements.
#[test]
fn blpop_serves_the_longest_waiting_client_first() {
    let (_dir, server) = start("blocking-fairness");
    let mut waiters = Vec::new();
    for number in 0..3u64 {
        let mut connection = server.connection();
        waiters.push(thread::spawn(move || {
            let popped: (String, String) = connection.blpop("jobs", 0.0).unwrap();
            popped
        }));
        wait_for_blocked(&server, number + 1);
    }
    let mut pusher = server.connection();
    let length: usize = pusher.rpush("jobs", &["first", "second", "third"]).unwrap();
    // Redis's reply: the length right after the push, before the waiters took the elements.
    assert_eq!(length, 3);
    let served: Vec<(String, String)> = waiters
        .into_iter()
        .map(|waiter| waiter.join().unwrap())
        .collect();
    assert_eq!(
        served,
        [
            ("jobs".to_string(), "first".to_string()),
            ("jobs".to_string(), "second".to_string()),
            ("jobs".to_string(), "third".to_string()),
        ]
    );
    assert!(!pusher.exists::<_, bool>("jobs").unwrap());
    wait_for_blocked(&server, 0);
}

/// A push of fewer elements than waiters serves as many as it can; the rest keep waiting, in order.
#[test]
fn a_push_serves_up_to_its_element_count() {
    let (_dir, server) = start("blocking-partial");
    let mut waiters = Vec::new();
    for number in 0..3u64 {
        let mut connection = server.connection();
        waiters.push(thread::spawn(move || {
            let popped: (String, String) = connection.brpop(&["a", "jobs"], 0.0).unwrap();
            popped.1
        }));
        wait_for_blocked(&server, number + 1);
    }
    let mut pusher = server.connection();
    let _: usize = pusher.lpush("jobs", &["x", "y"]).unwrap();
    wait_for_blocked(&server, 1);
    let _: usize = pusher.lpush("a", "z").unwrap();
    let served: Vec<String> = waiters
        .into_iter()
        .map(|waiter| waiter.join().unwrap())
        .collect();
    // BRPOP takes from the tail: the list was [y, x].
    assert_eq!(served, ["x", "y", "z"]);
}

/// A timeout answers nil no earlier than asked: `*-1` / `$-1` in RESP2, `_` in RESP3.
#[test]
fn timeouts_answer_nil_after_the_timeout() {
    let (_dir, server) = start("blocking-timeouts");
    let mut connection = server.connection();
    let started = Instant::now();
    let popped: Option<(String, String)> = connection.blpop("missing", 0.2).unwrap();
    assert_eq!(popped, None);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "answered after {:?}",
        started.elapsed()
    );
    let mut resp2 = server.raw();
    let mut resp3 = RawClient::connect(server.port);
    assert!(resp3.call(&["HELLO", "3"]).starts_with('%'));
    for (call, in_resp2) in [
        (&["BLPOP", "missing", "0.05"][..], "*-1\r\n"),
        (&["BRPOP", "a", "b", "0.05"], "*-1\r\n"),
        (&["BLMPOP", "0.05", "1", "missing", "LEFT"], "*-1\r\n"),
        (
            &["BLMOVE", "missing", "d", "LEFT", "RIGHT", "0.05"],
            "$-1\r\n",
        ),
        (&["BRPOPLPUSH", "missing", "d", "0.05"], "$-1\r\n"),
    ] {
        let started = Instant::now();
        assert_eq!(resp2.call(call), in_resp2, "{call:?}");
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(resp3.call(call), "_\r\n", "{call:?}");
    }
    assert_eq!(
        resp2.call(&["BLPOP", "k", "-1"]),
        "-ERR timeout is negative\r\n"
    );
    assert_eq!(
        resp2.call(&["BLPOP", "k", "soon"]),
        "-ERR timeout is not a float or out of range\r\n"
    );
    assert_eq!(info_field(&mut resp2, "blocked_clients"), 0);
}

/// A client that disconnects while blocked leaves nothing: the next push stays in the list.
#[test]
fn a_disconnect_while_blocked_loses_no_push() {
    let (_dir, server) = start("blocking-disconnect");
    let mut blocked = server.raw();
    blocked.command(&["BLPOP", "jobs", "0"]);
    wait_for_blocked(&server, 1);
    drop(blocked);
    wait_for_blocked(&server, 0);
    let mut connection = server.connection();
    let _: usize = connection.rpush("jobs", "kept").unwrap();
    assert_eq!(
        connection.lrange::<_, Vec<String>>("jobs", 0, -1).unwrap(),
        ["kept"]
    );
}

/// Inside MULTI a blocking command answers at once, as its non-blocking variant.
#[test]
fn blocking_commands_inside_multi_do_not_block() {
    let (_dir, server) = start("blocking-multi");
    let mut connection = server.connection();
    let (first, second, moved): TransactionReplies = redis::pipe()
        .atomic()
        .blpop("missing", 0.0)
        .rpush("jobs", "x")
        .ignore()
        .blpop("jobs", 0.0)
        .blmove("missing", "d", Direction::Left, Direction::Left, 0.0)
        .query(&mut connection)
        .unwrap();
    assert_eq!(first, None);
    assert_eq!(second, Some(("jobs".to_string(), "x".to_string())));
    assert_eq!(moved, None);
    let mut raw = server.raw();
    assert!(raw.call(&["INFO"]).contains("blocked_clients:0"));
}

/// Requests pipelined behind a blocking command run only once it is served, in order.
#[test]
fn requests_behind_a_blocked_one_wait_for_it() {
    let (_dir, server) = start("blocking-pipeline");
    let mut blocked = server.raw();
    blocked.command(&["BLPOP", "jobs", "0"]);
    blocked.command(&["PING"]);
    wait_for_blocked(&server, 1);
    let mut connection = server.connection();
    let _: usize = connection.rpush("jobs", "x").unwrap();
    assert_eq!(
        blocked.read_reply_string(),
        "*2\r\n$4\r\njobs\r\n$1\r\nx\r\n"
    );
    assert_eq!(blocked.read_reply_string(), "+PONG\r\n");
}

/// A served BLMOVE's push serves the client waiting on its destination, in the same pass.
#[test]
fn blmove_chains_serve_each_waiter() {
    let (_dir, server) = start("blocking-chain");
    let mut mover = server.connection();
    let mover = thread::spawn(move || {
        let moved: String = mover
            .blmove("inbox", "work", Direction::Left, Direction::Right, 0.0)
            .unwrap();
        moved
    });
    wait_for_blocked(&server, 1);
    let mut worker = server.connection();
    let worker = thread::spawn(move || {
        let taken: (String, String) = worker.blpop("work", 0.0).unwrap();
        taken
    });
    wait_for_blocked(&server, 2);
    let mut pusher = server.connection();
    let _: usize = pusher.rpush("inbox", "task").unwrap();
    assert_eq!(mover.join().unwrap(), "task");
    assert_eq!(
        worker.join().unwrap(),
        ("work".to_string(), "task".to_string())
    );
    assert!(!pusher.exists::<_, bool>("work").unwrap());
}

/// CLIENT UNBLOCK ends a wait as a timeout, or with the UNBLOCKED error.
#[test]
fn client_unblock_ends_a_wait() {
    let (_dir, server) = start("blocking-unblock");
    let mut blocked = server.raw();
    let id = blocked.call(&["CLIENT", "ID"]);
    let id = id.trim_start_matches(':').trim_end().to_string();
    let mut admin = server.raw();
    assert_eq!(admin.call(&["CLIENT", "UNBLOCK", &id]), ":0\r\n");
    blocked.command(&["BLPOP", "jobs", "0"]);
    wait_for_blocked(&server, 1);
    assert!(admin.call(&["CLIENT", "LIST"]).contains("flags=b"));
    assert_eq!(admin.call(&["CLIENT", "UNBLOCK", &id]), ":1\r\n");
    assert_eq!(blocked.read_reply_string(), "*-1\r\n");
    blocked.command(&["BLMOVE", "jobs", "d", "LEFT", "LEFT", "0"]);
    wait_for_blocked(&server, 1);
    assert_eq!(
        admin.call(&["CLIENT", "UNBLOCK", &id, "WRONG"]),
        "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"
    );
    assert_eq!(admin.call(&["CLIENT", "UNBLOCK", &id, "ERROR"]), ":1\r\n");
    assert_eq!(
        blocked.read_reply_string(),
        "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"
    );
    assert_eq!(info_field(&mut admin, "blocked_clients"), 0);
}

/// Served pops are logged as plain pops: after kill -9 the list holds exactly what nobody was served.
#[test]
fn served_pops_survive_a_restart() {
    let (_dir, mut server) = start("blocking-restart");
    let mut waiter = server.connection();
    let waiter = thread::spawn(move || {
        let taken: (String, String) = waiter.blpop(&["other", "jobs"], 0.0).unwrap();
        taken
    });
    wait_for_blocked(&server, 1);
    let mut pusher = server.connection();
    let _: usize = pusher.rpush("jobs", &["a", "b", "c"]).unwrap();
    assert_eq!(
        waiter.join().unwrap(),
        ("jobs".to_string(), "a".to_string())
    );
    server.restart();
    let mut connection = server.connection();
    assert_eq!(
        connection.lrange::<_, Vec<String>>("jobs", 0, -1).unwrap(),
        ["b", "c"]
    );
}

/// The delay strace puts before every fsync and fdatasync in the durability test.
const SYNC_DELAY: Duration = Duration::from_millis(400);
/// Slack for timer granularity: a held reply must not leave before `SYNC_DELAY - SYNC_DELAY_SLACK`.
const SYNC_DELAY_SLACK: Duration = Duration::from_millis(50);

/// Under `appendfsync always`, the reply to a served pop waits for the pop's record to be durable, like
/// every reply: with every fsync slowed by `SYNC_DELAY`, it arrives no sooner than that after the push.
#[test]
fn a_served_pop_is_answered_once_durable() {
    if !strace_usable() {
        println!("a_served_pop_is_answered_once_durable: skipped, strace is missing or ptrace is not permitted here");
        return;
    }
    let dir = TempDir::new("blocking-durable");
    let wrapper: Vec<String> = [
        "strace",
        "-f",
        "-o",
        "/dev/null",
        "-e",
        "trace=fdatasync,fsync",
        "-e",
        &format!(
            "inject=fdatasync,fsync:delay_enter={}",
            SYNC_DELAY.as_micros()
        ),
    ]
    .iter()
    .map(|argument| argument.to_string())
    .collect();
    let server = Server::start_wrapped(
        dir.path(),
        wrapper,
        vec!["--appendfsync".into(), "always".into()],
    );
    let mut blocked = server.raw();
    blocked.command(&["BLPOP", "jobs", "0"]);
    wait_for_blocked(&server, 1);
    let mut pusher = server.raw();
    let pushed_at = Instant::now();
    pusher.command(&["RPUSH", "jobs", "x"]);
    assert_eq!(
        blocked.read_reply_string(),
        "*2\r\n$4\r\njobs\r\n$1\r\nx\r\n"
    );
    let served_after = pushed_at.elapsed();
    assert!(
        served_after >= SYNC_DELAY - SYNC_DELAY_SLACK,
        "the served pop was answered after {served_after:?}, before its fsync ({SYNC_DELAY:?}) could have returned"
    );
    assert_eq!(pusher.read_reply_string(), ":1\r\n");
}
