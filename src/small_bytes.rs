//! [`SmallBytes`]: an immutable byte string stored inline when short; the type of key names and of
//! string values.
//!
//! Why: a lookup compares the probed entry's key with the request's. With `Bytes` (32 bytes plus a separate
//! heap allocation) every compare chased a pointer to another cache line, and every new key or string value
//! cost a `malloc` and later a `free` (SET replaces a value, INCR rewrote its digits each time). Up to
//! `limits::SMALL_BYTES_INLINE_LENGTH_MAX` bytes (nearly all key names, such as `user:1234` or
//! `key:000000012345`, and every counter's digits) live inside the 32-byte value itself: the compare
//! touches only the map entry, and making, replacing or copying one allocates nothing. Longer ones live in
//! one shared heap allocation (`Arc<[u8]>`), so a copy (a GET reply, an expiry index entry) is a reference
//! count, as with `Bytes`.
//!
//! Guarantees:
//! - A `SmallBytes` hashes, compares and orders exactly as the `[u8]` it holds (`Hash`, `Eq` and `Ord` all
//!   delegate to the slice), so maps keyed by it can be probed with `&[u8]` through `Borrow<[u8]>`, and a
//!   hash computed over `&[u8]` finds the stored value.
//! - Whether the bytes are inline is decided by their length alone, so equal values have the same form.
//! - `size_of::<SmallBytes>()` is 32, the size of the `Bytes` it replaces: no map entry grows, and the
//!   enum's tag leaves a niche, so `Value` (which holds one) stays 32 bytes too.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use crate::limits::SMALL_BYTES_INLINE_LENGTH_MAX;

/// A key name or a string value; see the module documentation.
#[derive(Clone)]
pub struct SmallBytes(Representation);

#[derive(Clone)]
enum Representation {
    /// `bytes[..length]` are the bytes; the rest is zero (never read).
    Inline {
        length: u8,
        bytes: [u8; SMALL_BYTES_INLINE_LENGTH_MAX],
    },
    /// Longer than `SMALL_BYTES_INLINE_LENGTH_MAX`; shared, so cloning never copies.
    Heap(Arc<[u8]>),
}

const _: () = assert!(std::mem::size_of::<SmallBytes>() == 32);

impl SmallBytes {
    /// A copy of `bytes`.
    pub fn copy_from_slice(bytes: &[u8]) -> SmallBytes {
        if bytes.len() <= SMALL_BYTES_INLINE_LENGTH_MAX {
            let mut inline = [0; SMALL_BYTES_INLINE_LENGTH_MAX];
            inline[..bytes.len()].copy_from_slice(bytes);
            SmallBytes(Representation::Inline {
                length: bytes.len() as u8,
                bytes: inline,
            })
        } else {
            SmallBytes(Representation::Heap(Arc::from(bytes)))
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Representation::Inline { length, bytes } => &bytes[..*length as usize],
            Representation::Heap(bytes) => bytes,
        }
    }

    /// Whether the bytes are held inside the value (no heap allocation).
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Representation::Inline { .. })
    }
}

