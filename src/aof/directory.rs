//! The data directory: the name of every file in it, and every listing, creation, durable rename and
//! deletion of those files. Nothing else in dibs formats or parses a file name of the data directory.
//!
//! # Files
//!
//! | Name | What it holds |
//! |---|---|
//! | `log-<first sequence, 20 digits>.aof` | log records from that sequence on (`aof::record`) |
//! | `snapshot-<S, 20 digits>.snap` | the state after record S (`aof::snapshot`), once `MANIFEST` names it |
//! | `snapshot-<S, 20 digits>.tmp` | a snapshot being written |
//! | `MANIFEST` | the snapshot the state starts from (`aof::manifest`) |
//! | `MANIFEST.tmp` | a manifest being written |
//!
//! Log file names sort in log order. No `MANIFEST` means no snapshot: replay every log from sequence 1.
//! Any other file is ignored and left alone.
//!
//! # Durability
//! A file's contents are fsync'd before it gets its final name, and the name is made durable by fsyncing
//! the directory ([`rename_durably`], [`sync_directory_of`]): after a crash a name either is not there or
//! names a complete file. `*.tmp` files are what a compaction that did not finish left behind; the state
//! never depends on them, and start-up deletes them ([`delete_temporary_files`]).
//!
//! # Deletion
//! A snapshot named by a durable `MANIFEST` makes older snapshots and the log files all of whose records it
//! holds redundant ([`delete_replaced`]). Large files are cut down in steps before they are unlinked
//! (`FILE_DELETE_STEP_BYTES`), so that freeing their blocks never becomes one long journal commit that a
//! log fsync has to wait for. Failing to delete is logged, never fatal: start-up deletes what is left.
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::manifest::Manifest;
use super::storage::FileStorage;
use super::FsyncPolicy;
use crate::limits::{FILE_DELETE_STEP_BYTES, FILE_DELETE_STEP_PAUSE};

pub const MANIFEST_FILE_NAME: &str = "MANIFEST";
pub const MANIFEST_TEMPORARY_NAME: &str = "MANIFEST.tmp";

pub fn log_file_name(first_sequence: u64) -> String {
    format!("log-{first_sequence:020}.aof")
}

/// The first sequence in a log file name, if `name` is one.
pub fn parse_log_file_name(name: &str) -> Option<u64> {
    name.strip_prefix("log-")?
        .strip_suffix(".aof")?
        .parse::<u64>()
        .ok()
}

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

/// True for what a compaction that never finished leaves behind: `snapshot-*.tmp` and `MANIFEST.tmp`.
fn is_temporary_file_name(name: &str) -> bool {
    name == MANIFEST_TEMPORARY_NAME || (name.starts_with("snapshot-") && name.ends_with(".tmp"))
}

/// Creates the data directory (and its parents) if it does not exist.
pub fn create(directory: &Path) -> io::Result<()> {
    fs::create_dir_all(directory)
}

/// The names in `directory` that are valid UTF-8, with their paths.
fn entries(directory: &Path) -> io::Result<impl Iterator<Item = (String, PathBuf)>> {
    Ok(fs::read_dir(directory)?.flatten().filter_map(|entry| {
        let name = entry.file_name().into_string().ok()?;
        Some((name, entry.path()))
    }))
}

