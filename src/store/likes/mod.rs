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
//! # Memory layout (two bit-packed entries a like, plus small per-post overheads;
//! `examples/likes_memory.rs` measures it and prints where the bytes go)
//! A user id that is a canonical decimal integer below 2^31 (no sign, no leading zero: "007", "+7" and "-1"
//! are text so they round-trip byte-exactly) is stored as itself; any other id is stored once in a
//! per-post text table and referenced by its slot number with the top bit set. Either way a like is one
//! 32-bit *slot* value, and a like costs two entries, each stored in the fewest bits its array needs
//! (`packed.rs`: about log2(likes) bits for a sequence number, 26 for an integer id below 2^26 - 1):
//! - the **order log** holds the slot of every like in sequence order, in pages of `LOG_PAGE_ENTRIES`
//!   packed entries (a page widens alone, so widening moves a bounded number of entries); past
//!   `LOG_PACKED_ENTRIES_MAX` entries the log is plain 32-bit values, so that its compaction (below) costs
//!   what it did before the packing. A bitmap per
//!   block of 64 sequence numbers marks which of them still have a log entry, plus the number of log
//!   entries before the block, so sequence -> log position is one popcount. A removal writes a tombstone;
//!   once tombstones pass a quarter of the live likes, one linear pass drops them and clears their bits,
//!   keeping every sequence number.
//! - the **membership index** holds sequence numbers sorted by user id, where the id of a sequence number
//!   is read from the log: no id is stored twice. It is cut into packed chunks of at most
//!   `LIKES_INDEX_CHUNK_ENTRIES_MAX` entries, so insert and remove are a binary search plus a bounded move
//!   (a shift of the chunk's packed words, or a repack of the chunk when a sequence number needs a bit
//!   more).
//! - **index samples**, on posts of at least `LIKES_INDEX_SAMPLED_LIKES_MIN` likes only: each chunk's
//!   first slot and `LIKES_INDEX_SAMPLES_PER_CHUNK` (slot, position) pairs inside it, in contiguous arrays,
//!   so a search reads through the log only between two neighbouring samples (a few steps instead of a
//!   binary search over the whole chunk, each step two dependent random reads). Derived from the index,
//!   never persisted. They share one box with the text table, so a post pays one pointer for both.
//!
//! A post's first index chunk, log page and log block sit in the post itself (`packed::OneOrMany`): most
//! posts have a few likes, and three allocations (with their allocator overhead) would cost them more than
//! their likes do. Arrays grow by an eighth rather than doubling, so spare capacity stays near 10%, and
//! only the last log page holds any. The in-memory packing is not the snapshot format: `codec.rs` writes
//! and reads plain 32-bit arrays.
//!
//! Files: the type and its public operations here; the membership index and its samples in `index.rs`;
//! the order log and the text table in `order_log.rs`; the bit-packed arrays both are stored in in
//! `packed.rs`; the snapshot encoding in `codec.rs`; the commands in `commands.rs`.

pub mod codec;
pub mod commands;
mod index;
mod order_log;
mod packed;

use packed::{OneOrMany, PackedU32s, PagedLog};

use crate::limits::{
    LIKES_INDEX_CHUNK_ENTRIES_MAX, LIKES_INDEX_SAMPLED_LIKES_MIN, LIKES_INDEX_SAMPLES_PER_CHUNK,
    LIKES_LIST_COUNT_MAX, LIKES_PER_POST_MAX, LIKES_TOMBSTONES_COMPACT_MIN, USER_ID_BYTES_MAX,
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
/// The least an index chunk or log page grows by, in entries.
const SMALL_GROWTH_MIN: usize = 4;

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
    /// `LIKES_INDEX_SAMPLES_PER_CHUNK` per chunk, chunk after chunk, positions in non-decreasing order.
    slots: Vec<u32>,
    positions: Vec<u16>,
}

/// The tables only some posts need, boxed together so that every post pays one pointer for both.
#[derive(Clone, Debug, Default)]
struct SideTables {
    /// Empty, and holding no memory, while the post has no text ids.
    texts: TextUserIds,
    /// Present from `LIKES_INDEX_SAMPLED_LIKES_MIN` likes on (see the constant); derived, so not persisted and
    /// not compared.
    samples: Option<Box<IndexSamples>>,
}

