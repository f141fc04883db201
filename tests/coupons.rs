//! COUPON.* against the real binary: every reply shape and error in RESP2 and RESP3, a 100-client rush,
//! request IDs across a kill -9, and identical state after a restart.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Barrier};

use common::start;

/// Far in the future (2100-01-01), so an event that starts then has not started.
const YEAR_2100_MS: &str = "4102444800000";

#[test]
fn replies_in_resp2() {
    let (_dir, server) = start("coupon-resp2");
    let mut raw = server.raw();
    assert_eq!(raw.call(&["COUPON.CREATE", "ev", "2"]), "+OK\r\n");
    assert_eq!(
        raw.call(&["COUPON.ISSUE", "ev", "alice"]),
        "*3\r\n$6\r\nISSUED\r\n:1\r\n:1\r\n"
    );
    assert_eq!(
        raw.call(&["COUPON.ISSUE", "ev", "alice"]),
        "*3\r\n$7\r\nALREADY\r\n:1\r\n:1\r\n"
    );
    assert_eq!(
        raw.call(&["coupon.issue", "ev", "bob", "id", "r-1"]),
        "*3\r\n$6\r\nISSUED\r\n:2\r\n:0\r\n"
    );
    assert_eq!(
        raw.call(&["COUPON.ISSUE", "ev", "carol"]),
        "*3\r\n$7\r\nSOLDOUT\r\n$-1\r\n:0\r\n"
    );
    assert_eq!(raw.call(&["COUPON.GET", "ev", "alice"]), "*1\r\n:1\r\n");
    assert_eq!(raw.call(&["COUPON.GET", "ev", "carol"]), "*0\r\n");
    assert_eq!(
        raw.call(&["COUPON.INFO", "ev"]),
        "*16\r\n$5\r\ntotal\r\n:2\r\n$6\r\nissued\r\n:2\r\n$9\r\nremaining\r\n:0\r\n$7\r\nrevoked\r\n:0\r\n\
         $7\r\nperuser\r\n:1\r\n$5\r\nstart\r\n$-1\r\n$3\r\nend\r\n$-1\r\n$5\r\nstate\r\n$7\r\nsoldout\r\n"
    );
    assert_eq!(
        raw.call(&["COUPON.HOLDERS", "ev", "0", "1"]),
        "*2\r\n$1\r\n2\r\n*2\r\n$5\r\nalice\r\n:1\r\n"
    );
    assert_eq!(
        raw.call(&["COUPON.HOLDERS", "ev", "2", "1"]),
        "*2\r\n$1\r\n0\r\n*2\r\n$3\r\nbob\r\n:2\r\n"
    );
    // A revoke puts the coupon back: remaining rises, the number stays retired.
    assert_eq!(raw.call(&["COUPON.REVOKE", "ev", "alice"]), ":1\r\n");
    assert_eq!(raw.call(&["COUPON.REVOKE", "ev", "alice"]), ":0\r\n");
    assert_eq!(
        raw.call(&["COUPON.ISSUE", "ev", "carol"]),
        "*3\r\n$6\r\nISSUED\r\n:3\r\n:0\r\n"
    );
    assert_eq!(
        raw.call(&["COUPON.HOLDERS", "ev", "0", "10"]),
        "*2\r\n$1\r\n0\r\n*4\r\n$3\r\nbob\r\n:2\r\n$5\r\ncarol\r\n:3\r\n"
    );

    // The window is half-open: before START, NOTSTARTED; from END on, ENDED.
    let later = [
        "COUPON.CREATE",
        "later",
        "5",
        "PERUSER",
        "2",
        "START",
        YEAR_2100_MS,
    ];
    assert_eq!(raw.call(&later), "+OK\r\n");
    assert_eq!(
        raw.call(&["COUPON.ISSUE", "later", "alice"]),
        "*3\r\n$10\r\nNOTSTARTED\r\n$-1\r\n:5\r\n"
    );
    assert_eq!(
        raw.call(&["COUPON.CREATE", "over", "5", "START", "0", "END", "1"]),
        "+OK\r\n"
    );
    assert_eq!(
        raw.call(&["COUPON.ISSUE", "over", "alice"]),
        "*3\r\n$5\r\nENDED\r\n$-1\r\n:5\r\n"
    );
    let info = raw.call(&["COUPON.INFO", "later"]);
    assert!(
        info.contains(&format!("$5\r\nstart\r\n:{YEAR_2100_MS}\r\n")),
        "{info}"
    );
    assert!(info.contains("$7\r\nperuser\r\n:2\r\n") && info.ends_with("$7\r\npending\r\n"));
    assert!(raw
        .call(&["COUPON.INFO", "over"])
        .ends_with("$5\r\nended\r\n"));
}

