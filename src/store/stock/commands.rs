//! The stock commands: STOCK.SET, STOCK.ADD, STOCK.TAKE, STOCK.RESERVE, STOCK.CONFIRM, STOCK.RELEASE,
//! STOCK.INFO, and the internal STOCK.EXPIRE that only the log carries. The semantics live in
//! [`super`]; this module parses arguments, maps outcomes to replies, decides what is logged and
//! keeps the sku's timer in the keyspace.
//!
//! # Replies
//! Status words (`OK`, `SOLDOUT`, `CONFIRMED`, `RELEASED`, `EXPIRED`, `UNKNOWN`) are bulk strings, so every
//! client library shows them plainly. `STOCK.SET` and `STOCK.ADD` create a missing sku; every other
//! command on a missing sku is an error (`ERR no such stock sku`).
//!
//! # Log
//! A client call that changed state is logged exactly as received (with its `ID`, if any): its effect,
//! including the due reservations it expires first, depends only on the sku's state, the arguments and
//! `now_ms`, and replay runs it with the record's `now_ms`. Calls that changed nothing (`SOLDOUT` with
//! nothing due, a repeated `ID`, a `CONFIRM` of a settled reservation) are not logged.
//!
//! Reservations that fall due with no call on the sku are expired by the loop's active cycle
//! ([`fire_timer`]), which logs what it did as `STOCK.EXPIRE sku rid [rid ...]`: the ids it expired, in
//! order. Replay checks that exactly those are the first due reservations at the record's `now_ms` and
//! expires them; a mismatch fails the replay (the log does not belong to this state). STOCK.EXPIRE is
//! flagged internal in the command table: clients get "unknown command" for it.
//!
//! # Timers
//! After every change the sku's earliest reservation deadline is registered with
//! [`crate::store::Keyspace::set_timer`], so the active cycle finds due skus without scanning.

use super::{ReservationId, Stock};
use crate::command::error::wrong_type;
use crate::command::parse::{parse_request_id, unsigned, unsigned_or_out_of_range};
use crate::command::reply::{integer_bytes, integer_reply, status};
use crate::command::{Call, Mutations};
use crate::limits;
use crate::resp::Reply;
use crate::store::idempotency::{Applied, IdempotencyPolicy};
use crate::store::{Shared, Store, Value};
use bytes::Bytes;

pub const NO_SUCH_SKU: &str = "ERR no such stock sku";

/// What a command does with a missing sku.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// Start from an empty sku (SET, ADD); it is kept only if the operation succeeds.
    Create,
    Refuse,
}

/// Runs `operation` on the sku at the call's key and registers the sku's next deadline if it changed.
/// A failing operation changes nothing (the value types validate first), and a sku created for it is
/// dropped.
fn apply<Outcome>(
    store: &mut Store,
    call: &Call,
    missing: Missing,
    operation: impl FnOnce(&mut Stock, u64) -> Result<Applied<Outcome>, String>,
) -> Result<Applied<Outcome>, Reply> {
    let key = call.key();
    let now_ms = call.now_ms;
    let (applied, next_deadline_ms) = match store
        .keyspace
        .get_mut(key, now_ms)
        .map(|entry| &mut entry.value)
    {
        Some(Value::Stock(stock)) => {
            let applied = operation(stock, now_ms).map_err(Reply::error)?;
            (applied, stock.next_expiry_ms())
        }
        Some(_) => return Err(wrong_type()),
        None if missing == Missing::Create => {
            let mut stock = Shared::new(Stock::new(IdempotencyPolicy::default()));
            let mut applied = operation(&mut stock, now_ms).map_err(Reply::error)?;
            // Creating the key is a change even when the operation alone was not (`STOCK.SET sku 0`).
            applied.changed = true;
            let next_deadline_ms = stock.next_expiry_ms();
            store.keyspace.insert(key, Value::Stock(stock));
            (applied, next_deadline_ms)
        }
        None => return Err(Reply::error(NO_SUCH_SKU)),
    };
    if applied.changed {
        store.keyspace.set_timer(key, next_deadline_ms);
    }
    Ok(applied)
}

