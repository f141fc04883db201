//! RESP requests: the incremental decoder, and a look-ahead over complete requests for prefetching.
//!
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
use std::ops::Range;

use crate::limits;
use crate::limits::ARGUMENT_RESERVE_MAX;

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

#[derive(Debug, Default)]
pub struct RequestDecoder {
    /// Offset just past what has been parsed of the current multibulk, relative to the buffer start.
    cursor: usize,
    /// Arguments still expected in the current multibulk; `None` when no multibulk is in progress.
    arguments_remaining: Option<usize>,
    /// Length of the bulk whose header has been parsed but whose bytes have not all arrived.
    bulk_length_pending: Option<usize>,
    /// Read by the unit tests too, which check what is reserved up front.
    pub(super) ranges: Vec<Range<usize>>,
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
