//! Record framing: the bytes of a log file, and the scanner that reads them back and judges any damage.
//!
//! # File format
//!
//! A log file is a 16-byte file header followed by records, back to back, with nothing between them.
//! All integers are little-endian.
//!
//! ```text
//! file header (16 bytes)
//!   0..8    b"DIBSAOF1"                  FILE_MAGIC
//!   8..16   first_sequence: u64          the sequence the file's first record must carry (>= 1)
//!
//! record = header (20 bytes) + payload
//!   0..4    magic: u32                   RECORD_MAGIC = 0xD1B5_10C0 (bytes C0 10 B5 D1)
//!   4..8    payload_length: u32          <= RECORD_PAYLOAD_SIZE_MAX
//!   8..16   sequence: u64                previous record's sequence + 1; the log's first record is 1
//!   16..20  crc32: u32                   CRC-32 (IEEE, crc32fast) over header bytes 0..16, then the payload
//!   20..    payload                      payload_length bytes, see `aof::payload`
//! ```
//!
//! The checksum covers the sequence and the length, so a record moved, duplicated or cut is caught; the
//! magic lets the scanner tell a real record apart from the zeros a crash leaves behind.
//!
//! # Judging damage
//!
//! [`Scanner`] yields the records of a file in order, then a [`ScanVerdict`]. A file may end in zeros
//! after its last record: the space the log reserves ahead of its end (`aof::storage`). Zeros from a
//! record boundary to the end of the file are no damage: the verdict is [`ScanVerdict::Clean`] and says
//! how many there are. Otherwise, at the first spot `X` that
//! is not a good next record (header or payload incomplete, length over the limit, wrong magic, wrong
//! checksum), the scanner looks for a *valid record* at every byte offset after `X`: right magic, sane
//! length, fully present, right checksum (its sequence is not considered). If there is one, the damage
//! has good data after it and the verdict is [`ScanVerdict::Corrupt`]: the server must refuse to start,
//! and repair is an explicit, human decision (`dibs-aof fix`). If there is none, the damage is the tail a
//! crash left behind (a record cut short, a last record whose bytes did not all reach the disk) and the
//! verdict is [`ScanVerdict::TornTail`]: the server cuts
//! the file at `X`, logs it loudly and starts. Records sent before the crash were never acknowledged,
//! because a reply waits for its record's fsync.
//!
//! A record that is valid in itself but carries the wrong sequence (a gap or a repeat) is always
//! `Corrupt`: a crash cannot produce it.
//!
//! The search is conservative: a payload that itself contains the bytes of a valid record (a value that is
//! a dibs log) makes a torn record in front of it look like corruption. The server then refuses to start
//! instead of cutting; that is the safe way to be wrong.
//!
//! # The file header
//!
//! A file header with the wrong magic, or with `first_sequence` 0, is `Corrupt` at offset 0: the file may
//! not be a dibs log at all, and cutting it would destroy someone else's data. The one exception: a file
//! shorter than the header whose bytes are all zero, or a prefix of a header (`b"DIBSAOF1"` cut short, or
//! the magic followed by part of the sequence), is `TornTail` at offset 0. Such a file was created but its
//! header never fully reached the disk, which happens only before any record was written (the header is
//! fsync'd before the file is used), so nothing is lost by cutting it to zero; the server then writes a
//! fresh header. A file of any length whose bytes are all zero is treated the same way.
use crate::limits::RECORD_PAYLOAD_SIZE_MAX;
use std::fmt;

/// The first 8 bytes of every log file; the `1` is the format version.
pub const FILE_MAGIC: [u8; 8] = *b"DIBSAOF1";
/// Bytes of the file header: the magic, then `first_sequence: u64`.
pub const FILE_HEADER_SIZE: usize = 16;
/// The first field of every record header. Non-zero, so zero-filled space never looks like a record.
pub const RECORD_MAGIC: u32 = 0xD1B5_10C0;
/// Bytes of a record header: magic, payload_length, sequence, crc32.
pub const RECORD_HEADER_SIZE: usize = 20;
/// Header bytes the checksum covers before the payload: everything up to the crc32 field.
const RECORD_HEADER_CHECKSUMMED_SIZE: usize = 16;

