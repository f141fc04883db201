//! RESP: the incremental request decoder and the reply encoder. Never touches a socket.
//!
//! # Requests
//! A request is either a multibulk (`*<count>\r\n` then `count` times `$<length>\r\n<bytes>\r\n`) or an
//! inline command (`PING\r\n`, split on spaces with redis-cli style quoting). The decoder is incremental: it is
//! handed the client's unconsumed bytes after every read, remembers how far it got, and answers
//! `Ok(None)` ("incomplete" is a normal result, not an error) until a whole request is there. Arguments are
//! returned as byte ranges into the caller's buffer, so a multibulk is never copied.
//!
//! Nothing is allocated in proportion to a declared size: `*1000000` reserves room for a few arguments and
//! grows as they arrive, and `$400000000` reserves nothing; the bytes themselves are what the connection
//! buffers, bounded by the query buffer limit.
//!
//! Errors are protocol errors with Redis's wording; the connection replies `-ERR Protocol error: ...` and
//! closes.
//!
//! # Replies
//! [`Reply`] is what a command answers; [`encode`] writes it in RESP2 or RESP3. The differences: RESP3 has
//! a null type (`_`), maps (`%`), sets (`~`), doubles (`,`) and booleans (`#`); in RESP2 a map is a flat
//! array of field/value pairs, a set an array, a double a bulk string, and nulls are `$-1` / `*-1`.

use std::borrow::Cow;
use std::ops::Range;

use bytes::Bytes;

use crate::limits;
use crate::small_bytes::SmallBytes;

/// A malformed request. The text follows `Protocol error: ` in the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub &'static str);

/// Bounds applied while decoding; they are tighter for clients that have not authenticated yet.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    pub argument_count_max: usize,
    pub bulk_length_max: usize,
    pub authenticated: bool,
}

impl DecodeLimits {
    pub const AUTHENTICATED: DecodeLimits = DecodeLimits {
        argument_count_max: limits::MULTIBULK_COUNT_MAX,
        bulk_length_max: limits::BULK_LENGTH_MAX,
        authenticated: true,
    };
    pub const UNAUTHENTICATED: DecodeLimits = DecodeLimits {
        argument_count_max: limits::UNAUTHENTICATED_ARGUMENT_COUNT_MAX,
        bulk_length_max: limits::UNAUTHENTICATED_BULK_LENGTH_MAX,
        authenticated: false,
    };
}

/// One decoded request.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// A multibulk; the arguments are `ranges` into the buffer passed to `decode`, read with
    /// [`RequestDecoder::argument_ranges`].
    Multibulk { consumed: usize },
    /// An inline command, unquoted into owned arguments. May be empty (a blank line), which Redis ignores.
    Inline {
        consumed: usize,
        arguments: Vec<Vec<u8>>,
    },
    /// `*0` or a negative count: Redis ignores these without a reply.
    Empty { consumed: usize },
}

/// How many argument slots to reserve up front for a multibulk, whatever count it declares.
const ARGUMENT_RESERVE_MAX: usize = 64;

#[derive(Debug, Default)]
pub struct RequestDecoder {
    /// Offset just past what has been parsed of the current multibulk, relative to the buffer start.
    cursor: usize,
    /// Arguments still expected in the current multibulk; `None` when no multibulk is in progress.
    arguments_remaining: Option<usize>,
    /// Length of the bulk whose header has been parsed but whose bytes have not all arrived.
    bulk_length_pending: Option<usize>,
    ranges: Vec<Range<usize>>,
}

impl RequestDecoder {
    pub fn new() -> RequestDecoder {
        RequestDecoder::default()
    }

    /// Ranges of the arguments of the multibulk last returned by `decode`.
    pub fn argument_ranges(&self) -> &[Range<usize>] {
        &self.ranges
    }

    /// True while part of a request has been parsed and more bytes are awaited.
    pub fn in_progress(&self) -> bool {
        self.arguments_remaining.is_some()
    }

