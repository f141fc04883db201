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

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::aof::manifest::{self, MANIFEST_FILE_NAME};
use crate::aof::payload::{decode_payload_into, DecodedPayload};
use crate::aof::record::{ScanVerdict, Scanner};
use crate::aof::snapshot::{
    parse_snapshot_file_name, read_snapshot, SnapshotDamage, SnapshotSummary,
};
use crate::aof::storage::FileStorage;
use crate::command::Mutations;
use crate::config::Config;
use crate::dispatch;
use crate::limits::SNAPSHOT_LOAD_THREADS_MAX;
use crate::store::encoding::{decode_value, read_entry, Reader};
use crate::store::keyspace::ShardLoader;
use crate::store::Store;

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

/// Opens the log file the server appends to (at start-up, and for the next file at a compaction), keeping
/// space reserved past its end when every write is fsync'd (`FileStorage::with_reserved_space` says why
/// only then).
pub fn open_log_file(
    path: &Path,
    first_sequence: u64,
    policy: crate::journal::Policy,
) -> io::Result<FileStorage> {
    let storage = FileStorage::open(path, first_sequence)?;
    if policy == crate::journal::Policy::Always {
        storage.with_reserved_space()
    } else {
        Ok(storage)
    }
}

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

/// Recovers the state from `config.dir`, creating the directory and an empty log if there is none.
pub fn recover(config: &Config, random_seed: u64) -> Result<Recovered, RecoveryError> {
    let started = Instant::now();
    fs::create_dir_all(&config.dir)
        .map_err(|error| io_error("cannot create the data directory", &config.dir, error))?;
    delete_temporary_files(&config.dir);
    let mut store = Store::new(random_seed);
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
            open_log_file(&path, next_sequence, config.appendfsync.policy())
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
    let snapshot = load_snapshot(&config.dir, &mut store, false)?;
    let files = needed_log_files(&config.dir, snapshot.as_ref(), false)?;
    let mut replay = Replay::new(&mut store, through_sequence, snapshot.as_ref());
    for (first_sequence, path) in &files {
        if *first_sequence > through_sequence {
            break;
        }
        replay.file(path, *first_sequence, true, false)?;
    }
    Ok(store)
}

/// Deletes what a compaction that never finished left behind: `snapshot-*.tmp` and `MANIFEST.tmp`.
fn delete_temporary_files(directory: &Path) {
    let Ok(entries) = fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let temporary = name == manifest::MANIFEST_TEMPORARY_NAME
            || (name.starts_with("snapshot-") && name.ends_with(".tmp"));
        if temporary {
            match fs::remove_file(entry.path()) {
                Ok(()) => log::warn!(
                    "deleted {name}, left by a compaction that did not finish (the state does not depend on it)"
                ),
                Err(error) => log::warn!("could not delete the leftover {name}: {error}"),
            }
        }
    }
}

