//! Snapshot files: the whole keyspace as of one log sequence, written by a compaction; their byte format,
//! the reader that verifies one, and the thread that writes one (`writer`) so the loop never blocks on
//! the disk.
//!
//! # File format (protocol.md copies it)
//! All integers little-endian, no padding. A snapshot is a header, chunks, and one trailer chunk.
//!
//! | Size | Field | Value |
//! |---:|---|---|
//! | 8 | `magic` | `b"DIBSSNP1"` (the `1` is the format version) |
//! | 8 | `sequence` | `u64` S: the snapshot holds the state after every record up to S, and nothing after |
//! | 8 | `now_ms` | `u64`, the loop's clock when the snapshot began; the restarted clock never goes below it |
//! | 4 | `crc32` | CRC-32 (IEEE) of the 24 bytes before it |
//!
//! Then chunks, each:
//!
//! | Size | Field | Value |
//! |---:|---|---|
//! | 1 | `kind` | 1 entries, 2 trailer |
//! | 8 | `length` | `u64` payload length; at most `SNAPSHOT_CHUNK_SIZE_MAX` |
//! | 4 | `crc32` | CRC-32 of `kind`, `length`, then the payload |
//! | n | payload | entries chunk: whole entries back to back (`store::encoding::encode_entry`); trailer: `entry_count` `u64`, `chunk_count` `u64` (entries chunks before it) |
//!
//! The trailer is the last chunk and nothing follows it. A file without a valid trailer is incomplete
//! (a crash while writing, or a cut), and a wrong count is damage: either way the snapshot is refused, never
//! half-loaded. A snapshot only counts once the MANIFEST names it, and the manifest is written only after
//! the snapshot is complete and fsync'd, so a complete state is always available.
//!
//! This layer frames, checksums and counts; an entries chunk's payload is opaque to it. What an entry is
//! (a key, an expiry and a value in the store's encoding) is the store's: `compaction::snapshot_entries`
//! splits the payloads into entries for the loaders and tools.
use crate::limits::SNAPSHOT_CHUNK_SIZE_MAX;
use std::fmt;

mod file;
pub mod writer;

pub const SNAPSHOT_MAGIC: &[u8; 8] = b"DIBSSNP1";
pub const SNAPSHOT_HEADER_SIZE: usize = 28;
pub const CHUNK_HEADER_SIZE: usize = 13;
pub const CHUNK_KIND_ENTRIES: u8 = 1;
pub const CHUNK_KIND_TRAILER: u8 = 2;
const TRAILER_PAYLOAD_SIZE: usize = 16;

pub fn header(sequence: u64, now_ms: u64) -> [u8; SNAPSHOT_HEADER_SIZE] {
    let mut bytes = [0; SNAPSHOT_HEADER_SIZE];
    bytes[..8].copy_from_slice(SNAPSHOT_MAGIC);
    bytes[8..16].copy_from_slice(&sequence.to_le_bytes());
    bytes[16..24].copy_from_slice(&now_ms.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..24]);
    bytes[24..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

/// The header of a chunk with this payload; the payload follows it.
pub fn chunk_header(kind: u8, payload: &[u8]) -> [u8; CHUNK_HEADER_SIZE] {
    let mut bytes = [0; CHUNK_HEADER_SIZE];
    bytes[0] = kind;
    bytes[1..9].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[..9]);
    hasher.update(payload);
    bytes[9..].copy_from_slice(&hasher.finalize().to_le_bytes());
    bytes
}

pub fn trailer_payload(entry_count: u64, chunk_count: u64) -> [u8; TRAILER_PAYLOAD_SIZE] {
    let mut bytes = [0; TRAILER_PAYLOAD_SIZE];
    bytes[..8].copy_from_slice(&entry_count.to_le_bytes());
    bytes[8..].copy_from_slice(&chunk_count.to_le_bytes());
    bytes
}

/// What a verified snapshot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotSummary {
    pub sequence: u64,
    pub now_ms: u64,
    pub entry_count: u64,
    pub chunk_count: u64,
    pub length: u64,
}

/// Where and why a snapshot is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotDamage {
    pub offset: u64,
    pub reason: String,
}

impl fmt::Display for SnapshotDamage {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "at byte offset {}: {}", self.offset, self.reason)
    }
}

impl SnapshotDamage {
    /// Damage at byte `offset` of the file.
    pub fn at(offset: usize, reason: impl Into<String>) -> SnapshotDamage {
        SnapshotDamage {
            offset: offset as u64,
            reason: reason.into(),
        }
    }
}

