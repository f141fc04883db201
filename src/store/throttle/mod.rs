//! Rate limits: CL.THROTTLE, the generic cell rate algorithm (GCRA), answer-compatible with redis-cell.
//!
//! A key's whole state is one number, its theoretical arrival time (TAT) in Unix nanoseconds: the moment
//! the bucket would be empty again. Each call is judged against the parameters it carries, exactly as in
//! redis-cell (so two callers with different parameters on one key see one shared TAT).
//!
//! # Arithmetic (redis-cell 0.4, `redis-cell-impl`; checked against its published test table)
//! - emission interval = period / count, in whole nanoseconds (`(period_ns as f64 / count as f64) as i64`);
//!   an interval of 0 ns is refused like redis-cell refuses it ("Zero rates are not supported").
//! - delay variation tolerance = emission interval * (max_burst + 1); limit = max_burst + 1.
//! - tat = max(stored TAT, now); new_tat = tat + interval * quantity; allowed iff now >= new_tat - tolerance.
//!   redis-cell keys expire at their TAT, so a TAT in the past reads as "now": the `max` is that expiry.
//! - allowed: TAT := new_tat, reset_after = new_tat - now, retry_after = -1.
//!   limited: TAT unchanged, reset_after = tat - now, retry_after = new_tat - tolerance - now, or -1 when the
//!   request is larger than the whole burst (it can never succeed).
//! - remaining = trunc(us(tolerance - reset_after) / us(interval)) when tolerance - reset_after > -interval,
//!   else 0, where us() truncates nanoseconds to whole microseconds.
//! - retry_after_s and reset_after_s: whole seconds, plus one if the sub-second part has at least one whole
//!   millisecond (redis-cell rounds up so a fast caller does not retry too early).
//!
//! Differences from redis-cell, both only where redis-cell misbehaves: negative arguments are refused
//! (redis-cell accepts them and computes nonsense), and periods or tolerances above 100 years are refused
//! (redis-cell's nanosecond arithmetic overflows there). dibs's clock has millisecond resolution.
//!
//! # Durability
//! Limiter state need not be logged: a missing key is a full bucket, so losing state at a restart can only
//! let more requests through, never lock anyone out. If it is logged anyway, log the absolute TAT
//! ([`Throttle::theoretical_arrival_ns`], restored with [`Throttle::from_theoretical_arrival_ns`]) and never
//! re-run the command at replay, so a replay on a different clock cannot invent a debt.
//! A key whose TAT is in the past ([`Throttle::is_stale`]) answers exactly like a missing key and can be
//! dropped at any time; [`Throttle::stale_at_ms`] says when that happens (a natural key expiry).

pub mod codec;
pub mod commands;

use crate::limits::{THROTTLE_PERIOD_S_MAX, THROTTLE_TOLERANCE_S_MAX};

/// What `TYPE` says for a rate-limit key.
pub const TYPE_NAME: &str = "throttle";

const NANOSECONDS_PER_MILLISECOND: i128 = 1_000_000;
const NANOSECONDS_PER_SECOND: i128 = 1_000_000_000;

/// The arguments of one CL.THROTTLE call, validated. Build it before touching the key, so a call with bad
/// arguments creates and changes nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottleParameters {
    /// max_burst + 1: how many requests of quantity 1 a fresh key allows at once.
    limit: i64,
    /// period / count, in nanoseconds; always positive.
    emission_interval_ns: i64,
    /// emission interval * limit, in nanoseconds.
    tolerance_ns: i128,
    quantity: i64,
}

impl ThrottleParameters {
    /// Validates `max_burst count_per_period period_s [quantity]` (pass quantity 1 when it was omitted).
    pub fn new(max_burst: i64, count: i64, period_s: i64, quantity: i64) -> Result<Self, String> {
        if max_burst < 0 {
            return Err("ERR max_burst must be a non-negative integer".to_string());
        }
        if count < 0 {
            return Err("ERR count per period must be a non-negative integer".to_string());
        }
        if period_s < 0 {
            return Err("ERR period must be a non-negative integer".to_string());
        }
        if quantity < 0 {
            return Err("ERR quantity must be a non-negative integer".to_string());
        }
        if period_s > THROTTLE_PERIOD_S_MAX {
            return Err(format!(
                "ERR period must be at most {THROTTLE_PERIOD_S_MAX} seconds"
            ));
        }
        if count == 0 || period_s == 0 {
            return Err("ERR Zero rates are not supported".to_string());
        }
        let period_ns = period_s as i128 * NANOSECONDS_PER_SECOND;
        // redis-cell divides in floating point and truncates to whole nanoseconds; do the same so answers
        // agree to the nanosecond.
        let emission_interval_ns = (period_ns as f64 / count as f64) as i64;
        if emission_interval_ns == 0 {
            return Err("ERR Zero rates are not supported".to_string());
        }
        let limit = max_burst
            .checked_add(1)
            .ok_or_else(|| "ERR max_burst is out of range".to_string())?;
        let tolerance_ns = emission_interval_ns as i128 * limit as i128;
        if tolerance_ns > THROTTLE_TOLERANCE_S_MAX as i128 * NANOSECONDS_PER_SECOND {
            return Err(format!(
                "ERR period / count * (max_burst + 1) must be at most {THROTTLE_TOLERANCE_S_MAX} seconds"
            ));
        }
        Ok(ThrottleParameters {
            limit,
            emission_interval_ns,
            tolerance_ns,
            quantity,
        })
    }
}

