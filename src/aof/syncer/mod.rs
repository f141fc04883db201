//! The syncer: the one thread that writes the log and fsyncs it, so the event loop never blocks on the
//! disk.
//!
//! # Protocol with the event loop
//!
//! The loop encodes records into a buffer (take one with [`SyncerHandle::take_buffer`]) and hands it over
//! as a [`Batch`] with [`SyncerHandle::submit`]. The syncer answers with [`SyncReport`]s on a channel and
//! calls the `notify` closure after each one (the server passes one that wakes its mio `Waker`); the loop
//! then drains them with [`SyncerHandle::try_recv`] and releases the replies a `Durable` report covers.
//!
//! # Group commit
//!
//! The syncer blocks for one batch, then takes every batch already queued behind it (up to
//! `SYNCER_APPEND_SIZE_MAX` bytes), writes them with one append and, with [`FsyncPolicy::Always`], makes
//! them durable with one fsync. Batches that arrive while an fsync is in flight wait for the next round
//! and share its fsync, so the fsync rate adapts to the load instead of capping it.
//!
//! # Policies
//!
//! - `Always`: append, fsync, report `Durable`. A reply waits for it.
//! - `EverySecond`: append and report `Written` at once; fsync when `SYNCER_EVERY_SECOND_INTERVAL_MS` has
//!   passed since the last fsync, even if no batch arrives (the wait has a deadline), and report `Durable`.
//! - `No`: append and report `Written`; the kernel writes back when it likes. Shutdown still fsyncs.
//!
//! # Failures
//!
//! On any failed append (EIO, ENOSPC, a short write) or fsync, the syncer never retries and never reports
//! `Durable` again: after a failed fsync the kernel may have dropped the dirty pages and marked them clean,
//! so a retried fsync that succeeds proves nothing ("fsyncgate"). It cuts the file back so that no partial
//! frame is left (to the last durable length after a failed fsync or with `Always`; to the end of the last
//! whole append with the other policies, whose written records were already answered), reports
//! [`SyncReport::Failed`] naming the OS error, and reports `Failed` for every later batch without writing
//! it. The server then stops accepting writes, as Redis does on a disk error.
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use super::storage::Storage;
use super::FsyncPolicy;
use crate::limits::{GROUP_COMMIT_GATHER_FRACTION, GROUP_COMMIT_GATHER_MAX};
use crate::limits::{
    SYNCER_APPEND_SIZE_MAX, SYNCER_BUFFERS_POOLED_MAX, SYNCER_BUFFER_POOLED_CAPACITY_MAX,
    SYNCER_EVERY_SECOND_INTERVAL_MS,
};

/// Switches the log to a new file (compaction): every record submitted before it is written and fsync'd to
/// the current file, then `open` creates the next file (its header and directory entry durable) and
/// records submitted after it go there. Runs on the syncer thread, so the loop never waits for the disk.
pub struct Rotation {
    /// The sequence of the first record the new file will hold.
    pub first_sequence: u64,
    pub open: Box<dyn FnOnce() -> io::Result<Box<dyn Storage + Send>> + Send>,
}

/// Whole records, ready to append, and the sequence of the last one.
#[derive(Debug)]
pub struct Batch {
    pub bytes: Vec<u8>,
    pub last_sequence: u64,
}

/// What the syncer tells the event loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncReport {
    /// Every record up to `sequence` is in the kernel's hands (not durable); the file is `log_length`
    /// bytes. Sent with the `EverySecond` and `No` policies.
    Written { sequence: u64, log_length: u64 },
    /// Every record up to `sequence` is durable; the file is `log_length` bytes.
    Durable { sequence: u64, log_length: u64 },
    /// Records from `first_failed_sequence` on are not durable and never will be, up to at least
    /// `last_sequence` (the last sequence this report refuses). `error` names the failed call and the
    /// OS error, e.g. "fsync: Input/output error (os error 5)".
    Failed {
        first_failed_sequence: u64,
        last_sequence: u64,
        error: String,
    },
    /// Records from `first_sequence` on go to the new file; everything before it is durable in the old.
    Rotated { first_sequence: u64 },
    /// The new file could not be created; records keep going to the old file, which stays valid.
    RotationFailed { first_sequence: u64, error: String },
}

