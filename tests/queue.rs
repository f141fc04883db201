//! QUEUE.* against the real binary: every reply shape and error in RESP2 and RESP3, 1000 concurrent joins,
//! admissions, departures, pass expiry and idle drops by the server's own active cycle (logged), and
//! identical positions after kill -9.

mod common;

use std::sync::{Arc, Barrier};

use common::{log_contains, start, wait_until, RawClient};

const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

/// A logged command as the log's payload spells it: each argument as a little-endian u32 length and its
/// bytes (see `aof::payload`).
fn logged(arguments: &[&str]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for argument in arguments {
        bytes.extend_from_slice(&(argument.len() as u32).to_le_bytes());
        bytes.extend_from_slice(argument.as_bytes());
    }
    bytes
}

/// Every reply shape; `null` is how the protocol spells a null.
fn check_replies(raw: &mut RawClient, null: &str) {
    assert_eq!(raw.call(&["QUEUE.POS", "room", "a"]), null);
    assert_eq!(raw.call(&["QUEUE.LEN", "room"]), ":0\r\n");
    assert_eq!(raw.call(&["QUEUE.PASS", "room", "a"]), ":0\r\n");
    assert_eq!(raw.call(&["QUEUE.LEAVE", "room", "a"]), ":0\r\n");
    assert_eq!(raw.call(&["QUEUE.ADMIT", "room", "5", "1000"]), "*0\r\n");
    assert_eq!(raw.call(&["EXISTS", "room"]), ":0\r\n");
    for (position, user) in ["a", "b", "c", "d"].into_iter().enumerate() {
        assert_eq!(
            raw.call(&["QUEUE.JOIN", "room", user]),
            format!(":{}\r\n", position + 1)
        );
    }
    assert_eq!(
        raw.call(&["QUEUE.JOIN", "room", "b"]),
        ":2\r\n",
        "joining again keeps one's place"
    );
    assert_eq!(raw.call(&["QUEUE.POS", "room", "c"]), ":3\r\n");
    assert_eq!(raw.call(&["QUEUE.LEN", "room"]), ":4\r\n");
    assert_eq!(
        raw.call(&["QUEUE.ADMIT", "room", "2", "600000"]),
        "*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    );
    assert_eq!(raw.call(&["QUEUE.POS", "room", "a"]), ":0\r\n");
    assert_eq!(raw.call(&["QUEUE.JOIN", "room", "a"]), ":0\r\n");
    assert_eq!(raw.call(&["QUEUE.PASS", "room", "a"]), ":1\r\n");
    assert_eq!(raw.call(&["QUEUE.PASS", "room", "c"]), ":0\r\n");
    assert_eq!(raw.call(&["QUEUE.POS", "room", "c"]), ":1\r\n");
    assert_eq!(raw.call(&["QUEUE.LEN", "room"]), ":2\r\n");
    assert_eq!(raw.call(&["QUEUE.LEAVE", "room", "c"]), ":1\r\n");
    assert_eq!(raw.call(&["QUEUE.LEAVE", "room", "c"]), ":0\r\n");
    assert_eq!(raw.call(&["QUEUE.POS", "room", "c"]), null);
    assert_eq!(raw.call(&["QUEUE.POS", "room", "d"]), ":1\r\n");
    assert_eq!(
        raw.call(&["QUEUE.LEAVE", "room", "a"]),
        ":1\r\n",
        "a pass is given back"
    );
    assert_eq!(raw.call(&["QUEUE.PASS", "room", "a"]), ":0\r\n");
    assert_eq!(
        raw.call(&["QUEUE.CONFIG", "room", "IDLE", "60000"]),
        "+OK\r\n"
    );
    assert_eq!(raw.call(&["QUEUE.CONFIG", "room", "idle", "0"]), "+OK\r\n");
    assert_eq!(raw.call(&["TYPE", "room"]), "+queue\r\n");
    // Vacant and unconfigured: the room goes.
    assert_eq!(raw.call(&["QUEUE.LEAVE", "room", "b"]), ":1\r\n");
    assert_eq!(raw.call(&["QUEUE.LEAVE", "room", "d"]), ":1\r\n");
    assert_eq!(raw.call(&["EXISTS", "room"]), ":0\r\n");
    // A configured room stays while empty.
    assert_eq!(
        raw.call(&["QUEUE.CONFIG", "room", "IDLE", "60000"]),
        "+OK\r\n"
    );
    assert_eq!(raw.call(&["TYPE", "room"]), "+queue\r\n");
    assert_eq!(raw.call(&["QUEUE.LEN", "room"]), ":0\r\n");
}

#[test]
fn replies_in_resp2() {
    let (_dir, server) = start("queue-resp2");
    check_replies(&mut server.raw(), "$-1\r\n");
}

#[test]
fn replies_in_resp3() {
    let (_dir, server) = start("queue-resp3");
    let mut raw = server.raw();
    assert!(raw.call(&["HELLO", "3"]).starts_with('%'));
    check_replies(&mut raw, "_\r\n");
}

#[test]
fn errors_and_types() {
    let (_dir, server) = start("queue-errors");
    let mut raw = server.raw();
    assert_eq!(raw.call(&["QUEUE.JOIN", "room", "a"]), ":1\r\n");
    assert_eq!(raw.call(&["SADD", "set", "m"]), ":1\r\n");
    let long_user = "x".repeat(257);
    let errors: &[(&[&str], &str)] = &[
        (
            &["QUEUE.JOIN", "room", &long_user],
            "-ERR user id longer than 256 bytes\r\n",
        ),
        (
            &["QUEUE.JOIN", "new", &long_user],
            "-ERR user id longer than 256 bytes\r\n",
        ),
        (
            &["QUEUE.ADMIT", "room", "0", "1000"],
            "-ERR count must be between 1 and 10000\r\n",
        ),
        (
            &["QUEUE.ADMIT", "room", "-1", "1000"],
            "-ERR count must be between 1 and 10000\r\n",
        ),
        (
            &["QUEUE.ADMIT", "missing", "1", "0"],
            "-ERR pass ttl must be between 1 and 604800000 ms\r\n",
        ),
        (
            &["QUEUE.ADMIT", "room", "1", "x"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (
            &["QUEUE.CONFIG", "room", "IDLE", "604800001"],
            "-ERR idle timeout must be at most 604800000 ms\r\n",
        ),
        (
            &["QUEUE.CONFIG", "room", "IDLE", "-5"],
            "-ERR idle timeout must be at most 604800000 ms\r\n",
        ),
        (
            &["QUEUE.CONFIG", "room", "TIMEOUT", "5"],
            "-ERR syntax error\r\n",
        ),
        (
            &["QUEUE.CONFIG", "room", "IDLE"],
            "-ERR wrong number of arguments for 'queue.config' command\r\n",
        ),
        (
            &["QUEUE.ADMIT", "room", "1"],
            "-ERR wrong number of arguments for 'queue.admit' command\r\n",
        ),
        (
            &["QUEUE.LEN", "room", "x"],
            "-ERR wrong number of arguments for 'queue.len' command\r\n",
        ),
        (&["QUEUE.JOIN", "set", "a"], WRONGTYPE),
        (&["QUEUE.POS", "set", "a"], WRONGTYPE),
        (&["QUEUE.ADMIT", "set", "1", "10"], WRONGTYPE),
        (&["QUEUE.PASS", "set", "a"], WRONGTYPE),
        (&["QUEUE.LEAVE", "set", "a"], WRONGTYPE),
        (&["QUEUE.LEN", "set"], WRONGTYPE),
        (&["QUEUE.CONFIG", "set", "IDLE", "10"], WRONGTYPE),
        (&["SCARD", "room"], WRONGTYPE),
        (&["LIKE.COUNT", "room"], WRONGTYPE),
        (&["STOCK.TAKE", "room", "1"], WRONGTYPE),
        (&["CL.THROTTLE", "room", "1", "1", "1"], WRONGTYPE),
    ];
    for (arguments, expected) in errors {
        assert_eq!(&raw.call(arguments), expected, "{arguments:?}");
    }
    assert_eq!(raw.call(&["EXISTS", "new", "missing"]), ":0\r\n");
    assert_eq!(raw.call(&["QUEUE.POS", "room", "a"]), ":1\r\n");
    assert_eq!(raw.call(&["QUEUE.LEN", "room"]), ":1\r\n");
}

/// 1000 clients join at once: positions 1..=1000, each exactly once, and the line agrees.
#[test]
fn concurrent_joins_get_every_position_once() {
    const CLIENTS: usize = 1000;
    let (_dir, server) = start("queue-joins");
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let barrier = Arc::clone(&barrier);
            let mut raw = server.raw();
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    barrier.wait();
                    let reply = raw.call(&["QUEUE.JOIN", "sale", &format!("user{client}")]);
                    let position: usize = reply.trim_start_matches(':').trim_end().parse().unwrap();
                    (client, position)
                })
                .unwrap()
        })
        .collect();
    let mut positions: Vec<(usize, usize)> =
        threads.into_iter().map(|t| t.join().unwrap()).collect();
    positions.sort_by_key(|&(_, position)| position);
    let sorted: Vec<usize> = positions.iter().map(|&(_, position)| position).collect();
    assert_eq!(sorted, (1..=CLIENTS).collect::<Vec<_>>());
    let mut raw = server.raw();
    assert_eq!(raw.call(&["QUEUE.LEN", "sale"]), ":1000\r\n");
    // The line is in join order: admitting lets them in by position.
    let admitted = raw.call(&["QUEUE.ADMIT", "sale", "3", "60000"]);
    let expected: String = positions[..3]
        .iter()
        .map(|&(client, _)| {
            let user = format!("user{client}");
            format!("${}\r\n{user}\r\n", user.len())
        })
        .collect();
    assert_eq!(admitted, format!("*3\r\n{expected}"));
}

