//! LIKE.* against the real binary: every reply shape and error in RESP2 and RESP3, concurrent likers,
//! paging while likes arrive, and identical counts and pages after kill -9.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Barrier};

use common::{start, RawClient};

const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

/// Walks a post's likers with LIKE.LIST from `cursor` to the end.
fn walk(
    connection: &mut redis::Connection,
    post: &str,
    mut cursor: u64,
    count: u64,
) -> Vec<String> {
    let mut users = Vec::new();
    loop {
        let (next, mut page): (u64, Vec<String>) = redis::cmd("LIKE.LIST")
            .arg(post)
            .arg(cursor)
            .arg(count)
            .query(connection)
            .unwrap();
        users.append(&mut page);
        if next == 0 {
            return users;
        }
        cursor = next;
    }
}

/// The reply shapes, identical in RESP2 and RESP3 except for nothing: LIKE.* answers arrays of integers
/// and bulk strings only.
fn check_replies(raw: &mut RawClient) {
    assert_eq!(raw.call(&["LIKE.ADD", "p", "1"]), "*2\r\n:1\r\n:1\r\n");
    assert_eq!(raw.call(&["LIKE.ADD", "p", "1"]), "*2\r\n:0\r\n:1\r\n");
    assert_eq!(raw.call(&["LIKE.ADD", "p", "alice"]), "*2\r\n:1\r\n:2\r\n");
    assert_eq!(raw.call(&["LIKE.ADD", "p", "3"]), "*2\r\n:1\r\n:3\r\n");
    assert_eq!(raw.call(&["LIKE.HAS", "p", "alice"]), ":1\r\n");
    assert_eq!(raw.call(&["LIKE.HAS", "p", "bob"]), ":0\r\n");
    assert_eq!(raw.call(&["LIKE.HAS", "missing", "bob"]), ":0\r\n");
    assert_eq!(raw.call(&["LIKE.ADD", "q", "alice"]), "*2\r\n:1\r\n:1\r\n");
    assert_eq!(
        raw.call(&["LIKE.MHAS", "alice", "p", "missing", "q"]),
        "*3\r\n:1\r\n:0\r\n:1\r\n"
    );
    assert_eq!(
        raw.call(&["LIKE.COUNT", "p", "missing", "q"]),
        "*3\r\n:3\r\n:0\r\n:1\r\n"
    );
    // Newest first; the cursor is a bulk string, "0" once the walk is over.
    let first = raw.call(&["LIKE.LIST", "p", "0", "2"]);
    assert!(first.starts_with("*2\r\n$"), "{first}");
    assert!(
        first.ends_with("*2\r\n$1\r\n3\r\n$5\r\nalice\r\n"),
        "{first}"
    );
    let cursor = first.split("\r\n").nth(2).unwrap().to_string();
    assert_ne!(cursor, "0");
    assert_eq!(
        raw.call(&["LIKE.LIST", "p", &cursor, "2"]),
        "*2\r\n$1\r\n0\r\n*1\r\n$1\r\n1\r\n"
    );
    assert_eq!(
        raw.call(&["LIKE.LIST", "missing", "0", "10"]),
        "*2\r\n$1\r\n0\r\n*0\r\n"
    );
    assert_eq!(
        raw.call(&["LIKE.REMOVE", "p", "alice"]),
        "*2\r\n:1\r\n:2\r\n"
    );
    assert_eq!(
        raw.call(&["LIKE.REMOVE", "p", "alice"]),
        "*2\r\n:0\r\n:2\r\n"
    );
    assert_eq!(
        raw.call(&["LIKE.REMOVE", "missing", "x"]),
        "*2\r\n:0\r\n:0\r\n"
    );
    assert_eq!(raw.call(&["TYPE", "p"]), "+likes\r\n");
    // A post left empty is deleted.
    assert_eq!(
        raw.call(&["LIKE.REMOVE", "q", "alice"]),
        "*2\r\n:1\r\n:0\r\n"
    );
    assert_eq!(raw.call(&["EXISTS", "q"]), ":0\r\n");
    assert_eq!(raw.call(&["TYPE", "q"]), "+none\r\n");
}

#[test]
fn replies_in_resp2() {
    let (_dir, server) = start("likes-resp2");
    check_replies(&mut server.raw());
}

#[test]
fn replies_in_resp3() {
    let (_dir, server) = start("likes-resp3");
    let mut raw = server.raw();
    assert!(raw.call(&["HELLO", "3"]).starts_with('%'));
    check_replies(&mut raw);
}

