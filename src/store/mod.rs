pub mod coupon;
pub mod idempotency;
pub mod stock;