/// ADMIT and LEAVE move waiters up; a pass expires by itself (the active cycle forgets it and logs a
/// QUEUE.LEAVE); all of it survives kill -9.
#[test]
fn admit_leave_and_pass_expiry_move_positions() {
    let (dir, mut server) = start("queue-moves");
    let mut raw = server.raw();
    for user in ["a", "b", "c", "d", "e", "f"] {
        raw.call(&["QUEUE.JOIN", "room", user]);
    }
    assert_eq!(
        raw.call(&["QUEUE.ADMIT", "room", "1", "300"]),
        "*1\r\n$1\r\na\r\n"
    );
    assert_eq!(
        raw.call(&["QUEUE.ADMIT", "room", "1", "3600000"]),
        "*1\r\n$1\r\nb\r\n"
    );
    assert_eq!(raw.call(&["QUEUE.POS", "room", "e"]), ":3\r\n");
    assert_eq!(raw.call(&["QUEUE.LEAVE", "room", "d"]), ":1\r\n");
    assert_eq!(raw.call(&["QUEUE.POS", "room", "e"]), ":2\r\n");
    assert_eq!(raw.call(&["QUEUE.POS", "room", "f"]), ":3\r\n");
    assert_eq!(raw.call(&["QUEUE.POS", "room", "a"]), ":0\r\n");
    // Nobody touches a: the active cycle forgets its pass and logs it.
    wait_until("the active cycle logs the pass expiry", || {
        log_contains(dir.path(), &logged(&["QUEUE.LEAVE", "room", "a"]))
    });
    assert_eq!(raw.call(&["QUEUE.PASS", "room", "a"]), ":0\r\n");
    assert_eq!(raw.call(&["QUEUE.POS", "room", "a"]), "$-1\r\n");
    assert_eq!(raw.call(&["QUEUE.PASS", "room", "b"]), ":1\r\n");
    // After its pass, a joins at the back.
    assert_eq!(raw.call(&["QUEUE.JOIN", "room", "a"]), ":4\r\n");
    let state = |raw: &mut RawClient| -> Vec<String> {
        let mut answers: Vec<String> = ["a", "b", "c", "d", "e", "f"]
            .iter()
            .map(|user| raw.call(&["QUEUE.POS", "room", user]))
            .collect();
        answers.push(raw.call(&["QUEUE.LEN", "room"]));
        answers.push(raw.call(&["QUEUE.PASS", "room", "b"]));
        answers
    };
    let before = state(&mut raw);
    assert_eq!(
        before,
        [":4\r\n", ":0\r\n", ":1\r\n", "$-1\r\n", ":2\r\n", ":3\r\n", ":4\r\n", ":1\r\n"]
    );
    server.restart();
    let mut raw = server.raw();
    assert_eq!(state(&mut raw), before);
}

