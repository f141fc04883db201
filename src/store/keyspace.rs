//! The keyspace: every key, its value and its expiry time, owned by the loop thread.
//!
//! Guarantees:
//! - A key whose expiry time is at or before `now_ms` is logically absent: every lookup that passes
//!   `now_ms` deletes it first (lazy expiry), and [`Keyspace::expire_due`] deletes due keys in bounded
//!   batches (active expiry) through an index ordered by expiry time, so no step ever scans the keyspace.
//! - Keys live in an insertion-ordered map whose removal moves the last entry into the hole. SCAN walks
//!   positions from the end towards the start, so a removal only ever moves an already-visited entry into
//!   the unvisited part: every key present for a whole SCAN is returned at least once (possibly twice).
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
//! bounded number at a time, walking positions from the end of the map towards the start, and marks each
//! with the current epoch. Before anything changes a pending entry (`get_mut`, `get_or_insert_with` on an
//! existing key, `insert*` over an existing key, `set_expiry`, `remove`, lazy and active expiry), the hook
//! [`Keyspace::preserve`] serializes it first, as it was at S. New keys get the current epoch and are not
//! part of the snapshot. `clear` hands the whole old map to the snapshot, which finishes walking it.
//! Every path to a `&mut Entry` is inside this type, so no caller can forget the hook.
//!
//! Why the walk goes downwards: a removal moves the *last* entry into the hole. Positions at or above
//! the cursor hold only entries already serialized or created after S, so whatever moves down into an
//! unvisited position is never pending, and a pending entry never moves above the cursor: none is missed,
//! none is written twice (the epoch mark makes the walk skip entries the hook already wrote).
//!
//! Pauses: a step checks its budget every `SNAPSHOT_BUDGET_CHECK_ENTRIES` entries, and a hook serializes
//! one entry. Either way the longest pause is bounded by the largest single value (a set, a coupon, a
//! post's likes): serializing runs at several hundred MB/s, so a value of some MB costs a few ms. Values
//! are never split; that is the honest limit of key-granularity copy-on-write.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use indexmap::IndexMap;

use super::encoding::encode_entry;
use super::Value;

pub type Key = Bytes;
pub type Hasher = ahash::RandomState;

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
    /// Positions `[0, cursor)` of the walked map are not visited yet.
    cursor: usize,
    /// The map as it was when `clear` ran during the snapshot; walked instead of the live map, whose
    /// entries are then all newer than the snapshot.
    frozen: Option<IndexMap<Key, Entry, Hasher>>,
    out: Vec<u8>,
    entries_written: u64,
}

#[derive(Debug, Default)]
struct Watch {
    watchers: u32,
    version: u64,
}

#[derive(Debug, Default)]
pub struct Keyspace {
    entries: IndexMap<Key, Entry, Hasher>,
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
}

impl Keyspace {
    pub fn new() -> Keyspace {
        Keyspace::default()
    }

