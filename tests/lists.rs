//! Lists against the real binary: the `redis` crate's own list API in RESP2 and RESP3, the exact reply bytes
//! where the protocols differ, and the same lists after kill -9 and a restart.

mod common;

use std::num::NonZeroUsize;

use redis::{Commands, Direction, LposOptions};

use common::{start, RawClient};

/// The list API of the `redis` crate, run on `connection` (either protocol): the values it hands back.
fn exercise_the_client_api(connection: &mut redis::Connection) {
    let length: usize = connection.rpush("jobs", &["a", "b", "c"]).unwrap();
    assert_eq!(length, 3);
    let length: usize = connection.lpush("jobs", &["z", "y"]).unwrap();
    assert_eq!(length, 5);
    let all: Vec<String> = connection.lrange("jobs", 0, -1).unwrap();
    assert_eq!(all, ["y", "z", "a", "b", "c"]);
    assert_eq!(connection.llen::<_, usize>("jobs").unwrap(), 5);
    assert_eq!(connection.lindex::<_, String>("jobs", -1).unwrap(), "c");
    assert_eq!(
        connection.lindex::<_, Option<String>>("jobs", 10).unwrap(),
        None
    );
    let () = connection.lset("jobs", 0, "first").unwrap();
    let length: i64 = connection.linsert_after("jobs", "a", "a2").unwrap();
    assert_eq!(length, 6);
    let missing_pivot: i64 = connection.linsert_before("jobs", "nope", "x").unwrap();
    assert_eq!(missing_pivot, -1);
    let position: Option<usize> = connection
        .lpos("jobs", "a2", LposOptions::default())
        .unwrap();
    assert_eq!(position, Some(3));
    let positions: Vec<usize> = connection
        .lpos("jobs", "a", LposOptions::default().count(0))
        .unwrap();
    assert_eq!(positions, [2]);
    assert_eq!(connection.lpop::<_, String>("jobs", None).unwrap(), "first");
    let popped: Vec<String> = connection.rpop("jobs", NonZeroUsize::new(2)).unwrap();
    assert_eq!(popped, ["c", "b"]);
    let nothing: Option<String> = connection.lpop("missing", None).unwrap();
    assert_eq!(nothing, None);
    let nothing: Option<Vec<String>> = connection.lpop("missing", NonZeroUsize::new(2)).unwrap();
    assert_eq!(nothing, None);
    let moved: String = connection
        .lmove("jobs", "done", Direction::Left, Direction::Right)
        .unwrap();
    assert_eq!(moved, "z");
    let moved: String = connection.rpoplpush("jobs", "done").unwrap();
    assert_eq!(moved, "a2");
    let removed: usize = connection.lrem("jobs", 0, "a").unwrap();
    assert_eq!(removed, 1);
    assert!(!connection.exists::<_, bool>("jobs").unwrap());
    let () = connection.rpush("jobs", &[1, 2, 3, 4, 5]).unwrap();
    let () = connection.ltrim("jobs", 1, -2).unwrap();
    assert_eq!(
        connection.lrange::<_, Vec<i64>>("jobs", 0, -1).unwrap(),
        [2, 3, 4]
    );
    let (key, elements): (String, Vec<String>) = connection
        .lmpop(2, &["missing", "jobs"], Direction::Right, 2)
        .unwrap();
    assert_eq!(
        (key.as_str(), elements),
        ("jobs", vec!["4".into(), "3".into()])
    );
    let none: Option<(String, Vec<String>)> =
        connection.lmpop(1, "missing", Direction::Left, 1).unwrap();
    assert_eq!(none, None);
    assert_eq!(
        connection
            .rpush_exists::<_, _, usize>("missing", "x")
            .unwrap(),
        0
    );
    assert_eq!(
        connection.lpush_exists::<_, _, usize>("done", "x").unwrap(),
        3
    );
    assert_eq!(
        redis::cmd("TYPE")
            .arg("done")
            .query::<String>(connection)
            .unwrap(),
        "list"
    );
    // The blocking commands answer at once when there is something to take.
    let (key, element): (String, String) = connection.blpop("done", 0.0).unwrap();
    assert_eq!((key.as_str(), element.as_str()), ("done", "x"));
    let (key, element): (String, String) = connection.brpop(&["missing", "done"], 1.0).unwrap();
    assert_eq!((key.as_str(), element.as_str()), ("done", "z"));
    let moved: String = connection
        .blmove("done", "other", Direction::Left, Direction::Left, 0.0)
        .unwrap();
    assert_eq!(moved, "a2");
    let moved: String = connection.brpoplpush("other", "done", 0.0).unwrap();
    assert_eq!(moved, "a2");
    let (key, elements): (String, Vec<String>) = connection
        .blmpop(0.0, 1, "done", Direction::Left, 5)
        .unwrap();
    assert_eq!((key.as_str(), elements), ("done", vec!["a2".to_string()]));
    // And nil after their timeout when there is not.
    let nothing: Option<(String, String)> = connection.blpop("missing", 0.01).unwrap();
    assert_eq!(nothing, None);
    let nothing: Option<String> = connection
        .blmove("missing", "other", Direction::Left, Direction::Left, 0.01)
        .unwrap();
    assert_eq!(nothing, None);
    // Errors are Redis's.
    let () = connection.set("text", "v").unwrap();
    let error = connection.lpush::<_, _, usize>("text", "a").unwrap_err();
    assert_eq!(error.code(), Some("WRONGTYPE"));
    let error = connection.lset::<_, _, ()>("missing", 0, "a").unwrap_err();
    assert_eq!(error.detail(), Some("no such key"));
    let error = connection.blpop::<_, ()>("missing", -1.0).unwrap_err();
    assert_eq!(error.detail(), Some("timeout is negative"));
}

