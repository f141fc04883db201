//! [`Key`]: the bytes of one key name, stored inline when short.
//!
//! Why: a lookup compares the probed entry's key with the request's. With `Bytes` (32 bytes plus a separate
//! heap allocation) every compare chased a pointer to another cache line, and every new key cost a
//! `malloc` and later a `free`. A `Key` of up to [`KEY_INLINE_LENGTH_MAX`] bytes (nearly all real key
//! names: `user:1234`, `key:000000012345`, `session:<uuid>` without dashes) keeps its bytes inside the
//! 32-byte value itself, so the compare touches only the map entry and a new key allocates nothing.
//! Longer keys live in one exact-size heap allocation.
//!
//! Guarantees:
//! - A `Key` hashes, compares and orders exactly as the `[u8]` it holds (`Hash`, `Eq` and `Ord` all
//!   delegate to the slice), so maps keyed by `Key` can be probed with `&[u8]` through `Borrow<[u8]>`, and
//!   a hash computed over `&[u8]` finds the stored `Key`.
//! - Whether a key is inline is decided by its length alone, so equal keys always have the same form.
//! - `size_of::<Key>()` is 32, the size of the `Bytes` it replaces: no map entry grows.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// The longest key kept inline: 32 bytes less the enum's tag and the length byte.
pub const KEY_INLINE_LENGTH_MAX: usize = 30;

/// The bytes of a key name; see the module documentation.
#[derive(Clone)]
pub struct Key(Representation);

#[derive(Clone)]
enum Representation {
    /// `bytes[..length]` is the key; the rest is zero (unused, but keeps `Clone` a plain copy).
    Inline {
        length: u8,
        bytes: [u8; KEY_INLINE_LENGTH_MAX],
    },
    /// Longer than `KEY_INLINE_LENGTH_MAX`.
    Heap(Box<[u8]>),
}

const _: () = assert!(std::mem::size_of::<Key>() == 32);
const _: () = assert!(KEY_INLINE_LENGTH_MAX <= u8::MAX as usize);

impl Key {
    /// A key holding a copy of `bytes`.
    pub fn copy_from_slice(bytes: &[u8]) -> Key {
        if bytes.len() <= KEY_INLINE_LENGTH_MAX {
            let mut inline = [0; KEY_INLINE_LENGTH_MAX];
            inline[..bytes.len()].copy_from_slice(bytes);
            Key(Representation::Inline {
                length: bytes.len() as u8,
                bytes: inline,
            })
        } else {
            Key(Representation::Heap(Box::from(bytes)))
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

    /// Bytes this key holds on the heap, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        match &self.0 {
            Representation::Inline { .. } => 0,
            Representation::Heap(bytes) => bytes.len(),
        }
    }
}

impl Deref for Key {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Hash for Key {
    /// Exactly the slice's hash (length prefix, then the bytes), as `Borrow<[u8]>` requires.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl PartialEq<[u8]> for Key {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_bytes() == other
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Debug for Key {
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

impl From<&[u8]> for Key {
    fn from(bytes: &[u8]) -> Key {
        Key::copy_from_slice(bytes)
    }
}

impl From<&str> for Key {
    fn from(text: &str) -> Key {
        Key::copy_from_slice(text.as_bytes())
    }
}

impl From<Key> for bytes::Bytes {
    fn from(key: Key) -> bytes::Bytes {
        match key.0 {
            Representation::Inline { .. } => bytes::Bytes::copy_from_slice(key.as_bytes()),
            // The allocation moves into the `Bytes`: no copy.
            Representation::Heap(bytes) => bytes::Bytes::from(bytes),
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
    fn short_keys_are_inline_and_long_keys_on_the_heap() {
        for length in 0..=KEY_INLINE_LENGTH_MAX + 2 {
            let bytes = vec![b'k'; length];
            let key = Key::copy_from_slice(&bytes);
            assert_eq!(key.as_bytes(), &bytes[..]);
            assert_eq!(key.len(), length);
            assert_eq!(key.is_inline(), length <= KEY_INLINE_LENGTH_MAX);
            assert_eq!(key.heap_bytes(), if key.is_inline() { 0 } else { length });
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
                format!("{:?}", Key::copy_from_slice(text)),
                format!("{:?}", bytes::Bytes::copy_from_slice(text))
            );
        }
    }

    #[test]
    fn a_map_keyed_by_key_is_probed_by_slice() {
        let mut map: HashMap<Key, u32, ahash::RandomState> = HashMap::default();
        map.insert(Key::from("short"), 1);
        map.insert(Key::from(&[b'l'; 64][..]), 2);
        assert_eq!(map.get(&b"short"[..]), Some(&1));
        assert_eq!(map.get(&[b'l'; 64][..]), Some(&2));
        assert_eq!(map.get(&b"shor"[..]), None);
    }

    fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
        // Lengths around the inline limit matter most; small alphabets make equal prefixes likely.
        prop_oneof![
            proptest::collection::vec(0u8..4, 0..=KEY_INLINE_LENGTH_MAX + 4),
            proptest::collection::vec(any::<u8>(), 0..80),
        ]
    }

    proptest! {
        #[test]
        fn hashes_compares_and_orders_as_the_slice(left in any_bytes(), right in any_bytes()) {
            let hasher = ahash::RandomState::new();
            let (left_key, right_key) = (Key::copy_from_slice(&left), Key::copy_from_slice(&right));
            prop_assert_eq!(left_key.as_bytes(), &left[..]);
            prop_assert_eq!(&*left_key.clone(), &left[..]);
            prop_assert_eq!(hash_one(&hasher, &left_key), hash_one(&hasher, &left[..]));
            // The keyspace hashes the borrowed `&[u8]`; a `Key` must give the same hash.
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
            let keys: BTreeSet<(u64, Key)> = entries
                .iter()
                .map(|(at, bytes)| (*at, Key::copy_from_slice(bytes)))
                .collect();
            let slices: BTreeSet<(u64, Vec<u8>)> = entries.iter().cloned().collect();
            let keys: Vec<(u64, Vec<u8>)> =
                keys.into_iter().map(|(at, key)| (at, key.to_vec())).collect();
            prop_assert_eq!(keys, slices.into_iter().collect::<Vec<_>>());
        }
    }
}
