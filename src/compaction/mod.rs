//! Compaction, the loop's side: start a snapshot at the last appended sequence S, rotate the log so that
//! records after S go to `log-<S+1>.aof`, feed the serialized entries to the snapshot writer thread a
//! bounded amount per loop iteration, and finish once everything is serialized and the rotation is done.
//! Formats, crash safety and the triggers are in protocol.md.
//!
//! # Why the loop never stalls
//! Nothing here does I/O: the syncer thread rotates the log file, the writer thread frames, checksums,
//! writes, fsyncs, renames and deletes. The loop's share is serialization, and each iteration does at most
//! `SNAPSHOT_STEP_BUDGET` of it (the keyspace checks the clock every 64 entries) and stops early while the
//! writer's bounded queue is full. Large collections (`SNAPSHOT_SHARE_ELEMENTS_MIN` elements or more) are
//! not serialized here at all: the keyspace hands them over by handle to the collection serializer thread
//! (`collection_serializer`, at the loop's priority, so that a command waiting for one waits for its
//! serialization only), which passes the bytes to the writer; so a step's cost does not depend on how big
//! a value is, and smaller ones take microseconds. Entries changed in between are serialized by the
//! keyspace's copy-on-write hook, one entry at a time. So the longest pause compaction adds is about
//! `SNAPSHOT_STEP_BUDGET`, plus the few small collections a command changes before the walk reached them;
//! a command that changes a large collection the serializer still holds waits instead, alone (see
//! `store::keyspace` and `dispatch::admission`).
//!
//! # When it starts
//! A start is only ever *scheduled* by a command (BGREWRITEAOF, the automatic trigger) and happens in
//! [`Compaction::step`], between loop iterations' commands, where no transaction is half-applied: the
//! keyspace then is exactly the state after record S, which is what the snapshot must hold.
//!
//! # Layout
//! - this module: [`Compaction`], the loop's state machine (start, step, finish, fail) and the triggers.
//! - `snapshot_writer`: the loop's end of the writer thread (`aof::snapshot::writer`) and of the collection
//!   serializer.
//! - `collection_serializer`: the thread that serializes large collections handed over by handle.
//! - `snapshot_entries`: a snapshot's entries, read through the store's encoding (start-up, tools).
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Waker;

use crate::aof::directory::{log_file_name, open_log_file};
use crate::aof::record::FILE_HEADER_SIZE;
use crate::aof::snapshot::writer::{SnapshotChunk, WriterReport};
use crate::aof::storage::Storage;
use crate::journal::Journal;
use crate::limits::SNAPSHOT_CHUNK_SIZE;
use crate::limits::SNAPSHOT_STEP_BUDGET;
use crate::store::Store;
use collection_serializer::KeptBuffer;
use snapshot_writer::SnapshotWriter;

pub mod collection_serializer;
pub mod snapshot_entries;
pub mod snapshot_writer;

/// Redis's `auto-aof-rewrite-percentage` and `auto-aof-rewrite-min-size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Triggers {
    /// Compact when the log since the last snapshot is at least this percentage of the snapshot's size;
    /// 0 turns automatic compaction off.
    pub percentage: u64,
    /// ... and at least this many bytes.
    pub min_size: u64,
}

struct Running {
    writer: SnapshotWriter,
    started: Instant,
    rotated: bool,
    serialized: bool,
    entry_count: u64,
    /// A chunk the writer's full queue did not take yet.
    pending_chunk: Option<SnapshotChunk>,
    finish_sent: bool,
    bytes_appended_at_start: u64,
}

impl Running {
    /// Collections taken by handle (by the walk, or for a command that waits for one) go to the collection
    /// serializer at once, those a command waits for first.
    fn hand_over_collections(&self, store: &mut Store) {
        let handed = store.keyspace.snapshot_take_shared();
        if !handed.is_empty() {
            self.writer.hand_over(handed);
        }
    }

    /// See [`Compaction::advance`]. `Ok(Some((sequence, bytes)))` once the manifest names the snapshot.
    fn advance(
        &mut self,
        store: &mut Store,
        journal: &mut Journal,
        mut keep_going: impl FnMut() -> bool,
        blocking: bool,
    ) -> Result<Option<(u64, u64)>, String> {
        match journal.take_rotation_outcome() {
            Some(Ok(first_sequence)) => {
                journal.log_first_sequence = first_sequence;
                self.rotated = true;
            }
            Some(Err(error)) => return Err(format!("log rotation: {error}")),
            None => {}
        }
        loop {
            self.hand_over_collections(store);
            if let Some(chunk) = self.pending_chunk.take() {
                if blocking {
                    self.writer.send(chunk);
                } else if let Err(chunk) = self.writer.try_send(chunk) {
                    self.pending_chunk = Some(chunk);
                    break;
                }
            }
            if self.serialized {
                break;
            }
            let done = store
                .keyspace
                .snapshot_step(SNAPSHOT_CHUNK_SIZE, &mut keep_going);
            self.hand_over_collections(store);
            if done || store.keyspace.snapshot_pending_bytes() >= SNAPSHOT_CHUNK_SIZE {
                let bytes = store
                    .keyspace
                    .snapshot_take_bytes(Vec::with_capacity(SNAPSHOT_CHUNK_SIZE));
                self.pending_chunk = Some(SnapshotChunk { bytes });
            }
            if done {
                self.entry_count = store.keyspace.snapshot_end();
                self.serialized = true;
                continue;
            }
            if self.pending_chunk.is_none() && !keep_going() {
                // Bytes the hooks add meanwhile stay in the keyspace's buffer until the next step.
                break;
            }
        }
        if self.serialized && self.pending_chunk.is_none() && self.rotated && !self.finish_sent {
            self.writer.finish(self.entry_count);
            self.finish_sent = true;
        }
        let report = if blocking && self.finish_sent {
            Some(self.writer.wait_report())
        } else {
            self.writer.try_report()
        };
        match report {
            Some(WriterReport::Done {
                sequence,
                snapshot_bytes,
                ..
            }) => Ok(Some((sequence, snapshot_bytes))),
            Some(WriterReport::Failed(error)) => Err(error),
            None => Ok(None),
        }
    }
}

