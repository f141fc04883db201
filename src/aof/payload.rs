//! The payload of one log record: one atomic unit of change, a single command or a whole MULTI/EXEC
//! transaction, with the loop clock it ran with so replay through the same `apply` is deterministic.
//!
//! # Format
//!
//! All integers are little-endian; there is no padding and nothing after the last argument.
//!
//! ```text
//! now_ms: u64                  the event loop's clock (Unix milliseconds) the commands ran with
//! command_count: u32           >= 1
//! per command:
//!   argument_count: u32        >= 1; the first argument is the command name
//!   per argument:
//!     length: u32
//!     bytes                    `length` bytes, binary-safe
//! ```
//!
//! # Encoding
//! One builder: [`begin_payload`], then [`append_command`] per command, then [`set_command_count`]. The
//! command layer's `Mutations` builds each unit's payload in place with it as commands run, in a buffer
//! reused from one unit to the next; [`encode_payload`] is the same builder in one call, for callers that
//! have every command at hand (tests, tools).
//!
//! The record around the payload carries its length and checksum, so decoding a payload whose record
//! checked out fails only on a bug or on a log written by a different format version; [`decode_payload`]
//! still treats every input as hostile: it never panics, and never allocates more than the input can fill.
use std::fmt;

/// Bytes of `now_ms` plus `command_count`.
const PAYLOAD_PREFIX_SIZE: usize = 12;

/// Appends one command (`argument_count`, then each argument's length and bytes) to a payload being built
/// in `out`. The caller counts commands and patches the count with [`set_command_count`].
///
/// Panics on a command with no arguments or an argument over 4 GiB: the command layer never produces
/// either, and the decoder would reject the first.
pub fn append_command<I>(out: &mut Vec<u8>, arguments: I)
where
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
{
    let argument_count_offset = out.len();
    out.extend_from_slice(&0u32.to_le_bytes());
    let mut argument_count: u32 = 0;
    for argument in arguments {
        let argument = argument.as_ref();
        let length = u32::try_from(argument.len()).expect("argument over 4 GiB");
        out.extend_from_slice(&length.to_le_bytes());
        out.extend_from_slice(argument);
        argument_count = argument_count
            .checked_add(1)
            .expect("argument count over u32");
    }
    assert!(
        argument_count >= 1,
        "a logged command has at least its name"
    );
    out[argument_count_offset..argument_count_offset + 4]
        .copy_from_slice(&argument_count.to_le_bytes());
}

/// Starts a payload in `out` (cleared first): `now_ms` and a command count of 0 to patch later.
pub fn begin_payload(out: &mut Vec<u8>, now_ms: u64) {
    out.clear();
    append_prefix(out, now_ms);
}

fn append_prefix(out: &mut Vec<u8>, now_ms: u64) {
    out.extend_from_slice(&now_ms.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
}

/// Patches the command count of a payload begun with [`begin_payload`].
pub fn set_command_count(payload: &mut [u8], command_count: u32) {
    payload[8..PAYLOAD_PREFIX_SIZE].copy_from_slice(&command_count.to_le_bytes());
}

/// Appends the payload of `commands`, run at `now_ms`, in one call, after whatever `out` holds: the
/// builder above ([`append_command`], [`set_command_count`]) for callers that have every command at hand.
///
/// Panics when `commands` is empty: a logged unit has at least one command.
pub fn encode_payload<C, A>(out: &mut Vec<u8>, now_ms: u64, commands: C)
where
    C: IntoIterator,
    C::Item: IntoIterator<Item = A>,
    A: AsRef<[u8]>,
{
    let start = out.len();
    append_prefix(out, now_ms);
    let mut command_count: u32 = 0;
    for command in commands {
        append_command(out, command);
        command_count = command_count
            .checked_add(1)
            .expect("command count over u32");
    }
    assert!(command_count >= 1, "a logged unit has at least one command");
    set_command_count(&mut out[start..], command_count);
}

/// A decoded payload, borrowing its arguments from the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload<'a> {
    pub now_ms: u64,
    /// Each command's arguments, the name first.
    pub commands: Vec<Vec<&'a [u8]>>,
}