    /// Decodes one request from the start of `buffer`. The caller must pass the same unconsumed bytes
    /// (plus whatever arrived since) until a request is returned, then drop `consumed` bytes from the front.
    pub fn decode(
        &mut self,
        buffer: &[u8],
        limits: DecodeLimits,
    ) -> Result<Option<Request>, ProtocolError> {
        if self.arguments_remaining.is_none() {
            let Some(&first) = buffer.first() else {
                return Ok(None);
            };
            if first != b'*' {
                return decode_inline(buffer);
            }
            let Some(line_end) = parse_header_line(buffer, 1, HeaderKind::Multibulk)? else {
                return Ok(None);
            };
            let count = parse_integer(&buffer[1..line_end - 2]);
            let count = match count {
                Some(count) if count <= 0 => {
                    return Ok(Some(Request::Empty { consumed: line_end }));
                }
                Some(count) if count as u64 <= limits.argument_count_max as u64 => count as usize,
                Some(_) if !limits.authenticated => {
                    return Err(ProtocolError("unauthenticated multibulk length"));
                }
                _ => return Err(ProtocolError("invalid multibulk length")),
            };
            self.ranges.clear();
            self.ranges.reserve(count.min(ARGUMENT_RESERVE_MAX));
            self.arguments_remaining = Some(count);
            self.cursor = line_end;
        }
        while let Some(remaining) = self.arguments_remaining {
            if remaining == 0 {
                let consumed = self.cursor;
                self.arguments_remaining = None;
                self.cursor = 0;
                return Ok(Some(Request::Multibulk { consumed }));
            }
            let length = match self.bulk_length_pending {
                Some(length) => length,
                None => {
                    let start = self.cursor;
                    let Some(&marker) = buffer.get(start) else {
                        return Ok(None);
                    };
                    if marker != b'$' {
                        return Err(ProtocolError(expected_dollar_message(marker)));
                    }
                    let Some(line_end) = parse_header_line(buffer, start + 1, HeaderKind::Bulk)?
                    else {
                        return Ok(None);
                    };
                    let length = match parse_integer(&buffer[start + 1..line_end - 2]) {
                        Some(length)
                            if length >= 0 && length as u64 <= limits.bulk_length_max as u64 =>
                        {
                            length as usize
                        }
                        Some(length)
                            if !limits.authenticated
                                && length >= 0
                                && length as u64 <= limits::BULK_LENGTH_MAX as u64 =>
                        {
                            return Err(ProtocolError("unauthenticated bulk length"));
                        }
                        _ => return Err(ProtocolError("invalid bulk length")),
                    };
                    self.cursor = line_end;
                    self.bulk_length_pending = Some(length);
                    length
                }
            };
            let start = self.cursor;
            if buffer.len() < start + length + 2 {
                return Ok(None);
            }
            if &buffer[start + length..start + length + 2] != b"\r\n" {
                return Err(ProtocolError("expected CRLF after bulk string"));
            }
            self.ranges.push(start..start + length);
            self.cursor = start + length + 2;
            self.bulk_length_pending = None;
            self.arguments_remaining = Some(remaining - 1);
        }
        Ok(None)
    }

    /// How many bytes the request in progress needs at the least before `decode` can make progress: lets
    /// the connection skip decoding while a large bulk is still arriving.
    pub fn bytes_needed(&self) -> usize {
        match self.bulk_length_pending {
            Some(length) => self.cursor + length + 2,
            None => self.cursor + 1,
        }
    }
}

/// Redis's message when a multibulk argument does not start with `$`.
fn expected_dollar_message(found: u8) -> &'static str {
    // The message embeds the byte found; a static table keeps ProtocolError allocation free.
    const MESSAGES: [&str; 128] = {
        let mut table = ["expected '$', got something else"; 128];
        // Filled for printable ASCII below by a const loop.
        let mut byte = 0x20;
        while byte < 0x7f {
            table[byte] = EXPECTED_PRINTABLE[byte - 0x20];
            byte += 1;
        }
        table
    };
    if (found as usize) < 128 {
        MESSAGES[found as usize]
    } else {
        "expected '$', got something else"
    }
}

macro_rules! expected_table {
    ($($c:literal)*) => { [$(concat!("expected '$', got '", $c, "'")),*] };
}

const EXPECTED_PRINTABLE: [&str; 95] = expected_table!(
    " " "!" "\"" "#" "$" "%" "&" "'" "(" ")" "*" "+" "," "-" "." "/"
    "0" "1" "2" "3" "4" "5" "6" "7" "8" "9" ":" ";" "<" "=" ">" "?"
    "@" "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O"
    "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" "[" "\\" "]" "^" "_"
    "`" "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o"
    "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" "{" "|" "}" "~"
);

#[derive(Clone, Copy, PartialEq, Eq)]
enum HeaderKind {
    Multibulk,
    Bulk,
}

