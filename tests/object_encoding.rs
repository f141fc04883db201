//! OBJECT against the real binary, and a set's encodings (intset, listpack, hashtable): each transition
//! Redis 7.2 makes, CONFIG GET/SET of the thresholds, the same replies in every encoding, and the
//! encodings rebuilt by replay, by a snapshot and by a start with other thresholds.
mod common;

use std::collections::BTreeSet;

use common::{Server, TempDir};

fn encoding(connection: &mut redis::Connection, key: &str) -> Option<String> {
    redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(key)
        .query(connection)
        .unwrap()
}

fn sadd(connection: &mut redis::Connection, key: &str, members: &[String]) -> i64 {
    redis::cmd("SADD")
        .arg(key)
        .arg(members)
        .query(connection)
        .unwrap()
}

fn members(connection: &mut redis::Connection, key: &str) -> BTreeSet<String> {
    redis::cmd("SMEMBERS").arg(key).query(connection).unwrap()
}

fn integers(range: std::ops::Range<i64>) -> Vec<String> {
    range.map(|number| number.to_string()).collect()
}

fn words(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|number| format!("member:{number}")).collect()
}

/// The encoding a snapshot's members load as under the default thresholds: what SADD of them all makes,
/// whatever their order.
fn encoding_loaded_from(members: &BTreeSet<String>) -> &'static str {
    let canonical_integer = |member: &String| {
        member
            .parse::<i64>()
            .is_ok_and(|number| number.to_string() == *member)
    };
    if members.len() <= 512 && members.iter().all(canonical_integer) {
        "intset"
    } else if members.len() <= 128 && members.iter().all(|member| member.len() <= 64) {
        "listpack"
    } else {
        "hashtable"
    }
}

#[test]
fn object_answers_for_every_type_like_redis() {
    let directory = TempDir::new("object-types");
    let server = Server::start(directory.path(), &[]);
    let mut raw = server.raw();
    for (command, key, expected) in [
        (vec!["SET", "number", "12345"], "number", "int"),
        (
            vec!["SET", "negative", "-9223372036854775808"],
            "negative",
            "int",
        ),
        (vec!["SET", "padded", "007"], "padded", "embstr"),
        (vec!["SET", "short", "hello"], "short", "embstr"),
        (vec!["SET", "edge", &"e".repeat(44)], "edge", "embstr"),
        (vec!["SET", "long", &"l".repeat(45)], "long", "raw"),
        (vec!["SADD", "integers", "1", "2"], "integers", "intset"),
        (vec!["SADD", "words", "a", "b"], "words", "listpack"),
        (vec!["COUPON.CREATE", "event", "10"], "event", "hashtable"),
        (vec!["STOCK.SET", "sku", "10"], "sku", "hashtable"),
        (vec!["LIKE.ADD", "post", "user"], "post", "packedindex"),
        (vec!["QUEUE.JOIN", "room", "user"], "room", "fenwickline"),
        (
            vec!["CL.THROTTLE", "limiter", "10", "5", "60"],
            "limiter",
            "int",
        ),
    ] {
        raw.call(&command);
        assert_eq!(
            raw.call(&["OBJECT", "ENCODING", key]),
            format!("${}\r\n{expected}\r\n", expected.len()),
            "{command:?}"
        );
        assert_eq!(raw.call(&["OBJECT", "REFCOUNT", key]), ":1\r\n");
        assert!(raw.call(&["OBJECT", "FREQ", key]).starts_with(
            "-ERR An LFU maxmemory policy is not selected, access frequency not tracked."
        ));
        assert!(raw
            .call(&["OBJECT", "IDLETIME", key])
            .starts_with("-ERR An LFU maxmemory policy is selected, idle time not tracked."));
    }
    for subcommand in ["ENCODING", "REFCOUNT", "FREQ", "IDLETIME", "encoding"] {
        assert_eq!(raw.call(&["OBJECT", subcommand, "missing"]), "$-1\r\n");
    }
    assert_eq!(
        raw.call(&["OBJECT", "NOPE", "number"]),
        "-ERR unknown subcommand 'NOPE'. Try OBJECT HELP.\r\n"
    );
    assert_eq!(
        raw.call(&["OBJECT", "ENCODING"]),
        "-ERR wrong number of arguments for 'object|encoding' command\r\n"
    );
    assert_eq!(
        raw.call(&["OBJECT", "help", "extra"]),
        "-ERR wrong number of arguments for 'object|help' command\r\n"
    );
    assert_eq!(
        raw.call(&["OBJECT"]),
        "-ERR wrong number of arguments for 'object' command\r\n"
    );
    let help = raw.call(&["OBJECT", "HELP"]);
    assert!(help.starts_with(
        "*15\r\n+OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n+ENCODING <key>\r\n"
    ));
    assert!(
        help.ends_with("+HELP\r\n+    Prints this help.\r\n"),
        "{help}"
    );
    // APPEND changes the value; the rule applies to the value as it is.
    raw.call(&["APPEND", "number", "6"]);
    assert_eq!(raw.call(&["OBJECT", "ENCODING", "number"]), "$3\r\nint\r\n");
    raw.call(&["APPEND", "number", "x"]);
    assert_eq!(
        raw.call(&["OBJECT", "ENCODING", "number"]),
        "$6\r\nembstr\r\n"
    );
}