/// Logs the call as received when it changed state, and passes its outcome on.
fn logged<Outcome>(call: &mut Call, applied: Applied<Outcome>) -> Outcome {
    if applied.changed {
        call.log_as_received();
    }
    applied.outcome
}

/// Parses a reservation id: an unsigned integer.
fn reservation_id(argument: &[u8]) -> Result<ReservationId, Reply> {
    unsigned(argument)
}

/// `STOCK.SET sku qty` -> OK
pub fn set(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let quantity = unsigned_or_out_of_range(call, 2)?;
    let applied = apply(store, call, Missing::Create, |stock, now_ms| {
        stock.set(quantity, now_ms)
    })?;
    logged(call, applied);
    Ok(Reply::OK)
}

/// `STOCK.ADD sku qty [ID request-id]` -> available after the add
pub fn add(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let quantity = unsigned_or_out_of_range(call, 2)?;
    let request_id = parse_request_id(call, 3)?;
    let applied = apply(store, call, Missing::Create, |stock, now_ms| {
        stock.add(quantity, request_id, now_ms)
    })?;
    Ok(integer_reply(logged(call, applied)))
}

/// `STOCK.TAKE sku qty [ID request-id]` -> `[status, available]`
pub fn take(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let quantity = unsigned_or_out_of_range(call, 2)?;
    let request_id = parse_request_id(call, 3)?;
    let applied = apply(store, call, Missing::Refuse, |stock, now_ms| {
        stock.take(quantity, request_id, now_ms)
    })?;
    let outcome = logged(call, applied);
    Ok(Reply::Array(vec![
        status(outcome.status.as_str()),
        integer_reply(outcome.available),
    ]))
}

/// `STOCK.RESERVE sku qty ttl-ms [ID request-id]` -> `[status, reservation-id | null, available]`
pub fn reserve(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let quantity = unsigned_or_out_of_range(call, 2)?;
    let ttl_ms = unsigned_or_out_of_range(call, 3)?;
    let request_id = parse_request_id(call, 4)?;
    let applied = apply(store, call, Missing::Refuse, |stock, now_ms| {
        stock.reserve(quantity, ttl_ms, request_id, now_ms)
    })?;
    let outcome = logged(call, applied);
    Ok(Reply::Array(vec![
        status(outcome.status.as_str()),
        outcome.reservation_id.map_or(Reply::Null, integer_reply),
        integer_reply(outcome.available),
    ]))
}

/// `STOCK.CONFIRM sku reservation-id` and `STOCK.RELEASE sku reservation-id` -> the reservation's state.
fn settle(store: &mut Store, call: &mut Call, confirm: bool) -> Result<Reply, Reply> {
    let reservation_id = reservation_id(call.argument(2))?;
    let applied = apply(store, call, Missing::Refuse, |stock, now_ms| {
        Ok(if confirm {
            stock.confirm(reservation_id, now_ms)
        } else {
            stock.release(reservation_id, now_ms)
        })
    })?;
    Ok(status(logged(call, applied).as_str()))
}

pub fn confirm(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    settle(store, call, true)
}

pub fn release(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    settle(store, call, false)
}

/// `STOCK.INFO sku` -> a map (RESP3) or flat field/value array (RESP2). Due reservations count as
/// expired, without changing anything.
pub fn info(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let info = match store
        .keyspace
        .get(call.key(), call.now_ms)
        .map(|entry| &entry.value)
    {
        Some(Value::Stock(stock)) => stock.info(call.now_ms),
        Some(_) => return Err(wrong_type()),
        None => return Err(Reply::error(NO_SUCH_SKU)),
    };
    Ok(Reply::Map(vec![
        (Reply::bulk(b"available"), integer_reply(info.available)),
        (Reply::bulk(b"reserved"), integer_reply(info.reserved)),
        (Reply::bulk(b"sold"), integer_reply(info.sold)),
        (
            Reply::bulk(b"reservations"),
            integer_reply(info.reservations),
        ),
        (Reply::bulk(b"supplied"), integer_reply(info.supplied)),
    ]))
}

