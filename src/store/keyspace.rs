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

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use indexmap::IndexMap;

use super::Value;

pub type Key = Bytes;
pub type Hasher = ahash::RandomState;

#[derive(Debug)]
pub struct Entry {
    pub value: Value,
    /// Unix milliseconds at which the key stops existing.
    pub expires_at_ms: Option<u64>,
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

    pub fn get_mut(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let index = self.live_index(key, now_ms)?;
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
        if let Some(entry) = self.entries.get_mut(key) {
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
        if !self.entries.contains_key(key) {
            self.entries.insert(
                Bytes::copy_from_slice(key),
                Entry {
                    value: make(),
                    expires_at_ms: None,
                },
            );
        }
        self.entries.get_mut(key).expect("inserted above")
    }

    /// Removes `key` whatever its expiry; returns the entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let (stored_key, entry) = self.entries.swap_remove_entry(key)?;
        self.set_timer(key, None);
        if let Some(at) = entry.expires_at_ms {
            self.expiries.remove(&(at, stored_key));
        }
        Some(entry)
    }

    /// Sets or clears the expiry of an existing key. Returns false if the key is absent.
    pub fn set_expiry(&mut self, key: &[u8], expires_at_ms: Option<u64>) -> bool {
        let Some((_, stored_key, entry)) = self.entries.get_full_mut(key) else {
            return false;
        };
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
                    self.entries.swap_remove(&key[..]);
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
        self.entries = IndexMap::default();
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
}
