//! A set's snapshot encoding (conventions in `store::encoding`): the member count, then each member as
//! bytes, in the set's position order. The same for every encoding: the loader adds the members as one
//! SADD of them all would, so it picks the encoding under the loading store's thresholds (as Redis's
//! loader does), and `dibs-aof dump` and the collection serializer see a list of members whatever the
//! encoding. A set loaded into the same encoding walks (SSCAN) in the same order.

use super::{SetEncodingLimits, SetValue};
use crate::store::encoding::{put_bytes, put_count, Reader};
use crate::store::Shared;

pub fn encode(members: &SetValue, out: &mut Vec<u8>) {
    put_count(out, members.len());
    for member in members.iter() {
        put_bytes(out, &member);
    }
}

pub fn decode(reader: &mut Reader, limits: &SetEncodingLimits) -> Result<Shared<SetValue>, String> {
    let count = reader.count(4)?;
    if count == 0 {
        return Err("a stored set is never empty".to_string());
    }
    let first = reader.bytes()?;
    let mut members = SetValue::for_members(first, count, limits);
    members.insert_within(first, limits);
    for _ in 1..count {
        if !members.insert_within(reader.bytes()?, limits) {
            return Err("a set member appears twice".to_string());
        }
    }
    Ok(Shared::new(members))
}
