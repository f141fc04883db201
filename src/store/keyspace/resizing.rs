//! Finishing collections' resizes between requests.
//!
//! A collection's hash table (`store::table`) moves buckets from its old array to its new one only
//! during inserts and removes. A set that stops changing in the middle of a resize would keep both arrays
//! forever, and one emptied from millions of members to a handful would keep its memory until more
//! writes. So the keyspace remembers which keys may hold a table mid-resize, and the loop calls
//! [`Keyspace::rehash_step`] once per iteration to move a bounded number of their buckets (Redis's
//! `activerehashing`, for collections instead of the key table).
//!
//! Guarantees:
//! - Every change that can leave a table mid-resize is seen: `get_mut` and `get_or_insert_with` of a
//!   collection note the key, and the key is checked once the change is over (at the next change to
//!   another key, or at the next step); `insert*` checks the new value at once. Replay runs through the
//!   same paths, so recovery leaves its resizes to the loop; a snapshot load finishes them on its
//!   threads (`loader.rs`).
//! - Work per step: at most `buckets` buckets moved, and every key visited costs at least one of them
//!   (its lookup costs about as much as moving a bucket), so a long list costs no more than a short one.
//! - A key in the list that was since deleted, overwritten with another value, renamed or emptied is
//!   dropped when the step reaches it: the list is a hint, never trusted. A renamed value is noted under
//!   its new name by the insert.
//! - A value the snapshot writer still holds a second handle to is skipped (moving buckets through the
//!   handle would copy the whole value on the loop) and retried on a later step.
//! - Moving buckets changes neither the elements nor their order, so it is not a write: nothing is
//!   logged, no WATCH version changes, and a pending snapshot entry serializes the same before and after
//!   (which is why this path, alone, changes an entry without the copy-on-write hook).

use indexmap::IndexSet;

use super::{Hasher, Key, Keyspace};

/// Buckets moved per call into a value; a value that finishes within a call is charged the whole call, so
/// this bounds what a finished key may overcharge, while keeping the calls few for a large table.
const REHASH_CALL_BUCKETS: usize = 64;

/// The keys that may hold a collection mid-resize, and which of them the next change leaves to check.
#[derive(Debug, Default)]
pub(super) struct Resizing {
    /// Keys whose value was mid-resize when last checked; the step walks them round-robin.
    keys: IndexSet<Key, Hasher>,
    /// Where the next step starts in `keys`.
    pub(super) cursor: usize,
    /// The collection last handed out for a change: checked once that change is over.
    changed: Option<Key>,
}

impl Keyspace {
    /// Notes that the collection at `key` is being changed; the key is checked for a resize in progress
    /// once the change is over. Consecutive changes to one key (a pipeline of SADDs to one set) cost one
    /// compare each.
    pub(super) fn note_collection_change(&mut self, key: &[u8]) {
        if self.resizing.changed.as_deref() == Some(key) {
            return;
        }
        let previous = self.resizing.changed.replace(Key::copy_from_slice(key));
        if let Some(previous) = previous {
            self.check_resizing(previous);
        }
    }

    /// Remembers `key` if its value is mid-resize now.
    pub(super) fn check_resizing(&mut self, key: Key) {
        if let Some(place) = self.find(&key) {
            if self.entry_at(place).value.is_rehashing() {
                self.resizing.keys.insert(key);
            }
        }
    }

    /// Forgets every key (the keyspace was cleared).
    pub(super) fn resizing_clear(&mut self) {
        self.resizing = Resizing::default();
    }

    /// How many keys may still hold a collection mid-resize (for INFO and tests).
    pub fn resizing_count(&self) -> usize {
        self.resizing.keys.len() + usize::from(self.resizing.changed.is_some())
    }

    /// Moves up to `buckets` buckets of the resizes in progress, visiting keys round-robin (see the module
    /// documentation). Returns whether it moved any and some remain: the loop should come back at once
    /// rather than wait for an event. A list of values all held by the snapshot writer answers false, so
    /// the loop does not spin while it waits for them.
    pub fn rehash_step(&mut self, buckets: usize) -> bool {
        if let Some(changed) = self.resizing.changed.take() {
            self.check_resizing(changed);
        }
        let mut budget = buckets;
        let mut visits_left = self.resizing.keys.len();
        let mut moved_any = false;
        while budget > 0 && visits_left > 0 && !self.resizing.keys.is_empty() {
            visits_left -= 1;
            budget -= 1;
            if self.resizing.cursor >= self.resizing.keys.len() {
                self.resizing.cursor = 0;
            }
            let cursor = self.resizing.cursor;
            let Some(place) = self.find(&self.resizing.keys[cursor]) else {
                self.resizing.keys.swap_remove_index(cursor);
                continue;
            };
            let value = &mut self.shards[place.shard][place.index].value;
            if value.is_shared() {
                self.resizing.cursor += 1;
                continue;
            }
            let mut still_resizing = value.is_rehashing();
            while still_resizing && budget > 0 {
                let call = budget.min(REHASH_CALL_BUCKETS);
                still_resizing = value.rehash_step(call);
                budget -= call;
                moved_any = true;
            }
            if !still_resizing {
                self.resizing.keys.swap_remove_index(cursor);
            }
        }
        moved_any && !self.resizing.keys.is_empty()
    }
}
