//! The coupon commands: COUPON.CREATE, COUPON.ISSUE, COUPON.GET, COUPON.REVOKE, COUPON.INFO and
//! COUPON.HOLDERS. The semantics live in [`super`]; this module parses arguments, maps outcomes to
//! replies and decides what is logged.
//!
//! # Replies
//! Status words (`ISSUED`, `ALREADY`, `SOLDOUT`, `NOTSTARTED`, `ENDED`) are bulk strings, not simple
//! strings, so every client library hands them to the application as plain strings inside the array.
//! A missing event is an error (`ERR no such coupon event`): asking an event that was never created is a
//! misuse, unlike the business outcomes, which are normal replies.
//!
//! # Log
//! Every call that changed state is logged exactly as received (with its `ID`, if any): the coupon's
//! outcome depends only on its state, the arguments and `now_ms`, and replay runs the record with the
//! record's `now_ms`, so it rebuilds the same holders and the same request-ID cache. Calls that changed
//! nothing (`SOLDOUT`, `ALREADY`, `NOTSTARTED`, `ENDED`, a repeated `ID`, a revoke of nobody) are not
//! logged, so the rush after the last coupon costs no disk.

use super::{Coupon, CouponSpec, IssueStatus};
use crate::command::error::{syntax_error, wrong_type};
use crate::command::parse::{is_option, parse_cursor, parse_request_id, unsigned_or_out_of_range};
use crate::command::reply::{integer_bytes, integer_reply};
use crate::command::Call;
use crate::resp::Reply;
use crate::store::idempotency::IdempotencyPolicy;
use crate::store::{Shared, Store, Value};

pub const NO_SUCH_EVENT: &str = "ERR no such coupon event";
pub const EVENT_EXISTS: &str = "ERR coupon event already exists";

fn no_such_event() -> Reply {
    Reply::error(NO_SUCH_EVENT)
}

/// The coupon at `key`, or the error reply for a missing key or another type.
fn read_coupon<'s>(store: &'s mut Store, key: &[u8], now_ms: u64) -> Result<&'s Coupon, Reply> {
    match store.keyspace.get(key, now_ms).map(|entry| &entry.value) {
        Some(Value::Coupon(coupon)) => Ok(coupon),
        Some(_) => Err(wrong_type()),
        None => Err(no_such_event()),
    }
}

fn write_coupon<'s>(
    store: &'s mut Store,
    key: &[u8],
    now_ms: u64,
) -> Result<&'s mut Coupon, Reply> {
    match store
        .keyspace
        .get_mut(key, now_ms)
        .map(|entry| &mut entry.value)
    {
        Some(Value::Coupon(coupon)) => Ok(coupon),
        Some(_) => Err(wrong_type()),
        None => Err(no_such_event()),
    }
}

/// Parses a Unix-milliseconds argument (START, END), which must not be negative.
fn unix_ms(call: &Call, index: usize, name: &str) -> Result<u64, Reply> {
    let value = call.integer(index)?;
    u64::try_from(value)
        .map_err(|_| Reply::error(format!("ERR {name} must be a non-negative Unix time in ms")))
}

/// `COUPON.CREATE event total [PERUSER n] [START ms] [END ms]`
pub fn create(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let spec = parse_create(call)?;
    let key = call.key();
    match store
        .keyspace
        .get(key, call.now_ms)
        .map(|entry| &entry.value)
    {
        Some(Value::Coupon(_)) => return Err(Reply::error(EVENT_EXISTS)),
        Some(_) => return Err(wrong_type()),
        None => {}
    }
    let coupon = Coupon::create(spec, IdempotencyPolicy::default()).map_err(Reply::error)?;
    store
        .keyspace
        .insert(key, Value::Coupon(Shared::new(coupon)));
    call.log_as_received();
    Ok(Reply::OK)
}

fn parse_create(call: &Call) -> Result<CouponSpec, Reply> {
    let mut spec = CouponSpec {
        total: unsigned_or_out_of_range(call, 2)?,
        per_user: None,
        start_ms: None,
        end_ms: None,
    };
    let mut index = 3;
    while index < call.arguments.len() {
        let option = call.argument(index);
        if index + 1 >= call.arguments.len() {
            return Err(syntax_error());
        }
        if is_option(option, "PERUSER") && spec.per_user.is_none() {
            spec.per_user = Some(unsigned_or_out_of_range(call, index + 1)?);
        } else if is_option(option, "START") && spec.start_ms.is_none() {
            spec.start_ms = Some(unix_ms(call, index + 1, "START")?);
        } else if is_option(option, "END") && spec.end_ms.is_none() {
            spec.end_ms = Some(unix_ms(call, index + 1, "END")?);
        } else {
            return Err(syntax_error());
        }
        index += 2;
    }
    Ok(spec)
}

/// `COUPON.ISSUE event user [ID request-id]` -> `[status, number | null, remaining]`
pub fn issue(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let request_id = parse_request_id(call, 3)?;
    let coupon = write_coupon(store, call.key(), call.now_ms)?;
    let applied = coupon
        .issue(call.argument(2), request_id, call.now_ms)
        .map_err(Reply::error)?;
    if applied.changed {
        debug_assert_eq!(applied.outcome.status, IssueStatus::Issued);
        call.log_as_received();
    }
    let outcome = applied.outcome;
    Ok(Reply::Array(vec![
        Reply::bulk(outcome.status.as_str().as_bytes()),
        outcome.number.map_or(Reply::Null, integer_reply),
        integer_reply(outcome.remaining),
    ]))
}

