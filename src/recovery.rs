//! Start-up: find the log in the data directory, judge it, replay it into a fresh store and open it for
//! appending.
//!
//! Log files are named `log-<first sequence, 20 digits>.aof`, so their names sort in log order. Each file
//! is read through a memory map and scanned by `aof::record::Scanner`; every record's payload is decoded and
//! its commands run through `command::replay`, the same handlers live traffic uses, with the clock value
//! the record carries. Replay therefore never reads the clock and always reaches the same state.
//!
//! Damage is judged by the scanner:
//! - a torn tail in the last file (what a crash leaves: a record cut short, a record whose bytes did not
//!   all reach the disk, zeros) is cut off: truncate, fsync, and a log line with the offset and the number
//!   of bytes discarded. Nothing cut was ever acknowledged, because replies wait for their record's sync;
//! - anything else (damage with valid records after it, a sequence gap or repeat, a torn tail in a file
//!   that is not the last) refuses to start: the file is left untouched and the message names the file, the
//!   byte offset and the repair tool.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::aof::payload::{decode_payload_into, DecodedPayload};
use crate::aof::record::{ScanVerdict, Scanner};
use crate::aof::storage::FileStorage;
use crate::command;
use crate::config::Config;
use crate::store::{Mutations, Store};

/// What start-up recovered.
pub struct Recovered {
    pub store: Store,
    /// The sequence the next record gets.
    pub next_sequence: u64,
    /// The largest clock value any record carried; the loop's clock never goes below it.
    pub last_now_ms: u64,
    /// The last log file, open for appending. `None` with `--appendonly no`.
    pub storage: Option<FileStorage>,
    pub records_replayed: u64,
    pub bytes_replayed: u64,
    pub elapsed: Duration,
}

/// Why the server can't start.
#[derive(Debug)]
pub struct RecoveryError(pub String);

impl std::fmt::Display for RecoveryError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

fn io_error(context: &str, path: &Path, error: io::Error) -> RecoveryError {
    RecoveryError(format!("{context} {}: {error}", path.display()))
}

pub fn log_file_name(first_sequence: u64) -> String {
    format!("log-{first_sequence:020}.aof")
}

/// The log files in `directory`, in log order.
pub fn log_files(directory: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(directory)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(number) = name
            .strip_prefix("log-")
            .and_then(|rest| rest.strip_suffix(".aof"))
        else {
            continue;
        };
        if let Ok(first_sequence) = number.parse::<u64>() {
            files.push((first_sequence, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

/// Recovers the state from `config.dir`, creating the directory and an empty log if there is none.
pub fn recover(config: &Config, random_seed: u64) -> Result<Recovered, RecoveryError> {
    let started = Instant::now();
    fs::create_dir_all(&config.dir)
        .map_err(|error| io_error("cannot create the data directory", &config.dir, error))?;
    let mut store = Store::new(random_seed);
    let files =
        log_files(&config.dir).map_err(|error| io_error("cannot list", &config.dir, error))?;
    let mut replay = Replay::new(&mut store, u64::MAX);
    let file_count = files.len();
    for (index, (first_sequence, path)) in files.iter().enumerate() {
        let is_last = index + 1 == file_count;
        replay.file(path, *first_sequence, is_last, true)?;
    }
    let (next_sequence, last_now_ms, records, bytes) = (
        replay.next_sequence,
        replay.last_now_ms,
        replay.records,
        replay.bytes,
    );
    let storage = if config.appendonly == crate::config::YesNo::Yes {
        let path = match files.last() {
            Some((_, path)) => path.clone(),
            None => config.dir.join(log_file_name(next_sequence)),
        };
        Some(
            FileStorage::open(&path, next_sequence)
                .map_err(|error| io_error("cannot open the log", &path, error))?,
        )
    } else {
        None
    };
    Ok(Recovered {
        store,
        next_sequence,
        last_now_ms,
        storage,
        records_replayed: records,
        bytes_replayed: bytes,
        elapsed: started.elapsed(),
    })
}

/// Rebuilds the state from the records up to `through_sequence` without changing any file: used after the
/// log failed, to drop whatever the failed records had done in memory.
pub fn reload(config: &Config, through_sequence: u64) -> Result<Store, RecoveryError> {
    let mut store = Store::new(crate::server::system_time_ms());
    let files =
        log_files(&config.dir).map_err(|error| io_error("cannot list", &config.dir, error))?;
    let mut replay = Replay::new(&mut store, through_sequence);
    for (first_sequence, path) in &files {
        if *first_sequence > through_sequence {
            break;
        }
        replay.file(path, *first_sequence, true, false)?;
    }
    Ok(store)
}

struct Replay<'s> {
    store: &'s mut Store,
    scratch: Mutations,
    next_sequence: u64,
    through_sequence: u64,
    last_now_ms: u64,
    records: u64,
    bytes: u64,
}

impl<'s> Replay<'s> {
    fn new(store: &'s mut Store, through_sequence: u64) -> Replay<'s> {
        Replay {
            store,
            scratch: Mutations::new(),
            next_sequence: 1,
            through_sequence,
            last_now_ms: 0,
            records: 0,
            bytes: 0,
        }
    }

    /// Replays one file. `may_cut`: a torn tail may be cut (the last file, at start-up).
    fn file(
        &mut self,
        path: &Path,
        first_sequence: u64,
        is_last: bool,
        may_cut: bool,
    ) -> Result<(), RecoveryError> {
        let file = fs::File::open(path).map_err(|error| io_error("cannot open", path, error))?;
        let length = file
            .metadata()
            .map_err(|error| io_error("cannot stat", path, error))?
            .len();
        if length == 0 {
            return Ok(());
        }
        // Safety: the map is read-only and private to this process; nothing else writes the file while
        // the server starts (the data directory belongs to one server).
        let map = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|error| io_error("cannot map", path, error))?;
        let mut scanner = Scanner::new(&map);
        if let Some(found) = scanner.first_sequence() {
            if found != first_sequence || found != self.next_sequence {
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
                return Ok(());
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
                command::replay(self.store, arguments, payload.now_ms, &mut self.scratch).map_err(|error| {
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
        match scanner.finish() {
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
                drop(map);
                let file = fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|error| io_error("cannot open for cutting", path, error))?;
                file.set_len(offset)
                    .and_then(|()| file.sync_all())
                    .map_err(|error| io_error("cannot cut the torn tail of", path, error))?;
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
