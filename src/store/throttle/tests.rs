use super::*;
use crate::store::encoding::Reader;
use proptest::prelude::*;

const START_MS: u64 = 1_700_000_000_000;

fn parameters(max_burst: i64, count: i64, period_s: i64, quantity: i64) -> ThrottleParameters {
    ThrottleParameters::new(max_burst, count, period_s, quantity).unwrap()
}

fn outcome(limited: bool, limit: i64, remaining: i64, retry: i64, reset: i64) -> ThrottleOutcome {
    ThrottleOutcome {
        limited,
        limit,
        remaining,
        retry_after_s: retry,
        reset_after_s: reset,
    }
}

/// redis-cell's own test table (`it_rate_limits`): limit 5, 1 per second. Its durations are exact
/// there; the seconds below are its reply rounding applied to them.
#[test]
fn matches_the_redis_cell_table() {
    let mut throttle = Throttle::new();
    #[rustfmt::skip]
    let cases: [(u64, i64, ThrottleOutcome); 15] = [
        // A request larger than the burst is never allowed, and says so with retry -1.
        (0, 6, outcome(true, 5, 5, -1, 0)),
        (0, 1, outcome(false, 5, 4, -1, 1)),
        (0, 1, outcome(false, 5, 3, -1, 2)),
        (0, 1, outcome(false, 5, 2, -1, 3)),
        (0, 1, outcome(false, 5, 1, -1, 4)),
        (0, 1, outcome(false, 5, 0, -1, 5)),
        (0, 1, outcome(true, 5, 0, 1, 5)),
        (3_000, 1, outcome(false, 5, 2, -1, 3)),
        (3_100, 1, outcome(false, 5, 1, -1, 4)), // reset_after 3.9 s rounds up
        (4_000, 1, outcome(false, 5, 1, -1, 4)),
        (8_000, 1, outcome(false, 5, 4, -1, 1)),
        (9_500, 1, outcome(false, 5, 4, -1, 1)),
        // Quantity 0 peeks.
        (9_500, 0, outcome(false, 5, 4, -1, 1)),
        (9_500, 2, outcome(false, 5, 2, -1, 3)),
        (9_500, 5, outcome(true, 5, 2, 3, 3)),
    ];
    for (number, (offset_ms, quantity, expected)) in cases.into_iter().enumerate() {
        let got = throttle.throttle(START_MS + offset_ms, &parameters(4, 1, 1, quantity));
        assert_eq!(got, expected, "case {number}");
    }
}

#[test]
fn validates_arguments_like_redis_cell() {
    assert!(ThrottleParameters::new(-1, 1, 1, 1)
        .unwrap_err()
        .starts_with("ERR max_burst"));
    assert!(ThrottleParameters::new(1, -1, 1, 1)
        .unwrap_err()
        .starts_with("ERR count"));
    assert!(ThrottleParameters::new(1, 1, -1, 1)
        .unwrap_err()
        .starts_with("ERR period"));
    assert!(ThrottleParameters::new(1, 1, 1, -1)
        .unwrap_err()
        .starts_with("ERR quantity"));
    let zero = "ERR Zero rates are not supported";
    assert_eq!(ThrottleParameters::new(1, 0, 1, 1).unwrap_err(), zero);
    assert_eq!(ThrottleParameters::new(1, 1, 0, 1).unwrap_err(), zero);
    // Below one nanosecond per request redis-cell's interval truncates to 0: also refused.
    assert_eq!(
        ThrottleParameters::new(1, 2_000_000_000, 1, 1).unwrap_err(),
        zero
    );
    assert!(ThrottleParameters::new(1, 1, THROTTLE_PERIOD_S_MAX + 1, 1).is_err());
    assert!(ThrottleParameters::new(i64::MAX, 1, 1, 1).is_err());
    assert!(ThrottleParameters::new(0, 1, THROTTLE_PERIOD_S_MAX, 1).is_ok());
    assert!(ThrottleParameters::new(1, 1, THROTTLE_PERIOD_S_MAX, 1).is_err());
}

#[test]
fn a_peek_on_a_fresh_key_shows_a_full_bucket_and_leaves_it_stale() {
    let mut throttle = Throttle::new();
    let got = throttle.throttle(START_MS, &parameters(9, 10, 60, 0));
    assert_eq!(got, outcome(false, 10, 10, -1, 0));
    assert!(throttle.is_stale(START_MS));
}

#[test]
fn staleness_and_its_deadline() {
    let mut throttle = Throttle::new();
    assert!(throttle.is_stale(0));
    // 2 per 3 s: interval 1.5 s; one request sets TAT to now + 1.5 s.
    throttle.throttle(START_MS, &parameters(0, 2, 3, 1));
    assert_eq!(throttle.stale_at_ms(), START_MS + 1_500);
    assert!(!throttle.is_stale(START_MS + 1_499));
    assert!(throttle.is_stale(START_MS + 1_500));
    // A stale key answers like a fresh one.
    let mut fresh = Throttle::new();
    let later = START_MS + 1_500;
    let p = parameters(0, 2, 3, 1);
    assert_eq!(
        throttle.clone().throttle(later, &p),
        fresh.throttle(later, &p)
    );
}

