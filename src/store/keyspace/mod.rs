//! The keyspace: every key, its value and its expiry time, owned by the loop thread.
//!
//! Guarantees:
//! - A key whose expiry time is at or before `now_ms` is logically absent: every lookup that passes
//!   `now_ms` deletes it first (lazy expiry), and [`Keyspace::expire_due`] deletes due keys in bounded
//!   batches (active expiry) through an index ordered by expiry time, so no step ever scans the keyspace
//!   (`expiry.rs`).
//! - No single step rehashes many keys: keys live in `KEYSPACE_SHARD_COUNT` shards, each an
//!   insertion-ordered hash map, and a key's shard is picked by its hash. Growing past a power of two
//!   rehashes one shard instead of every key at once. A key is hashed once per lookup: the same 64-bit
//!   hash picks the shard and probes the shard's table (indexmap's raw-entry API), so sharding costs no
//!   second hash.
//! - A shard's removal moves its last entry into the hole, and a key never changes shard: SCAN relies on
//!   both (`scan.rs`).
//! - `len` is a running count, O(1).
//! - WATCH support: a key that some client watches carries a version that every modification bumps
//!   (`watch.rs`).
//! - Timers: a value with deadlines inside it (stock reservations, waiting-room passes) registers its
//!   earliest one with [`Keyspace::set_timer`]; the loop's active cycle takes due timers in bounded
//!   batches with [`Keyspace::take_due_timers`]. Removing or replacing a key drops its timer
//!   (`timers.rs`).
//! - Point-in-time snapshots without a fork (compaction), copy-on-write at key granularity: every path
//!   to a `&mut Entry` is inside this type and passes the copy-on-write hook first (`snapshot.rs`).
//! - Start-up builds the shards from a snapshot file on several threads at once (`loader.rs`).
//! - Collections left mid-resize by a change are remembered, and the loop finishes their resizes a bounded
//!   number of buckets per iteration (`resizing.rs`).

mod expiry;
mod loader;
mod resizing;
mod scan;
mod snapshot;
#[cfg(test)]
mod tests;
mod timers;
mod watch;

use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;

use indexmap::map::raw_entry_v1::{RawEntryApiV1, RawEntryMut};
use indexmap::IndexMap;

pub use loader::ShardLoader;
pub use snapshot::HandedOver;

use super::Value;
use crate::limits::{KEYSPACE_SHARD_COUNT, SNAPSHOT_SHARE_ELEMENTS_MIN};
use crate::small_bytes::SmallBytes;
use resizing::Resizing;
use snapshot::SnapshotProgress;
use watch::Watch;

/// A key name: inline up to [`crate::limits::SMALL_BYTES_INLINE_LENGTH_MAX`] bytes, so a lookup's
/// compare touches only the map entry.
pub type Key = SmallBytes;
pub type Hasher = ahash::RandomState;

/// One shard of the keyspace.
type Shard = IndexMap<Key, Entry, Hasher>;

const KEYSPACE_SHARD_BITS: u32 = KEYSPACE_SHARD_COUNT.trailing_zeros();

#[derive(Debug)]
pub struct Entry {
    pub value: Value,
    /// Unix milliseconds at which the key stops existing.
    pub expires_at_ms: Option<u64>,
    /// The keyspace epoch this entry was created in or last serialized for a snapshot; pending in a
    /// running snapshot when it differs from the keyspace's. Private, so entries are made only here.
    snapshot_epoch: u32,
}

/// Where a key is: its shard and its position in that shard.
#[derive(Debug, Clone, Copy)]
struct Place {
    shard: usize,
    index: usize,
}

#[derive(Debug)]
pub struct Keyspace {
    /// `KEYSPACE_SHARD_COUNT` maps, all built with `hasher`, so the hash that picks a shard also probes it.
    shards: Box<[Shard]>,
    hasher: Hasher,
    /// Keys in all shards together.
    length: usize,
    /// (expiry time, key) for every key that has one.
    expiries: BTreeSet<(u64, Key)>,
    watched: HashMap<Key, Watch, Hasher>,
    touches: u64,
    /// (deadline, key) for every value with an internal deadline, and each key's current deadline.
    timers: BTreeSet<(u64, Key)>,
    timer_of: HashMap<Key, u64, Hasher>,
    pub expired_keys_total: u64,
    snapshot_epoch: u32,
    snapshot: Option<SnapshotProgress>,
    /// Collections with at least this many elements go to the collection serializer by handle; smaller ones are
    /// serialized by the walk itself (`SNAPSHOT_SHARE_ELEMENTS_MIN`; tests lower it).
    snapshot_share_elements_min: u64,
    /// Keys whose collection may be mid-resize, for the loop's `rehash_step`.
    resizing: Resizing,
}

