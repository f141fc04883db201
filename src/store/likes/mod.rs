//! Likes: one post's set of likers, with a newest-first walk that stays stable while likes come and go.
//!
//! # What it guarantees
//! - A user likes a post at most once: a second LIKE.ADD changes nothing and says `added = 0`.
//! - The count is the size of the membership index itself (it changes only where an index entry is
//!   inserted or removed, and [`Likes::check_invariants`] recounts it), so it cannot drift.
//! - LIKE.LIST pages newest first. Every like gets a sequence number, larger than any before it on this
//!   post; the cursor is "continue below this sequence number" (`0` starts at the newest, and `0` comes back
//!   once nothing older is left). A like present for the whole walk is listed exactly once, in order. A like
//!   added after the walk began (a re-like after an unlike included) has a sequence number above every
//!   cursor the walk has handed out, so the rest of the walk does not list it. A like removed during the walk
//!   is not listed after its removal. A cursor above the newest sequence number starts from the top.
//!   The one exception: after 2^32 - 2 likes on one post the sequence numbers are reassigned densely (a
//!   walk in progress at that moment may skip or repeat likes); at 10,000 likes a second that is 5 days of
//!   continuous liking of a single post.
//! - Deterministic: the same operations give the same state and the same answers, so a replayed log
//!   rebuilds every post exactly.
//!
//! # Memory layout (about 10 bytes a like; 12.8 of resident growth with keys and allocator overhead at the
//! benchmark shape, see `examples/likes_memory.rs`)
//! A user id that is a canonical decimal integer below 2^31 (no sign, no leading zero: "007", "+7" and "-1"
//! are text so they round-trip byte-exactly) is stored as itself in 4 bytes; any other id is stored once in
//! a per-post text table and referenced by its slot number with the top bit set. Either way a like is one
//! 4-byte *slot* value, and a like costs two 4-byte entries:
//! - the **order log** holds the slot of every like in sequence order. A bitmap per block of 64 sequence
//!   numbers marks which of them still have a log entry, plus the number of log entries before the block, so
//!   sequence -> log position is one popcount. A removal writes a tombstone; once tombstones pass a quarter
//!   of the live likes, one linear pass drops them and clears their bits, keeping every sequence number.
//! - the **membership index** holds sequence numbers sorted by user id, where the id of a sequence number
//!   is read from the log: no id is stored twice. It is cut into chunks of at most
//!   `LIKES_INDEX_CHUNK_ENTRIES_MAX` entries, so insert and remove are a binary search plus a bounded move.
//! - **index samples**, on posts of at least `INDEX_SAMPLED_LIKES_MIN` likes only: each chunk's first slot
//!   and `INDEX_SAMPLES_PER_CHUNK` (slot, position) pairs inside it, in contiguous arrays, so a search
//!   reads through the log only between two neighbouring samples (5-6 steps instead of about 17, each two
//!   dependent random reads). About 0.12 bytes a like on the posts that have them; derived from the index,
//!   never persisted. They share one box with the text table, so a post pays one pointer for both.
//!
//! Vectors grow by an eighth rather than doubling, so spare capacity stays near 10%.

pub mod codec;
pub mod commands;

use crate::limits::{
    LIKES_INDEX_CHUNK_ENTRIES_MAX, LIKES_LIST_COUNT_MAX, LIKES_PER_POST_MAX,
    LIKES_TOMBSTONES_COMPACT_MIN, USER_ID_BYTES_MAX,
};

/// What `TYPE` says for a post's likes.
pub const TYPE_NAME: &str = "likes";

/// Set in a slot that references the text table; clear in a slot that is an integer user id.
const TEXT_SLOT_FLAG: u32 = 1 << 31;
/// A log entry whose like was removed. As a text slot it would be number 2^31 - 1, which
/// `LIKES_PER_POST_MAX` keeps out of reach.
const TOMBSTONE_SLOT: u32 = u32::MAX;
/// Sequence numbers per log block: one bit each in a u64.
const LOG_BLOCK_SEQUENCES: u32 = 64;
/// The first sequence number; 0 is the cursor that means "from the newest".
const SEQUENCE_FIRST: u32 = 1;
/// Once the next sequence number would be this, the log is renumbered densely.
const SEQUENCE_EXHAUSTED: u32 = u32::MAX;
/// The least a vector of 4-byte entries grows by: one 16-byte allocation step.
const SMALL_GROWTH_MIN: usize = 4;
/// Samples kept inside each index chunk besides its first entry (see [`IndexSamples`]). A chunk holds 256
/// to 512 entries once split, so the search through the log between two samples takes 5 to 6 steps
/// instead of 8 to 9. 15 samples saved another 8% of the search's cache misses (callgrind,
/// `examples/likes_add_speed.rs`) for 0.11 more bytes a like: not worth it at the benchmark's memory budget.
const INDEX_SAMPLES_PER_CHUNK: usize = 7;
/// A post gets index samples once it holds this many likes (once its index has more than one chunk), and
/// drops them below half as many. Most posts are small: sampling from 128 likes on cost 0.13 bytes a like
/// more at the benchmark's shape and saved only 2% of the search's cache misses.
const INDEX_SAMPLED_LIKES_MIN: u32 = 512;

