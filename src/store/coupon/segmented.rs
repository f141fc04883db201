//! [`SegmentedArray`]: a dense array indexed from 0 that grows by appending fixed-size segments, so it never
//! copies itself to grow.
//!
//! A coupon keeps two arrays of this kind: each issued number's holder, and each holder's first number.
//! Both only ever grow at the end (numbers are issued 1, 2, 3, ... and holders are never removed), so a
//! dense array is the smallest index possible (4 bytes an element, no hash, no key) and a lookup is an
//! index. A `Vec` of millions would double in one go, copying everything: a pause on the loop that doubles
//! with each growth. Here a full last segment gets a new one beside it, an allocation whose cost does not
//! depend on the array's size. Only the first segment grows like a `Vec` (4, 8, ... up to
//! [`SEGMENT_LENGTH`]), so a coupon of ten holders doesn't pay for a whole segment; that growth copies at
//! most one segment, a bounded amount.

/// Elements per segment: a power of two so an index splits into segment and offset with a shift and a mask.
/// 16,384 elements of 4 bytes is 64 KiB: the segment list stays short (6,104 segments for the hundred
/// million numbers an event may hand out), and the slack of the last segment is at most 64 KiB.
pub(super) const SEGMENT_LENGTH: usize = 16_384;
const SEGMENT_SHIFT: u32 = SEGMENT_LENGTH.trailing_zeros();
const _: () = assert!(SEGMENT_LENGTH.is_power_of_two());

/// The smallest capacity the first segment starts with.
const FIRST_SEGMENT_CAPACITY_MIN: usize = 4;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct SegmentedArray<T> {
    /// Every segment but the last is full ([`SEGMENT_LENGTH`] elements); none is empty.
    segments: Vec<Vec<T>>,
    len: usize,
}

impl<T: Copy> SegmentedArray<T> {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The element at `index`; panics past the end, like a slice.
    pub(super) fn get(&self, index: usize) -> T {
        assert!(index < self.len, "index {index} out of {}", self.len);
        self.segments[index >> SEGMENT_SHIFT][index & (SEGMENT_LENGTH - 1)]
    }

    /// Replaces the element at `index`; panics past the end, like a slice.
    pub(super) fn set(&mut self, index: usize, value: T) {
        assert!(index < self.len, "index {index} out of {}", self.len);
        self.segments[index >> SEGMENT_SHIFT][index & (SEGMENT_LENGTH - 1)] = value;
    }

    /// Appends `value`: at most one segment's worth of copying (the first segment's growth), otherwise
    /// one allocation of a new segment or none.
    pub(super) fn push(&mut self, value: T) {
        let segment_count = self.segments.len();
        match self.segments.last_mut() {
            Some(segment) if segment.len() < SEGMENT_LENGTH => {
                if segment.len() == segment.capacity() {
                    // The first segment doubles, never past a segment. A later one is short of capacity
                    // only in a clone (`Vec::clone` allocates the length, not the capacity): make it whole.
                    let capacity = if segment_count == 1 {
                        (segment.capacity() * 2).clamp(FIRST_SEGMENT_CAPACITY_MIN, SEGMENT_LENGTH)
                    } else {
                        SEGMENT_LENGTH
                    };
                    segment.reserve_exact(capacity - segment.len());
                }
                segment.push(value);
            }
            _ => {
                let capacity = if segment_count == 0 {
                    FIRST_SEGMENT_CAPACITY_MIN
                } else {
                    SEGMENT_LENGTH
                };
                let mut segment = Vec::with_capacity(capacity);
                segment.push(value);
                self.segments.push(segment);
            }
        }
        self.len += 1;
    }

    /// Appends `count` copies of `value`, a segment at a time (for decoding and tests).
    pub(super) fn extend_filled(&mut self, value: T, count: usize) {
        let mut left = count;
        while left > 0 {
            let room = match self.segments.last() {
                Some(segment) if segment.len() < SEGMENT_LENGTH => SEGMENT_LENGTH - segment.len(),
                _ => {
                    self.segments.push(Vec::new());
                    SEGMENT_LENGTH
                }
            };
            let taken = room.min(left);
            let is_first = self.segments.len() == 1;
            let segment = self.segments.last_mut().expect("pushed above");
            if segment.len() + taken > segment.capacity() {
                // Exact for the first segment, so a short array holds no slack; later segments are whole.
                let capacity = if is_first {
                    segment.len() + taken
                } else {
                    SEGMENT_LENGTH
                };
                segment.reserve_exact(capacity - segment.len());
            }
            segment.resize(segment.len() + taken, value);
            self.len += taken;
            left -= taken;
        }
    }

    /// Every element in index order.
    pub(super) fn iter(&self) -> impl Iterator<Item = T> + '_ {
        self.segments.iter().flatten().copied()
    }

    /// Heap bytes held: the segments by capacity and the segment list.
    pub(super) fn memory_bytes(&self) -> usize {
        let elements: usize = self.segments.iter().map(Vec::capacity).sum();
        elements * std::mem::size_of::<T>()
            + self.segments.capacity() * std::mem::size_of::<Vec<T>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_vec_across_segment_boundaries() {
        let mut array = SegmentedArray::default();
        let mut reference = Vec::new();
        for value in 0..(3 * SEGMENT_LENGTH as u32 + 5) {
            array.push(value);
            reference.push(value);
        }
        array.extend_filled(7, SEGMENT_LENGTH + 3);
        reference.extend(std::iter::repeat_n(7, SEGMENT_LENGTH + 3));
        for index in (0..reference.len()).step_by(97) {
            array.set(index, index as u32 * 3);
            reference[index] = index as u32 * 3;
        }
        assert_eq!(array.len(), reference.len());
        assert!(array.iter().eq(reference.iter().copied()));
        assert!((0..reference.len()).all(|index| array.get(index) == reference[index]));
        // Full segments only, but for the last: the slack is under one segment.
        let slack = array.memory_bytes() / 4 - array.len();
        assert!(slack < SEGMENT_LENGTH + 64, "slack {slack}");
    }

    #[test]
    fn a_short_array_holds_no_whole_segment() {
        let mut array = SegmentedArray::default();
        for value in 0..10u32 {
            array.push(value);
        }
        assert!(array.memory_bytes() < 256, "{}", array.memory_bytes());
        let mut filled = SegmentedArray::default();
        filled.extend_filled(0u32, 10);
        filled.push(1);
        assert!(filled.memory_bytes() < 256, "{}", filled.memory_bytes());
        assert_eq!(
            filled.iter().collect::<Vec<_>>(),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        );
    }

    #[test]
    fn a_clone_grows_like_the_original() {
        let mut array = SegmentedArray::default();
        for value in 0..(SEGMENT_LENGTH as u32 + 10) {
            array.push(value);
        }
        let mut copy = array.clone();
        for value in 0..SEGMENT_LENGTH as u32 {
            array.push(value);
            copy.push(value);
        }
        assert_eq!(copy, array);
        assert!(copy.memory_bytes() <= array.memory_bytes());
    }

    #[test]
    #[should_panic(expected = "out of")]
    fn reading_past_the_end_panics() {
        let mut array = SegmentedArray::default();
        array.push(1u32);
        array.get(1);
    }
}