#[test]
fn retry_after_rounds_up_by_whole_milliseconds_only() {
    assert_eq!(seconds_rounded_up_by_millisecond(0), 0);
    assert_eq!(seconds_rounded_up_by_millisecond(999_999), 0);
    assert_eq!(seconds_rounded_up_by_millisecond(1_000_000), 1);
    assert_eq!(seconds_rounded_up_by_millisecond(2_000_000_000), 2);
    assert_eq!(seconds_rounded_up_by_millisecond(2_000_999_999), 2);
    assert_eq!(seconds_rounded_up_by_millisecond(2_001_000_000), 3);
}

#[test]
fn a_clock_step_backwards_never_locks_out_more_than_the_tolerance() {
    let mut throttle = Throttle::new();
    let p = parameters(2, 3, 3, 1);
    for _ in 0..3 {
        assert!(!throttle.throttle(START_MS, &p).limited);
    }
    let got = throttle.throttle(START_MS - 10_000, &p);
    assert!(got.limited);
    assert!(got.reset_after_s <= 3 + 10);
}

/// GCRA as a textbook states it, in floating-point milliseconds.
struct ReferenceGcra {
    arrival_ms: f64,
}

impl ReferenceGcra {
    /// Returns (limited, remaining, retry_after_ms or -1, reset_after_ms).
    fn throttle(
        &mut self,
        now: f64,
        burst: i64,
        count: i64,
        period_s: i64,
        quantity: i64,
    ) -> (bool, f64, f64, f64) {
        let interval = period_s as f64 * 1_000.0 / count as f64;
        let tolerance = interval * (burst + 1) as f64;
        let arrival = self.arrival_ms.max(now);
        let next = arrival + interval * quantity as f64;
        if next - tolerance > now {
            let retry = if interval * quantity as f64 <= tolerance {
                next - tolerance - now
            } else {
                -1.0
            };
            let reset = arrival - now;
            (
                true,
                ((tolerance - reset) / interval).max(0.0),
                retry,
                reset,
            )
        } else {
            self.arrival_ms = next;
            let reset = next - now;
            (
                false,
                ((tolerance - reset) / interval).max(0.0),
                -1.0,
                reset,
            )
        }
    }
}

fn rounded_up_seconds(ms: f64) -> i64 {
    (ms / 1_000.0).ceil() as i64
}

proptest! {
    #[test]
    fn agrees_with_a_floating_point_gcra(
        burst in 0i64..20,
        // Periods and counts whose interval is a whole number of microseconds, so both sides agree
        // exactly up to the documented rounding.
        (count, period_s) in prop_oneof![Just((1i64, 1i64)), Just((10, 1)), Just((5, 60)), Just((3, 3)), Just((100, 10)), Just((8, 1))],
        steps in proptest::collection::vec((0u64..3_000, 0i64..4), 1..80),
    ) {
        let mut throttle = Throttle::new();
        let mut reference = ReferenceGcra { arrival_ms: 0.0 };
        let mut now_ms = START_MS;
        for (advance_ms, quantity) in steps {
            now_ms += advance_ms;
            let got = throttle.throttle(now_ms, &parameters(burst, count, period_s, quantity));
            let (limited, remaining, retry_ms, reset_ms) =
                reference.throttle(now_ms as f64, burst, count, period_s, quantity);
            prop_assert_eq!(got.limited, limited);
            prop_assert_eq!(got.limit, burst + 1);
            prop_assert!((got.remaining as f64 - remaining.floor()).abs() <= 1.0, "{:?} vs {}", got, remaining);
            prop_assert!(got.remaining <= burst + 1);
            if retry_ms < 0.0 {
                prop_assert_eq!(got.retry_after_s, -1);
            } else {
                prop_assert!((got.retry_after_s - rounded_up_seconds(retry_ms)).abs() <= 1);
                prop_assert!(got.retry_after_s >= 1);
            }
            prop_assert!((got.reset_after_s - rounded_up_seconds(reset_ms)).abs() <= 1);
            // Waiting retry_after always makes the same request pass.
            if got.retry_after_s > 0 {
                let mut later = throttle.clone();
                let retry = later.throttle(now_ms + got.retry_after_s as u64 * 1_000, &parameters(burst, count, period_s, quantity));
                prop_assert!(!retry.limited);
            }
        }
    }
}

#[test]
fn snapshot_encoding_round_trips() {
    let throttle = Throttle::from_theoretical_arrival_ns(1_234_567_890_123);
    let mut out = Vec::new();
    throttle.encode(&mut out);
    assert_eq!(Throttle::decode(&mut Reader::new(&out)).unwrap(), throttle);
    assert!(Throttle::decode(&mut Reader::new(&out[..7])).is_err());
}
