//! The rate-limit commands: CL.THROTTLE, answer-compatible with redis-cell, and the internal CL.SETTAT that
//! only the log carries. The arithmetic lives in [`super`]; this module parses arguments, maps
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

use super::{Throttle, ThrottleParameters};
use crate::command::error::{not_an_integer, wrong_type};
use crate::command::{Call, Mutations};
use crate::resp::Reply;
use crate::store::{Fired, Store, Value};

/// `CL.THROTTLE key max_burst count_per_period period [quantity]`
/// -> `[limited, limit, remaining, retry_after_s, reset_after_s]`
pub fn throttle(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let parameters = parse_parameters(call)?;
    let key = call.key();
    let now_ms = call.now_ms;
    // Computed on a copy: only a call that leaves the key in debt is stored.
    let mut throttle = match store.keyspace.get(key, now_ms).map(|entry| &entry.value) {
        Some(Value::Throttle(throttle)) => throttle.clone(),
        Some(_) => return Err(wrong_type()),
        None => Throttle::new(),
    };
    let before_ns = throttle.theoretical_arrival_ns();
    let outcome = throttle.throttle(now_ms, &parameters);
    // A limited call leaves the TAT alone. A peek (quantity 0) on a stale key moves it up to `now`, where it
    // is still stale: that answers exactly as before, so it is not a change and the key is not touched.
    let changed = throttle.theoretical_arrival_ns() != before_ns && !throttle.is_stale(now_ms);
    if changed {
        let stale_at_ms = throttle.stale_at_ms();
        let mut digits = itoa::Buffer::new();
        let tat = digits.format(throttle.theoretical_arrival_ns());
        match store.keyspace.get_mut(key, now_ms) {
            // Assigned in place: an EXPIRE the client set on the key stays.
            Some(entry) => entry.value = Value::Throttle(throttle.clone()),
            None => store
                .keyspace
                .insert(key, Value::Throttle(throttle.clone())),
        }
        store.keyspace.set_timer(key, Some(stale_at_ms));
        call.log(&[b"CL.SETTAT", key, tat.as_bytes()]);
    }
    Ok(Reply::Array(vec![
        Reply::Integer(i64::from(outcome.limited)),
        Reply::Integer(outcome.limit),
        Reply::Integer(outcome.remaining),
        Reply::Integer(outcome.retry_after_s),
        Reply::Integer(outcome.reset_after_s),
    ]))
}

fn parse_parameters(call: &Call) -> Result<ThrottleParameters, Reply> {
    let max_burst = call.integer(2)?;
    let count = call.integer(3)?;
    let period_s = call.integer(4)?;
    // The optional quantity; the table's arity allows no more.
    let quantity = match call.arguments.get(5) {
        Some(_) => call.integer(5)?,
        None => 1,
    };
    ThrottleParameters::new(max_burst, count, period_s, quantity).map_err(Reply::error)
}

