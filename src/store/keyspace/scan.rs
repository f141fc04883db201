//! SCAN over the keyspace: a cursor that survives any change between calls.
//!
//! A shard's removal moves its last entry into the hole. SCAN walks shards in order and, within a shard,
//! positions from the end towards the start, so a removal only ever moves an already-visited entry into
//! the unvisited part, and a key never changes shard: every key present for a whole SCAN is returned at
//! least once (possibly twice). The cursor is `shard << SCAN_CURSOR_SHARD_SHIFT | positions`, where
//! `positions` counts the shard's not yet visited positions `[0, positions)` (clamped to the shard's
//! length); `0` starts at shard 0 from its end, and a call returns `0` only when the last shard is done.

use super::{Key, Keyspace, Value};
use crate::limits::{KEYSPACE_SHARD_COUNT, SCAN_CURSOR_SHARD_SHIFT};

const SCAN_CURSOR_POSITION_MASK: u64 = (1 << SCAN_CURSOR_SHARD_SHIFT) - 1;

impl Keyspace {
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
}