/// A waiter who stops polling is dropped by the server itself after the idle timeout; one who polls keeps
/// the place. The drop is logged, so a restart agrees.
#[test]
fn idle_timeout_drops_a_silent_waiter() {
    let (dir, mut server) = start("queue-idle");
    let mut raw = server.raw();
    assert_eq!(
        raw.call(&["QUEUE.CONFIG", "room", "IDLE", "300"]),
        "+OK\r\n"
    );
    assert_eq!(raw.call(&["QUEUE.JOIN", "room", "silent"]), ":1\r\n");
    assert_eq!(raw.call(&["QUEUE.JOIN", "room", "polling"]), ":2\r\n");
    wait_until("the silent waiter is dropped", || {
        // The poll keeps `polling`'s place while we wait.
        let position = raw.call(&["QUEUE.POS", "room", "polling"]);
        assert!(position == ":2\r\n" || position == ":1\r\n", "{position}");
        raw.call(&["QUEUE.LEN", "room"]) == ":1\r\n"
    });
    assert!(log_contains(
        dir.path(),
        &logged(&["QUEUE.LEAVE", "room", "silent"])
    ));
    assert_eq!(raw.call(&["QUEUE.POS", "room", "polling"]), ":1\r\n");
    assert_eq!(raw.call(&["QUEUE.POS", "room", "silent"]), "$-1\r\n");
    // A restart on a busy machine may outlast the timeout: turned off, `polling` cannot lapse while it
    // runs, and what the restart must agree on is the logged drop.
    assert_eq!(raw.call(&["QUEUE.CONFIG", "room", "IDLE", "0"]), "+OK\r\n");
    server.restart();
    let mut raw = server.raw();
    assert_eq!(raw.call(&["QUEUE.LEN", "room"]), ":1\r\n");
    assert_eq!(raw.call(&["QUEUE.POS", "room", "silent"]), "$-1\r\n");
    assert_eq!(raw.call(&["QUEUE.JOIN", "room", "silent"]), ":2\r\n");
}
