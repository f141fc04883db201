//! Start-up: find the log in the data directory, judge it, replay it into a fresh store and open it for
//! appending.
//!
//! Log files are named `log-<first sequence, 20 digits>.aof`, so their names sort in log order. Each file
//! is read through a memory map and scanned by `aof::record::Scanner`; every record's payload is decoded and
//! its commands run through `dispatch::replay`, the same handlers live traffic uses, with the clock value
//! the record carries. Replay therefore never reads the clock and always reaches the same state.
//!
//! With compaction (protocol.md) the state starts from a snapshot: if `MANIFEST` exists, the snapshot
//! it names is loaded (every checksum and the trailer verified; any damage, or a missing snapshot, refuses
//! to start naming the file and offset), then only records after the snapshot's sequence S are replayed.
//! Log files whose records are all at most S are skipped (and deleted: a compaction that crashed while
//! deleting them is finished here), and the first file needed may start before S + 1: its records up to S
//! are verified but not applied, so no record is ever applied twice. Leftover `*.tmp` files (a compaction
//! that never finished) and snapshots the manifest does not name are deleted with a log line.
//!
//! Damage is judged by the scanner:
//! - a torn tail in the last file (what a crash leaves: a record cut short, a record whose bytes did not
//!   all reach the disk, zeros) is cut off: truncate, fsync, and a log line with the offset and the number
//!   of bytes discarded. Nothing cut was ever acknowledged, because replies wait for their record's sync;
//! - anything else (damage with valid records after it, a sequence gap or repeat, a torn tail in a file
//!   that is not the last) refuses to start: the file is left untouched and the message names the file, the
//!   byte offset and the repair tool.
//!
//! # Layout
//! - this module: [`recover`] and [`reload`], which choose the files (`aof::directory` names and lists
//!   them) and put the steps together.
//! - `snapshot_load`: the snapshot the manifest names, verified and loaded with one thread per core.
//! - `replay`: the records after it, and the judgement of each file's end.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::aof::directory::{
    self, delete_covered_log_file, log_file_name, log_files, open_log_file,
};
use crate::aof::storage::FileStorage;
use crate::config::Config;
use crate::store::Store;
use replay::Replay;
use snapshot_load::load_snapshot;

mod replay;
mod snapshot_load;

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
    /// The snapshot the state started from, if any.
    pub snapshot: Option<SnapshotBase>,
    /// Bytes in the log files still needed (the records after the snapshot), for the compaction trigger.
    pub log_bytes: u64,
    /// The first sequence of the file `storage` appends to.
    pub log_first_sequence: u64,
}

/// A loaded snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotBase {
    pub sequence: u64,
    pub now_ms: u64,
    pub entry_count: u64,
    pub length: u64,
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

/// Recovers the state from `config.dir`, creating the directory and an empty log if there is none.
pub fn recover(config: &Config, random_seed: u64) -> Result<Recovered, RecoveryError> {
    let started = Instant::now();
    directory::create(&config.dir)
        .map_err(|error| io_error("cannot create the data directory", &config.dir, error))?;
    directory::delete_temporary_files(&config.dir);
    let mut store = Store::new(random_seed);
    store.set_encoding_limits = config.set_encoding_limits();
    let snapshot = load_snapshot(&config.dir, &mut store, true)?;
    let files = needed_log_files(&config.dir, snapshot.as_ref(), true)?;
    let mut replay = Replay::new(&mut store, u64::MAX, snapshot.as_ref());
    let file_count = files.len();
    let mut last_file_end = 0;
    for (index, (first_sequence, path)) in files.iter().enumerate() {
        let is_last = index + 1 == file_count;
        last_file_end = replay.file(path, *first_sequence, is_last, true)?;
    }
    let (next_sequence, last_now_ms, records, bytes) = (
        replay.next_sequence,
        replay.last_now_ms,
        replay.records,
        replay.bytes,
    );
    // Pair assertion: every value as the snapshot and replay left it, checked against its invariants (each
    // value was also checked as it was decoded). Debug builds only: it walks the whole keyspace.
    #[cfg(debug_assertions)]
    store.check_invariants();
    let mut log_bytes = 0;
    for (_, path) in &files {
        log_bytes += fs::metadata(path).map_or(0, |metadata| metadata.len());
    }
    // Append to the last file only if it ends right before the next record; otherwise (no file, or the
    // only file holds records all inside the snapshot) start the file the next record belongs in.
    let (log_first_sequence, path) = match files.last() {
        Some((first_sequence, path)) if last_file_end + 1 == next_sequence => {
            (*first_sequence, path.clone())
        }
        _ => (next_sequence, config.dir.join(log_file_name(next_sequence))),
    };
    let storage = if config.appendonly == crate::config::YesNo::Yes {
        Some(
            open_log_file(&path, next_sequence, config.appendfsync)
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
        snapshot,
        log_bytes,
        log_first_sequence,
    })
}

/// Rebuilds the state from the records up to `through_sequence` without changing any file: used after the
/// log failed, to drop whatever the failed records had done in memory.
pub fn reload(config: &Config, through_sequence: u64) -> Result<Store, RecoveryError> {
    let mut store = Store::new(crate::clock::system_time_ms());
    store.set_encoding_limits = config.set_encoding_limits();
    let snapshot = load_snapshot(&config.dir, &mut store, false)?;
    let files = needed_log_files(&config.dir, snapshot.as_ref(), false)?;
    let mut replay = Replay::new(&mut store, through_sequence, snapshot.as_ref());
    for (first_sequence, path) in &files {
        if *first_sequence > through_sequence {
            break;
        }
        replay.file(path, *first_sequence, true, false)?;
    }
    #[cfg(debug_assertions)]
    store.check_invariants();
    Ok(store)
}

/// The log files whose records replay needs: all of them without a snapshot; with one at S, from the last
/// file starting at or before S + 1. `cleanup`: delete the files skipped (their records are all in the
/// snapshot; a compaction that crashed while deleting leaves them).
fn needed_log_files(
    directory: &Path,
    snapshot: Option<&SnapshotBase>,
    cleanup: bool,
) -> Result<Vec<(u64, PathBuf)>, RecoveryError> {
    let mut files =
        log_files(directory).map_err(|error| io_error("cannot list", directory, error))?;
    let Some(snapshot) = snapshot else {
        return Ok(files);
    };
    let covered = files
        .windows(2)
        .take_while(|pair| pair[1].0 <= snapshot.sequence + 1)
        .count();
    for (_, path) in files.drain(..covered) {
        if cleanup {
            delete_covered_log_file(&path, snapshot.sequence);
        }
    }
    Ok(files)
}
