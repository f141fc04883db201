//! A small blocking RESP client: the reply decoder, the command encoder and one connection.
//!
//! The decoder works in two steps like mini-redis: `parse` either returns a whole reply and how many bytes
//! it used, or says the buffer holds only part of one (`Incomplete`, a normal result, not an error). It
//! understands RESP2 and the RESP3 types so that a server answering in RESP3 still decodes.
//!
//! Pipelining is the caller's business: `Connection::round_trip` writes every command of a batch in one
//! `write_all` and then reads exactly as many replies, timing each reply as it is decoded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The longest a single reply may take before the connection is declared broken; a load tool must never
/// hang forever on a server that stopped answering.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Bulk strings and aggregates larger than this are refused as a protocol error instead of allocating.
const ELEMENT_COUNT_MAX: i64 = 64 * 1024 * 1024;

/// One decoded reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    Null,
    Array(Vec<Value>),
    Double(f64),
    Boolean(bool),
    /// RESP3 maps are kept flat as field, value, field, value so they read like a RESP2 field/value array.
    Map(Vec<Value>),
}

impl Value {
    /// The text of a simple string, a bulk string or a verbatim string.
    pub fn text(&self) -> Option<String> {
        match self {
            Value::Simple(text) => Some(text.clone()),
            Value::Bulk(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        }
    }

    /// An integer reply, or a string holding an integer (Lua and some commands answer numbers as strings).
    pub fn integer(&self) -> Option<i64> {
        match self {
            Value::Integer(number) => Some(*number),
            Value::Simple(_) | Value::Bulk(_) => self.text()?.trim().parse().ok(),
            Value::Double(number) if number.fract() == 0.0 => Some(*number as i64),
            _ => None,
        }
    }

    pub fn array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) | Value::Map(items) => Some(items),
            _ => None,
        }
    }

    pub fn error(&self) -> Option<&str> {
        match self {
            Value::Error(message) => Some(message),
            _ => None,
        }
    }
}

/// Why a buffer did not decode into a reply.
#[derive(Debug, PartialEq)]
pub enum ParseError {
    /// Only part of a reply is there yet; read more and try again.
    Incomplete,
    /// The bytes are not RESP; the connection cannot be trusted any more.
    Protocol(String),
}

/// Decodes one reply from the start of `buffer`, returning it with the number of bytes it used.
pub fn parse(buffer: &[u8]) -> Result<(Value, usize), ParseError> {
    let mut cursor = 0;
    let value = parse_at(buffer, &mut cursor, 0)?;
    Ok((value, cursor))
}

/// Nesting deeper than this is refused: replies the bench reads are at most a few levels deep.
const NESTING_MAX: usize = 32;

fn parse_at(buffer: &[u8], cursor: &mut usize, depth: usize) -> Result<Value, ParseError> {
    if depth > NESTING_MAX {
        return Err(ParseError::Protocol("reply nested too deeply".into()));
    }
    let kind = *buffer.get(*cursor).ok_or(ParseError::Incomplete)?;
    *cursor += 1;
    let line = read_line(buffer, cursor)?;
    match kind {
        b'+' => Ok(Value::Simple(line)),
        b'-' => Ok(Value::Error(line)),
        b':' => Ok(Value::Integer(parse_integer(&line)?)),
        b'_' => Ok(Value::Null),
        b'#' => match line.as_str() {
            "t" => Ok(Value::Boolean(true)),
            "f" => Ok(Value::Boolean(false)),
            _ => Err(ParseError::Protocol(format!("bad boolean {line:?}"))),
        },
        b',' => line
            .parse()
            .map(Value::Double)
            .map_err(|_| ParseError::Protocol(format!("bad double {line:?}"))),
        b'(' => Ok(Value::Simple(line)),
        b'$' | b'=' | b'!' => {
            let length = parse_integer(&line)?;
            if length < 0 {
                return Ok(Value::Null);
            }
            if length > ELEMENT_COUNT_MAX {
                return Err(ParseError::Protocol(format!("bulk of {length} bytes")));
            }
            let length = length as usize;
            let end = *cursor + length;
            if buffer.len() < end + 2 {
                return Err(ParseError::Incomplete);
            }
            if &buffer[end..end + 2] != b"\r\n" {
                return Err(ParseError::Protocol("bulk not followed by CRLF".into()));
            }
            let mut payload = buffer[*cursor..end].to_vec();
            *cursor = end + 2;
            if kind == b'=' && payload.len() >= 4 {
                // Verbatim strings start with a three-letter format and a colon ("txt:").
                payload.drain(..4);
            }
            if kind == b'!' {
                return Ok(Value::Error(String::from_utf8_lossy(&payload).into_owned()));
            }
            Ok(Value::Bulk(payload))
        }
        b'*' | b'~' | b'>' | b'%' => {
            let count = parse_integer(&line)?;
            if count < 0 {
                return Ok(Value::Null);
            }
            if count > ELEMENT_COUNT_MAX {
                return Err(ParseError::Protocol(format!(
                    "aggregate of {count} elements"
                )));
            }
            let elements = if kind == b'%' { count * 2 } else { count } as usize;
            let mut items = Vec::with_capacity(elements.min(1024));
            for _ in 0..elements {
                items.push(parse_at(buffer, cursor, depth + 1)?);
            }
            Ok(if kind == b'%' {
                Value::Map(items)
            } else {
                Value::Array(items)
            })
        }
        other => Err(ParseError::Protocol(format!(
            "unknown reply type byte {:?}",
            other as char
        ))),
    }
}

