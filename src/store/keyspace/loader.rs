//! Loading a snapshot at start-up on several threads: each builds a contiguous range of shards, and the
//! keyspace takes them back whole.

use std::hash::BuildHasher;

use indexmap::map::raw_entry_v1::{RawEntryApiV1, RawEntryMut};

use super::{Entry, Hasher, Key, Keyspace, Shard};
use crate::limits::KEYSPACE_SHARD_COUNT;
use crate::store::Value;

impl Keyspace {
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
        let deadline_ms = crate::store::encoding::value_deadline_ms(&value);
        // A collection decoded mid-resize finishes it here, on the loader's thread, rather than leave
        // the loop to do it (or keep two bucket arrays).
        let mut value = value;
        value.rehash_step(usize::MAX);
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
