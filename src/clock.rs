//! Wall-clock time. Only the event loop and start-up read it: a command gets the loop's value for its
//! iteration (`now_ms`), never reads a clock itself, so replay with the logged value reaches the same state.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the clock is set before it).
pub fn system_time_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}