/// The log files in `directory`, in log order.
pub fn log_files(directory: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(directory)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(first_sequence) = parse_log_file_name(name) {
            files.push((first_sequence, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

/// Opens the log file the server appends to (at start-up, and for the next file at a compaction), keeping
/// space reserved past its end when every write is fsync'd (`FileStorage::with_reserved_space` says why
/// only then).
pub fn open_log_file(
    path: &Path,
    first_sequence: u64,
    policy: FsyncPolicy,
) -> io::Result<FileStorage> {
    let storage = FileStorage::open(path, first_sequence)?;
    if policy == FsyncPolicy::Always {
        storage.with_reserved_space()
    } else {
        Ok(storage)
    }
}

/// Fsyncs the directory holding `path`, so a newly created file's name survives a crash.
pub fn sync_directory_of(path: &Path) -> io::Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(directory)?.sync_all()
}

/// Renames a complete, fsync'd file to its final name, and makes the new name durable. rename is atomic:
/// after a crash `to` is the old file or the new one, whole.
pub fn rename_durably(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)?;
    sync_directory_of(to)
}

/// The directory's manifest: `Ok(None)` when there is none, `Err` when it is unreadable or damaged.
pub fn read_manifest(directory: &Path) -> Result<Option<Manifest>, String> {
    let path = directory.join(MANIFEST_FILE_NAME);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    };
    Manifest::parse(&bytes)
        .map(Some)
        .map_err(|reason| format!("the manifest {} is damaged: {reason}", path.display()))
}

/// Replaces the directory's manifest atomically and durably: writes `MANIFEST.tmp`, fsyncs it, renames it
/// over `MANIFEST` and fsyncs the directory.
pub fn write_manifest(directory: &Path, manifest: &Manifest) -> io::Result<()> {
    let temporary = directory.join(MANIFEST_TEMPORARY_NAME);
    let mut file = File::create(&temporary)?;
    file.write_all(&manifest.encode())?;
    file.sync_all()?;
    drop(file);
    rename_durably(&temporary, &directory.join(MANIFEST_FILE_NAME))
}

/// Deletes what a compaction that never finished left behind: `snapshot-*.tmp` and `MANIFEST.tmp`.
pub fn delete_temporary_files(directory: &Path) {
    let Ok(entries) = entries(directory) else {
        return;
    };
    for (name, path) in entries {
        if is_temporary_file_name(&name) {
            match fs::remove_file(path) {
                Ok(()) => log::warn!(
                    "deleted {name}, left by a compaction that did not finish (the state does not depend on it)"
                ),
                Err(error) => log::warn!("could not delete the leftover {name}: {error}"),
            }
        }
    }
}

/// Deletes every snapshot but `kept` (the one the manifest names), at start-up.
pub fn delete_snapshots_except(directory: &Path, kept: &str) {
    let Ok(entries) = entries(directory) else {
        return;
    };
    for (name, path) in entries {
        if parse_snapshot_file_name(&name).is_some() && name != kept {
            match fs::remove_file(path) {
                Ok(()) => log::warn!("deleted {name}: the manifest names another snapshot"),
                Err(error) => log::warn!("could not delete {name}: {error}"),
            }
        }
    }
}

/// Deletes a log file every record of which is in the snapshot at `snapshot_sequence`, at start-up (a
/// compaction that crashed while deleting leaves them).
pub fn delete_covered_log_file(path: &Path, snapshot_sequence: u64) {
    match fs::remove_file(path) {
        Ok(()) => log::warn!(
            "deleted {}: every record in it is in the snapshot at sequence {snapshot_sequence}",
            path.display()
        ),
        Err(error) => log::warn!("could not delete {}: {error}", path.display()),
    }
}

/// Deletes the files a durable manifest naming the snapshot at `sequence` makes redundant: log files
/// whose every record is at most `sequence` (any `log-N.aof` with `N <= sequence`: the log was rotated to
/// `log-<sequence + 1>` before the snapshot was published) and other snapshots. Failures are logged, not
/// fatal: recovery ignores such files and deletes them at the next start.
pub fn delete_replaced(directory: &Path, sequence: u64) -> Vec<String> {
    let mut deleted = Vec::new();
    let started = Instant::now();
    let Ok(entries) = entries(directory) else {
        return deleted;
    };
    let mut doomed: Vec<PathBuf> = entries
        .filter(|(name, _)| match parse_snapshot_file_name(name) {
            Some(snapshot_sequence) => snapshot_sequence != sequence,
            None => parse_log_file_name(name).is_some_and(|first| first <= sequence),
        })
        .map(|(_, path)| path)
        .collect();
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
        let _ = sync_directory_of(&directory.join(MANIFEST_FILE_NAME));
        log::info!(
            "compaction deleted {} replaced file(s) in {:.1} ms: {}",
            deleted.len(),
            started.elapsed().as_secs_f64() * 1000.0,
            deleted.join(", ")
        );
    }
    deleted
}