impl Deref for SmallBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for SmallBytes {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<[u8]> for SmallBytes {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Hash for SmallBytes {
    /// Exactly the slice's hash (length prefix, then the bytes), as `Borrow<[u8]>` requires.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl PartialEq for SmallBytes {
    fn eq(&self, other: &SmallBytes) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for SmallBytes {}

impl PartialEq<[u8]> for SmallBytes {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_bytes() == other
    }
}

impl PartialOrd for SmallBytes {
    fn partial_cmp(&self, other: &SmallBytes) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SmallBytes {
    fn cmp(&self, other: &SmallBytes) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Debug for SmallBytes {
    /// As `Bytes` prints: `b"name"` with non-printable bytes escaped.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("b\"")?;
        for &byte in self.as_bytes() {
            match byte {
                b'\n' => formatter.write_str("\\n")?,
                b'\r' => formatter.write_str("\\r")?,
                b'\t' => formatter.write_str("\\t")?,
                b'\0' => formatter.write_str("\\0")?,
                b'\\' | b'"' => write!(formatter, "\\{}", byte as char)?,
                0x20..=0x7e => write!(formatter, "{}", byte as char)?,
                _ => write!(formatter, "\\x{byte:02x}")?,
            }
        }
        formatter.write_str("\"")
    }
}

impl From<&[u8]> for SmallBytes {
    fn from(bytes: &[u8]) -> SmallBytes {
        SmallBytes::copy_from_slice(bytes)
    }
}

impl From<&str> for SmallBytes {
    fn from(text: &str) -> SmallBytes {
        SmallBytes::copy_from_slice(text.as_bytes())
    }
}

impl From<SmallBytes> for bytes::Bytes {
    fn from(small: SmallBytes) -> bytes::Bytes {
        match small.0 {
            Representation::Inline { .. } => bytes::Bytes::copy_from_slice(small.as_bytes()),
            // The shared allocation moves into the `Bytes`: no copy.
            Representation::Heap(bytes) => bytes::Bytes::from_owner(bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeSet, HashMap};
    use std::hash::BuildHasher;

    fn hash_one(hasher: &ahash::RandomState, value: impl Hash) -> u64 {
        BuildHasher::hash_one(hasher, value)
    }

    #[test]
    fn short_byte_strings_are_inline_and_long_ones_shared_on_the_heap() {
        for length in 0..=SMALL_BYTES_INLINE_LENGTH_MAX + 2 {
            let bytes = vec![b'k'; length];
            let key = SmallBytes::copy_from_slice(&bytes);
            assert_eq!(key.as_bytes(), &bytes[..]);
            assert_eq!(key.len(), length);
            assert_eq!(key.is_inline(), length <= SMALL_BYTES_INLINE_LENGTH_MAX);
            // A clone of a long one shares its allocation (a GET reply costs a reference count).
            let clone = key.clone();
            assert_eq!(clone, key);
            assert_eq!(clone.as_ptr() == key.as_ptr(), !key.is_inline());
        }
    }

    #[test]
    fn debug_prints_as_bytes_does() {
        for text in [
            &b"user:1"[..],
            b"",
            b"a\"b\\c\x00\xff\n\r\t\x7f ~",
            &[b'x'; 40],
        ] {
            assert_eq!(
                format!("{:?}", SmallBytes::copy_from_slice(text)),
                format!("{:?}", bytes::Bytes::copy_from_slice(text))
            );
        }
    }

    #[test]
    fn a_map_keyed_by_key_is_probed_by_slice() {
        let mut map: HashMap<SmallBytes, u32, ahash::RandomState> = HashMap::default();
        map.insert(SmallBytes::from("short"), 1);
        map.insert(SmallBytes::from(&[b'l'; 64][..]), 2);
        assert_eq!(map.get(&b"short"[..]), Some(&1));
        assert_eq!(map.get(&[b'l'; 64][..]), Some(&2));
        assert_eq!(map.get(&b"shor"[..]), None);
    }

    fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
        // Lengths around the inline limit matter most; small alphabets make equal prefixes likely.
        prop_oneof![
            proptest::collection::vec(0u8..4, 0..=SMALL_BYTES_INLINE_LENGTH_MAX + 4),
            proptest::collection::vec(any::<u8>(), 0..80),
        ]
    }

    proptest! {
        #[test]
        fn hashes_compares_and_orders_as_the_slice(left in any_bytes(), right in any_bytes()) {
            let hasher = ahash::RandomState::new();
            let (left_key, right_key) = (SmallBytes::copy_from_slice(&left), SmallBytes::copy_from_slice(&right));
            prop_assert_eq!(left_key.as_bytes(), &left[..]);
            prop_assert_eq!(&*left_key.clone(), &left[..]);
            prop_assert_eq!(hash_one(&hasher, &left_key), hash_one(&hasher, &left[..]));
            // The keyspace hashes the borrowed `&[u8]`; a `SmallBytes` must give the same hash.
            let borrowed: &[u8] = left_key.borrow();
            prop_assert_eq!(hash_one(&hasher, borrowed), hash_one(&hasher, &left[..]));
            prop_assert_eq!(left_key == right_key, left == right);
            prop_assert_eq!(left_key.cmp(&right_key), left.cmp(&right));
            prop_assert_eq!(left_key.partial_cmp(&right_key), left.partial_cmp(&right));
            prop_assert_eq!(bytes::Bytes::from(left_key), bytes::Bytes::from(left));
        }

        #[test]
        fn an_ordered_set_of_keys_matches_one_of_slices(
            entries in proptest::collection::vec((0u64..4, any_bytes()), 0..40),
        ) {
            let keys: BTreeSet<(u64, SmallBytes)> = entries
                .iter()
                .map(|(at, bytes)| (*at, SmallBytes::copy_from_slice(bytes)))
                .collect();
            let slices: BTreeSet<(u64, Vec<u8>)> = entries.iter().cloned().collect();
            let keys: Vec<(u64, Vec<u8>)> =
                keys.into_iter().map(|(at, key)| (at, key.to_vec())).collect();
            prop_assert_eq!(keys, slices.into_iter().collect::<Vec<_>>());
        }
    }
}