#[test]
fn the_client_api_in_resp2() {
    let (_dir, server) = start("lists-api-resp2");
    exercise_the_client_api(&mut server.connection());
}

#[test]
fn the_client_api_in_resp3() {
    let (_dir, server) = start("lists-api-resp3");
    let client = redis::Client::open(format!("{}?protocol=resp3", server.url())).unwrap();
    let mut connection = client.get_connection().unwrap();
    exercise_the_client_api(&mut connection);
}

/// The reply bytes where RESP2 and RESP3 differ: nulls and null arrays.
#[test]
fn null_shapes_in_resp2_and_resp3() {
    let (_dir, server) = start("lists-nulls");
    let mut resp2 = server.raw();
    let mut resp3 = RawClient::connect(server.port);
    assert!(resp3.call(&["HELLO", "3"]).starts_with('%'));
    for (call, in_resp2, in_resp3) in [
        (&["LPOP", "missing"][..], "$-1\r\n", "_\r\n"),
        (&["LPOP", "missing", "2"], "*-1\r\n", "_\r\n"),
        (&["LINDEX", "missing", "0"], "$-1\r\n", "_\r\n"),
        (&["LPOS", "missing", "a"], "$-1\r\n", "_\r\n"),
        (&["LMPOP", "1", "missing", "LEFT"], "*-1\r\n", "_\r\n"),
        (
            &["LMOVE", "missing", "d", "LEFT", "LEFT"],
            "$-1\r\n",
            "_\r\n",
        ),
        (&["BLPOP", "missing", "0.01"], "*-1\r\n", "_\r\n"),
        (&["BRPOPLPUSH", "missing", "d", "0.01"], "$-1\r\n", "_\r\n"),
        (
            &["BLMPOP", "0.01", "1", "missing", "LEFT"],
            "*-1\r\n",
            "_\r\n",
        ),
        (&["LRANGE", "missing", "0", "-1"], "*0\r\n", "*0\r\n"),
    ] {
        assert_eq!(resp2.call(call), in_resp2, "{call:?}");
        assert_eq!(resp3.call(call), in_resp3, "{call:?}");
    }
    assert_eq!(resp2.call(&["RPUSH", "l", "a"]), ":1\r\n");
    assert_eq!(resp2.call(&["LPOP", "l", "0"]), "*0\r\n");
    assert_eq!(resp3.call(&["LPOP", "l", "0"]), "*0\r\n");
}

/// Pops, moves and trims survive kill -9: the restarted server holds exactly the lists it acknowledged.
#[test]
fn lists_are_the_same_after_kill_and_restart() {
    let (_dir, mut server) = start("lists-restart");
    let mut connection = server.connection();
    let () = connection
        .rpush("queue", &["1", "2", "3", "4", "5", "6"])
        .unwrap();
    let _: String = connection.lpop("queue", None).unwrap();
    let _: String = connection
        .lmove("queue", "done", Direction::Right, Direction::Left)
        .unwrap();
    let _: Vec<String> = connection.rpop("queue", NonZeroUsize::new(1)).unwrap();
    let _: (String, String) = connection.blpop("queue", 0.0).unwrap();
    let _: i64 = connection.linsert_before("queue", "4", "3.5").unwrap();
    let () = connection.lset("queue", -1, "four").unwrap();
    let () = connection.rpush("gone", "x").unwrap();
    let _: String = connection.lpop("gone", None).unwrap();
    let before: Vec<String> = connection.lrange("queue", 0, -1).unwrap();
    assert_eq!(before, ["3", "3.5", "four"]);
    server.restart();
    let mut connection = server.connection();
    assert_eq!(
        connection.lrange::<_, Vec<String>>("queue", 0, -1).unwrap(),
        before
    );
    assert_eq!(
        connection.lrange::<_, Vec<String>>("done", 0, -1).unwrap(),
        ["6"]
    );
    assert!(!connection.exists::<_, bool>("gone").unwrap());
    // And after a compaction (snapshot plus log tail) too.
    let _: String = redis::cmd("SAVE").query(&mut connection).unwrap();
    let () = connection.rpush("queue", "after").unwrap();
    server.restart();
    let mut connection = server.connection();
    assert_eq!(
        connection.lrange::<_, Vec<String>>("queue", 0, -1).unwrap(),
        ["3", "3.5", "four", "after"]
    );
}
