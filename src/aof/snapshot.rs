//! Snapshot files: the whole keyspace as of one log sequence, written by a compaction, and the thread that
//! writes them so the loop never blocks on the disk.
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
//! # The writer thread
//! [`SnapshotWriter::spawn`] creates `snapshot-<S>.tmp` and takes chunk payloads over a bounded channel
//! (the loop stops serializing while it is full: memory stays bounded when the disk is slower). It frames
//! and checksums each one off the loop. Large collections handed over by handle reach it already
//! serialized, one entry each, from the collection serializer thread (`aof::collection_serializer`), and
//! each becomes a chunk of its own, written ahead of queued chunks. On [`WriterMessage::Finish`], once the
//! serializer also said it serialized everything it was handed, it writes the trailer, fsyncs the file,
//! renames it to `snapshot-<S>.snap`, fsyncs the directory, writes the manifest durably
//! (`aof::manifest`), and only then deletes what the new snapshot makes redundant: log files whose records
//! are all at most S and older snapshots. Then it reports back through the loop's waker.
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::collection_serializer::{self, CollectionQueue, KeptBuffer, SerializerOutput};
use super::manifest::{self, Manifest};
use super::storage::sync_directory_of;
use crate::store::encoding::{read_entry, RawEntry, Reader};
use crate::store::keyspace::HandedOver;

pub const SNAPSHOT_MAGIC: &[u8; 8] = b"DIBSSNP1";
pub const SNAPSHOT_HEADER_SIZE: usize = 28;
pub const CHUNK_HEADER_SIZE: usize = 13;
pub const CHUNK_KIND_ENTRIES: u8 = 1;
pub const CHUNK_KIND_TRAILER: u8 = 2;
const TRAILER_PAYLOAD_SIZE: usize = 16;
/// The loop hands over entries in chunks of about this size.
pub const SNAPSHOT_CHUNK_SIZE: usize = 1 << 20;
/// A chunk holds whole entries, so one value bigger than a chunk makes a bigger chunk; the largest value
/// is bounded by memory, not by this format. A length beyond this is damage.
pub const SNAPSHOT_CHUNK_SIZE_MAX: u64 = 1 << 40;
/// Chunks queued for the writer thread before the loop pauses serializing: 16 MiB in flight.
pub const SNAPSHOT_CHUNKS_QUEUED_MAX: usize = 16;

pub fn snapshot_file_name(sequence: u64) -> String {
    format!("snapshot-{sequence:020}.snap")
}

pub fn snapshot_temporary_name(sequence: u64) -> String {
    format!("snapshot-{sequence:020}.tmp")
}

/// The sequence in a snapshot file name, if `name` is one.
pub fn parse_snapshot_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("snapshot-")?.strip_suffix(".snap")?;
    (digits.len() == 20).then(|| digits.parse().ok()).flatten()
}

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

impl std::fmt::Display for SnapshotDamage {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "at byte offset {}: {}", self.offset, self.reason)
    }
}

fn damage(offset: usize, reason: impl Into<String>) -> SnapshotDamage {
    SnapshotDamage {
        offset: offset as u64,
        reason: reason.into(),
    }
}