#[test]
fn replies_in_resp3() {
    let (_dir, server) = start("coupon-resp3");
    let mut raw = server.raw();
    assert!(raw.call(&["HELLO", "3"]).starts_with('%'));
    assert_eq!(
        raw.call(&["COUPON.CREATE", "ev", "1", "END", YEAR_2100_MS]),
        "+OK\r\n"
    );
    assert_eq!(
        raw.call(&["COUPON.ISSUE", "ev", "alice"]),
        "*3\r\n$6\r\nISSUED\r\n:1\r\n:0\r\n"
    );
    assert_eq!(
        raw.call(&["COUPON.ISSUE", "ev", "bob"]),
        "*3\r\n$7\r\nSOLDOUT\r\n_\r\n:0\r\n"
    );
    assert_eq!(
        raw.call(&["COUPON.INFO", "ev"]),
        format!(
            "%8\r\n$5\r\ntotal\r\n:1\r\n$6\r\nissued\r\n:1\r\n$9\r\nremaining\r\n:0\r\n$7\r\nrevoked\r\n:0\r\n\
             $7\r\nperuser\r\n:1\r\n$5\r\nstart\r\n_\r\n$3\r\nend\r\n:{YEAR_2100_MS}\r\n$5\r\nstate\r\n$7\r\nsoldout\r\n"
        )
    );
    assert_eq!(
        raw.call(&["COUPON.HOLDERS", "ev", "0", "10"]),
        "*2\r\n$1\r\n0\r\n*2\r\n$5\r\nalice\r\n:1\r\n"
    );
    assert_eq!(
        raw.call(&["COUPON.ISSUE", "missing", "alice"]),
        "-ERR no such coupon event\r\n"
    );
}

