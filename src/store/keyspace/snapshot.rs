//! Point-in-time snapshots without a fork: copy-on-write at key granularity.
//!
//! A snapshot started at log sequence S must hold exactly the state after record S, while the loop keeps
//! running commands. [`Keyspace::snapshot_begin`] bumps the keyspace's epoch: every entry then present
//! carries an older epoch and is *pending*. [`Keyspace::snapshot_step`] serializes pending entries a
//! bounded number at a time, walking the shards in order and, within a shard, positions from its end
//! towards its start, and marks each with the current epoch. Before anything changes a pending entry
//! (`get_mut`, `get_or_insert_with` on an existing key, `insert*` over an existing key, `set_expiry`,
//! `remove`, lazy and active expiry), the hook [`Keyspace::preserve`] serializes it first, as it was at S.
//! New keys get the current epoch and are not part of the snapshot. `clear` hands all the old shards to the
//! snapshot, which finishes walking them. Every path to a `&mut Entry` is inside this type, so no caller
//! can forget the hook.
//!
//! Why the walk goes downwards within a shard: a removal moves the shard's *last* entry into the hole.
//! Positions at or above the cursor of the shard being walked hold only entries already serialized or
//! created after S, so whatever moves down into an unvisited position is never pending, and a pending entry
//! never moves above the cursor: none is missed, none is written twice (the epoch mark makes the walk skip
//! entries the hook already wrote). Shards before the walked one are done; a shard after it is walked from
//! its length at the time the walk reaches it, since entries only ever move down and new ones are not
//! pending. Keys never change shard.
//!
//! Pauses: a step checks its budget every `SNAPSHOT_BUDGET_CHECK_ENTRIES` entries and stops at its output
//! budget, and does not serialize large collections (sets, coupons, stock, likes, waiting rooms of
//! `SNAPSHOT_SHARE_ELEMENTS_MIN` elements or more) at all: it takes a second handle to the value
//! ([`Value::share`], constant time) and hands it over; the collection serializer thread
//! (`compaction::collection_serializer`) serializes it off the loop and drops the handle. Smaller collections it
//! serializes itself, in microseconds, so that they are never shared and never copied. So no step's cost
//! depends on the largest value's size. A command about to change a large collection asks
//! [`Keyspace::snapshot_holds`] first: a pending one is handed over then and there (as *wanted*, which the
//! serializer takes before the walk's), and while the serializer holds one the command waits (the server
//! parks it) rather than copying it on the loop, a pause that grows with the collection. Only paths that
//! skip that question (none of the commands' own keys) would still copy (`store::shared`) or, on a
//! pending entry, serialize it inline in the hook.

use super::{Entry, Key, Keyspace, Place, Shard};
use crate::limits::{
    KEYSPACE_SHARD_COUNT, SNAPSHOT_BUDGET_CHECK_ENTRIES, SNAPSHOT_SHARED_VALUES_PER_STEP_MAX,
};
use crate::store::encoding::{encode_entry, SharedEntry};

/// A snapshot in progress: where the walk is and the serialized entries not yet taken.
#[derive(Debug, Default)]
pub(super) struct SnapshotProgress {
    /// The shard being walked; shards before it are done, shards after it not started.
    pub(super) shard: usize,
    /// Positions `[0, cursor)` of the walked shard are not visited yet.
    pub(super) cursor: usize,
    /// The shards as they were when `clear` ran during the snapshot; walked instead of the live ones,
    /// whose entries are then all newer than the snapshot.
    pub(super) frozen: Option<Box<[Shard]>>,
    pub(super) out: Vec<u8>,
    /// Collections the walk handed over by handle, to be serialized off the loop (see the module docs).
    pub(super) shared: Vec<SharedEntry>,
    /// Collections handed over by handle because a command waits for them (`Keyspace::snapshot_holds`).
    pub(super) wanted: Vec<SharedEntry>,
    pub(super) entries_written: u64,
}

