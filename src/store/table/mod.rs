//! A hash table for collections that never grows or shrinks in one go.
//!
//! `IndexSet`/`IndexMap` double their table at once, so growing one large collection pauses every client
//! of the server for a time that doubles with each growth. [`Table`] resizes the way Redis's `dict` does,
//! a few buckets at a time, and stores its entries more compactly than either.
//!
//! # Layout
//! - Entries live in a dense, segmented array (`slots.rs`): key, value, a cached 32-bit hash and the index
//!   of the next entry in the same bucket. Segments are fixed-size, so the array never copies itself to
//!   grow; removal swap-removes, so the array stays dense.
//! - Buckets are an array of `u32` chain heads (entry index + 1; 0 is an empty bucket), a power of two
//!   long. Chains are threaded through the entries, so there is no allocation per entry or per bucket.
//! - A resize allocates the new bucket array zeroed (`calloc`, whose fresh pages cost nothing until
//!   touched) and then moves old buckets into it in order, [`TABLE_REHASH_BUCKETS_PER_OPERATION`] per
//!   insert or remove, and as many as the loop asks for in [`Table::rehash_step`]. Moving a bucket relinks
//!   its chain; no entry moves in memory.
//!
//! # Guarantees
//! - While two bucket arrays coexist, an entry whose old bucket index is at or past the move's position is
//!   in the old array, every other entry in the new one. So a lookup reads exactly one chain, and an insert
//!   during a move goes where a lookup will look.
//! - Work: an insert, remove or `get_mut` moves at most [`TABLE_REHASH_BUCKETS_PER_OPERATION`] buckets and
//!   walks one chain (a remove walks a second: the chain of the entry moved into the hole). Lookups take
//!   `&self` and move nothing, so a read-only workload relies on the loop's `rehash_step`. A scan call visits at most
//!   `10 * count` cursor positions, each one bucket plus at most 8 of the larger array. Only [`Table::iter`]
//!   walks everything.
//! - Growth at load factor 1 (more entries than buckets), to twice the buckets. Shrink when under 1/8 full,
//!   to 1/8 of the buckets (Redis's rule), repeated while it still applies; emptied segments are freed as
//!   the entries go. A resize never starts while one is in progress; the proof that one always ends before
//!   the next is due is on [`TABLE_REHASH_BUCKETS_PER_OPERATION`]. Because one resize changes the size by
//!   at most 8x, a scan step during a move covers at most 8 buckets of the larger array. Inserts during a
//!   shrink can fill the smaller array past load factor 1 (at most 3 with 4 buckets an operation: 1/8 of
//!   the old size plus one entry per 4 buckets moved); the growth that follows as the move ends fixes it.
//! - [`Table::scan`] has Redis's reverse-binary cursor: an entry present from the first call to the last is
//!   returned at least once, whatever resizes happen in between (some may be returned twice).
//! - [`Table::random`] maps a caller's random number to a uniformly random entry in O(1): the entries are
//!   dense, so it is an index. There is no generator inside, so the store stays deterministic.
//! - At most `u32::MAX - 1` entries (the chain links are 32-bit); that is 160 GB of 40-byte entries.
//!
//! # Cost per entry
//! `size_of::<K>() + size_of::<V>()` rounded up with the 8 bytes of hash and link, plus 4 to 8 bytes of
//! bucket array (load factor between 1/2 and 1), plus during a move the old array. For a set of
//! `SmallBytes` (32 bytes) that is 40 + 4..8 = 44 to 48 bytes an entry, against `IndexSet`'s 40 bytes of
//! entry plus 9 to 18 bytes of index and up to 2x unused entry capacity. The slack is at most one
//! half-empty segment plus one spare, not a fraction of the table.

mod slots;
#[cfg(test)]
mod tests;

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

use crate::limits::TABLE_REHASH_BUCKETS_PER_OPERATION;
use slots::{Slot, Slots};

/// The smallest bucket array a non-empty table has.
const BUCKETS_MIN: usize = 4;
/// A table shrinks when fewer than one in this many buckets would hold an entry, and then to this
/// fraction of its buckets, so one resize changes the size by at most this factor (it bounds a scan step).
const SHRINK_FACTOR: usize = 8;
/// A scan call stops after this many cursor positions per element asked for, so a sparse table can't make
/// one call walk it all (Redis's `count * 10`).
const SCAN_POSITIONS_PER_COUNT: usize = 10;