/// `COUPON.GET event user` -> the user's numbers, ascending (empty when they hold none).
pub fn get(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let coupon = read_coupon(store, call.key(), call.now_ms)?;
    let numbers = coupon.get(call.argument(2)).map_err(Reply::error)?;
    Ok(Reply::Array(
        numbers.into_iter().map(integer_reply).collect(),
    ))
}

/// `COUPON.REVOKE event user` -> how many coupons went back to the pool.
pub fn revoke(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let coupon = write_coupon(store, call.key(), call.now_ms)?;
    let applied = coupon.revoke(call.argument(2)).map_err(Reply::error)?;
    if applied.changed {
        call.log_as_received();
    }
    Ok(integer_reply(applied.outcome))
}

/// `COUPON.INFO event` -> a map (RESP3) or flat field/value array (RESP2).
pub fn info(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let coupon = read_coupon(store, call.key(), call.now_ms)?;
    let info = coupon.info(call.now_ms);
    let optional = |value: Option<u64>| value.map_or(Reply::Null, integer_reply);
    Ok(Reply::Map(vec![
        (Reply::bulk(b"total"), integer_reply(info.total)),
        (Reply::bulk(b"issued"), integer_reply(info.issued)),
        (Reply::bulk(b"remaining"), integer_reply(info.remaining)),
        (Reply::bulk(b"revoked"), integer_reply(info.revoked)),
        (Reply::bulk(b"peruser"), integer_reply(info.per_user)),
        (Reply::bulk(b"start"), optional(info.start_ms)),
        (Reply::bulk(b"end"), optional(info.end_ms)),
        (
            Reply::bulk(b"state"),
            Reply::bulk(info.state.as_str().as_bytes()),
        ),
    ]))
}

/// `COUPON.HOLDERS event cursor count` -> `[next-cursor, [user, number, user, number, ...]]`
pub fn holders(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let cursor = parse_cursor(call.argument(2))?;
    let count = unsigned_or_out_of_range(call, 3)?;
    let coupon = read_coupon(store, call.key(), call.now_ms)?;
    let page = coupon.holders(cursor, count).map_err(Reply::error)?;
    let mut pairs = Vec::with_capacity(page.holders.len() * 2);
    for (user, number) in page.holders {
        pairs.push(Reply::bulk(user));
        pairs.push(integer_reply(number));
    }
    Ok(Reply::Array(vec![
        // A bulk string, as SCAN's cursor is.
        Reply::Bulk(integer_bytes(page.next_cursor as i64)),
        Reply::Array(pairs),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::live_store::Live;

    #[test]
    fn only_issues_that_change_state_are_logged() {
        let mut live = Live::new();
        // The reply, and whether the call wrote a log record.
        let mut run = |arguments: &[&str], now_ms| {
            let records_before = live.records.len();
            let reply = live.run(arguments, now_ms);
            (reply, live.records.len() > records_before)
        };
        assert!(
            run(
                &["COUPON.CREATE", "ev", "1", "START", "100", "END", "200"],
                0
            )
            .1
        );
        assert!(!run(&["COUPON.ISSUE", "ev", "u1"], 99).1, "NOTSTARTED");
        assert!(
            run(&["COUPON.ISSUE", "ev", "u1", "ID", "r"], 100).1,
            "ISSUED"
        );
        assert!(
            !run(&["COUPON.ISSUE", "ev", "u1", "ID", "r"], 100).1,
            "repeated ID"
        );
        assert!(!run(&["COUPON.ISSUE", "ev", "u1"], 100).1, "ALREADY");
        assert!(!run(&["COUPON.ISSUE", "ev", "u2"], 100).1, "SOLDOUT");
        assert!(!run(&["COUPON.ISSUE", "ev", "u2"], 200).1, "ENDED");
        assert!(
            !run(&["COUPON.REVOKE", "ev", "u2"], 200).1,
            "nothing to revoke"
        );
        assert!(run(&["COUPON.REVOKE", "ev", "u1"], 200).1);
        let (reply, logged) = run(&["COUPON.CREATE", "ev", "1"], 0);
        assert_eq!((reply, logged), (Reply::error(EVENT_EXISTS), false));
        let (reply, logged) = run(&["COUPON.ISSUE", "nope", "u1"], 0);
        assert_eq!((reply, logged), (Reply::error(NO_SUCH_EVENT), false));
        for arguments in [
            &["COUPON.CREATE", "e2", "0"][..],
            &["COUPON.CREATE", "e2", "5", "PERUSER"],
            &["COUPON.CREATE", "e2", "5", "PERUSER", "1", "PERUSER", "2"],
            &["COUPON.CREATE", "e2", "5", "START", "-1"],
            &["COUPON.CREATE", "e2", "5", "START", "9", "END", "9"],
            &["COUPON.ISSUE", "ev", "u1", "ID"],
            &["COUPON.HOLDERS", "ev", "-1", "10"],
            &["COUPON.HOLDERS", "ev", "0", "0"],
        ] {
            let (reply, logged) = run(arguments, 0);
            assert!(reply.is_error() && !logged, "{arguments:?}");
        }
    }
}
