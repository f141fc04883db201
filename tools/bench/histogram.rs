//! Latency recording: a real HDR histogram per client thread, merged at the end, and the percentile summary
//! every report prints (p50, p99, p99.9, max). Averages hide the tail a flash sale is judged by, so none is
//! reported as a headline number.

use hdrhistogram::Histogram;
use std::time::Duration;

/// The slowest latency the histogram can hold; slower samples are clamped to it rather than lost.
const LATENCY_US_MAX: u64 = 60_000_000;
/// Three significant digits: a reported percentile is within 0.1% of the true sample.
const SIGNIFICANT_DIGITS: u8 = 3;

/// Latencies of one run in microseconds.
pub struct Latencies {
    histogram: Histogram<u64>,
}

/// The numbers a report prints, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    pub fn new() -> Latencies {
        Latencies {
            histogram: Histogram::new_with_bounds(1, LATENCY_US_MAX, SIGNIFICANT_DIGITS)
                .expect("static histogram bounds are valid"),
        }
    }

    pub fn record(&mut self, latency: Duration) {
        self.record_us(latency.as_micros() as u64);
    }

    pub fn record_us(&mut self, latency_us: u64) {
        // A sub-microsecond reply still counts as one sample; the histogram's lowest bucket is 1 us.
        self.histogram.saturating_record(latency_us.max(1));
    }

    pub fn merge(&mut self, other: &Latencies) {
        self.histogram
            .add(&other.histogram)
            .expect("histograms built with the same bounds always merge");
    }

    pub fn summary(&self) -> LatencySummary {
        if self.histogram.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: self.histogram.len(),
            p50_us: self.histogram.value_at_quantile(0.50),
            p99_us: self.histogram.value_at_quantile(0.99),
            p999_us: self.histogram.value_at_quantile(0.999),
            max_us: self.histogram.max(),
        }
    }
}

/// Microseconds as milliseconds with three decimals, the unit redis-benchmark prints.
pub fn milliseconds(microseconds: u64) -> String {
    format!("{:.3}", microseconds as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close_to(actual: u64, expected: u64) -> bool {
        // Three significant digits: within 0.1% plus one bucket of rounding.
        actual.abs_diff(expected) <= expected / 1000 + 1
    }

    #[test]
    fn percentiles_of_a_uniform_run() {
        let mut latencies = Latencies::new();
        for value in 1..=10_000 {
            latencies.record_us(value);
        }
        let summary = latencies.summary();
        assert_eq!(summary.count, 10_000);
        assert!(close_to(summary.p50_us, 5_000), "{summary:?}");
        assert!(close_to(summary.p99_us, 9_900), "{summary:?}");
        assert!(close_to(summary.p999_us, 9_990), "{summary:?}");
        assert!(close_to(summary.max_us, 10_000), "{summary:?}");
    }

    #[test]
    fn the_tail_is_not_averaged_away() {
        let mut latencies = Latencies::new();
        for _ in 0..990 {
            latencies.record_us(100);
        }
        for _ in 0..10 {
            latencies.record_us(50_000);
        }
        let summary = latencies.summary();
        assert!(close_to(summary.p50_us, 100));
        assert!(
            close_to(summary.p99_us, 100),
            "990 of 1000 samples are 100 us"
        );
        assert!(
            close_to(summary.p999_us, 50_000),
            "the slowest 1% shows at p99.9"
        );
        assert!(close_to(summary.max_us, 50_000));
    }

    #[test]
    fn merging_two_threads_equals_one_recording() {
        let mut first = Latencies::new();
        let mut second = Latencies::new();
        let mut both = Latencies::new();
        for value in 1..=500 {
            first.record_us(value);
            both.record_us(value);
        }
        for value in 501..=1000 {
            second.record_us(value);
            both.record_us(value);
        }
        first.merge(&second);
        assert_eq!(first.summary(), both.summary());
    }

    #[test]
    fn empty_and_out_of_range_samples() {
        assert_eq!(Latencies::new().summary(), LatencySummary::default());
        let mut latencies = Latencies::new();
        latencies.record(Duration::from_nanos(10));
        latencies.record_us(LATENCY_US_MAX * 10);
        let summary = latencies.summary();
        assert_eq!(summary.count, 2);
        assert!(close_to(summary.max_us, LATENCY_US_MAX));
        assert_eq!(milliseconds(1234), "1.234");
    }
}
