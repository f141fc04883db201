pub mod coupon;
pub mod idempotency;
