//! A post's membership index: like sequence numbers sorted by user id, in chunks of at most
//! `LIKES_INDEX_CHUNK_ENTRIES_MAX` entries, so an insert or a removal moves a bounded number of entries
//! whatever the post's size; and the samples that let a search of a large post read few log entries.

use super::packed::PackedU32s;
use super::{reserve_gently, IndexSamples, Likes, UserKey, SMALL_GROWTH_MIN};
use crate::limits::{
    LIKES_INDEX_CHUNK_ENTRIES_MAX, LIKES_INDEX_SAMPLED_LIKES_MIN, LIKES_INDEX_SAMPLES_PER_CHUNK,
};

impl Likes {
    /// Finds `key`: its chunk, and `Ok(position)` if present or `Err(position)` where it would go.
    pub(super) fn index_search(&self, key: UserKey) -> (usize, Result<usize, usize>) {
        if self.index_chunks.is_empty() {
            return (0, Err(0));
        }
        if let Some(samples) = self.samples() {
            return self.index_search_sampled(samples, key);
        }
        let chunk = self.index_chunks.partition_point(|chunk| {
            let last = chunk.last().expect("chunks are never empty");
            self.sequence_key(last) < key
        });
        if chunk == self.index_chunks.len() {
            let last = chunk - 1;
            return (last, Err(self.index_chunks[last].len()));
        }
        let entries = &self.index_chunks[chunk];
        (chunk, self.entries_search(entries, 0, entries.len(), key))
    }

    /// [`Likes::index_search`] through the samples: the chunk is the last one whose first key is at most
    /// `key` (chunk 0 when there is none), and only the entries between two neighbouring samples are read
    /// through the log. An insert may so land at the end of a chunk where the unsampled search would put
    /// it at the start of the next; either keeps the index sorted.
    pub(super) fn index_search_sampled(
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
        let group =
            chunk * LIKES_INDEX_SAMPLES_PER_CHUNK..(chunk + 1) * LIKES_INDEX_SAMPLES_PER_CHUNK;
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
        (chunk, self.entries_search(entries, start + 1, end, key))
    }

    /// Binary search of `entries[low..high]` (sequence numbers sorted by user) for `key`, two levels a
    /// round: the keys of the three pivots of a round are read independently of each other, so their
    /// cache misses (sequence -> log block -> log entry, each) overlap instead of following one another.
    /// Positions are in the whole chunk.
    pub(super) fn entries_search(
        &self,
        entries: &PackedU32s,
        mut low: usize,
        mut high: usize,
        key: UserKey,
    ) -> Result<usize, usize> {
        // Entries before `low` are below `key`, entries from `high` on are above it.
        while high - low >= 4 {
            let length = high - low;
            let pivots = [1, 2, 3].map(|quarter| low + quarter * length / 4);
            let slots = pivots.map(|pivot| self.sequence_slot(entries.get(pivot)));
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
        for position in low..high {
            match self.sequence_key(entries.get(position)).cmp(&key) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return Ok(position),
                std::cmp::Ordering::Greater => return Err(position),
            }
        }
        Err(high)
    }