/// The reply of CL.THROTTLE, field for field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottleOutcome {
    pub limited: bool,
    /// max_burst + 1.
    pub limit: i64,
    pub remaining: i64,
    /// Seconds until the same request would be allowed; -1 when allowed, or when it never can be.
    pub retry_after_s: i64,
    /// Seconds until the key is back to a full bucket.
    pub reset_after_s: i64,
}

/// One rate-limit key: just its theoretical arrival time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Throttle {
    /// Unix nanoseconds; 0 for a key that has never allowed anything.
    theoretical_arrival_ns: u64,
}

impl Throttle {
    pub fn new() -> Self {
        Throttle::default()
    }

    /// Restores a key from a logged TAT (see the module documentation on durability).
    pub fn from_theoretical_arrival_ns(theoretical_arrival_ns: u64) -> Self {
        Throttle {
            theoretical_arrival_ns,
        }
    }

    pub fn theoretical_arrival_ns(&self) -> u64 {
        self.theoretical_arrival_ns
    }

    /// Runs one CL.THROTTLE call at `now_ms`. Quantity 0 peeks: it never changes what later calls see.
    pub fn throttle(&mut self, now_ms: u64, parameters: &ThrottleParameters) -> ThrottleOutcome {
        let now_ns = now_ms as i128 * NANOSECONDS_PER_MILLISECOND;
        let emission_interval_ns = parameters.emission_interval_ns as i128;
        let tolerance_ns = parameters.tolerance_ns;
        let increment_ns = emission_interval_ns * parameters.quantity as i128;

        let arrival_ns = (self.theoretical_arrival_ns as i128).max(now_ns);
        let arrival_next_ns = arrival_ns + increment_ns;
        let allowed_at_ns = arrival_next_ns - tolerance_ns;

        let limited = now_ns < allowed_at_ns;
        let (retry_after_ns, reset_after_ns) = if limited {
            // A request larger than the whole burst can never pass: redis-cell says -1, not "wait".
            let retry_after_ns = (increment_ns <= tolerance_ns).then_some(allowed_at_ns - now_ns);
            (retry_after_ns, arrival_ns - now_ns)
        } else {
            assert!(arrival_next_ns <= now_ns + tolerance_ns);
            self.theoretical_arrival_ns =
                u64::try_from(arrival_next_ns).expect("now + tolerance fits a u64 of nanoseconds");
            (None, arrival_next_ns - now_ns)
        };
        assert!(reset_after_ns >= 0);

        let next_ns = tolerance_ns - reset_after_ns;
        let remaining = if next_ns > -emission_interval_ns {
            // redis-cell divides whole microseconds in floating point and truncates toward zero.
            let next_us = next_ns / 1_000;
            let emission_interval_us = emission_interval_ns / 1_000;
            (next_us as f64 / emission_interval_us as f64) as i64
        } else {
            0
        };

        ThrottleOutcome {
            limited,
            limit: parameters.limit,
            remaining,
            retry_after_s: retry_after_ns.map_or(-1, seconds_rounded_up_by_millisecond),
            reset_after_s: seconds_rounded_up_by_millisecond(reset_after_ns),
        }
    }

    /// True when the TAT is not after `now_ms`: the key answers exactly like a missing key, now and at any
    /// later time, so it can be dropped.
    pub fn is_stale(&self, now_ms: u64) -> bool {
        self.theoretical_arrival_ns as i128 <= now_ms as i128 * NANOSECONDS_PER_MILLISECOND
    }

    /// The first millisecond at which [`Throttle::is_stale`] holds: the key's natural expiry.
    pub fn stale_at_ms(&self) -> u64 {
        self.theoretical_arrival_ns
            .div_ceil(NANOSECONDS_PER_MILLISECOND as u64)
    }

    pub fn approximate_memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
    }

    /// A limiter is one arrival time, and every `u64` is a valid one (0: never allowed anything; any
    /// later time: stale from then on): there is nothing to check. Present so that every value type
    /// answers the same question (`Value::check_invariants`).
    pub fn check_invariants(&self) {}
}

/// Whole seconds, plus one when at least one whole millisecond is left over (redis-cell's reply rounding).
fn seconds_rounded_up_by_millisecond(duration_ns: i128) -> i64 {
    assert!(duration_ns >= 0);
    let seconds = duration_ns / NANOSECONDS_PER_SECOND;
    let leftover_ms = (duration_ns % NANOSECONDS_PER_SECOND) / NANOSECONDS_PER_MILLISECOND;
    (seconds + i128::from(leftover_ms > 0)) as i64
}

#[cfg(test)]
mod tests;