/// Reads and verifies a whole snapshot, handing each entry to `on_entry` in file order. Every checksum,
/// the trailer's counts and the end of the file are checked; an error from `on_entry` (a value that does
/// not decode) is reported at its chunk's offset. A caller that loads entries must discard them on error.
pub fn read_snapshot(
    bytes: &[u8],
    mut on_entry: impl FnMut(RawEntry) -> Result<(), String>,
) -> Result<SnapshotSummary, SnapshotDamage> {
    if bytes.len() < SNAPSHOT_HEADER_SIZE {
        return Err(damage(
            bytes.len(),
            "the file is shorter than a snapshot header",
        ));
    }
    if &bytes[..8] != SNAPSHOT_MAGIC {
        return Err(damage(0, "not a dibs snapshot (wrong magic)"));
    }
    let stored_crc = u32::from_le_bytes(bytes[24..28].try_into().expect("4 bytes"));
    if crc32fast::hash(&bytes[..24]) != stored_crc {
        return Err(damage(0, "header checksum mismatch"));
    }
    let sequence = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let now_ms = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    let mut offset = SNAPSHOT_HEADER_SIZE;
    let mut entry_count = 0u64;
    let mut chunk_count = 0u64;
    loop {
        if bytes.len() - offset < CHUNK_HEADER_SIZE {
            return Err(damage(
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
            return Err(damage(
                offset,
                format!("a chunk of {length} bytes runs past the end of the file"),
            ));
        }
        let payload = &bytes[payload_at..payload_at + length as usize];
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&bytes[offset..offset + 9]);
        hasher.update(payload);
        if hasher.finalize() != stored_crc {
            return Err(damage(offset, "chunk checksum mismatch"));
        }
        match kind {
            CHUNK_KIND_ENTRIES => {
                let mut reader = Reader::new(payload);
                while reader.remaining() > 0 {
                    let entry_offset = payload_at + reader.offset();
                    let entry = read_entry(&mut reader).map_err(|reason| {
                        damage(entry_offset, format!("an entry does not decode: {reason}"))
                    })?;
                    on_entry(entry).map_err(|reason| {
                        damage(entry_offset, format!("an entry does not load: {reason}"))
                    })?;
                    entry_count += 1;
                }
                chunk_count += 1;
            }
            CHUNK_KIND_TRAILER => {
                if payload.len() != TRAILER_PAYLOAD_SIZE {
                    return Err(damage(offset, "a trailer of the wrong size"));
                }
                let expected = trailer_payload(entry_count, chunk_count);
                if payload != expected {
                    return Err(damage(
                        offset,
                        format!(
                            "the trailer counts do not match the {entry_count} entries in {chunk_count} chunks read"
                        ),
                    ));
                }
                let end = payload_at + TRAILER_PAYLOAD_SIZE;
                if end != bytes.len() {
                    return Err(damage(end, "bytes after the trailer"));
                }
                return Ok(SnapshotSummary {
                    sequence,
                    now_ms,
                    entry_count,
                    chunk_count,
                    length: bytes.len() as u64,
                });
            }
            other => return Err(damage(offset, format!("unknown chunk kind {other}"))),
        }
        offset = payload_at + length as usize;
    }
}

/// Entries the loop serialized, whole entries back to back, for one chunk. (Collections taken by handle
/// travel apart, through the collection serializer: [`SnapshotWriter::hand_over`].)
#[derive(Debug, Default)]
pub struct SnapshotChunk {
    pub bytes: Vec<u8>,
}

/// What the loop sends the writer thread.
pub enum WriterMessage {
    /// Whole entries, to frame as one chunk.
    Chunk(SnapshotChunk),
    /// Every entry was sent: finish the file, publish it in the manifest, delete what it replaces.
    Finish { entry_count: u64 },
}

/// What the writer thread reports when it is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriterReport {
    /// The manifest names the new snapshot; `deleted` files were removed after that.
    Done {
        sequence: u64,
        snapshot_bytes: u64,
        deleted: Vec<String>,
    },
    Failed(String),
}

/// The loop's end of a snapshot writer thread and of its collection serializer thread. Dropping it without
/// `Finish` abandons the snapshot: the threads let go of their handles, the writer removes its temporary
/// file, and both exit.
pub struct SnapshotWriter {
    sender: Option<Sender<WriterMessage>>,
    /// Collections taken by handle, for the collection serializer thread ([`SnapshotWriter::hand_over`]).
    collections: Arc<CollectionQueue>,
    reports: Receiver<WriterReport>,
    thread: Option<JoinHandle<()>>,
    pub sequence: u64,
}

impl SnapshotWriter {
    /// Starts the thread writing `snapshot-<sequence>.tmp` in `directory`, and the collection serializer
    /// that feeds it, which serializes into `collection_buffer` (kept from one compaction to the next).
    /// `notify` wakes the loop: called after the report is sent, and whenever the serializer lets go of a
    /// collection (a command may be waiting for it).
    pub fn spawn(
        directory: &Path,
        sequence: u64,
        now_ms: u64,
        collection_buffer: Arc<KeptBuffer>,
        notify: impl Fn() + Send + Sync + 'static,
    ) -> SnapshotWriter {
        let notify: Arc<dyn Fn() + Send + Sync> = Arc::new(notify);
        let (sender, receiver) = crossbeam_channel::bounded(SNAPSHOT_CHUNKS_QUEUED_MAX);
        let collections = Arc::new(CollectionQueue::default());
        // Unbounded, but the serializer keeps the bytes in them under
        // `SNAPSHOT_COLLECTION_BYTES_QUEUED_MAX`, counting the lengths the writer reports written.
        let (serialized_sender, serialized_receiver) = crossbeam_channel::unbounded();
        let (written_sender, written_receiver) = crossbeam_channel::unbounded();
        collection_serializer::spawn(
            Arc::clone(&collections),
            serialized_sender,
            written_receiver,
            Arc::clone(&collection_buffer),
            Arc::clone(&notify),
        );
        let (report_sender, reports) = crossbeam_channel::bounded(1);
        let directory = directory.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("dibs-snapshot".to_string())
            .spawn(move || {
                lower_thread_priority();
                let temporary = directory.join(snapshot_temporary_name(sequence));
                let queues = WriterQueues {
                    chunks: &receiver,
                    collections: &serialized_receiver,
                    written: &written_sender,
                    collection_buffer: &collection_buffer,
                };
                let report = match write_snapshot(&directory, sequence, now_ms, queues) {
                    Ok(Some(report)) => report,
                    Ok(None) => {
                        // Abandoned: the loop dropped its end.
                        let _ = fs::remove_file(&temporary);
                        return;
                    }
                    Err(error) => {
                        let _ = fs::remove_file(&temporary);
                        WriterReport::Failed(error)
                    }
                };
                if report_sender.send(report).is_ok() {
                    notify();
                }
            })
            .expect("spawn the snapshot thread");
        SnapshotWriter {
            sender: Some(sender),
            collections,
            reports,
            thread: Some(thread),
            sequence,
        }
    }

