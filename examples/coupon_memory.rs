//! Bytes per coupon holder, and the longest single issue, at the rush's shape: one event, users named as
//! `redis-benchmark -r 100000000 ... user:__rand_int__` names them (`user:` and 12 digits), one coupon
//! each. Applies the issues to a `Coupon` directly (no network, no log), so the figures are the coupon's
//! own: the resident memory growth per holder (what the server comparison with Redis's set-plus-hash
//! recipe measures, less the server's buffers), what `approximate_memory_bytes` accounts for, and the
//! slowest `issue` call in CPU time (a table that doubled in one go showed here as tens of milliseconds).
//!
//! cargo run --release --example coupon_memory [issues] [peruser]

use std::time::{Duration, Instant};

use dibs::store::coupon::{Coupon, CouponSpec};
use dibs::store::idempotency::IdempotencyPolicy;

fn main() {
    // The server's allocator policy (large buffers in their own mappings), so the figures are the server's.
    dibs::memory::configure_allocator();
    let mut arguments = std::env::args()
        .skip(1)
        .map(|argument| argument.parse::<u64>().expect("a count"));
    let issues = arguments.next().unwrap_or(1_200_000);
    let per_user = arguments.next().unwrap_or(1);

    let spec = CouponSpec {
        total: 10_000_000,
        per_user: Some(per_user),
        start_ms: None,
        end_ms: None,
    };
    let mut coupon = Coupon::create(spec, IdempotencyPolicy::default()).expect("valid spec");
    // A fixed xorshift stream: the measurement is repeatable.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut name = Vec::with_capacity(32);
    let before = dibs::memory::resident_bytes();
    let started = Instant::now();
    // CPU time per call, so other processes on the machine don't count: a table that doubles in one go
    // shows here as its doublings.
    let mut slowest = Duration::ZERO;
    let mut slow_issues = 0u64;
    let mut issued = 0u64;
    for _ in 0..issues {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        name.clear();
        std::io::Write::write_fmt(&mut name, format_args!("user:{:012}", state % 100_000_000))
            .expect("a Vec takes any write");
        let call_started = dibs::memory::thread_cpu_time();
        let applied = coupon.issue(&name, None, 0).expect("a valid user");
        let call_elapsed = dibs::memory::thread_cpu_time() - call_started;
        slowest = slowest.max(call_elapsed);
        slow_issues += u64::from(call_elapsed > Duration::from_millis(1));
        issued += u64::from(applied.changed);
    }
    let elapsed = started.elapsed();
    let after = dibs::memory::resident_bytes();
    let holders = coupon.holder_count() as f64;

    println!(
        "{issues} issues: {issued} coupons to {} holders in {:.0} ms ({:.0} ns an issue with two clock reads), slowest issue {:.1} us of CPU, {slow_issues} over 1 ms",
        coupon.holder_count(),
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_nanos() as f64 / issues as f64,
        slowest.as_secs_f64() * 1e6
    );
    println!(
        "resident growth: {:.1} bytes per holder ({} bytes)",
        (after - before) as f64 / holders,
        after - before
    );
    println!(
        "approximate_memory_bytes: {:.1} bytes per holder",
        coupon.approximate_memory_bytes() as f64 / holders
    );
}