/// Where a record being built starts in its buffer; returned by [`begin_record`], spent by
/// [`finish_record`].
#[derive(Debug)]
#[must_use = "a record must be finished with finish_record"]
pub struct RecordStart {
    offset: usize,
}

/// Appends a record header for `sequence` with the length and checksum left zero. The caller appends the
/// payload to `out` directly (no copy), then calls [`finish_record`].
pub fn begin_record(out: &mut Vec<u8>, sequence: u64) -> RecordStart {
    assert!(sequence >= 1, "sequences start at 1");
    let offset = out.len();
    out.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&sequence.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    RecordStart { offset }
}

/// Fills in the length and checksum of the record started at `start`; everything appended to `out` since
/// [`begin_record`] is its payload.
///
/// Panics if the payload exceeds `RECORD_PAYLOAD_SIZE_MAX`: the command layer bounds arguments so that
/// cannot happen, and a record the scanner would call damage must never be written.
pub fn finish_record(out: &mut [u8], start: RecordStart) {
    let payload_start = start.offset + RECORD_HEADER_SIZE;
    assert!(
        out.len() >= payload_start,
        "record buffer shrank under a started record"
    );
    let payload_length = out.len() - payload_start;
    assert!(
        payload_length <= RECORD_PAYLOAD_SIZE_MAX as usize,
        "record payload of {payload_length} bytes is over RECORD_PAYLOAD_SIZE_MAX"
    );
    out[start.offset + 4..start.offset + 8].copy_from_slice(&(payload_length as u32).to_le_bytes());
    let (header, payload) = out[start.offset..].split_at(RECORD_HEADER_SIZE);
    let checksum = record_checksum(
        header[..RECORD_HEADER_CHECKSUMMED_SIZE]
            .try_into()
            .expect("16 bytes"),
        payload,
    );
    out[start.offset + 16..payload_start].copy_from_slice(&checksum.to_le_bytes());
}

/// Appends one whole record: header and a copy of `payload`.
pub fn encode_record(out: &mut Vec<u8>, sequence: u64, payload: &[u8]) {
    let start = begin_record(out, sequence);
    out.extend_from_slice(payload);
    finish_record(out, start);
}

fn record_checksum(header: &[u8; RECORD_HEADER_CHECKSUMMED_SIZE], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header);
    hasher.update(payload);
    hasher.finalize()
}

/// The 16 bytes every log file starts with.
pub fn file_header(first_sequence: u64) -> [u8; FILE_HEADER_SIZE] {
    assert!(first_sequence >= 1, "sequences start at 1");
    let mut header = [0u8; FILE_HEADER_SIZE];
    header[..8].copy_from_slice(&FILE_MAGIC);
    header[8..].copy_from_slice(&first_sequence.to_le_bytes());
    header
}

/// Reads a file header from the start of `file`; returns the file's `first_sequence`.
pub fn parse_file_header(file: &[u8]) -> Result<u64, Damage> {
    if file.len() < FILE_HEADER_SIZE {
        return Err(Damage::FileHeaderIncomplete {
            length: file.len() as u64,
        });
    }
    if file[..8] != FILE_MAGIC {
        return Err(Damage::FileMagicWrong);
    }
    let first_sequence = u64::from_le_bytes(file[8..16].try_into().expect("8 bytes"));
    if first_sequence == 0 {
        return Err(Damage::FileFirstSequenceZero);
    }
    Ok(first_sequence)
}

