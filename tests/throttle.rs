//! CL.THROTTLE against the real binary: reply shapes and errors in RESP2 and RESP3, redis-cell's answers on
//! a table of calls, stale limiters dropped by the server itself, and identical answers after kill -9.

mod common;

use common::{start, wait_until, RawClient};

const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

/// The RESP reply `[limited, limit, remaining, retry_after, reset_after]`.
fn answer(limited: i64, limit: i64, remaining: i64, retry: i64, reset: i64) -> String {
    format!("*5\r\n:{limited}\r\n:{limit}\r\n:{remaining}\r\n:{retry}\r\n:{reset}\r\n")
}

/// The answers redis-cell gives to a burst of calls made within the same second (its README's
/// `user123 15 30 60` example, continued): interval 2 s, tolerance 32 s. Every value below is the same for
/// any spacing of the calls under one second, so the table does not depend on the machine's speed.
fn check_redis_cell_table(raw: &mut RawClient) {
    let table: &[(&[&str], String)] = &[
        (
            &["CL.THROTTLE", "user123", "15", "30", "60"],
            answer(0, 16, 15, -1, 2),
        ),
        (
            &["CL.THROTTLE", "user123", "15", "30", "60", "1"],
            answer(0, 16, 14, -1, 4),
        ),
        // Quantity 0 peeks.
        (
            &["CL.THROTTLE", "user123", "15", "30", "60", "0"],
            answer(0, 16, 14, -1, 4),
        ),
        // Takes the rest of the burst at once.
        (
            &["CL.THROTTLE", "user123", "15", "30", "60", "14"],
            answer(0, 16, 0, -1, 32),
        ),
        (
            &["CL.THROTTLE", "user123", "15", "30", "60"],
            answer(1, 16, 0, 2, 32),
        ),
        // More than the whole burst can never pass: retry -1.
        (
            &["CL.THROTTLE", "user123", "15", "30", "60", "17"],
            answer(1, 16, 0, -1, 32),
        ),
        // Another key is independent; a burst of 0 allows one at a time.
        (
            &["CL.THROTTLE", "other", "0", "1", "10"],
            answer(0, 1, 0, -1, 10),
        ),
        (
            &["CL.THROTTLE", "other", "0", "1", "10"],
            answer(1, 1, 0, 10, 10),
        ),
    ];
    for (arguments, expected) in table {
        assert_eq!(&raw.call(arguments), expected, "{arguments:?}");
    }
}

#[test]
fn matches_redis_cell_in_resp2() {
    let (_dir, server) = start("throttle-resp2");
    let mut raw = server.raw();
    check_redis_cell_table(&mut raw);
    assert_eq!(raw.call(&["TYPE", "user123"]), "+throttle\r\n");
}

#[test]
fn matches_redis_cell_in_resp3() {
    let (_dir, server) = start("throttle-resp3");
    let mut raw = server.raw();
    assert!(raw.call(&["HELLO", "3"]).starts_with('%'));
    check_redis_cell_table(&mut raw);
}