const _: () = assert!(LIKES_PER_POST_MAX < (TOMBSTONE_SLOT & !TEXT_SLOT_FLAG) as u64);
// A chunk one entry over its bound (just before it splits) still has positions that fit a sample's u16.
const _: () = assert!(LIKES_INDEX_CHUNK_ENTRIES_MAX < u16::MAX as usize);

/// The answer to LIKE.ADD and LIKE.REMOVE: `[changed, count]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LikeChange {
    /// The like was added (or removed) by this call; false when it already was (or was not) there.
    pub changed: bool,
    /// The post's like count after the call.
    pub count: u64,
}

/// The answer to LIKE.LIST: `[next-cursor, [user, ...]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LikePage {
    /// Pass back to continue; 0 when the walk is complete.
    pub next_cursor: u64,
    /// User ids, newest like first, byte-exactly as they were added.
    pub users: Vec<Vec<u8>>,
}

/// A user id as the index orders it: integers (numerically) before texts (bytewise).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum UserKey<'a> {
    Integer(u32),
    Text(&'a [u8]),
}

impl<'a> UserKey<'a> {
    /// The compact form for canonical decimal integers below 2^31; text for everything else.
    fn parse(user: &'a [u8]) -> UserKey<'a> {
        let canonical = !user.is_empty()
            && user.len() <= 10
            && user.iter().all(u8::is_ascii_digit)
            && (user[0] != b'0' || user.len() == 1);
        if canonical {
            let value = user
                .iter()
                .fold(0u64, |value, digit| value * 10 + u64::from(digit - b'0'));
            if value < u64::from(TEXT_SLOT_FLAG) {
                return UserKey::Integer(value as u32);
            }
        }
        UserKey::Text(user)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct LogBlock {
    /// Bit i: sequence number `first + i` of this block still has a log entry (live or tombstone).
    present: u64,
    /// Log entries in all earlier blocks.
    entries_before: u32,
}

/// Ids that are not compact integers, by slot number. Freed slots are reused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct TextUserIds {
    by_slot: Vec<Option<Box<[u8]>>>,
    free_slots: Vec<u32>,
}

/// Derived from the index and never persisted: where some index entries are and which slot each holds, so
/// the index search reads contiguous memory for most of its steps instead of two dependent random reads
/// (sequence -> log block -> log entry) per step.
///
/// Every sample is exact: `slots[s]` is the slot of the entry at `positions[s]` of its chunk. An insert
/// at position q moves the samples at or after q one up; a removal at q moves those after q one down and
/// points those at q to the entry that takes q (or the one before, when q was the end). So a sample never
/// names a freed text slot, and the samples of a chunk stay sorted by key like the entries they name.
#[derive(Clone, Debug)]
struct IndexSamples {
    /// The slot of each chunk's first entry: the chunk-level search.
    chunk_first_slots: Vec<u32>,
    /// `INDEX_SAMPLES_PER_CHUNK` per chunk, chunk after chunk, positions in non-decreasing order.
    slots: Vec<u32>,
    positions: Vec<u16>,
}

/// The tables only some posts need, boxed together so that every post pays one pointer for both.
#[derive(Clone, Debug, Default)]
struct SideTables {
    /// Empty, and holding no memory, while the post has no text ids.
    texts: TextUserIds,
    /// Present from `INDEX_SAMPLED_LIKES_MIN` likes on (see the constant); derived, so not persisted and
    /// not compared.
    samples: Option<Box<IndexSamples>>,
}

/// One post's likes.
#[derive(Clone, Debug)]
pub struct Likes {
    /// Sequence numbers sorted by user id; chunks are never empty.
    index_chunks: Vec<Vec<u32>>,
    /// Slot values (or tombstones) in sequence order, for the sequence numbers whose bit is set.
    log_entries: Vec<u32>,
    log_blocks: Vec<LogBlock>,
    /// The sequence number of bit 0 of `log_blocks[0]`.
    sequence_base: u32,
    /// The sequence number the next like gets.
    sequence_next: u32,
    like_count: u32,
    tombstone_count: u32,
    /// Text ids and index samples; `None` while there are neither, as on most posts.
    side_tables: Option<Box<SideTables>>,
}

/// Two posts are equal when their persisted state is: the index samples are derived from it, and a
/// decoded post rebuilds them evenly spaced where the original's have drifted with inserts.
impl PartialEq for Likes {
    fn eq(&self, other: &Likes) -> bool {
        self.index_chunks == other.index_chunks
            && self.log_entries == other.log_entries
            && self.log_blocks == other.log_blocks
            && self.sequence_base == other.sequence_base
            && self.sequence_next == other.sequence_next
            && self.like_count == other.like_count
            && self.tombstone_count == other.tombstone_count
            && self.texts() == other.texts()
    }
}

impl Eq for Likes {}

impl Default for Likes {
    fn default() -> Self {
        Likes::new()
    }
}

impl Likes {
    pub fn new() -> Self {
        Likes {
            index_chunks: Vec::new(),
            log_entries: Vec::new(),
            log_blocks: Vec::new(),
            sequence_base: SEQUENCE_FIRST,
            sequence_next: SEQUENCE_FIRST,
            like_count: 0,
            tombstone_count: 0,
            side_tables: None,
        }
    }

    /// LIKE.ADD. Refuses ids longer than `USER_ID_BYTES_MAX` and a post already at `LIKES_PER_POST_MAX`.
    pub fn add(&mut self, user: &[u8]) -> Result<LikeChange, String> {
        validate_user(user)?;
        let key = UserKey::parse(user);
        let (chunk, Err(position)) = self.index_search(key) else {
            return Ok(LikeChange {
                changed: false,
                count: self.count(),
            });
        };
        if self.count() >= LIKES_PER_POST_MAX {
            return Err(format!(
                "ERR a post holds at most {LIKES_PER_POST_MAX} likes"
            ));
        }
        if self.sequence_next == SEQUENCE_EXHAUSTED {
            // Renumbering keeps the index order, so (chunk, position) stays right.
            self.renumber();
        }
        let slot = match key {
            UserKey::Integer(value) => value,
            UserKey::Text(bytes) => self.text_insert(bytes),
        };
        let sequence = self.log_append(slot);
        self.index_insert(chunk, position, sequence, slot);
        Ok(LikeChange {
            changed: true,
            count: self.count(),
        })
    }

    /// LIKE.REMOVE.
    pub fn remove(&mut self, user: &[u8]) -> LikeChange {
        let key = UserKey::parse(user);
        let (chunk, Ok(position)) = self.index_search(key) else {
            return LikeChange {
                changed: false,
                count: self.count(),
            };
        };
        let sequence = self.index_remove(chunk, position);
        let entry = self
            .log_position(sequence)
            .expect("an indexed sequence number has a log entry");
        let slot = std::mem::replace(&mut self.log_entries[entry], TOMBSTONE_SLOT);
        if slot & TEXT_SLOT_FLAG != 0 {
            self.text_remove(slot & !TEXT_SLOT_FLAG);
        }
        self.tombstone_count += 1;
        let tombstones = self.tombstone_count as usize;
        if tombstones >= LIKES_TOMBSTONES_COMPACT_MIN.max(self.like_count as usize / 4) {
            self.log_compact();
        }
        LikeChange {
            changed: true,
            count: self.count(),
        }
    }

    /// LIKE.HAS (and one post of LIKE.MHAS).
    pub fn contains(&self, user: &[u8]) -> bool {
        self.index_search(UserKey::parse(user)).1.is_ok()
    }

    /// LIKE.COUNT for this post.
    pub fn count(&self) -> u64 {
        u64::from(self.like_count)
    }

    pub fn is_empty(&self) -> bool {
        self.like_count == 0
    }

    /// LIKE.LIST: up to `count` likers with a sequence number below `cursor` (0: from the newest), newest
    /// first. Costs O(count + tombstones and empty blocks passed over).
    pub fn list(&self, cursor: u64, count: u64) -> Result<LikePage, String> {
        if count == 0 || count > LIKES_LIST_COUNT_MAX {
            return Err(format!(
                "ERR count must be between 1 and {LIKES_LIST_COUNT_MAX}"
            ));
        }
        let below = if cursor == 0 || cursor >= u64::from(self.sequence_next) {
            self.sequence_next
        } else {
            cursor as u32
        };
        let mut users = Vec::new();
        let mut next_cursor = 0;
        // One like more than asked for tells whether the walk is over, so the last page says 0 at once.
        self.for_each_live_below(below, |sequence, slot| {
            if users.len() as u64 == count {
                next_cursor = u64::from(sequence) + 1;
                return false;
            }
            users.push(self.slot_user(slot));
            true
        });
        Ok(LikePage { next_cursor, users })
    }

    /// Heap and inline bytes this post holds, from capacities (allocator rounding excluded).
    pub fn approximate_memory_bytes(&self) -> usize {
        use std::mem::size_of;
        let index = self.index_chunks.capacity() * size_of::<Vec<u32>>()
            + self
                .index_chunks
                .iter()
                .map(|chunk| chunk.capacity() * size_of::<u32>())
                .sum::<usize>();
        let log = self.log_entries.capacity() * size_of::<u32>()
            + self.log_blocks.capacity() * size_of::<LogBlock>();
        let side_tables = self
            .side_tables
            .as_ref()
            .map_or(0, |_| size_of::<SideTables>());
        let texts = self.texts().map_or(0, |texts| {
            texts.by_slot.capacity() * size_of::<Option<Box<[u8]>>>()
                + texts
                    .by_slot
                    .iter()
                    .flatten()
                    .map(|text| text.len())
                    .sum::<usize>()
                + texts.free_slots.capacity() * size_of::<u32>()
        });
        let samples = self.samples().map_or(0, |samples| {
            size_of::<IndexSamples>()
                + samples.chunk_first_slots.capacity() * size_of::<u32>()
                + samples.slots.capacity() * size_of::<u32>()
                + samples.positions.capacity() * size_of::<u16>()
        });
        size_of::<Self>() + index + log + side_tables + texts + samples
    }

    /// Asserts every structural invariant; O(n log n). For tests and debug checks after replay.
    pub fn check_invariants(&self) {
        let indexed: usize = self.index_chunks.iter().map(Vec::len).sum();
        assert_eq!(
            indexed, self.like_count as usize,
            "the count is the size of the index"
        );
        assert!(self.index_chunks.iter().all(|chunk| !chunk.is_empty()));
        assert!(self
            .index_chunks
            .iter()
            .all(|chunk| chunk.len() <= LIKES_INDEX_CHUNK_ENTRIES_MAX));
        // The index sorted by user with a live log entry behind every entry, the log blocks' offsets and
        // span, and the tombstone count: what decoding checks too.
        if let Err(error) = self.validate_decoded() {
            panic!("{error}");
        }
        let present: u32 = self
            .log_blocks
            .iter()
            .map(|block| block.present.count_ones())
            .sum();
        assert_eq!(present as usize, self.log_entries.len());
        assert_eq!(
            self.log_entries.len() - self.tombstone_count as usize,
            self.like_count as usize
        );

        let texts_live = self
            .texts()
            .map_or(0, |texts| texts.by_slot.iter().flatten().count());
        if let Some(side_tables) = &self.side_tables {
            assert!(
                side_tables.samples.is_some() || !side_tables.texts.by_slot.is_empty(),
                "side tables go when they hold nothing"
            );
            assert!(
                side_tables.texts.by_slot.is_empty() || texts_live > 0,
                "the text table empties with its last id"
            );
        }
        let texts_logged = self
            .log_entries
            .iter()
            .filter(|&&slot| slot != TOMBSTONE_SLOT && slot & TEXT_SLOT_FLAG != 0)
            .count();
        assert_eq!(texts_live, texts_logged);

        match self.samples() {
            None => assert!(
                self.like_count < INDEX_SAMPLED_LIKES_MIN,
                "a large post has samples"
            ),
            Some(samples) => {
                assert!(
                    self.like_count >= INDEX_SAMPLED_LIKES_MIN / 2,
                    "a small post has none"
                );
                let chunk_count = self.index_chunks.len();
                assert_eq!(samples.chunk_first_slots.len(), chunk_count);
                assert_eq!(samples.slots.len(), chunk_count * INDEX_SAMPLES_PER_CHUNK);
                assert_eq!(
                    samples.positions.len(),
                    chunk_count * INDEX_SAMPLES_PER_CHUNK
                );
                for (chunk, entries) in self.index_chunks.iter().enumerate() {
                    assert_eq!(
                        samples.chunk_first_slots[chunk],
                        self.sequence_slot(entries[0]),
                        "the first slot of chunk {chunk}"
                    );
                    let group =
                        chunk * INDEX_SAMPLES_PER_CHUNK..(chunk + 1) * INDEX_SAMPLES_PER_CHUNK;
                    let positions = &samples.positions[group.clone()];
                    assert!(positions.windows(2).all(|pair| pair[0] <= pair[1]));
                    for (&slot, &position) in samples.slots[group].iter().zip(positions) {
                        let entry = *entries
                            .get(usize::from(position))
                            .expect("a sample inside its chunk");
                        assert_eq!(slot, self.sequence_slot(entry), "a sample is exact");
                    }
                }
            }
        }
    }

    // --- membership index ------------------------------------------------------------------------------

    /// Finds `key`: its chunk, and `Ok(position)` if present or `Err(position)` where it would go.
    fn index_search(&self, key: UserKey) -> (usize, Result<usize, usize>) {
        if self.index_chunks.is_empty() {
            return (0, Err(0));
        }
        if let Some(samples) = self.samples() {
            return self.index_search_sampled(samples, key);
        }
        let chunk = self.index_chunks.partition_point(|chunk| {
            let last = *chunk.last().expect("chunks are never empty");
            self.sequence_key(last) < key
        });
        if chunk == self.index_chunks.len() {
            let last = chunk - 1;
            return (last, Err(self.index_chunks[last].len()));
        }
        (chunk, self.entries_search(&self.index_chunks[chunk], key))
    }

    /// [`Likes::index_search`] through the samples: the chunk is the last one whose first key is at most
    /// `key` (chunk 0 when there is none), and only the entries between two neighbouring samples are read
    /// through the log. An insert may so land at the end of a chunk where the unsampled search would put
    /// it at the start of the next; either keeps the index sorted.
    fn index_search_sampled(
        &self,
        samples: &IndexSamples,
        key: UserKey,
    ) -> (usize, Result<usize, usize>) {
        let chunks_not_above = samples
            .chunk_first_slots
            .partition_point(|&slot| self.slot_key(slot) <= key);
        let Some(chunk) = chunks_not_above.checked_sub(1) else {
            return (0, Err(0));
        };
        let group = chunk * INDEX_SAMPLES_PER_CHUNK..(chunk + 1) * INDEX_SAMPLES_PER_CHUNK;
        let slots = &samples.slots[group.clone()];
        let positions = &samples.positions[group];
        let samples_not_above = slots.partition_point(|&slot| self.slot_key(slot) <= key);
        // The nearest sample at or below `key`: the chunk's first entry when no inner sample is.
        let (start, start_slot) = match samples_not_above.checked_sub(1) {
            None => (0, samples.chunk_first_slots[chunk]),
            Some(sample) => (usize::from(positions[sample]), slots[sample]),
        };
        if self.slot_key(start_slot) == key {
            return (chunk, Ok(start));
        }
        let entries = &self.index_chunks[chunk];
        let end = positions
            .get(samples_not_above)
            .map_or(entries.len(), |&position| usize::from(position));
        let found = self.entries_search(&entries[start + 1..end], key);
        let offset = start + 1;
        (
            chunk,
            found
                .map(|position| position + offset)
                .map_err(|position| position + offset),
        )
    }

    /// Binary search of `entries` (sequence numbers sorted by user) for `key`, two levels a round: the keys
    /// of the three pivots of a round are read independently of each other, so their cache misses
    /// (sequence -> log block -> log entry, each) overlap instead of following one another.
    fn entries_search(&self, entries: &[u32], key: UserKey) -> Result<usize, usize> {
        // Entries before `low` are below `key`, entries from `high` on are above it.
        let mut low = 0;
        let mut high = entries.len();
        while high - low >= 4 {
            let length = high - low;
            let pivots = [1, 2, 3].map(|quarter| low + quarter * length / 4);
            let slots = pivots.map(|pivot| self.sequence_slot(entries[pivot]));
            let mut below = 0;
            for (&pivot, &slot) in pivots.iter().zip(&slots) {
                match self.slot_key(slot).cmp(&key) {
                    std::cmp::Ordering::Less => below += 1,
                    std::cmp::Ordering::Equal => return Ok(pivot),
                    std::cmp::Ordering::Greater => break,
                }
            }
            if below > 0 {
                low = pivots[below - 1] + 1;
            }
            if below < pivots.len() {
                high = pivots[below];
            }
        }
        entries[low..high]
            .binary_search_by(|&sequence| self.sequence_key(sequence).cmp(&key))
            .map(|position| position + low)
            .map_err(|position| position + low)
    }

    /// Inserts `sequence`, whose like holds `slot`, at `position` of `chunk`.
    fn index_insert(&mut self, chunk: usize, position: usize, sequence: u32, slot: u32) {
        if self.index_chunks.is_empty() {
            reserve_gently(&mut self.index_chunks, 1);
            self.index_chunks.push(Vec::new());
        }
        let entries = &mut self.index_chunks[chunk];
        reserve_gently(entries, SMALL_GROWTH_MIN);
        entries.insert(position, sequence);
        let split = entries.len() > LIKES_INDEX_CHUNK_ENTRIES_MAX;
        if split {
            let upper = entries.split_off(entries.len() / 2);
            shrink_gently(entries);
            reserve_gently(&mut self.index_chunks, 1);
            self.index_chunks.insert(chunk + 1, upper);
        }
        self.like_count += 1;

        let samples = self
            .side_tables
            .as_mut()
            .and_then(|side_tables| side_tables.samples.as_mut());
        if let Some(samples) = samples {
            if split {
                samples_insert_chunk(samples, chunk + 1);
                // Both halves get evenly spaced samples again.
                self.samples_rebuild(chunk);
                self.samples_rebuild(chunk + 1);
            } else {
                let group = chunk * INDEX_SAMPLES_PER_CHUNK..(chunk + 1) * INDEX_SAMPLES_PER_CHUNK;
                for sample in &mut samples.positions[group] {
                    if usize::from(*sample) >= position {
                        *sample += 1;
                    }
                }
                if position == 0 {
                    samples.chunk_first_slots[chunk] = slot;
                }
            }
        } else if self.like_count >= INDEX_SAMPLED_LIKES_MIN {
            self.samples_build();
        }
    }

    fn index_remove(&mut self, chunk: usize, position: usize) -> u32 {
        let sequence = self.index_chunks[chunk].remove(position);
        let length = self.index_chunks[chunk].len();
        let mut merged = false;
        if length == 0 {
            self.index_chunks.remove(chunk);
        } else if chunk + 1 < self.index_chunks.len()
            && length + self.index_chunks[chunk + 1].len() <= LIKES_INDEX_CHUNK_ENTRIES_MAX / 2
        {
            // Merging small neighbours keeps the chunk count near n / (chunk size) after many removals.
            let upper = self.index_chunks.remove(chunk + 1);
            self.index_chunks[chunk].extend_from_slice(&upper);
            merged = true;
        } else {
            shrink_gently(&mut self.index_chunks[chunk]);
        }
        self.like_count -= 1;

        if let Some(mut samples) = self.samples_take() {
            if self.like_count < INDEX_SAMPLED_LIKES_MIN / 2 {
                // Dropped: a post this small is searched in a few steps.
                self.side_tables_tidy();
            } else if length == 0 {
                samples_remove_chunk(&mut samples, chunk);
                self.samples_put(samples);
            } else if merged {
                samples_remove_chunk(&mut samples, chunk + 1);
                self.samples_put(samples);
                self.samples_rebuild(chunk);
            } else {
                self.samples_after_remove(&mut samples, chunk, position);
                self.samples_put(samples);
            }
        }
        sequence
    }

    /// Keeps `chunk`'s samples exact after the entry at `position` was removed (the chunk is not empty).
    fn samples_after_remove(&self, samples: &mut IndexSamples, chunk: usize, position: usize) {
        let entries = &self.index_chunks[chunk];
        // The entry that takes the removed one's place, or the one before it at the end of the chunk.
        let replacement = position.min(entries.len() - 1);
        let replacement_slot = self.sequence_slot(entries[replacement]);
        if position == 0 {
            samples.chunk_first_slots[chunk] = replacement_slot;
        }
        let group = chunk * INDEX_SAMPLES_PER_CHUNK..(chunk + 1) * INDEX_SAMPLES_PER_CHUNK;
        for (slot, sample) in samples.slots[group.clone()]
            .iter_mut()
            .zip(&mut samples.positions[group])
        {
            let at = usize::from(*sample);
            if at > position {
                *sample -= 1;
            } else if at == position {
                *sample = replacement as u16;
                *slot = replacement_slot;
            }
        }
    }

    /// Gives every chunk evenly spaced samples.
    fn samples_build(&mut self) {
        let chunk_count = self.index_chunks.len();
        let mut samples = Box::new(IndexSamples {
            chunk_first_slots: Vec::with_capacity(chunk_count),
            slots: Vec::with_capacity(chunk_count * INDEX_SAMPLES_PER_CHUNK),
            positions: Vec::with_capacity(chunk_count * INDEX_SAMPLES_PER_CHUNK),
        });
        for chunk in 0..chunk_count {
            samples_insert_chunk(&mut samples, chunk);
        }
        self.samples_put(samples);
        for chunk in 0..chunk_count {
            self.samples_rebuild(chunk);
        }
    }

    /// Samples `chunk` evenly: inner sample s at position (s + 1) * length / (samples + 1).
    fn samples_rebuild(&mut self, chunk: usize) {
        let mut samples = self.samples_take().expect("rebuilding samples that exist");
        let entries = &self.index_chunks[chunk];
        samples.chunk_first_slots[chunk] = self.sequence_slot(entries[0]);
        let group = chunk * INDEX_SAMPLES_PER_CHUNK..(chunk + 1) * INDEX_SAMPLES_PER_CHUNK;
        for (sample, (slot, position)) in samples.slots[group.clone()]
            .iter_mut()
            .zip(&mut samples.positions[group])
            .enumerate()
        {
            let at = (sample + 1) * entries.len() / (INDEX_SAMPLES_PER_CHUNK + 1);
            *position = at as u16;
            *slot = self.sequence_slot(entries[at]);
        }
        self.samples_put(samples);
    }

    fn samples(&self) -> Option<&IndexSamples> {
        self.side_tables.as_ref()?.samples.as_deref()
    }

    /// Takes the samples out, to update them while reading the index; put them back with
    /// [`Likes::samples_put`], or call [`Likes::side_tables_tidy`] when they are to go.
    fn samples_take(&mut self) -> Option<Box<IndexSamples>> {
        self.side_tables.as_mut()?.samples.take()
    }

    fn samples_put(&mut self, samples: Box<IndexSamples>) {
        self.side_tables.get_or_insert_with(Box::default).samples = Some(samples);
    }

    /// Drops the side tables once they hold neither text ids nor samples.
    fn side_tables_tidy(&mut self) {
        if self.side_tables.as_ref().is_some_and(|side_tables| {
            side_tables.samples.is_none() && side_tables.texts.by_slot.is_empty()
        }) {
            self.side_tables = None;
        }
    }

    // --- order log -------------------------------------------------------------------------------------

    fn log_append(&mut self, slot: u32) -> u32 {
        let sequence = self.sequence_next;
        assert!(sequence < SEQUENCE_EXHAUSTED);
        let offset = sequence - self.sequence_base;
        let block = (offset / LOG_BLOCK_SEQUENCES) as usize;
        if block == self.log_blocks.len() {
            reserve_gently(&mut self.log_blocks, 1);
            self.log_blocks.push(LogBlock {
                present: 0,
                entries_before: self.log_entries.len() as u32,
            });
        }
        assert_eq!(
            block + 1,
            self.log_blocks.len(),
            "appends go to the last block"
        );
        self.log_blocks[block].present |= 1 << (offset % LOG_BLOCK_SEQUENCES);
        reserve_gently(&mut self.log_entries, SMALL_GROWTH_MIN);
        self.log_entries.push(slot);
        self.sequence_next += 1;
        sequence
    }

    /// Where `sequence`'s entry is in `log_entries`, if it still has one.
    fn log_position(&self, sequence: u32) -> Option<usize> {
        if sequence < self.sequence_base || sequence >= self.sequence_next {
            return None;
        }
        let offset = sequence - self.sequence_base;
        let block = &self.log_blocks[(offset / LOG_BLOCK_SEQUENCES) as usize];
        let bit = offset % LOG_BLOCK_SEQUENCES;
        if block.present & (1 << bit) == 0 {
            return None;
        }
        let below = block.present & ((1u64 << bit) - 1);
        Some(block.entries_before as usize + below.count_ones() as usize)
    }

    /// Calls `visit(sequence, slot)` for live likes with a sequence number below `below`, newest first,
    /// until it returns false.
    fn for_each_live_below(&self, below: u32, mut visit: impl FnMut(u32, u32) -> bool) {
        if below <= self.sequence_base || self.log_blocks.is_empty() {
            return;
        }
        let last_offset = below - 1 - self.sequence_base;
        let mut block_number =
            ((last_offset / LOG_BLOCK_SEQUENCES) as usize).min(self.log_blocks.len() - 1);
        let mut mask = if block_number == (last_offset / LOG_BLOCK_SEQUENCES) as usize {
            u64::MAX >> (LOG_BLOCK_SEQUENCES - 1 - last_offset % LOG_BLOCK_SEQUENCES)
        } else {
            u64::MAX
        };
        loop {
            let block = &self.log_blocks[block_number];
            let mut present = block.present & mask;
            while present != 0 {
                let bit = u64::BITS - 1 - present.leading_zeros();
                present &= !(1u64 << bit);
                let below_bit = block.present & ((1u64 << bit) - 1);
                let slot = self.log_entries
                    [block.entries_before as usize + below_bit.count_ones() as usize];
                if slot != TOMBSTONE_SLOT {
                    let sequence =
                        self.sequence_base + block_number as u32 * LOG_BLOCK_SEQUENCES + bit;
                    if !visit(sequence, slot) {
                        return;
                    }
                }
            }
            if block_number == 0 {
                return;
            }
            block_number -= 1;
            mask = u64::MAX;
        }
    }

    /// Drops every tombstone, keeping every live like's sequence number; drops leading empty blocks.
    fn log_compact(&mut self) {
        let live = self.like_count as usize;
        let mut entries = Vec::with_capacity(live + live / 8);
        let mut read = 0;
        for block in &mut self.log_blocks {
            let mut kept = 0u64;
            let mut present = block.present;
            block.entries_before = entries.len() as u32;
            while present != 0 {
                let bit = present.trailing_zeros();
                present &= present - 1;
                let slot = self.log_entries[read];
                read += 1;
                if slot != TOMBSTONE_SLOT {
                    kept |= 1 << bit;
                    entries.push(slot);
                }
            }
            block.present = kept;
        }
        assert_eq!(read, self.log_entries.len());
        assert_eq!(entries.len(), live);
        self.log_entries = entries;
        self.tombstone_count = 0;
        // The last block stays even when empty: it is where the next append goes.
        let empty_leading = self
            .log_blocks
            .iter()
            .take(self.log_blocks.len().saturating_sub(1))
            .take_while(|b| b.present == 0)
            .count();
        if empty_leading > 0 {
            self.log_blocks.drain(..empty_leading);
            self.sequence_base += empty_leading as u32 * LOG_BLOCK_SEQUENCES;
        }
        shrink_gently(&mut self.log_blocks);
    }

    /// Gives the live likes the sequence numbers 1..=count, in their order. Only when the 32-bit sequence
    /// space is used up; a walk in progress may then skip or repeat likes (see the module documentation).
    fn renumber(&mut self) {
        self.log_compact();
        for chunk in 0..self.index_chunks.len() {
            for position in 0..self.index_chunks[chunk].len() {
                let sequence = self.index_chunks[chunk][position];
                let entry = self
                    .log_position(sequence)
                    .expect("an indexed sequence number has a log entry");
                self.index_chunks[chunk][position] = SEQUENCE_FIRST + entry as u32;
            }
        }
        let live = self.log_entries.len() as u32;
        self.sequence_base = SEQUENCE_FIRST;
        self.sequence_next = SEQUENCE_FIRST + live;
        self.log_blocks = (0..live.div_ceil(LOG_BLOCK_SEQUENCES))
            .map(|block| {
                let in_block = (live - block * LOG_BLOCK_SEQUENCES).min(LOG_BLOCK_SEQUENCES);
                LogBlock {
                    present: u64::MAX >> (LOG_BLOCK_SEQUENCES - in_block),
                    entries_before: block * LOG_BLOCK_SEQUENCES,
                }
            })
            .collect();
    }

    // --- user ids ----------------------------------------------------------------------------------------

    /// The user id of a live sequence number.
    fn sequence_key(&self, sequence: u32) -> UserKey<'_> {
        self.slot_key(self.sequence_slot(sequence))
    }

    /// The slot of a live sequence number.
    fn sequence_slot(&self, sequence: u32) -> u32 {
        let entry = self
            .log_position(sequence)
            .expect("an indexed sequence number has a log entry");
        let slot = self.log_entries[entry];
        debug_assert_ne!(slot, TOMBSTONE_SLOT);
        slot
    }

    fn slot_key(&self, slot: u32) -> UserKey<'_> {
        if slot & TEXT_SLOT_FLAG == 0 {
            return UserKey::Integer(slot);
        }
        let texts = self.texts().expect("a text slot implies a text table");
        UserKey::Text(
            texts.by_slot[(slot & !TEXT_SLOT_FLAG) as usize]
                .as_deref()
                .expect("a live text slot"),
        )
    }