#[test]
fn errors_and_types() {
    let (_dir, server) = start("likes-errors");
    let mut raw = server.raw();
    assert_eq!(raw.call(&["LIKE.ADD", "p", "1"]), "*2\r\n:1\r\n:1\r\n");
    assert_eq!(raw.call(&["SADD", "set", "m"]), ":1\r\n");
    let long_user = "x".repeat(257);
    let errors: &[(&[&str], &str)] = &[
        (
            &["LIKE.ADD", "p", &long_user],
            "-ERR user id longer than 256 bytes\r\n",
        ),
        (
            &["LIKE.LIST", "p", "0", "0"],
            "-ERR count must be between 1 and 1000\r\n",
        ),
        (
            &["LIKE.LIST", "p", "0", "-1"],
            "-ERR count must be between 1 and 1000\r\n",
        ),
        (
            &["LIKE.LIST", "missing", "0", "1001"],
            "-ERR count must be between 1 and 1000\r\n",
        ),
        (
            &["LIKE.LIST", "p", "0", "x"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (&["LIKE.LIST", "p", "-1", "10"], "-ERR invalid cursor\r\n"),
        (
            &["LIKE.ADD", "p"],
            "-ERR wrong number of arguments for 'like.add' command\r\n",
        ),
        (
            &["LIKE.ADD", "p", "1", "2"],
            "-ERR wrong number of arguments for 'like.add' command\r\n",
        ),
        (
            &["LIKE.MHAS", "1"],
            "-ERR wrong number of arguments for 'like.mhas' command\r\n",
        ),
        (
            &["LIKE.COUNT"],
            "-ERR wrong number of arguments for 'like.count' command\r\n",
        ),
        (
            &["LIKE.LIST", "p", "0"],
            "-ERR wrong number of arguments for 'like.list' command\r\n",
        ),
        (&["LIKE.ADD", "set", "1"], WRONGTYPE),
        (&["LIKE.REMOVE", "set", "1"], WRONGTYPE),
        (&["LIKE.HAS", "set", "1"], WRONGTYPE),
        (&["LIKE.MHAS", "1", "p", "set"], WRONGTYPE),
        (&["LIKE.COUNT", "p", "set"], WRONGTYPE),
        (&["LIKE.LIST", "set", "0", "10"], WRONGTYPE),
        (&["SADD", "p", "1"], WRONGTYPE),
        (&["GET", "p"], WRONGTYPE),
        (&["STOCK.INFO", "p"], WRONGTYPE),
        (&["QUEUE.LEN", "p"], WRONGTYPE),
        (&["CL.THROTTLE", "p", "1", "1", "1"], WRONGTYPE),
    ];
    for (arguments, expected) in errors {
        assert_eq!(&raw.call(arguments), expected, "{arguments:?}");
    }
    assert_eq!(
        raw.call(&["LIKE.ADD", "new", &long_user]),
        "-ERR user id longer than 256 bytes\r\n"
    );
    assert_eq!(
        raw.call(&["EXISTS", "new"]),
        ":0\r\n",
        "a refused like creates nothing"
    );
    assert_eq!(raw.call(&["LIKE.COUNT", "p"]), "*1\r\n:1\r\n");
    assert_eq!(raw.call(&["TYPE", "set"]), "+set\r\n");
}

/// 10 clients like overlapping ranges of users: the count is the number of distinct users, and exactly
/// one client heard `added = 1` for each.
#[test]
fn concurrent_likes_count_distinct_users() {
    const CLIENTS: usize = 10;
    const USERS_PER_CLIENT: usize = 300;
    const STRIDE: usize = 100;
    let (_dir, server) = start("likes-concurrent");
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let barrier = Arc::clone(&barrier);
            let mut connection = server.connection();
            std::thread::spawn(move || {
                barrier.wait();
                let mut added = 0;
                for user in client * STRIDE..client * STRIDE + USERS_PER_CLIENT {
                    let (was_added, _count): (u64, u64) = redis::cmd("LIKE.ADD")
                        .arg("post")
                        .arg(user)
                        .query(&mut connection)
                        .unwrap();
                    added += was_added;
                }
                added
            })
        })
        .collect();
    let added: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let distinct = ((CLIENTS - 1) * STRIDE + USERS_PER_CLIENT) as u64;
    assert_eq!(added, distinct);
    let mut connection = server.connection();
    let counts: Vec<u64> = redis::cmd("LIKE.COUNT")
        .arg("post")
        .query(&mut connection)
        .unwrap();
    assert_eq!(counts, [distinct]);
    let listed = walk(&mut connection, "post", 0, 1000);
    let unique: HashSet<&String> = listed.iter().collect();
    assert_eq!(
        (listed.len(), unique.len()),
        (distinct as usize, distinct as usize)
    );
}

