//! RESP replies (and, for tools and tests, requests) as bytes.
//!
//! [`Reply`] is what a command answers; [`encode`] writes it in RESP2 or RESP3. The differences: RESP3 has
//! a null type (`_`), maps (`%`), sets (`~`), doubles (`,`) and booleans (`#`); in RESP2 a map is a flat
//! array of field/value pairs, a set an array, a double a bulk string, and nulls are `$-1` / `*-1`.
use super::{Protocol, Reply};

/// Appends `reply` to `out` in `protocol`.
pub fn encode(reply: &Reply, protocol: Protocol, out: &mut Vec<u8>) {
    match reply {
        Reply::Status(text) => {
            out.push(b'+');
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Reply::Error(text) => {
            out.push(b'-');
            // An error line can't carry CR or LF; Redis replaces them with spaces too.
            out.extend(text.bytes().map(|byte| {
                if byte == b'\r' || byte == b'\n' {
                    b' '
                } else {
                    byte
                }
            }));
            out.extend_from_slice(b"\r\n");
        }
        Reply::Integer(value) => encode_header(out, b':', *value),
        Reply::Bulk(bytes) => encode_bulk(out, bytes),
        Reply::SmallBulk(bytes) => encode_bulk(out, bytes),
        Reply::Null => match protocol {
            Protocol::Resp2 => out.extend_from_slice(b"$-1\r\n"),
            Protocol::Resp3 => out.extend_from_slice(b"_\r\n"),
        },
        Reply::NullArray => match protocol {
            Protocol::Resp2 => out.extend_from_slice(b"*-1\r\n"),
            Protocol::Resp3 => out.extend_from_slice(b"_\r\n"),
        },
        Reply::Array(items) => {
            encode_header(out, b'*', items.len() as i64);
            for item in items {
                encode(item, protocol, out);
            }
        }
        Reply::Set(items) => {
            let marker = if protocol == Protocol::Resp3 {
                b'~'
            } else {
                b'*'
            };
            encode_header(out, marker, items.len() as i64);
            for item in items {
                encode(item, protocol, out);
            }
        }
        Reply::Map(pairs) => {
            match protocol {
                Protocol::Resp3 => encode_header(out, b'%', pairs.len() as i64),
                Protocol::Resp2 => encode_header(out, b'*', 2 * pairs.len() as i64),
            }
            for (field, value) in pairs {
                encode(field, protocol, out);
                encode(value, protocol, out);
            }
        }
        Reply::Double(value) => {
            let text = format_double(*value);
            match protocol {
                Protocol::Resp3 => {
                    out.push(b',');
                    out.extend_from_slice(text.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                Protocol::Resp2 => encode_bulk(out, text.as_bytes()),
            }
        }
        Reply::Verbatim(format, bytes) => match protocol {
            Protocol::Resp3 => {
                encode_header(out, b'=', bytes.len() as i64 + 4);
                out.extend_from_slice(format.as_bytes());
                out.push(b':');
                out.extend_from_slice(bytes);
                out.extend_from_slice(b"\r\n");
            }
            Protocol::Resp2 => encode_bulk(out, bytes),
        },
        Reply::Raw(bytes) => out.extend_from_slice(bytes),
    }
}

/// Writes `$<length>\r\n<bytes>\r\n`.
pub fn encode_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    encode_header(out, b'$', bytes.len() as i64);
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// Writes `<marker><value>\r\n`, the shape of integers and of every length header.
pub fn encode_header(out: &mut Vec<u8>, marker: u8, value: i64) {
    out.push(marker);
    let mut digits = itoa::Buffer::new();
    out.extend_from_slice(digits.format(value).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Formats a double the way Redis's RESP3 does: `inf`, `-inf`, `nan`, otherwise the shortest text that
/// reads back as the same value.
pub fn format_double(value: f64) -> String {
    if value.is_nan() {
        "nan".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        format!("{value}")
    }
}

/// Encodes a command as a multibulk request, as a client sends it (used by tools and tests).
pub fn encode_request(arguments: &[&[u8]], out: &mut Vec<u8>) {
    encode_header(out, b'*', arguments.len() as i64);
    for argument in arguments {
        encode_bulk(out, argument);
    }
}
