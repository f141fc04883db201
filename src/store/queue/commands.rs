//! The waiting-room commands: QUEUE.JOIN, QUEUE.POS, QUEUE.ADMIT, QUEUE.PASS, QUEUE.LEAVE, QUEUE.LEN and
//! QUEUE.CONFIG. The semantics live in [`super`]; this module parses arguments, maps outcomes to
//! replies, decides what is logged and keeps the room's timer in the keyspace.
//!
//! # Missing rooms
//! A room that holds nobody and has the default configuration (no idle timeout) does not exist: the key is
//! deleted the moment that becomes true, as Redis deletes an empty set. So a missing room answers like an
//! empty one: `POS` null, `LEN` 0, `PASS` 0, `LEAVE` 0, `ADMIT` an empty array (after checking its
//! arguments). `JOIN` creates the room, and so does `CONFIG ... IDLE ms` with `ms > 0`: a configured room
//! is kept while empty, so its timeout applies to the next rush.
//!
//! # Log
//! Every client call that changed the room is logged exactly as received; replay runs it with the record's
//! `now_ms` and reaches the same room:
//! - `JOIN`, unless it answered 0 (the user holds a valid pass; nothing changed).
//! - `POS` of a known user, unless it answered 0: it refreshes the waiter's last poll, or forgets a user
//!   found idle or with an expired pass. A `POS` of an unknown user, or of a pass holder, is not logged.
//! - `LEAVE` of a known user (also one found idle or expired, who is forgotten though the answer is 0).
//! - `ADMIT` on an existing room, always: besides admitting, it drops idlers it meets at the front and
//!   moves the line's head, and it is an operator's call, rare next to `POS`.
//! - `CONFIG` that changed the timeout.
//!
//! The loop's active cycle ([`fire_timer`]) drops idle waiters and forgets expired passes; it logs each
//! user it removed as `QUEUE.LEAVE room user`, in the order it removed them, so replay removes the same
//! entries in the same order (a LEAVE removes a known user whatever state they are in).
//!
//! # Timers
//! After every change the room's [`WaitingRoom::next_deadline_ms`] (the earliest idle drop or pass expiry)
//! is registered with [`crate::store::Keyspace::set_timer`].

use super::WaitingRoom;
use crate::command::error::{syntax_error, wrong_type};
use crate::command::parse::{is_option, unsigned_or_out_of_range};
use crate::command::reply::integer_reply;
use crate::command::{Call, Mutations};
use crate::limits;
use crate::resp::Reply;
use crate::store::{Fired, Shared, Store, Value};

/// A room with nobody in it and the default configuration: its key goes.
fn is_vacant(room: &WaitingRoom) -> bool {
    room.is_empty() && room.idle_timeout_ms() == 0
}

/// After a change: deletes a vacant room, or registers the room's next deadline.
fn settle(store: &mut Store, key: &[u8], now_ms: u64) {
    let next = match store.keyspace.get(key, now_ms).map(|entry| &entry.value) {
        Some(Value::Queue(room)) if is_vacant(room) => None,
        Some(Value::Queue(room)) => Some(room.next_deadline_ms()),
        _ => return,
    };
    match next {
        None => {
            store.keyspace.remove(key);
        }
        Some(deadline_ms) => store.keyspace.set_timer(key, deadline_ms),
    }
}

/// The room at `key` for writing, `Ok(None)` if absent, or WRONGTYPE.
fn write_room<'s>(
    store: &'s mut Store,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'s mut WaitingRoom>, Reply> {
    match store
        .keyspace
        .get_mut(key, now_ms)
        .map(|entry| &mut entry.value)
    {
        None => Ok(None),
        Some(Value::Queue(room)) => Ok(Some(room)),
        Some(_) => Err(wrong_type()),
    }
}

fn read_room<'s>(
    store: &'s mut Store,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'s WaitingRoom>, Reply> {
    match store.keyspace.get(key, now_ms).map(|entry| &entry.value) {
        None => Ok(None),
        Some(Value::Queue(room)) => Ok(Some(room)),
        Some(_) => Err(wrong_type()),
    }
}

/// `QUEUE.JOIN room user` -> position (1 = next in), or 0 with a valid pass.
pub fn join(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let key = call.key();
    let user = call.argument(2);
    let now_ms = call.now_ms;
    let result = match write_room(store, key, now_ms)? {
        Some(room) => room.join(user, now_ms),
        None => {
            let mut room = Shared::new(WaitingRoom::new());
            let result = room.join(user, now_ms);
            // A refused JOIN leaves no empty room behind.
            if result.is_ok() {
                store.keyspace.insert(key, Value::Queue(room));
            }
            result
        }
    };
    let position = result.map_err(Reply::error)?;
    if position != 0 {
        settle(store, key, now_ms);
        call.log_as_received();
    }
    Ok(integer_reply(position))
}

