//! A post's snapshot encoding (conventions in `store::encoding`).

use super::packed::{OneOrMany, PackedU32s, PagedLog};
use super::{
    Likes, LogBlock, SideTables, TextUserIds, UserKey, LOG_BLOCK_SEQUENCES, TEXT_SLOT_FLAG,
    TOMBSTONE_SLOT,
};
use crate::limits::{LIKES_INDEX_CHUNK_ENTRIES_MAX, LIKES_INDEX_SAMPLED_LIKES_MIN};
use crate::store::encoding::{put_bytes, put_count, put_u32, put_u32s, put_u64, put_u8, Reader};

impl Likes {
    /// Snapshot encoding (see `store::encoding`): the exact index, log, blocks, counters and text table,
    /// so a decoded post answers LIKE.LIST cursors handed out before the snapshot exactly as before.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_count(out, self.index_chunks.len());
        for chunk in self.index_chunks.iter() {
            put_u32s(out, &chunk.to_vec());
        }
        put_u32s(out, &self.log_entries.to_vec());
        put_count(out, self.log_blocks.len());
        for block in self.log_blocks.iter() {
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
        let mut index_chunks = OneOrMany::default();
        for _ in 0..chunk_count {
            let chunk = reader.u32s()?;
            if chunk.is_empty() || chunk.len() > LIKES_INDEX_CHUNK_ENTRIES_MAX {
                return Err("a likes index chunk is empty or over its bound".to_string());
            }
            index_chunks.push(PackedU32s::from_values(&chunk, 0));
        }
        let log_entries = PagedLog::from_vec(reader.u32s()?);
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
        let indexed: usize = index_chunks.iter().map(PackedU32s::len).sum();
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
            log_blocks: OneOrMany::from_vec(log_blocks),
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
        if like_count >= LIKES_INDEX_SAMPLED_LIKES_MIN {
            likes.samples_build();
        }
        Ok(likes)
    }

    /// What every search takes for granted, checked once on a decoded post so that a snapshot whose
    /// checksums hold but whose likes don't fit together is refused with a message instead of panicking
    /// in the first search (or in building the samples): the log blocks cover the sequence range with
    /// consistent counts, every indexed sequence number has a live log entry whose user resolves, and the
    /// index is strictly sorted by user. O(n), at load only.
    pub(super) fn validate_decoded(&self) -> Result<(), String> {
        let damaged = |what: &str| Err(format!("likes do not fit together: {what}"));
        if self.sequence_base > self.sequence_next {
            return damaged("sequence range");
        }
        let span = u64::from(self.sequence_next - self.sequence_base);
        if self.log_blocks.len() as u64 != span.div_ceil(u64::from(LOG_BLOCK_SEQUENCES)) {
            return damaged("log block count");
        }
        let mut entries_before = 0u32;
        for block in self.log_blocks.iter() {
            if block.entries_before != entries_before {
                return damaged("log block offsets");
            }
            entries_before += block.present.count_ones();
        }
        let tombstones = self
            .log_entries
            .iter()
            .filter(|&slot| slot == TOMBSTONE_SLOT)
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
        for sequence in self.index_chunks.iter().flat_map(PackedU32s::iter) {
            let Some(entry) = self.log_position(sequence) else {
                return damaged("an indexed like without a log entry");
            };
            let slot = self.log_entries.get(entry);
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
