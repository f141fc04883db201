//! Replay: every record after the snapshot, decoded and run through `dispatch::replay`, the handlers live
//! traffic uses, with the clock value each record carries; and the judgement of how each file ends.
use std::fs;
use std::path::Path;

use super::{io_error, RecoveryError, SnapshotBase};
use crate::aof::payload::{decode_payload_into, DecodedPayload};
use crate::aof::record::{ScanVerdict, Scanner};
use crate::command::Mutations;
use crate::dispatch;
use crate::store::Store;

/// A replay across the log files in order: the sequence the next record must have, and what was applied.
pub(super) struct Replay<'s> {
    store: &'s mut Store,
    scratch: Mutations,
    pub(super) next_sequence: u64,
    /// Records up to here are in the snapshot: verified but not applied. Only the first file replayed
    /// may hold such records.
    snapshot_sequence: u64,
    first_file: bool,
    through_sequence: u64,
    pub(super) last_now_ms: u64,
    pub(super) records: u64,
    pub(super) bytes: u64,
}

impl<'s> Replay<'s> {
    pub(super) fn new(
        store: &'s mut Store,
        through_sequence: u64,
        snapshot: Option<&SnapshotBase>,
    ) -> Replay<'s> {
        let snapshot_sequence = snapshot.map_or(0, |snapshot| snapshot.sequence);
        Replay {
            store,
            scratch: Mutations::new(),
            next_sequence: snapshot_sequence + 1,
            snapshot_sequence,
            first_file: true,
            through_sequence,
            last_now_ms: snapshot.map_or(0, |snapshot| snapshot.now_ms),
            records: 0,
            bytes: 0,
        }
    }

    /// Replays one file. `may_cut`: a torn tail may be cut (the last file, at start-up). Returns the
    /// sequence of the file's last record (its first sequence minus one when it holds none).
    pub(super) fn file(
        &mut self,
        path: &Path,
        first_sequence: u64,
        is_last: bool,
        may_cut: bool,
    ) -> Result<u64, RecoveryError> {
        let may_overlap_snapshot = std::mem::replace(&mut self.first_file, false);
        let mut last_in_file = first_sequence.saturating_sub(1);
        let file = fs::File::open(path).map_err(|error| io_error("cannot open", path, error))?;
        let length = file
            .metadata()
            .map_err(|error| io_error("cannot stat", path, error))?
            .len();
        if length == 0 {
            return Ok(last_in_file);
        }
        // Safety: the map is read-only and private to this process; nothing else writes the file while
        // the server starts (the data directory belongs to one server).
        let map = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|error| io_error("cannot map", path, error))?;
        let mut scanner = Scanner::new(&map);
        if let Some(found) = scanner.first_sequence() {
            let overlap_ok = may_overlap_snapshot && found <= self.next_sequence;
            if found != first_sequence || (found != self.next_sequence && !overlap_ok) {
                return Err(RecoveryError(format!(
                    "the log file {} starts at sequence {found}, but its name says {first_sequence} and the \
                     previous file ends before {}; the data directory holds files from different logs. \
                     Check it with `dibs-aof check {}`.",
                    path.display(),
                    self.next_sequence,
                    path.display()
                )));
            }
        }
        let mut payload = DecodedPayload::new();
        for record in scanner.by_ref() {
            if record.sequence > self.through_sequence {
                return Ok(last_in_file);
            }
            last_in_file = record.sequence;
            if record.sequence <= self.snapshot_sequence {
                // In the snapshot already: checked by the scanner, never applied twice.
                continue;
            }
            decode_payload_into(record.payload, &mut payload).map_err(|error| {
                RecoveryError(format!(
                    "the log file {} has a record at byte offset {} (sequence {}) whose checksum is right but \
                     whose contents don't decode: {error}. It was written by an incompatible build, or the \
                     file was edited. The file was left untouched.",
                    path.display(),
                    record.offset,
                    record.sequence
                ))
            })?;
            for arguments in payload.commands() {
                dispatch::replay(self.store, arguments, payload.now_ms, &mut self.scratch).map_err(|error| {
                    RecoveryError(format!(
                        "replaying the record at byte offset {} (sequence {}) of {} failed: {error}",
                        record.offset,
                        record.sequence,
                        path.display()
                    ))
                })?;
            }
            self.last_now_ms = self.last_now_ms.max(payload.now_ms);
            self.next_sequence = record.sequence + 1;
            self.records += 1;
            self.bytes += record.end_offset() - record.offset;
        }
        let verdict = scanner.finish();
        drop(map);
        self.judge(path, verdict, is_last, may_cut)?;
        Ok(last_in_file)
    }

    fn judge(
        &mut self,
        path: &Path,
        verdict: ScanVerdict,
        is_last: bool,
        may_cut: bool,
    ) -> Result<(), RecoveryError> {
        match verdict {
            ScanVerdict::Clean {
                end_offset,
                reserved_bytes,
            } if reserved_bytes > 0 && is_last && may_cut => {
                // The space the log reserved ahead of its end (a stop without a clean shutdown): cut
                // it, so that the next record is appended right after the last one.
                log::info!(
                    "the log {} ends in {reserved_bytes} bytes of reserved space after its last record; \
                     cutting them",
                    path.display()
                );
                cut_file(path, end_offset)
            }
            ScanVerdict::Clean { .. } => Ok(()),
            ScanVerdict::TornTail {
                offset,
                discarded_bytes,
                reason,
            } if is_last => {
                if !may_cut {
                    return Ok(());
                }
                log::warn!(
                    "the log {} ends in a torn tail at byte offset {offset} ({reason}); cutting {discarded_bytes} \
                     bytes that were never acknowledged",
                    path.display()
                );
                cut_file(path, offset)?;
                if offset == 0 {
                    // The header itself was torn: the file is empty now; FileStorage writes a new header.
                    log::warn!("{} held no complete header; it will be started afresh", path.display());
                }
                Ok(())
            }
            verdict => Err(RecoveryError(format!(
                "the log {} is damaged and dibs will not start: {verdict}. The file was left untouched. \
                 Inspect it with `dibs-aof check {}`; `dibs-aof fix {}` cuts it at the damage, discarding \
                 every record from there on.",
                path.display(),
                path.display(),
                path.display()
            ))),
        }
    }
}

/// Cuts a log file to `length` bytes, durably (a torn tail, or reserved space after the last record).
fn cut_file(path: &Path, length: u64) -> Result<(), RecoveryError> {
    let file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|error| io_error("cannot open for cutting", path, error))?;
    file.set_len(length)
        .and_then(|()| file.sync_all())
        .map_err(|error| io_error("cannot cut", path, error))
}