    /// Inserts `sequence`, whose like holds `slot`, at `position` of `chunk`.
    pub(super) fn index_insert(&mut self, chunk: usize, position: usize, sequence: u32, slot: u32) {
        if self.index_chunks.is_empty() {
            self.index_chunks.push(PackedU32s::new());
        }
        let entries = &mut self.index_chunks[chunk];
        entries.insert(position, sequence, SMALL_GROWTH_MIN);
        let split = entries.len() > LIKES_INDEX_CHUNK_ENTRIES_MAX;
        if split {
            // Each half keeps an eighth of spare room, as a chunk growing by itself would.
            let half = entries.len() / 2;
            let upper = entries.split_off(half, half / 8);
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
                let group = chunk * LIKES_INDEX_SAMPLES_PER_CHUNK
                    ..(chunk + 1) * LIKES_INDEX_SAMPLES_PER_CHUNK;
                for sample in &mut samples.positions[group] {
                    if usize::from(*sample) >= position {
                        *sample += 1;
                    }
                }
                if position == 0 {
                    samples.chunk_first_slots[chunk] = slot;
                }
            }
        } else if self.like_count >= LIKES_INDEX_SAMPLED_LIKES_MIN {
            self.samples_build();
        }
    }

    pub(super) fn index_remove(&mut self, chunk: usize, position: usize) -> u32 {
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
            self.index_chunks[chunk].extend_from(&upper, SMALL_GROWTH_MIN);
            merged = true;
        } else {
            self.index_chunks[chunk].shrink_gently(SMALL_GROWTH_MIN);
        }
        self.like_count -= 1;

        if let Some(mut samples) = self.samples_take() {
            if self.like_count < LIKES_INDEX_SAMPLED_LIKES_MIN / 2 {
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
    pub(super) fn samples_after_remove(
        &self,
        samples: &mut IndexSamples,
        chunk: usize,
        position: usize,
    ) {
        let entries = &self.index_chunks[chunk];
        // The entry that takes the removed one's place, or the one before it at the end of the chunk.
        let replacement = position.min(entries.len() - 1);
        let replacement_slot = self.sequence_slot(entries.get(replacement));
        if position == 0 {
            samples.chunk_first_slots[chunk] = replacement_slot;
        }
        let group =
            chunk * LIKES_INDEX_SAMPLES_PER_CHUNK..(chunk + 1) * LIKES_INDEX_SAMPLES_PER_CHUNK;
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
    pub(super) fn samples_build(&mut self) {
        let chunk_count = self.index_chunks.len();
        let mut samples = Box::new(IndexSamples {
            chunk_first_slots: Vec::with_capacity(chunk_count),
            slots: Vec::with_capacity(chunk_count * LIKES_INDEX_SAMPLES_PER_CHUNK),
            positions: Vec::with_capacity(chunk_count * LIKES_INDEX_SAMPLES_PER_CHUNK),
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
    pub(super) fn samples_rebuild(&mut self, chunk: usize) {
        let mut samples = self.samples_take().expect("rebuilding samples that exist");
        let entries = &self.index_chunks[chunk];
        samples.chunk_first_slots[chunk] = self.sequence_slot(entries.get(0));
        let group =
            chunk * LIKES_INDEX_SAMPLES_PER_CHUNK..(chunk + 1) * LIKES_INDEX_SAMPLES_PER_CHUNK;
        for (sample, (slot, position)) in samples.slots[group.clone()]
            .iter_mut()
            .zip(&mut samples.positions[group])
            .enumerate()
        {
            let at = (sample + 1) * entries.len() / (LIKES_INDEX_SAMPLES_PER_CHUNK + 1);
            *position = at as u16;
            *slot = self.sequence_slot(entries.get(at));
        }
        self.samples_put(samples);
    }

    pub(super) fn samples(&self) -> Option<&IndexSamples> {
        self.side_tables.as_ref()?.samples.as_deref()
    }

    /// Takes the samples out, to update them while reading the index; put them back with
    /// [`Likes::samples_put`], or call [`Likes::side_tables_tidy`] when they are to go.
    pub(super) fn samples_take(&mut self) -> Option<Box<IndexSamples>> {
        self.side_tables.as_mut()?.samples.take()
    }

    pub(super) fn samples_put(&mut self, samples: Box<IndexSamples>) {
        self.side_tables.get_or_insert_with(Box::default).samples = Some(samples);
    }

    /// Drops the side tables once they hold neither text ids nor samples.
    pub(super) fn side_tables_tidy(&mut self) {
        if self.side_tables.as_ref().is_some_and(|side_tables| {
            side_tables.samples.is_none() && side_tables.texts.by_slot.is_empty()
        }) {
            self.side_tables = None;
        }
    }
}

/// Makes room for the samples of a new chunk at `chunk`; the caller fills them in.
pub(super) fn samples_insert_chunk(samples: &mut IndexSamples, chunk: usize) {
    let at = chunk * LIKES_INDEX_SAMPLES_PER_CHUNK;
    reserve_gently(&mut samples.chunk_first_slots, 1);
    samples.chunk_first_slots.insert(chunk, 0);
    reserve_gently(&mut samples.slots, LIKES_INDEX_SAMPLES_PER_CHUNK);
    samples
        .slots
        .splice(at..at, [0; LIKES_INDEX_SAMPLES_PER_CHUNK]);
    reserve_gently(&mut samples.positions, LIKES_INDEX_SAMPLES_PER_CHUNK);
    samples
        .positions
        .splice(at..at, [0; LIKES_INDEX_SAMPLES_PER_CHUNK]);
}

pub(super) fn samples_remove_chunk(samples: &mut IndexSamples, chunk: usize) {
    let group = chunk * LIKES_INDEX_SAMPLES_PER_CHUNK..(chunk + 1) * LIKES_INDEX_SAMPLES_PER_CHUNK;
    samples.chunk_first_slots.remove(chunk);
    samples.slots.drain(group.clone());
    samples.positions.drain(group);
}
