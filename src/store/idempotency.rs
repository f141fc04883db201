//! Request IDs that make a mutating command safe to repeat, and the bounded, time-windowed map behind them.
//!
//! # What it owns
//! - [`WindowedMap`]: a map that remembers each entry for a window of time and at most a fixed number of
//!   entries, forgetting the oldest first. The stock type uses it for settled reservations too.
//! - [`IdempotencyCache`]: request ID -> the outcome of the first call that carried it, for one key.
//! - [`Applied`]: an outcome plus whether the call changed state, which tells the loop whether to log it.
//!
//! # Guarantees
//! - An ID is remembered from the call that recorded it for `window_ms` (default
//!   [`IDEMPOTENCY_WINDOW_MS_DEFAULT`], 24 h) and a key keeps at most `entries_max` IDs (default
//!   [`IDEMPOTENCY_ENTRIES_PER_KEY_MAX`]); beyond that the oldest are forgotten. A forgotten ID is new again.
//! - A lookup at `now_ms` never sees an entry recorded at `recorded_ms` once
//!   `recorded_ms + window_ms <= now_ms`, whether or not it has been evicted yet.
//! - Everything depends only on the calls and their `now_ms`; nothing reads a clock. The hash seed is
//!   random, but nothing iterates a hash map in a way that shapes a result, so replaying the log rebuilds
//!   the same cache.
//!
//! # The replay contract with the loop
//! A call whose [`Applied::changed`] is `false` left the value exactly as it was (tests check this by
//! comparing with a clone), so the loop may leave it out of the log. A call that changed something must be
//! logged with its `now_ms`; replay runs it through the same method and gets the same outcome and state.
//! Changing the window or the bound between runs changes which repeats replay recognises, so keep the
//! policy fixed for a log's lifetime (or log it with the key's creation).
use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use crate::limits::{
    IDEMPOTENCY_ENTRIES_PER_KEY_MAX, IDEMPOTENCY_REQUEST_ID_LENGTH_MAX,
    IDEMPOTENCY_WINDOW_MS_DEFAULT,
};
use crate::store::encoding::{put_count, put_u64, Codec, Reader};

/// What a mutating call returns: its outcome, and whether it changed state (and so must be logged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied<Outcome> {
    pub outcome: Outcome,
    /// `true` when the call changed the value: the loop must log it, with `now_ms`, for replay. `false`
    /// means the value is exactly as before (a replayed ID, a sold-out reply), and the call may go unlogged.
    pub changed: bool,
}

impl<Outcome> Applied<Outcome> {
    pub fn changed(outcome: Outcome) -> Self {
        Applied {
            outcome,
            changed: true,
        }
    }

    pub fn unchanged(outcome: Outcome) -> Self {
        Applied {
            outcome,
            changed: false,
        }
    }
}

/// How long request IDs are remembered and how many one key keeps. Fixed when a key is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdempotencyPolicy {
    pub window_ms: u64,
    pub entries_max: usize,
}

impl Default for IdempotencyPolicy {
    fn default() -> Self {
        IdempotencyPolicy {
            window_ms: IDEMPOTENCY_WINDOW_MS_DEFAULT,
            entries_max: IDEMPOTENCY_ENTRIES_PER_KEY_MAX,
        }
    }
}

/// The heap bytes a key owns, for `approximate_memory_bytes`.
pub trait HeapBytes {
    fn heap_bytes(&self) -> usize;
}

impl HeapBytes for u64 {
    fn heap_bytes(&self) -> usize {
        0
    }
}