#[test]
fn errors_and_types() {
    let (_dir, server) = start("coupon-errors");
    let mut raw = server.raw();
    assert_eq!(raw.call(&["COUPON.CREATE", "ev", "3"]), "+OK\r\n");
    let errors: &[(&[&str], &str)] = &[
        (
            &["COUPON.CREATE", "ev", "3"],
            "-ERR coupon event already exists\r\n",
        ),
        (
            &["COUPON.CREATE", "e2", "0"],
            "-ERR total must be between 1 and 10000000\r\n",
        ),
        (
            &["COUPON.CREATE", "e2", "-3"],
            "-ERR total must be between 1 and 10000000\r\n",
        ),
        (
            &["COUPON.CREATE", "e2", "x"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (
            &["COUPON.CREATE", "e2", "3", "PERUSER", "0"],
            "-ERR PERUSER must be between 1 and 1000\r\n",
        ),
        (
            &["COUPON.CREATE", "e2", "3", "PERUSER"],
            "-ERR syntax error\r\n",
        ),
        (
            &["COUPON.CREATE", "e2", "3", "BOGUS", "1"],
            "-ERR syntax error\r\n",
        ),
        (
            &["COUPON.CREATE", "e2", "3", "START", "5", "START", "6"],
            "-ERR syntax error\r\n",
        ),
        (
            &["COUPON.CREATE", "e2", "3", "START", "5", "END", "5"],
            "-ERR END must be after START\r\n",
        ),
        (
            &["COUPON.ISSUE", "ev"],
            "-ERR wrong number of arguments for 'coupon.issue' command\r\n",
        ),
        (&["COUPON.ISSUE", "ev", "u", "ID"], "-ERR syntax error\r\n"),
        (
            &["COUPON.ISSUE", "ev", "u", "NOPE", "r"],
            "-ERR syntax error\r\n",
        ),
        (
            &["COUPON.ISSUE", "nope", "u"],
            "-ERR no such coupon event\r\n",
        ),
        (
            &["COUPON.GET", "nope", "u"],
            "-ERR no such coupon event\r\n",
        ),
        (
            &["COUPON.REVOKE", "nope", "u"],
            "-ERR no such coupon event\r\n",
        ),
        (&["COUPON.INFO", "nope"], "-ERR no such coupon event\r\n"),
        (
            &["COUPON.HOLDERS", "nope", "0", "10"],
            "-ERR no such coupon event\r\n",
        ),
        (
            &["COUPON.HOLDERS", "ev", "x", "10"],
            "-ERR invalid cursor\r\n",
        ),
        (
            &["COUPON.HOLDERS", "ev", "0", "0"],
            "-ERR count must be between 1 and 10000\r\n",
        ),
        (
            &["COUPON.HOLDERS", "ev", "0", "10001"],
            "-ERR count must be between 1 and 10000\r\n",
        ),
    ];
    for (arguments, expected) in errors {
        assert_eq!(&raw.call(arguments), expected, "{arguments:?}");
    }
    let too_long_user = "u".repeat(257);
    assert!(raw
        .call(&["COUPON.ISSUE", "ev", &too_long_user])
        .starts_with("-ERR "));
    assert!(raw
        .call(&["COUPON.ISSUE", "ev", "u", "ID", &"r".repeat(65)])
        .starts_with("-ERR "));
    // Nothing above changed the event.
    assert!(raw
        .call(&["COUPON.INFO", "ev"])
        .contains("$6\r\nissued\r\n:0\r\n"));

    // WRONGTYPE both ways, and TYPE names the type.
    const WRONGTYPE: &str =
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    assert_eq!(raw.call(&["SET", "s", "x"]), "+OK\r\n");
    assert_eq!(raw.call(&["COUPON.ISSUE", "s", "u"]), WRONGTYPE);
    assert_eq!(raw.call(&["COUPON.INFO", "s"]), WRONGTYPE);
    assert_eq!(raw.call(&["COUPON.CREATE", "s", "3"]), WRONGTYPE);
    assert_eq!(raw.call(&["GET", "ev"]), WRONGTYPE);
    assert_eq!(raw.call(&["SADD", "ev", "m"]), WRONGTYPE);
    assert_eq!(raw.call(&["INCR", "ev"]), WRONGTYPE);
    assert_eq!(raw.call(&["TYPE", "ev"]), "+coupon\r\n");
    assert_eq!(raw.call(&["DEL", "ev"]), ":1\r\n");
    assert_eq!(
        raw.call(&["COUPON.INFO", "ev"]),
        "-ERR no such coupon event\r\n"
    );
}

/// 100 clients race for 1000 coupons among 5000 users: exactly 1000 are issued, numbered 1 to 1000, no
/// user holds two, and every acknowledged issue is what HOLDERS lists.
#[test]
fn a_rush_issues_exactly_the_total() {
    const CLIENTS: usize = 100;
    const REQUESTS_PER_CLIENT: usize = 60;
    const USERS: u64 = 5000;
    const TOTAL: usize = 1000;
    let (_dir, server) = start("coupon-rush");
    let mut connection = server.connection();
    let created: String = redis::cmd("COUPON.CREATE")
        .arg("rush")
        .arg(TOTAL)
        .query(&mut connection)
        .unwrap();
    assert_eq!(created, "OK");

    let barrier = Arc::new(Barrier::new(CLIENTS));
    let threads: Vec<_> = (0..CLIENTS as u64)
        .map(|client| {
            let barrier = Arc::clone(&barrier);
            let mut connection = server.connection();
            std::thread::spawn(move || {
                // Each client's users overlap the others', so some users race against themselves.
                let mut state = client.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut ledger = Vec::new();
                barrier.wait();
                for _ in 0..REQUESTS_PER_CLIENT {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let user = format!("user:{}", state % USERS);
                    let (status, number, remaining): (String, Option<u64>, u64) =
                        redis::cmd("COUPON.ISSUE")
                            .arg("rush")
                            .arg(&user)
                            .query(&mut connection)
                            .unwrap();
                    assert!(remaining <= TOTAL as u64);
                    ledger.push((status, user, number));
                }
                ledger
            })
        })
        .collect();
    let mut issued: HashMap<String, u64> = HashMap::new();
    let mut already = Vec::new();
    let mut sold_out = 0;
    for thread in threads {
        for (status, user, number) in thread.join().unwrap() {
            match status.as_str() {
                "ISSUED" => {
                    let previous = issued.insert(user.clone(), number.unwrap());
                    assert!(previous.is_none(), "{user} was issued twice");
                }
                "ALREADY" => already.push((user, number.unwrap())),
                "SOLDOUT" => {
                    assert_eq!(number, None);
                    sold_out += 1;
                }
                other => panic!("unexpected status {other}"),
            }
        }
    }
    assert_eq!(issued.len(), TOTAL);
    assert!(sold_out > 0, "the rush outlasted the stock");
    let numbers: HashSet<u64> = issued.values().copied().collect();
    assert_eq!(numbers, (1..=TOTAL as u64).collect());
    for (user, number) in already {
        assert_eq!(
            issued.get(&user),
            Some(&number),
            "ALREADY names the held number"
        );
    }

    // Walk HOLDERS in pages that don't divide the total.
    let mut listed = BTreeMap::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, page): (String, Vec<(String, u64)>) = redis::cmd("COUPON.HOLDERS")
            .arg("rush")
            .arg(&cursor)
            .arg(97)
            .query(&mut connection)
            .unwrap();
        for (user, number) in page {
            assert!(listed.insert(user, number).is_none(), "a user listed twice");
        }
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert_eq!(listed, issued.into_iter().collect());
}

/// An ID pins an ISSUED reply: repeats replay it without issuing again, also after kill -9; and a
/// restart gives identical INFO and HOLDERS.
#[test]
fn request_ids_and_restart() {
    let (_dir, mut server) = start("coupon-restart");
    let mut raw = server.raw();
    assert_eq!(
        raw.call(&["COUPON.CREATE", "ev", "5", "PERUSER", "2"]),
        "+OK\r\n"
    );
    let first = raw.call(&["COUPON.ISSUE", "ev", "alice", "ID", "req-1"]);
    assert_eq!(first, "*3\r\n$6\r\nISSUED\r\n:1\r\n:4\r\n");
    raw.call(&["COUPON.ISSUE", "ev", "bob"]);
    raw.call(&["COUPON.ISSUE", "ev", "alice"]);
    raw.call(&["COUPON.ISSUE", "ev", "carol"]);
    raw.call(&["COUPON.REVOKE", "ev", "bob"]);
    // The repeat replays the first reply (remaining 4, not today's value) and changes nothing.
    assert_eq!(
        raw.call(&["COUPON.ISSUE", "ev", "alice", "ID", "req-1"]),
        first
    );
    let info = raw.call(&["COUPON.INFO", "ev"]);
    let holders = raw.call(&["COUPON.HOLDERS", "ev", "0", "100"]);
    assert!(
        info.contains("$6\r\nissued\r\n:4\r\n$9\r\nremaining\r\n:2\r\n$7\r\nrevoked\r\n:1\r\n"),
        "{info}"
    );

    server.restart();
    let mut raw = server.raw();
    assert_eq!(raw.call(&["COUPON.INFO", "ev"]), info);
    assert_eq!(raw.call(&["COUPON.HOLDERS", "ev", "0", "100"]), holders);
    assert_eq!(
        raw.call(&["COUPON.ISSUE", "ev", "alice", "ID", "req-1"]),
        first
    );
    assert_eq!(raw.call(&["COUPON.INFO", "ev"]), info);
    assert_eq!(raw.call(&["TYPE", "ev"]), "+coupon\r\n");
    // Issuing continues where it stopped: the next number is 5.
    assert_eq!(
        raw.call(&["COUPON.ISSUE", "ev", "dave"]),
        "*3\r\n$6\r\nISSUED\r\n:5\r\n:1\r\n"
    );
}