/// `CL.SETTAT key tat-ns` (internal: only replay runs it) -> OK. Restores a limiter's TAT as logged.
pub fn set_theoretical_arrival(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let Some(theoretical_arrival_ns) = std::str::from_utf8(call.argument(2))
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
    else {
        return Err(not_an_integer());
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
        Some(_) => return Err(wrong_type()),
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
    Ok(Reply::OK)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch;
    use crate::store::live_store::{reply_text, Live};

    const START_MS: u64 = 1_700_000_000_000;

    fn throttle_at(store: &mut Store, key: &str) -> Option<Throttle> {
        match store
            .keyspace
            .get(key.as_bytes(), 0)
            .map(|entry| &entry.value)
        {
            Some(Value::Throttle(throttle)) => Some(throttle.clone()),
            Some(other) => panic!("not a throttle: {other:?}"),
            None => None,
        }
    }

    #[test]
    fn allowed_calls_log_the_absolute_tat_and_replay_restores_it() {
        let mut live = Live::new();
        let call = ["CL.THROTTLE", "k", "1", "1", "10"];
        assert_eq!(
            reply_text(&live.run(&call, START_MS)),
            "*5\r\n:0\r\n:2\r\n:1\r\n:-1\r\n:10\r\n"
        );
        let tat_ns = (START_MS + 10_000) * 1_000_000;
        assert_eq!(
            live.last_record(),
            (
                START_MS,
                vec![vec![
                    "CL.SETTAT".to_string(),
                    "k".into(),
                    tat_ns.to_string()
                ]]
            )
        );
        assert_eq!(live.store.keyspace.next_timer_ms(), Some(START_MS + 10_000));
        live.run(&call, START_MS + 1_000);
        let records = live.records.len();
        // Limited, and peeks, change nothing.
        assert_eq!(
            reply_text(&live.run(&call, START_MS + 2_000)),
            "*5\r\n:1\r\n:2\r\n:0\r\n:8\r\n:18\r\n"
        );
        live.run(&["CL.THROTTLE", "k", "1", "1", "10", "0"], START_MS + 2_000);
        live.run(&["CL.THROTTLE", "fresh", "1", "1", "10", "0"], START_MS);
        live.run(&["CL.THROTTLE", "fresh", "1", "1", "10", "3"], START_MS);
        assert_eq!(live.records.len(), records);
        assert!(
            throttle_at(&mut live.store, "fresh").is_none(),
            "a full bucket is not stored"
        );

        let mut replayed = live.replay().expect("replay succeeds");
        assert_eq!(
            throttle_at(&mut replayed, "k"),
            throttle_at(&mut live.store, "k")
        );
        assert_eq!(
            replayed.keyspace.next_timer_ms(),
            live.store.keyspace.next_timer_ms()
        );
        // The replayed key answers as the live one would, later on.
        let mut live_after = Live::new();
        live_after.store = replayed;
        assert_eq!(
            reply_text(&live_after.run(&call, START_MS + 15_000)),
            reply_text(&live.run(&call, START_MS + 15_000))
        );
    }

    #[test]
    fn stale_keys_are_dropped_by_the_active_cycle_and_logged_as_del() {
        let mut live = Live::new();
        live.run(&["CL.THROTTLE", "k", "5", "10", "1"], START_MS);
        assert_eq!(live.store.keyspace.next_timer_ms(), Some(START_MS + 100));
        assert!(live.fire(START_MS + 99).is_empty());
        live.fire(START_MS + 100);
        assert_eq!(
            live.last_record(),
            (START_MS + 100, vec![vec!["DEL".to_string(), "k".into()]])
        );
        assert!(throttle_at(&mut live.store, "k").is_none());
        let mut replayed = live.replay().expect("replay succeeds");
        assert!(throttle_at(&mut replayed, "k").is_none());
        assert_eq!(replayed.keyspace.next_timer_ms(), None);
    }

    #[test]
    fn failing_calls_change_and_log_nothing_and_settat_is_internal() {
        let mut live = Live::new();
        live.run(&["SADD", "set", "m"], START_MS);
        let records = live.records.len();
        let failing: &[&[&str]] = &[
            &["CL.THROTTLE", "k", "x", "1", "1"],
            &["CL.THROTTLE", "k", "-1", "1", "1"],
            &["CL.THROTTLE", "k", "1", "0", "1"],
            &["CL.THROTTLE", "k", "1", "1", "0"],
            &["CL.THROTTLE", "k", "1", "1", "1", "-1"],
            &["CL.THROTTLE", "k", "1", "1", "1", "1", "extra"],
            &["CL.THROTTLE", "set", "1", "1", "1"],
        ];
        for arguments in failing {
            assert!(live.run(arguments, START_MS).is_error(), "{arguments:?}");
        }
        assert_eq!(live.records.len(), records);
        assert!(throttle_at(&mut live.store, "k").is_none());
        assert!(dispatch::lookup_for_client(b"cl.settat").is_none());
        assert!(dispatch::lookup(b"CL.SETTAT").is_some());
    }
}
