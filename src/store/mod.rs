pub mod throttle;
