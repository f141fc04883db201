//! The loop's side of the log: sequence numbers, the batch of records made in this loop iteration, and
//! what the syncer thread has reported durable.
//!
//! The loop appends each atomic unit's payload as one framed record to `batch`; at the end of the
//! iteration the batch goes to the syncer thread (group commit). The loop never waits for the disk: it
//! learns of durability from the syncer's reports and releases the replies that were waiting for it.

use crate::aof::record;
use crate::aof::syncer::{Batch, Rotation, SyncReport, SyncerHandle, SyncerStatisticsSnapshot};
use crate::aof::FsyncPolicy;
use crate::limits::{RELAXED_SUBMIT_INTERVAL_MS, RELAXED_SUBMIT_SIZE};

pub struct Journal {
    pub policy: FsyncPolicy,
    /// Sequence number of the next record.
    next_sequence: u64,
    durable_sequence: u64,
    batch: Vec<u8>,
    syncer: Option<SyncerHandle>,
    /// Set once a write or sync failed: the OS error, for replies and INFO. Writes are refused from then on.
    pub failure: Option<String>,
    pub records_appended: u64,
    pub bytes_appended: u64,
    last_submit_ms: u64,
    /// The outcome of the last rotation the syncer reported, until the compaction takes it: the first
    /// sequence of the new file, or the error.
    rotation_outcome: Option<Result<u64, String>>,
    /// The first sequence of the log file records go to now (set by `main` from recovery, then by each
    /// rotation); a compaction with nothing appended since needs no rotation.
    pub log_first_sequence: u64,
}

/// What `collect` learned from the syncer.
pub enum Progress {
    Nothing,
    Durable,
    Failed,
}

impl Journal {
    /// A journal that keeps nothing: every record counts as durable at once (`--appendonly no`).
    pub fn disabled(next_sequence: u64) -> Journal {
        Journal {
            policy: FsyncPolicy::No,
            next_sequence,
            durable_sequence: next_sequence - 1,
            batch: Vec::new(),
            syncer: None,
            failure: None,
            records_appended: 0,
            bytes_appended: 0,
            last_submit_ms: 0,
            rotation_outcome: None,
            log_first_sequence: next_sequence,
        }
    }

