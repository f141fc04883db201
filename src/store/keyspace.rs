//! The keyspace: every key, its value and its expiry time, owned by the loop thread.
//!
//! Guarantees:
//! - A key whose expiry time is at or before `now_ms` is logically absent: every lookup that passes
//!   `now_ms` deletes it first (lazy expiry), and [`Keyspace::expire_due`] deletes due keys in bounded
//!   batches (active expiry) through an index ordered by expiry time, so no step ever scans the keyspace.
//! - No single step rehashes many keys: keys live in `KEYSPACE_SHARD_COUNT` shards, each an
//!   insertion-ordered hash map, and a key's shard is picked by its hash. Growing past a power of two
//!   rehashes one shard (a few thousand keys at 5 M keys, microseconds) instead of every key at once (tens
//!   to hundreds of ms with one map). A key is hashed once per lookup: the same 64-bit hash picks the
//!   shard and probes the shard's table (indexmap's raw-entry API), so sharding costs no second hash.
//! - A shard's removal moves its last entry into the hole. SCAN walks shards in order and, within a shard,
//!   positions from the end towards the start, so a removal only ever moves an already-visited entry into
//!   the unvisited part, and a key never changes shard: every key present for a whole SCAN is returned at
//!   least once (possibly twice). The cursor is `shard << SCAN_CURSOR_SHARD_SHIFT | positions`, where
//!   `positions` counts the shard's not yet visited positions `[0, positions)` (clamped to the shard's
//!   length); `0` starts at shard 0 from its end, and a call returns `0` only when the last shard is done.
//! - `len` is a running count, O(1).
//! - WATCH support: a key that some client watches carries a version that every modification bumps.
//! - Timers: a value with deadlines inside it (stock reservations, waiting-room passes) registers its
//!   earliest one with [`Keyspace::set_timer`]; the loop's active cycle takes due timers in bounded
//!   batches with [`Keyspace::take_due_timers`]. Removing or replacing a key drops its timer.
//! - Point-in-time snapshots without a fork (compaction): see [`Keyspace::snapshot_begin`].
//!
//! # Snapshots: copy-on-write at key granularity
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
//! (`aof::collection_serializer`) serializes it off the loop and drops the handle. Smaller collections it
//! serializes itself, in microseconds, so that they are never shared and never copied. So no step's cost
//! depends on the largest value's size. A command about to change a large collection asks
//! [`Keyspace::snapshot_holds`] first: a pending one is handed over then and there (as *wanted*, which the
//! serializer takes before the walk's), and while the serializer holds one the command waits (the server
//! parks it) rather than copying it on the loop (12-18 ms for a coupon of 260,000 holders). Only paths that skip
//! that question (none of the commands' own keys) would still copy (`store::shared`) or, on a pending
//! entry, serialize it inline in the hook.

use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;

use indexmap::map::raw_entry_v1::{RawEntryApiV1, RawEntryMut};
use indexmap::IndexMap;

use super::encoding::{encode_entry, SharedEntry};
use super::Value;
use crate::limits::{
    KEYSPACE_SHARD_COUNT, SNAPSHOT_SHARED_VALUES_PER_STEP_MAX, SNAPSHOT_SHARE_ELEMENTS_MIN,
};

use crate::small_bytes::SmallBytes;

/// A key name: inline up to [`crate::small_bytes::INLINE_LENGTH_MAX`] bytes, so a lookup's compare touches only
/// the map entry.
pub type Key = SmallBytes;
pub type Hasher = ahash::RandomState;

/// One shard of the keyspace.
type Shard = IndexMap<Key, Entry, Hasher>;

/// SCAN cursors carry the shard above this many bits of position (a shard would need 2^40 keys to
/// overflow it; `scan` asserts it does not).
pub const SCAN_CURSOR_SHARD_SHIFT: u32 = 40;
const SCAN_CURSOR_POSITION_MASK: u64 = (1 << SCAN_CURSOR_SHARD_SHIFT) - 1;
const KEYSPACE_SHARD_BITS: u32 = KEYSPACE_SHARD_COUNT.trailing_zeros();
const _: () = assert!(SCAN_CURSOR_SHARD_SHIFT + KEYSPACE_SHARD_BITS <= 64);

#[derive(Debug)]
pub struct Entry {
    pub value: Value,
    /// Unix milliseconds at which the key stops existing.
    pub expires_at_ms: Option<u64>,
    /// The keyspace epoch this entry was created in or last serialized for a snapshot; pending in a
    /// running snapshot when it differs from the keyspace's. Private, so entries are made only here.
    snapshot_epoch: u32,
}

/// How often a snapshot step asks whether its time budget is spent.
pub const SNAPSHOT_BUDGET_CHECK_ENTRIES: usize = 64;