/// A map from `K` to `V` that resizes incrementally; a set is `Table<K, ()>`. See the module doc.
#[derive(Clone)]
pub struct Table<K, V, S = ahash::RandomState> {
    slots: Slots<K, V>,
    /// The bucket array entries are in; during a move, the old one (buckets before `move_position` are
    /// already empty).
    buckets: Vec<u32>,
    /// The bucket array being filled during a move; empty otherwise.
    buckets_next: Vec<u32>,
    /// During a move, the first bucket of `buckets` not yet moved.
    move_position: usize,
    hasher: S,
}

/// Which bucket array, and which bucket in it, holds the chain of a hash.
#[derive(Clone, Copy)]
enum Place {
    Current(usize),
    Next(usize),
}

impl<K, V, S: Default> Default for Table<K, V, S> {
    fn default() -> Self {
        Table::with_hasher(S::default())
    }
}

impl<K: std::fmt::Debug, V: std::fmt::Debug, S> std::fmt::Debug for Table<K, V, S> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_map().entries(self.iter()).finish()
    }
}

impl<K, V> Table<K, V, ahash::RandomState> {
    pub fn new() -> Self {
        Table::with_hasher(ahash::RandomState::new())
    }
}

impl<K, V, S> Table<K, V, S> {
    pub fn with_hasher(hasher: S) -> Self {
        Table {
            slots: Slots::default(),
            buckets: Vec::new(),
            buckets_next: Vec::new(),
            move_position: 0,
            hasher,
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.len() == 0
    }

    /// Whether two bucket arrays coexist (a resize is in progress).
    pub fn is_rehashing(&self) -> bool {
        !self.buckets_next.is_empty()
    }

    /// Every entry, in the dense array's order (not the scan order). The only operation whose work is
    /// proportional to the table.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.slots.iter().map(|slot| (&slot.key, &slot.value))
    }

    /// The entry a caller's random number picks, uniformly over the entries: the entries are dense, so
    /// `random % len` is an index. `None` when the table is empty.
    pub fn random(&self, random: u64) -> Option<(&K, &V)> {
        if self.is_empty() {
            return None;
        }
        let slot = self.slots.get((random % self.len() as u64) as usize);
        Some((&slot.key, &slot.value))
    }

    /// Heap bytes the table holds: entry segments and bucket arrays, by capacity.
    pub fn memory_bytes(&self) -> usize {
        self.slots.memory_bytes() + (self.buckets.capacity() + self.buckets_next.capacity()) * 4
    }

    /// Removes every entry and frees everything.
    pub fn clear(&mut self) {
        self.slots.clear();
        self.buckets = Vec::new();
        self.buckets_next = Vec::new();
        self.move_position = 0;
    }

    /// Moves up to `buckets` buckets of a resize in progress to the new array (empty buckets count: the
    /// work is bounded by the count given, plus the chains moved). Returns whether a resize is still in
    /// progress. When a move ends, the next resize starts if the table already needs one (a shrink from
    /// millions to a handful goes 8x at a time).
    pub fn rehash_step(&mut self, buckets: usize) -> bool {
        for _ in 0..buckets {
            if !self.is_rehashing() {
                break;
            }
            self.move_one_bucket();
        }
        self.is_rehashing()
    }