/// A walk with LIKE.LIST while another client keeps liking lists every like present at its start exactly
/// once (the new ones come after the walk's first cursor, so it does not list them).
#[test]
fn paging_while_likes_arrive_lists_each_original_like_once() {
    const ORIGINAL: usize = 3_000;
    let (_dir, server) = start("likes-paging");
    let mut connection = server.connection();
    let mut pipeline = redis::pipe();
    for user in 0..ORIGINAL {
        pipeline.cmd("LIKE.ADD").arg("post").arg(user).ignore();
    }
    let _: () = pipeline.query(&mut connection).unwrap();

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let walk_starts = Arc::new(Barrier::new(2));
    let liker = {
        let stop = Arc::clone(&stop);
        let walk_starts = Arc::clone(&walk_starts);
        let mut connection = server.connection();
        std::thread::spawn(move || {
            let mut user = 1_000_000u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _: (u64, u64) = redis::cmd("LIKE.ADD")
                    .arg("post")
                    .arg(user)
                    .query(&mut connection)
                    .unwrap();
                if user == 1_000_000 {
                    walk_starts.wait();
                }
                user += 1;
            }
            user - 1_000_000
        })
    };
    // The walk starts after the first new like, so a few are listed on its first page; from then on
    // every like is new to the walk.
    walk_starts.wait();
    let mut listed = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, mut page): (u64, Vec<String>) = redis::cmd("LIKE.LIST")
            .arg("post")
            .arg(cursor)
            .arg(37)
            .query(&mut connection)
            .unwrap();
        listed.append(&mut page);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let added_meanwhile = liker.join().unwrap();
    assert!(added_meanwhile > 0, "likes arrived during the walk");
    // Likes that arrived before the walk's first page may head it; after them come the originals, each once,
    // newest first, and nothing that arrived after the walk began.
    let first_original = listed
        .iter()
        .position(|user| user.len() < 7)
        .expect("originals listed");
    assert!(listed[..first_original]
        .iter()
        .all(|user| user.parse::<u64>().unwrap() >= 1_000_000));
    let expected: Vec<String> = (0..ORIGINAL).rev().map(|user| user.to_string()).collect();
    assert_eq!(
        listed[first_original..],
        expected,
        "every original like once, newest first"
    );
}

/// Counts, pages and even a walk's cursor survive kill -9.
#[test]
fn survives_kill_9() {
    let (_dir, mut server) = start("likes-restart");
    let mut connection = server.connection();
    let mut pipeline = redis::pipe();
    for user in 0..500 {
        pipeline.cmd("LIKE.ADD").arg("a").arg(user).ignore();
        if user % 3 == 0 {
            pipeline
                .cmd("LIKE.ADD")
                .arg("b")
                .arg(format!("user-{user}"))
                .ignore();
        }
    }
    for user in (0..500).step_by(7) {
        pipeline.cmd("LIKE.REMOVE").arg("a").arg(user).ignore();
    }
    pipeline.cmd("LIKE.ADD").arg("c").arg("solo").ignore();
    pipeline.cmd("LIKE.REMOVE").arg("c").arg("solo").ignore();
    let _: () = pipeline.query(&mut connection).unwrap();
    let counts = |connection: &mut redis::Connection| -> Vec<u64> {
        redis::cmd("LIKE.COUNT")
            .arg("a")
            .arg("b")
            .arg("c")
            .query(connection)
            .unwrap()
    };
    let counts_before = counts(&mut connection);
    assert_eq!(counts_before, [500 - 72, 167, 0]);
    let (cursor, first_page): (u64, Vec<String>) = redis::cmd("LIKE.LIST")
        .arg("a")
        .arg(0)
        .arg(100)
        .query(&mut connection)
        .unwrap();
    let rest_before = walk(&mut connection, "a", cursor, 33);
    let b_before = walk(&mut connection, "b", 0, 1000);

    server.restart();
    let mut connection = server.connection();
    assert_eq!(counts(&mut connection), counts_before);
    let (cursor_after, first_page_after): (u64, Vec<String>) = redis::cmd("LIKE.LIST")
        .arg("a")
        .arg(0)
        .arg(100)
        .query(&mut connection)
        .unwrap();
    assert_eq!((cursor_after, first_page_after), (cursor, first_page));
    assert_eq!(walk(&mut connection, "a", cursor, 33), rest_before);
    assert_eq!(walk(&mut connection, "b", 0, 1000), b_before);
    let exists: u64 = redis::cmd("EXISTS")
        .arg("c")
        .query(&mut connection)
        .unwrap();
    assert_eq!(exists, 0);
}
