//! Wall-clock time, read only by the loop and start-up; commands get the loop's value, never read it.
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix milliseconds from the system clock.
pub fn system_time_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}
