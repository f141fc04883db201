//! A post's order log: every like's slot in order of its sequence number, in blocks with a presence
//! bitmap, with tombstones for removed likes until a compaction; and the text table of user ids that are
//! not canonical integers.

use super::packed::{OneOrMany, PagedLog};
use super::{
    Likes, LogBlock, TextUserIds, UserKey, LOG_BLOCK_SEQUENCES, SEQUENCE_EXHAUSTED, SEQUENCE_FIRST,
    SMALL_GROWTH_MIN, TEXT_SLOT_FLAG, TOMBSTONE_SLOT,
};

impl Likes {
    pub(super) fn log_append(&mut self, slot: u32) -> u32 {
        let sequence = self.sequence_next;
        assert!(sequence < SEQUENCE_EXHAUSTED);
        let offset = sequence - self.sequence_base;
        let block = (offset / LOG_BLOCK_SEQUENCES) as usize;
        if block == self.log_blocks.len() {
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
        self.log_entries.push(slot, SMALL_GROWTH_MIN);
        self.sequence_next += 1;
        sequence
    }

    /// Where `sequence`'s entry is in `log_entries`, if it still has one.
    #[inline]
    pub(super) fn log_position(&self, sequence: u32) -> Option<usize> {
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
    pub(super) fn for_each_live_below(&self, below: u32, mut visit: impl FnMut(u32, u32) -> bool) {
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
                let slot = self
                    .log_entries
                    .get(block.entries_before as usize + below_bit.count_ones() as usize);
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
    pub(super) fn log_compact(&mut self) {
        let live = self.like_count as usize;
        // A plain log is moved out, not copied.
        let old_entries = std::mem::take(&mut self.log_entries).into_vec();
        let mut entries = Vec::with_capacity(live + live / 8);
        let mut read = 0;
        for block in self.log_blocks.iter_mut() {
            let mut kept = 0u64;
            let mut present = block.present;
            block.entries_before = entries.len() as u32;
            while present != 0 {
                let bit = present.trailing_zeros();
                present &= present - 1;
                let slot = old_entries[read];
                read += 1;
                if slot != TOMBSTONE_SLOT {
                    kept |= 1 << bit;
                    entries.push(slot);
                }
            }
            block.present = kept;
        }
        assert_eq!(read, old_entries.len());
        assert_eq!(entries.len(), live);
        self.log_entries = PagedLog::from_vec(entries);
        self.tombstone_count = 0;
        // The last block stays even when empty: it is where the next append goes.
        let empty_leading = self
            .log_blocks
            .iter()
            .take(self.log_blocks.len().saturating_sub(1))
            .take_while(|b| b.present == 0)
            .count();
        if empty_leading > 0 {
            self.log_blocks.remove_front(empty_leading);
            self.sequence_base += empty_leading as u32 * LOG_BLOCK_SEQUENCES;
        }
    }

    /// Gives the live likes the sequence numbers 1..=count, in their order. Only when the 32-bit sequence
    /// space is used up; a walk in progress may then skip or repeat likes (see the module documentation).
    pub(super) fn renumber(&mut self) {
        self.log_compact();
        for chunk in 0..self.index_chunks.len() {
            for position in 0..self.index_chunks[chunk].len() {
                let sequence = self.index_chunks[chunk].get(position);
                let entry = self
                    .log_position(sequence)
                    .expect("an indexed sequence number has a log entry");
                self.index_chunks[chunk].set(position, SEQUENCE_FIRST + entry as u32);
            }
        }
        let live = self.log_entries.len() as u32;
        self.sequence_base = SEQUENCE_FIRST;
        self.sequence_next = SEQUENCE_FIRST + live;
        self.log_blocks = OneOrMany::from_vec(
            (0..live.div_ceil(LOG_BLOCK_SEQUENCES))
                .map(|block| {
                    let in_block = (live - block * LOG_BLOCK_SEQUENCES).min(LOG_BLOCK_SEQUENCES);
                    LogBlock {
                        present: u64::MAX >> (LOG_BLOCK_SEQUENCES - in_block),
                        entries_before: block * LOG_BLOCK_SEQUENCES,
                    }
                })
                .collect(),
        );
    }

    // --- user ids ----------------------------------------------------------------------------------------

    /// The user id of a live sequence number.
    #[inline]
    pub(super) fn sequence_key(&self, sequence: u32) -> UserKey<'_> {
        self.slot_key(self.sequence_slot(sequence))
    }

    /// The slot of a live sequence number.
    #[inline]
    pub(super) fn sequence_slot(&self, sequence: u32) -> u32 {
        let entry = self
            .log_position(sequence)
            .expect("an indexed sequence number has a log entry");
        let slot = self.log_entries.get(entry);
        debug_assert_ne!(slot, TOMBSTONE_SLOT);
        slot
    }

    pub(super) fn slot_key(&self, slot: u32) -> UserKey<'_> {
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

    pub(super) fn slot_user(&self, slot: u32) -> Vec<u8> {
        match self.slot_key(slot) {
            UserKey::Integer(value) => value.to_string().into_bytes(),
            UserKey::Text(bytes) => bytes.to_vec(),
        }
    }

    /// Stores a text id and returns its slot value (flag set).
    pub(super) fn text_insert(&mut self, bytes: &[u8]) -> u32 {
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

    pub(super) fn text_remove(&mut self, number: u32) {
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
    pub(super) fn texts(&self) -> Option<&TextUserIds> {
        let texts = &self.side_tables.as_ref()?.texts;
        (!texts.by_slot.is_empty()).then_some(texts)
    }
}