#[test]
fn config_get_and_set_the_set_thresholds() {
    let directory = TempDir::new("object-config");
    let server = Server::start(directory.path(), &[]);
    let mut connection = server.connection();
    let all: Vec<(String, String)> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("set-max-*")
        .query(&mut connection)
        .unwrap();
    assert_eq!(
        all.into_iter().collect::<BTreeSet<_>>(),
        [
            ("set-max-intset-entries", "512"),
            ("set-max-listpack-entries", "128"),
            ("set-max-listpack-value", "64")
        ]
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .into()
    );
    let mut raw = server.raw();
    assert_eq!(
        raw.call(&["CONFIG", "SET", "set-max-intset-entries", "abc"]),
        "-ERR CONFIG SET failed (possibly related to argument 'set-max-intset-entries') - argument couldn't be parsed into an integer\r\n"
    );
    assert_eq!(
        raw.call(&["CONFIG", "SET", "set-max-listpack-entries", "8193"]),
        "-ERR CONFIG SET failed (possibly related to argument 'set-max-listpack-entries') - argument must be between 0 and 8192 inclusive\r\n"
    );
    assert_eq!(
        raw.call(&["CONFIG", "SET", "set-max-listpack-value", "1025"]),
        "-ERR CONFIG SET failed (possibly related to argument 'set-max-listpack-value') - argument must be between 0 and 1024 inclusive\r\n"
    );
    // A bad pair refuses the whole command: the good pair before it is not applied.
    assert!(raw
        .call(&[
            "CONFIG",
            "SET",
            "set-max-intset-entries",
            "3",
            "set-max-listpack-value",
            "x"
        ])
        .starts_with("-ERR"));
    assert_eq!(
        raw.call(&["CONFIG", "GET", "set-max-intset-entries"]),
        "*2\r\n$22\r\nset-max-intset-entries\r\n$3\r\n512\r\n"
    );
    assert_eq!(
        raw.call(&[
            "CONFIG",
            "SET",
            "set-max-intset-entries",
            "3",
            "set-max-listpack-entries",
            "2"
        ]),
        "+OK\r\n"
    );
    sadd(&mut connection, "small", &integers(0..3));
    assert_eq!(encoding(&mut connection, "small").unwrap(), "intset");
    sadd(&mut connection, "small", &integers(3..4));
    assert_eq!(encoding(&mut connection, "small").unwrap(), "hashtable");
    sadd(&mut connection, "pair", &words(0..2));
    assert_eq!(encoding(&mut connection, "pair").unwrap(), "listpack");
    sadd(&mut connection, "pair", &words(2..3));
    assert_eq!(encoding(&mut connection, "pair").unwrap(), "hashtable");
}