    /// Hands over a chunk without blocking; gives it back when the queue is full.
    pub fn try_send(&self, chunk: SnapshotChunk) -> Result<(), SnapshotChunk> {
        let sender = self.sender.as_ref().expect("sender lives until finish");
        match sender.try_send(WriterMessage::Chunk(chunk)) {
            Ok(()) => Ok(()),
            Err(crossbeam_channel::TrySendError::Full(WriterMessage::Chunk(chunk))) => Err(chunk),
            // The thread ended early (it failed): its report says why; drop the chunk.
            Err(_) => Ok(()),
        }
    }

    /// Hands over collections taken by handle. The collection serializer thread serializes them (wanted
    /// ones first) and drops each handle as soon as its bytes exist: a command that changes one of them
    /// waits for exactly that (`Server::waits_for_snapshot`), so the wait must include neither the queue of
    /// serialized chunks nor the writer's disk writes. The writer then writes the bytes, ahead of queued
    /// chunks.
    pub fn hand_over(&self, collections: HandedOver) {
        self.collections.hand_over(collections);
    }

    /// Hands over a chunk, waiting while the queue is full (SAVE).
    pub fn send(&self, chunk: SnapshotChunk) {
        let sender = self.sender.as_ref().expect("sender lives until finish");
        let _ = sender.send(WriterMessage::Chunk(chunk));
    }

    pub fn finish(&mut self, entry_count: u64) {
        if let Some(sender) = self.sender.take() {
            // Nothing more will be handed over: the serializer ends once it has serialized what it has,
            // and the writer waits for that before the trailer.
            self.collections.close();
            let _ = sender.send(WriterMessage::Finish { entry_count });
        }
    }

    pub fn try_report(&self) -> Option<WriterReport> {
        self.reports.try_recv().ok()
    }

    /// Waits for the report (SAVE, tests).
    pub fn wait_report(&self) -> WriterReport {
        self.reports
            .recv()
            .unwrap_or_else(|_| WriterReport::Failed("the snapshot thread stopped".to_string()))
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        if self.sender.take().is_some() {
            // Not finished: abandoned. (After `Finish` both threads complete the snapshot, as before.)
            self.collections.abandon();
        }
        if let Some(thread) = self.thread.take() {
            // Abandoning a snapshot must not block the loop on the disk: the thread cleans up alone.
            drop(thread);
        }
    }
}

/// The writer's CPU work (checksums, copies into the page cache) must never take a core from the event
/// loop: on a small machine a busy writer thread scheduled over the loop is a pause clients see. Linux
/// applies `nice` per thread; failing to lower it is harmless.
fn lower_thread_priority() {
    const WRITER_NICE: libc::c_int = 10;
    // Safety: gettid and setpriority take no pointers; they only affect this thread's scheduling.
    unsafe {
        let thread_id = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, thread_id as libc::id_t, WRITER_NICE);
    }
}

fn io_context<'a>(what: &'a str, path: &'a Path) -> impl Fn(io::Error) -> String + 'a {
    move |error| format!("{what} {}: {error}", path.display())
}

