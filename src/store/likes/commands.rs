//! The likes commands: LIKE.ADD, LIKE.REMOVE, LIKE.HAS, LIKE.MHAS, LIKE.COUNT and LIKE.LIST. The semantics
//! live in [`super`]; this module parses arguments, maps outcomes to replies and decides what is
//! logged.
//!
//! # Replies
//! A missing post is a post nobody likes: `LIKE.HAS` says 0, `LIKE.COUNT` 0, `LIKE.LIST` an empty page and
//! `LIKE.REMOVE` `[0, 0]`. `LIKE.ADD` creates the post; a post whose last like is removed is deleted, as
//! Redis deletes an empty set, so `EXISTS` and `TYPE` see exactly the posts somebody likes.
//!
//! # Log
//! An `ADD` that added and a `REMOVE` that removed are logged exactly as received: their effect depends
//! only on the post's state and the arguments, so replay rebuilds the same likes in the same order (and
//! the same sequence numbers, so a LIST cursor handed out before a restart continues the same walk after
//! it). A repeated like, an unlike of nobody and every read are not logged.

use super::Likes;
use crate::command::error::wrong_type;
use crate::command::parse::{parse_cursor, unsigned_or_out_of_range};
use crate::command::reply::{integer_bytes, integer_reply};
use crate::command::Call;
use crate::resp::Reply;
use crate::store::{Shared, Store, Value};

/// The likes at `key`, `Ok(None)` if absent, or WRONGTYPE.
fn read_likes<'s>(
    store: &'s mut Store,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'s Likes>, Reply> {
    match store.keyspace.get(key, now_ms).map(|entry| &entry.value) {
        None => Ok(None),
        Some(Value::Likes(likes)) => Ok(Some(likes)),
        Some(_) => Err(wrong_type()),
    }
}

/// `[changed, count]`, the reply of ADD and REMOVE.
fn change_reply(changed: bool, count: u64) -> Reply {
    Reply::Array(vec![
        Reply::Integer(i64::from(changed)),
        integer_reply(count),
    ])
}

/// `LIKE.ADD post user` -> `[added, count]`
pub fn add(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let key = call.key();
    let now_ms = call.now_ms;
    let change = match store
        .keyspace
        .get_mut(key, now_ms)
        .map(|entry| &mut entry.value)
    {
        Some(Value::Likes(likes)) => likes.add(call.argument(2)),
        Some(_) => return Err(wrong_type()),
        None => {
            let mut likes = Shared::new(Likes::new());
            let change = likes.add(call.argument(2));
            // A refused like leaves no empty post behind.
            if change.is_ok() {
                store.keyspace.insert(key, Value::Likes(likes));
            }
            change
        }
    };
    let change = change.map_err(Reply::error)?;
    if change.changed {
        call.log_as_received();
    }
    Ok(change_reply(change.changed, change.count))
}

/// `LIKE.REMOVE post user` -> `[removed, count]`; the post goes with its last like.
pub fn remove(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let key = call.key();
    let change = match store
        .keyspace
        .get_mut(key, call.now_ms)
        .map(|entry| &mut entry.value)
    {
        Some(Value::Likes(likes)) => likes.remove(call.argument(2)),
        Some(_) => return Err(wrong_type()),
        None => return Ok(change_reply(false, 0)),
    };
    if change.changed {
        if change.count == 0 {
            store.keyspace.remove(key);
        }
        call.log_as_received();
    }
    Ok(change_reply(change.changed, change.count))
}

/// `LIKE.HAS post user` -> 1 or 0
pub fn has(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let likes = read_likes(store, call.key(), call.now_ms)?;
    Ok(Reply::Integer(i64::from(
        likes.is_some_and(|likes| likes.contains(call.argument(2))),
    )))
}

/// `LIKE.MHAS user post [post ...]` -> 1 or 0 per post, in order. Any post of another type makes the whole
/// call WRONGTYPE, as SMISMEMBER does for its key.
pub fn mhas(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let user = call.argument(1);
    let mut answers = Vec::with_capacity(call.arguments.len() - 2);
    for post in &call.arguments[2..] {
        let likes = read_likes(store, post, call.now_ms)?;
        answers.push(Reply::Integer(i64::from(
            likes.is_some_and(|likes| likes.contains(user)),
        )));
    }
    Ok(Reply::Array(answers))
}

/// `LIKE.COUNT post [post ...]` -> the count of each post, 0 for a missing one.
pub fn count(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let mut counts = Vec::with_capacity(call.arguments.len() - 1);
    for post in &call.arguments[1..] {
        let likes = read_likes(store, post, call.now_ms)?;
        counts.push(integer_reply(likes.map_or(0, Likes::count)));
    }
    Ok(Reply::Array(counts))
}