/// Counters for INFO, updated by the syncer thread and read by anyone.
#[derive(Debug, Default)]
pub struct SyncerStatistics {
    batches_count: AtomicU64,
    appends_count: AtomicU64,
    bytes_written: AtomicU64,
    syncs_count: AtomicU64,
    sync_latency_us_last: AtomicU64,
    sync_latency_us_total: AtomicU64,
    sync_latency_us_max: AtomicU64,
    failed: AtomicBool,
}

/// A copy of [`SyncerStatistics`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncerStatisticsSnapshot {
    /// Batches submitted and handled (written or refused).
    pub batches_count: u64,
    /// Append calls: fewer than batches when group commit coalesces them.
    pub appends_count: u64,
    pub bytes_written: u64,
    /// Successful fsyncs.
    pub syncs_count: u64,
    pub sync_latency_us_last: u64,
    pub sync_latency_us_average: u64,
    pub sync_latency_us_max: u64,
    /// The log has failed; no write will be durable again.
    pub failed: bool,
}

impl SyncerStatistics {
    pub fn snapshot(&self) -> SyncerStatisticsSnapshot {
        let syncs_count = self.syncs_count.load(Ordering::Relaxed);
        let total = self.sync_latency_us_total.load(Ordering::Relaxed);
        SyncerStatisticsSnapshot {
            batches_count: self.batches_count.load(Ordering::Relaxed),
            appends_count: self.appends_count.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            syncs_count,
            sync_latency_us_last: self.sync_latency_us_last.load(Ordering::Relaxed),
            sync_latency_us_average: total.checked_div(syncs_count).unwrap_or(0),
            sync_latency_us_max: self.sync_latency_us_max.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    /// CONFIG RESETSTAT: the longest sync starts over (the other counters are totals since start).
    pub fn reset_max(&self) {
        self.sync_latency_us_max.store(0, Ordering::Relaxed);
    }

    fn record_sync(&self, latency: Duration) {
        let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.syncs_count.fetch_add(1, Ordering::Relaxed);
        self.sync_latency_us_last
            .store(latency_us, Ordering::Relaxed);
        self.sync_latency_us_total
            .fetch_add(latency_us, Ordering::Relaxed);
        self.sync_latency_us_max
            .fetch_max(latency_us, Ordering::Relaxed);
    }
}

/// The syncer thread has stopped (after a shutdown, or a bug made it panic); the batch was not taken.
#[derive(Debug)]
pub struct SyncerStopped(pub Batch);

impl fmt::Display for SyncerStopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the log syncer thread has stopped")
    }
}

impl std::error::Error for SyncerStopped {}

enum Message {
    Batch(Batch),
    Rotate(Rotation),
    Shutdown,
}

/// Starts syncer threads.
pub struct Syncer;

impl Syncer {
    /// Starts the syncer thread writing to `storage`.
    ///
    /// `durable_sequence` is the last sequence already durable in the storage (0 for an empty log); it
    /// is what a failure report counts from. `notify` is called after every report is sent.
    pub fn spawn(
        storage: Box<dyn Storage + Send>,
        policy: FsyncPolicy,
        durable_sequence: u64,
        notify: impl Fn() + Send + 'static,
    ) -> SyncerHandle {
        let (sender, receiver) = crossbeam_channel::unbounded();
        let (report_sender, reports) = crossbeam_channel::unbounded();
        let (buffer_sender, buffers) = crossbeam_channel::bounded(SYNCER_BUFFERS_POOLED_MAX);
        let statistics = Arc::new(SyncerStatistics::default());
        let log_length = storage.length();
        let state = SyncerThread {
            storage,
            policy,
            reports: report_sender,
            notify: Box::new(notify),
            buffers: buffer_sender,
            statistics: Arc::clone(&statistics),
            written_sequence: durable_sequence,
            written_length: log_length,
            durable_sequence,
            durable_length: log_length,
            failure: None,
            last_sync: Instant::now(),
            gather_window: Duration::ZERO,
            last_sync_records: 0,
        };
        let thread = std::thread::Builder::new()
            .name("dibs-syncer".to_string())
            .spawn(move || state.run(receiver))
            .expect("spawn the syncer thread");
        SyncerHandle {
            sender: Some(sender),
            reports,
            buffers,
            statistics,
            thread: Some(thread),
        }
    }
}