/// What is wrong at the spot where a scan stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// The file is shorter than its 16-byte header.
    FileHeaderIncomplete { length: u64 },
    /// The file does not start with `b"DIBSAOF1"`.
    FileMagicWrong,
    /// The file header says the first sequence is 0; sequences start at 1.
    FileFirstSequenceZero,
    /// Fewer than 20 bytes remain: a record header cut short.
    HeaderIncomplete { available: u64 },
    /// The record's first four bytes are not `RECORD_MAGIC`.
    MagicWrong { found: u32 },
    /// The header claims a payload over `RECORD_PAYLOAD_SIZE_MAX`.
    LengthOverMax { payload_length: u32 },
    /// The header is sound but the file ends inside the payload.
    PayloadIncomplete { payload_length: u32, available: u64 },
    /// The checksum does not match the header and payload.
    ChecksumWrong { stored: u32, computed: u32 },
    /// A valid record with a sequence that is not the previous one plus 1.
    SequenceUnexpected { expected: u64, found: u64 },
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::FileHeaderIncomplete { length } => {
                write!(
                    f,
                    "file header incomplete: {length} of {FILE_HEADER_SIZE} bytes"
                )
            }
            Damage::FileMagicWrong => write!(f, "file does not start with DIBSAOF1"),
            Damage::FileFirstSequenceZero => write!(f, "file header has first sequence 0"),
            Damage::HeaderIncomplete { available } => {
                write!(
                    f,
                    "record header incomplete: {available} of {RECORD_HEADER_SIZE} bytes"
                )
            }
            Damage::MagicWrong { found } => write!(f, "record magic wrong: found {found:#010x}"),
            Damage::LengthOverMax { payload_length } => write!(
                f,
                "record payload length {payload_length} over the maximum {RECORD_PAYLOAD_SIZE_MAX}"
            ),
            Damage::PayloadIncomplete {
                payload_length,
                available,
            } => write!(
                f,
                "record payload incomplete: {available} of {payload_length} bytes"
            ),
            Damage::ChecksumWrong { stored, computed } => write!(
                f,
                "record checksum wrong: stored {stored:#010x}, computed {computed:#010x}"
            ),
            Damage::SequenceUnexpected { expected, found } => {
                write!(f, "record sequence {found} where {expected} was expected")
            }
        }
    }
}

/// One good record, borrowed from the scanned bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// Byte offset of the record header in the file.
    pub offset: u64,
    pub sequence: u64,
    pub payload: &'a [u8],
}

impl RecordView<'_> {
    /// Byte offset just past this record: where the next one starts.
    pub fn end_offset(&self) -> u64 {
        self.offset + (RECORD_HEADER_SIZE + self.payload.len()) as u64
    }
}

/// How a scan ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanVerdict {
    /// Every byte up to `end_offset` belongs to a good record, and the `reserved_bytes` after it (to the
    /// file's end) are all zero: space the log reserved ahead of its end (see `aof::storage`), or records
    /// that never reached the disk at all. Neither holds anything acknowledged under `appendfsync always`.
    Clean {
        end_offset: u64,
        reserved_bytes: u64,
    },
    /// Damage at `offset` with no valid record after it: cut the file to `offset`, dropping
    /// `discarded_bytes`.
    TornTail {
        offset: u64,
        discarded_bytes: u64,
        reason: Damage,
    },
    /// Damage at `offset` with good data after it (a valid record at `valid_record_offset`, or the
    /// damaged record itself when only its sequence is wrong). Refuse to start.
    Corrupt {
        offset: u64,
        reason: Damage,
        valid_record_offset: u64,
    },
}

impl ScanVerdict {
    /// Where the good prefix of the file ends.
    pub fn good_length(&self) -> u64 {
        match *self {
            ScanVerdict::Clean { end_offset, .. } => end_offset,
            ScanVerdict::TornTail { offset, .. } | ScanVerdict::Corrupt { offset, .. } => offset,
        }
    }
}

impl fmt::Display for ScanVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanVerdict::Clean {
                end_offset,
                reserved_bytes: 0,
            } => write!(f, "clean, {end_offset} bytes"),
            ScanVerdict::Clean {
                end_offset,
                reserved_bytes,
            } => write!(
                f,
                "clean, {end_offset} bytes of records, then {reserved_bytes} bytes of reserved space (zeros)"
            ),
            ScanVerdict::TornTail { offset, discarded_bytes, reason } => write!(
                f,
                "torn tail at offset {offset}: {reason}; {discarded_bytes} bytes after it hold no valid record"
            ),
            ScanVerdict::Corrupt { offset, reason, valid_record_offset } => write!(
                f,
                "corrupt at offset {offset}: {reason}; a valid record follows at offset {valid_record_offset}"
            ),
        }
    }
}

