//! The byte encoding of values in a snapshot: little-endian integers, length-prefixed byte strings, the
//! entry that frames one key's value, and the dispatch to each value type's own `codec.rs` by type tag.
//!
//! # Conventions (protocol.md copies them)
//! - `u8`, `u32`, `u64`: little-endian, no padding.
//! - bytes: `u32` length, then the bytes (a string value is at most 512 MiB, so it always fits).
//! - an optional `u64`: a `u8` flag (0 absent, 1 present), then the `u64` when present.
//! - a sequence: a `u64` count, then the elements.
//!
//! Each type encodes its exact internal state (not the commands that built it), so a decoded value is
//! equal (`PartialEq`) to the encoded one and answers every command the same way, including the
//! idempotency caches and walk cursors that make a repeat or a resumed walk behave. Indexes that are pure
//! functions of other fields (a stock's deadline order, a coupon's number-to-holder table) are rebuilt on
//! decode rather than stored.
//!
//! Decoding never trusts a count: a count larger than the bytes left could hold is an error before any
//! allocation, so a damaged (or hostile) snapshot can't make the loader allocate without bound. Checksums
//! live one level up (`aof::snapshot`); what reaches `decode` has passed them, so an error here means an
//! incompatible build or a bug, and start-up refuses with the message.

use super::{coupon, likes, lists, queue, sets, stock, strings, throttle, Shared, Value};

/// The type tag of each value in a snapshot entry.
pub const TAG_STRING: u8 = 1;
pub const TAG_SET: u8 = 2;
pub const TAG_COUPON: u8 = 3;
pub const TAG_STOCK: u8 = 4;
pub const TAG_LIKES: u8 = 5;
pub const TAG_QUEUE: u8 = 6;
pub const TAG_THROTTLE: u8 = 7;
pub const TAG_LIST: u8 = 8;

pub fn put_u8(out: &mut Vec<u8>, value: u8) {
    out.push(value);
}

pub fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// A count of elements, as a `u64`.
pub fn put_count(out: &mut Vec<u8>, count: usize) {
    put_u64(out, count as u64);
}

pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let length = u32::try_from(bytes.len()).expect("byte strings are at most 512 MiB");
    put_u32(out, length);
    out.extend_from_slice(bytes);
}

pub fn put_option_u64(out: &mut Vec<u8>, value: Option<u64>) {
    match value {
        None => put_u8(out, 0),
        Some(value) => {
            put_u8(out, 1);
            put_u64(out, value);
        }
    }
}

pub fn put_u32s(out: &mut Vec<u8>, values: &[u32]) {
    put_count(out, values.len());
    out.reserve(values.len() * 4);
    for value in values {
        put_u32(out, *value);
    }
}

/// A cursor over encoded bytes. Every read checks that the bytes are there.
pub struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, offset: 0 }
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    pub fn take(&mut self, length: usize) -> Result<&'a [u8], String> {
        if length > self.remaining() {
            return Err(format!(
                "{length} bytes needed at offset {} but only {} left",
                self.offset,
                self.remaining()
            ));
        }
        let slice = &self.bytes[self.offset..self.offset + length];
        self.offset += length;
        Ok(slice)
    }

    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    pub fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], String> {
        let length = self.u32()? as usize;
        self.take(length)
    }

    pub fn option_u64(&mut self) -> Result<Option<u64>, String> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.u64()?)),
            flag => Err(format!(
                "bad option flag {flag} at offset {}",
                self.offset - 1
            )),
        }
    }

    /// A count of elements each at least `element_size_min` bytes long, checked against the bytes left.
    pub fn count(&mut self, element_size_min: usize) -> Result<usize, String> {
        let count = self.u64()?;
        let room = (self.remaining() / element_size_min.max(1)) as u64;
        if count > room {
            return Err(format!(
                "a count of {count} at offset {} is more than the {} bytes left can hold",
                self.offset - 8,
                self.remaining()
            ));
        }
        Ok(count as usize)
    }

    pub fn u32s(&mut self) -> Result<Vec<u32>, String> {
        let count = self.count(4)?;
        (0..count).map(|_| self.u32()).collect()
    }

    /// Succeeds only when every byte was read: trailing bytes mean a format mismatch.
    pub fn finish(&self) -> Result<(), String> {
        if self.remaining() != 0 {
            return Err(format!(
                "{} unexpected bytes after the value at offset {}",
                self.remaining(),
                self.offset
            ));
        }
        Ok(())
    }
}