    fn slot_user(&self, slot: u32) -> Vec<u8> {
        match self.slot_key(slot) {
            UserKey::Integer(value) => value.to_string().into_bytes(),
            UserKey::Text(bytes) => bytes.to_vec(),
        }
    }

    /// Stores a text id and returns its slot value (flag set).
    fn text_insert(&mut self, bytes: &[u8]) -> u32 {
        let texts = &mut self.side_tables.get_or_insert_with(Box::default).texts;
        let text = Some(bytes.to_vec().into_boxed_slice());
        let number = match texts.free_slots.pop() {
            Some(number) => {
                texts.by_slot[number as usize] = text;
                number
            }
            None => {
                texts.by_slot.push(text);
                (texts.by_slot.len() - 1) as u32
            }
        };
        assert!(number < TOMBSTONE_SLOT & !TEXT_SLOT_FLAG);
        number | TEXT_SLOT_FLAG
    }

    fn text_remove(&mut self, number: u32) {
        let side_tables = self
            .side_tables
            .as_mut()
            .expect("a text slot implies a text table");
        let texts = &mut side_tables.texts;
        assert!(texts.by_slot[number as usize].take().is_some());
        texts.free_slots.push(number);
        if texts.free_slots.len() == texts.by_slot.len() {
            *texts = TextUserIds::default();
            self.side_tables_tidy();
        }
    }