    /// Resumable scan with Redis's reverse-binary cursor: start at 0, pass each returned cursor to the next
    /// call, stop when it returns 0. Calls `visit` on the entries of the buckets it passes, until it has
    /// visited at least `count` entries or passed `10 * count` cursor positions. An entry present for the
    /// whole scan is visited at least once, even while the table resizes in between calls.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&K, &V)) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let positions_max = count.max(1).saturating_mul(SCAN_POSITIONS_PER_COUNT);
        let mut cursor = cursor;
        let mut visited = 0;
        for _ in 0..positions_max {
            cursor = self.scan_position(cursor, &mut |key, value| {
                visited += 1;
                visit(key, value);
            });
            if cursor == 0 || visited >= count {
                break;
            }
        }
        cursor
    }

    /// Visits one cursor position and returns the next cursor. While two arrays coexist the position is
    /// one bucket of the smaller array and every bucket of the larger one that splits from it (Redis's
    /// `dictScan`): an entry is in exactly one of those, whichever array holds it.
    fn scan_position(&self, cursor: u64, visit: &mut impl FnMut(&K, &V)) -> u64 {
        if !self.is_rehashing() {
            let mask = (self.buckets.len() - 1) as u64;
            self.visit_chain(self.buckets[(cursor & mask) as usize], visit);
            return increment_reversed(cursor, mask);
        }
        let (small, large) = if self.buckets.len() <= self.buckets_next.len() {
            (&self.buckets, &self.buckets_next)
        } else {
            (&self.buckets_next, &self.buckets)
        };
        let small_mask = (small.len() - 1) as u64;
        let large_mask = (large.len() - 1) as u64;
        let mut cursor = cursor;
        self.visit_chain(small[(cursor & small_mask) as usize], visit);
        loop {
            self.visit_chain(large[(cursor & large_mask) as usize], visit);
            cursor = increment_reversed(cursor, large_mask);
            // Go on while the bits the larger mask adds are not back to zero.
            if cursor & (small_mask ^ large_mask) == 0 {
                return cursor;
            }
        }
    }

    fn visit_chain(&self, head: u32, visit: &mut impl FnMut(&K, &V)) {
        let mut link = head;
        while link != 0 {
            let slot = self.slots.get(link as usize - 1);
            visit(&slot.key, &slot.value);
            link = slot.next;
        }
    }

    /// Where the chain of `hash` is now (see the module doc's first guarantee).
    fn place(&self, hash: u32) -> Place {
        let current = hash as usize & (self.buckets.len() - 1);
        if self.is_rehashing() && current < self.move_position {
            Place::Next(hash as usize & (self.buckets_next.len() - 1))
        } else {
            Place::Current(current)
        }
    }

    fn head(&self, place: Place) -> u32 {
        match place {
            Place::Current(bucket) => self.buckets[bucket],
            Place::Next(bucket) => self.buckets_next[bucket],
        }
    }

    fn head_mut(&mut self, place: Place) -> &mut u32 {
        match place {
            Place::Current(bucket) => &mut self.buckets[bucket],
            Place::Next(bucket) => &mut self.buckets_next[bucket],
        }
    }

    /// Relinks the chain of bucket `move_position` into the new array and advances; ends the move after
    /// the last bucket.
    fn move_one_bucket(&mut self) {
        let next_mask = self.buckets_next.len() - 1;
        let mut link = std::mem::take(&mut self.buckets[self.move_position]);
        while link != 0 {
            let slot = self.slots.get_mut(link as usize - 1);
            let following = slot.next;
            let bucket = slot.hash as usize & next_mask;
            slot.next = self.buckets_next[bucket];
            self.buckets_next[bucket] = link;
            link = following;
        }
        self.move_position += 1;
        if self.move_position == self.buckets.len() {
            self.buckets = std::mem::take(&mut self.buckets_next);
            self.move_position = 0;
            self.resize_if_needed();
        }
    }

    /// Starts a resize if the load calls for one and none is in progress.
    fn resize_if_needed(&mut self) {
        if self.is_rehashing() {
            return;
        }
        let buckets = self.buckets.len();
        let len = self.len();
        if len == 0 {
            // Nothing to move: give the array back at once.
            self.buckets = Vec::new();
            return;
        }
        let target = if len > buckets {
            buckets * 2
        } else if buckets > BUCKETS_MIN && len < buckets / SHRINK_FACTOR {
            (buckets / SHRINK_FACTOR).max(BUCKETS_MIN)
        } else {
            return;
        };
        // Zeroed memory: a large array comes from calloc's fresh pages, so starting a resize costs the
        // same at any size instead of writing the whole array.
        self.buckets_next = vec![0; target];
        self.move_position = 0;
    }

    fn rehash_for_operation(&mut self) {
        self.rehash_step(TABLE_REHASH_BUCKETS_PER_OPERATION);
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> Table<K, V, S> {
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u32 {
        // The low bits pick the bucket; ahash mixes them as well as the high ones.
        self.hasher.hash_one(key) as u32
    }

    /// The index of the entry with `key`, if any.
    fn find<Q>(&self, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.buckets.is_empty() {
            return None;
        }
        self.find_hashed(key, self.hash(key))
    }

    /// [`Table::find`] with the key's hash already computed (an insert hashes once for the lookup and the
    /// link).
    fn find_hashed<Q>(&self, key: &Q, hash: u32) -> Option<usize>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if self.buckets.is_empty() {
            return None;
        }
        let mut link = self.head(self.place(hash));
        while link != 0 {
            let slot = self.slots.get(link as usize - 1);
            if slot.hash == hash && slot.key.borrow() == key {
                return Some(link as usize - 1);
            }
            link = slot.next;
        }
        None
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find(key).map(|index| &self.slots.get(index).value)
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find(key).is_some()
    }

    /// The entry's key and value, the key as stored (useful when `Q` is a borrowed form).
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find(key).map(|index| {
            let slot = self.slots.get(index);
            (&slot.key, &slot.value)
        })
    }

    /// Moves up to [`TABLE_REHASH_BUCKETS_PER_OPERATION`] buckets of a resize in progress, like every
    /// change does.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.rehash_for_operation();
        let index = self.find(key)?;
        Some(&mut self.slots.get_mut(index).value)
    }

    /// Inserts or replaces; returns the old value. Moves up to [`TABLE_REHASH_BUCKETS_PER_OPERATION`]
    /// buckets of a resize in progress, and starts a resize when the table passes load factor 1.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.insert_inner(key, value).1
    }

    fn insert_inner(&mut self, key: K, value: V) -> (usize, Option<V>) {
        let hash = self.hash(&key);
        self.rehash_for_operation();
        if let Some(index) = self.find_hashed(&key, hash) {
            let old = std::mem::replace(&mut self.slots.get_mut(index).value, value);
            return (index, Some(old));
        }
        (self.push_hashed(key, value, hash), None)
    }

    /// Inserts the entry `make` builds unless there is one with `key` already; `make` is called only when
    /// there is not, so a caller whose key is borrowed (`&[u8]` for a `SmallBytes` key) copies it only
    /// when it is new. Hashes `key` once for the lookup and the link. Returns the entry's position (see
    /// [`Table::get_index_of`]) and whether it was inserted. Moves buckets and starts a resize like
    /// [`Table::insert`]. `make` must build an entry whose key equals `key`.
    pub fn insert_if_absent_with<Q>(
        &mut self,
        key: &Q,
        make: impl FnOnce() -> (K, V),
    ) -> (usize, bool)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        self.rehash_for_operation();
        if let Some(index) = self.find_hashed(key, hash) {
            return (index, false);
        }
        let (new_key, value) = make();
        debug_assert!(
            new_key.borrow() == key,
            "make built the entry of another key"
        );
        (self.push_hashed(new_key, value, hash), true)
    }

    /// Links a new entry whose key is not in the table into the chain `hash` names, and starts a resize
    /// when the table passes load factor 1.
    fn push_hashed(&mut self, key: K, value: V, hash: u32) -> usize {
        assert!(
            self.len() < u32::MAX as usize - 1,
            "a table holds at most 2^32 - 2 entries"
        );
        if self.buckets.is_empty() {
            self.buckets = vec![0; BUCKETS_MIN];
        }
        let place = self.place(hash);
        let next = self.head(place);
        let index = self.slots.push(Slot {
            key,
            value,
            hash,
            next,
        });
        *self.head_mut(place) = index as u32 + 1;
        self.resize_if_needed();
        index
    }

    /// Removes the entry with `key` and returns its value. Moves up to
    /// [`TABLE_REHASH_BUCKETS_PER_OPERATION`] buckets of a resize in progress, and starts a shrink when
    /// the table falls under 1/8 full.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.remove_entry(key).map(|(_, value)| value)
    }

    /// [`Table::remove`], returning the stored key too.
    pub fn remove_entry<Q>(&mut self, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.rehash_for_operation();
        let index = self.find(key)?;
        Some(self.remove_at(index))
    }

    /// Removes the entry at `index` (`0..len`) like [`Table::remove`]; `None` past the end.
    pub fn swap_remove_index(&mut self, index: usize) -> Option<(K, V)> {
        self.rehash_for_operation();
        (index < self.len()).then(|| self.remove_at(index))
    }

    /// The position of `key`'s entry in the dense array, as for [`Table::get_index`]. Positions are
    /// stable except that a removal moves the last entry into the removed one's position (like
    /// `IndexMap::swap_remove`), so an index kept outside the table (a coupon's number to holder) is
    /// updated after each removal: the entry now at the removed index came from index `len`.
    pub fn get_index_of<Q>(&self, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find(key)
    }

    /// The entry at a position of the dense array (`0..len`).
    pub fn get_index(&self, index: usize) -> Option<(&K, &V)> {
        (index < self.len()).then(|| {
            let slot = self.slots.get(index);
            (&slot.key, &slot.value)
        })
    }

    /// [`Table::insert`], also returning the entry's position (see [`Table::get_index_of`]).
    pub fn insert_full(&mut self, key: K, value: V) -> (usize, Option<V>) {
        self.insert_inner(key, value)
    }

    /// Unlinks and swap-removes the entry at `index`, relinks the entry moved into its place and starts a
    /// shrink if one is due: two chains walked.
    fn remove_at(&mut self, index: usize) -> (K, V) {
        let slot = self.slots.get(index);
        let (hash, following) = (slot.hash, slot.next);
        self.relink(hash, index as u32 + 1, following);
        let last = self.len() - 1;
        let removed = self.slots.swap_remove(index);
        if index != last {
            // The last entry now sits at `index`: point the link that named it there.
            let moved_hash = self.slots.get(index).hash;
            self.relink(moved_hash, last as u32 + 1, index as u32 + 1);
        }
        self.resize_if_needed();
        (removed.key, removed.value)
    }

    /// In the chain of `hash`, replaces the link `from` with `to`.
    fn relink(&mut self, hash: u32, from: u32, to: u32) {
        let place = self.place(hash);
        if self.head(place) == from {
            *self.head_mut(place) = to;
            return;
        }
        let mut link = self.head(place);
        while link != 0 {
            let slot = self.slots.get_mut(link as usize - 1);
            if slot.next == from {
                slot.next = to;
                return;
            }
            link = slot.next;
        }
        unreachable!("an entry is always linked from its own chain");
    }
}