impl Default for Keyspace {
    fn default() -> Keyspace {
        // Per-process random keys, as a lone `IndexMap` had, so clients can't aim keys at one bucket.
        let hasher = Hasher::new();
        Keyspace {
            shards: Keyspace::empty_shards(&hasher),
            hasher,
            length: 0,
            expiries: BTreeSet::new(),
            watched: HashMap::default(),
            touches: 0,
            timers: BTreeSet::new(),
            timer_of: HashMap::default(),
            expired_keys_total: 0,
            snapshot_epoch: 0,
            snapshot: None,
            snapshot_share_elements_min: SNAPSHOT_SHARE_ELEMENTS_MIN,
            resizing: Resizing::default(),
        }
    }
}

impl Keyspace {
    pub fn new() -> Keyspace {
        Keyspace::default()
    }

    fn empty_shards(hasher: &Hasher) -> Box<[Shard]> {
        (0..KEYSPACE_SHARD_COUNT)
            .map(|_| IndexMap::with_hasher(hasher.clone()))
            .collect()
    }

    /// The key's hash, as every shard's map computes it: the trait's `hash_one` (ahash's inherent one
    /// may take another path), and a [`Key`] hashes as its `[u8]`.
    fn hash_of(&self, key: &[u8]) -> u64 {
        BuildHasher::hash_one(&self.hasher, key)
    }