    /// The text table, while the post has text ids.
    fn texts(&self) -> Option<&TextUserIds> {
        let texts = &self.side_tables.as_ref()?.texts;
        (!texts.by_slot.is_empty()).then_some(texts)
    }
}

/// Makes room for the samples of a new chunk at `chunk`; the caller fills them in.
fn samples_insert_chunk(samples: &mut IndexSamples, chunk: usize) {
    let at = chunk * INDEX_SAMPLES_PER_CHUNK;
    reserve_gently(&mut samples.chunk_first_slots, 1);
    samples.chunk_first_slots.insert(chunk, 0);
    reserve_gently(&mut samples.slots, INDEX_SAMPLES_PER_CHUNK);
    samples.slots.splice(at..at, [0; INDEX_SAMPLES_PER_CHUNK]);
    reserve_gently(&mut samples.positions, INDEX_SAMPLES_PER_CHUNK);
    samples
        .positions
        .splice(at..at, [0; INDEX_SAMPLES_PER_CHUNK]);
}

fn samples_remove_chunk(samples: &mut IndexSamples, chunk: usize) {
    let group = chunk * INDEX_SAMPLES_PER_CHUNK..(chunk + 1) * INDEX_SAMPLES_PER_CHUNK;
    samples.chunk_first_slots.remove(chunk);
    samples.slots.drain(group.clone());
    samples.positions.drain(group);
}

fn validate_user(user: &[u8]) -> Result<(), String> {
    if user.len() > USER_ID_BYTES_MAX {
        return Err(format!("ERR user id longer than {USER_ID_BYTES_MAX} bytes"));
    }
    Ok(())
}

/// Grows a full vector by an eighth (at least `growth_min`) instead of doubling: hot posts hold millions of
/// entries and doubling would leave a quarter of their memory unused on average. Amortised O(1) all the
/// same. Most posts have one index chunk and one log block, so those vectors grow one element at a time.
fn reserve_gently<T>(vector: &mut Vec<T>, growth_min: usize) {
    if vector.len() == vector.capacity() {
        vector.reserve_exact((vector.len() / 8).max(growth_min));
    }
}

/// Returns spare capacity beyond an eighth, so removals give memory back.
fn shrink_gently<T>(vector: &mut Vec<T>) {
    let keep = vector.len() + (vector.len() / 8).max(4);
    if vector.capacity() > keep + keep / 2 {
        vector.shrink_to(keep);
    }
}

#[cfg(test)]
mod tests;