/// The snapshot file being written: with `O_DIRECT` in aligned blocks of `SNAPSHOT_DIRECT_BLOCK_BYTES`
/// where the file system allows it (tmpfs, for one, does not), else through the page cache paced by
/// [`Writeback`].
///
/// Why direct: in the page cache the snapshot's data is the file system's to write back, and on ext4
/// (`data=ordered`) every journal commit waits for the data of blocks allocated in it, so the log's fsyncs,
/// each a commit, kept waiting for snapshot data (replies took up to 11-16 ms during a compaction of a
/// 112 MB snapshot, against 4-6 ms without one, with the writeback paced). A direct write is on the disk
/// when it returns and is never part of a commit's data, and with one block in flight at a time the disk's
/// queue in front of a log write stays short. Replies then took 6-9 ms at most (with gentler deletion,
/// `FILE_DELETE_STEP_PAUSE`).
struct SnapshotFile {
    file: File,
    direct: bool,
    /// One block plus room to align it (direct I/O wants memory, offset and length aligned).
    storage: Vec<u8>,
    block_start: usize,
    filled: usize,
    /// Bytes in the file (direct: whole blocks; the last partial block is written by `finish`).
    written: u64,
    writeback: Writeback,
}

/// What direct I/O needs its buffers, offsets and lengths aligned to: the largest logical block size of
/// common disks.
const DIRECT_ALIGNMENT: usize = 4096;
const DIRECT_BLOCK_BYTES: usize = crate::limits::SNAPSHOT_DIRECT_BLOCK_BYTES;
const _: () = assert!(DIRECT_BLOCK_BYTES.is_multiple_of(DIRECT_ALIGNMENT));

impl SnapshotFile {
    fn create(path: &Path) -> io::Result<SnapshotFile> {
        use std::os::unix::fs::OpenOptionsExt;
        let direct = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(path);
        let (file, direct) = match direct {
            Ok(file) => (file, true),
            // EINVAL: this file system does no direct I/O. Anything else, the plain create reports too.
            Err(_) => (File::create(path)?, false),
        };
        let storage = if direct {
            vec![0u8; DIRECT_BLOCK_BYTES + DIRECT_ALIGNMENT]
        } else {
            Vec::new()
        };
        let block_start = storage.as_ptr().align_offset(DIRECT_ALIGNMENT);
        Ok(SnapshotFile {
            file,
            direct,
            storage,
            block_start,
            filled: 0,
            written: 0,
            writeback: Writeback::default(),
        })
    }

    fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        if !self.direct {
            self.file.write_all(bytes)?;
            self.written += bytes.len() as u64;
            self.writeback.after_write(&self.file, self.written);
            return Ok(());
        }
        use std::os::unix::fs::FileExt;
        while !bytes.is_empty() {
            let count = (DIRECT_BLOCK_BYTES - self.filled).min(bytes.len());
            let at = self.block_start + self.filled;
            self.storage[at..at + count].copy_from_slice(&bytes[..count]);
            self.filled += count;
            bytes = &bytes[count..];
            if self.filled == DIRECT_BLOCK_BYTES {
                let block = &self.storage[self.block_start..self.block_start + DIRECT_BLOCK_BYTES];
                self.file.write_all_at(block, self.written)?;
                self.written += DIRECT_BLOCK_BYTES as u64;
                self.filled = 0;
            }
        }
        Ok(())
    }

    /// Writes what is buffered and gives back the file (not yet fsync'd) and its length. The last block
    /// goes out padded with zeros to the alignment, then the file is cut to its real length.
    fn finish(mut self) -> io::Result<(File, u64)> {
        if self.direct && self.filled > 0 {
            use std::os::unix::fs::FileExt;
            let padded = self.filled.next_multiple_of(DIRECT_ALIGNMENT);
            let start = self.block_start;
            self.storage[start + self.filled..start + padded].fill(0);
            self.file
                .write_all_at(&self.storage[start..start + padded], self.written)?;
            self.written += self.filled as u64;
            self.file.set_len(self.written)?;
        }
        Ok((self.file, self.written))
    }
}

/// Paces the snapshot's writeback so the disk never holds a long queue of it in front of the log's fsyncs
/// (see `SNAPSHOT_WRITEBACK_BYTES`). Every window of that many bytes has its writeback started as soon as
/// it is written, and the writer then waits for the window before it, so at most two windows are ever
/// dirty or in flight. `sync_file_range` makes nothing durable (no metadata, no disk cache flush): the
/// final fsync still does that, and reports any I/O error, so errors here are only logged.
#[derive(Default)]
struct Writeback {
    /// Where the window being filled starts.
    window_start: u64,
    /// The window whose writeback was started last: (offset, length).
    in_flight: Option<(u64, u64)>,
}

