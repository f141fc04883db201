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

use crate::limits::{
    LIKES_INDEX_CHUNK_ENTRIES_MAX, LIKES_LIST_COUNT_MAX, LIKES_PER_POST_MAX,
    LIKES_TOMBSTONES_COMPACT_MIN, USER_ID_BYTES_MAX,
};
use crate::store::encoding::{put_bytes, put_count, put_u32, put_u32s, put_u64, put_u8, Reader};

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

impl Likes {
    /// Snapshot encoding (see `store::encoding`): the exact index, log, blocks, counters and text table,
    /// so a decoded post answers LIKE.LIST cursors handed out before the snapshot exactly as before.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_count(out, self.index_chunks.len());
        for chunk in &self.index_chunks {
            put_u32s(out, chunk);
        }
        put_u32s(out, &self.log_entries);
        put_count(out, self.log_blocks.len());
        for block in &self.log_blocks {
            put_u64(out, block.present);
            put_u32(out, block.entries_before);
        }
        put_u32(out, self.sequence_base);
        put_u32(out, self.sequence_next);
        put_u32(out, self.like_count);
        put_u32(out, self.tombstone_count);
        match self.texts() {
            None => put_u8(out, 0),
            Some(texts) => {
                put_u8(out, 1);
                put_count(out, texts.by_slot.len());
                for slot in &texts.by_slot {
                    match slot {
                        None => put_u8(out, 0),
                        Some(text) => {
                            put_u8(out, 1);
                            put_bytes(out, text);
                        }
                    }
                }
                put_u32s(out, &texts.free_slots);
            }
        }
    }

    pub fn decode(reader: &mut Reader) -> Result<Likes, String> {
        let chunk_count = reader.count(8)?;
        let mut index_chunks = Vec::with_capacity(chunk_count);
        for _ in 0..chunk_count {
            let chunk = reader.u32s()?;
            if chunk.is_empty() || chunk.len() > LIKES_INDEX_CHUNK_ENTRIES_MAX {
                return Err("a likes index chunk is empty or over its bound".to_string());
            }
            index_chunks.push(chunk);
        }
        let log_entries = reader.u32s()?;
        let block_count = reader.count(12)?;
        let mut log_blocks = Vec::with_capacity(block_count);
        for _ in 0..block_count {
            log_blocks.push(LogBlock {
                present: reader.u64()?,
                entries_before: reader.u32()?,
            });
        }
        let sequence_base = reader.u32()?;
        let sequence_next = reader.u32()?;
        let like_count = reader.u32()?;
        let tombstone_count = reader.u32()?;
        // An empty table written with flag 1 (no version of dibs wrote one) is read as no table.
        let texts = match reader.u8()? {
            0 => TextUserIds::default(),
            1 => {
                let slot_count = reader.count(1)?;
                let mut by_slot = Vec::with_capacity(slot_count);
                for _ in 0..slot_count {
                    by_slot.push(match reader.u8()? {
                        0 => None,
                        1 => Some(reader.bytes()?.into()),
                        flag => return Err(format!("bad likes text slot flag {flag}")),
                    });
                }
                let free_slots = reader.u32s()?;
                TextUserIds {
                    by_slot,
                    free_slots,
                }
            }
            flag => return Err(format!("bad likes text table flag {flag}")),
        };
        let indexed: usize = index_chunks.iter().map(Vec::len).sum();
        let present: usize = log_blocks
            .iter()
            .map(|block| block.present.count_ones() as usize)
            .sum();
        if indexed != like_count as usize
            || present != log_entries.len()
            || log_entries.len() != like_count as usize + tombstone_count as usize
        {
            return Err("likes counts do not add up".to_string());
        }
        let mut likes = Likes {
            index_chunks,
            log_entries,
            log_blocks,
            sequence_base,
            sequence_next,
            like_count,
            tombstone_count,
            side_tables: (!texts.by_slot.is_empty()).then(|| {
                Box::new(SideTables {
                    texts,
                    samples: None,
                })
            }),
        };
        likes.validate_decoded()?;
        if like_count >= INDEX_SAMPLED_LIKES_MIN {
            likes.samples_build();
        }
        Ok(likes)
    }

    /// What every search takes for granted, checked once on a decoded post so that a snapshot whose
    /// checksums hold but whose likes don't fit together is refused with a message instead of panicking
    /// in the first search (or in building the samples): the log blocks cover the sequence range with
    /// consistent counts, every indexed sequence number has a live log entry whose user resolves, and the
    /// index is strictly sorted by user. O(n), at load only.
    fn validate_decoded(&self) -> Result<(), String> {
        let damaged = |what: &str| Err(format!("likes do not fit together: {what}"));
        if self.sequence_base > self.sequence_next {
            return damaged("sequence range");
        }
        let span = u64::from(self.sequence_next - self.sequence_base);
        if self.log_blocks.len() as u64 != span.div_ceil(u64::from(LOG_BLOCK_SEQUENCES)) {
            return damaged("log block count");
        }
        let mut entries_before = 0u32;
        for block in &self.log_blocks {
            if block.entries_before != entries_before {
                return damaged("log block offsets");
            }
            entries_before += block.present.count_ones();
        }
        let tombstones = self
            .log_entries
            .iter()
            .filter(|&&slot| slot == TOMBSTONE_SLOT)
            .count();
        if tombstones != self.tombstone_count as usize {
            return damaged("tombstone count");
        }
        let live_text = |slot: u32| {
            slot & TEXT_SLOT_FLAG == 0
                || self.texts().is_some_and(|texts| {
                    texts
                        .by_slot
                        .get((slot & !TEXT_SLOT_FLAG) as usize)
                        .is_some_and(Option::is_some)
                })
        };
        let mut previous: Option<UserKey> = None;
        for &sequence in self.index_chunks.iter().flatten() {
            let Some(entry) = self.log_position(sequence) else {
                return damaged("an indexed like without a log entry");
            };
            let slot = self.log_entries[entry];
            if slot == TOMBSTONE_SLOT || !live_text(slot) {
                return damaged("an indexed like without a user");
            }
            let key = self.slot_key(slot);
            if previous.is_some_and(|previous| previous >= key) {
                return damaged("the index is not sorted by user");
            }
            previous = Some(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{HashMap, HashSet};

    impl Likes {
        /// A post whose sequence numbers start at `sequence`, to reach exhaustion quickly.
        fn with_sequence_start(sequence: u32) -> Self {
            Likes {
                sequence_base: sequence,
                sequence_next: sequence,
                ..Likes::new()
            }
        }
    }

    fn added(count: u64) -> Result<LikeChange, String> {
        Ok(LikeChange {
            changed: true,
            count,
        })
    }

    fn page(likes: &Likes, cursor: u64, count: u64) -> (u64, Vec<String>) {
        let page = likes.list(cursor, count).unwrap();
        (
            page.next_cursor,
            page.users
                .into_iter()
                .map(|user| String::from_utf8(user).unwrap())
                .collect(),
        )
    }

    /// The whole walk, page by page.
    fn walk(likes: &Likes, count: u64) -> Vec<String> {
        let mut users = Vec::new();
        let mut cursor = 0;
        loop {
            let (next, mut listed) = page(likes, cursor, count);
            users.append(&mut listed);
            if next == 0 {
                return users;
            }
            cursor = next;
        }
    }

    #[test]
    fn a_double_click_counts_once() {
        let mut likes = Likes::new();
        assert_eq!(likes.add(b"42"), added(1));
        assert_eq!(
            likes.add(b"42"),
            Ok(LikeChange {
                changed: false,
                count: 1
            })
        );
        assert_eq!(likes.add(b"alice"), added(2));
        assert!(likes.contains(b"42") && likes.contains(b"alice"));
        assert!(!likes.contains(b"43"));
        likes.check_invariants();
    }

    #[test]
    fn remove_reports_whether_it_removed() {
        let mut likes = Likes::new();
        likes.add(b"1").unwrap();
        likes.add(b"bob").unwrap();
        assert_eq!(
            likes.remove(b"1"),
            LikeChange {
                changed: true,
                count: 1
            }
        );
        assert_eq!(
            likes.remove(b"1"),
            LikeChange {
                changed: false,
                count: 1
            }
        );
        assert_eq!(
            likes.remove(b"bob"),
            LikeChange {
                changed: true,
                count: 0
            }
        );
        assert!(likes.is_empty());
        assert!(
            likes.side_tables.is_none(),
            "the text table goes when its last id does"
        );
        likes.check_invariants();
    }

    #[test]
    fn non_canonical_integers_are_text_and_round_trip() {
        let mut likes = Likes::new();
        let ids: [&[u8]; 9] = [
            b"7",
            b"007",
            b"+7",
            b"-1",
            b"0",
            b"00",
            b"2147483647",
            b"2147483648",
            b"",
        ];
        for id in ids {
            likes.add(id).unwrap();
        }
        assert_eq!(likes.count(), 9);
        assert_eq!(UserKey::parse(b"7"), UserKey::Integer(7));
        assert_eq!(UserKey::parse(b"0"), UserKey::Integer(0));
        assert_eq!(
            UserKey::parse(b"2147483647"),
            UserKey::Integer(2_147_483_647)
        );
        assert_eq!(UserKey::parse(b"2147483648"), UserKey::Text(b"2147483648"));
        assert_eq!(
            UserKey::parse(b"99999999999"),
            UserKey::Text(b"99999999999")
        );
        assert_eq!(UserKey::parse(b"007"), UserKey::Text(b"007"));
        let listed = walk(&likes, 4);
        let expected: Vec<String> = ids
            .iter()
            .rev()
            .map(|id| String::from_utf8(id.to_vec()).unwrap())
            .collect();
        assert_eq!(listed, expected);
        assert!(!likes.contains(b"07"));
        likes.check_invariants();
    }

    #[test]
    fn user_ids_are_bounded() {
        let mut likes = Likes::new();
        let long = vec![b'x'; USER_ID_BYTES_MAX + 1];
        assert!(likes.add(&long).unwrap_err().starts_with("ERR"));
        assert!(likes.add(&long[..USER_ID_BYTES_MAX]).is_ok());
        assert!(!likes.contains(&long));
        assert_eq!(
            likes.remove(&long),
            LikeChange {
                changed: false,
                count: 1
            }
        );
    }

    #[test]
    fn list_pages_newest_first_and_ends_with_cursor_zero() {
        let mut likes = Likes::new();
        for user in 1..=5u32 {
            likes.add(user.to_string().as_bytes()).unwrap();
        }
        let (cursor, users) = page(&likes, 0, 2);
        assert_eq!(users, ["5", "4"]);
        assert_ne!(cursor, 0);
        let (cursor, users) = page(&likes, cursor, 2);
        assert_eq!(users, ["3", "2"]);
        let (cursor, users) = page(&likes, cursor, 2);
        assert_eq!((cursor, users), (0, vec!["1".to_string()]));
        // Exactly a page left: the page that takes it says 0 at once.
        assert_eq!(page(&likes, 0, 5).0, 0);
        assert_eq!(page(&Likes::new(), 0, 10), (0, vec![]));
        assert!(likes.list(0, 0).is_err());
        assert!(likes.list(0, LIKES_LIST_COUNT_MAX + 1).is_err());
        // A cursor from the future (or from a deleted and recreated post) starts at the top.
        assert_eq!(page(&likes, 1_000_000, 1).1, ["5"]);
    }

    #[test]
    fn a_walk_is_stable_under_adds_and_removes() {
        let mut likes = Likes::new();
        for user in 1..=6u32 {
            likes.add(user.to_string().as_bytes()).unwrap();
        }
        let (cursor, users) = page(&likes, 0, 2);
        assert_eq!(users, ["6", "5"]);
        likes.add(b"7").unwrap(); // added after the walk began: not listed by it
        likes.remove(b"4"); // removed before its turn: not listed
        likes.remove(b"6"); // already listed
        likes.remove(b"3");
        likes.add(b"3").unwrap(); // re-liked: a new sequence number above the cursor
        let (cursor, users) = page(&likes, cursor, 2);
        assert_eq!(users, ["2", "1"]);
        assert_eq!(cursor, 0);
    }

    #[test]
    fn tombstones_are_compacted_and_sequences_kept() {
        let mut likes = Likes::new();
        for user in 0..1_000u32 {
            likes.add(user.to_string().as_bytes()).unwrap();
        }
        let (cursor, _) = page(&likes, 0, 10);
        for user in (0..1_000u32).filter(|user| user % 3 != 0) {
            likes.remove(user.to_string().as_bytes());
        }
        assert!(likes.tombstone_count < 200, "compaction ran");
        likes.check_invariants();
        let rest = walk_from(&likes, cursor, 7);
        let expected: Vec<String> = (0..990u32)
            .rev()
            .filter(|user| user % 3 == 0)
            .map(|u| u.to_string())
            .collect();
        assert_eq!(rest, expected);
        // Drain everything but the newest: leading empty blocks go.
        for user in 0..999u32 {
            likes.remove(user.to_string().as_bytes());
        }
        likes.check_invariants();
        assert!(likes.log_blocks.len() <= 2);
        assert_eq!(walk(&likes, 3), ["999"]);
    }

    fn walk_from(likes: &Likes, mut cursor: u64, count: u64) -> Vec<String> {
        let mut users = Vec::new();
        while cursor != 0 {
            let (next, mut listed) = page(likes, cursor, count);
            users.append(&mut listed);
            cursor = next;
        }
        users
    }

    #[test]
    fn index_chunks_split_and_merge() {
        let mut likes = Likes::new();
        let users: Vec<u32> = (0..5_000u32)
            .map(|i| i.wrapping_mul(2_654_435_761) % 1_000_000)
            .collect();
        for user in &users {
            likes.add(user.to_string().as_bytes()).unwrap();
        }
        assert!(likes.index_chunks.len() > 5_000 / LIKES_INDEX_CHUNK_ENTRIES_MAX);
        likes.check_invariants();
        for user in users.iter().skip(100) {
            assert!(likes.remove(user.to_string().as_bytes()).changed);
        }
        likes.check_invariants();
        assert!(
            likes.index_chunks.len() <= 2,
            "{} chunks for 100 likes",
            likes.index_chunks.len()
        );
        assert!(users
            .iter()
            .take(100)
            .all(|user| likes.contains(user.to_string().as_bytes())));
    }

    #[test]
    fn index_samples_follow_inserts_removals_splits_and_merges() {
        let mut likes = Likes::new();
        let user = |i: u32| {
            let scrambled = i.wrapping_mul(2_654_435_761) % 100_000;
            if i.is_multiple_of(3) {
                format!("text-{scrambled}").into_bytes()
            } else {
                scrambled.to_string().into_bytes()
            }
        };
        for i in 0..2_000u32 {
            assert!(likes.add(&user(i)).unwrap().changed);
            if i % 7 == 0 {
                likes.check_invariants();
            }
            assert_eq!(likes.samples().is_some(), i + 1 >= INDEX_SAMPLED_LIKES_MIN);
        }
        assert!(likes.index_chunks.len() > 2);
        // Removing from the low end moves every sample of the first chunk, and removes sampled entries.
        for i in (0..2_000u32).rev() {
            assert!(likes.remove(&user(i)).changed);
            if i % 7 == 0 {
                likes.check_invariants();
            }
            assert!((0..i).step_by(101).all(|kept| likes.contains(&user(kept))));
        }
        assert!(likes.samples().is_none() && likes.is_empty());
        // Below the threshold, then back above it: hysteresis keeps the samples until half of it.
        for i in 0..INDEX_SAMPLED_LIKES_MIN {
            likes.add(&user(i)).unwrap();
        }
        for i in 0..=INDEX_SAMPLED_LIKES_MIN / 2 {
            assert!(likes.samples().is_some());
            likes.remove(&user(i));
            likes.check_invariants();
        }
        assert!(likes.samples().is_none());
    }

    #[test]
    fn sequence_exhaustion_renumbers() {
        let mut likes = Likes::with_sequence_start(SEQUENCE_EXHAUSTED - 100);
        for user in 0..100u32 {
            likes.add(user.to_string().as_bytes()).unwrap();
        }
        likes.add(b"text").unwrap();
        likes.remove(b"50");
        likes.check_invariants();
        assert_eq!(
            likes.sequence_next,
            SEQUENCE_FIRST + 101,
            "100 renumbered, then \"text\""
        );
        let expected: Vec<String> = std::iter::once("text".to_string())
            .chain(
                (0..100u32)
                    .rev()
                    .filter(|u| *u != 50)
                    .map(|u| u.to_string()),
            )
            .collect();
        assert_eq!(walk(&likes, 9), expected);
        assert!(likes.contains(b"0") && likes.contains(b"text") && !likes.contains(b"50"));
    }

    #[derive(Clone, Debug)]
    enum Operation {
        Add(usize),
        Remove(usize),
        ListPage(u64),
    }

    fn operations(users: usize, length: usize) -> impl Strategy<Value = Vec<Operation>> {
        let operation = prop_oneof![
            4 => (0..users).prop_map(Operation::Add),
            2 => (0..users).prop_map(Operation::Remove),
            1 => (1..6u64).prop_map(Operation::ListPage),
        ];
        proptest::collection::vec(operation, 0..length)
    }

    fn user_pool(integers: usize) -> Vec<Vec<u8>> {
        let texts: [&[u8]; 9] = [
            b"007",
            b"+7",
            b"-1",
            b"abc",
            b"",
            b"2147483647",
            b"2147483648",
            b"4294967296",
            b"x",
        ];
        (0..integers)
            .map(|i| i.to_string().into_bytes())
            .chain(texts.iter().map(|t| t.to_vec()))
            .collect()
    }

    /// A walk in progress, checked against the model.
    struct Walk {
        cursor: u64,
        /// The stamp of the last like listed: the next page lists below it.
        boundary_stamp: u64,
        present_at_start: HashSet<Vec<u8>>,
        removed_during: HashSet<Vec<u8>>,
        listed: Vec<Vec<u8>>,
    }

    /// Runs `operations` against `Likes` and a model (user -> stamp of its current like), checking every
    /// answer, the walk guarantees and the invariants; returns the final state.
    fn run_against_model(pool: &[Vec<u8>], operations: &[Operation]) -> Likes {
        let mut likes = Likes::new();
        let mut model: HashMap<Vec<u8>, u64> = HashMap::new();
        let mut stamp_next = 0u64;
        let mut walk: Option<Walk> = None;
        for (index, operation) in operations.iter().enumerate() {
            match *operation {
                Operation::Add(user) => {
                    let user = &pool[user];
                    let fresh = !model.contains_key(user);
                    if fresh {
                        model.insert(user.clone(), stamp_next);
                        stamp_next += 1;
                    }
                    assert_eq!(
                        likes.add(user),
                        Ok(LikeChange {
                            changed: fresh,
                            count: model.len() as u64
                        })
                    );
                }
                Operation::Remove(user) => {
                    let user = &pool[user];
                    let present = model.remove(user).is_some();
                    if present {
                        if let Some(walk) = walk.as_mut() {
                            walk.removed_during.insert(user.clone());
                        }
                    }
                    assert_eq!(
                        likes.remove(user),
                        LikeChange {
                            changed: present,
                            count: model.len() as u64
                        }
                    );
                }
                Operation::ListPage(count) => {
                    let state = walk.get_or_insert_with(|| Walk {
                        cursor: 0,
                        boundary_stamp: u64::MAX,
                        present_at_start: model.keys().cloned().collect(),
                        removed_during: HashSet::new(),
                        listed: Vec::new(),
                    });
                    let mut below: Vec<(u64, &Vec<u8>)> = model
                        .iter()
                        .filter(|(_, &stamp)| stamp < state.boundary_stamp)
                        .map(|(user, &stamp)| (stamp, user))
                        .collect();
                    below.sort_unstable_by_key(|&(stamp, _)| std::cmp::Reverse(stamp));
                    let expected: Vec<Vec<u8>> = below
                        .iter()
                        .take(count as usize)
                        .map(|(_, u)| (*u).clone())
                        .collect();
                    let got = likes.list(state.cursor, count).unwrap();
                    assert_eq!(got.users, expected);
                    assert_eq!(got.next_cursor == 0, below.len() <= count as usize);
                    if let Some(last) = expected.last() {
                        state.boundary_stamp = model[last];
                    }
                    state.listed.extend(expected);
                    state.cursor = got.next_cursor;
                    if got.next_cursor == 0 {
                        let listed: HashSet<&Vec<u8>> = state.listed.iter().collect();
                        assert_eq!(listed.len(), state.listed.len(), "no like listed twice");
                        for user in state.present_at_start.difference(&state.removed_during) {
                            assert!(listed.contains(user), "{user:?} was present all along");
                        }
                        walk = None;
                    }
                }
            }
            assert_eq!(likes.count(), model.len() as u64);
            // The samples change with every insert and removal: check them (and the rest) often.
            if (index + 1) % 97 == 0 {
                likes.check_invariants();
            }
            if pool.len() <= 64 {
                for user in pool {
                    assert_eq!(likes.contains(user), model.contains_key(user));
                }
            }
        }
        for user in pool {
            assert_eq!(likes.contains(user), model.contains_key(user));
        }
        likes.check_invariants();
        likes
    }

    proptest! {
        // Debug builds are slow and the machine is shared: fewer, longer cases for the large pools.
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn agrees_with_a_set_and_walks_stably(operations in operations(24, 400)) {
            run_against_model(&user_pool(24), &operations);
        }

        #[test]
        fn agrees_with_a_set_when_chunks_split_and_logs_compact(operations in operations(1_500, 2_500)) {
            run_against_model(&user_pool(1_500), &operations);
        }

        #[test]
        fn agrees_with_a_set_when_sampled_chunks_hold_text_ids(operations in operations(1_500, 2_500)) {
            // Mostly text ids, so index samples name text slots that are freed and reused.
            let pool: Vec<Vec<u8>> = (0..1_500)
                .map(|i| if i % 4 == 0 { i.to_string() } else { format!("user-{i}") }.into_bytes())
                .collect();
            run_against_model(&pool, &operations);
        }

        #[test]
        fn the_same_operations_give_the_same_state(operations in operations(300, 600)) {
            let pool = user_pool(300);
            prop_assert_eq!(run_against_model(&pool, &operations), run_against_model(&pool, &operations));
        }
    }

    /// Likes over posts with Zipf-distributed popularity and uniform integer users, as in the benchmark
    /// (20,000 posts, users up to 50 million); returns bytes per like by `approximate_memory_bytes`.
    pub(crate) fn zipf_bytes_per_like(posts: usize, likes_total: usize) -> f64 {
        let mut random = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            random
        };
        let weights: Vec<f64> = (1..=posts).map(|rank| 1.0 / rank as f64).collect();
        let total: f64 = weights.iter().sum();
        let mut cumulative = Vec::with_capacity(posts);
        let mut sum = 0.0;
        for weight in &weights {
            sum += weight / total;
            cumulative.push(sum);
        }
        let mut all: Vec<Likes> = (0..posts).map(|_| Likes::new()).collect();
        let mut stored = 0;
        while stored < likes_total {
            let uniform = (next() >> 11) as f64 / (1u64 << 53) as f64;
            let post = cumulative.partition_point(|&c| c < uniform).min(posts - 1);
            let user = 1 + next() % 50_000_000;
            if all[post].add(user.to_string().as_bytes()).unwrap().changed {
                stored += 1;
            }
        }
        let bytes: usize = all.iter().map(Likes::approximate_memory_bytes).sum();
        bytes as f64 / stored as f64
    }

    #[test]
    fn a_post_without_text_ids_or_samples_stays_small() {
        // Every post pays for this struct, and most posts hold a few likes: the index samples share the
        // text table's box instead of adding a pointer.
        assert!(std::mem::size_of::<Likes>() <= 96);
    }

    #[test]
    fn memory_per_like_is_small() {
        let bytes_per_like = zipf_bytes_per_like(2_000, 200_000);
        println!("{bytes_per_like:.2} bytes per like");
        assert!(bytes_per_like < 12.0, "{bytes_per_like:.2} bytes per like");
    }

    #[test]
    fn snapshot_encoding_round_trips_integers_texts_and_tombstones() {
        let mut likes = Likes::new();
        for user in 0..300u32 {
            likes.add(user.to_string().as_bytes()).unwrap();
            likes.add(format!("user-{user}").as_bytes()).unwrap();
        }
        for user in (0..300u32).step_by(3) {
            likes.remove(user.to_string().as_bytes());
            likes.remove(format!("user-{user}").as_bytes());
        }
        let page = likes.list(0, 7).unwrap();
        let mut out = Vec::new();
        likes.encode(&mut out);
        let mut reader = Reader::new(&out);
        let decoded = Likes::decode(&mut reader).expect("decodes");
        reader.finish().expect("every byte read");
        decoded.check_invariants();
        assert_eq!(decoded, likes);
        assert_eq!(
            decoded.list(page.next_cursor, 50).unwrap(),
            likes.list(page.next_cursor, 50).unwrap()
        );
        assert!(Likes::decode(&mut Reader::new(&out[..out.len() - 1])).is_err());
        let empty = Likes::new();
        let mut out = Vec::new();
        empty.encode(&mut out);
        assert_eq!(Likes::decode(&mut Reader::new(&out)).unwrap(), empty);
    }

    #[test]
    fn a_decoded_post_whose_parts_do_not_fit_together_is_refused_not_a_panic() {
        let mut likes = Likes::new();
        for user in 0..2_000u32 {
            likes.add(user.to_string().as_bytes()).unwrap();
        }
        likes.add(b"text-user").unwrap();
        likes.remove(b"7");
        type Damage = dyn Fn(&mut Likes);
        let decode_after = |damage: &Damage| {
            let mut damaged = likes.clone();
            damage(&mut damaged);
            let mut out = Vec::new();
            damaged.encode(&mut out);
            Likes::decode(&mut Reader::new(&out))
        };
        assert!(decode_after(&|_| {}).is_ok(), "undamaged, it loads");
        let refusals: [(&str, &Damage); 5] = [
            ("an indexed like without a log entry", &|likes| {
                likes.index_chunks[0][0] = likes.sequence_next - 1 + 1_000
            }),
            ("the index is not sorted by user", &|likes| {
                likes.index_chunks[1].swap(0, 1)
            }),
            ("an indexed like without a user", &|likes| {
                let last = likes.log_entries.len() - 1;
                likes.log_entries[last] = TEXT_SLOT_FLAG | 77;
            }),
            ("tombstone count", &|likes| {
                likes.log_entries[5] = TOMBSTONE_SLOT
            }),
            ("log block offsets", &|likes| {
                likes.log_blocks[3].entries_before += 1
            }),
        ];
        for (expected, damage) in refusals {
            let error = decode_after(damage).expect_err(expected);
            assert!(error.contains(expected), "{error} / {expected}");
        }
    }
}