#[cfg(test)]
impl<K, V, S> Table<K, V, S> {
    /// Checks the layout the module doc promises: every entry linked exactly once, from the chain its hash
    /// names (old array at or past the move's position, new array before it), moved buckets empty.
    pub(crate) fn assert_consistent(&self) {
        let mut linked = vec![false; self.len()];
        let mut check_array = |array: &[u32], is_next: bool| {
            let mask = array.len().wrapping_sub(1);
            for (bucket, &head) in array.iter().enumerate() {
                if !is_next && self.is_rehashing() && bucket < self.move_position {
                    assert_eq!(head, 0, "moved bucket {bucket} is not empty");
                }
                let mut link = head;
                while link != 0 {
                    let index = link as usize - 1;
                    assert!(!linked[index], "entry {index} linked twice");
                    linked[index] = true;
                    let slot = self.slots.get(index);
                    assert_eq!(
                        slot.hash as usize & mask,
                        bucket,
                        "entry {index} in the wrong bucket"
                    );
                    let current = slot.hash as usize & (self.buckets.len() - 1);
                    let in_next = self.is_rehashing() && current < self.move_position;
                    assert_eq!(in_next, is_next, "entry {index} in the wrong array");
                    link = slot.next;
                }
            }
        };
        check_array(&self.buckets, false);
        check_array(&self.buckets_next, true);
        assert!(
            linked.iter().all(|&is_linked| is_linked),
            "an entry is not linked"
        );
        if self.is_rehashing() {
            assert!(self.buckets_next.len().is_power_of_two());
        }
        assert!(self.buckets.is_empty() || self.buckets.len().is_power_of_two());
    }

    pub(crate) fn bucket_count(&self) -> usize {
        self.buckets.len()
    }
}

/// Redis's reverse-binary cursor increment: set the bits above `mask`, add one to the bit-reversed value,
/// reverse back. Increments the high bits of the bucket index first, so a cursor position in a smaller
/// array covers exactly the positions it splits into in a larger one.
fn increment_reversed(cursor: u64, mask: u64) -> u64 {
    (cursor | !mask)
        .reverse_bits()
        .wrapping_add(1)
        .reverse_bits()
}

impl<K: Hash + Eq, V, S: BuildHasher> Extend<(K, V)> for Table<K, V, S> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, entries: I) {
        for (key, value) in entries {
            self.insert(key, value);
        }
    }
}

impl<K: Hash + Eq, V> FromIterator<(K, V)> for Table<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        let mut table = Table::new();
        table.extend(entries);
        table
    }
}