    /// The shard a hash picks. Multiplying by a 64-bit odd constant (Fibonacci hashing) and taking the
    /// top bits makes the shard depend on every bit of the hash, so the keys of one shard share no fixed
    /// bits: the shard's table still spreads them over its buckets (low bits) and control bytes (top bits).
    fn shard_of(hash: u64) -> usize {
        (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - KEYSPACE_SHARD_BITS)) as usize
    }

    /// Where `key` is, if present (expired or not). One hash.
    fn find(&self, key: &[u8]) -> Option<Place> {
        self.find_hashed(key, self.hash_of(key))
    }

    fn find_hashed(&self, key: &[u8], hash: u64) -> Option<Place> {
        let shard = Keyspace::shard_of(hash);
        let index = self.shards[shard]
            .raw_entry_v1()
            .index_from_hash(hash, |stored| stored[..] == *key)?;
        Some(Place { shard, index })
    }

    /// Starts bringing into the cache what a lookup of `key` will read, so that the lookup itself, a few
    /// commands later, does not wait for memory. Over a keyspace much larger than the cache every lookup
    /// misses three times in a row (control bytes, index, entry); for a pipelined batch the loop calls
    /// this for every key first, and the misses of different keys then overlap instead of queueing.
    ///
    /// The probe reads the control bytes and the index (loads that depend on nothing from the keys before,
    /// so the processor overlaps them across the batch) but compares no key: the first candidate's entry,
    /// right nearly always, is only prefetched. Changes nothing; a wrong or absent candidate costs a
    /// wasted prefetch.
    pub fn prefetch(&self, key: &[u8]) {
        let hash = self.hash_of(key);
        let shard = &self.shards[Keyspace::shard_of(hash)];
        let Some(index) = shard.raw_entry_v1().index_from_hash(hash, |_| true) else {
            return;
        };
        if let Some((stored_key, entry)) = shard.get_index(index) {
            prefetch_read(stored_key as *const Key as *const u8);
            prefetch_read(entry as *const Entry as *const u8);
        }
    }

    fn entry_at(&self, place: Place) -> &Entry {
        &self.shards[place.shard][place.index]
    }

    /// Number of keys held, including expired ones not yet deleted (Redis's DBSIZE does the same).
    pub fn len(&self) -> usize {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Where the live entry for `key` is, deleting it first if it has expired. One hash lookup in the
    /// common case; the place then reaches the entry without hashing again.
    fn live_place(&mut self, key: &[u8], now_ms: u64) -> Option<Place> {
        self.live_place_hashed(key, self.hash_of(key), now_ms)
    }

    fn live_place_hashed(&mut self, key: &[u8], hash: u64, now_ms: u64) -> Option<Place> {
        let place = self.find_hashed(key, hash)?;
        if Keyspace::is_expired(self.entry_at(place), now_ms) {
            self.remove_at(place);
            self.expired_keys_total += 1;
            return None;
        }
        Some(place)
    }

    pub fn get(&mut self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        let place = self.live_place(key, now_ms)?;
        Some(self.entry_at(place))
    }

    /// The entry for `key`, to change: serialized first if a snapshot still needs it as it is.
    pub fn get_mut(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let place = self.live_place(key, now_ms)?;
        self.preserve(place);
        if self.entry_at(place).value.is_collection() {
            self.note_collection_change(key);
        }
        Some(&mut self.shards[place.shard][place.index])
    }

    pub fn contains(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.get(key, now_ms).is_some()
    }

    /// Inserts or replaces `key`, with no expiry.
    pub fn insert(&mut self, key: &[u8], value: Value) {
        self.insert_with_expiry(key, value, None);
    }

    pub fn insert_with_expiry(&mut self, key: &[u8], value: Value, expires_at_ms: Option<u64>) {
        self.replace(key, value, expires_at_ms);
    }

    /// Inserts or replaces `key` with no expiry, for a write that needs nothing of the old value (a
    /// plain SET): one lookup where reading first and inserting after would hash and probe twice. An old
    /// value already expired at `now_ms` counts as an expired key, as the lookup would have counted it.
    pub fn overwrite(&mut self, key: &[u8], value: Value, now_ms: u64) {
        if let Some(Some(at)) = self.replace(key, value, None) {
            if at <= now_ms {
                self.expired_keys_total += 1;
            }
        }
    }

    /// Inserts or replaces `key`; returns the old entry's expiry if there was one (`Some(None)`: an old
    /// entry without expiry).
    fn replace(
        &mut self,
        key: &[u8],
        value: Value,
        expires_at_ms: Option<u64>,
    ) -> Option<Option<u64>> {
        self.set_timer(key, None);
        let hash = self.hash_of(key);
        let shard = Keyspace::shard_of(hash);
        let index = match self.shards[shard]
            .raw_entry_mut_v1()
            .from_hash(hash, |stored| stored[..] == *key)
        {
            RawEntryMut::Occupied(occupied) => occupied.index(),
            RawEntryMut::Vacant(vacant) => {
                let key = Key::copy_from_slice(key);
                if let Some(at) = expires_at_ms {
                    self.expiries.insert((at, key.clone()));
                }
                let entry = Entry {
                    value,
                    expires_at_ms,
                    snapshot_epoch: self.snapshot_epoch,
                };
                let resizing = entry.value.is_rehashing();
                vacant.insert_hashed_nocheck(hash, key.clone(), entry);
                self.length += 1;
                if resizing {
                    self.check_resizing(key);
                }
                return None;
            }
        };
        let place = Place { shard, index };
        self.preserve(place);
        let entry = &mut self.shards[shard][index];
        let old_expiry = entry.expires_at_ms;
        entry.value = value;
        let resizing = entry.value.is_rehashing();
        if old_expiry != expires_at_ms {
            self.set_expiry_at(place, expires_at_ms);
        }
        if resizing {
            self.check_resizing(Key::copy_from_slice(key));
        }
        Some(old_expiry)
    }

    /// Returns the value of `key`, inserting `make()` first if the key is absent.
    pub fn get_or_insert_with(
        &mut self,
        key: &[u8],
        now_ms: u64,
        make: impl FnOnce() -> Value,
    ) -> &mut Entry {
        let hash = self.hash_of(key);
        let place = match self.live_place_hashed(key, hash, now_ms) {
            Some(place) => {
                self.preserve(place);
                place
            }
            None => {
                let entry = Entry {
                    value: make(),
                    expires_at_ms: None,
                    snapshot_epoch: self.snapshot_epoch,
                };
                // Absent (or expired and just removed): the lookup above proved it.
                let shard = Keyspace::shard_of(hash);
                let RawEntryMut::Vacant(vacant) = self.shards[shard]
                    .raw_entry_mut_v1()
                    .from_hash(hash, |_| false)
                else {
                    unreachable!("a matcher that never matches finds no entry");
                };
                let index = vacant.index();
                vacant.insert_hashed_nocheck(hash, Key::copy_from_slice(key), entry);
                self.length += 1;
                Place { shard, index }
            }
        };
        if self.entry_at(place).value.is_collection() {
            self.note_collection_change(key);
        }
        &mut self.shards[place.shard][place.index]
    }

    /// Removes `key` whatever its expiry; returns the entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let place = self.find(key)?;
        Some(self.remove_at(place))
    }

    /// Removes the entry at `place`, with its expiry and timer.
    fn remove_at(&mut self, place: Place) -> Entry {
        let (stored_key, entry) = self.take_at(place);
        self.set_timer(&stored_key, None);
        if let Some(at) = entry.expires_at_ms {
            self.expiries.remove(&(at, stored_key));
        }
        entry
    }

    /// Swap-removes the entry at `place` from its shard (serialized first if a snapshot needs it) and
    /// keeps the count and the snapshot cursor right. Expiry and timer are the caller's.
    fn take_at(&mut self, place: Place) -> (Key, Entry) {
        self.preserve(place);
        let removed = self.shards[place.shard]
            .swap_remove_index(place.index)
            .expect("place found by a lookup");
        self.length -= 1;
        self.clamp_snapshot_cursor(place.shard);
        removed
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        let old = std::mem::replace(&mut self.shards, Keyspace::empty_shards(&self.hasher));
        self.length = 0;
        match &mut self.snapshot {
            // The snapshot still needs the old entries as they were: it takes the shards and finishes
            // the walk on them. Later clears find no pending entry in the live shards.
            Some(snapshot) if snapshot.frozen.is_none() => snapshot.frozen = Some(old),
            _ => drop(old),
        }
        self.expiries = BTreeSet::new();
        self.timers = BTreeSet::new();
        self.timer_of = HashMap::default();
        self.resizing_clear();
        let keys: Vec<Key> = self.watched.keys().cloned().collect();
        for key in keys {
            self.touch(&key);
        }
    }

    /// Asserts every invariant of the keyspace, walking all of it: each key sits in the shard its hash
    /// picks, the running count and the expiry and timer indexes agree with the entries, and every value
    /// passes its own check. For debug builds after a load or a replay, and for tests.
    pub fn check_invariants(&self) {
        assert_eq!(self.shards.len(), KEYSPACE_SHARD_COUNT);
        let mut length = 0;
        let mut expiring = 0;
        for (shard_index, shard) in self.shards.iter().enumerate() {
            length += shard.len();
            for (key, entry) in shard {
                assert_eq!(
                    Keyspace::shard_of(self.hash_of(key)),
                    shard_index,
                    "a key lives in the shard its hash picks"
                );
                if let Some(at) = entry.expires_at_ms {
                    expiring += 1;
                    assert!(
                        self.expiries.contains(&(at, key.clone())),
                        "every expiry is indexed"
                    );
                }
                entry.value.check_invariants();
            }
        }
        assert_eq!(length, self.length, "the running count is the keys held");
        assert_eq!(
            expiring,
            self.expiries.len(),
            "the index holds only expiries"
        );
        assert_eq!(self.timers.len(), self.timer_of.len());
        for (at, key) in &self.timers {
            assert_eq!(self.timer_of.get(key), Some(at), "each key has one timer");
            assert!(self.find(key).is_some(), "a timer belongs to a present key");
        }
        for watch in self.watched.values() {
            assert!(watch.watchers > 0, "a key nobody watches is forgotten");
        }
    }

    /// Every entry, shard by shard.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Entry)> {
        self.shards.iter().flat_map(|shard| shard.iter())
    }
}

/// Asks the processor to start loading the cache line at `address` into every cache level, without
/// waiting for it. A hint: on targets without the instruction it does nothing.
#[inline(always)]
fn prefetch_read(address: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and reads nothing the program sees, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            address as *const i8,
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}