impl HeapBytes for Box<[u8]> {
    fn heap_bytes(&self) -> usize {
        self.len()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct WindowedEntry<Value> {
    /// Which record in `insertion_order` is this entry's: a key recorded again after it expired leaves a
    /// stale record behind, and the sequence tells the two apart.
    sequence: u64,
    recorded_ms: u64,
    value: Value,
}

/// A map whose entries live for `window_ms` after the time they were recorded, with at most `entries_max`
/// of them; the oldest (in insertion order) go first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowedMap<Key: Hash + Eq, Value> {
    window_ms: u64,
    entries_max: usize,
    entries: HashMap<Key, WindowedEntry<Value>, ahash::RandomState>,
    /// Every live entry has exactly one record here; stale records are skipped when they reach the front.
    insertion_order: VecDeque<(u64, Key)>,
    sequence_next: u64,
    key_heap_bytes: usize,
}

impl<Key: Hash + Eq + Clone + HeapBytes, Value> WindowedMap<Key, Value> {
    pub fn new(window_ms: u64, entries_max: usize) -> Self {
        assert!(window_ms > 0, "a zero window would remember nothing");
        assert!(entries_max > 0, "a zero bound would remember nothing");
        WindowedMap {
            window_ms,
            entries_max,
            entries: HashMap::default(),
            insertion_order: VecDeque::new(),
            sequence_next: 0,
            key_heap_bytes: 0,
        }
    }

    /// The value recorded for `key`, unless its window has passed at `now_ms`.
    pub fn get<Query>(&self, key: &Query, now_ms: u64) -> Option<&Value>
    where
        Key: Borrow<Query>,
        Query: Hash + Eq + ?Sized,
    {
        let entry = self.entries.get(key)?;
        if self.is_expired(entry, now_ms) {
            return None;
        }
        Some(&entry.value)
    }

    /// Records `value` for `key` as of `recorded_ms` (usually `now_ms`; the stock type records an expiry at
    /// its deadline). Forgets expired entries first, then the oldest while over the bound. The caller has
    /// checked with `get` that the key is not live.
    pub fn insert(&mut self, key: Key, value: Value, recorded_ms: u64, now_ms: u64) {
        debug_assert!(
            self.get(&key, now_ms).is_none(),
            "a live entry is never recorded twice"
        );
        self.forget_expired(now_ms);
        let sequence = self.sequence_next;
        self.sequence_next += 1;
        self.key_heap_bytes += key.heap_bytes();
        let replaced = self.entries.insert(
            key.clone(),
            WindowedEntry {
                sequence,
                recorded_ms,
                value,
            },
        );
        if replaced.is_some() {
            // An expired entry that was not at the front yet: its record stays behind, stale.
            self.key_heap_bytes -= key.heap_bytes();
        }
        self.insertion_order.push_back((sequence, key));
        while self.insertion_order.len() > self.entries_max {
            self.pop_oldest();
        }
        debug_assert!(self.entries.len() <= self.insertion_order.len());
        debug_assert!(self.insertion_order.len() <= self.entries_max);
    }

