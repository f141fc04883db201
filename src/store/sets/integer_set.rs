//! [`IntegerSet`]: a small set of integers as one sorted array of packed numbers (Redis's `intset`).
//!
//! # Layout
//! One byte buffer of `len * width` bytes: each member a little-endian signed integer of `width` bytes (2, 4
//! or 8), in ascending order. The width is the smallest that holds every member added so far; adding a
//! member that needs more widens every member once (a removal never narrows it back, as in Redis). The
//! buffer is reserved exactly, so a set of 100 small numbers costs 200 bytes plus the `Vec`.
//!
//! # Guarantees
//! - Members are distinct and strictly ascending: a lookup is a binary search, and a position is a rank.
//! - Only members whose bytes are an integer's canonical decimal form (`resp::parse_integer`: no sign but
//!   `-`, no leading zero, no `-0`, within `i64`) go here, so writing a member back as decimal gives the
//!   exact bytes that were added.
//! - Work per change is a copy of the buffer at most (`limits::SET_COMPACT_ENTRIES_CEILING` members of 8
//!   bytes).

/// A sorted array of distinct integers packed at the narrowest width that holds them all.
#[derive(Clone, Debug, Default)]
pub struct IntegerSet {
    /// Bytes per member: 2, 4 or 8 (0 only while empty and never widened).
    width: usize,
    bytes: Vec<u8>,
}

/// The bytes a member needs: 2, 4 or 8.
fn width_of(value: i64) -> usize {
    if i16::try_from(value).is_ok() {
        2
    } else if i32::try_from(value).is_ok() {
        4
    } else {
        8
    }
}

impl IntegerSet {
    pub fn len(&self) -> usize {
        self.bytes.len().checked_div(self.width).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The member at `position` (below `len`), in ascending order.
    pub fn get(&self, position: usize) -> i64 {
        let start = position * self.width;
        let bytes = &self.bytes[start..start + self.width];
        match self.width {
            2 => i16::from_le_bytes(bytes.try_into().expect("2 bytes")) as i64,
            4 => i32::from_le_bytes(bytes.try_into().expect("4 bytes")) as i64,
            _ => i64::from_le_bytes(bytes.try_into().expect("8 bytes")),
        }
    }

    fn put(&mut self, position: usize, value: i64) {
        let start = position * self.width;
        let target = &mut self.bytes[start..start + self.width];
        match self.width {
            2 => target.copy_from_slice(&(value as i16).to_le_bytes()),
            4 => target.copy_from_slice(&(value as i32).to_le_bytes()),
            _ => target.copy_from_slice(&value.to_le_bytes()),
        }
    }

    /// `Ok(position)` of `value`, or `Err(position)` where it would go.
    fn search(&self, value: i64) -> Result<usize, usize> {
        if width_of(value) > self.width {
            // Wider than every member: below or above them all.
            return Err(if value < 0 { 0 } else { self.len() });
        }
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let middle = (low + high) / 2;
            match self.get(middle).cmp(&value) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Ok(middle),
            }
        }
        Err(low)
    }

    pub fn contains(&self, value: i64) -> bool {
        self.search(value).is_ok()
    }

    /// Adds `value`; false if it was there already.
    pub fn insert(&mut self, value: i64) -> bool {
        let position = match self.search(value) {
            Ok(_) => return false,
            Err(position) => position,
        };
        let width = width_of(value).max(self.width);
        if width > self.width {
            self.widen(width);
        }
        let length = self.len();
        self.bytes.reserve_exact(self.width);
        self.bytes.resize((length + 1) * self.width, 0);
        let start = position * self.width;
        self.bytes
            .copy_within(start..length * self.width, start + self.width);
        self.put(position, value);
        true
    }

    /// Re-encodes every member at `width` bytes (from the last, so nothing is overwritten before it is
    /// read).
    fn widen(&mut self, width: usize) {
        let length = self.len();
        let old_width = self.width;
        let values: Vec<i64> = (0..length).map(|position| self.get(position)).collect();
        debug_assert!(width > old_width);
        self.width = width;
        self.bytes = Vec::with_capacity((length + 1) * width);
        self.bytes.resize(length * width, 0);
        for (position, value) in values.into_iter().enumerate() {
            self.put(position, value);
        }
    }

    /// Removes `value`; false if it was not there.
    pub fn remove(&mut self, value: i64) -> bool {
        match self.search(value) {
            Ok(position) => {
                self.remove_at(position);
                true
            }
            Err(_) => false,
        }
    }

    /// Removes and returns the member at `position` (below `len`); the members after it move down one.
    pub fn remove_at(&mut self, position: usize) -> i64 {
        let value = self.get(position);
        let start = position * self.width;
        self.bytes.drain(start..start + self.width);
        if self.bytes.capacity() > 2 * self.bytes.len() + 64 {
            self.bytes.shrink_to_fit();
        }
        value
    }

    /// The members in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(|position| self.get(position))
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// Members strictly ascending, width one of 2, 4, 8 (0 only when empty).
    pub fn check_invariants(&self) {
        assert!(
            matches!(self.width, 2 | 4 | 8) || (self.width == 0 && self.bytes.is_empty()),
            "intset width {}",
            self.width
        );
        assert!(self.width == 0 || self.bytes.len().is_multiple_of(self.width));
        for position in 1..self.len() {
            assert!(
                self.get(position - 1) < self.get(position),
                "intset members out of order at {position}"
            );
        }
    }
}