/// `QUEUE.POS room user` -> position while waiting, 0 with a valid pass, null if unknown. Counts as a poll.
pub fn pos(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let key = call.key();
    let user = call.argument(2);
    let now_ms = call.now_ms;
    let (position, known) = match write_room(store, key, now_ms)? {
        Some(room) => {
            let known = room.is_known(user);
            (room.position(user, now_ms), known)
        }
        None => return Ok(Reply::Null),
    };
    if known && position != Some(0) {
        settle(store, key, now_ms);
        call.log_as_received();
    }
    Ok(position.map_or(Reply::Null, integer_reply))
}

/// `QUEUE.ADMIT room n pass-ttl-ms` -> the users let in, in line order.
pub fn admit(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let key = call.key();
    let now_ms = call.now_ms;
    let count = unsigned_or_out_of_range(call, 2)?;
    let pass_ttl_ms = unsigned_or_out_of_range(call, 3)?;
    let Some(room) = write_room(store, key, now_ms)? else {
        // Nobody to admit, but the arguments are checked all the same.
        WaitingRoom::new()
            .admit(count, pass_ttl_ms, now_ms)
            .map_err(Reply::error)?;
        return Ok(Reply::Array(Vec::new()));
    };
    let users = room
        .admit(count, pass_ttl_ms, now_ms)
        .map_err(Reply::error)?;
    settle(store, key, now_ms);
    call.log_as_received();
    Ok(Reply::Array(
        users.iter().map(|user| Reply::bulk(user)).collect(),
    ))
}

/// `QUEUE.PASS room user` -> 1 while the user holds a valid pass, else 0.
pub fn pass(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let room = read_room(store, call.key(), call.now_ms)?;
    Ok(Reply::Integer(i64::from(room.is_some_and(|room| {
        room.has_pass(call.argument(2), call.now_ms)
    }))))
}

/// `QUEUE.LEAVE room user` -> 1 if the user was waiting or held a valid pass (now revoked), else 0.
pub fn leave(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let key = call.key();
    let user = call.argument(2);
    let now_ms = call.now_ms;
    let (present, known) = match write_room(store, key, now_ms)? {
        Some(room) => {
            let known = room.is_known(user);
            (room.leave(user, now_ms), known)
        }
        None => return Ok(Reply::Integer(0)),
    };
    if known {
        settle(store, key, now_ms);
        call.log_as_received();
    }
    Ok(Reply::Integer(i64::from(present)))
}

/// `QUEUE.LEN room` -> how many are waiting (idlers not dropped yet included).
pub fn len(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let room = read_room(store, call.key(), call.now_ms)?;
    Ok(integer_reply(room.map_or(0, WaitingRoom::waiting_count)))
}

/// `QUEUE.CONFIG room IDLE ms` -> OK. Waiters who neither JOIN nor POS for `ms` are dropped (0: never).
pub fn config(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    if !is_option(call.argument(2), "IDLE") {
        return Err(syntax_error());
    }
    let idle_timeout_ms = unsigned_or_out_of_range(call, 3)?;
    let key = call.key();
    let now_ms = call.now_ms;
    let changed = match write_room(store, key, now_ms)? {
        Some(room) => {
            let before = room.idle_timeout_ms();
            room.set_idle_timeout_ms(idle_timeout_ms)
                .map_err(Reply::error)?;
            before != idle_timeout_ms
        }
        None => {
            let mut room = Shared::new(WaitingRoom::new());
            room.set_idle_timeout_ms(idle_timeout_ms)
                .map_err(Reply::error)?;
            // The default configuration on a missing room is a missing room.
            let changed = !is_vacant(&room);
            if changed {
                store.keyspace.insert(key, Value::Queue(room));
            }
            changed
        }
    };
    if changed {
        settle(store, key, now_ms);
        call.log_as_received();
    }
    Ok(Reply::OK)
}