/// `LIKE.LIST post cursor count` -> `[next-cursor, [user, ...]]`, newest first.
pub fn list(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let cursor = parse_cursor(call.argument(2))?;
    let count = unsigned_or_out_of_range(call, 3)?;
    let likes = read_likes(store, call.key(), call.now_ms)?;
    // A missing post lists like an empty one, with the same bounds on `count`.
    let empty = Likes::new();
    let page = likes
        .unwrap_or(&empty)
        .list(cursor, count)
        .map_err(Reply::error)?;
    Ok(Reply::Array(vec![
        // A bulk string, as SCAN's cursor is.
        Reply::Bulk(integer_bytes(
            i64::try_from(page.next_cursor).unwrap_or(i64::MAX),
        )),
        Reply::Array(page.users.iter().map(|user| Reply::bulk(user)).collect()),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::live_store::{reply_text, Live};

    fn likes<'s>(store: &'s mut Store, key: &str) -> Option<&'s Likes> {
        read_likes(store, key.as_bytes(), 0).expect("likes or nothing")
    }

    #[test]
    fn only_changes_are_logged_and_replay_rebuilds_every_post() {
        let mut live = Live::new();
        for (count, user) in ["1", "2", "alice", "3", "007"].into_iter().enumerate() {
            assert_eq!(
                reply_text(&live.run(&["LIKE.ADD", "p", user], 0)),
                format!("*2\r\n:1\r\n:{}\r\n", count + 1)
            );
        }
        assert_eq!(live.records.len(), 5);
        let unchanged: &[&[&str]] = &[
            &["LIKE.ADD", "p", "1"],
            &["LIKE.REMOVE", "p", "nobody"],
            &["LIKE.REMOVE", "missing", "1"],
            &["LIKE.HAS", "p", "1"],
            &["LIKE.MHAS", "1", "p", "missing"],
            &["LIKE.COUNT", "p", "missing"],
            &["LIKE.LIST", "p", "0", "10"],
        ];
        for arguments in unchanged {
            assert!(!live.run(arguments, 0).is_error(), "{arguments:?}");
        }
        assert_eq!(live.records.len(), 5, "nothing above changed anything");
        assert_eq!(
            reply_text(&live.run(&["LIKE.REMOVE", "p", "2"], 0)),
            "*2\r\n:1\r\n:4\r\n"
        );
        live.run(&["LIKE.ADD", "q", "9"], 0);
        live.run(&["LIKE.REMOVE", "q", "9"], 0);
        assert!(likes(&mut live.store, "q").is_none(), "an empty post goes");
        assert_eq!(live.records.len(), 8);

        let mut replayed = live.replay().expect("replay succeeds");
        let replayed_likes = likes(&mut replayed, "p").expect("replayed").clone();
        replayed_likes.check_invariants();
        assert_eq!(Some(&replayed_likes), likes(&mut live.store, "p"));
        assert!(likes(&mut replayed, "q").is_none());
    }

    #[test]
    fn failing_calls_change_and_log_nothing() {
        let mut live = Live::new();
        live.run(&["SADD", "set", "m"], 0);
        live.run(&["LIKE.ADD", "p", "1"], 0);
        let records = live.records.len();
        let long_user = "x".repeat(crate::limits::USER_ID_BYTES_MAX + 1);
        let failing: &[&[&str]] = &[
            &["LIKE.ADD", "new", &long_user],
            &["LIKE.ADD", "p", &long_user],
            &["LIKE.ADD", "set", "1"],
            &["LIKE.REMOVE", "set", "1"],
            &["LIKE.HAS", "set", "1"],
            &["LIKE.MHAS", "1", "p", "set"],
            &["LIKE.COUNT", "p", "set"],
            &["LIKE.LIST", "p", "-1", "10"],
            &["LIKE.LIST", "p", "x", "10"],
            &["LIKE.LIST", "p", "0", "0"],
            &["LIKE.LIST", "missing", "0", "1001"],
            &["LIKE.LIST", "set", "0", "10"],
        ];
        for arguments in failing {
            assert!(live.run(arguments, 0).is_error(), "{arguments:?}");
        }
        assert_eq!(live.records.len(), records);
        assert!(
            !live.store.keyspace.contains(b"new", 0),
            "a refused like leaves no post"
        );
        assert_eq!(likes(&mut live.store, "p").unwrap().count(), 1);
    }
}