impl Writeback {
    fn after_write(&mut self, file: &File, written: u64) {
        let length = written - self.window_start;
        if length < crate::limits::SNAPSHOT_WRITEBACK_BYTES {
            return;
        }
        sync_file_range(file, self.window_start, length, false);
        if let Some((offset, length)) = self.in_flight {
            sync_file_range(file, offset, length, true);
        }
        self.in_flight = Some((self.window_start, length));
        self.window_start = written;
    }
}

/// Starts writeback of a file range (`wait`: and waits until it, and any earlier writeback of it, is done).
fn sync_file_range(file: &File, offset: u64, length: u64, wait: bool) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let flags = if wait {
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER
        } else {
            libc::SYNC_FILE_RANGE_WRITE
        };
        // SAFETY: a valid descriptor owned by `file`; the call takes no pointers.
        let result = unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                offset as libc::off64_t,
                length as libc::off64_t,
                flags,
            )
        };
        if result != 0 {
            log::debug!(
                "snapshot writeback pacing: sync_file_range: {}",
                io::Error::last_os_error()
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, length, wait);
}

/// Cuts a replaced file down `FILE_DELETE_STEP_BYTES` at a time, each cut made durable before the next,
/// so that deleting it frees its blocks in many small journal commits instead of one large one.
///
/// Why: unlinking a file of hundreds of megabytes frees all its extents in one ext4 journal transaction,
/// and the log's next fdatasync (which every reply under `always` waits for) has to commit it: a stall of
/// tens of milliseconds right after each compaction. The file is no longer named by the manifest, so a
/// crash part-way leaves a shorter unreferenced file, which recovery deletes like any replaced file.
/// Failures only mean the plain unlink that follows does the work.
fn shrink_gradually(path: &Path) {
    let Ok(file) = fs::OpenOptions::new().write(true).open(path) else {
        return;
    };
    let Ok(metadata) = file.metadata() else {
        return;
    };
    let mut length = metadata.len();
    while length > crate::limits::FILE_DELETE_STEP_BYTES {
        length -= crate::limits::FILE_DELETE_STEP_BYTES;
        if file.set_len(length).is_err() || file.sync_data().is_err() {
            return;
        }
        std::thread::sleep(crate::limits::FILE_DELETE_STEP_PAUSE);
    }
}

enum WriterInput {
    Collection(SerializerOutput),
    Message(WriterMessage),
    /// The loop dropped its end before `Finish`: the snapshot was abandoned.
    Abandoned,
    /// The serializer ended without `AllSerialized`: it let go of collections it did not serialize (the
    /// snapshot was abandoned, or the thread died), so the snapshot would lack them.
    SerializerStopped,
}

/// The writer thread's inputs.
struct WriterQueues<'a> {
    chunks: &'a Receiver<WriterMessage>,
    /// Collections the serializer serialized; served first, whenever the thread is between two chunks, so
    /// that their memory is given back soon.
    collections: &'a Receiver<SerializerOutput>,
    /// The length of each collection written, for the serializer's bound.
    written: &'a Sender<usize>,
    /// Where written collection buffers go back to the serializer, for reuse.
    collection_buffer: &'a KeptBuffer,
}