/// One post's likes.
#[derive(Clone, Debug)]
pub struct Likes {
    /// Sequence numbers sorted by user id; chunks are never empty.
    index_chunks: OneOrMany<PackedU32s>,
    /// Slot values (or tombstones) in sequence order, for the sequence numbers whose bit is set.
    log_entries: PagedLog,
    log_blocks: OneOrMany<LogBlock>,
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
            index_chunks: OneOrMany::default(),
            log_entries: PagedLog::new(),
            log_blocks: OneOrMany::default(),
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
        let slot = self.log_entries.get(entry);
        self.log_entries.set(entry, TOMBSTONE_SLOT);
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
        self.memory_parts().iter().map(|(_, bytes)| bytes).sum()
    }

    /// [`Likes::approximate_memory_bytes`] by part, for `examples/likes_memory.rs`: where a post's bytes go.
    pub fn memory_parts(&self) -> [(&'static str, usize); 7] {
        use std::mem::size_of;
        let index_entries = self
            .index_chunks
            .iter()
            .map(PackedU32s::heap_bytes)
            .sum::<usize>();
        let index_headers = self.index_chunks.heap_bytes();
        let log_entries = self.log_entries.heap_bytes();
        let log_blocks = self.log_blocks.heap_bytes();
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
        let side_tables = self
            .side_tables
            .as_ref()
            .map_or(0, |_| size_of::<SideTables>());
        let samples = self.samples().map_or(0, |samples| {
            size_of::<IndexSamples>()
                + samples.chunk_first_slots.capacity() * size_of::<u32>()
                + samples.slots.capacity() * size_of::<u32>()
                + samples.positions.capacity() * size_of::<u16>()
        });
        [
            ("post (the struct itself)", size_of::<Self>()),
            ("index entries", index_entries),
            ("index chunk headers", index_headers),
            ("order log entries", log_entries),
            ("order log blocks", log_blocks),
            ("text table", texts + side_tables),
            ("index samples", samples),
        ]
    }

    /// Asserts every structural invariant; O(n log n). In tests, and in debug builds after a snapshot load
    /// and after replay (`Value::check_invariants`).
    pub fn check_invariants(&self) {
        let indexed: usize = self.index_chunks.iter().map(PackedU32s::len).sum();
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
            .filter(|&slot| slot != TOMBSTONE_SLOT && slot & TEXT_SLOT_FLAG != 0)
            .count();
        assert_eq!(texts_live, texts_logged);

        match self.samples() {
            None => assert!(
                self.like_count < LIKES_INDEX_SAMPLED_LIKES_MIN,
                "a large post has samples"
            ),
            Some(samples) => {
                assert!(
                    self.like_count >= LIKES_INDEX_SAMPLED_LIKES_MIN / 2,
                    "a small post has none"
                );
                let chunk_count = self.index_chunks.len();
                assert_eq!(samples.chunk_first_slots.len(), chunk_count);
                assert_eq!(
                    samples.slots.len(),
                    chunk_count * LIKES_INDEX_SAMPLES_PER_CHUNK
                );
                assert_eq!(
                    samples.positions.len(),
                    chunk_count * LIKES_INDEX_SAMPLES_PER_CHUNK
                );
                for (chunk, entries) in self.index_chunks.iter().enumerate() {
                    assert_eq!(
                        samples.chunk_first_slots[chunk],
                        self.sequence_slot(entries.get(0)),
                        "the first slot of chunk {chunk}"
                    );
                    let group = chunk * LIKES_INDEX_SAMPLES_PER_CHUNK
                        ..(chunk + 1) * LIKES_INDEX_SAMPLES_PER_CHUNK;
                    let positions = &samples.positions[group.clone()];
                    assert!(positions.windows(2).all(|pair| pair[0] <= pair[1]));
                    for (&slot, &position) in samples.slots[group].iter().zip(positions) {
                        assert!(
                            usize::from(position) < entries.len(),
                            "a sample inside its chunk"
                        );
                        let entry = entries.get(usize::from(position));
                        assert_eq!(slot, self.sequence_slot(entry), "a sample is exact");
                    }
                }
            }
        }
    }

    // --- membership index ------------------------------------------------------------------------------
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
