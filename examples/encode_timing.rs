//! How long the largest values take to serialize for a snapshot, and to copy (what changing a value the
//! snapshot writer still holds costs the loop).
use std::time::Instant;

use dibs::store::coupon::{Coupon, CouponSpec};
use dibs::store::encoding::encode_entry;
use dibs::store::idempotency::IdempotencyPolicy;
use dibs::store::{SetValue, Shared, Value};

fn main() {
    let spec = CouponSpec {
        total: 10_000_000,
        per_user: None,
        start_ms: None,
        end_ms: None,
    };
    let mut coupon = Coupon::create(spec, IdempotencyPolicy::default()).unwrap();
    for user in 0..260_000 {
        coupon
            .issue(format!("user:{:012}", user * 3).as_bytes(), None, 0)
            .unwrap();
    }
    let mut set = SetValue::default();
    for member in 0..86_000 {
        set.insert(bytes::Bytes::from(format!("member:{member:012}")));
    }
    for (name, value) in [
        ("coupon, 260k holders", Value::Coupon(Shared::new(coupon))),
        ("set, 86k members", Value::Set(Shared::new(set))),
    ] {
        for _ in 0..3 {
            let mut out = Vec::with_capacity(1 << 20);
            let started = Instant::now();
            encode_entry(b"key", &value, None, &mut out);
            println!(
                "{name}: {} bytes in {:.2} ms",
                out.len(),
                started.elapsed().as_secs_f64() * 1000.0
            );
        }
        // What the loop pays instead when it changes a value the snapshot writer still holds frozen.
        for _ in 0..3 {
            let started = Instant::now();
            let copy: Box<dyn std::any::Any> = match &value {
                Value::Coupon(coupon) => Box::new((**coupon).clone()),
                Value::Set(set) => Box::new((**set).clone()),
                _ => unreachable!("only these two above"),
            };
            println!(
                "{name}: copied in {:.2} ms",
                started.elapsed().as_secs_f64() * 1000.0
            );
            drop(copy);
        }
    }
}