/// The event loop's end of the syncer. Dropping it shuts the syncer down as [`SyncerHandle::shutdown`]
/// does, ignoring the outcome.
#[derive(Debug)]
pub struct SyncerHandle {
    sender: Option<Sender<Message>>,
    reports: Receiver<SyncReport>,
    buffers: Receiver<Vec<u8>>,
    statistics: Arc<SyncerStatistics>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl SyncerHandle {
    /// Queues a batch for the log.
    pub fn submit(&self, batch: Batch) -> Result<(), SyncerStopped> {
        let sender = self.sender.as_ref().expect("sender lives until shutdown");
        sender
            .send(Message::Batch(batch))
            .map_err(|error| match error.0 {
                Message::Batch(batch) => SyncerStopped(batch),
                Message::Rotate(_) | Message::Shutdown => unreachable!("sent a batch"),
            })
    }

    /// Queues a rotation behind every batch submitted so far. False when the syncer has stopped.
    pub fn rotate(&self, rotation: Rotation) -> bool {
        let sender = self.sender.as_ref().expect("sender lives until shutdown");
        sender.send(Message::Rotate(rotation)).is_ok()
    }

    /// The next report, if one is waiting.
    pub fn try_recv(&self) -> Option<SyncReport> {
        self.reports.try_recv().ok()
    }

    /// The report channel itself, to block on it (tests, shutdown paths).
    pub fn reports(&self) -> &Receiver<SyncReport> {
        &self.reports
    }

    /// An empty buffer for the next batch: one the syncer has finished with, or a new one.
    pub fn take_buffer(&self) -> Vec<u8> {
        self.buffers.try_recv().unwrap_or_default()
    }

    pub fn statistics(&self) -> &Arc<SyncerStatistics> {
        &self.statistics
    }

    /// Writes and fsyncs every batch submitted so far (whatever the policy), then stops the thread.
    /// `Ok` means every submitted batch is durable; `Err` names the failure that stopped the log.
    pub fn shutdown(mut self) -> Result<(), String> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), String> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        if let Some(sender) = self.sender.take() {
            // A failed send means the thread has already ended; join says how.
            let _ = sender.send(Message::Shutdown);
        }
        thread
            .join()
            .unwrap_or_else(|_| Err("the log syncer thread panicked".to_string()))
    }
}