/// `STOCK.EXPIRE sku rid [rid ...]` (internal: only replay runs it) -> the number expired. Refuses unless
/// the ids are exactly the first due reservations at `now_ms`, in order, which is what the active cycle
/// expired when it wrote the record.
pub fn expire(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let ids = call.arguments[2..]
        .iter()
        .map(|argument| reservation_id(argument))
        .collect::<Result<Vec<ReservationId>, Reply>>()?;
    let applied = apply(store, call, Missing::Refuse, |stock, now_ms| {
        if !stock
            .due_reservation_ids(now_ms, ids.len())
            .eq(ids.iter().copied())
        {
            return Err(
                "ERR STOCK.EXPIRE names reservations that are not the first due ones".to_string(),
            );
        }
        let expired = stock.expire_due(now_ms, ids.len());
        debug_assert_eq!(expired, ids);
        Ok(Applied::changed(expired.len() as u64))
    })?;
    Ok(integer_reply(logged(call, applied)))
}

/// The active cycle's work for one sku whose timer is due: expires at most
/// [`limits::STOCK_RESERVATIONS_EXPIRED_PER_TIMER_MAX`] due reservations, logs them as `STOCK.EXPIRE`
/// into `mutations`, and returns the sku's next deadline for the caller to register (at or before
/// `now_ms` when more are due, so the next iteration continues).
pub fn fire_timer(
    stock: &mut Stock,
    key: &[u8],
    now_ms: u64,
    mutations: &mut Mutations,
) -> Option<u64> {
    let expired = stock.expire_due(now_ms, limits::STOCK_RESERVATIONS_EXPIRED_PER_TIMER_MAX);
    if !expired.is_empty() {
        let ids: Vec<Bytes> = expired
            .iter()
            .map(|id| integer_bytes(i64::try_from(*id).unwrap_or(i64::MAX)))
            .collect();
        let arguments = [&b"STOCK.EXPIRE"[..], key]
            .into_iter()
            .chain(ids.iter().map(|id| &id[..]));
        let arguments: Vec<&[u8]> = arguments.collect();
        mutations.push(now_ms, arguments);
    }
    stock.next_expiry_ms()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch;
    use crate::store::live_store::{reply_text, Live};

    fn stock<'s>(store: &'s mut Store, key: &str) -> &'s Stock {
        match &store
            .keyspace
            .get(key.as_bytes(), 0)
            .expect("present")
            .value
        {
            Value::Stock(stock) => stock,
            other => panic!("not stock: {other:?}"),
        }
    }

    #[test]
    fn active_expiry_is_logged_as_stock_expire_and_replays_to_the_same_state() {
        let mut live = Live::new();
        live.run(&["STOCK.SET", "sku", "10"], 0);
        for ttl in [100, 50, 200, 50] {
            let reply = live.run(&["STOCK.RESERVE", "sku", "1", &ttl.to_string()], 0);
            assert!(reply_text(&reply).starts_with("*3\r\n$2\r\nOK\r\n"));
        }
        assert_eq!(live.store.keyspace.next_timer_ms(), Some(50));
        assert!(live.fire(49).is_empty());
        let records_before = live.records.len();
        assert_eq!(live.fire(60), vec![crate::store::Key::from("sku")]);
        assert_eq!(live.records.len(), records_before + 1);
        let (now_ms, commands) = live.records.last().unwrap();
        assert_eq!(*now_ms, 60);
        assert_eq!(
            commands,
            &vec![vec![
                b"STOCK.EXPIRE".to_vec(),
                b"sku".to_vec(),
                b"2".to_vec(),
                b"4".to_vec()
            ]]
        );
        assert_eq!(live.store.keyspace.next_timer_ms(), Some(100));
        // A confirm after the deadline expires the rest as part of its own logged call.
        assert_eq!(
            reply_text(&live.run(&["STOCK.CONFIRM", "sku", "1"], 150)),
            "$7\r\nEXPIRED\r\n"
        );
        assert_eq!(
            reply_text(&live.run(&["STOCK.CONFIRM", "sku", "3"], 150)),
            "$9\r\nCONFIRMED\r\n"
        );
        assert_eq!(live.store.keyspace.next_timer_ms(), None);

        let mut replayed = live.replay().expect("replay succeeds");
        assert_eq!(stock(&mut replayed, "sku"), stock(&mut live.store, "sku"));
    }

    #[test]
    fn expiry_of_many_reservations_is_bounded_per_timer_and_continues_next_iteration() {
        let mut live = Live::new();
        let count = limits::STOCK_RESERVATIONS_EXPIRED_PER_TIMER_MAX + 10;
        live.run(&["STOCK.SET", "sku", &count.to_string()], 0);
        for _ in 0..count {
            live.run(&["STOCK.RESERVE", "sku", "1", "10"], 0);
        }
        live.fire(20);
        assert_eq!(
            live.store.keyspace.next_timer_ms(),
            Some(10),
            "more are due"
        );
        live.fire(21);
        assert_eq!(live.store.keyspace.next_timer_ms(), None);
        let info = stock(&mut live.store, "sku").info(21);
        assert_eq!((info.available, info.reservations), (count as u64, 0));
        let mut replayed = live.replay().expect("replay succeeds");
        assert_eq!(stock(&mut replayed, "sku"), stock(&mut live.store, "sku"));
    }

    #[test]
    fn a_stock_expire_that_does_not_match_the_state_fails_replay_and_clients_cannot_send_it() {
        let mut live = Live::new();
        live.run(&["STOCK.SET", "sku", "5"], 0);
        live.run(&["STOCK.RESERVE", "sku", "1", "10"], 0);
        live.run(&["STOCK.RESERVE", "sku", "1", "20"], 0);
        live.records.push((
            15,
            vec![vec![
                b"STOCK.EXPIRE".to_vec(),
                b"sku".to_vec(),
                b"2".to_vec(),
            ]],
        ));
        assert!(live
            .replay()
            .unwrap_err()
            .contains("not the first due ones"));
        assert!(dispatch::lookup_for_client(b"stock.expire").is_none());
        assert!(dispatch::lookup(b"STOCK.EXPIRE").is_some());
    }

    #[test]
    fn failing_and_unchanged_calls_log_nothing() {
        let mut live = Live::new();
        let failing: &[&[&str]] = &[
            &["STOCK.TAKE", "missing", "1"],
            &["STOCK.SET", "sku", "-1"],
            &["STOCK.SET", "sku", "x"],
            &["STOCK.ADD", "sku", "0"],
            &["STOCK.ADD", "sku", "1", "ID"],
            &["STOCK.ADD", "sku", "1", "NOPE", "r"],
        ];
        for arguments in failing {
            assert!(live.run(arguments, 0).is_error(), "{arguments:?}");
        }
        assert!(live.records.is_empty());
        assert!(
            !live.store.keyspace.contains(b"sku", 0),
            "a failed create leaves no key"
        );
        live.run(&["STOCK.SET", "sku", "0"], 0);
        assert_eq!(live.records.len(), 1, "creating the key is a change");
        live.run(&["STOCK.SET", "sku", "0"], 0);
        live.run(&["STOCK.TAKE", "sku", "1"], 0);
        live.run(&["STOCK.ADD", "sku", "1", "ID", "r1"], 0);
        live.run(&["STOCK.ADD", "sku", "1", "ID", "r1"], 0);
        assert_eq!(live.records.len(), 2, "only the first ADD changed anything");
    }
}
