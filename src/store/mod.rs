pub mod likes;
pub mod throttle;