/// A snapshot in progress: where the walk is and the serialized entries not yet taken.
#[derive(Debug, Default)]
struct SnapshotProgress {
    /// The shard being walked; shards before it are done, shards after it not started.
    shard: usize,
    /// Positions `[0, cursor)` of the walked shard are not visited yet.
    cursor: usize,
    /// The shards as they were when `clear` ran during the snapshot; walked instead of the live ones,
    /// whose entries are then all newer than the snapshot.
    frozen: Option<Box<[Shard]>>,
    out: Vec<u8>,
    /// Collections the walk handed over by handle, to be serialized off the loop (see the module docs).
    shared: Vec<SharedEntry>,
    /// Collections handed over by handle because a command waits for them (`Keyspace::snapshot_holds`).
    wanted: Vec<SharedEntry>,
    entries_written: u64,
}

/// Collections handed over by handle since the last [`Keyspace::snapshot_take_shared`], for the collection
/// serializer thread (`aof::collection_serializer`), which serializes the wanted ones first.
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

#[derive(Debug, Default)]
struct Watch {
    watchers: u32,
    version: u64,
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

    pub fn expiring_count(&self) -> usize {
        self.expiries.len()
    }

    fn is_expired(entry: &Entry, now_ms: u64) -> bool {
        matches!(entry.expires_at_ms, Some(at) if at <= now_ms)
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
                vacant.insert_hashed_nocheck(hash, key, entry);
                self.length += 1;
                return None;
            }
        };
        let place = Place { shard, index };
        self.preserve(place);
        let entry = &mut self.shards[shard][index];
        let old_expiry = entry.expires_at_ms;
        entry.value = value;
        if old_expiry != expires_at_ms {
            self.set_expiry_at(place, expires_at_ms);
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

    /// Sets or clears the expiry of an existing key. Returns false if the key is absent.
    pub fn set_expiry(&mut self, key: &[u8], expires_at_ms: Option<u64>) -> bool {
        let Some(place) = self.find(key) else {
            return false;
        };
        self.preserve(place);
        self.set_expiry_at(place, expires_at_ms);
        true
    }

    /// Sets the expiry of the entry at `place`, already preserved, and keeps the expiry index right.
    fn set_expiry_at(&mut self, place: Place, expires_at_ms: Option<u64>) {
        let (stored_key, entry) = self.shards[place.shard]
            .get_index_mut(place.index)
            .expect("place found by a lookup");
        if let Some(old) = entry.expires_at_ms {
            self.expiries.remove(&(old, stored_key.clone()));
        }
        entry.expires_at_ms = expires_at_ms;
        if let Some(at) = expires_at_ms {
            self.expiries.insert((at, stored_key.clone()));
        }
    }

    /// The earliest expiry time of any key, so the loop knows when the next active cycle has work.
    pub fn next_expiry_ms(&self) -> Option<u64> {
        self.expiries.first().map(|(at, _)| *at)
    }

    /// Deletes up to `count_max` keys whose expiry is at or before `now_ms`, earliest first, and returns
    /// them (the caller logs them as deletions and touches watchers).
    pub fn expire_due(&mut self, now_ms: u64, count_max: usize) -> Vec<Key> {
        let expired = pop_due(&mut self.expiries, now_ms, count_max);
        for key in &expired {
            if let Some(place) = self.find(key) {
                self.take_at(place);
            }
            self.set_timer(key, None);
            self.expired_keys_total += 1;
        }
        expired
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
        let keys: Vec<Key> = self.watched.keys().cloned().collect();
        for key in keys {
            self.touch(&key);
        }
    }

    /// One step of SCAN: examines up to `count` positions from `cursor` on (see the module documentation
    /// for the encoding; `0` starts) and returns the keys among them that are live at `now_ms` and accepted
    /// by `filter`, with the next cursor (0 when done). Empty shards cost no count. A cursor naming a shard
    /// past the last one ends the iteration.
    pub fn scan(
        &self,
        cursor: u64,
        count: usize,
        now_ms: u64,
        mut filter: impl FnMut(&[u8], &Value) -> bool,
    ) -> (u64, Vec<Key>) {
        let (mut shard, mut positions) = if cursor == 0 {
            (0, SCAN_CURSOR_POSITION_MASK)
        } else {
            (
                (cursor >> SCAN_CURSOR_SHARD_SHIFT) as usize,
                cursor & SCAN_CURSOR_POSITION_MASK,
            )
        };
        let mut budget = count.max(1) as u64;
        let mut keys = Vec::new();
        while shard < KEYSPACE_SHARD_COUNT {
            let map = &self.shards[shard];
            assert!((map.len() as u64) <= SCAN_CURSOR_POSITION_MASK);
            let start = positions.min(map.len() as u64);
            let stop = start.saturating_sub(budget);
            for position in (stop..start).rev() {
                let (key, entry) = map.get_index(position as usize).expect("in range");
                if !Keyspace::is_expired(entry, now_ms) && filter(key, &entry.value) {
                    keys.push(key.clone());
                }
            }
            budget -= start - stop;
            if stop > 0 {
                return ((shard as u64) << SCAN_CURSOR_SHARD_SHIFT | stop, keys);
            }
            shard += 1;
            positions = SCAN_CURSOR_POSITION_MASK;
            if budget == 0 && shard < KEYSPACE_SHARD_COUNT {
                return ((shard as u64) << SCAN_CURSOR_SHARD_SHIFT | positions, keys);
            }
        }
        (0, keys)
    }

    /// Every entry, shard by shard.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Entry)> {
        self.shards.iter().flat_map(|shard| shard.iter())
    }

    // --- Snapshots (see the module documentation) ---

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
                // it, which under a write-heavy load copied most of the data set once per compaction
                // and left the process's resident memory that much larger (the likes benchmark went
                // from 14 to 21 bytes a like). Only values large enough to be a pause are handed over.
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
    fn preserve(&mut self, place: Place) {
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
    fn clamp_snapshot_cursor(&mut self, shard: usize) {
        if let Some(snapshot) = &mut self.snapshot {
            if snapshot.frozen.is_none() && snapshot.shard == shard {
                snapshot.cursor = snapshot.cursor.min(self.shards[shard].len());
            }
        }
    }

    /// Splits loading a snapshot into `parts` loaders, each owning a contiguous range of shards, so that
    /// threads can build them in parallel at start-up (before the loop serves, nothing else touches the
    /// keyspace); [`Keyspace::install`] puts them back. Each shard is presized for its share of
    /// `keys_expected`. Why: at start-up inserting into the key table is most of the time (cache misses,
    /// one per key), and shards are independent tables, so the work divides without locks.
    pub fn shard_loaders(&mut self, parts: usize, keys_expected: usize) -> Vec<ShardLoader> {
        assert!(self.is_empty(), "loaders start from an empty keyspace");
        let parts = parts.clamp(1, KEYSPACE_SHARD_COUNT);
        let share = keys_expected.div_ceil(KEYSPACE_SHARD_COUNT);
        let per_part = KEYSPACE_SHARD_COUNT.div_ceil(parts);
        let mut shards = std::mem::take(&mut self.shards).into_vec();
        let mut loaders = Vec::new();
        let mut first_shard = 0;
        while !shards.is_empty() {
            let rest = shards.split_off(per_part.min(shards.len()));
            let mut part = std::mem::replace(&mut shards, rest);
            for shard in &mut part {
                // Some slack: hashing spreads keys evenly but not exactly (a shard that still overflows
                // grows, which costs little at a shard's size).
                shard.reserve(share + share / 32 + 8);
            }
            let shard_count = part.len();
            loaders.push(ShardLoader {
                first_shard,
                shards: part,
                hasher: self.hasher.clone(),
                epoch: self.snapshot_epoch,
                length: 0,
                expiries: Vec::new(),
                timers: Vec::new(),
            });
            first_shard += shard_count;
        }
        loaders
    }

    /// Puts back the shards of [`Keyspace::shard_loaders`], with their expiries and timers.
    pub fn install(&mut self, loaders: Vec<ShardLoader>) {
        assert!(self.shards.is_empty(), "install follows shard_loaders");
        let mut shards = Vec::with_capacity(KEYSPACE_SHARD_COUNT);
        for loader in loaders {
            assert_eq!(loader.first_shard, shards.len(), "loaders in shard order");
            shards.extend(loader.shards);
            self.length += loader.length;
            self.expiries.extend(loader.expiries);
            for (at, key) in loader.timers {
                self.set_timer(&key, Some(at));
            }
        }
        assert_eq!(shards.len(), KEYSPACE_SHARD_COUNT);
        self.shards = shards.into_boxed_slice();
    }

    // --- Timers ---

    /// Registers (or with `None` clears) the earliest internal deadline of the value at `key`.
    pub fn set_timer(&mut self, key: &[u8], deadline_ms: Option<u64>) {
        if self.timer_of.is_empty() && deadline_ms.is_none() {
            return;
        }
        if let Some((stored_key, old)) = self.timer_of.remove_entry(key) {
            self.timers.remove(&(old, stored_key));
        }
        if let Some(at) = deadline_ms {
            let key = Key::copy_from_slice(key);
            self.timers.insert((at, key.clone()));
            self.timer_of.insert(key, at);
        }
    }

    pub fn next_timer_ms(&self) -> Option<u64> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Removes and returns up to `count_max` keys whose timer is due at `now_ms`; the caller fires each
    /// and registers the value's next deadline.
    pub fn take_due_timers(&mut self, now_ms: u64, count_max: usize) -> Vec<Key> {
        let due = pop_due(&mut self.timers, now_ms, count_max);
        for key in &due {
            self.timer_of.remove(key);
        }
        due
    }

    // --- WATCH ---

    pub fn watch(&mut self, key: &[u8]) -> u64 {
        let watch = self.watched.entry(Key::copy_from_slice(key)).or_default();
        watch.watchers += 1;
        watch.version
    }

    pub fn unwatch(&mut self, key: &[u8]) {
        if let Some(watch) = self.watched.get_mut(key) {
            watch.watchers -= 1;
            if watch.watchers == 0 {
                self.watched.remove(key);
            }
        }
    }

    pub fn watch_version(&self, key: &[u8]) -> u64 {
        self.watched.get(key).map_or(0, |watch| watch.version)
    }

    /// Marks `key` modified for WATCH. Cheap when nobody watches anything.
    pub fn touch(&mut self, key: &[u8]) {
        if self.watched.is_empty() {
            return;
        }
        if let Some(watch) = self.watched.get_mut(key) {
            self.touches += 1;
            watch.version = self.touches;
        }
    }

    pub fn has_watchers(&self) -> bool {
        !self.watched.is_empty()
    }
}

