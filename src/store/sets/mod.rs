//! The `set` value type: Redis's unordered collection of distinct byte strings.
//!
//! A set that loses its last member is deleted, as in Redis, so a stored set is never empty.
//!
//! # Encodings (Redis 7.2's, with its names and thresholds)
//! - `intset` ([`IntegerSet`]): every member is an integer in canonical decimal form and there are at
//!   most `set-max-intset-entries` (512) of them: one sorted array of 2-, 4- or 8-byte numbers.
//! - `listpack` ([`PackedList`]): at most `set-max-listpack-entries` (128) members of at most
//!   `set-max-listpack-value` (64) bytes each: one flat buffer of length-prefixed members.
//! - `hashtable`: a [`Table`] of [`SmallBytes`], which grows and shrinks a few buckets at a time, so a set
//!   of millions adds no pause to the loop as it crosses a power of two; a member up to 30 bytes lives
//!   inside its entry.
//!
//! A set starts as Redis's `setTypeCreate` decides from the first member and the number of members the
//! command brings (an `intset` if the first is an integer and they fit, else a `listpack` if they fit in
//! count, else a `hashtable`), and converts once, one way, when an added member does not fit: an `intset`
//! gets a non-integer (to a `listpack` if the set is under the listpack's count and every member fits in
//! its value length, else a `hashtable`) or passes its count (`hashtable`); a `listpack` passes its count
//! or gets a longer member (`hashtable`). Removals never convert back. The thresholds are the store's
//! [`SetEncodingLimits`] when the member is added, so replay, running the same commands with the same
//! thresholds, rebuilds the same encodings. A snapshot holds only the members; loading one adds them as
//! one SADD would (Redis's loader also picks the encoding from the members).
//!
//! # Positions
//! A position (`0..len`) names a member in each encoding: SPOP and SRANDMEMBER draw one. In a `hashtable`
//! removal moves the last member into the hole (O(1)), and SSCAN walks positions (see `commands`); in the
//! compact encodings a removal closes the gap, and SSCAN returns the whole set in one call with cursor 0,
//! as Redis does for them (they are small by definition).

pub mod codec;
pub mod commands;
mod integer_set;
mod packed_list;
#[cfg(test)]
mod tests;

use std::ops::Deref;

use super::keyspace::Hasher;
use super::table::Table;
use crate::limits::{SET_COMPACT_ENTRIES_CEILING, SET_LISTPACK_VALUE_CEILING};
use crate::small_bytes::SmallBytes;
pub use integer_set::IntegerSet;
pub use packed_list::PackedList;

/// The thresholds between a set's encodings (CONFIG `set-max-intset-entries`, `set-max-listpack-entries`,
/// `set-max-listpack-value`); Redis's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetEncodingLimits {
    pub intset_entries_max: usize,
    pub listpack_entries_max: usize,
    pub listpack_value_length_max: usize,
}

impl Default for SetEncodingLimits {
    fn default() -> Self {
        SetEncodingLimits {
            intset_entries_max: 512,
            listpack_entries_max: 128,
            listpack_value_length_max: 64,
        }
    }
}

impl SetEncodingLimits {
    /// Refuses a threshold past its ceiling in `limits` (a compact encoding's work per command is linear
    /// in its size, so the ceilings bound that work); names the problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.intset_entries_max > SET_COMPACT_ENTRIES_CEILING
            || self.listpack_entries_max > SET_COMPACT_ENTRIES_CEILING
        {
            return Err(format!(
                "argument must be between 0 and {SET_COMPACT_ENTRIES_CEILING} inclusive"
            ));
        }
        if self.listpack_value_length_max > SET_LISTPACK_VALUE_CEILING {
            return Err(format!(
                "argument must be between 0 and {SET_LISTPACK_VALUE_CEILING} inclusive"
            ));
        }
        Ok(())
    }
}

/// A member as bytes: borrowed from a `listpack` or `hashtable`, or an `intset` number written in decimal.
#[derive(Clone, Copy)]
pub enum MemberBytes<'a> {
    Stored(&'a [u8]),
    Integer { length: u8, digits: [u8; 20] },
}

impl<'a> MemberBytes<'a> {
    fn integer(value: i64) -> MemberBytes<'a> {
        let mut buffer = itoa::Buffer::new();
        let text = buffer.format(value).as_bytes();
        let mut digits = [0; 20];
        digits[..text.len()].copy_from_slice(text);
        MemberBytes::Integer {
            length: text.len() as u8,
            digits,
        }
    }

    pub fn to_small_bytes(&self) -> SmallBytes {
        SmallBytes::copy_from_slice(self)
    }
}

impl Deref for MemberBytes<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            MemberBytes::Stored(bytes) => bytes,
            MemberBytes::Integer { length, digits } => &digits[..*length as usize],
        }
    }
}

impl PartialEq for MemberBytes<'_> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl std::fmt::Debug for MemberBytes<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_small_bytes().fmt(formatter)
    }
}

/// The members of one set in one of three encodings; see the module doc.
#[derive(Debug, Clone)]
pub struct SetValue {
    encoding: Encoding,
}

