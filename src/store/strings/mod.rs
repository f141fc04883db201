//! The `string` value type: a byte string of at most `limits::BULK_LENGTH_MAX` bytes, held as
//! [`SmallBytes`] (inline when short, so SET of a small value and INCR allocate nothing). Counters are
//! strings that parse as 64-bit integers, as in Redis.

pub mod codec;
pub mod commands;

use crate::limits::BULK_LENGTH_MAX;
use crate::small_bytes::SmallBytes;

/// What `TYPE` says for a string key.
pub const TYPE_NAME: &str = "string";

/// Checks what every stored string guarantees: it is no longer than a request's bulk string may be (APPEND
/// and SET refuse to grow one past it).
pub fn check_invariants(value: &SmallBytes) {
    assert!(
        value.len() <= BULK_LENGTH_MAX,
        "a string fits a bulk string"
    );
}
