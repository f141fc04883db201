pub mod likes;
pub mod queue;
pub mod throttle;