/// Collections handed over by handle since the last [`Keyspace::snapshot_take_shared`], for the collection
/// serializer thread (`compaction::collection_serializer`), which serializes the wanted ones first.
#[derive(Debug, Default)]
pub struct HandedOver {
    /// Handed over for a command that waits until they are serialized.
    pub wanted: Vec<SharedEntry>,
    /// Handed over by the walk: nobody waits for them yet.
    pub walked: Vec<SharedEntry>,
}

impl HandedOver {
    pub fn is_empty(&self) -> bool {
        self.wanted.is_empty() && self.walked.is_empty()
    }
}

/// A second handle to a pending entry's value, for the collection serializer, if it is a collection of at least
/// `elements_min` elements: the one rule by which the walk and `Keyspace::snapshot_holds` hand values
/// over instead of serializing them on the loop.
fn large_collection_handle(key: &Key, entry: &Entry, elements_min: u64) -> Option<SharedEntry> {
    if entry.value.element_count() < elements_min {
        return None;
    }
    Some(SharedEntry {
        key: key[..].into(),
        expires_at_ms: entry.expires_at_ms,
        value: entry.value.share()?,
    })
}

impl Keyspace {
    /// Starts a point-in-time snapshot of every entry now present. Any snapshot in progress is dropped.
    pub fn snapshot_begin(&mut self) {
        // Wrapping is harmless: an entry would need to sit out 2^32 snapshots to look serialized.
        self.snapshot_epoch = self.snapshot_epoch.wrapping_add(1);
        self.snapshot = Some(SnapshotProgress {
            shard: 0,
            cursor: self.shards[0].len(),
            ..SnapshotProgress::default()
        });
    }

    /// Lowers (or raises) the size from which collections go to the writer by handle, for tests.
    #[cfg(test)]
    pub fn set_snapshot_share_elements_min(&mut self, elements: u64) {
        self.snapshot_share_elements_min = elements;
    }

    pub fn snapshot_in_progress(&self) -> bool {
        self.snapshot.is_some()
    }

    /// Serializes pending entries, walking shard by shard and down from the cursor within one, while
    /// `keep_going()` (asked every `SNAPSHOT_BUDGET_CHECK_ENTRIES` entries) says so and `out_budget` bytes
    /// are not yet waiting. Returns true when every entry of the snapshot has been serialized.
    pub fn snapshot_step(
        &mut self,
        out_budget: usize,
        mut keep_going: impl FnMut() -> bool,
    ) -> bool {
        let epoch = self.snapshot_epoch;
        let share_elements_min = self.snapshot_share_elements_min;
        let Some(snapshot) = &mut self.snapshot else {
            return true;
        };
        let frozen = snapshot.frozen.is_some();
        let shards = match &mut snapshot.frozen {
            Some(frozen) => frozen,
            None => &mut self.shards,
        };
        let mut examined = 0;
        while snapshot.shard < KEYSPACE_SHARD_COUNT {
            if snapshot.cursor == 0 {
                if frozen {
                    // Free a cleared shard as soon as it is written, a shard's worth of keys at a time,
                    // rather than every key at once when the walk ends.
                    drop(std::mem::take(&mut shards[snapshot.shard]));
                }
                // Entries only move down and new ones are not pending: the next shard's current length
                // covers every pending entry in it.
                snapshot.shard += 1;
                if let Some(next) = shards.get(snapshot.shard) {
                    snapshot.cursor = next.len();
                }
                continue;
            }
            if snapshot.out.len() >= out_budget
                || snapshot.shared.len() >= SNAPSHOT_SHARED_VALUES_PER_STEP_MAX
            {
                return false;
            }
            examined += 1;
            if examined % SNAPSHOT_BUDGET_CHECK_ENTRIES == 0 && !keep_going() {
                return false;
            }
            snapshot.cursor -= 1;
            let (key, entry) = shards[snapshot.shard]
                .get_index_mut(snapshot.cursor)
                .expect("cursor in range");
            if entry.snapshot_epoch != epoch {
                entry.snapshot_epoch = epoch;
                // Small collections serialize in microseconds: doing it here keeps them from being
                // shared, and so from being copied when a command changes one before the writer got to
                // it, which under a write-heavy load would copy most of the data set once per compaction
                // and leave the process's resident memory that much larger. Only values large enough to
                // be a pause are handed over.
                match large_collection_handle(key, entry, share_elements_min) {
                    Some(handle) => snapshot.shared.push(handle),
                    None => encode_entry(key, &entry.value, entry.expires_at_ms, &mut snapshot.out),
                }
                snapshot.entries_written += 1;
            }
        }
        // The frozen shards are done; the live ones hold only entries created after the snapshot began.
        snapshot.frozen = None;
        true
    }