/// Why a payload did not decode. `offset` is relative to the payload's first byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadError {
    /// The payload ends in the middle of a field: `needed` more bytes were expected at `offset`.
    Truncated { offset: usize, needed: usize },
    /// The last command ends at `offset` but `count` more bytes follow.
    TrailingBytes { offset: usize, count: usize },
    /// `command_count` is 0.
    NoCommands,
    /// Command number `command_index` (from 0) has `argument_count` 0.
    EmptyCommand { command_index: u32 },
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadError::Truncated { offset, needed } => {
                write!(
                    f,
                    "payload truncated: {needed} more bytes expected at payload offset {offset}"
                )
            }
            PayloadError::TrailingBytes { offset, count } => {
                write!(
                    f,
                    "payload has {count} trailing bytes after its last command at offset {offset}"
                )
            }
            PayloadError::NoCommands => write!(f, "payload has no commands"),
            PayloadError::EmptyCommand { command_index } => {
                write!(f, "payload command {command_index} has no arguments")
            }
        }
    }
}

impl std::error::Error for PayloadError {}

/// Decodes a payload; see the module documentation for the format.
pub fn decode_payload(payload: &[u8]) -> Result<Payload<'_>, PayloadError> {
    let mut decoded = DecodedPayload::new();
    decode_payload_into(payload, &mut decoded)?;
    Ok(Payload {
        now_ms: decoded.now_ms,
        commands: decoded.commands().map(<[&[u8]]>::to_vec).collect(),
    })
}

/// A decoded payload in buffers that are reused from one record to the next: replay decodes millions of
/// records and should allocate for none of them. Filled by [`decode_payload_into`].
#[derive(Debug, Default)]
pub struct DecodedPayload<'a> {
    pub now_ms: u64,
    /// Every command's arguments, back to back.
    arguments: Vec<&'a [u8]>,
    /// Where each command ends in `arguments`.
    command_ends: Vec<usize>,
}

impl<'a> DecodedPayload<'a> {
    pub fn new() -> DecodedPayload<'a> {
        DecodedPayload::default()
    }

    /// Each command's arguments, the name first.
    pub fn commands(&self) -> impl Iterator<Item = &[&'a [u8]]> + '_ {
        let mut start = 0;
        self.command_ends.iter().map(move |&end| {
            let command = &self.arguments[start..end];
            start = end;
            command
        })
    }
}

/// Decodes a payload into `decoded`, replacing what it held; see the module documentation for the
/// format. On an error `decoded` holds an unspecified part of the payload.
pub fn decode_payload_into<'a>(
    payload: &'a [u8],
    decoded: &mut DecodedPayload<'a>,
) -> Result<(), PayloadError> {
    decoded.arguments.clear();
    decoded.command_ends.clear();
    let mut cursor = Cursor {
        bytes: payload,
        offset: 0,
    };
    decoded.now_ms = u64::from_le_bytes(cursor.take_array()?);
    let command_count = u32::from_le_bytes(cursor.take_array()?);
    if command_count == 0 {
        return Err(PayloadError::NoCommands);
    }
    debug_assert_eq!(cursor.offset, PAYLOAD_PREFIX_SIZE);
    // Each command needs at least 8 bytes (its argument count and one length): never reserve more than
    // the rest of the input could hold, whatever the counts claim.
    decoded
        .command_ends
        .reserve((command_count as usize).min(cursor.remaining() / 8));
    for command_index in 0..command_count {
        let argument_count = u32::from_le_bytes(cursor.take_array()?);
        if argument_count == 0 {
            return Err(PayloadError::EmptyCommand { command_index });
        }
        decoded
            .arguments
            .reserve((argument_count as usize).min(cursor.remaining() / 4));
        for _ in 0..argument_count {
            let length = u32::from_le_bytes(cursor.take_array()?);
            decoded.arguments.push(cursor.take(length as usize)?);
        }
        decoded.command_ends.push(decoded.arguments.len());
    }
    if cursor.remaining() > 0 {
        return Err(PayloadError::TrailingBytes {
            offset: cursor.offset,
            count: cursor.remaining(),
        });
    }
    Ok(())
}

