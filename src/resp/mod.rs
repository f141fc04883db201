//! RESP: the incremental request decoder and the reply encoder. Never touches a socket.
//!
//! # Layout
//! - `decode`: requests, multibulk or inline, decoded incrementally from a client's unconsumed bytes.
//! - `encode`: a [`Reply`] in RESP2 or RESP3.
//! - this module: the vocabulary both share, [`Reply`] and [`Protocol`].

use std::borrow::Cow;

use bytes::Bytes;

use crate::small_bytes::SmallBytes;

mod decode;
mod encode;

pub use decode::{
    parse_integer, peek_second_arguments, split_arguments, DecodeLimits, ProtocolError, Request,
    RequestDecoder,
};
pub use encode::{encode, encode_bulk, encode_header, encode_request, format_double};

/// A command's answer, before encoding.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`: a status line, no CR or LF inside.
    Status(Cow<'static, str>),
    /// `-ERR ...`: the whole line after `-`, starting with the error code (`ERR`, `WRONGTYPE`, ...).
    Error(Cow<'static, str>),
    Integer(i64),
    Bulk(Bytes),
    /// A bulk string held as a string value holds it: a copy of a short one is inline and a long one shared,
    /// so answering GET allocates nothing.
    SmallBulk(SmallBytes),
    /// RESP2 `$-1`, RESP3 `_`.
    Null,
    /// RESP2 `*-1`, RESP3 `_`.
    NullArray,
    Array(Vec<Reply>),
    /// RESP3 `%`; RESP2 a flat array of field/value pairs.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 `~`; RESP2 an array.
    Set(Vec<Reply>),
    /// RESP3 `,`; RESP2 a bulk string.
    Double(f64),
    /// RESP3 `=`; RESP2 a bulk string. The format is three letters, such as `txt`.
    Verbatim(&'static str, Bytes),
    /// Bytes already encoded (a transaction's collected replies, for example), written unchanged.
    Raw(Vec<u8>),
}

impl Reply {
    pub const OK: Reply = Reply::Status(Cow::Borrowed("OK"));

    pub fn error(text: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Error(text.into())
    }

    pub fn bulk(bytes: &[u8]) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(bytes))
    }

    pub fn status(text: &'static str) -> Reply {
        Reply::Status(Cow::Borrowed(text))
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
}

/// Which protocol a connection speaks (HELLO 2 or HELLO 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Resp2,
    Resp3,
}

#[cfg(test)]
mod tests;