/// Compaction state and statistics, owned by the loop.
pub struct Compaction {
    directory: PathBuf,
    waker: Option<Arc<Waker>>,
    pub triggers: Triggers,
    running: Option<Running>,
    scheduled: bool,
    pub rewrites: u64,
    pub last_status_ok: bool,
    pub last_error: String,
    pub last_duration: Option<Duration>,
    /// The size of the snapshot the state starts from (0 without one) and its sequence.
    pub base_size: u64,
    pub base_sequence: u64,
    /// Log bytes after the snapshot: `tail_bytes_start` plus what the journal appended since
    /// `tail_appended_start`.
    tail_bytes_start: u64,
    tail_appended_start: u64,
    /// The collection serializer's buffer, kept from one compaction to the next so that the first large
    /// collection (often the one a command waits for) is not serialized into fresh pages.
    collection_buffer: Arc<KeptBuffer>,
}

impl Compaction {
    /// `base`: the loaded snapshot's sequence and size; `log_bytes`: the log files recovery kept.
    pub fn new(
        directory: &Path,
        waker: Option<Arc<Waker>>,
        triggers: Triggers,
        base: Option<(u64, u64)>,
        log_bytes: u64,
    ) -> Compaction {
        Compaction {
            directory: directory.to_path_buf(),
            waker,
            triggers,
            running: None,
            scheduled: false,
            rewrites: 0,
            last_status_ok: true,
            last_error: String::new(),
            last_duration: None,
            base_size: base.map_or(0, |(_, size)| size),
            base_sequence: base.map_or(0, |(sequence, _)| sequence),
            tail_bytes_start: log_bytes,
            tail_appended_start: 0,
            collection_buffer: Arc::default(),
        }
    }

    pub fn in_progress(&self) -> bool {
        self.running.is_some()
    }

    pub fn is_scheduled(&self) -> bool {
        self.scheduled
    }

    /// How long the running compaction has taken so far.
    pub fn current_duration(&self) -> Option<Duration> {
        self.running
            .as_ref()
            .map(|running| running.started.elapsed())
    }

    /// Log bytes written after the snapshot the state starts from.
    pub fn tail_bytes(&self, journal: &Journal) -> u64 {
        self.tail_bytes_start + journal.bytes_appended - self.tail_appended_start
    }

    /// BGREWRITEAOF: schedules a compaction for the end of this iteration's commands.
    pub fn schedule(&mut self, journal: &Journal) -> Result<(), String> {
        if !journal.is_enabled() {
            return Err(
                "ERR Background append only file rewriting is not possible with appendonly no"
                    .into(),
            );
        }
        if let Some(error) = &journal.failure {
            return Err(format!("MISCONF Errors writing to the AOF file: {error}"));
        }
        if self.running.is_some() || self.scheduled {
            return Err("ERR Background append only file rewriting already in progress".into());
        }
        self.scheduled = true;
        Ok(())
    }

    /// True while the loop should come straight back: serialization is left and the writer has room.
    pub fn has_work(&self) -> bool {
        self.scheduled
            || self
                .running
                .as_ref()
                .is_some_and(|running| !running.serialized && running.pending_chunk.is_none())
    }

    /// True while the loop waits for the writer's queue to drain (come back soon, not at once).
    pub fn is_waiting_for_writer(&self) -> bool {
        self.running
            .as_ref()
            .is_some_and(|running| running.pending_chunk.is_some())
    }

    /// One iteration's share of compaction. Call where no command's mutations are pending.
    pub fn step(&mut self, store: &mut Store, journal: &mut Journal, now_ms: u64) {
        if journal.failure.is_some() {
            self.scheduled = false;
            if self.running.is_some() {
                self.fail(store, "the log failed during the compaction".to_string());
            }
            return;
        }
        if self.running.is_none() && !self.scheduled && self.automatic_trigger_due(journal) {
            log::info!(
                "starting an automatic compaction: {} log bytes since the snapshot of {} bytes",
                self.tail_bytes(journal),
                self.base_size
            );
            self.scheduled = true;
        }
        if std::mem::take(&mut self.scheduled) {
            if let Err(error) = self.start(store, journal, now_ms) {
                self.last_status_ok = false;
                self.last_error = error.clone();
                log::error!("compaction could not start: {error}");
            }
        }
        let deadline = Instant::now() + SNAPSHOT_STEP_BUDGET;
        self.advance(store, journal, || Instant::now() < deadline, false);
    }