/// Finds the `\r\n` ending a header line that starts at `from`. Returns the offset just past it.
fn parse_header_line(
    buffer: &[u8],
    from: usize,
    kind: HeaderKind,
) -> Result<Option<usize>, ProtocolError> {
    let (too_long, invalid) = match kind {
        HeaderKind::Multibulk => ("too big mbulk count string", "invalid multibulk length"),
        HeaderKind::Bulk => ("too big bulk count string", "invalid bulk length"),
    };
    let search_end = buffer.len().min(from + limits::INLINE_LENGTH_MAX);
    match memchr_newline(&buffer[from.min(search_end)..search_end]) {
        Some(index) => {
            let newline = from + index;
            if newline == from || buffer[newline - 1] != b'\r' {
                // Redis requires CRLF; a bare LF inside a header is a malformed length.
                return Err(ProtocolError(invalid));
            }
            Ok(Some(newline + 1))
        }
        None if buffer.len() - from > limits::INLINE_LENGTH_MAX => Err(ProtocolError(too_long)),
        None => Ok(None),
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&byte| byte == b'\n')
}

/// Parses a decimal integer as Redis's `string2ll` does: optional `-`, digits, no leading `+`, no spaces,
/// no leading zeros except `0` itself.
pub fn parse_integer(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    if digits[0] == b'0' && (digits.len() > 1 || negative) {
        return None;
    }
    let mut value: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add((digit - b'0') as u64)?;
    }
    if negative {
        if value <= i64::MAX as u64 + 1 {
            Some((value as i64).wrapping_neg())
        } else {
            None
        }
    } else if value <= i64::MAX as u64 {
        Some(value as i64)
    } else {
        None
    }
}

fn decode_inline(buffer: &[u8]) -> Result<Option<Request>, ProtocolError> {
    let search_end = buffer.len().min(limits::INLINE_LENGTH_MAX + 1);
    let Some(newline) = memchr_newline(&buffer[..search_end]) else {
        if buffer.len() > limits::INLINE_LENGTH_MAX {
            return Err(ProtocolError("too big inline request"));
        }
        return Ok(None);
    };
    let mut line = &buffer[..newline];
    if let Some(stripped) = line.strip_suffix(b"\r") {
        line = stripped;
    }
    let arguments = split_arguments(line).ok_or(ProtocolError("unbalanced quotes in request"))?;
    Ok(Some(Request::Inline {
        consumed: newline + 1,
        arguments,
    }))
}

/// Splits an inline command line the way redis-cli quotes arguments: spaces separate, `"..."` allows
/// `\n \r \t \b \a \\ \" \xHH` escapes, `'...'` allows `\'`. A closing quote must be followed by a space
/// or the end. Returns `None` for unbalanced quotes.
pub fn split_arguments(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut arguments = Vec::new();
    let mut index = 0;
    loop {
        while index < line.len() && line[index].is_ascii_whitespace() {
            index += 1;
        }
        if index >= line.len() {
            return Some(arguments);
        }
        let mut current = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            if in_double {
                let byte = *line.get(index)?;
                if byte == b'\\' && index + 3 < line.len() && line[index + 1] == b'x' {
                    if let (Some(high), Some(low)) =
                        (hex_value(line[index + 2]), hex_value(line[index + 3]))
                    {
                        current.push(high * 16 + low);
                        index += 4;
                        continue;
                    }
                }
                if byte == b'\\' && index + 1 < line.len() {
                    index += 1;
                    current.push(match line[index] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if byte == b'"' {
                    if index + 1 < line.len() && !line[index + 1].is_ascii_whitespace() {
                        return None;
                    }
                    index += 1;
                    break;
                } else {
                    current.push(byte);
                }
                index += 1;
            } else if in_single {
                let byte = *line.get(index)?;
                if byte == b'\\' && index + 1 < line.len() && line[index + 1] == b'\'' {
                    current.push(b'\'');
                    index += 2;
                    continue;
                } else if byte == b'\'' {
                    if index + 1 < line.len() && !line[index + 1].is_ascii_whitespace() {
                        return None;
                    }
                    index += 1;
                    break;
                }
                current.push(byte);
                index += 1;
            } else {
                match line.get(index) {
                    None => break,
                    Some(byte) if byte.is_ascii_whitespace() => break,
                    Some(b'"') => in_double = true,
                    Some(b'\'') => in_single = true,
                    Some(&byte) => current.push(byte),
                }
                index += 1;
            }
        }
        arguments.push(current);
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|value| value as u8)
}

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

/// Looks ahead over up to `requests_max` complete multibulk requests at the start of `buffer`, each of at
/// most `arguments_max` arguments, and hands each one's second argument (the key, for most data commands)
/// to `visit`. Returns how many bytes the requests it walked take.
///
/// A hint for prefetching, not a decoder: it checks only what it needs to find its way and stops quietly
/// at anything else (an inline request, an incomplete or malformed one, one with many arguments), and it
/// changes no state, so [`RequestDecoder`] stays the only judge of what a request is. Its work is bounded
/// by `requests_max * arguments_max` headers whatever the buffer holds, so calling it again while a large
/// request arrives costs nothing in proportion to that request.
pub fn peek_second_arguments<'a>(
    buffer: &'a [u8],
    requests_max: usize,
    arguments_max: usize,
    mut visit: impl FnMut(&'a [u8]),
) -> usize {
    let mut position = 0;
    'requests: for _ in 0..requests_max {
        let Some((count, mut cursor)) = peek_header(buffer, position, b'*') else {
            break;
        };
        if count > arguments_max {
            break;
        }
        let mut second = None;
        for index in 0..count {
            let Some((length, start)) = peek_header(buffer, cursor, b'$') else {
                break 'requests;
            };
            // `length` has at most 18 digits, so the sum cannot overflow.
            let end = start + length;
            if buffer.len() < end + 2 {
                break 'requests;
            }
            if index == 1 {
                second = Some(&buffer[start..end]);
            }
            cursor = end + 2;
        }
        if let Some(argument) = second {
            visit(argument);
        }
        position = cursor;
    }
    position
}

