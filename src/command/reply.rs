//! Reply shapes several commands share.

use bytes::Bytes;

use crate::resp::Reply;

/// Formats an integer as the bytes Redis would store for it.
pub fn integer_bytes(value: i64) -> Bytes {
    let mut buffer = itoa::Buffer::new();
    Bytes::copy_from_slice(buffer.format(value).as_bytes())
}

/// A count or quantity as an integer reply. Every one is bounded far below `i64::MAX` by `limits`;
/// saturating keeps a broken bound from ever panicking the loop.
pub fn integer_reply(value: u64) -> Reply {
    Reply::Integer(i64::try_from(value).unwrap_or(i64::MAX))
}

/// A status word (`OK`, `SOLDOUT`, ...) as a bulk string, so every client library hands it to the
/// application as a plain string.
pub fn status(word: &'static str) -> Reply {
    Reply::Bulk(Bytes::from_static(word.as_bytes()))
}

/// The reply shape SCAN and SSCAN share: `[cursor, [element, ...]]`.
pub fn scan_reply(cursor: u64, elements: Vec<Bytes>) -> Reply {
    let mut digits = itoa::Buffer::new();
    Reply::Array(vec![
        Reply::bulk(digits.format(cursor).as_bytes()),
        Reply::Array(elements.into_iter().map(Reply::Bulk).collect()),
    ])
}
