//! The `set` value type: Redis's unordered collection of distinct byte strings.
//!
//! A set is an insertion-ordered hash set, so SSCAN can walk it by position (see `commands`) and a
//! snapshot writes its members in a stable order. A set that loses its last member is deleted, as in
//! Redis, so a stored set is never empty. Its members live in a [`Table`], which grows and shrinks a few
//! buckets at a time, so a set of millions adds no pause to the loop as it crosses a power of two.

pub mod codec;
pub mod commands;

use bytes::Bytes;

use super::keyspace::Hasher;
use super::table::Table;

/// The members of one set, in insertion order but for removals, which move the last member into the hole
/// (so a position names a member in O(1): SSCAN, SPOP and SRANDMEMBER use positions).
#[derive(Debug, Clone, Default)]
pub struct SetValue {
    members: Table<Bytes, (), Hasher>,
}

impl SetValue {
    pub fn new() -> SetValue {
        SetValue::default()
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        self.members.contains_key(member)
    }

    /// Adds `member`; false if it was there already.
    pub fn insert(&mut self, member: Bytes) -> bool {
        self.members.insert(member, ()).is_none()
    }

    /// Removes `member`, moving the last member into its position; false if it was not there.
    pub fn swap_remove(&mut self, member: &[u8]) -> bool {
        self.members.remove(member).is_some()
    }

    /// The member at `position` (below `len`).
    pub fn get_index(&self, position: usize) -> Option<&Bytes> {
        self.members.get_index(position).map(|(member, ())| member)
    }

    /// Removes the member at `position`, moving the last member into it.
    pub fn swap_remove_index(&mut self, position: usize) -> Option<Bytes> {
        self.members
            .swap_remove_index(position)
            .map(|(member, ())| member)
    }

    /// The members in position order.
    pub fn iter(&self) -> impl Iterator<Item = &Bytes> + '_ {
        self.members.iter().map(|(member, ())| member)
    }

    /// Moves up to `buckets` buckets of a resize in progress; true while one is still in progress.
    pub fn rehash_step(&mut self, buckets: usize) -> bool {
        self.members.rehash_step(buckets)
    }

    /// Whether the members' table is between two bucket arrays (the loop finishes the move).
    pub fn is_rehashing(&self) -> bool {
        self.members.is_rehashing()
    }

    /// Heap bytes of the members' table (segments and bucket arrays), not counting members' own heap.
    pub fn table_memory_bytes(&self) -> usize {
        self.members.memory_bytes()
    }
}

/// Set equality: the same members, whatever their order.
impl PartialEq for SetValue {
    fn eq(&self, other: &SetValue) -> bool {
        self.len() == other.len() && self.iter().all(|member| other.contains(member))
    }
}

impl Eq for SetValue {}

impl FromIterator<Bytes> for SetValue {
    fn from_iter<I: IntoIterator<Item = Bytes>>(members: I) -> SetValue {
        let mut set = SetValue::new();
        for member in members {
            set.insert(member);
        }
        set
    }
}

impl<'a> IntoIterator for &'a SetValue {
    type Item = &'a Bytes;
    type IntoIter = Box<dyn Iterator<Item = &'a Bytes> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// What `TYPE` says for a set key.
pub const TYPE_NAME: &str = "set";

/// Checks what every stored set guarantees: it is not empty (the command that removes the last member
/// deletes the key). Distinct members are the table's own guarantee.
pub fn check_invariants(set: &SetValue) {
    assert!(!set.is_empty(), "a stored set is never empty");
}