/// A type that can be written to and read back from a snapshot.
pub trait Codec: Sized {
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(reader: &mut Reader) -> Result<Self, String>;
}

impl Codec for u64 {
    fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, *self);
    }

    fn decode(reader: &mut Reader) -> Result<Self, String> {
        reader.u64()
    }
}

impl Codec for Box<[u8]> {
    fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, self);
    }

    fn decode(reader: &mut Reader) -> Result<Self, String> {
        Ok(reader.bytes()?.into())
    }
}

/// One snapshot entry: key (bytes), expiry (optional `u64`), type tag (`u8`), value length (`u64`) and
/// the value's bytes. The length lets a checker skip a value it can't decode.
pub fn encode_entry(key: &[u8], value: &Value, expires_at_ms: Option<u64>, out: &mut Vec<u8>) {
    put_bytes(out, key);
    put_option_u64(out, expires_at_ms);
    let tag_at = out.len();
    put_u8(out, 0);
    put_u64(out, 0);
    let value_at = out.len();
    out[tag_at] = encode_value(value, out);
    let value_length = (out.len() - value_at) as u64;
    out[tag_at + 1..value_at].copy_from_slice(&value_length.to_le_bytes());
}

/// An entry whose value a snapshot took by handle (`Value::share`) rather than serializing it on the
/// loop; the snapshot writer thread serializes it with [`SharedEntry::encode`].
#[derive(Debug)]
pub struct SharedEntry {
    pub key: Box<[u8]>,
    pub expires_at_ms: Option<u64>,
    pub value: Value,
}

impl SharedEntry {
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_entry(&self.key, &self.value, self.expires_at_ms, out);
    }
}

/// One entry as [`encode_entry`] wrote it, the value still encoded.
pub struct RawEntry<'a> {
    pub key: &'a [u8],
    pub expires_at_ms: Option<u64>,
    pub tag: u8,
    pub value: &'a [u8],
}

pub fn read_entry<'a>(reader: &mut Reader<'a>) -> Result<RawEntry<'a>, String> {
    let key = reader.bytes()?;
    let expires_at_ms = reader.option_u64()?;
    let tag = reader.u8()?;
    let length = usize::try_from(reader.u64()?).map_err(|_| "value length overflows")?;
    let value = reader.take(length)?;
    Ok(RawEntry {
        key,
        expires_at_ms,
        tag,
        value,
    })
}

/// Appends `value`'s encoding to `out` and returns its type tag. Every value type has an arm here.
pub fn encode_value(value: &Value, out: &mut Vec<u8>) -> u8 {
    match value {
        Value::String(bytes) => {
            strings::codec::encode(bytes, out);
            TAG_STRING
        }
        Value::Set(members) => {
            sets::codec::encode(members, out);
            TAG_SET
        }
        Value::Coupon(coupon) => {
            coupon.encode(out);
            TAG_COUPON
        }
        Value::Stock(stock) => {
            stock.encode(out);
            TAG_STOCK
        }
        Value::Likes(likes) => {
            likes.encode(out);
            TAG_LIKES
        }
        Value::Queue(room) => {
            room.encode(out);
            TAG_QUEUE
        }
        Value::Throttle(throttle) => {
            throttle.encode(out);
            TAG_THROTTLE
        }
        Value::List(list) => {
            lists::codec::encode(list, out);
            TAG_LIST
        }
    }
}

/// The value encoded as `bytes` with type `tag` (all of `bytes`, nothing after it). In debug builds the
/// value's invariants are checked right after decoding (a pair assertion with the checks the commands
/// make as they change it): what passed the snapshot's checksums and still breaks one was written by a
/// bug.
pub fn decode_value(tag: u8, bytes: &[u8]) -> Result<Value, String> {
    decode_value_within(tag, bytes, &sets::SetEncodingLimits::default())
}