/// Reads the records of a whole log file (typically mmap'd by the caller) in order; once it yields `None`,
/// [`Scanner::verdict`] says how the file ended.
///
/// Records before damage are yielded before the verdict is known. A caller that must not act on a file
/// judged `Corrupt` either scans twice (cheap: no copies) or throws away what it built when the verdict is
/// `Corrupt`, as the server does by refusing to start.
#[derive(Debug)]
pub struct Scanner<'a> {
    file: &'a [u8],
    /// Where the next record starts.
    offset: usize,
    first_sequence: Option<u64>,
    /// The sequence the next record must carry.
    sequence_expected: u64,
    records_count: u64,
    verdict: Option<ScanVerdict>,
}

impl<'a> Scanner<'a> {
    /// Starts a scan; the file header is judged here, so a bad one leaves a verdict and no records.
    pub fn new(file: &'a [u8]) -> Scanner<'a> {
        let mut scanner = Scanner {
            file,
            offset: FILE_HEADER_SIZE,
            first_sequence: None,
            sequence_expected: 0,
            records_count: 0,
            verdict: None,
        };
        match parse_file_header(file) {
            Ok(first_sequence) => {
                scanner.first_sequence = Some(first_sequence);
                scanner.sequence_expected = first_sequence;
            }
            Err(reason) => {
                scanner.offset = 0;
                scanner.verdict = Some(if file_never_written(file) {
                    ScanVerdict::TornTail {
                        offset: 0,
                        discarded_bytes: file.len() as u64,
                        reason,
                    }
                } else {
                    ScanVerdict::Corrupt {
                        offset: 0,
                        reason,
                        valid_record_offset: 0,
                    }
                });
            }
        }
        scanner
    }

    /// The verdict, once the scan has ended (the iterator returned `None`).
    pub fn verdict(&self) -> Option<&ScanVerdict> {
        self.verdict.as_ref()
    }

    /// Runs the scan to its end, skipping the records left, and returns the verdict.
    pub fn finish(mut self) -> ScanVerdict {
        while self.next().is_some() {}
        self.verdict.expect("a finished scan has a verdict")
    }

    /// The file header's first sequence, if the header is good.
    pub fn first_sequence(&self) -> Option<u64> {
        self.first_sequence
    }

    /// Good records yielded so far.
    pub fn records_count(&self) -> u64 {
        self.records_count
    }

    /// The sequence of the last good record yielded, if any.
    pub fn last_sequence(&self) -> Option<u64> {
        (self.records_count > 0).then(|| self.sequence_expected - 1)
    }

    fn stop(&mut self, reason: Damage) {
        let offset = self.offset;
        if self.file[offset..].iter().all(|&byte| byte == 0) {
            // Zeros from a record boundary to the end: the log's reserved space, not damage.
            self.verdict = Some(ScanVerdict::Clean {
                end_offset: offset as u64,
                reserved_bytes: (self.file.len() - offset) as u64,
            });
            return;
        }
        self.verdict = Some(match find_valid_record(self.file, offset + 1) {
            Some(valid_record_offset) => ScanVerdict::Corrupt {
                offset: offset as u64,
                reason,
                valid_record_offset: valid_record_offset as u64,
            },
            None => ScanVerdict::TornTail {
                offset: offset as u64,
                discarded_bytes: (self.file.len() - offset) as u64,
                reason,
            },
        });
    }
}

impl<'a> Iterator for Scanner<'a> {
    type Item = RecordView<'a>;