#[test]
fn errors_and_types() {
    let (_dir, server) = start("throttle-errors");
    let mut raw = server.raw();
    assert_eq!(raw.call(&["SADD", "set", "m"]), ":1\r\n");
    let errors: &[(&[&str], &str)] = &[
        (
            &["CL.THROTTLE", "k", "x", "1", "1"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (
            &["CL.THROTTLE", "k", "-1", "1", "1"],
            "-ERR max_burst must be a non-negative integer\r\n",
        ),
        (
            &["CL.THROTTLE", "k", "1", "-1", "1"],
            "-ERR count per period must be a non-negative integer\r\n",
        ),
        (
            &["CL.THROTTLE", "k", "1", "1", "-1"],
            "-ERR period must be a non-negative integer\r\n",
        ),
        (
            &["CL.THROTTLE", "k", "1", "1", "1", "-1"],
            "-ERR quantity must be a non-negative integer\r\n",
        ),
        (
            &["CL.THROTTLE", "k", "1", "0", "1"],
            "-ERR Zero rates are not supported\r\n",
        ),
        (
            &["CL.THROTTLE", "k", "1", "1", "0"],
            "-ERR Zero rates are not supported\r\n",
        ),
        (
            &["CL.THROTTLE", "k", "1", "1", "3153600001"],
            "-ERR period must be at most 3153600000 seconds\r\n",
        ),
        (
            &["CL.THROTTLE", "k", "1", "1"],
            "-ERR wrong number of arguments for 'cl.throttle' command\r\n",
        ),
        (
            &["CL.THROTTLE", "k", "1", "1", "1", "1", "1"],
            "-ERR wrong number of arguments for 'cl.throttle' command\r\n",
        ),
        (
            &["CL.SETTAT", "k", "1"],
            "-ERR unknown command 'CL.SETTAT', with args beginning with: 'k' '1' \r\n",
        ),
        (&["CL.THROTTLE", "set", "1", "1", "1"], WRONGTYPE),
    ];
    for (arguments, expected) in errors {
        assert_eq!(&raw.call(arguments), expected, "{arguments:?}");
    }
    assert_eq!(
        raw.call(&["EXISTS", "k"]),
        ":0\r\n",
        "errors create nothing"
    );
    assert_eq!(
        raw.call(&["CL.THROTTLE", "k", "1", "1", "60"]),
        answer(0, 2, 1, -1, 60)
    );
    for arguments in [
        &["GET", "k"][..],
        &["SADD", "k", "m"],
        &["LIKE.ADD", "k", "u"],
        &["QUEUE.JOIN", "k", "u"],
        &["COUPON.INFO", "k"],
    ] {
        assert_eq!(raw.call(arguments), WRONGTYPE, "{arguments:?}");
    }
    assert_eq!(raw.call(&["COMMAND", "INFO", "cl.settat"]), "*1\r\n*-1\r\n");
}

/// A limiter whose bucket is full again is dropped by the server itself (and logged as DEL); a peek or a
/// limited call on a fresh key creates nothing.
#[test]
fn stale_limiters_are_dropped() {
    let (_dir, mut server) = start("throttle-stale");
    let mut raw = server.raw();
    // 10 per second: one request is paid back in 100 ms.
    assert_eq!(
        raw.call(&["CL.THROTTLE", "k", "0", "10", "1"]),
        answer(0, 1, 0, -1, 1)
    );
    assert_eq!(raw.call(&["EXISTS", "k"]), ":1\r\n");
    wait_until("the stale limiter is dropped", || {
        raw.call(&["EXISTS", "k"]) == ":0\r\n"
    });
    assert_eq!(
        raw.call(&["CL.THROTTLE", "peek", "5", "10", "1", "0"]),
        answer(0, 6, 6, -1, 0)
    );
    assert_eq!(
        raw.call(&["CL.THROTTLE", "huge", "5", "10", "1", "7"]),
        answer(1, 6, 6, -1, 0)
    );
    assert_eq!(raw.call(&["DBSIZE"]), ":0\r\n");
    server.restart();
    let mut raw = server.raw();
    assert_eq!(raw.call(&["DBSIZE"]), ":0\r\n", "the drop was logged");
}

/// A limiter in debt stays in debt across kill -9: the next call is answered as if nothing happened.
#[test]
fn survives_kill_9() {
    let (_dir, mut server) = start("throttle-restart");
    let mut raw = server.raw();
    // Limit 3, one per hour: the fourth call is limited for about an hour.
    for remaining in [2, 1, 0] {
        let reply = raw.call(&["CL.THROTTLE", "login:ann", "2", "1", "3600"]);
        assert!(
            reply.starts_with(&format!("*5\r\n:0\r\n:3\r\n:{remaining}\r\n:-1\r\n")),
            "{reply}"
        );
    }
    let limited = raw.call(&["CL.THROTTLE", "login:ann", "2", "1", "3600"]);
    assert_eq!(limited, answer(1, 3, 0, 3600, 10800));
    server.restart();
    let mut raw = server.raw();
    // Whole seconds round up by the millisecond, so a restart under a second later answers the same; a
    // slower one (a loaded machine) a second less.
    let after = raw.call(&["CL.THROTTLE", "login:ann", "2", "1", "3600"]);
    assert!(
        after == limited || after == answer(1, 3, 0, 3599, 10799),
        "{after}"
    );
    let peek = raw.call(&["CL.THROTTLE", "login:ann", "2", "1", "3600", "0"]);
    assert!(
        peek == answer(0, 3, 0, -1, 10800) || peek == answer(0, 3, 0, -1, 10799),
        "{peek}"
    );
    assert_eq!(raw.call(&["TYPE", "login:ann"]), "+throttle\r\n");
}