/// Reads a `<marker><digits>\r\n` line at `position`: the number and the offset just past the line.
fn peek_header(buffer: &[u8], position: usize, marker: u8) -> Option<(usize, usize)> {
    const DIGITS_MAX: usize = 18;
    if *buffer.get(position)? != marker {
        return None;
    }
    let digits_start = position + 1;
    let mut cursor = digits_start;
    let mut value = 0usize;
    while let Some(&byte) = buffer.get(cursor) {
        if !byte.is_ascii_digit() || cursor - digits_start == DIGITS_MAX {
            break;
        }
        value = value * 10 + usize::from(byte - b'0');
        cursor += 1;
    }
    if cursor == digits_start || buffer.get(cursor..cursor + 2)? != b"\r\n" {
        return None;
    }
    Some((value, cursor + 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes every request in `input`, returning argument lists or the first error.
    fn decode_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut decoder = RequestDecoder::new();
        let mut position = 0;
        let mut commands = Vec::new();
        while let Some(request) = decoder.decode(&input[position..], DecodeLimits::AUTHENTICATED)? {
            match request {
                Request::Multibulk { consumed } => {
                    let base = &input[position..];
                    commands.push(
                        decoder
                            .argument_ranges()
                            .iter()
                            .map(|range| base[range.clone()].to_vec())
                            .collect(),
                    );
                    position += consumed;
                }
                Request::Inline {
                    consumed,
                    arguments,
                } => {
                    if !arguments.is_empty() {
                        commands.push(arguments);
                    }
                    position += consumed;
                }
                Request::Empty { consumed } => position += consumed,
            }
        }
        Ok(commands)
    }

    fn error_of(input: &[u8]) -> &'static str {
        decode_all(input).unwrap_err().0
    }

    fn arguments(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter()
            .map(|argument| argument.as_bytes().to_vec())
            .collect()
    }

    #[test]
    fn decodes_multibulk_and_inline() {
        let commands =
            decode_all(b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\nPING\r\nSET a \"b c\"\r\n").unwrap();
        assert_eq!(
            commands,
            vec![
                arguments(&["ECHO", "hello"]),
                arguments(&["PING"]),
                arguments(&["SET", "a", "b c"])
            ]
        );
    }

    // The cases below are those of Redis's tests/unit/protocol.tcl.
    #[test]
    fn negative_multibulk_length_is_ignored() {
        assert_eq!(
            decode_all(b"*-10\r\nPING\r\n").unwrap(),
            vec![arguments(&["PING"])]
        );
    }

    #[test]
    fn out_of_range_multibulk_length() {
        assert_eq!(error_of(b"*3000000000\r\n"), "invalid multibulk length");
        assert_eq!(error_of(b"*20000000\r\n"), "invalid multibulk length");
    }

    #[test]
    fn wrong_multibulk_payload_header() {
        assert_eq!(
            error_of(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n"),
            "expected '$', got 'f'"
        );
    }

    #[test]
    fn negative_multibulk_payload_length() {
        assert_eq!(
            error_of(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n"),
            "invalid bulk length"
        );
    }

    #[test]
    fn out_of_range_multibulk_payload_length() {
        assert_eq!(
            error_of(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n"),
            "invalid bulk length"
        );
    }

    #[test]
    fn non_number_multibulk_payload_length() {
        assert_eq!(
            error_of(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n"),
            "invalid bulk length"
        );
    }

    #[test]
    fn non_number_multibulk_length() {
        assert_eq!(error_of(b"*blabla\r\n"), "invalid multibulk length");
    }

    #[test]
    fn too_big_inline_request() {
        let mut input = vec![b'a'; limits::INLINE_LENGTH_MAX + 10];
        input.extend_from_slice(b"\r\n");
        assert_eq!(error_of(&input), "too big inline request");
        // Without any newline at all, too: the decoder must not wait forever.
        assert_eq!(
            error_of(&vec![b'a'; limits::INLINE_LENGTH_MAX + 1]),
            "too big inline request"
        );
    }

    #[test]
    fn unbalanced_quotes_in_inline_request() {
        assert_eq!(
            error_of(b"set \"\"\"test-key\"\"\" test-value\r\n"),
            "unbalanced quotes in request"
        );
        assert_eq!(
            error_of(b"set \"unterminated\r\n"),
            "unbalanced quotes in request"
        );
        assert_eq!(error_of(b"set 'a\r\n"), "unbalanced quotes in request");
    }

    #[test]
    fn too_big_header_lines() {
        let mut input = b"*".to_vec();
        input.extend(std::iter::repeat_n(b'1', limits::INLINE_LENGTH_MAX + 1));
        assert_eq!(error_of(&input), "too big mbulk count string");
        let mut input = b"*1\r\n$".to_vec();
        input.extend(std::iter::repeat_n(b'1', limits::INLINE_LENGTH_MAX + 1));
        assert_eq!(error_of(&input), "too big bulk count string");
    }

    #[test]
    fn unauthenticated_limits() {
        let mut decoder = RequestDecoder::new();
        let error = decoder
            .decode(b"*11\r\n", DecodeLimits::UNAUTHENTICATED)
            .unwrap_err();
        assert_eq!(error.0, "unauthenticated multibulk length");
        let mut decoder = RequestDecoder::new();
        let error = decoder
            .decode(b"*1\r\n$16385\r\n", DecodeLimits::UNAUTHENTICATED)
            .unwrap_err();
        assert_eq!(error.0, "unauthenticated bulk length");
    }

    #[test]
    fn inline_quoting() {
        assert_eq!(
            split_arguments(br#"set "a\x41\n" 'it\'s' plain"#).unwrap(),
            vec![
                b"set".to_vec(),
                b"aA\n".to_vec(),
                b"it's".to_vec(),
                b"plain".to_vec()
            ]
        );
        assert_eq!(split_arguments(b"   ").unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(split_arguments(b"\"\"").unwrap(), vec![Vec::<u8>::new()]);
    }

    #[test]
    fn a_large_declared_bulk_reserves_nothing_and_waits() {
        let mut decoder = RequestDecoder::new();
        let input = b"*1\r\n$400000000\r\nabc";
        assert_eq!(
            decoder.decode(input, DecodeLimits::AUTHENTICATED).unwrap(),
            None
        );
        assert!(decoder.bytes_needed() > 400_000_000);
        assert!(decoder.ranges.capacity() <= ARGUMENT_RESERVE_MAX);
    }

    #[test]
    fn integers_parse_like_redis() {
        assert_eq!(parse_integer(b"0"), Some(0));
        assert_eq!(parse_integer(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_integer(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_integer(b"9223372036854775808"), None);
        for bad in [&b""[..], b"-", b"01", b"-0", b"+1", b" 1", b"1 ", b"1a"] {
            assert_eq!(
                parse_integer(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// The second arguments `peek_second_arguments` finds, and the bytes it walked.
    fn peek_all(input: &[u8], requests_max: usize, arguments_max: usize) -> (Vec<Vec<u8>>, usize) {
        let mut seen = Vec::new();
        let walked = peek_second_arguments(input, requests_max, arguments_max, |argument| {
            seen.push(argument.to_vec())
        });
        (seen, walked)
    }

    #[test]
    fn peeks_second_arguments_of_complete_requests() {
        let stream = b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINCR\r\n$2\r\nbc\r\n";
        assert_eq!(
            peek_all(stream, 16, 8),
            (vec![b"a".to_vec(), b"bc".to_vec()], stream.len())
        );
        // Stops at the limit of requests, at an incomplete request, at an inline one, at a long one.
        assert_eq!(peek_all(stream, 1, 8), (vec![b"a".to_vec()], 27));
        assert_eq!(peek_all(&stream[..stream.len() - 1], 16, 8).1, 41);
        assert_eq!(peek_all(b"PING\r\n", 16, 8), (vec![], 0));
        assert_eq!(peek_all(stream, 16, 2), (vec![], 0));
        assert_eq!(
            peek_all(b"*1\r\n$99999999999999999999\r\n", 16, 8),
            (vec![], 0)
        );
    }

    #[test]
    fn encodes_both_protocols() {
        let reply = Reply::Map(vec![(Reply::bulk(b"a"), Reply::Null)]);
        let mut resp2 = Vec::new();
        encode(&reply, Protocol::Resp2, &mut resp2);
        assert_eq!(resp2, b"*2\r\n$1\r\na\r\n$-1\r\n");
        let mut resp3 = Vec::new();
        encode(&reply, Protocol::Resp3, &mut resp3);
        assert_eq!(resp3, b"%1\r\n$1\r\na\r\n_\r\n");
        let mut out = Vec::new();
        encode(&Reply::error("ERR a\r\nb"), Protocol::Resp2, &mut out);
        assert_eq!(out, b"-ERR a  b\r\n");
    }

    mod property {
        use super::*;
        use proptest::prelude::*;

        fn command() -> impl Strategy<Value = Vec<Vec<u8>>> {
            prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..6)
        }

        proptest! {
            /// Any split of a valid stream into reads decodes to the same commands as the whole stream.
            #[test]
            fn any_split_decodes_the_same(
                commands in prop::collection::vec(command(), 1..8),
                cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
            ) {
                let mut stream = Vec::new();
                for command in &commands {
                    let slices: Vec<&[u8]> = command.iter().map(|argument| argument.as_slice()).collect();
                    encode_request(&slices, &mut stream);
                }
                let mut cut_points: Vec<usize> = cuts.iter().map(|index| index.index(stream.len() + 1)).collect();
                cut_points.push(stream.len());
                cut_points.sort_unstable();

                // Feed the stream chunk by chunk into a growing buffer, as a connection does.
                let mut decoder = RequestDecoder::new();
                let mut buffer = Vec::new();
                let mut decoded = Vec::new();
                let mut fed = 0;
                for cut in cut_points {
                    buffer.extend_from_slice(&stream[fed..cut]);
                    fed = cut;
                    while let Some(request) = decoder.decode(&buffer, DecodeLimits::AUTHENTICATED).unwrap() {
                        let Request::Multibulk { consumed } = request else { panic!("unexpected {request:?}") };
                        decoded.push(decoder.argument_ranges().iter().map(|range| buffer[range.clone()].to_vec()).collect::<Vec<_>>());
                        buffer.drain(..consumed);
                    }
                }
                prop_assert_eq!(decoded, commands);
                prop_assert!(buffer.is_empty());
            }

            /// On any prefix of a valid stream, the look-ahead finds the second argument of each complete
            /// request, in order, as the decoder reads them.
            #[test]
            fn peek_agrees_with_the_decoder(
                commands in prop::collection::vec(command(), 1..8),
                cut in any::<prop::sample::Index>(),
            ) {
                let mut stream = Vec::new();
                for command in &commands {
                    let slices: Vec<&[u8]> = command.iter().map(|argument| argument.as_slice()).collect();
                    encode_request(&slices, &mut stream);
                }
                let prefix = &stream[..cut.index(stream.len() + 1)];
                let complete = decode_all(prefix).unwrap();
                let expected: Vec<Vec<u8>> = complete.iter().filter_map(|command| command.get(1).cloned()).collect();
                prop_assert_eq!(peek_all(prefix, 16, 8).0, expected);
            }

            /// Arbitrary bytes never panic the look-ahead.
            #[test]
            fn arbitrary_bytes_never_panic_the_peek(input in prop::collection::vec(any::<u8>(), 0..200)) {
                let _ = peek_all(&input, 16, 8);
            }

            /// Arbitrary bytes never panic the decoder.
            #[test]
            fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..200)) {
                let _ = decode_all(&input);
            }
        }
    }
}