/// Reads fields off the front of a payload, failing with `Truncated` instead of panicking.
struct Cursor<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    fn take(&mut self, length: usize) -> Result<&'a [u8], PayloadError> {
        if length > self.remaining() {
            return Err(PayloadError::Truncated {
                offset: self.offset,
                needed: length - self.remaining(),
            });
        }
        let taken = &self.bytes[self.offset..self.offset + length];
        self.offset += length;
        Ok(taken)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], PayloadError> {
        Ok(self.take(N)?.try_into().expect("took exactly N bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_bytes() {
        let mut out = Vec::new();
        encode_payload(&mut out, 0x0102, [[b"SET".as_slice(), b"k", b""]]);
        let mut expected = Vec::new();
        expected.extend_from_slice(&0x0102u64.to_le_bytes());
        expected.extend_from_slice(&1u32.to_le_bytes());
        expected.extend_from_slice(&3u32.to_le_bytes());
        expected.extend_from_slice(&3u32.to_le_bytes());
        expected.extend_from_slice(b"SET");
        expected.extend_from_slice(&1u32.to_le_bytes());
        expected.extend_from_slice(b"k");
        expected.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(out, expected);
        let payload = decode_payload(&out).unwrap();
        assert_eq!(payload.now_ms, 0x0102);
        assert_eq!(payload.commands, vec![vec![b"SET".as_slice(), b"k", b""]]);
    }

    #[test]
    fn encoding_appends_after_existing_bytes() {
        let mut out = b"prefix".to_vec();
        let commands = [
            vec![b"MULTI".to_vec()],
            vec![b"INCR".to_vec(), b"n".to_vec()],
        ];
        encode_payload(&mut out, 9, &commands);
        assert_eq!(&out[..6], b"prefix");
        let payload = decode_payload(&out[6..]).unwrap();
        assert_eq!(payload.commands.len(), 2);
        assert_eq!(payload.commands[1], vec![b"INCR".as_slice(), b"n"]);
    }

    #[test]
    fn the_builder_and_the_one_call_encode_the_same_bytes() {
        let commands = [
            vec![b"SET".as_slice(), b"k", b"v"],
            vec![b"DEL".as_slice(), b"j"],
        ];
        let mut built = b"reused".to_vec();
        begin_payload(&mut built, 77);
        for command in &commands {
            append_command(&mut built, command);
        }
        set_command_count(&mut built, commands.len() as u32);
        let mut encoded = Vec::new();
        encode_payload(&mut encoded, 77, &commands);
        assert_eq!(built, encoded);
    }

    #[test]
    fn errors_name_the_problem() {
        let mut out = Vec::new();
        encode_payload(&mut out, 1, [[b"DEL".as_slice(), b"key"]]);
        assert_eq!(
            decode_payload(&out[..out.len() - 1]),
            Err(PayloadError::Truncated {
                offset: out.len() - 3,
                needed: 1
            })
        );
        let mut trailing = out.clone();
        trailing.push(0);
        assert_eq!(
            decode_payload(&trailing),
            Err(PayloadError::TrailingBytes {
                offset: out.len(),
                count: 1
            })
        );
        assert_eq!(decode_payload(&[0; 12]), Err(PayloadError::NoCommands));
        assert_eq!(
            decode_payload(&[0; 16][..]).unwrap_err(),
            PayloadError::NoCommands
        );
        let mut empty_command = vec![0u8; 8];
        empty_command.extend_from_slice(&1u32.to_le_bytes());
        empty_command.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            decode_payload(&empty_command),
            Err(PayloadError::EmptyCommand { command_index: 0 })
        );
        assert_eq!(
            decode_payload(b""),
            Err(PayloadError::Truncated {
                offset: 0,
                needed: 8
            })
        );
        // Huge claimed counts fail on truncation without reserving gigabytes.
        let mut huge = vec![0u8; 8];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_payload(&huge),
            Err(PayloadError::Truncated { .. })
        ));
    }

    fn commands_strategy() -> impl Strategy<Value = Vec<Vec<Vec<u8>>>> {
        let argument = prop::collection::vec(any::<u8>(), 0..40);
        let command = prop::collection::vec(argument, 1..6);
        prop::collection::vec(command, 1..5)
    }

    proptest! {
        #[test]
        fn round_trip(now_ms in any::<u64>(), commands in commands_strategy()) {
            let mut out = Vec::new();
            encode_payload(&mut out, now_ms, &commands);
            let payload = decode_payload(&out).unwrap();
            prop_assert_eq!(payload.now_ms, now_ms);
            let decoded: Vec<Vec<Vec<u8>>> = payload
                .commands
                .iter()
                .map(|command| command.iter().map(|argument| argument.to_vec()).collect())
                .collect();
            prop_assert_eq!(decoded, commands);
        }

        #[test]
        fn every_strict_prefix_fails(now_ms in any::<u64>(), commands in commands_strategy()) {
            let mut out = Vec::new();
            encode_payload(&mut out, now_ms, &commands);
            for cut in 0..out.len() {
                let is_truncated = matches!(decode_payload(&out[..cut]), Err(PayloadError::Truncated { .. }));
                prop_assert!(is_truncated, "cut at {}", cut);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_payload(&bytes);
        }

        #[test]
        fn mutated_payloads_never_panic(
            commands in commands_strategy(),
            position in any::<prop::sample::Index>(),
            value in any::<u8>(),
        ) {
            let mut out = Vec::new();
            encode_payload(&mut out, 7, &commands);
            let index = position.index(out.len());
            out[index] = value;
            let _ = decode_payload(&out);
        }
    }
}