/// The writer thread's work. `Ok(None)`: abandoned before `Finish`.
fn write_snapshot(
    directory: &Path,
    sequence: u64,
    now_ms: u64,
    queues: WriterQueues,
) -> Result<Option<WriterReport>, String> {
    let temporary = directory.join(snapshot_temporary_name(sequence));
    let mut file =
        SnapshotFile::create(&temporary).map_err(io_context("cannot create", &temporary))?;
    let write = |file: &mut SnapshotFile, bytes: &[u8]| -> Result<(), String> {
        file.write(bytes)
            .map_err(io_context("cannot write", &temporary))
    };
    write(&mut file, &header(sequence, now_ms))?;
    let mut chunk_count = 0u64;
    let mut write_chunk = |file: &mut SnapshotFile, chunk: &[u8]| -> Result<(), String> {
        if !chunk.is_empty() {
            write(file, &chunk_header(CHUNK_KIND_ENTRIES, chunk))?;
            write(file, chunk)?;
            chunk_count += 1;
        }
        Ok(())
    };
    // Serialized collections first (one chunk each), whenever there are any: their memory counts against
    // the serializer's bound. The snapshot is complete only once the loop sent `Finish` and the serializer
    // said every collection handed over was serialized (`AllSerialized`, sent after the loop closed its
    // queue, which it does just before `Finish`): the trailer's counts depend on both.
    let mut finished: Option<u64> = None;
    let mut all_collections_serialized = false;
    let no_more_collections = crossbeam_channel::never();
    let entry_count = loop {
        if let (Some(entry_count), true) = (finished, all_collections_serialized) {
            break entry_count;
        }
        let collections = if all_collections_serialized {
            // Nothing more comes from there: wait only on the chunks.
            &no_more_collections
        } else {
            queues.collections
        };
        let input = match collections.try_recv() {
            Ok(output) => WriterInput::Collection(output),
            Err(_) if finished.is_some() => collections
                .recv()
                .map_or(WriterInput::SerializerStopped, WriterInput::Collection),
            Err(_) => crossbeam_channel::select! {
                recv(collections) -> output => output.map_or(WriterInput::SerializerStopped, WriterInput::Collection),
                recv(queues.chunks) -> message => message.map_or(WriterInput::Abandoned, WriterInput::Message),
            },
        };
        match input {
            WriterInput::Collection(SerializerOutput::Entry(bytes)) => {
                write_chunk(&mut file, &bytes)?;
                // Gone only if the serializer ended, which it does after its last entry.
                let _ = queues.written.send(bytes.len());
                queues.collection_buffer.offer(bytes);
            }
            WriterInput::Collection(SerializerOutput::AllSerialized) => {
                all_collections_serialized = true
            }
            WriterInput::Message(WriterMessage::Chunk(chunk)) => {
                write_chunk(&mut file, &chunk.bytes)?
            }
            WriterInput::Message(WriterMessage::Finish { entry_count }) => {
                finished = Some(entry_count)
            }
            WriterInput::Abandoned => return Ok(None),
            // An error, not an abandonment: if the loop still waits for a report, it must get one. (When
            // the loop abandoned the snapshot, nobody reads it; the temporary file goes either way.)
            WriterInput::SerializerStopped => {
                return Err(
                    "the collection serializer stopped before serializing every collection \
                            handed to it"
                        .to_string(),
                )
            }
        }
    };
    let trailer = trailer_payload(entry_count, chunk_count);
    write(&mut file, &chunk_header(CHUNK_KIND_TRAILER, &trailer))?;
    write(&mut file, &trailer)?;
    let (file, written) = file
        .finish()
        .map_err(io_context("cannot write", &temporary))?;
    file.sync_all()
        .map_err(io_context("cannot fsync", &temporary))?;
    drop(file);
    let final_path = directory.join(snapshot_file_name(sequence));
    fs::rename(&temporary, &final_path).map_err(io_context("cannot rename", &temporary))?;
    sync_directory_of(&final_path)
        .map_err(io_context("cannot fsync the directory of", &final_path))?;
    manifest::write_durably(
        directory,
        &Manifest {
            sequence,
            snapshot_file: snapshot_file_name(sequence),
        },
    )
    .map_err(|error| format!("cannot write the manifest: {error}"))?;
    let deleted = delete_replaced(directory, sequence);
    Ok(Some(WriterReport::Done {
        sequence,
        snapshot_bytes: written,
        deleted,
    }))
}

/// Deletes the files a durable manifest naming the snapshot at `sequence` makes redundant: log files
/// whose every record is at most `sequence` (any `log-N.aof` with `N <= sequence`: the log was rotated to
/// `log-<sequence + 1>` before the snapshot was published) and other snapshots. Failures are logged, not
/// fatal: recovery ignores such files and deletes them at the next start.
pub fn delete_replaced(directory: &Path, sequence: u64) -> Vec<String> {
    let mut deleted = Vec::new();
    let started = Instant::now();
    let Ok(entries) = fs::read_dir(directory) else {
        return deleted;
    };
    let mut doomed: Vec<PathBuf> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let replaced = match parse_snapshot_file_name(name) {
            Some(snapshot_sequence) => snapshot_sequence != sequence,
            None => {
                crate::recovery::parse_log_file_name(name).is_some_and(|first| first <= sequence)
            }
        };
        if replaced {
            doomed.push(entry.path());
        }
    }
    doomed.sort();
    for path in doomed {
        shrink_gradually(&path);
        match fs::remove_file(&path) {
            Ok(()) => deleted.push(
                path.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into(),
            ),
            Err(error) => log::warn!("could not delete {}: {error}", path.display()),
        }
    }
    if !deleted.is_empty() {
        // Not needed for correctness (a file that comes back is ignored and deleted again), but it makes
        // the disk space the compaction promised actually free after a crash.
        let _ = sync_directory_of(&directory.join("MANIFEST"));
        log::info!(
            "compaction deleted {} replaced file(s) in {:.1} ms: {}",
            deleted.len(),
            started.elapsed().as_secs_f64() * 1000.0,
            deleted.join(", ")
        );
    }
    deleted
}

