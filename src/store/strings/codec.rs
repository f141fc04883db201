//! A string's snapshot encoding: its bytes, with no length of their own (the entry's value length says
//! it; see `store::encoding`).

use crate::small_bytes::SmallBytes;

pub fn encode(value: &SmallBytes, out: &mut Vec<u8>) {
    out.extend_from_slice(value);
}

pub fn decode(bytes: &[u8]) -> SmallBytes {
    SmallBytes::copy_from_slice(bytes)
}
