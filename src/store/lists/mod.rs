//! The `list` value type: Redis's ordered sequence of byte strings, pushed and popped at both ends.
//!
//! A list is a `VecDeque` of [`SmallBytes`]: pushing and popping at either end is O(1), indexing is O(1)
//! (LINDEX, LSET, LRANGE's start), and inserting or removing in the middle (LINSERT, LREM) is O(n), as in
//! Redis. A list that loses its last element is deleted, as in Redis, so a stored list is never empty.
//!
//! # What `OBJECT ENCODING` says
//! Redis 7.2 and later keep a small list in one listpack and a large one in a quicklist (a linked list of
//! listpacks), and name them so; Redis 7.0 answers `quicklist` for every list. [`encoding_name`] answers
//! as Redis 7.2 does with its default `list-max-listpack-size -2`: `listpack` while the list's listpack
//! encoding would fit in 8 KiB (`limits::LIST_LISTPACK_BYTES_MAX`), `quicklist` past it. The size is
//! Redis's listpack layout estimated element by element ([`listpack_entry_bytes`]) and kept as a running
//! total, so the answer costs nothing. Redis converts a quicklist back only once it shrinks to half the
//! limit; this answer has no such memory and follows the current size alone. The storage here is the same
//! `VecDeque` either way.

pub mod codec;
pub mod commands;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use crate::limits;
use crate::small_bytes::SmallBytes;

/// The elements of one list, head first, with the running estimate of their listpack size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListValue {
    elements: VecDeque<SmallBytes>,
    /// The sum of [`listpack_entry_bytes`] over the elements: what `encoding_name` reads.
    listpack_bytes: usize,
}

impl ListValue {
    pub fn new() -> ListValue {
        ListValue::default()
    }

    pub fn len(&self) -> usize {
        self.elements.len()
    }

    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// The element at `index` from the head.
    pub fn get(&self, index: usize) -> Option<&SmallBytes> {
        self.elements.get(index)
    }

    pub fn iter(&self) -> std::collections::vec_deque::Iter<'_, SmallBytes> {
        self.elements.iter()
    }

    /// Elements `start..end` from the head (`end` at most `len`).
    pub fn range(
        &self,
        start: usize,
        end: usize,
    ) -> std::collections::vec_deque::Iter<'_, SmallBytes> {
        self.elements.range(start..end)
    }

    pub fn push_front(&mut self, element: SmallBytes) {
        self.listpack_bytes += listpack_entry_bytes(&element);
        self.elements.push_front(element);
    }

    pub fn push_back(&mut self, element: SmallBytes) {
        self.listpack_bytes += listpack_entry_bytes(&element);
        self.elements.push_back(element);
    }

    pub fn pop_front(&mut self) -> Option<SmallBytes> {
        let element = self.elements.pop_front()?;
        self.listpack_bytes -= listpack_entry_bytes(&element);
        Some(element)
    }

    pub fn pop_back(&mut self) -> Option<SmallBytes> {
        let element = self.elements.pop_back()?;
        self.listpack_bytes -= listpack_entry_bytes(&element);
        Some(element)
    }

    /// Pushes at the head (`Side::Left`) or the tail.
    pub fn push(&mut self, side: Side, element: SmallBytes) {
        match side {
            Side::Left => self.push_front(element),
            Side::Right => self.push_back(element),
        }
    }

    /// Pops from the head (`Side::Left`) or the tail.
    pub fn pop(&mut self, side: Side) -> Option<SmallBytes> {
        match side {
            Side::Left => self.pop_front(),
            Side::Right => self.pop_back(),
        }
    }

    /// Replaces the element at `index` (below `len`).
    pub fn set(&mut self, index: usize, element: SmallBytes) {
        self.listpack_bytes += listpack_entry_bytes(&element);
        let old = std::mem::replace(&mut self.elements[index], element);
        self.listpack_bytes -= listpack_entry_bytes(&old);
    }

    /// Inserts `element` so that it is at `index` (at most `len`).
    pub fn insert(&mut self, index: usize, element: SmallBytes) {
        self.listpack_bytes += listpack_entry_bytes(&element);
        self.elements.insert(index, element);
    }

    /// Keeps only the elements `start..end` (`start <= end <= len`).
    pub fn keep_range(&mut self, start: usize, end: usize) {
        for element in self.elements.drain(end..) {
            self.listpack_bytes -= listpack_entry_bytes(&element);
        }
        for element in self.elements.drain(..start) {
            self.listpack_bytes -= listpack_entry_bytes(&element);
        }
    }

    /// Keeps the elements for which `keep` answers true, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&SmallBytes) -> bool) {
        let mut removed_bytes = 0;
        self.elements.retain(|element| {
            let kept = keep(element);
            if !kept {
                removed_bytes += listpack_entry_bytes(element);
            }
            kept
        });
        self.listpack_bytes -= removed_bytes;
    }

    /// The estimated size of this list as one Redis listpack (header and end byte included).
    pub fn listpack_bytes(&self) -> usize {
        LISTPACK_HEADER_BYTES + self.listpack_bytes + 1
    }
}

