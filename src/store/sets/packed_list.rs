//! [`PackedList`]: a small set as one flat byte buffer of length-prefixed members (Redis's `listpack`).
//!
//! # Layout
//! One byte buffer: each member is its length as an unsigned LEB128 number (one byte up to 127 bytes, two
//! up to 16,383), then its bytes, members one after another in the order they were added (a removal
//! closes the gap). The member count is kept beside the buffer so `len` costs nothing. A set of 100
//! members of 20 bytes is one allocation of 2,100 bytes, where a table would be 100 entries of 40 bytes
//! plus buckets.
//!
//! # Guarantees
//! - Members are distinct (the set checks with [`PackedList::position_of`] before it appends).
//! - Work per operation is a walk of the buffer at most, and the buffer holds at most
//!   `limits::SET_COMPACT_ENTRIES_CEILING` members of at most `limits::SET_LISTPACK_VALUE_CEILING` bytes
//!   (the set converts to a table before either is passed).

/// The members of a small set, packed; see the module doc.
#[derive(Clone, Debug, Default)]
pub struct PackedList {
    bytes: Vec<u8>,
    len: usize,
}

/// Reads a LEB128 length at `offset`; returns it and the offset of the member's first byte.
fn read_length(bytes: &[u8], offset: usize) -> (usize, usize) {
    let mut length = 0usize;
    let mut shift = 0;
    let mut offset = offset;
    loop {
        let byte = bytes[offset];
        offset += 1;
        length |= ((byte & 0x7f) as usize) << shift;
        if byte & 0x80 == 0 {
            return (length, offset);
        }
        shift += 7;
    }
}

fn write_length(out: &mut Vec<u8>, mut length: usize) {
    while length >= 0x80 {
        out.push((length as u8 & 0x7f) | 0x80);
        length >>= 7;
    }
    out.push(length as u8);
}

/// Walks the members: each is `(start of its length prefix, its bytes)`.
struct Walk<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for Walk<'a> {
    type Item = (usize, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.offset >= self.bytes.len() {
            return None;
        }
        let start = self.offset;
        let (length, member_start) = read_length(self.bytes, start);
        self.offset = member_start + length;
        Some((start, &self.bytes[member_start..self.offset]))
    }
}

impl PackedList {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn walk(&self) -> Walk<'_> {
        Walk {
            bytes: &self.bytes,
            offset: 0,
        }
    }

    /// The members in the buffer's order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.walk().map(|(_, member)| member)
    }

    /// The position of `member`, if present.
    pub fn position_of(&self, member: &[u8]) -> Option<usize> {
        self.iter().position(|stored| stored == member)
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        self.iter().any(|stored| stored == member)
    }

    /// The member at `position` (below `len`).
    pub fn get(&self, position: usize) -> &[u8] {
        self.iter().nth(position).expect("position below len")
    }

    /// Appends `member`, which must not be present (the set checks first).
    pub fn push(&mut self, member: &[u8]) {
        debug_assert!(!self.contains(member));
        let prefix = if member.len() < 0x80 { 1 } else { 2 };
        self.bytes.reserve_exact(prefix + member.len());
        write_length(&mut self.bytes, member.len());
        self.bytes.extend_from_slice(member);
        self.len += 1;
    }

    /// Removes `member`; false if it was not there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        let Some((start, stored)) = self.walk().find(|(_, stored)| *stored == member) else {
            return false;
        };
        let end = stored.as_ptr() as usize - self.bytes.as_ptr() as usize + stored.len();
        self.cut(start, end);
        true
    }

    /// Removes and returns the member at `position` (below `len`); the members after it move down one.
    pub fn remove_at(&mut self, position: usize) -> Vec<u8> {
        let (start, stored) = self.walk().nth(position).expect("position below len");
        let member = stored.to_vec();
        let end = stored.as_ptr() as usize - self.bytes.as_ptr() as usize + stored.len();
        self.cut(start, end);
        member
    }

    fn cut(&mut self, start: usize, end: usize) {
        self.bytes.drain(start..end);
        self.len -= 1;
        if self.bytes.capacity() > 2 * self.bytes.len() + 64 {
            self.bytes.shrink_to_fit();
        }
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// The buffer parses to exactly `len` members, with no member twice.
    pub fn check_invariants(&self) {
        let members: Vec<&[u8]> = self.iter().collect();
        assert_eq!(members.len(), self.len, "listpack count");
        let distinct: std::collections::HashSet<&[u8]> = members.iter().copied().collect();
        assert_eq!(distinct.len(), members.len(), "a listpack member twice");
    }
}