impl Drop for SyncerHandle {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The syncer thread's state.
struct SyncerThread {
    storage: Box<dyn Storage + Send>,
    policy: FsyncPolicy,
    reports: Sender<SyncReport>,
    notify: Box<dyn Fn() + Send>,
    buffers: Sender<Vec<u8>>,
    statistics: Arc<SyncerStatistics>,
    /// The last record appended, and the log's length after it.
    written_sequence: u64,
    written_length: u64,
    /// The last record known durable, and the log's length after it.
    durable_sequence: u64,
    durable_length: u64,
    /// Set by the first failure: the first sequence not durable, and the error. Final.
    failure: Option<(u64, String)>,
    last_sync: Instant,
    /// How long after a sync the next one waits for more batches (see `run`).
    gather_window: Duration,
    /// Records the last sync made durable: how many the next gather waits for at most.
    last_sync_records: u64,
}

impl SyncerThread {
    fn run(mut self, receiver: Receiver<Message>) -> Result<(), String> {
        let interval = Duration::from_millis(SYNCER_EVERY_SECOND_INTERVAL_MS);
        loop {
            let sync_pending = self.written_length > self.durable_length && self.failure.is_none();
            let message = if self.policy == FsyncPolicy::EverySecond && sync_pending {
                match receiver.recv_deadline(self.last_sync + interval) {
                    Ok(message) => Some(message),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => Some(Message::Shutdown),
                }
            } else {
                // The handle always sends Shutdown before it drops the sender; disconnection is the same.
                Some(receiver.recv().unwrap_or(Message::Shutdown))
            };

            let mut shutdown = false;
            let mut rotation = None;
            if let Some(Message::Batch(first)) = message {
                let mut group = first;
                let mut batches_count = 1;
                // Group commit gathers for a moment after a sync: the clients that sync just answered
                // are sending their next writes, and letting them join this sync instead of the next
                // one roughly doubles what each fsync covers under load. A quiet log is past the
                // window already and syncs at once.
                // It stops early once as many records are in as the last sync carried: under a steady
                // load that is everyone it answered, so waiting longer would only add latency.
                let gather_until = self.last_sync + self.gather_window;
                let enough = self.durable_sequence + self.last_sync_records;
                while group.bytes.len() < SYNCER_APPEND_SIZE_MAX {
                    let gathering = self.policy == FsyncPolicy::Always
                        && group.last_sequence < enough
                        && Instant::now() < gather_until;
                    let next = if gathering {
                        receiver
                            .recv_deadline(gather_until)
                            .map_err(|error| match error {
                                RecvTimeoutError::Timeout => TryRecvError::Empty,
                                RecvTimeoutError::Disconnected => TryRecvError::Disconnected,
                            })
                    } else {
                        receiver.try_recv()
                    };
                    match next {
                        Ok(Message::Batch(batch)) => {
                            group.bytes.extend_from_slice(&batch.bytes);
                            group.last_sequence = batch.last_sequence;
                            batches_count += 1;
                            self.recycle(batch.bytes);
                        }
                        Ok(Message::Shutdown) => {
                            shutdown = true;
                            break;
                        }
                        Ok(Message::Rotate(next)) => {
                            rotation = Some(next);
                            break;
                        }
                        Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                    }
                }
                self.statistics
                    .batches_count
                    .fetch_add(batches_count, Ordering::Relaxed);
                self.write(group);
            } else if let Some(Message::Shutdown) = message {
                shutdown = true;
            } else if let Some(Message::Rotate(next)) = message {
                rotation = Some(next);
            }

            let sync_pending = self.written_length > self.durable_length && self.failure.is_none();
            let sync_due = match self.policy {
                FsyncPolicy::Always => true,
                FsyncPolicy::EverySecond => self.last_sync.elapsed() >= interval,
                FsyncPolicy::No => false,
            };
            if sync_pending && (sync_due || shutdown) {
                self.sync();
            }
            if let Some(rotation) = rotation {
                self.rotate(rotation);
            }
            if shutdown {
                if self.failure.is_none() {
                    self.finish_file();
                }
                return match &self.failure {
                    None => Ok(()),
                    Some((_, error)) => Err(error.clone()),
                };
            }
        }
    }

    fn write(&mut self, group: Batch) {
        if let Some((first_failed_sequence, error)) = &self.failure {
            let report = SyncReport::Failed {
                first_failed_sequence: *first_failed_sequence,
                last_sequence: group.last_sequence,
                error: error.clone(),
            };
            self.report(report);
            self.recycle(group.bytes);
            return;
        }
        debug_assert!(
            group.last_sequence > self.written_sequence,
            "sequences only grow"
        );
        self.statistics
            .appends_count
            .fetch_add(1, Ordering::Relaxed);
        match self.storage.append(&group.bytes) {
            Ok(()) => {
                self.written_length += group.bytes.len() as u64;
                self.written_sequence = group.last_sequence;
                debug_assert_eq!(self.written_length, self.storage.length());
                self.statistics
                    .bytes_written
                    .fetch_add(group.bytes.len() as u64, Ordering::Relaxed);
                if self.policy != FsyncPolicy::Always {
                    let report = SyncReport::Written {
                        sequence: self.written_sequence,
                        log_length: self.written_length,
                    };
                    self.report(report);
                }
            }
            Err(error) => {
                // With Always, written_length is the durable length here: every append was synced.
                self.fail("write", &error, self.written_length, group.last_sequence);
            }
        }
        self.recycle(group.bytes);
    }