/// Writes a complete snapshot of `entries` (already encoded) to bytes: for tests and tools.
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
    use crate::store::encoding::{decode_value, encode_entry};
    use crate::store::Value;

    fn sample() -> Vec<u8> {
        let mut first = Vec::new();
        let mut second = Vec::new();
        for index in 0..10 {
            let value = Value::String(crate::small_bytes::SmallBytes::from(
                format!("value{index}").as_str(),
            ));
            let out = if index < 6 { &mut first } else { &mut second };
            encode_entry(
                format!("key{index}").as_bytes(),
                &value,
                (index % 2 == 0).then_some(index),
                out,
            );
        }
        encode_snapshot(42, 1_000, &[first, second], 10)
    }

    #[test]
    fn the_snapshot_file_holds_exactly_what_was_written_whatever_the_pieces() {
        let directory =
            std::env::temp_dir().join(format!("dibs-snapshot-file-{}", std::process::id()));
        fs::create_dir_all(&directory).unwrap();
        // Lengths that end a block exactly, cross it, fall short of the alignment, and end mid-block.
        for total in [
            0,
            100,
            DIRECT_ALIGNMENT,
            DIRECT_BLOCK_BYTES,
            2 * DIRECT_BLOCK_BYTES + 12_345,
        ] {
            let path = directory.join(format!("snapshot-{total}.tmp"));
            let mut file = SnapshotFile::create(&path).unwrap();
            let mut expected = Vec::new();
            let mut piece = 1;
            while expected.len() < total {
                let length = piece.min(total - expected.len());
                let bytes: Vec<u8> = (0..length)
                    .map(|index| (expected.len() + index) as u8 ^ 0x5a)
                    .collect();
                file.write(&bytes).unwrap();
                expected.extend_from_slice(&bytes);
                piece = piece * 7 % 300_007 + 1;
            }
            let (file, length) = file.finish().unwrap();
            file.sync_all().unwrap();
            assert_eq!(length, total as u64);
            assert_eq!(fs::read(&path).unwrap(), expected, "{total} bytes");
        }
        fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn a_replaced_file_is_cut_down_in_steps_before_it_is_deleted() {
        use crate::limits::FILE_DELETE_STEP_BYTES;
        let directory =
            std::env::temp_dir().join(format!("dibs-shrink-gradually-{}", std::process::id()));
        fs::create_dir_all(&directory).unwrap();
        let path = directory.join("log-1.aof");
        let file = File::create(&path).unwrap();
        // Sparse: the test needs the length, not the blocks.
        let length = 2 * FILE_DELETE_STEP_BYTES + 12_345;
        file.set_len(length).unwrap();
        drop(file);
        shrink_gradually(&path);
        let left = fs::metadata(&path).unwrap().len();
        assert_eq!(
            left, 12_345,
            "cut by whole steps until at most one step is left"
        );
        // A small file is left for the unlink as it is.
        shrink_gradually(&path);
        assert_eq!(fs::metadata(&path).unwrap().len(), 12_345);
        // The deletion of replaced files goes through it and removes the file.
        let deleted = delete_replaced(&directory, 5);
        assert_eq!(deleted, vec!["log-1.aof".to_string()]);
        assert!(!path.exists());
        fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn writeback_is_started_per_window_and_waits_for_the_one_before() {
        use crate::limits::SNAPSHOT_WRITEBACK_BYTES;
        let path = std::env::temp_dir().join(format!("dibs-writeback-{}", std::process::id()));
        let mut file = File::create(&path).unwrap();
        let mut writeback = Writeback::default();
        let block = vec![7u8; (SNAPSHOT_WRITEBACK_BYTES / 2) as usize];
        let mut written = 0;
        let mut windows = Vec::new();
        for _ in 0..5 {
            file.write_all(&block).unwrap();
            written += block.len() as u64;
            writeback.after_write(&file, written);
            windows.push((writeback.window_start, writeback.in_flight));
        }
        let window = SNAPSHOT_WRITEBACK_BYTES;
        assert_eq!(
            windows,
            vec![
                (0, None),
                (window, Some((0, window))),
                (window, Some((0, window))),
                (2 * window, Some((window, window))),
                (2 * window, Some((window, window))),
            ]
        );
        fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_snapshot_reads_back_entry_for_entry() {
        let bytes = sample();
        let mut seen = Vec::new();
        let summary = read_snapshot(&bytes, |entry| {
            let Value::String(value) = decode_value(entry.tag, entry.value)? else {
                return Err("not a string".to_string());
            };
            seen.push((entry.key.to_vec(), value, entry.expires_at_ms));
            Ok(())
        })
        .expect("valid");
        assert_eq!(summary.sequence, 42);
        assert_eq!(summary.now_ms, 1_000);
        assert_eq!(summary.entry_count, 10);
        assert_eq!(summary.chunk_count, 2);
        assert_eq!(seen.len(), 10);
        assert_eq!(
            seen[3],
            (
                b"key3".to_vec(),
                crate::small_bytes::SmallBytes::from("value3"),
                None
            )
        );
        assert_eq!(seen[4].2, Some(4));
    }

    #[test]
    fn every_cut_and_every_bit_flip_is_detected() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            assert!(
                read_snapshot(&bytes[..cut], |_| Ok(())).is_err(),
                "a cut at {cut} went unnoticed"
            );
        }
        for position in 0..bytes.len() {
            for bit in [0, 3, 7] {
                let mut damaged = bytes.clone();
                damaged[position] ^= 1 << bit;
                assert!(
                    read_snapshot(&damaged, |_| Ok(())).is_err(),
                    "a flip at {position} bit {bit} went unnoticed"
                );
            }
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(read_snapshot(&longer, |_| Ok(())).is_err());
    }

    #[test]
    fn the_writer_thread_publishes_a_snapshot_and_deletes_what_it_replaces() {
        let directory =
            std::env::temp_dir().join(format!("dibs-snapshot-writer-{}", std::process::id()));
        let _ = fs::remove_dir_all(&directory);
        fs::create_dir_all(&directory).unwrap();
        for name in [
            "log-00000000000000000001.aof",
            "log-00000000000000000008.aof",
            "log-00000000000000000011.aof",
            "snapshot-00000000000000000005.snap",
        ] {
            fs::write(directory.join(name), b"x").unwrap();
        }
        let mut writer = SnapshotWriter::spawn(&directory, 10, 7, Arc::default(), || {});
        let mut bytes = Vec::new();
        encode_entry(
            b"k",
            &Value::String(crate::small_bytes::SmallBytes::from("v")),
            None,
            &mut bytes,
        );
        writer.send(SnapshotChunk { bytes });
        // A collection handed over by handle: the collection serializer serializes it and lets go of it,
        // the writer writes it.
        let set: crate::store::SetValue = [bytes::Bytes::from("m")].into_iter().collect();
        let value = Value::Set(crate::store::Shared::new(set));
        writer.hand_over(HandedOver {
            wanted: Vec::new(),
            walked: vec![crate::store::encoding::SharedEntry {
                key: Box::from(&b"s"[..]),
                expires_at_ms: Some(99),
                value: value.share().expect("a collection"),
            }],
        });
        writer.finish(2);
        let WriterReport::Done { deleted, .. } = writer.wait_report() else {
            panic!("failed");
        };
        assert_eq!(deleted.len(), 3);
        let manifest = manifest::read(&directory).unwrap().expect("a manifest");
        assert_eq!(manifest.sequence, 10);
        let bytes = fs::read(directory.join(&manifest.snapshot_file)).unwrap();
        let mut loaded = Vec::new();
        let summary = read_snapshot(&bytes, |entry| {
            let value = decode_value(entry.tag, entry.value)?;
            loaded.push((entry.key.to_vec(), entry.expires_at_ms, value));
            Ok(())
        })
        .unwrap();
        // Each collection is a chunk of its own, written whenever the thread gets to it.
        assert_eq!((summary.entry_count, summary.chunk_count), (2, 2));
        loaded.sort_by(|left, right| left.0.cmp(&right.0));
        assert!(
            matches!(&loaded[0], (key, None, Value::String(v)) if key == b"k" && v.as_bytes() == b"v")
        );
        let (key, expiry, Value::Set(loaded_set)) = &loaded[1] else {
            panic!("the set second");
        };
        assert!(!value.is_shared(), "the writer let go of the set");
        let Value::Set(set) = &value else {
            unreachable!("made above")
        };
        assert_eq!(
            (&key[..], *expiry, &**loaded_set),
            (&b"s"[..], Some(99), &**set)
        );
        let mut names: Vec<String> = fs::read_dir(&directory)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "MANIFEST",
                "log-00000000000000000011.aof",
                "snapshot-00000000000000000010.snap"
            ]
        );
        fs::remove_dir_all(&directory).unwrap();
    }
}