    /// Whether a change to `key` should wait because the running snapshot's collection serializer holds its
    /// value: the value is already shared with it, or it is a large collection the snapshot still needs,
    /// which this hands over now (constant time, like the walk) instead of letting the change's
    /// copy-on-write hook serialize it on the loop. Small pending values answer false: the hook
    /// serializes them in microseconds.
    pub fn snapshot_holds(&mut self, key: &[u8]) -> bool {
        let share_elements_min = self.snapshot_share_elements_min;
        let epoch = self.snapshot_epoch;
        let Some(place) = self.find(key) else {
            return false;
        };
        let (stored_key, entry) = self.shards[place.shard]
            .get_index_mut(place.index)
            .expect("place found by a lookup");
        if entry.value.is_shared() {
            // The serializer may still hold it after the walk has ended.
            return true;
        }
        let Some(snapshot) = &mut self.snapshot else {
            return false;
        };
        if snapshot.frozen.is_some() || entry.snapshot_epoch == epoch {
            return false;
        }
        let Some(handle) = large_collection_handle(stored_key, entry, share_elements_min) else {
            return false;
        };
        entry.snapshot_epoch = epoch;
        snapshot.wanted.push(handle);
        snapshot.entries_written += 1;
        true
    }

    /// Takes the entries serialized so far (by steps and hooks), leaving an empty buffer.
    pub fn snapshot_take_bytes(&mut self, replacement: Vec<u8>) -> Vec<u8> {
        match &mut self.snapshot {
            Some(snapshot) => std::mem::replace(&mut snapshot.out, replacement),
            None => replacement,
        }
    }

    /// Takes the collections handed over by handle so far (see the module documentation).
    pub fn snapshot_take_shared(&mut self) -> HandedOver {
        match &mut self.snapshot {
            Some(snapshot) => HandedOver {
                wanted: std::mem::take(&mut snapshot.wanted),
                walked: std::mem::take(&mut snapshot.shared),
            },
            None => HandedOver::default(),
        }
    }

    pub fn snapshot_pending_bytes(&self) -> usize {
        self.snapshot
            .as_ref()
            .map_or(0, |snapshot| snapshot.out.len())
    }

    /// Ends the snapshot (finished or abandoned) and returns how many entries it serialized.
    pub fn snapshot_end(&mut self) -> u64 {
        self.snapshot
            .take()
            .map_or(0, |snapshot| snapshot.entries_written)
    }

    /// The copy-on-write hook: serializes the entry at `place` as it is now if the running snapshot
    /// still needs it. Called before every change to an entry.
    pub(super) fn preserve(&mut self, place: Place) {
        let Some(snapshot) = &mut self.snapshot else {
            return;
        };
        if snapshot.frozen.is_some() {
            // Every live entry was created after the snapshot began.
            return;
        }
        let (key, entry) = self.shards[place.shard]
            .get_index_mut(place.index)
            .expect("place found by a lookup");
        if entry.snapshot_epoch != self.snapshot_epoch {
            entry.snapshot_epoch = self.snapshot_epoch;
            encode_entry(key, &entry.value, entry.expires_at_ms, &mut snapshot.out);
            snapshot.entries_written += 1;
        }
    }

    /// After a swap-removal the shard is one shorter; if it is the one being walked, its unvisited
    /// positions can't be past its end.
    pub(super) fn clamp_snapshot_cursor(&mut self, shard: usize) {
        if let Some(snapshot) = &mut self.snapshot {
            if snapshot.frozen.is_none() && snapshot.shard == shard {
                snapshot.cursor = snapshot.cursor.min(self.shards[shard].len());
            }
        }
    }
}