/// Loads a snapshot into `loaders` (see `Keyspace::shard_loaders`), in two passes.
///
/// Why two passes: the file's order is random with respect to this process's shards (the hash is seeded
/// per process), so inserting in file order misses the cache on nearly every key, in the shard's table
/// and where its entry goes. The first pass, on this thread, verifies the whole file and notes each
/// entry's hash and offset by shard; the second, one thread per loader, inserts shard by shard, so one
/// shard's table and entries stay in cache while it fills, and only the reads of the (already verified)
/// file are scattered, fetched ahead.
fn load_snapshot_parts(
    map: &[u8],
    mut loaders: Vec<ShardLoader>,
    keys_expected: usize,
) -> Result<(SnapshotSummary, Vec<ShardLoader>), SnapshotDamage> {
    let shard_count: usize = loaders.iter().map(ShardLoader::shard_count).sum();
    let per_shard = keys_expected.div_ceil(shard_count.max(1));
    let mut places: Vec<Vec<(u64, usize)>> = (0..shard_count)
        .map(|_| Vec::with_capacity(per_shard + per_shard / 16))
        .collect();
    let locator = &loaders[0];
    let summary = read_snapshot(map, |entry| {
        let (shard, hash) = locator.locate(entry.key);
        // An entry starts with its key's `u32` length, just before the key's bytes.
        let start = entry.key.as_ptr() as usize - map.as_ptr() as usize - 4;
        places[shard].push((hash, start));
        Ok(())
    })?;
    let results: Vec<Result<ShardLoader, SnapshotDamage>> = std::thread::scope(|scope| {
        let mut places = places.into_iter();
        let handles: Vec<_> = loaders
            .drain(..)
            .map(|loader| {
                let shards: Vec<_> = places.by_ref().take(loader.shard_count()).collect();
                scope.spawn(move || insert_shards(map, loader, shards))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a snapshot load thread panicked"))
            .collect()
    });
    let loaders = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok((summary, loaders))
}

/// The second pass of [`load_snapshot_parts`] for one loader: `places` holds, for each of its shards in
/// order, the hash and offset of every entry the first pass found for it.
fn insert_shards(
    map: &[u8],
    mut loader: ShardLoader,
    places: Vec<Vec<(u64, usize)>>,
) -> Result<ShardLoader, SnapshotDamage> {
    for shard_places in places {
        for (position, &(hash, start)) in shard_places.iter().enumerate() {
            if let Some(&(_, ahead)) = shard_places.get(position + SNAPSHOT_LOAD_PREFETCH_DISTANCE)
            {
                prefetch(&map[ahead]);
            }
            let damage = |reason: String| SnapshotDamage {
                offset: start as u64,
                reason: format!("an entry does not load: {reason}"),
            };
            let entry = read_entry(&mut Reader::new(&map[start..])).map_err(damage)?;
            let value = decode_value(entry.tag, entry.value).map_err(damage)?;
            loader
                .load_entry(entry.key, hash, value, entry.expires_at_ms)
                .map_err(damage)?;
        }
    }
    Ok(loader)
}

/// How many entries ahead the second pass of `load_snapshot_part` asks the CPU to fetch: its reads of the
/// file are scattered, and each would otherwise wait for memory in turn.
const SNAPSHOT_LOAD_PREFETCH_DISTANCE: usize = 16;

/// A hint to bring the cache line holding `byte` closer; no effect on what the program computes.
fn prefetch(byte: &u8) {
    #[cfg(target_arch = "x86_64")]
    // Safety: a prefetch never faults and changes no memory; the address is a valid reference anyway.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (byte as *const u8).cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = byte;
}

/// Loads the snapshot the manifest names into `store`, if there is a manifest. `cleanup`: delete
/// snapshots the manifest does not name (start-up only).
fn load_snapshot(
    directory: &Path,
    store: &mut Store,
    cleanup: bool,
) -> Result<Option<SnapshotBase>, RecoveryError> {
    let started = Instant::now();
    let manifest_path = directory.join(MANIFEST_FILE_NAME);
    let Some(manifest) = manifest::read(directory).map_err(|message| {
        RecoveryError(format!(
            "{message}; dibs will not start. The file was left untouched. Check it with `dibs-aof check {}`.",
            manifest_path.display()
        ))
    })?
    else {
        return Ok(None);
    };
    let path = directory.join(&manifest.snapshot_file);
    let file = fs::File::open(&path).map_err(|error| {
        RecoveryError(format!(
            "the manifest {} names the snapshot {}, which cannot be opened: {error}; dibs will not start",
            manifest_path.display(),
            path.display()
        ))
    })?;
    // Safety: as for log files, read-only and private; nothing else writes the directory at start.
    // Populated up front: the whole file is read once, in order, so faulting it in page by page is waste.
    let map = unsafe { memmap2::MmapOptions::new().populate().map(&file) }
        .map_err(|error| io_error("cannot map", &path, error))?;
    // The trailer's entry count sizes the key table once (capped by what the file could hold).
    let keys_expected = if map.len() >= 16 {
        let count = u64::from_le_bytes(map[map.len() - 16..map.len() - 8].try_into().expect("8"));
        (count as usize).min(map.len() / 16)
    } else {
        0
    };
    // One thread per core builds the key table, each its own range of shards.
    let threads = std::thread::available_parallelism()
        .map_or(1, |count| count.get())
        .min(SNAPSHOT_LOAD_THREADS_MAX);
    let loaders = store.keyspace.shard_loaders(threads, keys_expected);
    let summary = load_snapshot_parts(&map, loaders, keys_expected).map(|(summary, loaders)| {
        store.keyspace.install(loaders);
        summary
    })
    .map_err(|damage| {
        RecoveryError(format!(
            "the snapshot {} named by the manifest is damaged and dibs will not start: {damage}. The file was \
             left untouched. Check it with `dibs-aof check {}`.",
            path.display(),
            path.display()
        ))
    })?;
    if summary.sequence != manifest.sequence {
        return Err(RecoveryError(format!(
            "the snapshot {} holds sequence {} but the manifest says {}; dibs will not start",
            path.display(),
            summary.sequence,
            manifest.sequence
        )));
    }
    if cleanup {
        if let Ok(entries) = fs::read_dir(directory) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if parse_snapshot_file_name(name).is_some() && name != manifest.snapshot_file {
                    match fs::remove_file(entry.path()) {
                        Ok(()) => log::warn!("deleted {name}: the manifest names another snapshot"),
                        Err(error) => log::warn!("could not delete {name}: {error}"),
                    }
                }
            }
        }
    }
    let elapsed = started.elapsed();
    log::info!(
        "snapshot {} loaded: {} keys through sequence {}, {} bytes in {:.3} s",
        path.display(),
        summary.entry_count,
        summary.sequence,
        summary.length,
        elapsed.as_secs_f64()
    );
    Ok(Some(SnapshotBase {
        sequence: summary.sequence,
        now_ms: summary.now_ms,
        entry_count: summary.entry_count,
        length: summary.length,
        elapsed,
    }))
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
            match fs::remove_file(&path) {
                Ok(()) => log::warn!(
                    "deleted {}: every record in it is in the snapshot at sequence {}",
                    path.display(),
                    snapshot.sequence
                ),
                Err(error) => log::warn!("could not delete {}: {error}", path.display()),
            }
        }
    }
    Ok(files)
}

struct Replay<'s> {
    store: &'s mut Store,
    scratch: Mutations,
    next_sequence: u64,
    /// Records up to here are in the snapshot: verified but not applied. Only the first file replayed
    /// may hold such records.
    snapshot_sequence: u64,
    first_file: bool,
    through_sequence: u64,
    last_now_ms: u64,
    records: u64,
    bytes: u64,
}

impl<'s> Replay<'s> {
    fn new(
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
    fn file(
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