fn read_line(buffer: &[u8], cursor: &mut usize) -> Result<String, ParseError> {
    let rest = &buffer[*cursor..];
    let Some(end) = rest.windows(2).position(|pair| pair == b"\r\n") else {
        return Err(ParseError::Incomplete);
    };
    let line = String::from_utf8_lossy(&rest[..end]).into_owned();
    *cursor += end + 2;
    Ok(line)
}

fn parse_integer(line: &str) -> Result<i64, ParseError> {
    line.parse()
        .map_err(|_| ParseError::Protocol(format!("bad integer {line:?}")))
}

/// One command: its arguments, the name first.
pub type Command = Vec<Vec<u8>>;

/// Builds a command from anything printable, so call sites read like the command line.
#[macro_export]
macro_rules! command {
    ($($argument:expr),+ $(,)?) => {
        vec![$(format!("{}", $argument).into_bytes()),+]
    };
}

/// Appends `command` to `output` as a RESP array of bulk strings.
pub fn encode(command: &Command, output: &mut Vec<u8>) {
    output.extend_from_slice(format!("*{}\r\n", command.len()).as_bytes());
    for argument in command {
        output.extend_from_slice(format!("${}\r\n", argument.len()).as_bytes());
        output.extend_from_slice(argument);
        output.extend_from_slice(b"\r\n");
    }
}

/// A blocking connection with its own read buffer.
pub struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
    /// Bytes of `buffer` before this offset were already decoded.
    consumed: usize,
    output: Vec<u8>,
}

impl Connection {
    pub fn open(host: &str, port: u16) -> Result<Connection, String> {
        let stream = TcpStream::connect((host, port))
            .map_err(|error| format!("cannot connect to {host}:{port}: {error}"))?;
        stream
            .set_nodelay(true)
            .map_err(|error| error.to_string())?;
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .map_err(|error| error.to_string())?;
        Ok(Connection {
            stream,
            buffer: Vec::with_capacity(64 * 1024),
            consumed: 0,
            output: Vec::with_capacity(64 * 1024),
        })
    }

    /// Sends one command and waits for its reply.
    pub fn call(&mut self, command: Command) -> Result<Value, String> {
        let mut replies = self.round_trip(&[command], |_| {})?;
        Ok(replies.pop().expect("one command gives one reply"))
    }

    /// Sends every command in one write, then reads one reply per command. `on_reply` is called as each
    /// reply is decoded with the time since the batch was written, which is that request's latency.
    pub fn round_trip(
        &mut self,
        commands: &[Command],
        mut on_reply: impl FnMut(Duration),
    ) -> Result<Vec<Value>, String> {
        self.output.clear();
        for command in commands {
            encode(command, &mut self.output);
        }
        let sent_at = Instant::now();
        self.stream
            .write_all(&self.output)
            .map_err(|error| format!("write failed: {error}"))?;
        let mut replies = Vec::with_capacity(commands.len());
        while replies.len() < commands.len() {
            replies.push(self.read_reply()?);
            on_reply(sent_at.elapsed());
        }
        Ok(replies)
    }

