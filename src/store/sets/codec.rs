//! A set's snapshot encoding (conventions in `store::encoding`): the member count, then each member as
//! bytes, in the set's order, so a decoded set walks (SSCAN) in the same order.

use super::SetValue;
use crate::store::encoding::{put_bytes, put_count, Reader};
use crate::store::Shared;

pub fn encode(members: &SetValue, out: &mut Vec<u8>) {
    put_count(out, members.len());
    for member in members.iter() {
        put_bytes(out, member);
    }
}

pub fn decode(reader: &mut Reader) -> Result<Shared<SetValue>, String> {
    let count = reader.count(4)?;
    let mut members = Shared::new(SetValue::new());
    for _ in 0..count {
        if !members.insert(reader.bytes()?) {
            return Err("a set member appears twice".to_string());
        }
    }
    Ok(members)
}