    /// Makes the current file durable whatever the policy, then switches to the new one. The old file
    /// then ends exactly after a whole record and is complete on disk before the new file exists, so a
    /// crash never leaves a torn tail anywhere but in the newest file.
    fn rotate(&mut self, rotation: Rotation) {
        if self.failure.is_none() && self.written_length > self.durable_length {
            self.sync();
        }
        if let Some((_, error)) = &self.failure {
            let report = SyncReport::RotationFailed {
                first_sequence: rotation.first_sequence,
                error: error.clone(),
            };
            self.report(report);
            return;
        }
        debug_assert_eq!(rotation.first_sequence, self.written_sequence + 1);
        self.finish_file();
        match (rotation.open)() {
            Ok(storage) => {
                self.storage = storage;
                self.written_length = self.storage.length();
                self.durable_length = self.written_length;
                self.report(SyncReport::Rotated {
                    first_sequence: rotation.first_sequence,
                });
            }
            Err(error) => self.report(SyncReport::RotationFailed {
                first_sequence: rotation.first_sequence,
                error: format!("cannot create the next log file: {error}"),
            }),
        }
    }

    /// Gives back the current file's reserved space. A failure costs nothing but disk space: recovery
    /// reads zeros after a file's last record as reserved space, and cuts them from the newest file.
    fn finish_file(&mut self) {
        if let Err(error) = self.storage.finish() {
            log::warn!("the log could not give back the space it reserved: {error}");
        }
    }

    fn sync(&mut self) {
        let started = Instant::now();
        match self.storage.sync() {
            Ok(()) => {
                let latency = started.elapsed();
                self.statistics.record_sync(latency);
                self.last_sync = Instant::now();
                self.gather_window =
                    (latency / GROUP_COMMIT_GATHER_FRACTION).min(GROUP_COMMIT_GATHER_MAX);
                self.last_sync_records = self.written_sequence - self.durable_sequence;
                self.durable_sequence = self.written_sequence;
                self.durable_length = self.written_length;
                let report = SyncReport::Durable {
                    sequence: self.durable_sequence,
                    log_length: self.durable_length,
                };
                self.report(report);
            }
            Err(error) => {
                // What reached the disk since the last good fsync is unknown: cut back to what is known.
                self.fail("fsync", &error, self.durable_length, self.written_sequence);
            }
        }
    }

    /// Enters the failed state for good: cut back to `cut_length`, report, refuse from now on.
    fn fail(&mut self, call: &str, error: &io::Error, cut_length: u64, last_sequence: u64) {
        let mut message = format!("{call}: {error}");
        if let Err(truncate_error) = self.storage.truncate(cut_length) {
            message.push_str(&format!(
                "; then cutting the log back to {cut_length} bytes: {truncate_error}"
            ));
        }
        let first_failed_sequence = self.durable_sequence + 1;
        self.failure = Some((first_failed_sequence, message.clone()));
        self.statistics.failed.store(true, Ordering::Relaxed);
        self.report(SyncReport::Failed {
            first_failed_sequence,
            last_sequence,
            error: message,
        });
    }

    fn report(&self, report: SyncReport) {
        // The loop may be gone already at shutdown; nobody is left to tell.
        if self.reports.send(report).is_ok() {
            (self.notify)();
        }
    }

    fn recycle(&self, mut buffer: Vec<u8>) {
        if buffer.capacity() <= SYNCER_BUFFER_POOLED_CAPACITY_MAX {
            buffer.clear();
            // A full pool means the loop has plenty; drop this one.
            let _ = self.buffers.try_send(buffer);
        }
    }
}

#[cfg(test)]
mod tests;