    fn read_reply(&mut self) -> Result<Value, String> {
        loop {
            match parse(&self.buffer[self.consumed..]) {
                Ok((value, used)) => {
                    self.consumed += used;
                    if self.consumed == self.buffer.len() {
                        self.buffer.clear();
                        self.consumed = 0;
                    }
                    return Ok(value);
                }
                Err(ParseError::Protocol(message)) => {
                    return Err(format!("protocol error: {message}"))
                }
                Err(ParseError::Incomplete) => {}
            }
            if self.consumed > 0 {
                // Move the partial reply to the front so the buffer does not grow without bound.
                self.buffer.drain(..self.consumed);
                self.consumed = 0;
            }
            let mut chunk = [0u8; 16 * 1024];
            let read = self
                .stream
                .read(&mut chunk)
                .map_err(|error| format!("read failed: {error}"))?;
            if read == 0 {
                return Err("server closed the connection".into());
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Value {
        let (value, used) = parse(bytes).expect("whole reply");
        assert_eq!(used, bytes.len(), "every byte used");
        value
    }

    #[test]
    fn decodes_resp2_types() {
        assert_eq!(decode(b"+OK\r\n"), Value::Simple("OK".into()));
        assert_eq!(decode(b"-ERR no\r\n"), Value::Error("ERR no".into()));
        assert_eq!(decode(b":-42\r\n"), Value::Integer(-42));
        assert_eq!(
            decode(b"$5\r\nhe\r\no\r\n"),
            Value::Bulk(b"he\r\no".to_vec())
        );
        assert_eq!(decode(b"$0\r\n\r\n"), Value::Bulk(Vec::new()));
        assert_eq!(decode(b"$-1\r\n"), Value::Null);
        assert_eq!(decode(b"*-1\r\n"), Value::Null);
        assert_eq!(
            decode(b"*3\r\n+ISSUED\r\n:7\r\n:93\r\n"),
            Value::Array(vec![
                Value::Simple("ISSUED".into()),
                Value::Integer(7),
                Value::Integer(93)
            ])
        );
        assert_eq!(
            decode(b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\nu\r\n:1\r\n"),
            Value::Array(vec![
                Value::Bulk(b"0".to_vec()),
                Value::Array(vec![Value::Bulk(b"u".to_vec()), Value::Integer(1)])
            ])
        );
    }

    #[test]
    fn decodes_resp3_types() {
        assert_eq!(decode(b"_\r\n"), Value::Null);
        assert_eq!(decode(b"#t\r\n"), Value::Boolean(true));
        assert_eq!(decode(b",1.5\r\n"), Value::Double(1.5));
        assert_eq!(decode(b"=7\r\ntxt:abc\r\n"), Value::Bulk(b"abc".to_vec()));
        assert_eq!(decode(b"!3\r\nbad\r\n"), Value::Error("bad".into()));
        assert_eq!(
            decode(b"%1\r\n+sold\r\n:3\r\n"),
            Value::Map(vec![Value::Simple("sold".into()), Value::Integer(3)])
        );
        assert_eq!(
            decode(b"~1\r\n:1\r\n"),
            Value::Array(vec![Value::Integer(1)])
        );
    }

    #[test]
    fn every_prefix_of_a_reply_is_incomplete() {
        let whole = b"*3\r\n+ISSUED\r\n$-1\r\n$4\r\nabcd\r\n";
        for cut in 0..whole.len() {
            assert_eq!(
                parse(&whole[..cut]),
                Err(ParseError::Incomplete),
                "cut at {cut}"
            );
        }
        assert!(parse(whole).is_ok());
    }

    #[test]
    fn reports_used_bytes_with_pipelined_replies() {
        let buffer = b"+PONG\r\n:1\r\n";
        let (first, used) = parse(buffer).unwrap();
        assert_eq!(first, Value::Simple("PONG".into()));
        assert_eq!(parse(&buffer[used..]).unwrap().0, Value::Integer(1));
    }

    #[test]
    fn refuses_garbage() {
        assert!(matches!(parse(b"?x\r\n"), Err(ParseError::Protocol(_))));
        assert!(matches!(parse(b":12a\r\n"), Err(ParseError::Protocol(_))));
        assert!(matches!(
            parse(b"$3\r\nabcXY"),
            Err(ParseError::Protocol(_))
        ));
    }

    #[test]
    fn encodes_commands_as_bulk_arrays() {
        let mut output = Vec::new();
        encode(&command!("SET", "k", 12), &mut output);
        assert_eq!(output, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n");
    }

    #[test]
    fn reads_numbers_from_strings() {
        assert_eq!(Value::Bulk(b"17".to_vec()).integer(), Some(17));
        assert_eq!(Value::Simple("x".into()).integer(), None);
        assert_eq!(Value::Null.integer(), None);
    }
}