impl FromIterator<SmallBytes> for ListValue {
    fn from_iter<I: IntoIterator<Item = SmallBytes>>(elements: I) -> ListValue {
        let mut list = ListValue::new();
        for element in elements {
            list.push_back(element);
        }
        list
    }
}

/// An end of a list: LEFT is the head, RIGHT the tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

impl Side {
    /// The word Redis uses for it in LMOVE's arguments, as logged.
    pub fn word(self) -> &'static [u8] {
        match self {
            Side::Left => b"LEFT",
            Side::Right => b"RIGHT",
        }
    }
}

/// A listpack's total-bytes (4) and element-count (2) header.
const LISTPACK_HEADER_BYTES: usize = 6;

/// How many bytes Redis's listpack spends on `element`: its encoding (a small integer in 1 to 9 bytes, a
/// string with a 1-, 2- or 5-byte length header) plus the back-length that lets it be walked backwards.
pub fn listpack_entry_bytes(element: &[u8]) -> usize {
    let encoded = match canonical_integer(element) {
        Some(0..=127) => 1,
        Some(-4096..=4095) => 2,
        Some(-32_768..=32_767) => 3,
        Some(-8_388_608..=8_388_607) => 4,
        Some(-2_147_483_648..=2_147_483_647) => 5,
        Some(_) => 9,
        None => {
            element.len()
                + match element.len() {
                    0..=63 => 1,
                    64..=4095 => 2,
                    _ => 5,
                }
        }
    };
    let back_length = match encoded {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        2_097_152..=268_435_455 => 4,
        _ => 5,
    };
    encoded + back_length
}

/// The integer `element` spells, if it spells one the way Redis would print it back (no sign on zero, no
/// leading zeros, no spaces): only such strings go into a listpack as integers.
fn canonical_integer(element: &[u8]) -> Option<i64> {
    if element.is_empty() || element.len() > 20 {
        return None;
    }
    let value: i64 = std::str::from_utf8(element).ok()?.parse().ok()?;
    let mut digits = itoa::Buffer::new();
    (digits.format(value).as_bytes() == element).then_some(value)
}

/// What `OBJECT ENCODING` answers for `list` (see the module documentation).
pub fn encoding_name(list: &ListValue) -> &'static str {
    if list.listpack_bytes() <= limits::LIST_LISTPACK_BYTES_MAX {
        "listpack"
    } else {
        "quicklist"
    }
}

/// What `TYPE` says for a list key.
pub const TYPE_NAME: &str = "list";

/// Checks what every stored list guarantees: it is not empty (the command that removes the last element
/// deletes the key), and its running listpack size is the sum over its elements.
pub fn check_invariants(list: &ListValue) {
    assert!(!list.is_empty(), "a stored list is never empty");
    let total: usize = list
        .iter()
        .map(|element| listpack_entry_bytes(element))
        .sum();
    assert_eq!(
        total, list.listpack_bytes,
        "the running listpack size matches the elements"
    );
}