#[derive(Debug, Clone)]
enum Encoding {
    Integers(IntegerSet),
    Packed(PackedList),
    Table(Table<SmallBytes, (), Hasher>),
}

impl Default for SetValue {
    fn default() -> Self {
        SetValue {
            encoding: Encoding::Integers(IntegerSet::default()),
        }
    }
}

/// The integer `member` is, if its bytes are an integer's canonical decimal form.
fn as_integer(member: &[u8]) -> Option<i64> {
    crate::resp::parse_integer(member)
}

impl SetValue {
    /// An empty set in the encoding Redis's `setTypeCreate` picks for a command adding `first` and
    /// `count - 1` more members.
    pub fn for_members(first: &[u8], count: usize, limits: &SetEncodingLimits) -> SetValue {
        let encoding = if as_integer(first).is_some() && count <= limits.intset_entries_max {
            Encoding::Integers(IntegerSet::default())
        } else if count <= limits.listpack_entries_max {
            Encoding::Packed(PackedList::default())
        } else {
            Encoding::Table(Table::default())
        };
        SetValue { encoding }
    }

    /// An empty `intset` (the encoding `for_members` picks for an integer under the defaults).
    pub fn new() -> SetValue {
        SetValue::default()
    }

    /// What OBJECT ENCODING says: `intset`, `listpack` or `hashtable`.
    pub fn encoding_name(&self) -> &'static str {
        match self.encoding {
            Encoding::Integers(_) => "intset",
            Encoding::Packed(_) => "listpack",
            Encoding::Table(_) => "hashtable",
        }
    }

    /// Whether SSCAN returns the whole set in one call (the compact encodings, as in Redis).
    pub fn is_compact(&self) -> bool {
        !matches!(self.encoding, Encoding::Table(_))
    }

    pub fn len(&self) -> usize {
        match &self.encoding {
            Encoding::Integers(integers) => integers.len(),
            Encoding::Packed(packed) => packed.len(),
            Encoding::Table(table) => table.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.encoding {
            Encoding::Integers(integers) => {
                as_integer(member).is_some_and(|value| integers.contains(value))
            }
            Encoding::Packed(packed) => packed.contains(member),
            Encoding::Table(table) => table.contains_key(member),
        }
    }

    /// Adds a copy of `member` under Redis's default thresholds; false if it was there already. For tests
    /// and tools: commands pass the store's thresholds to [`SetValue::insert_within`].
    pub fn insert(&mut self, member: impl AsRef<[u8]>) -> bool {
        self.insert_within(member.as_ref(), &SetEncodingLimits::default())
    }

    /// Adds a copy of `member`, converting the encoding first if `member` does not fit it under `limits`
    /// (see the module doc); false if it was there already (and then nothing changes).
    pub fn insert_within(&mut self, member: &[u8], limits: &SetEncodingLimits) -> bool {
        match &mut self.encoding {
            Encoding::Integers(integers) => {
                if let Some(value) = as_integer(member) {
                    if integers.contains(value) {
                        return false;
                    }
                    if integers.len() < limits.intset_entries_max {
                        return integers.insert(value);
                    }
                    self.convert_to_table();
                } else if integers.len() < limits.listpack_entries_max
                    && member.len() <= limits.listpack_value_length_max
                    && integers.iter().all(|value| {
                        MemberBytes::integer(value).len() <= limits.listpack_value_length_max
                    })
                {
                    self.convert_to_packed();
                    let Encoding::Packed(packed) = &mut self.encoding else {
                        unreachable!("converted just above");
                    };
                    packed.push(member);
                    return true;
                } else {
                    self.convert_to_table();
                }
            }
            Encoding::Packed(packed) => {
                if packed.contains(member) {
                    return false;
                }
                if packed.len() < limits.listpack_entries_max
                    && member.len() <= limits.listpack_value_length_max
                {
                    packed.push(member);
                    return true;
                }
                self.convert_to_table();
            }
            Encoding::Table(_) => {}
        }
        let Encoding::Table(table) = &mut self.encoding else {
            unreachable!("the compact encodings returned or converted above");
        };
        table
            .insert_if_absent_with(member, || (SmallBytes::copy_from_slice(member), ()))
            .1
    }

    fn convert_to_packed(&mut self) {
        let Encoding::Integers(integers) = &self.encoding else {
            unreachable!("only an intset becomes a listpack");
        };
        let mut packed = PackedList::default();
        for value in integers.iter() {
            packed.push(&MemberBytes::integer(value));
        }
        self.encoding = Encoding::Packed(packed);
    }

    /// Moves every member into a table: at most `limits::SET_COMPACT_ENTRIES_CEILING` of them, once in the
    /// set's life.
    fn convert_to_table(&mut self) {
        let mut table = Table::default();
        for member in self.iter() {
            table.insert_if_absent_with(&*member, || (member.to_small_bytes(), ()));
        }
        self.encoding = Encoding::Table(table);
    }

    /// Removes `member` (in a `hashtable` moving the last member into its position); false if it was not
    /// there.
    pub fn swap_remove(&mut self, member: &[u8]) -> bool {
        match &mut self.encoding {
            Encoding::Integers(integers) => {
                as_integer(member).is_some_and(|value| integers.remove(value))
            }
            Encoding::Packed(packed) => packed.remove(member),
            Encoding::Table(table) => table.remove(member).is_some(),
        }
    }

    /// The member at `position` (below `len`).
    pub fn get_index(&self, position: usize) -> Option<MemberBytes<'_>> {
        if position >= self.len() {
            return None;
        }
        Some(match &self.encoding {
            Encoding::Integers(integers) => MemberBytes::integer(integers.get(position)),
            Encoding::Packed(packed) => MemberBytes::Stored(packed.get(position)),
            Encoding::Table(table) => {
                MemberBytes::Stored(table.get_index(position).expect("below len").0)
            }
        })
    }

    /// The members at `positions` (each below `len`), walking a `listpack` once rather than per position.
    pub fn get_indexes(&self, positions: &[usize]) -> Vec<SmallBytes> {
        match &self.encoding {
            Encoding::Packed(packed) => {
                let members: Vec<&[u8]> = packed.iter().collect();
                positions
                    .iter()
                    .map(|&position| SmallBytes::copy_from_slice(members[position]))
                    .collect()
            }
            _ => positions
                .iter()
                .map(|&position| {
                    self.get_index(position)
                        .expect("below len")
                        .to_small_bytes()
                })
                .collect(),
        }
    }

    /// Removes the member at `position` (in a `hashtable` moving the last member into it).
    pub fn swap_remove_index(&mut self, position: usize) -> Option<SmallBytes> {
        if position >= self.len() {
            return None;
        }
        Some(match &mut self.encoding {
            Encoding::Integers(integers) => {
                MemberBytes::integer(integers.remove_at(position)).to_small_bytes()
            }
            Encoding::Packed(packed) => SmallBytes::copy_from_slice(&packed.remove_at(position)),
            Encoding::Table(table) => table.swap_remove_index(position).expect("below len").0,
        })
    }

    /// The members in position order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = MemberBytes<'_>> + '_> {
        match &self.encoding {
            Encoding::Integers(integers) => Box::new(integers.iter().map(MemberBytes::integer)),
            Encoding::Packed(packed) => Box::new(packed.iter().map(MemberBytes::Stored)),
            Encoding::Table(table) => {
                Box::new(table.iter().map(|(member, ())| MemberBytes::Stored(member)))
            }
        }
    }

    /// Heap bytes the members take (not counting the `SetValue` itself).
    pub fn memory_bytes(&self) -> usize {
        match &self.encoding {
            Encoding::Integers(integers) => integers.memory_bytes(),
            Encoding::Packed(packed) => packed.memory_bytes(),
            Encoding::Table(table) => table.memory_bytes(),
        }
    }

    /// Moves up to `buckets` buckets of a resize in progress; true while one is still in progress (never
    /// for the compact encodings, which do not resize in steps).
    pub fn rehash_step(&mut self, buckets: usize) -> bool {
        match &mut self.encoding {
            Encoding::Table(table) => table.rehash_step(buckets),
            _ => false,
        }
    }

    fn check_encoding(&self) {
        match &self.encoding {
            Encoding::Integers(integers) => integers.check_invariants(),
            Encoding::Packed(packed) => packed.check_invariants(),
            Encoding::Table(_) => {}
        }
    }

    /// Whether the members' table is between two bucket arrays (the loop finishes the move).
    pub fn is_rehashing(&self) -> bool {
        match &self.encoding {
            Encoding::Table(table) => table.is_rehashing(),
            _ => false,
        }
    }

    /// Heap bytes of the members' table (segments and bucket arrays), not counting members' own heap; 0
    /// for the compact encodings.
    pub fn table_memory_bytes(&self) -> usize {
        match &self.encoding {
            Encoding::Table(table) => table.memory_bytes(),
            _ => 0,
        }
    }
}

/// Set equality: the same members, whatever their order or encoding.
impl PartialEq for SetValue {
    fn eq(&self, other: &SetValue) -> bool {
        self.len() == other.len() && self.iter().all(|member| other.contains(&member))
    }
}

impl Eq for SetValue {}

impl<Member: AsRef<[u8]>> FromIterator<Member> for SetValue {
    fn from_iter<I: IntoIterator<Item = Member>>(members: I) -> SetValue {
        let mut set = SetValue::new();
        for member in members {
            set.insert(member);
        }
        set
    }
}

/// What `TYPE` says for a set key.
pub const TYPE_NAME: &str = "set";

/// Checks what every stored set guarantees: it is not empty (the command that removes the last member
/// deletes the key), and its encoding's own layout (an intset sorted, a listpack's count and distinct
/// members). Distinct members in a table are the table's own guarantee.
pub fn check_invariants(set: &SetValue) {
    assert!(!set.is_empty(), "a stored set is never empty");
    set.check_encoding();
}