/// [`decode_value`] for a store whose set encoding thresholds are `set_limits`: a decoded set picks its
/// encoding under them, as if its members had been added by one SADD.
pub fn decode_value_within(
    tag: u8,
    bytes: &[u8],
    set_limits: &sets::SetEncodingLimits,
) -> Result<Value, String> {
    let value = decode_value_unchecked(tag, bytes, set_limits)?;
    #[cfg(debug_assertions)]
    value.check_invariants();
    Ok(value)
}

fn decode_value_unchecked(
    tag: u8,
    bytes: &[u8],
    set_limits: &sets::SetEncodingLimits,
) -> Result<Value, String> {
    let mut reader = Reader::new(bytes);
    let value = match tag {
        // A string is its bytes, with no length: the entry's value length says it.
        TAG_STRING => return Ok(Value::String(strings::codec::decode(bytes))),
        TAG_SET => Value::Set(sets::codec::decode(&mut reader, set_limits)?),
        TAG_COUPON => Value::Coupon(Shared::new(coupon::Coupon::decode(&mut reader)?)),
        TAG_STOCK => Value::Stock(Shared::new(stock::Stock::decode(&mut reader)?)),
        TAG_LIKES => Value::Likes(Shared::new(likes::Likes::decode(&mut reader)?)),
        TAG_QUEUE => Value::Queue(Shared::new(queue::WaitingRoom::decode(&mut reader)?)),
        TAG_THROTTLE => Value::Throttle(throttle::Throttle::decode(&mut reader)?),
        TAG_LIST => Value::List(lists::codec::decode(&mut reader)?),
        _ => return Err(format!("unknown value type tag {tag}")),
    };
    reader.finish()?;
    Ok(value)
}

/// Registers the internal deadline of a freshly decoded value with the keyspace's timers, as the
/// command that last changed it would have.
pub fn value_deadline_ms(value: &Value) -> Option<u64> {
    match value {
        Value::Stock(stock) => stock.next_expiry_ms(),
        Value::Queue(room) => room.next_deadline_ms(),
        Value::Throttle(throttle) => Some(throttle.stale_at_ms()),
        Value::String(_) | Value::Set(_) | Value::Coupon(_) | Value::Likes(_) => None,
        Value::List(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SetValue;
    use bytes::Bytes;

    #[test]
    fn reader_refuses_counts_the_bytes_cannot_hold() {
        let mut out = Vec::new();
        put_u64(&mut out, 1 << 40);
        put_u32(&mut out, 7);
        let mut reader = Reader::new(&out);
        assert!(reader.count(4).is_err());
    }

    #[test]
    fn strings_and_sets_round_trip() {
        let mut set = SetValue::default();
        set.insert(Bytes::from_static(b"a"));
        set.insert(Bytes::from_static(b""));
        set.insert(Bytes::from_static(b"\x00\xff"));
        for value in [
            Value::String(crate::small_bytes::SmallBytes::from(&b"hello\r\n"[..])),
            Value::Set(Shared::new(set)),
        ] {
            let mut out = Vec::new();
            let tag = encode_value(&value, &mut out);
            let decoded = decode_value(tag, &out).expect("decodes");
            match (&value, &decoded) {
                (Value::String(a), Value::String(b)) => assert_eq!(a, b),
                (Value::Set(a), Value::Set(b)) => {
                    assert!(a.iter().eq(b.iter()), "same members in the same order")
                }
                _ => panic!("type changed"),
            }
        }
    }

    #[test]
    fn truncated_values_are_errors_not_panics() {
        let mut set = SetValue::default();
        set.insert(Bytes::from_static(b"member"));
        let mut out = Vec::new();
        let tag = encode_value(&Value::Set(Shared::new(set)), &mut out);
        for cut in 0..out.len() {
            assert!(decode_value(tag, &out[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode_value(99, &out).is_err());
    }
}