/// One part of a keyspace being loaded at start-up: a contiguous range of shards, built on its own
/// thread (see [`Keyspace::shard_loaders`]).
pub struct ShardLoader {
    first_shard: usize,
    shards: Vec<Shard>,
    hasher: Hasher,
    epoch: u32,
    length: usize,
    expiries: Vec<(u64, Key)>,
    timers: Vec<(u64, Key)>,
}

impl ShardLoader {
    /// The key's hash if this loader owns the key's shard; `None` means another loader does.
    pub fn owns(&self, key: &[u8]) -> Option<u64> {
        let hash = BuildHasher::hash_one(&self.hasher, key);
        let shard = Keyspace::shard_of(hash);
        (self.first_shard..self.first_shard + self.shards.len())
            .contains(&shard)
            .then_some(hash)
    }

    /// The shard of the whole keyspace (not only this loader's) that `key` belongs to, and its hash.
    pub fn locate(&self, key: &[u8]) -> (usize, u64) {
        let hash = BuildHasher::hash_one(&self.hasher, key);
        (Keyspace::shard_of(hash), hash)
    }

    /// How many shards this loader builds; [`ShardLoader::shard_of`] numbers them from 0.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Which of this loader's shards a hash from [`ShardLoader::owns`] goes to.
    pub fn shard_of(&self, hash: u64) -> usize {
        Keyspace::shard_of(hash) - self.first_shard
    }

