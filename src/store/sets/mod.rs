//! The `set` value type: Redis's unordered collection of distinct byte strings.
//!
//! A set is an insertion-ordered hash set, so SSCAN can walk it by position (see `commands`) and a
//! snapshot writes its members in a stable order. A set that loses its last member is deleted, as in
//! Redis, so a stored set is never empty.

pub mod codec;
pub mod commands;

use bytes::Bytes;
use indexmap::IndexSet;

use super::keyspace::Hasher;

/// The members of one set.
pub type SetValue = IndexSet<Bytes, Hasher>;

/// What `TYPE` says for a set key.
pub const TYPE_NAME: &str = "set";

/// Checks what every stored set guarantees: it is not empty (the command that removes the last member
/// deletes the key). Distinct members are the `IndexSet`'s own guarantee.
pub fn check_invariants(set: &SetValue) {
    assert!(!set.is_empty(), "a stored set is never empty");
}
