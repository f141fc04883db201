//! The dense, segmented array that holds a table's entries.
//!
//! Entries live in fixed-size segments of [`SEGMENT_SLOTS`] slots each, so the array never copies itself
//! when it grows: a full last segment gets a new one beside it, whose allocation costs the same at any
//! size. Only the first segment grows like a `Vec` (4, 8, ... up to [`SEGMENT_SLOTS`]), so a table of three
//! members doesn't pay for four thousand; that growth copies at most one segment, a bounded amount.
//!
//! Removal is a swap-remove (the last slot fills the hole), which keeps the array dense: a random index
//! below `len` is a uniformly random entry, and no tombstones are ever swept. A segment emptied by
//! removals is kept as a spare until the next-to-last segment is less than half full, so a set that
//! oscillates around a segment boundary doesn't allocate and free a segment on every command.

/// Slots per segment: a power of two so an index splits into segment and offset with a shift and a mask.
/// 4,096 slots of a 40-byte entry is 160 KiB: large enough that the segment list stays short (2,442
/// segments for ten million entries), small enough that copying the first segment while it grows, or the
/// slack of a half-empty last segment, is negligible.
pub(super) const SEGMENT_SLOTS: usize = 4096;
const SEGMENT_SHIFT: u32 = SEGMENT_SLOTS.trailing_zeros();
const _: () = assert!(SEGMENT_SLOTS.is_power_of_two());

/// One entry and its place in a bucket chain. The hash is cached so rehashing and chain walks never rehash
/// keys, and so comparisons skip most key comparisons; 32 bits index up to 2^32 buckets.
#[derive(Clone, Debug)]
pub(super) struct Slot<K, V> {
    pub(super) key: K,
    pub(super) value: V,
    pub(super) hash: u32,
    /// The next slot in the same bucket, as index + 1; 0 ends the chain.
    pub(super) next: u32,
}

#[derive(Clone, Debug)]
pub(super) struct Slots<K, V> {
    segments: Vec<Vec<Slot<K, V>>>,
    /// A segment emptied by removals, kept for the next growth past the boundary.
    spare: Option<Vec<Slot<K, V>>>,
    len: usize,
}

impl<K, V> Default for Slots<K, V> {
    fn default() -> Self {
        Slots {
            segments: Vec::new(),
            spare: None,
            len: 0,
        }
    }
}

impl<K, V> Slots<K, V> {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn get(&self, index: usize) -> &Slot<K, V> {
        &self.segments[index >> SEGMENT_SHIFT][index & (SEGMENT_SLOTS - 1)]
    }

    pub(super) fn get_mut(&mut self, index: usize) -> &mut Slot<K, V> {
        &mut self.segments[index >> SEGMENT_SHIFT][index & (SEGMENT_SLOTS - 1)]
    }

    /// Appends a slot and returns its index.
    pub(super) fn push(&mut self, slot: Slot<K, V>) -> usize {
        let index = self.len;
        match self.segments.last_mut() {
            Some(segment) if segment.len() < SEGMENT_SLOTS => {
                if segment.len() == segment.capacity() {
                    // The first segment grows from small, and the last segment of a clone has no spare
                    // capacity (`Vec::clone` allocates the length only): double it, never past a segment.
                    let capacity = (segment.capacity() * 2).clamp(4, SEGMENT_SLOTS);
                    segment.reserve_exact(capacity - segment.len());
                }
                segment.push(slot);
            }
            _ => {
                let mut segment = self
                    .spare
                    .take()
                    .unwrap_or_else(|| Vec::with_capacity(SEGMENT_SLOTS));
                debug_assert!(segment.is_empty());
                segment.push(slot);
                self.segments.push(segment);
            }
        }
        self.len += 1;
        index
    }

    /// Removes the slot at `index` by moving the last slot into its place; returns the removed slot.
    /// The caller relinks the moved slot (it was at index `len - 1`, it is now at `index`).
    pub(super) fn swap_remove(&mut self, index: usize) -> Slot<K, V> {
        assert!(index < self.len, "slot index {index} out of {}", self.len);
        let last_segment = self.segments.last_mut().expect("a slot exists");
        let last = last_segment.pop().expect("segments are never left empty");
        let removed = if index == self.len - 1 {
            last
        } else {
            std::mem::replace(self.get_mut(index), last)
        };
        self.len -= 1;
        self.release_memory();
        removed
    }

    /// Gives memory back as the array empties, a bounded amount per call: an emptied segment becomes the
    /// spare, the spare is freed once the last segment is less than half full, and the first segment
    /// halves its capacity when it is under a quarter full (copying at most half a segment).
    fn release_memory(&mut self) {
        if self
            .segments
            .last()
            .is_some_and(|segment| segment.is_empty())
        {
            let emptied = self.segments.pop().expect("checked above");
            if self.segments.is_empty() {
                // The table is empty: keep nothing at all.
                *self = Slots::default();
                return;
            }
            self.spare = Some(emptied);
        }
        let last_length = self.segments.last().map_or(0, Vec::len);
        if self.spare.is_some() && last_length < SEGMENT_SLOTS / 2 {
            self.spare = None;
        }
        if let [only] = self.segments.as_mut_slice() {
            if only.capacity() > 8 && only.len() < only.capacity() / 4 {
                only.shrink_to(only.capacity() / 2);
            }
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Slot<K, V>> + '_ {
        self.segments.iter().flatten()
    }

    pub(super) fn clear(&mut self) {
        *self = Slots::default();
    }

    /// Bytes held by the segments (capacity, not length) and the segment list.
    pub(super) fn memory_bytes(&self) -> usize {
        let slot = std::mem::size_of::<Slot<K, V>>();
        let segments: usize = self
            .segments
            .iter()
            .map(|segment| segment.capacity() * slot)
            .sum();
        let spare = self
            .spare
            .as_ref()
            .map_or(0, |segment| segment.capacity() * slot);
        segments + spare + self.segments.capacity() * std::mem::size_of::<Vec<Slot<K, V>>>()
    }
}