    /// Adds an entry read from a snapshot file, for a key this loader owns, with the hash `owns` returned.
    /// A key present twice is an error (the file is damaged or was written by a bug); values with internal
    /// deadlines get their timer registered at `install`. One copy of the key: this runs once per key at
    /// start-up, millions of times.
    pub fn load_entry(
        &mut self,
        key: &[u8],
        hash: u64,
        value: Value,
        expires_at_ms: Option<u64>,
    ) -> Result<(), String> {
        let deadline_ms = super::encoding::value_deadline_ms(&value);
        let index = self.shard_of(hash);
        let shard = &mut self.shards[index];
        let RawEntryMut::Vacant(vacant) = shard
            .raw_entry_mut_v1()
            .from_hash(hash, |stored| stored[..] == *key)
        else {
            return Err("a key appears twice".to_string());
        };
        let key = Key::copy_from_slice(key);
        if let Some(at) = expires_at_ms {
            self.expiries.push((at, key.clone()));
        }
        if let Some(at) = deadline_ms {
            self.timers.push((at, key.clone()));
        }
        let entry = Entry {
            value,
            expires_at_ms,
            snapshot_epoch: self.epoch,
        };
        vacant.insert_hashed_nocheck(hash, key, entry);
        self.length += 1;
        Ok(())
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

/// Removes and returns, earliest first, up to `count_max` keys of a (deadline, key) index whose deadline
/// is at or before `now_ms`: the bounded step of both active expiry and value timers.
fn pop_due(index: &mut BTreeSet<(u64, Key)>, now_ms: u64, count_max: usize) -> Vec<Key> {
    let mut due = Vec::new();
    while due.len() < count_max && index.first().is_some_and(|(at, _)| *at <= now_ms) {
        let (_, key) = index.pop_first().expect("first exists");
        due.push(key);
    }
    due
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(value: &str) -> Value {
        Value::String(SmallBytes::from(value))
    }

    #[test]
    fn overwrite_replaces_any_value_and_counts_an_expired_one() {
        let mut keyspace = Keyspace::new();
        keyspace.insert_with_expiry(b"k", string("old"), Some(100));
        keyspace.overwrite(b"k", string("live"), 50);
        assert_eq!(keyspace.expired_keys_total, 0);
        keyspace.insert_with_expiry(b"k", string("old"), Some(100));
        keyspace.overwrite(b"k", string("new"), 200);
        assert_eq!(keyspace.expired_keys_total, 1);
        let entry = keyspace.get(b"k", 300).expect("present");
        assert!(matches!(&entry.value, Value::String(bytes) if bytes[..] == *b"new"));
        assert_eq!(entry.expires_at_ms, None);
        assert_eq!(keyspace.expiring_count(), 0);
        keyspace.overwrite(b"fresh", string("v"), 0);
        assert_eq!(keyspace.len(), 2);
    }

    #[test]
    fn expired_keys_are_absent_and_actively_collected_in_bounded_steps() {
        let mut keyspace = Keyspace::new();
        for index in 0..10 {
            keyspace.insert_with_expiry(
                format!("k{index}").as_bytes(),
                string("v"),
                Some(100 + index),
            );
        }
        keyspace.insert(b"forever", string("v"));
        assert!(keyspace.contains(b"k0", 99));
        assert!(!keyspace.contains(b"k0", 100));
        assert_eq!(keyspace.len(), 10);
        let expired = keyspace.expire_due(1_000, 4);
        assert_eq!(expired.len(), 4);
        assert_eq!(keyspace.len(), 6);
        assert_eq!(keyspace.expire_due(1_000, 100).len(), 5);
        assert_eq!(keyspace.len(), 1);
        assert_eq!(keyspace.next_expiry_ms(), None);
    }

    #[test]
    fn scan_returns_every_key_present_throughout_despite_removals_and_inserts() {
        let mut keyspace = Keyspace::new();
        for index in 0..1000 {
            keyspace.insert(format!("k{index}").as_bytes(), string("v"));
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            let (next, keys) = keyspace.scan(cursor, 10, 0, |_, _| true);
            seen.extend(keys);
            // Churn between calls: remove some keys never to be seen again and add new ones.
            keyspace.remove(format!("k{}", 999 - round).as_bytes());
            keyspace.insert(format!("new{round}").as_bytes(), string("v"));
            round += 1;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for index in 0..1000 - round {
            assert!(
                seen.contains(format!("k{index}").as_bytes()),
                "k{index} missed"
            );
        }
    }

    #[test]
    fn keys_on_both_sides_of_the_inline_limit_are_found_expired_and_scanned() {
        let limit = crate::small_bytes::INLINE_LENGTH_MAX;
        let names: Vec<Vec<u8>> = (0..=limit + 3).map(|length| vec![b'k'; length]).collect();
        let mut keyspace = Keyspace::new();
        for (index, name) in names.iter().enumerate() {
            keyspace.insert_with_expiry(name, string("v"), Some(100 + index as u64));
        }
        for name in &names {
            assert!(keyspace.contains(name, 0), "{} bytes", name.len());
        }
        let (_, mut scanned) = keyspace.scan(0, 1_000, 0, |_, _| true);
        scanned.sort();
        assert_eq!(
            scanned.iter().map(|key| key.to_vec()).collect::<Vec<_>>(),
            names
        );
        // Expiry order is by time; the index holds each key by value, whatever its form.
        let expired = keyspace.expire_due(100 + limit as u64, 1_000);
        assert_eq!(
            expired.iter().map(|key| key.to_vec()).collect::<Vec<_>>(),
            names[..=limit]
        );
        assert_eq!(keyspace.len(), 3);
        assert!(keyspace.remove(&names[limit + 1]).is_some());
        assert!(!keyspace.contains(&names[limit + 1], 0));
        assert_eq!(keyspace.expire_due(u64::MAX, 1_000).len(), 2);
        assert!(keyspace.is_empty());
    }

    #[test]
    fn watch_versions_move_on_touch() {
        let mut keyspace = Keyspace::new();
        let version = keyspace.watch(b"a");
        keyspace.touch(b"b");
        assert_eq!(keyspace.watch_version(b"a"), version);
        keyspace.touch(b"a");
        assert_ne!(keyspace.watch_version(b"a"), version);
        keyspace.unwatch(b"a");
        assert!(!keyspace.has_watchers());
    }

    #[test]
    fn keys_spread_over_shards_and_the_shared_hash_finds_them() {
        let mut keyspace = Keyspace::new();
        for index in 0..20_000 {
            keyspace.insert(format!("k{index}").as_bytes(), string("v"));
        }
        assert_eq!(keyspace.len(), 20_000);
        assert_eq!(keyspace.iter().count(), 20_000);
        let used = keyspace
            .shards
            .iter()
            .filter(|shard| !shard.is_empty())
            .count();
        assert_eq!(used, KEYSPACE_SHARD_COUNT, "20,000 keys reach every shard");
        let largest = keyspace.shards.iter().map(|shard| shard.len()).max();
        assert!(largest < Some(60), "even spread, largest shard {largest:?}");
        for index in 0..20_000 {
            let key = format!("k{index}");
            let place = keyspace.find(key.as_bytes()).expect("present");
            // The shard's own hashing agrees with the hash that picked the shard.
            assert_eq!(
                keyspace.shards[place.shard].get_index_of(key.as_bytes()),
                Some(place.index)
            );
        }
        for index in 0..10_000 {
            assert!(keyspace.remove(format!("k{index}").as_bytes()).is_some());
        }
        assert!(keyspace.remove(b"k0").is_none());
        assert_eq!(keyspace.len(), 10_000);
        keyspace.clear();
        assert_eq!(keyspace.len(), 0);
        assert!(keyspace.is_empty());
    }

    #[test]
    fn scan_crosses_empty_shards_and_ends_with_cursor_zero_only_at_the_end() {
        let mut keyspace = Keyspace::new();
        assert_eq!(keyspace.scan(0, 10, 0, |_, _| true), (0, Vec::new()));
        for key in ["a", "b", "c"] {
            keyspace.insert(key.as_bytes(), string("v"));
        }
        // Empty shards cost no COUNT: three keys come back in one call of COUNT 10.
        let (next, mut keys) = keyspace.scan(0, 10, 0, |_, _| true);
        keys.sort();
        assert_eq!(
            (next, keys),
            (0, vec![Key::from("a"), Key::from("b"), Key::from("c")])
        );
        // COUNT 1: one position per call; the cursor is never 0 before the end.
        let mut cursor = 0;
        let mut seen = Vec::new();
        loop {
            let (next, keys) = keyspace.scan(cursor, 1, 0, |_, _| true);
            seen.extend(keys);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert_eq!(seen.len(), 3);
        // A cursor naming a shard past the last one ends the iteration.
        let past = (KEYSPACE_SHARD_COUNT as u64) << SCAN_CURSOR_SHARD_SHIFT;
        assert_eq!(keyspace.scan(past, 10, 0, |_, _| true), (0, Vec::new()));
    }

    #[test]
    fn scan_returns_every_key_present_throughout_with_churn_across_shards() {
        for (seed, count) in [(1u64, 1usize), (2, 7), (3, 64), (4, 1_000), (5, 30_000)] {
            let mut random = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = |bound: u64| {
                random ^= random << 13;
                random ^= random >> 7;
                random ^= random << 17;
                random % bound
            };
            let mut keyspace = Keyspace::new();
            for index in 0..8_000 {
                keyspace.insert(format!("k{index}").as_bytes(), string("v"));
            }
            // Keys 0..4000 stay; 4000..8000 may be removed and re-added; new ones arrive.
            let mut seen = std::collections::HashSet::new();
            let mut cursor = 0;
            let mut calls = 0;
            loop {
                let (next_cursor, keys) = keyspace.scan(cursor, count, 0, |_, _| true);
                seen.extend(keys);
                calls += 1;
                // Fewer arrivals than positions examined, so even COUNT 1 reaches the end.
                for _ in 0..next(4) {
                    let key = format!("k{}", 4_000 + next(4_000));
                    if next(2) == 0 {
                        keyspace.remove(key.as_bytes());
                    } else {
                        keyspace.insert(key.as_bytes(), string("v"));
                    }
                    if next(4) == 0 {
                        keyspace.insert(format!("new{}", next(1_000_000)).as_bytes(), string("v"));
                    }
                }
                if next_cursor == 0 {
                    break;
                }
                cursor = next_cursor;
            }
            assert!(calls > 1 || count >= 8_000);
            for index in 0..4_000 {
                assert!(
                    seen.contains(format!("k{index}").as_bytes()),
                    "k{index} missed with COUNT {count}"
                );
            }
        }
    }

    #[test]
    fn shard_loaders_build_in_parts_the_keyspace_one_loader_would() {
        let mut keyspace = Keyspace::new();
        let mut loaders = keyspace.shard_loaders(3, 5_000);
        let shards: usize = loaders.iter().map(ShardLoader::shard_count).sum();
        assert_eq!(shards, KEYSPACE_SHARD_COUNT);
        for index in 0..5_000u64 {
            let key = format!("k{index}");
            let owners: Vec<(usize, u64)> = loaders
                .iter()
                .enumerate()
                .filter_map(|(part, loader)| loader.owns(key.as_bytes()).map(|hash| (part, hash)))
                .collect();
            assert_eq!(owners.len(), 1, "exactly one loader owns {key}");
            let (part, hash) = owners[0];
            let expiry = (index % 7 == 0).then_some(1_000 + index);
            loaders[part]
                .load_entry(key.as_bytes(), hash, string("v"), expiry)
                .expect("new key");
            if index == 0 {
                let again = loaders[part].load_entry(key.as_bytes(), hash, string("v"), None);
                assert!(again.is_err(), "a key twice is refused");
            }
        }
        keyspace.install(loaders);
        assert_eq!(keyspace.len(), 5_000);
        assert_eq!(keyspace.expiring_count(), 715);
        for index in 0..5_000 {
            assert!(keyspace.contains(format!("k{index}").as_bytes(), 0));
        }
        assert_eq!(
            keyspace.expire_due(1_000, 100).len(),
            1,
            "k0 expires at 1000"
        );
        keyspace.insert(b"after", string("v"));
        assert!(keyspace.remove(b"k1").is_some());
        assert_eq!(keyspace.len(), 4_999);
    }

    /// A set of `count` members.
    fn set_of(count: usize) -> Value {
        let members: super::super::SetValue = (0..count)
            .map(|member| bytes::Bytes::from(member.to_string()))
            .collect();
        Value::Set(super::super::Shared::new(members))
    }

    #[test]
    fn a_snapshot_serializes_small_collections_itself_and_hands_over_only_large_ones() {
        let mut keyspace = Keyspace::new();
        keyspace.insert(b"small", set_of(3));
        keyspace.insert(b"large", set_of(10));
        keyspace.set_snapshot_share_elements_min(10);
        keyspace.snapshot_begin();
        while !keyspace.snapshot_step(usize::MAX, || true) {}
        let shared = keyspace.snapshot_take_shared().walked;
        let shared_keys: Vec<&[u8]> = shared.iter().map(|entry| &entry.key[..]).collect();
        assert_eq!(
            shared_keys,
            vec![&b"large"[..]],
            "only the large set by handle"
        );
        let bytes = keyspace.snapshot_take_bytes(Vec::new());
        let mut reader = super::super::encoding::Reader::new(&bytes);
        let entry = super::super::encoding::read_entry(&mut reader).expect("one entry");
        assert_eq!(entry.key, b"small", "the small set serialized on the loop");
        assert_eq!(reader.remaining(), 0, "and nothing else");
        // Not shared, so a change right away copies nothing: the value is the keyspace's alone.
        let Some(Entry {
            value: Value::Set(set),
            ..
        }) = keyspace.get_mut(b"small", 0)
        else {
            panic!("a set");
        };
        assert!(!set.is_shared());
        assert_eq!(keyspace.snapshot_end(), 2);
    }

    #[test]
    fn a_change_to_a_large_collection_waits_while_the_snapshot_holds_it_and_never_copies_it() {
        let mut keyspace = Keyspace::new();
        keyspace.insert(b"small", set_of(3));
        keyspace.insert(b"large", set_of(10));
        keyspace.insert(b"walked", set_of(10));
        keyspace.set_snapshot_share_elements_min(10);
        assert!(!keyspace.snapshot_holds(b"large"), "no snapshot, no wait");
        keyspace.snapshot_begin();
        assert!(
            !keyspace.snapshot_holds(b"small"),
            "small: the hook serializes it"
        );
        assert!(!keyspace.snapshot_holds(b"absent"));
        // Pending and large: handed over now, in constant time, and the change must wait.
        assert!(keyspace.snapshot_holds(b"large"));
        assert!(
            keyspace.snapshot_holds(b"large"),
            "still held: the handle is not taken"
        );
        let handed = keyspace.snapshot_take_shared();
        assert!(handed.walked.is_empty());
        assert_eq!(handed.wanted.len(), 1, "wanted: a command waits for it");
        assert_eq!(&handed.wanted[0].key[..], b"large");
        while !keyspace.snapshot_step(usize::MAX, || true) {}
        let HandedOver { wanted, walked } = keyspace.snapshot_take_shared();
        assert!(wanted.is_empty());
        let walked_keys: Vec<&[u8]> = walked.iter().map(|entry| &entry.key[..]).collect();
        assert_eq!(
            walked_keys,
            vec![&b"walked"[..]],
            "the walk skips what went first"
        );
        assert!(keyspace.snapshot_holds(b"walked"), "shared by the walk");
        drop(handed);
        assert!(!keyspace.snapshot_holds(b"large"), "the writer let go");
        let Some(Entry {
            value: Value::Set(set),
            ..
        }) = keyspace.get_mut(b"large", 0)
        else {
            panic!("a set");
        };
        assert!(!set.is_shared(), "changing it now copies nothing");
        assert_eq!(keyspace.snapshot_end(), 3, "each entry written once");
        assert!(
            keyspace.snapshot_holds(b"walked"),
            "the writer may hold a value after the walk ended"
        );
        drop(walked);
        assert!(!keyspace.snapshot_holds(b"walked"));
    }

    #[test]
    fn a_snapshot_hands_collections_over_by_handle_unchanged_by_later_commands() {
        let mut keyspace = Keyspace::new();
        for index in 0..100 {
            let set: super::super::SetValue = [bytes::Bytes::from("a")].into_iter().collect();
            keyspace.insert(
                format!("s{index}").as_bytes(),
                Value::Set(super::super::Shared::new(set)),
            );
        }
        keyspace.insert(b"string", string("v"));
        keyspace.set_snapshot_share_elements_min(1);
        keyspace.snapshot_begin();
        while !keyspace.snapshot_step(usize::MAX, || true) {}
        let shared = keyspace.snapshot_take_shared().walked;
        assert_eq!(shared.len(), 100, "every set handed over");
        let bytes = keyspace.snapshot_take_bytes(Vec::new());
        assert_eq!(
            decode_snapshot(&bytes).len(),
            1,
            "only the string serialized on the loop"
        );
        for index in 0..100 {
            let key = format!("s{index}");
            let Some(Entry {
                value: Value::Set(set),
                ..
            }) = keyspace.get_mut(key.as_bytes(), 0)
            else {
                panic!("a set");
            };
            set.insert(bytes::Bytes::from("b"));
        }
        assert_eq!(keyspace.snapshot_end(), 101);
        for entry in &shared {
            let Value::Set(set) = &entry.value else {
                panic!("a set");
            };
            assert_eq!(
                set.len(),
                1,
                "the handed-over value is as it was at the start"
            );
            let mut out = Vec::new();
            entry.encode(&mut out);
            let mut reader = super::super::encoding::Reader::new(&out);
            let raw = super::super::encoding::read_entry(&mut reader).expect("entry");
            assert_eq!(raw.key, &entry.key[..]);
        }
        let Some(Entry {
            value: Value::Set(set),
            ..
        }) = keyspace.get(b"s0", 0)
        else {
            panic!("a set");
        };
        assert_eq!(set.len(), 2, "the live value changed");
    }

    #[test]
    fn a_snapshot_frees_cleared_shards_as_it_walks_them() {
        let mut keyspace = Keyspace::new();
        for index in 0..3_000 {
            keyspace.insert(format!("k{index}").as_bytes(), string("v0"));
        }
        let expected = state(&keyspace);
        keyspace.snapshot_begin();
        let mut written = Vec::new();
        let mut checks = 0;
        assert!(!keyspace.snapshot_step(usize::MAX, || {
            checks += 1;
            checks < 3
        }));
        written.extend(keyspace.snapshot_take_bytes(Vec::new()));
        keyspace.clear();
        keyspace.insert(b"k1", string("after"));
        keyspace.insert(b"fresh", string("after"));
        let frozen_keys = |keyspace: &Keyspace| -> usize {
            let snapshot = keyspace.snapshot.as_ref().expect("running");
            let frozen = snapshot
                .frozen
                .as_ref()
                .expect("cleared during the snapshot");
            frozen.iter().map(|shard| shard.len()).sum()
        };
        let before = frozen_keys(&keyspace);
        let mut checks = 0;
        assert!(!keyspace.snapshot_step(usize::MAX, || {
            checks += 1;
            checks < 10
        }));
        assert!(frozen_keys(&keyspace) < before, "walked shards are freed");
        while !keyspace.snapshot_step(usize::MAX, || true) {}
        written.extend(keyspace.snapshot_take_bytes(Vec::new()));
        assert!(keyspace.snapshot.as_ref().unwrap().frozen.is_none());
        keyspace.snapshot_end();
        assert_eq!(decode_snapshot(&written), expected);
        assert_eq!(keyspace.len(), 2);
    }

    /// The entries a snapshot wrote: key -> (string value, expiry).
    fn decode_snapshot(
        bytes: &[u8],
    ) -> std::collections::BTreeMap<Vec<u8>, (Vec<u8>, Option<u64>)> {
        let mut reader = super::super::encoding::Reader::new(bytes);
        let mut decoded = std::collections::BTreeMap::new();
        while reader.remaining() > 0 {
            let entry = super::super::encoding::read_entry(&mut reader).expect("entry");
            let (key, expiry) = (entry.key, entry.expires_at_ms);
            let Value::String(value) =
                super::super::encoding::decode_value(entry.tag, entry.value).unwrap()
            else {
                panic!("strings only here");
            };
            assert!(
                decoded
                    .insert(key.to_vec(), (value.to_vec(), expiry))
                    .is_none(),
                "{key:?} written twice"
            );
        }
        decoded
    }

    fn state(keyspace: &Keyspace) -> std::collections::BTreeMap<Vec<u8>, (Vec<u8>, Option<u64>)> {
        keyspace
            .iter()
            .map(|(key, entry)| {
                let Value::String(value) = &entry.value else {
                    panic!("strings only here");
                };
                (key.to_vec(), (value.to_vec(), entry.expires_at_ms))
            })
            .collect()
    }

    #[test]
    fn a_snapshot_holds_exactly_the_state_at_its_start_whatever_changes_meanwhile() {
        // 200 keys: mostly one per shard. 5,000: several per shard, so removals inside the shard being
        // walked move entries across its cursor. FLUSHALL (`clear`) now and then, and often.
        check_snapshot_under_churn(200, 1..40, 50);
        check_snapshot_under_churn(5_000, 1..6, 50);
        check_snapshot_under_churn(5_000, 6..10, 3);
    }

    fn check_snapshot_under_churn(key_count: u64, seeds: std::ops::Range<u64>, clear_one_in: u64) {
        for seed in seeds {
            let mut random = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = |bound: u64| {
                random ^= random << 13;
                random ^= random >> 7;
                random ^= random << 17;
                random % bound
            };
            let mut keyspace = Keyspace::new();
            for index in 0..key_count {
                keyspace.insert_with_expiry(
                    format!("k{index}").as_bytes(),
                    string("v0"),
                    (index % 5 == 0).then_some(1_000 + index),
                );
            }
            let expected = state(&keyspace);
            keyspace.snapshot_begin();
            let mut written = Vec::new();
            let mut steps = 0;
            loop {
                for _ in 0..next(8) {
                    let key = format!("k{}", next(key_count + key_count / 4));
                    match next(8) {
                        0 => {
                            keyspace.remove(key.as_bytes());
                        }
                        1 => keyspace.insert(key.as_bytes(), string("new")),
                        2 => {
                            if let Some(entry) = keyspace.get_mut(key.as_bytes(), 0) {
                                entry.value = string("changed");
                            }
                        }
                        3 => {
                            keyspace.set_expiry(key.as_bytes(), Some(5_000));
                        }
                        4 => {
                            keyspace.get_or_insert_with(key.as_bytes(), 0, || string("made"));
                        }
                        5 => {
                            keyspace.expire_due(1_000 + next(200), 3);
                        }
                        6 if next(clear_one_in) == 0 => keyspace.clear(),
                        _ => {
                            keyspace.get(key.as_bytes(), 1_100);
                        }
                    }
                }
                let mut checks = 0;
                let done = keyspace.snapshot_step(usize::MAX, || {
                    checks += 1;
                    checks < 1
                });
                written.extend(keyspace.snapshot_take_bytes(Vec::new()));
                steps += 1;
                if done {
                    break;
                }
            }
            let count = keyspace.snapshot_end();
            assert!(steps > 1, "the walk took several steps");
            let decoded = decode_snapshot(&written);
            assert_eq!(decoded.len() as u64, count);
            assert_eq!(decoded, expected, "seed {seed}, {key_count} keys");
        }
    }
}
