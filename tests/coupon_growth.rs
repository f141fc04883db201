//! A coupon grown past many resizes of its holder table, against the real binary: every holder and number
//! is what the clients were told, through a compaction (the coupon is large enough to be serialized off the
//! loop) and a kill -9 after more issues and revokes on top of the snapshot.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{info_field, start, wait_until, RawClient};

/// More holders than `SNAPSHOT_SHARE_ELEMENTS_MIN` (65,536), so the compaction hands the coupon to the
/// collection serializer, and enough for the holder table to resize sixteen times.
const HOLDERS: u64 = 70_000;
/// Commands sent before their replies are read, as a pipelining client does.
const PIPELINE: usize = 1_000;

/// What the clients were told: number -> user for the numbers still held, and each user's numbers.
#[derive(Default)]
struct Told {
    held: BTreeMap<u64, String>,
    numbers_by_user: HashMap<String, Vec<u64>>,
}

/// Sends `commands` pipelined and applies each reply to `told`: an `ISSUED` adds its number, a revoke
/// removes the user's numbers (the count must match).
fn run(raw: &mut RawClient, commands: &[Vec<String>], told: &mut Told) {
    for batch in commands.chunks(PIPELINE) {
        for command in batch {
            let arguments: Vec<&str> = command.iter().map(String::as_str).collect();
            raw.command(&arguments);
        }
        for command in batch {
            let reply = raw.read_reply_string();
            let user = command[2].clone();
            match command[0].as_str() {
                "COUPON.ISSUE" => {
                    let number: u64 = reply
                        .strip_prefix("*3\r\n$6\r\nISSUED\r\n:")
                        .and_then(|rest| rest.split("\r\n").next())
                        .and_then(|number| number.parse().ok())
                        .unwrap_or_else(|| panic!("{command:?} got {reply:?}"));
                    assert!(
                        told.held.insert(number, user.clone()).is_none(),
                        "number {number} twice"
                    );
                    told.numbers_by_user.entry(user).or_default().push(number);
                }
                "COUPON.REVOKE" => {
                    let numbers = told.numbers_by_user.remove(&user).unwrap_or_default();
                    for number in &numbers {
                        told.held.remove(number);
                    }
                    assert_eq!(reply, format!(":{}\r\n", numbers.len()), "{command:?}");
                }
                other => unreachable!("{other}"),
            }
        }
    }
}

/// Every user's first coupon, every tenth user's second, and every thirteenth user's revoke.
fn commands(users: std::ops::Range<u64>) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    for user in users {
        let name = if user % 7 == 0 {
            format!("a-user-name-longer-than-thirty-bytes:{user}")
        } else {
            format!("user:{user:012}")
        };
        let command = |verb: &str| vec![verb.to_string(), "ev".to_string(), name.clone()];
        commands.push(command("COUPON.ISSUE"));
        if user % 10 == 0 {
            commands.push(command("COUPON.ISSUE"));
        }
        if user % 13 == 0 {
            commands.push(command("COUPON.REVOKE"));
        }
    }
    commands
}

/// The whole COUPON.HOLDERS walk, as number -> user.
fn holders(raw: &mut RawClient) -> BTreeMap<u64, String> {
    let mut listed = BTreeMap::new();
    let mut cursor = "0".to_string();
    loop {
        raw.command(&["COUPON.HOLDERS", "ev", &cursor, "10000"]);
        let reply = raw.read_reply_string();
        // [next-cursor, [user, number, ...]] with a bulk cursor and bulk users.
        let mut lines = reply.split("\r\n");
        assert_eq!(lines.next(), Some("*2"));
        lines.next(); // the cursor's length
        let next = lines.next().expect("a cursor").to_string();
        let pairs: usize = lines
            .next()
            .and_then(|header| header.strip_prefix('*'))
            .and_then(|count| count.parse().ok())
            .expect("the pairs' array");
        for _ in 0..pairs / 2 {
            lines.next(); // the user's length
            let user = lines.next().expect("a user").to_string();
            let number = lines
                .next()
                .and_then(|number| number.strip_prefix(':'))
                .and_then(|number| number.parse().ok())
                .expect("a number");
            assert!(listed.insert(number, user).is_none(), "number listed twice");
        }
        if next == "0" {
            return listed;
        }
        cursor = next;
    }
}

#[test]
fn a_coupon_grown_past_many_resizes_keeps_every_holder_through_compaction_and_kill() {
    let (_dir, mut server) = start("coupon-growth");
    let mut raw = server.raw();
    assert_eq!(
        raw.call(&["COUPON.CREATE", "ev", "1000000", "PERUSER", "2"]),
        "+OK\r\n"
    );
    let mut told = Told::default();
    run(&mut raw, &commands(0..HOLDERS), &mut told);
    assert_eq!(holders(&mut raw), told.held);

    let rewrites = info_field(&mut raw, "aof_rewrites");
    assert_eq!(
        raw.call(&["BGREWRITEAOF"]),
        "+Background append only file rewriting started\r\n"
    );
    wait_until("the compaction to finish", || {
        info_field(&mut raw, "aof_rewrite_in_progress") == 0
            && info_field(&mut raw, "aof_rewrites") > rewrites
    });
    // More on top of the snapshot, in the log only: new holders, and old ones given back.
    run(&mut raw, &commands(HOLDERS..HOLDERS + 5_000), &mut told);
    let revokes: Vec<Vec<String>> = (1..200)
        .map(|user| {
            let name = format!("user:{:012}", user * 3 + 2);
            vec!["COUPON.REVOKE".to_string(), "ev".to_string(), name]
        })
        .collect();
    run(&mut raw, &revokes, &mut told);
    let info = raw.call(&["COUPON.INFO", "ev"]);
    assert_eq!(holders(&mut raw), told.held);

    server.restart();
    let mut raw = server.raw();
    assert_eq!(raw.call(&["COUPON.INFO", "ev"]), info);
    assert_eq!(holders(&mut raw), told.held);
    // A holder of two, and a user whose coupon was revoked, answer as before.
    assert_eq!(
        raw.call(&["COUPON.GET", "ev", "user:000000000010"])
            .matches(':')
            .count(),
        2
    );
    assert_eq!(
        raw.call(&["COUPON.GET", "ev", "user:000000000013"]),
        "*0\r\n"
    );
}