/// Each transition under the default thresholds, with the replies of every set command checked against
/// the members the test added, then a kill and replay, a snapshot and restart, and a start with other
/// thresholds.
#[test]
fn sets_convert_at_the_thresholds_and_restarts_rebuild_their_encodings() {
    let directory = TempDir::new("object-sets");
    let mut server = Server::start(directory.path(), &[]);
    let mut connection = server.connection();

    // intset up to 512 integers, then a hashtable.
    assert_eq!(sadd(&mut connection, "integers", &integers(-256..256)), 512);
    assert_eq!(encoding(&mut connection, "integers").unwrap(), "intset");
    assert_eq!(
        sadd(&mut connection, "big-integers", &integers(0..513)),
        513
    );
    assert_eq!(
        encoding(&mut connection, "big-integers").unwrap(),
        "hashtable"
    );
    assert_eq!(sadd(&mut connection, "growing", &integers(0..512)), 512);
    assert_eq!(encoding(&mut connection, "growing").unwrap(), "intset");
    assert_eq!(sadd(&mut connection, "growing", &integers(512..513)), 1);
    assert_eq!(encoding(&mut connection, "growing").unwrap(), "hashtable");

    // An intset given a word: a listpack while under 128 members.
    sadd(&mut connection, "mixed", &integers(0..10));
    assert_eq!(encoding(&mut connection, "mixed").unwrap(), "intset");
    sadd(&mut connection, "mixed", &["word".to_string()]);
    assert_eq!(encoding(&mut connection, "mixed").unwrap(), "listpack");
    // "007" is not a canonical integer: a word.
    sadd(&mut connection, "padded", &["007".to_string()]);
    assert_eq!(encoding(&mut connection, "padded").unwrap(), "listpack");

    // listpack up to 128 members of up to 64 bytes, then a hashtable.
    assert_eq!(sadd(&mut connection, "words", &words(0..128)), 128);
    assert_eq!(encoding(&mut connection, "words").unwrap(), "listpack");
    sadd(&mut connection, "words", &words(128..129));
    assert_eq!(encoding(&mut connection, "words").unwrap(), "hashtable");
    sadd(&mut connection, "long", &["x".repeat(64)]);
    assert_eq!(encoding(&mut connection, "long").unwrap(), "listpack");
    sadd(&mut connection, "long", &["y".repeat(65)]);
    assert_eq!(encoding(&mut connection, "long").unwrap(), "hashtable");
    // Removals never convert back.
    redis::cmd("SREM")
        .arg("words")
        .arg(words(1..129))
        .query::<i64>(&mut connection)
        .unwrap();
    assert_eq!(encoding(&mut connection, "words").unwrap(), "hashtable");

    // The same replies in every encoding.
    let cases: [(&str, Vec<String>); 3] = [
        ("integers", integers(-256..256)),
        ("mixed", {
            let mut all = integers(0..10);
            all.push("word".to_string());
            all
        }),
        ("big-integers", integers(0..513)),
    ];
    for (key, added) in &cases {
        let expected: BTreeSet<String> = added.iter().cloned().collect();
        assert_eq!(members(&mut connection, key), expected, "{key}");
        let count: usize = redis::cmd("SCARD").arg(key).query(&mut connection).unwrap();
        assert_eq!(count, expected.len());
        let present: Vec<bool> = redis::cmd("SMISMEMBER")
            .arg(key)
            .arg(&added[0])
            .arg("absent")
            .arg("-1")
            .arg("1000")
            .query(&mut connection)
            .unwrap();
        assert_eq!(
            present,
            [
                true,
                false,
                expected.contains("-1"),
                expected.contains("1000")
            ]
        );
        let is_member: bool = redis::cmd("SISMEMBER")
            .arg(key)
            .arg(added.last().unwrap())
            .query(&mut connection)
            .unwrap();
        assert!(is_member);
        // SSCAN to the end returns every member.
        let mut cursor = 0u64;
        let mut scanned = BTreeSet::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SSCAN")
                .arg(key)
                .arg(cursor)
                .arg("COUNT")
                .arg(50)
                .query(&mut connection)
                .unwrap();
            scanned.extend(batch);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(scanned, expected, "{key}");
        let matched: (u64, Vec<String>) = redis::cmd("SSCAN")
            .arg(key)
            .arg(0)
            .arg("MATCH")
            .arg("1?")
            .arg("COUNT")
            .arg(100_000)
            .query(&mut connection)
            .unwrap();
        let matching: BTreeSet<String> = expected
            .iter()
            .filter(|member| member.len() == 2 && member.starts_with('1'))
            .cloned()
            .collect();
        assert_eq!(matched.1.into_iter().collect::<BTreeSet<_>>(), matching);
        let random: Vec<String> = redis::cmd("SRANDMEMBER")
            .arg(key)
            .arg(5)
            .query(&mut connection)
            .unwrap();
        assert_eq!(random.iter().collect::<BTreeSet<_>>().len(), 5);
        assert!(random.iter().all(|member| expected.contains(member)));
        let repeats: Vec<String> = redis::cmd("SRANDMEMBER")
            .arg(key)
            .arg(-20)
            .query(&mut connection)
            .unwrap();
        assert_eq!(repeats.len(), 20);
        assert!(repeats.iter().all(|member| expected.contains(member)));
        let popped: Vec<String> = redis::cmd("SPOP")
            .arg(key)
            .arg(3)
            .query(&mut connection)
            .unwrap();
        assert_eq!(popped.len(), 3);
        let left = members(&mut connection, key);
        assert_eq!(left.len(), expected.len() - 3);
        assert!(popped
            .iter()
            .all(|member| expected.contains(member) && !left.contains(member)));
    }

    let keys = [
        "integers",
        "big-integers",
        "growing",
        "mixed",
        "padded",
        "words",
        "long",
    ];
    let snapshot_of = |connection: &mut redis::Connection| {
        keys.map(|key| (encoding(connection, key).unwrap(), members(connection, key)))
    };
    let before = snapshot_of(&mut connection);

    // Replay of the log alone rebuilds the same encodings and members.
    server.restart();
    let mut connection = server.connection();
    assert_eq!(snapshot_of(&mut connection), before);

    // A snapshot (members only) plus a log tail: the loader picks the encoding from the members, so a
    // hashtable that shrank under the thresholds loads compact, as in Redis.
    let saved: String = redis::cmd("SAVE").query(&mut connection).unwrap();
    assert_eq!(saved, "OK");
    sadd(&mut connection, "after", &integers(0..3));
    server.restart();
    let mut connection = server.connection();
    let after = snapshot_of(&mut connection);
    for (index, key) in keys.iter().enumerate() {
        assert_eq!(after[index].1, before[index].1, "{key} members");
        // The loader picks from the members alone: "words" (a hashtable emptied to one member) loads
        // as a listpack, "big-integers" (513 integers less 3 popped) as an intset, and "mixed" as an
        // intset if SPOP happened to take its one word.
        let expected = encoding_loaded_from(&after[index].1);
        assert_eq!(after[index].0, expected, "{key} encoding");
    }
    assert_eq!(encoding(&mut connection, "after").unwrap(), "intset");

    // A start with other thresholds: the snapshot's sets load as those thresholds say, the tail's SADDs
    // replay under them too.
    drop(connection);
    server.kill();
    let mut server = Server::start(
        directory.path(),
        &[
            "--set-max-intset-entries",
            "2",
            "--set-max-listpack-entries",
            "4",
        ],
    );
    let mut connection = server.connection();
    assert_eq!(encoding(&mut connection, "integers").unwrap(), "hashtable");
    // SADD of 3 integers past set-max-intset-entries 2 makes a listpack, as Redis's setTypeCreate does.
    assert_eq!(encoding(&mut connection, "after").unwrap(), "listpack");
    assert_eq!(encoding(&mut connection, "padded").unwrap(), "listpack");
    assert_eq!(encoding(&mut connection, "words").unwrap(), "listpack");
    let all: Vec<(String, String)> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("set-max-intset-entries")
        .query(&mut connection)
        .unwrap();
    assert_eq!(
        all,
        [("set-max-intset-entries".to_string(), "2".to_string())]
    );
    for (index, key) in keys.iter().enumerate() {
        assert_eq!(members(&mut connection, key), before[index].1, "{key}");
    }
    server.kill();
}
