//! Expiry: the index of keys by expiry time, and active expiry's bounded step over it. Lazy expiry (a
//! lookup deleting an expired key first) is in `Keyspace::live_place`.

use std::collections::BTreeSet;

use super::{Entry, Key, Keyspace, Place};

impl Keyspace {
    pub fn expiring_count(&self) -> usize {
        self.expiries.len()
    }

    pub(super) fn is_expired(entry: &Entry, now_ms: u64) -> bool {
        matches!(entry.expires_at_ms, Some(at) if at <= now_ms)
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
    pub(super) fn set_expiry_at(&mut self, place: Place, expires_at_ms: Option<u64>) {
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
}

/// Removes and returns, earliest first, up to `count_max` keys of a (deadline, key) index whose deadline
/// is at or before `now_ms`: the bounded step of both active expiry and value timers.
pub(super) fn pop_due(index: &mut BTreeSet<(u64, Key)>, now_ms: u64, count_max: usize) -> Vec<Key> {
    let mut due = Vec::new();
    while due.len() < count_max && index.first().is_some_and(|(at, _)| *at <= now_ms) {
        let (_, key) = index.pop_first().expect("first exists");
        due.push(key);
    }
    due
}