    fn next(&mut self) -> Option<RecordView<'a>> {
        if self.verdict.is_some() {
            return None;
        }
        if self.offset == self.file.len() {
            self.verdict = Some(ScanVerdict::Clean {
                end_offset: self.offset as u64,
                reserved_bytes: 0,
            });
            return None;
        }
        match check_record(self.file, self.offset) {
            Ok((sequence, payload)) => {
                if sequence != self.sequence_expected {
                    // A record this sound was written by dibs; a crash cannot misnumber it.
                    self.verdict = Some(ScanVerdict::Corrupt {
                        offset: self.offset as u64,
                        reason: Damage::SequenceUnexpected {
                            expected: self.sequence_expected,
                            found: sequence,
                        },
                        valid_record_offset: self.offset as u64,
                    });
                    return None;
                }
                let record = RecordView {
                    offset: self.offset as u64,
                    sequence,
                    payload,
                };
                self.offset += RECORD_HEADER_SIZE + payload.len();
                self.sequence_expected += 1;
                self.records_count += 1;
                Some(record)
            }
            Err(reason) => {
                self.stop(reason);
                None
            }
        }
    }
}

/// Scans a whole file: its good records and the verdict.
pub fn scan(file: &[u8]) -> (Vec<RecordView<'_>>, ScanVerdict) {
    let mut scanner = Scanner::new(file);
    let records: Vec<RecordView<'_>> = scanner.by_ref().collect();
    let verdict = scanner.verdict.expect("a finished scan has a verdict");
    (records, verdict)
}

/// Checks the record at `offset` on its own (not its sequence); returns its sequence and payload.
fn check_record(file: &[u8], offset: usize) -> Result<(u64, &[u8]), Damage> {
    let rest = &file[offset..];
    if rest.len() < RECORD_HEADER_SIZE {
        return Err(Damage::HeaderIncomplete {
            available: rest.len() as u64,
        });
    }
    let magic = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes"));
    if magic != RECORD_MAGIC {
        return Err(Damage::MagicWrong { found: magic });
    }
    let payload_length = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    if payload_length > RECORD_PAYLOAD_SIZE_MAX {
        return Err(Damage::LengthOverMax { payload_length });
    }
    let available = (rest.len() - RECORD_HEADER_SIZE) as u64;
    if u64::from(payload_length) > available {
        return Err(Damage::PayloadIncomplete {
            payload_length,
            available,
        });
    }
    let payload = &rest[RECORD_HEADER_SIZE..RECORD_HEADER_SIZE + payload_length as usize];
    let stored = u32::from_le_bytes(rest[16..20].try_into().expect("4 bytes"));
    let computed = record_checksum(rest[..16].try_into().expect("16 bytes"), payload);
    if stored != computed {
        return Err(Damage::ChecksumWrong { stored, computed });
    }
    let sequence = u64::from_le_bytes(rest[8..16].try_into().expect("8 bytes"));
    Ok((sequence, payload))
}

/// The offset of the first valid record (sequence not considered) at or after `from`, trying every byte.
fn find_valid_record(file: &[u8], from: usize) -> Option<usize> {
    let magic = RECORD_MAGIC.to_le_bytes();
    let mut offset = from;
    while offset + RECORD_HEADER_SIZE <= file.len() {
        // Skip quickly to the next place the magic's first byte appears; only there can a record start.
        match file[offset..file.len() - RECORD_HEADER_SIZE + 1]
            .iter()
            .position(|&b| b == magic[0])
        {
            None => return None,
            Some(skip) => offset += skip,
        }
        if file[offset..offset + 4] == magic && check_record(file, offset).is_ok() {
            return Some(offset);
        }
        offset += 1;
    }
    None
}

/// True for a file whose header never reached the disk in full: all zero bytes, or shorter than the header
/// and a prefix of one. See the module documentation.
fn file_never_written(file: &[u8]) -> bool {
    if file.iter().all(|&b| b == 0) {
        return true;
    }
    if file.len() >= FILE_HEADER_SIZE {
        return false;
    }
    let magic_length = file.len().min(FILE_MAGIC.len());
    file[..magic_length] == FILE_MAGIC[..magic_length]
}

#[cfg(test)]
mod tests;
