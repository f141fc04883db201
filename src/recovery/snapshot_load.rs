//! Start-up's first step: load the snapshot the MANIFEST names, verifying all of it, into the keyspace
//! with one loader thread per core.
use std::fs;
use std::path::Path;
use std::time::Instant;

use super::{io_error, RecoveryError, SnapshotBase};
use crate::aof::directory::{delete_snapshots_except, read_manifest, MANIFEST_FILE_NAME};
use crate::aof::snapshot::{SnapshotDamage, SnapshotSummary};
use crate::compaction::snapshot_entries::read_snapshot;
use crate::limits::SNAPSHOT_LOAD_THREADS_MAX;
use crate::store::encoding::{decode_value_within, read_entry, Reader};
use crate::store::keyspace::ShardLoader;
use crate::store::sets::SetEncodingLimits;
use crate::store::Store;

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
    set_limits: SetEncodingLimits,
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
                scope.spawn(move || insert_shards(map, loader, shards, set_limits))
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
    set_limits: SetEncodingLimits,
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
            let value = decode_value_within(entry.tag, entry.value, &set_limits).map_err(damage)?;
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
pub(super) fn load_snapshot(
    directory: &Path,
    store: &mut Store,
    cleanup: bool,
) -> Result<Option<SnapshotBase>, RecoveryError> {
    let started = Instant::now();
    let manifest_path = directory.join(MANIFEST_FILE_NAME);
    let Some(manifest) = read_manifest(directory).map_err(|message| {
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
    let set_limits = store.set_encoding_limits;
    let summary = load_snapshot_parts(&map, loaders, keys_expected, set_limits).map(|(summary, loaders)| {
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
        delete_snapshots_except(directory, &manifest.snapshot_file);
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
