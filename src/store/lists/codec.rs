//! A list's snapshot encoding (conventions in `store::encoding`): the element count, then each element as
//! bytes, head first. The listpack size estimate is rebuilt on decode (a pure function of the elements).

use super::ListValue;
use crate::small_bytes::SmallBytes;
use crate::store::encoding::{put_bytes, put_count, Reader};
use crate::store::Shared;

pub fn encode(list: &ListValue, out: &mut Vec<u8>) {
    put_count(out, list.len());
    for element in list.iter() {
        put_bytes(out, element);
    }
}

pub fn decode(reader: &mut Reader) -> Result<Shared<ListValue>, String> {
    // Each element takes at least its 4-byte length.
    let count = reader.count(4)?;
    let mut list = ListValue::new();
    for _ in 0..count {
        list.push_back(SmallBytes::copy_from_slice(reader.bytes()?));
    }
    Ok(Shared::new(list))
}