    /// Drops entries from the front while they are expired (or stale). Entries are recorded in time order
    /// when the clock does not go backwards, so this finds them all; if it did go backwards, `get` still
    /// ignores the stragglers and the count bound still holds.
    pub fn forget_expired(&mut self, now_ms: u64) {
        while let Some((sequence, key)) = self.insertion_order.front() {
            match self.entries.get(key) {
                Some(entry) if entry.sequence == *sequence && !self.is_expired(entry, now_ms) => {
                    break
                }
                _ => self.pop_oldest(),
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn approximate_memory_bytes(&self) -> usize {
        let entry_bytes =
            std::mem::size_of::<(Key, WindowedEntry<Value>)>() + std::mem::size_of::<u64>();
        let record_bytes = std::mem::size_of::<(u64, Key)>();
        // Keys are owned twice: once in the map and once in the insertion order.
        self.entries.capacity() * entry_bytes
            + self.insertion_order.capacity() * record_bytes
            + 2 * self.key_heap_bytes
    }

    fn is_expired(&self, entry: &WindowedEntry<Value>, now_ms: u64) -> bool {
        entry.recorded_ms.saturating_add(self.window_ms) <= now_ms
    }

    fn pop_oldest(&mut self) {
        let Some((sequence, key)) = self.insertion_order.pop_front() else {
            return;
        };
        let live = self
            .entries
            .get(&key)
            .is_some_and(|entry| entry.sequence == sequence);
        if live {
            self.entries.remove(&key);
            self.key_heap_bytes -= key.heap_bytes();
        }
    }
}

/// Request ID -> the outcome of the first call on this key that carried it.
///
/// Only outcomes that changed state are remembered (see the `coupon` and `stock` docs): a first call that
/// changed nothing (sold out, not started) leaves no trace, so its repeat is evaluated afresh and can
/// still cause at most the one effect the first attempt did not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyCache<Outcome> {
    requests: WindowedMap<Box<[u8]>, Outcome>,
}

impl<Outcome> IdempotencyCache<Outcome> {
    pub fn new(policy: IdempotencyPolicy) -> Self {
        IdempotencyCache {
            requests: WindowedMap::new(policy.window_ms, policy.entries_max),
        }
    }

    /// Checks a request ID's shape before anything is changed.
    pub fn validate_request_id(request_id: &[u8]) -> Result<(), String> {
        if request_id.is_empty() || request_id.len() > IDEMPOTENCY_REQUEST_ID_LENGTH_MAX {
            return Err(format!(
                "ERR request id must be 1 to {IDEMPOTENCY_REQUEST_ID_LENGTH_MAX} bytes"
            ));
        }
        Ok(())
    }

    /// The outcome first recorded for `request_id`, if it is still within its window at `now_ms`.
    pub fn lookup(&self, request_id: &[u8], now_ms: u64) -> Option<&Outcome> {
        self.requests.get(request_id, now_ms)
    }

    /// Records the outcome of the first call with `request_id`.
    pub fn remember(&mut self, request_id: &[u8], outcome: Outcome, now_ms: u64) {
        debug_assert!(Self::validate_request_id(request_id).is_ok());
        self.requests
            .insert(request_id.into(), outcome, now_ms, now_ms);
    }

    pub fn len(&self) -> usize {
        self.requests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    pub fn approximate_memory_bytes(&self) -> usize {
        self.requests.approximate_memory_bytes()
    }
}

impl<Key, Value> WindowedMap<Key, Value>
where
    Key: Hash + Eq + Clone + HeapBytes + Codec,
    Value: Codec,
{
    /// The exact state, stale insertion records included, so eviction order survives a snapshot.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.window_ms);
        put_count(out, self.entries_max);
        put_u64(out, self.sequence_next);
        put_count(out, self.insertion_order.len());
        for (sequence, key) in &self.insertion_order {
            put_u64(out, *sequence);
            key.encode(out);
        }
        put_count(out, self.entries.len());
        for (key, entry) in &self.entries {
            key.encode(out);
            put_u64(out, entry.sequence);
            put_u64(out, entry.recorded_ms);
            entry.value.encode(out);
        }
    }

    pub fn decode(reader: &mut Reader) -> Result<Self, String> {
        let window_ms = reader.u64()?;
        let entries_max = reader.u64()? as usize;
        if window_ms == 0 || entries_max == 0 {
            return Err("a windowed map with a zero window or bound".to_string());
        }
        let mut map = WindowedMap::new(window_ms, entries_max);
        map.sequence_next = reader.u64()?;
        let records = reader.count(9)?;
        for _ in 0..records {
            let sequence = reader.u64()?;
            map.insertion_order
                .push_back((sequence, Key::decode(reader)?));
        }
        let entries = reader.count(17)?;
        for _ in 0..entries {
            let key = Key::decode(reader)?;
            let sequence = reader.u64()?;
            let recorded_ms = reader.u64()?;
            let value = Value::decode(reader)?;
            map.key_heap_bytes += key.heap_bytes();
            let entry = WindowedEntry {
                sequence,
                recorded_ms,
                value,
            };
            if map.entries.insert(key, entry).is_some() {
                return Err("a windowed map key appears twice".to_string());
            }
        }
        if map.insertion_order.len() > map.entries_max || map.entries.len() > records {
            return Err("a windowed map over its bound".to_string());
        }
        Ok(map)
    }
}

impl<Outcome: Codec> IdempotencyCache<Outcome> {
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.requests.encode(out);
    }

    pub fn decode(reader: &mut Reader) -> Result<Self, String> {
        Ok(IdempotencyCache {
            requests: WindowedMap::decode(reader)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(window_ms: u64, entries_max: usize) -> IdempotencyCache<u32> {
        IdempotencyCache::new(IdempotencyPolicy {
            window_ms,
            entries_max,
        })
    }

    #[test]
    fn remembers_within_the_window_and_forgets_after() {
        let mut cache = cache(100, 10);
        cache.remember(b"a", 7, 1_000);
        assert_eq!(cache.lookup(b"a", 1_000), Some(&7));
        assert_eq!(cache.lookup(b"a", 1_099), Some(&7));
        assert_eq!(cache.lookup(b"a", 1_100), None, "the window is half-open");
        assert_eq!(cache.lookup(b"b", 1_000), None);
    }

    #[test]
    fn an_expired_id_can_be_recorded_again() {
        let mut cache = cache(100, 10);
        cache.remember(b"a", 1, 0);
        cache.remember(b"a", 2, 150);
        assert_eq!(cache.lookup(b"a", 200), Some(&2));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_count_bound_forgets_the_oldest_first() {
        let mut cache = cache(1_000, 3);
        for (index, id) in [b"a", b"b", b"c", b"d"].iter().enumerate() {
            cache.remember(*id, index as u32, 10);
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.lookup(b"a", 10), None);
        assert_eq!(cache.lookup(b"b", 10), Some(&1));
        assert_eq!(cache.lookup(b"d", 10), Some(&3));
    }

    #[test]
    fn stale_records_do_not_evict_the_live_entry() {
        let mut map: WindowedMap<u64, u32> = WindowedMap::new(10, 3);
        map.insert(2, 200, 20, 20);
        // The clock went backwards: key 1 is recorded behind key 2, expires, and is recorded again while
        // key 2 still blocks the front, which leaves a stale record for key 1 in the middle.
        map.insert(1, 100, 0, 0);
        map.insert(1, 101, 25, 25);
        assert_eq!(map.get(&1, 25), Some(&101));
        assert_eq!(map.get(&2, 25), Some(&200));
        assert_eq!(map.len(), 2);
        // Once key 2 expires the stale record goes with it, and key 1's live entry stays.
        map.forget_expired(32);
        assert_eq!(map.get(&1, 32), Some(&101));
        assert_eq!(map.len(), 1);
        assert_eq!(map.insertion_order.len(), 1);
    }

    #[test]
    fn forgetting_frees_memory_accounting() {
        let mut cache = cache(10, 100);
        cache.remember(b"request-1", 1, 0);
        assert!(cache.approximate_memory_bytes() > 0);
        cache.remember(b"request-2", 2, 50);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.requests.key_heap_bytes, b"request-2".len());
    }

    #[test]
    fn request_ids_are_validated() {
        assert!(IdempotencyCache::<u32>::validate_request_id(b"").is_err());
        assert!(IdempotencyCache::<u32>::validate_request_id(
            &[b'x'; IDEMPOTENCY_REQUEST_ID_LENGTH_MAX]
        )
        .is_ok());
        let too_long = [b'x'; IDEMPOTENCY_REQUEST_ID_LENGTH_MAX + 1];
        let message = IdempotencyCache::<u32>::validate_request_id(&too_long).unwrap_err();
        assert!(message.starts_with("ERR "));
    }

    #[test]
    fn windowed_maps_round_trip_with_stale_records() {
        let mut map: WindowedMap<Box<[u8]>, u64> = WindowedMap::new(100, 3);
        map.insert(b"a".to_vec().into(), 1, 0, 0);
        map.insert(b"b".to_vec().into(), 2, 10, 10);
        // "a" expires and is recorded again: its first record stays behind, stale.
        map.insert(b"c".to_vec().into(), 3, 90, 90);
        map.insert(b"a".to_vec().into(), 4, 100, 100);
        let mut out = Vec::new();
        map.encode(&mut out);
        let mut reader = Reader::new(&out);
        let decoded = WindowedMap::<Box<[u8]>, u64>::decode(&mut reader).expect("decodes");
        reader.finish().expect("all read");
        assert_eq!(decoded, map);
    }
}