    /// SAVE: a whole compaction now, serializing everything in one go (a pause proportional to the data)
    /// and waiting for the disk.
    pub fn save(
        &mut self,
        store: &mut Store,
        journal: &mut Journal,
        now_ms: u64,
        mut collect: impl FnMut(&mut Journal),
    ) -> Result<(), String> {
        if self.running.is_some() || self.scheduled {
            return Err("ERR Background save already in progress".to_string());
        }
        self.schedule(journal)?;
        self.scheduled = false;
        self.start(store, journal, now_ms)?;
        let rewrites = self.rewrites;
        while self.running.is_some() {
            self.advance(store, journal, || true, true);
            if self.running.is_some() {
                collect(journal);
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        if self.rewrites > rewrites && self.last_status_ok {
            Ok(())
        } else {
            Err(format!("ERR {}", self.last_error))
        }
    }

    fn automatic_trigger_due(&self, journal: &Journal) -> bool {
        let Triggers {
            percentage,
            min_size,
        } = self.triggers;
        if percentage == 0 || !journal.is_enabled() {
            return false;
        }
        let tail = self.tail_bytes(journal);
        // Redis's rule: growth over the base of at least `percentage`, once past the minimum size. A
        // failed compaction is not retried automatically until the log grows by another minimum size.
        tail >= min_size
            && u128::from(tail) * 100 >= u128::from(self.base_size) * u128::from(percentage)
            && (self.last_status_ok || tail >= 2 * min_size)
    }

    fn start(
        &mut self,
        store: &mut Store,
        journal: &mut Journal,
        now_ms: u64,
    ) -> Result<(), String> {
        let sequence = journal.last_sequence();
        let waker = self.waker.clone();
        let collection_buffer = Arc::clone(&self.collection_buffer);
        let writer = SnapshotWriter::spawn(
            &self.directory,
            sequence,
            now_ms,
            collection_buffer,
            move || {
                if let Some(waker) = &waker {
                    let _ = waker.wake();
                }
            },
        );
        let rotated = journal.log_first_sequence == sequence + 1;
        if !rotated {
            let path = self.directory.join(log_file_name(sequence + 1));
            let policy = journal.policy;
            journal.rotate(Box::new(move || {
                open_log_file(&path, sequence + 1, policy)
                    .map(|storage| Box::new(storage) as Box<dyn Storage + Send>)
            }))?;
        }
        store.keyspace.snapshot_begin();
        log::info!(
            "compaction started: snapshot of {} keys at sequence {sequence}",
            store.keyspace.len()
        );
        self.running = Some(Running {
            writer,
            started: Instant::now(),
            rotated,
            serialized: false,
            entry_count: 0,
            pending_chunk: None,
            finish_sent: false,
            bytes_appended_at_start: journal.bytes_appended,
        });
        Ok(())
    }

    /// Serializes while `keep_going` allows, hands chunks to the writer, finishes, and takes reports.
    /// `blocking`: wait for the writer's queue instead of stopping (SAVE).
    fn advance(
        &mut self,
        store: &mut Store,
        journal: &mut Journal,
        keep_going: impl FnMut() -> bool,
        blocking: bool,
    ) {
        let Some(running) = &mut self.running else {
            return;
        };
        match running.advance(store, journal, keep_going, blocking) {
            Ok(None) => {}
            Ok(Some((sequence, snapshot_bytes))) => {
                let running = self.running.take().expect("running");
                let elapsed = running.started.elapsed();
                self.rewrites += 1;
                self.last_status_ok = true;
                self.last_error.clear();
                self.last_duration = Some(elapsed);
                self.base_size = snapshot_bytes;
                self.base_sequence = sequence;
                self.tail_bytes_start = FILE_HEADER_SIZE as u64;
                self.tail_appended_start = running.bytes_appended_at_start;
                log::info!(
                    "compaction done: {} keys at sequence {sequence}, snapshot {snapshot_bytes} bytes, in {:.3} s",
                    running.entry_count,
                    elapsed.as_secs_f64()
                );
            }
            Err(error) => self.fail(store, error),
        }
    }

    /// Abandons the running compaction: the writer thread removes its temporary file; the log keeps
    /// going to whatever file it is in, which continues the chain the old manifest describes.
    pub fn fail(&mut self, store: &mut Store, error: String) {
        if let Some(running) = self.running.take() {
            store.keyspace.snapshot_end();
            self.last_duration = Some(running.started.elapsed());
        }
        log::error!("compaction failed: {error}");
        self.last_status_ok = false;
        self.last_error = error;
    }
}