/// Cuts a replaced file down `FILE_DELETE_STEP_BYTES` at a time, each cut made durable before the next,
/// so that deleting it frees its blocks in many small journal commits instead of one large one.
///
/// Why: unlinking a file of hundreds of megabytes frees all its extents in one ext4 journal transaction,
/// and the log's next fdatasync (which every reply under `always` waits for) has to commit it: a stall
/// right after each compaction. The file is no longer named by the manifest, so a crash part-way leaves a
/// shorter unreferenced file, which recovery deletes like any replaced file. Failures only mean the plain
/// unlink that follows does the work.
fn shrink_gradually(path: &Path) {
    let Ok(file) = fs::OpenOptions::new().write(true).open(path) else {
        return;
    };
    let Ok(metadata) = file.metadata() else {
        return;
    };
    let mut length = metadata.len();
    while length > FILE_DELETE_STEP_BYTES {
        length -= FILE_DELETE_STEP_BYTES;
        if file.set_len(length).is_err() || file.sync_data().is_err() {
            return;
        }
        std::thread::sleep(FILE_DELETE_STEP_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_directory(name: &str) -> PathBuf {
        let directory =
            std::env::temp_dir().join(format!("dibs-directory-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&directory);
        fs::create_dir_all(&directory).unwrap();
        directory
    }

    #[test]
    fn names_parse_back_and_nothing_else_parses() {
        assert_eq!(log_file_name(7), "log-00000000000000000007.aof");
        assert_eq!(
            parse_log_file_name(&log_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(parse_snapshot_file_name(&snapshot_file_name(42)), Some(42));
        assert_eq!(parse_snapshot_file_name(&snapshot_temporary_name(42)), None);
        assert_eq!(parse_snapshot_file_name("snapshot-42.snap"), None);
        assert_eq!(parse_log_file_name(&snapshot_file_name(42)), None);
        assert_eq!(parse_log_file_name("log-x.aof"), None);
        assert!(is_temporary_file_name(&snapshot_temporary_name(3)));
        assert!(is_temporary_file_name(MANIFEST_TEMPORARY_NAME));
        assert!(!is_temporary_file_name(MANIFEST_FILE_NAME));
        assert!(!is_temporary_file_name(&log_file_name(1)));
    }

    #[test]
    fn log_files_are_listed_in_log_order_and_other_files_ignored() {
        let directory = scratch_directory("listing");
        for name in [
            log_file_name(100).as_str(),
            log_file_name(9).as_str(),
            "notes.txt",
            MANIFEST_FILE_NAME,
        ] {
            fs::write(directory.join(name), b"x").unwrap();
        }
        let listed: Vec<u64> = log_files(&directory)
            .unwrap()
            .into_iter()
            .map(|(first_sequence, _)| first_sequence)
            .collect();
        assert_eq!(listed, [9, 100]);
        fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn a_manifest_written_durably_reads_back_and_leaves_no_temporary_file() {
        let directory = scratch_directory("manifest");
        assert_eq!(read_manifest(&directory), Ok(None));
        let manifest = Manifest {
            sequence: 12,
            snapshot_file: snapshot_file_name(12),
        };
        write_manifest(&directory, &manifest).unwrap();
        assert_eq!(read_manifest(&directory), Ok(Some(manifest)));
        assert!(!directory.join(MANIFEST_TEMPORARY_NAME).exists());
        fs::write(directory.join(MANIFEST_FILE_NAME), b"damaged").unwrap();
        assert!(read_manifest(&directory).is_err());
        fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn start_up_deletes_leftovers_and_unnamed_snapshots_only() {
        let directory = scratch_directory("leftovers");
        for name in [
            snapshot_temporary_name(5),
            MANIFEST_TEMPORARY_NAME.to_string(),
            snapshot_file_name(3),
            snapshot_file_name(5),
            log_file_name(4),
        ] {
            fs::write(directory.join(name), b"x").unwrap();
        }
        delete_temporary_files(&directory);
        delete_snapshots_except(&directory, &snapshot_file_name(5));
        let mut names: Vec<String> = entries(&directory).unwrap().map(|(name, _)| name).collect();
        names.sort();
        assert_eq!(names, [log_file_name(4), snapshot_file_name(5)]);
        fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn a_replaced_file_is_cut_down_in_steps_before_it_is_deleted() {
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
}