    /// Number of keys held, including expired ones not yet deleted (Redis's DBSIZE does the same).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn expiring_count(&self) -> usize {
        self.expiries.len()
    }

    fn is_expired(entry: &Entry, now_ms: u64) -> bool {
        matches!(entry.expires_at_ms, Some(at) if at <= now_ms)
    }

    /// Deletes `key` if it has expired by `now_ms`.
    /// The position of the live entry for `key`, deleting it first if it has expired. One hash lookup in
    /// the common case; the position then reaches the entry without hashing again.
    fn live_index(&mut self, key: &[u8], now_ms: u64) -> Option<usize> {
        let index = self.entries.get_index_of(key)?;
        if Keyspace::is_expired(&self.entries[index], now_ms) {
            self.remove(key);
            self.expired_keys_total += 1;
            return None;
        }
        Some(index)
    }

    fn expire_if_due(&mut self, key: &[u8], now_ms: u64) {
        let _ = self.live_index(key, now_ms);
    }

    pub fn get(&mut self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        let index = self.live_index(key, now_ms)?;
        Some(&self.entries[index])
    }

    /// The entry for `key`, to change: serialized first if a snapshot still needs it as it is.
    pub fn get_mut(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let index = self.live_index(key, now_ms)?;
        self.preserve(index);
        Some(&mut self.entries[index])
    }

    pub fn contains(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.get(key, now_ms).is_some()
    }

    /// Inserts or replaces `key`, with no expiry.
    pub fn insert(&mut self, key: &[u8], value: Value) {
        self.insert_with_expiry(key, value, None);
    }

    pub fn insert_with_expiry(&mut self, key: &[u8], value: Value, expires_at_ms: Option<u64>) {
        self.set_timer(key, None);
        if let Some(index) = self.entries.get_index_of(key) {
            self.preserve(index);
            let entry = &mut self.entries[index];
            let old_expiry = entry.expires_at_ms;
            entry.value = value;
            if old_expiry != expires_at_ms {
                self.set_expiry(key, expires_at_ms);
            }
            return;
        }
        let key = Bytes::copy_from_slice(key);
        if let Some(at) = expires_at_ms {
            self.expiries.insert((at, key.clone()));
        }
        self.entries.insert(
            key,
            Entry {
                value,
                expires_at_ms,
                snapshot_epoch: self.snapshot_epoch,
            },
        );
    }

    /// Returns the value of `key`, inserting `make()` first if the key is absent.
    pub fn get_or_insert_with(
        &mut self,
        key: &[u8],
        now_ms: u64,
        make: impl FnOnce() -> Value,
    ) -> &mut Entry {
        self.expire_if_due(key, now_ms);
        let index = match self.entries.get_index_of(key) {
            Some(index) => {
                self.preserve(index);
                index
            }
            None => {
                let entry = Entry {
                    value: make(),
                    expires_at_ms: None,
                    snapshot_epoch: self.snapshot_epoch,
                };
                self.entries
                    .insert_full(Bytes::copy_from_slice(key), entry)
                    .0
            }
        };
        &mut self.entries[index]
    }

    /// Removes `key` whatever its expiry; returns the entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let index = self.entries.get_index_of(key)?;
        self.preserve(index);
        let (stored_key, entry) = self.entries.swap_remove_index(index)?;
        self.clamp_snapshot_cursor();
        self.set_timer(key, None);
        if let Some(at) = entry.expires_at_ms {
            self.expiries.remove(&(at, stored_key));
        }
        Some(entry)
    }

    /// Sets or clears the expiry of an existing key. Returns false if the key is absent.
    pub fn set_expiry(&mut self, key: &[u8], expires_at_ms: Option<u64>) -> bool {
        let Some(index) = self.entries.get_index_of(key) else {
            return false;
        };
        self.preserve(index);
        let (stored_key, entry) = self
            .entries
            .get_index_mut(index)
            .expect("index found above");
        if let Some(old) = entry.expires_at_ms {
            self.expiries.remove(&(old, stored_key.clone()));
        }
        entry.expires_at_ms = expires_at_ms;
        if let Some(at) = expires_at_ms {
            self.expiries.insert((at, stored_key.clone()));
        }
        true
    }

    /// The earliest expiry time of any key, so the loop knows when the next active cycle has work.
    pub fn next_expiry_ms(&self) -> Option<u64> {
        self.expiries.first().map(|(at, _)| *at)
    }

    /// Deletes up to `count_max` keys whose expiry is at or before `now_ms`, earliest first, and returns
    /// them (the caller logs them as deletions and touches watchers).
    pub fn expire_due(&mut self, now_ms: u64, count_max: usize) -> Vec<Key> {
        let mut expired = Vec::new();
        while expired.len() < count_max {
            match self.expiries.first() {
                Some((at, _)) if *at <= now_ms => {
                    let (_, key) = self.expiries.pop_first().expect("first exists");
                    if let Some(index) = self.entries.get_index_of(&key[..]) {
                        self.preserve(index);
                        self.entries.swap_remove_index(index);
                        self.clamp_snapshot_cursor();
                    }
                    self.set_timer(&key, None);
                    self.expired_keys_total += 1;
                    expired.push(key);
                }
                _ => break,
            }
        }
        expired
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        let old = std::mem::take(&mut self.entries);
        match &mut self.snapshot {
            // The snapshot still needs the old entries as they were: it takes the map and finishes the
            // walk on it. Later clears find no pending entry in the live map.
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

    /// One step of SCAN: returns the keys at positions `[next, cursor)` (walking down from the end) that
    /// are live at `now_ms` and accepted by `filter`, with the next cursor (0 when done). `cursor == 0`
    /// starts at the end.
    pub fn scan(
        &self,
        cursor: u64,
        count: usize,
        now_ms: u64,
        mut filter: impl FnMut(&[u8], &Value) -> bool,
    ) -> (u64, Vec<Key>) {
        let length = self.entries.len() as u64;
        let start = if cursor == 0 || cursor > length {
            length
        } else {
            cursor
        };
        let stop = start.saturating_sub(count.max(1) as u64);
        let mut keys = Vec::new();
        for position in (stop..start).rev() {
            let (key, entry) = self.entries.get_index(position as usize).expect("in range");
            if !Keyspace::is_expired(entry, now_ms) && filter(key, &entry.value) {
                keys.push(key.clone());
            }
        }
        (stop, keys)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Entry)> {
        self.entries.iter()
    }

    // --- Snapshots (see the module documentation) ---

    /// Starts a point-in-time snapshot of every entry now present. Any snapshot in progress is dropped.
    pub fn snapshot_begin(&mut self) {
        // Wrapping is harmless: an entry would need to sit out 2^32 snapshots to look serialized.
        self.snapshot_epoch = self.snapshot_epoch.wrapping_add(1);
        self.snapshot = Some(SnapshotProgress {
            cursor: self.entries.len(),
            ..SnapshotProgress::default()
        });
    }

    pub fn snapshot_in_progress(&self) -> bool {
        self.snapshot.is_some()
    }

    /// Serializes pending entries, walking down from the cursor, while `keep_going()` (asked every
    /// `SNAPSHOT_BUDGET_CHECK_ENTRIES` entries) says so and `out_budget` bytes are not yet waiting.
    /// Returns true when every entry of the snapshot has been serialized.
    pub fn snapshot_step(
        &mut self,
        out_budget: usize,
        mut keep_going: impl FnMut() -> bool,
    ) -> bool {
        let epoch = self.snapshot_epoch;
        let Some(snapshot) = &mut self.snapshot else {
            return true;
        };
        let map = match &mut snapshot.frozen {
            Some(frozen) => frozen,
            None => &mut self.entries,
        };
        let mut examined = 0;
        while snapshot.cursor > 0 {
            if snapshot.out.len() >= out_budget {
                return false;
            }
            examined += 1;
            if examined % SNAPSHOT_BUDGET_CHECK_ENTRIES == 0 && !keep_going() {
                return false;
            }
            snapshot.cursor -= 1;
            let (key, entry) = map.get_index_mut(snapshot.cursor).expect("cursor in range");
            if entry.snapshot_epoch != epoch {
                entry.snapshot_epoch = epoch;
                encode_entry(key, &entry.value, entry.expires_at_ms, &mut snapshot.out);
                snapshot.entries_written += 1;
            }
        }
        // The frozen map is done; the live map holds only entries created after the snapshot began.
        snapshot.frozen = None;
        true
    }

    /// Takes the entries serialized so far (by steps and hooks), leaving an empty buffer.
    pub fn snapshot_take_bytes(&mut self, replacement: Vec<u8>) -> Vec<u8> {
        match &mut self.snapshot {
            Some(snapshot) => std::mem::replace(&mut snapshot.out, replacement),
            None => replacement,
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

    /// The copy-on-write hook: serializes the entry at `index` as it is now if the running snapshot
    /// still needs it. Called before every change to an entry.
    fn preserve(&mut self, index: usize) {
        let Some(snapshot) = &mut self.snapshot else {
            return;
        };
        if snapshot.frozen.is_some() {
            // Every live entry was created after the snapshot began.
            return;
        }
        let (key, entry) = self.entries.get_index_mut(index).expect("index in range");
        if entry.snapshot_epoch != self.snapshot_epoch {
            entry.snapshot_epoch = self.snapshot_epoch;
            encode_entry(key, &entry.value, entry.expires_at_ms, &mut snapshot.out);
            snapshot.entries_written += 1;
        }
    }

    /// After a swap-removal the map is one shorter; unvisited positions can't be past its end.
    fn clamp_snapshot_cursor(&mut self) {
        if let Some(snapshot) = &mut self.snapshot {
            if snapshot.frozen.is_none() {
                snapshot.cursor = snapshot.cursor.min(self.entries.len());
            }
        }
    }

    /// Adds an entry read from a snapshot file. A key present twice is an error (the file is damaged
    /// or was written by a bug); values with internal deadlines get their timer registered. One hash of
    /// the key and one copy of it: this runs once per key at start-up, millions of times.
    pub fn load_entry(
        &mut self,
        key: &[u8],
        value: Value,
        expires_at_ms: Option<u64>,
    ) -> Result<(), String> {
        let deadline_ms = super::encoding::value_deadline_ms(&value);
        let key = Bytes::copy_from_slice(key);
        let entry = Entry {
            value,
            expires_at_ms,
            snapshot_epoch: self.snapshot_epoch,
        };
        match self.entries.entry(key) {
            indexmap::map::Entry::Occupied(_) => return Err("a key appears twice".to_string()),
            indexmap::map::Entry::Vacant(vacant) => {
                if let Some(at) = expires_at_ms {
                    self.expiries.insert((at, vacant.key().clone()));
                }
                if deadline_ms.is_some() {
                    let key = vacant.key().clone();
                    vacant.insert(entry);
                    self.set_timer(&key, deadline_ms);
                    return Ok(());
                }
                vacant.insert(entry);
            }
        }
        Ok(())
    }

    /// Room for `additional` more keys without rehashing (loading a snapshot of known size).
    pub fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
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
            let key = Bytes::copy_from_slice(key);
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
        let mut due = Vec::new();
        while due.len() < count_max {
            match self.timers.first() {
                Some((at, _)) if *at <= now_ms => {
                    let (_, key) = self.timers.pop_first().expect("first exists");
                    self.timer_of.remove(&key);
                    due.push(key);
                }
                _ => break,
            }
        }
        due
    }

    // --- WATCH ---

    pub fn watch(&mut self, key: &[u8]) -> u64 {
        let watch = self.watched.entry(Bytes::copy_from_slice(key)).or_default();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn string(value: &str) -> Value {
        Value::String(Bytes::copy_from_slice(value.as_bytes()))
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
        for seed in 1..40u64 {
            let mut random = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = |bound: u64| {
                random ^= random << 13;
                random ^= random >> 7;
                random ^= random << 17;
                random % bound
            };
            let mut keyspace = Keyspace::new();
            for index in 0..200 {
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
                    let key = format!("k{}", next(260));
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
                        6 if next(50) == 0 => keyspace.clear(),
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
            assert_eq!(decoded, expected, "seed {seed}");
        }
    }
}