/// Reads and verifies a whole snapshot, handing each entries chunk's payload, with the file offset where
/// it starts, to `on_entries` in file order; `on_entries` returns how many entries the payload held (or
/// where and why it is damaged), which the trailer's count is checked against. Every checksum, the
/// trailer's counts and the end of the file are checked. A caller that loads entries must discard them
/// on error.
pub fn read_snapshot_chunks<'a>(
    bytes: &'a [u8],
    mut on_entries: impl FnMut(&'a [u8], usize) -> Result<u64, SnapshotDamage>,
) -> Result<SnapshotSummary, SnapshotDamage> {
    if bytes.len() < SNAPSHOT_HEADER_SIZE {
        return Err(SnapshotDamage::at(
            bytes.len(),
            "the file is shorter than a snapshot header",
        ));
    }
    if &bytes[..8] != SNAPSHOT_MAGIC {
        return Err(SnapshotDamage::at(0, "not a dibs snapshot (wrong magic)"));
    }
    let stored_crc = u32::from_le_bytes(bytes[24..28].try_into().expect("4 bytes"));
    if crc32fast::hash(&bytes[..24]) != stored_crc {
        return Err(SnapshotDamage::at(0, "header checksum mismatch"));
    }
    let sequence = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let now_ms = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    let mut offset = SNAPSHOT_HEADER_SIZE;
    let mut entry_count = 0u64;
    let mut chunk_count = 0u64;
    loop {
        if bytes.len() - offset < CHUNK_HEADER_SIZE {
            return Err(SnapshotDamage::at(
                offset,
                "the snapshot ends before its trailer (incomplete file)",
            ));
        }
        let kind = bytes[offset];
        let length = u64::from_le_bytes(bytes[offset + 1..offset + 9].try_into().expect("8"));
        let stored_crc =
            u32::from_le_bytes(bytes[offset + 9..offset + 13].try_into().expect("4 bytes"));
        let payload_at = offset + CHUNK_HEADER_SIZE;
        if length > SNAPSHOT_CHUNK_SIZE_MAX || length > (bytes.len() - payload_at) as u64 {
            return Err(SnapshotDamage::at(
                offset,
                format!("a chunk of {length} bytes runs past the end of the file"),
            ));
        }
        let payload = &bytes[payload_at..payload_at + length as usize];
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&bytes[offset..offset + 9]);
        hasher.update(payload);
        if hasher.finalize() != stored_crc {
            return Err(SnapshotDamage::at(offset, "chunk checksum mismatch"));
        }
        match kind {
            CHUNK_KIND_ENTRIES => {
                entry_count += on_entries(payload, payload_at)?;
                chunk_count += 1;
            }
            CHUNK_KIND_TRAILER => {
                if payload.len() != TRAILER_PAYLOAD_SIZE {
                    return Err(SnapshotDamage::at(offset, "a trailer of the wrong size"));
                }
                let expected = trailer_payload(entry_count, chunk_count);
                if payload != expected {
                    return Err(SnapshotDamage::at(
                        offset,
                        format!(
                            "the trailer counts do not match the {entry_count} entries in {chunk_count} chunks read"
                        ),
                    ));
                }
                let end = payload_at + TRAILER_PAYLOAD_SIZE;
                if end != bytes.len() {
                    return Err(SnapshotDamage::at(end, "bytes after the trailer"));
                }
                return Ok(SnapshotSummary {
                    sequence,
                    now_ms,
                    entry_count,
                    chunk_count,
                    length: bytes.len() as u64,
                });
            }
            other => {
                return Err(SnapshotDamage::at(
                    offset,
                    format!("unknown chunk kind {other}"),
                ))
            }
        }
        offset = payload_at + length as usize;
    }
}

/// A complete snapshot of `chunks` (entries already encoded) as bytes: for tests and tools.
pub fn encode_snapshot(
    sequence: u64,
    now_ms: u64,
    chunks: &[Vec<u8>],
    entry_count: u64,
) -> Vec<u8> {
    let mut out = header(sequence, now_ms).to_vec();
    for chunk in chunks {
        out.extend_from_slice(&chunk_header(CHUNK_KIND_ENTRIES, chunk));
        out.extend_from_slice(chunk);
    }
    let trailer = trailer_payload(entry_count, chunks.len() as u64);
    out.extend_from_slice(&chunk_header(CHUNK_KIND_TRAILER, &trailer));
    out.extend_from_slice(&trailer);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot of three chunks of opaque bytes; each chunk counts as as many entries as it has bytes.
    fn sample() -> Vec<u8> {
        let chunks = vec![
            b"first".to_vec(),
            vec![0, 1, 2, 255],
            b"third chunk".to_vec(),
        ];
        let entry_count = chunks.iter().map(|chunk| chunk.len() as u64).sum();
        encode_snapshot(42, 1_000, &chunks, entry_count)
    }

    fn count_bytes(payload: &[u8], _offset: usize) -> Result<u64, SnapshotDamage> {
        Ok(payload.len() as u64)
    }

    #[test]
    fn the_chunks_read_back_in_order_with_their_offsets() {
        let bytes = sample();
        let mut seen = Vec::new();
        let summary = read_snapshot_chunks(&bytes, |payload, offset| {
            assert_eq!(&bytes[offset..offset + payload.len()], payload);
            seen.push(payload.to_vec());
            Ok(payload.len() as u64)
        })
        .expect("valid");
        assert_eq!(
            (
                summary.sequence,
                summary.now_ms,
                summary.entry_count,
                summary.chunk_count
            ),
            (42, 1_000, 20, 3)
        );
        assert_eq!(summary.length, bytes.len() as u64);
        assert_eq!(seen[2], b"third chunk");
    }

    #[test]
    fn every_cut_every_bit_flip_and_a_wrong_count_are_detected() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            assert!(
                read_snapshot_chunks(&bytes[..cut], count_bytes).is_err(),
                "a cut at {cut} went unnoticed"
            );
        }
        for position in 0..bytes.len() {
            for bit in [0, 3, 7] {
                let mut damaged = bytes.clone();
                damaged[position] ^= 1 << bit;
                assert!(
                    read_snapshot_chunks(&damaged, count_bytes).is_err(),
                    "a flip at {position} bit {bit} went unnoticed"
                );
            }
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(read_snapshot_chunks(&longer, count_bytes).is_err());
        let miscounted = read_snapshot_chunks(&bytes, |_, _| Ok(1)).unwrap_err();
        assert!(miscounted.reason.contains("trailer counts"), "{miscounted}");
    }
}