    /// A journal writing through `syncer`, whose file holds every record before `next_sequence`.
    pub fn new(policy: FsyncPolicy, next_sequence: u64, syncer: SyncerHandle) -> Journal {
        Journal {
            policy,
            next_sequence,
            durable_sequence: next_sequence - 1,
            batch: Vec::with_capacity(64 * 1024),
            syncer: Some(syncer),
            failure: None,
            records_appended: 0,
            bytes_appended: 0,
            last_submit_ms: 0,
            rotation_outcome: None,
            log_first_sequence: next_sequence,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.syncer.is_some()
    }

    /// Frames `payload` as the next record. Returns its sequence number.
    pub fn append(&mut self, payload: &[u8]) -> u64 {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.records_appended += 1;
        if self.syncer.is_some() {
            let before = self.batch.len();
            record::encode_record(&mut self.batch, sequence, payload);
            self.bytes_appended += (self.batch.len() - before) as u64;
        } else {
            self.durable_sequence = sequence;
        }
        sequence
    }

    pub fn last_sequence(&self) -> u64 {
        self.next_sequence - 1
    }

    pub fn durable_sequence(&self) -> u64 {
        self.durable_sequence
    }

    /// The sequence a reply made now must wait for: everything appended so far under `always`, nothing
    /// under the other policies (they trade that guarantee for latency; see protocol.md).
    ///
    /// Once the log has failed nothing waits either: `durable_sequence` never moves again, so a reply
    /// tagged with a later sequence would be held forever. No reply needs to wait then: writes are refused,
    /// and the server has rebuilt the store from the durable records (`Server::fail_held`), so a read shows
    /// only durable state. Replies made before the failure was learned were failed by that same call.
    pub fn reply_requirement(&self) -> u64 {
        if self.policy == FsyncPolicy::Always && self.syncer.is_some() && self.failure.is_none() {
            self.last_sequence()
        } else {
            0
        }
    }

    /// True when records wait in the batch; the loop must come back within `RELAXED_SUBMIT_INTERVAL_MS`.
    pub fn has_unsubmitted(&self) -> bool {
        !self.batch.is_empty()
    }

    /// Hands the gathered records to the syncer. Called once per loop iteration: under `always` every
    /// batch goes at once (replies wait for it); under the other policies a small batch may wait a few
    /// milliseconds for more.
    ///
    /// Returns `Progress::Failed` if this found the syncer gone: the caller handles it as a failed log
    /// (fails the held replies and reloads the durable state), as it does a failure the syncer reports.
    pub fn submit(&mut self, now_ms: u64) -> Progress {
        if self.batch.is_empty() {
            return Progress::Nothing;
        }
        if self.policy != FsyncPolicy::Always
            && self.batch.len() < RELAXED_SUBMIT_SIZE
            && now_ms < self.last_submit_ms + RELAXED_SUBMIT_INTERVAL_MS
        {
            return Progress::Nothing;
        }
        self.last_submit_ms = now_ms;
        self.send_batch()
    }

    fn send_batch(&mut self) -> Progress {
        if self.batch.is_empty() {
            return Progress::Nothing;
        }
        let Some(syncer) = &self.syncer else {
            self.batch.clear();
            return Progress::Nothing;
        };
        let bytes = std::mem::replace(&mut self.batch, syncer.take_buffer());
        let batch = Batch {
            bytes,
            last_sequence: self.last_sequence(),
        };
        if syncer.submit(batch).is_err() && self.failure.is_none() {
            // The syncer only stops on shutdown or a bug; either way nothing more can be made durable.
            self.failure = Some("the log syncer thread has stopped".to_string());
            log::error!("the log syncer thread has stopped; writes are refused from now on");
            return Progress::Failed;
        }
        Progress::Nothing
    }

    /// CONFIG RESETSTAT: the syncer's longest sync starts over.
    pub fn reset_statistics_max(&self) {
        if let Some(syncer) = &self.syncer {
            syncer.statistics().reset_max();
        }
    }

    /// The syncer's counters, for INFO.
    pub fn statistics(&self) -> SyncerStatisticsSnapshot {
        self.syncer
            .as_ref()
            .map(|syncer| syncer.statistics().snapshot())
            .unwrap_or_default()
    }

    /// Takes the syncer's reports. Under `everysec` and `no` a written batch counts as durable for the
    /// purpose of replies (they are not held); under `always` only a synced one does.
    pub fn collect(&mut self) -> Progress {
        let Some(syncer) = &self.syncer else {
            return Progress::Nothing;
        };
        let mut progress = Progress::Nothing;
        while let Some(report) = syncer.try_recv() {
            match report {
                SyncReport::Durable { sequence, .. } => {
                    if sequence > self.durable_sequence {
                        self.durable_sequence = sequence;
                        if !matches!(progress, Progress::Failed) {
                            progress = Progress::Durable;
                        }
                    }
                }
                SyncReport::Failed { error, .. } => {
                    if self.failure.is_none() {
                        log::error!("the log failed and writes are refused from now on: {error}");
                    }
                    self.failure = Some(error);
                    progress = Progress::Failed;
                }
                SyncReport::Written { .. } => {}
                SyncReport::Rotated { first_sequence } => {
                    self.rotation_outcome = Some(Ok(first_sequence));
                }
                SyncReport::RotationFailed { error, .. } => {
                    self.rotation_outcome = Some(Err(error));
                }
            }
        }
        progress
    }

    /// Switches the log to a new file for the records after the last one appended (compaction). The
    /// records gathered so far go to the syncer first, so the old file gets exactly the records up to
    /// `last_sequence()`. The outcome arrives later through [`Journal::take_rotation_outcome`].
    pub fn rotate(
        &mut self,
        open: Box<
            dyn FnOnce() -> std::io::Result<Box<dyn crate::aof::storage::Storage + Send>> + Send,
        >,
    ) -> Result<(), String> {
        self.send_batch();
        let Some(syncer) = &self.syncer else {
            return Err("the log is disabled".to_string());
        };
        self.rotation_outcome = None;
        let rotation = Rotation {
            first_sequence: self.next_sequence,
            open,
        };
        if syncer.rotate(rotation) {
            Ok(())
        } else {
            Err("the log syncer thread has stopped".to_string())
        }
    }

    pub fn take_rotation_outcome(&mut self) -> Option<Result<u64, String>> {
        self.rotation_outcome.take()
    }

    /// Waits until everything submitted is durable or failed (SHUTDOWN), then stops the syncer.
    pub fn shut_down(&mut self) {
        // A stopped syncer is reported by `shutdown` below.
        let _ = self.send_batch();
        if let Some(syncer) = self.syncer.take() {
            if let Err(error) = syncer.shutdown() {
                log::error!("the log could not be synced at shutdown: {error}");
            }
        }
    }
}
