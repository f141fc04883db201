//! The rate-limit commands: CL.THROTTLE, answer-compatible with redis-cell, and the internal CL.SETTAT that
//! only the log carries. The arithmetic lives in [`super::throttle`]; this module parses arguments, maps
//! outcomes to replies, decides what is logged and keeps each key's staleness timer.
//!
//! # Log
//! A call that moved the key's theoretical arrival time (TAT) is logged as `CL.SETTAT key tat-ns`, the new
//! absolute TAT in Unix nanoseconds, never as the CL.THROTTLE received: replay sets the TAT and computes
//! nothing, so it cannot invent a debt whatever its clock, and a restart answers the next call exactly as
//! the old process would have. A limited call and a peek (quantity 0) change nothing and log nothing. Losing
//! the state (a missing key is a full bucket) can only let more requests through, never lock anyone out.
//!
//! CL.SETTAT is flagged internal in the command table: clients get "unknown command" for it.
//!
//! # Stale keys
//! A key whose TAT is not after now answers exactly like a missing key. Every change registers a keyspace
//! timer at [`Throttle::stale_at_ms`]; when it fires, [`fire_timer`] drops the key and logs `DEL key`, so
//! limiters of users who went away do not accumulate.

use super::throttle::{Throttle, ThrottleParameters};
use super::{not_an_integer, wrong_type, Call, Fired, Mutations, Store, Value};
use crate::resp::Reply;

/// Arguments of CL.THROTTLE with the optional quantity: `CL.THROTTLE key max_burst count period quantity`.
const THROTTLE_ARGUMENTS_MAX: usize = 6;

/// `CL.THROTTLE key max_burst count_per_period period [quantity]`
/// -> `[limited, limit, remaining, retry_after_s, reset_after_s]`
pub fn throttle(store: &mut Store, call: &mut Call) -> Reply {
    if call.arguments.len() > THROTTLE_ARGUMENTS_MAX {
        return crate::command::wrong_arity("cl.throttle");
    }
    let parameters = match parse_parameters(call) {
        Ok(parameters) => parameters,
        Err(reply) => return reply,
    };
    let key = call.key();
    let now_ms = call.now_ms;
    let (outcome, changed, throttle) = match store
        .keyspace
        .get_mut(key, now_ms)
        .map(|entry| &mut entry.value)
    {
        Some(Value::Throttle(throttle)) => {
            let before = throttle.theoretical_arrival_ns();
            let outcome = throttle.throttle(now_ms, &parameters);
            let changed = throttle.theoretical_arrival_ns() != before;
            (outcome, changed, throttle.clone())
        }
        Some(_) => return wrong_type(),
        None => {
            let mut throttle = Throttle::new();
            let outcome = throttle.throttle(now_ms, &parameters);
            // A fresh key that allowed nothing (limited, or a peek) is still a full bucket: not stored.
            let changed =
                throttle.theoretical_arrival_ns() != Throttle::new().theoretical_arrival_ns();
            if changed {
                store
                    .keyspace
                    .insert(key, Value::Throttle(throttle.clone()));
            }
            (outcome, changed, throttle)
        }
    };
    if changed {
        store.keyspace.set_timer(key, Some(throttle.stale_at_ms()));
        let mut digits = itoa::Buffer::new();
        let tat = digits.format(throttle.theoretical_arrival_ns());
        call.log(&[b"CL.SETTAT", key, tat.as_bytes()]);
    }
    Reply::Array(vec![
        Reply::Integer(i64::from(outcome.limited)),
        Reply::Integer(outcome.limit),
        Reply::Integer(outcome.remaining),
        Reply::Integer(outcome.retry_after_s),
        Reply::Integer(outcome.reset_after_s),
    ])
}

fn parse_parameters(call: &Call) -> Result<ThrottleParameters, Reply> {
    let max_burst = call.integer(2)?;
    let count = call.integer(3)?;
    let period_s = call.integer(4)?;
    let quantity = if call.arguments.len() == THROTTLE_ARGUMENTS_MAX {
        call.integer(5)?
    } else {
        1
    };
    ThrottleParameters::new(max_burst, count, period_s, quantity).map_err(Reply::error)
}

/// `CL.SETTAT key tat-ns` (internal: only replay runs it) -> OK. Restores a limiter's TAT as logged.
pub fn set_theoretical_arrival(store: &mut Store, call: &mut Call) -> Reply {
    let Some(theoretical_arrival_ns) = std::str::from_utf8(call.argument(2))
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
    else {
        return not_an_integer();
    };
    let key = call.key();
    match store
        .keyspace
        .get_mut(key, call.now_ms)
        .map(|entry| &mut entry.value)
    {
        Some(Value::Throttle(throttle)) => {
            *throttle = Throttle::from_theoretical_arrival_ns(theoretical_arrival_ns);
        }
        Some(_) => return wrong_type(),
        None => store.keyspace.insert(
            key,
            Value::Throttle(Throttle::from_theoretical_arrival_ns(
                theoretical_arrival_ns,
            )),
        ),
    }
    let throttle = Throttle::from_theoretical_arrival_ns(theoretical_arrival_ns);
    store.keyspace.set_timer(key, Some(throttle.stale_at_ms()));
    call.log_as_received();
    Reply::OK
}

/// The active cycle's work for one limiter whose timer is due: a stale key is dropped and logged as
/// `DEL key`; a key whose TAT moved on keeps a timer at its new staleness time.
pub fn fire_timer(
    throttle: &mut Throttle,
    key: &[u8],
    now_ms: u64,
    mutations: &mut Mutations,
) -> Fired {
    if throttle.is_stale(now_ms) {
        mutations.push(now_ms, [&b"DEL"[..], key]);
        Fired::RemoveKey
    } else {
        Fired::Next(Some(throttle.stale_at_ms()))
    }
}