/// The active cycle's work for one room whose timer is due: drops idle waiters, then forgets expired
/// passes, at most [`limits::QUEUE_ENTRIES_EXPIRED_PER_TIMER_MAX`] users in all, and logs each as
/// `QUEUE.LEAVE room user` into `mutations`. Returns the room's next deadline (at or before `now_ms` when
/// more are due, so the next iteration continues), or [`Fired::RemoveKey`] when the room is left vacant.
pub fn fire_timer(
    room: &mut WaitingRoom,
    key: &[u8],
    now_ms: u64,
    mutations: &mut Mutations,
) -> Fired {
    let budget = limits::QUEUE_ENTRIES_EXPIRED_PER_TIMER_MAX;
    let mut removed = room.expire_idle(now_ms, budget);
    let passes = room.expire_passes(now_ms, budget - removed.len());
    removed.extend(passes);
    for user in &removed {
        mutations.push(now_ms, [&b"QUEUE.LEAVE"[..], key, user]);
    }
    if is_vacant(room) {
        Fired::RemoveKey
    } else {
        Fired::Next(room.next_deadline_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch;
    use crate::store::live_store::{reply_text, Live};

    fn room<'s>(store: &'s mut Store, key: &str) -> Option<&'s WaitingRoom> {
        read_room(store, key.as_bytes(), 0).expect("a room or nothing")
    }

    fn assert_replay_equal(live: &mut Live, key: &str) {
        let mut replayed = live.replay().expect("replay succeeds");
        let replayed_room = room(&mut replayed, key).cloned();
        if let Some(replayed_room) = &replayed_room {
            replayed_room.check_invariants();
        }
        assert_eq!(replayed_room.as_ref(), room(&mut live.store, key));
        assert_eq!(
            replayed.keyspace.next_timer_ms(),
            live.store.keyspace.next_timer_ms()
        );
    }

    #[test]
    fn polls_admissions_and_the_active_cycle_are_logged_and_replay_to_the_same_room() {
        let mut live = Live::new();
        assert_eq!(
            reply_text(&live.run(&["QUEUE.CONFIG", "r", "IDLE", "1000"], 0)),
            "+OK\r\n"
        );
        for (position, user) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
            assert_eq!(
                reply_text(&live.run(&["QUEUE.JOIN", "r", user], 0)),
                format!(":{}\r\n", position + 1)
            );
        }
        assert_eq!(live.store.keyspace.next_timer_ms(), Some(1_000));
        // b, c and e poll; a and d go silent.
        for user in ["b", "c", "e"] {
            live.run(&["QUEUE.POS", "r", user], 500);
        }
        let records = live.records.len();
        assert_eq!(
            reply_text(&live.run(&["QUEUE.POS", "r", "zed"], 500)),
            "$-1\r\n"
        );
        assert_eq!(
            reply_text(&live.run(&["QUEUE.PASS", "r", "b"], 500)),
            ":0\r\n"
        );
        assert_eq!(reply_text(&live.run(&["QUEUE.LEN", "r"], 500)), ":5\r\n");
        assert_eq!(
            live.records.len(),
            records,
            "reads and unknown users log nothing"
        );

        // The active cycle drops a and d and logs each as a LEAVE.
        assert_eq!(live.fire(1_000), vec![crate::store::Key::from("r")]);
        assert_eq!(
            live.last_record(),
            (
                1_000,
                vec![
                    vec!["QUEUE.LEAVE".to_string(), "r".into(), "a".into()],
                    vec!["QUEUE.LEAVE".to_string(), "r".into(), "d".into()],
                ]
            )
        );
        assert_eq!(
            reply_text(&live.run(&["QUEUE.POS", "r", "c"], 1_000)),
            ":2\r\n"
        );
        assert_eq!(
            reply_text(&live.run(&["QUEUE.ADMIT", "r", "2", "100"], 1_000)),
            "*2\r\n$1\r\nb\r\n$1\r\nc\r\n"
        );
        let records = live.records.len();
        assert_eq!(
            reply_text(&live.run(&["QUEUE.POS", "r", "b"], 1_050)),
            ":0\r\n"
        );
        assert_eq!(
            reply_text(&live.run(&["QUEUE.JOIN", "r", "b"], 1_050)),
            ":0\r\n"
        );
        assert_eq!(
            live.records.len(),
            records,
            "a pass holder's POS and JOIN change nothing"
        );
        assert_replay_equal(&mut live, "r");

        // The passes expire at 1100 and e goes idle at 1500: both logged by the active cycle.
        live.fire(1_100);
        assert_eq!(live.last_record().1.len(), 2);
        assert!(room(&mut live.store, "r").unwrap().is_known(b"e"));
        live.fire(1_500);
        assert_eq!(
            live.last_record().1,
            vec![vec!["QUEUE.LEAVE".to_string(), "r".into(), "e".into()]]
        );
        assert!(room(&mut live.store, "r").unwrap().is_empty());
        assert_eq!(live.store.keyspace.next_timer_ms(), None);
        assert_replay_equal(&mut live, "r");

        // A configured room is kept while empty; back to the default it goes.
        live.run(&["QUEUE.CONFIG", "r", "IDLE", "0"], 1_600);
        assert!(room(&mut live.store, "r").is_none());
        assert_replay_equal(&mut live, "r");
    }

    #[test]
    fn a_room_without_configuration_goes_with_its_last_user() {
        let mut live = Live::new();
        live.run(&["QUEUE.JOIN", "r", "a"], 0);
        live.run(&["QUEUE.JOIN", "r", "b"], 0);
        assert_eq!(
            reply_text(&live.run(&["QUEUE.LEAVE", "r", "a"], 0)),
            ":1\r\n"
        );
        live.run(&["QUEUE.ADMIT", "r", "5", "10"], 0);
        assert!(room(&mut live.store, "r").is_some(), "b holds a pass");
        live.fire(10);
        assert!(room(&mut live.store, "r").is_none());
        assert_replay_equal(&mut live, "r");
        // A POS that finds an expired pass forgets it (logged), and the room goes.
        live.run(&["QUEUE.JOIN", "s", "a"], 20);
        live.run(&["QUEUE.ADMIT", "s", "1", "10"], 20);
        let records = live.records.len();
        assert_eq!(
            reply_text(&live.run(&["QUEUE.POS", "s", "a"], 30)),
            "$-1\r\n"
        );
        assert_eq!(live.records.len(), records + 1);
        assert!(room(&mut live.store, "s").is_none());
        assert_replay_equal(&mut live, "s");
    }

    #[test]
    fn the_active_cycle_is_bounded_per_room_and_continues() {
        let mut live = Live::new();
        live.run(&["QUEUE.CONFIG", "r", "IDLE", "10"], 0);
        let count = limits::QUEUE_ENTRIES_EXPIRED_PER_TIMER_MAX + 10;
        for user in 0..count {
            live.run(&["QUEUE.JOIN", "r", &user.to_string()], 0);
        }
        live.fire(10);
        assert_eq!(
            live.last_record().1.len(),
            limits::QUEUE_ENTRIES_EXPIRED_PER_TIMER_MAX
        );
        assert_eq!(
            live.store.keyspace.next_timer_ms(),
            Some(10),
            "more are due"
        );
        live.fire(11);
        assert_eq!(live.last_record().1.len(), 10);
        assert_eq!(room(&mut live.store, "r").unwrap().waiting_count(), 0);
        assert_replay_equal(&mut live, "r");
    }

    #[test]
    fn failing_calls_change_and_log_nothing() {
        let mut live = Live::new();
        live.run(&["SADD", "set", "m"], 0);
        live.run(&["QUEUE.JOIN", "r", "a"], 0);
        let records = live.records.len();
        let long_user = "x".repeat(limits::USER_ID_BYTES_MAX + 1);
        let failing: &[&[&str]] = &[
            &["QUEUE.JOIN", "new", &long_user],
            &["QUEUE.JOIN", "set", "a"],
            &["QUEUE.POS", "set", "a"],
            &["QUEUE.ADMIT", "r", "0", "100"],
            &["QUEUE.ADMIT", "r", "1", "0"],
            &["QUEUE.ADMIT", "r", "-1", "100"],
            &["QUEUE.ADMIT", "r", "x", "100"],
            &["QUEUE.ADMIT", "missing", "1", "0"],
            &["QUEUE.ADMIT", "set", "1", "100"],
            &["QUEUE.PASS", "set", "a"],
            &["QUEUE.LEAVE", "set", "a"],
            &["QUEUE.LEN", "set"],
            &["QUEUE.CONFIG", "r", "NOPE", "10"],
            &["QUEUE.CONFIG", "r", "IDLE", "-1"],
            &["QUEUE.CONFIG", "new", "IDLE", "604800001"],
            &["QUEUE.CONFIG", "set", "IDLE", "10"],
        ];
        for arguments in failing {
            assert!(live.run(arguments, 0).is_error(), "{arguments:?}");
        }
        assert_eq!(live.records.len(), records);
        assert!(!live.store.keyspace.contains(b"new", 0));
        assert!(!live.store.keyspace.contains(b"missing", 0));
        assert_eq!(room(&mut live.store, "r").unwrap().idle_timeout_ms(), 0);
        // Unchanged calls log nothing either.
        live.run(&["QUEUE.CONFIG", "r", "IDLE", "0"], 0);
        live.run(&["QUEUE.CONFIG", "missing", "IDLE", "0"], 0);
        live.run(&["QUEUE.LEAVE", "r", "nobody"], 0);
        live.run(&["QUEUE.ADMIT", "missing", "1", "10"], 0);
        assert_eq!(live.records.len(), records);
        assert!(dispatch::lookup_for_client(b"queue.leave").is_some());
    }
}
