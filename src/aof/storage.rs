//! Where the log's bytes go: the [`Storage`] trait the syncer writes through, [`FileStorage`] on a real
//! file, and [`FaultyStorage`], an in-memory stand-in that fails on command and models a crash, so the
//! syncer's handling of disk errors is tested deterministically.
//!
//! # Guarantees of a `Storage`
//!
//! - `append` writes all the bytes at the end, or fails; after a failure an unknown prefix of them may be
//!   in the file (a short write), so the caller cuts back with `truncate` before trusting the length.
//! - `sync` returns `Ok` only when every byte appended before it is durable (fdatasync). After a failed
//!   sync nothing is known about what reached the disk, and a later sync succeeding proves nothing: Linux
//!   may have dropped the dirty pages and marked them clean ("fsyncgate"). Callers never retry.
//! - `truncate` cuts the file to a length and makes the cut durable.
//! - `finish` ends the file's use: it gives back space reserved past the last byte appended (below), so
//!   the file ends where its records do.
//!
//! # Reserved space
//!
//! An fdatasync after an append that grows a file must also commit the file's new size and blocks to the
//! file system's journal: on ext4 that is a journal commit per fsync, which waits behind whatever else is
//! in the journal (a snapshot being written, files being deleted) and doubles the cost of a quiet fsync.
//! An fdatasync after writes *inside* the file, over blocks already allocated and written, changes no
//! metadata and flushes only the data. So a [`FileStorage`] made with
//! [`FileStorage::with_reserved_space`] (the server does so under `appendfsync always`) keeps zeros
//! written and durable ahead of its end (`LOG_RESERVE_AHEAD_BYTES`), on a thread of its own that writes them `LOG_RESERVE_STEP_BYTES` at a
//! time and fdatasyncs each step, and appends overwrite those zeros. Only the reserving thread's own
//! steps change metadata, about once a step instead of once an fsync. An append that outruns the
//! reserved space (a burst faster than the reserving thread) extends the file as before.
//!
//! The reserving thread opens the file on its own file description: Linux reports a writeback error once
//! to every open file description, so its fdatasync can never take an error meant for the syncer's.
//!
//! A file that ends in zeros after its last record is what a crash (or a kill) leaves; the scanner calls
//! that space reserved, not damage, and recovery cuts it.
//!
//! # What a crash of a [`FaultyStorage`] keeps
//!
//! Everything synced survives. Of the bytes appended since the last sync, [`FaultyStorageControl::crash`]
//! keeps a prefix (the kernel wrote back the first pages), and [`FaultyStorageControl::crash_torn`] keeps
//! any subset of their sectors, in any order, the others reading as zeros: what a disk that reorders
//! writes leaves when the power goes. A capacity ([`FaultyStorageControl::set_capacity`]) makes appends
//! past it short writes that fail with ENOSPC, as a full disk does.
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::directory::sync_directory_of;
use super::record::{file_header, FILE_HEADER_SIZE};
use crate::limits::{LOG_RESERVE_AHEAD_BYTES, LOG_RESERVE_STEP_BYTES};

/// The byte sink of the log. See the module documentation for what each call guarantees.
pub trait Storage {
    /// Writes all of `bytes` at the end of the log.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes everything appended so far durable (fdatasync).
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the log back to `length` bytes (a partial frame after a failed append) and syncs the cut.
    fn truncate(&mut self, length: u64) -> io::Result<()>;
    /// Bytes in the log, counting appends not yet synced.
    fn length(&self) -> u64;
    /// The file takes no more appends (the log moves to a new file, or the server stops): give back the
    /// space reserved past its end, durably. Everything appended must be synced first.
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A log file on disk. Writes go at an explicit offset (`pwrite`), so a failed write never leaves the
/// file position somewhere unknown. May keep space reserved ahead of its end
/// ([`FileStorage::with_reserved_space`]).
#[derive(Debug)]
pub struct FileStorage {
    file: File,
    path: PathBuf,
    length: u64,
    reserver: Option<Reserver>,
}

/// The thread that keeps zeros written ahead of the log's end, and what it shares with the appender.
#[derive(Debug)]
struct Reserver {
    shared: Arc<ReserveShared>,
    thread: JoinHandle<()>,
}

#[derive(Debug)]
struct ReserveShared {
    /// Every byte below this offset is on disk and durable, as records or as reserved zeros. Only the
    /// reserving thread raises it, after its step's fdatasync.
    reserved_end: AtomicU64,
    /// The log's length, as the appender last published it.
    length: AtomicU64,
    /// Held by the reserving thread while it writes a step of zeros, and by an append that reaches past
    /// `reserved_end`: the two never write the same bytes, so zeros never land on a record.
    extending: Mutex<()>,
    stop: AtomicBool,
}

impl Reserver {
    fn spawn(path: &Path, length: u64) -> io::Result<Reserver> {
        let file = OpenOptions::new().write(true).open(path)?;
        let shared = Arc::new(ReserveShared {
            reserved_end: AtomicU64::new(length),
            length: AtomicU64::new(length),
            extending: Mutex::new(()),
            stop: AtomicBool::new(false),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("dibs-log-reserve".to_string())
            .spawn(move || reserve(&file, &thread_shared))?;
        Ok(Reserver { shared, thread })
    }

    /// Stops the thread once its current step is done; after this nothing but the appender writes.
    fn stop(self) {
        self.shared.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        // A panic in the reserving thread only ends the reservation; appends extend the file as before.
        let _ = self.thread.join();
    }
}

/// The reserving thread: from the first append on, while less than `LOG_RESERVE_AHEAD_BYTES` is reserved
/// past the log's end, writes and fdatasyncs a step of zeros after the reserved space; otherwise parks
/// until an append unparks it.
/// On an error it stops reserving (logged): the reservation only saves time, and the appender extends
/// the file as it would without it, meeting the error itself if the disk is really failing.
fn reserve(file: &File, shared: &ReserveShared) {
    // Nothing until the first append: a log nobody writes to needs no space.
    std::thread::park();
    let zeros = vec![0u8; LOG_RESERVE_STEP_BYTES as usize];
    loop {
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        let reserved_end = shared.reserved_end.load(Ordering::Acquire);
        if reserved_end >= shared.length.load(Ordering::Acquire) + LOG_RESERVE_AHEAD_BYTES {
            std::thread::park();
            continue;
        }
        let start = {
            let _extending = shared
                .extending
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if shared.stop.load(Ordering::Acquire) {
                return;
            }
            // Past everything appended, including appends that outran the reservation.
            let start = reserved_end.max(shared.length.load(Ordering::Acquire));
            if let Err(error) = file.write_all_at(&zeros, start) {
                log::warn!("the log stops reserving space ahead of its end: write: {error}");
                return;
            }
            start
        };
        if let Err(error) = file.sync_data() {
            log::warn!("the log stops reserving space ahead of its end: fsync: {error}");
            return;
        }
        shared
            .reserved_end
            .store(start + LOG_RESERVE_STEP_BYTES, Ordering::Release);
    }
}

impl FileStorage {
    /// Opens the log file at `path`, creating it if needed, for appending at its end.
    ///
    /// A missing or empty file gets the file header for `first_sequence`, and the header and the
    /// directory entry are fsync'd before this returns: a file the server relies on always has a durable
    /// header and name. An existing file is left as it is; the caller has scanned it and cut any torn
    /// tail first. A non-empty file shorter than its header is refused (`InvalidData`): the caller must
    /// cut it to zero (the scanner calls that a torn tail at offset 0) before opening.
    pub fn open(path: &Path, first_sequence: u64) -> io::Result<FileStorage> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let length = file.metadata()?.len();
        let mut storage = FileStorage {
            file,
            path: path.to_path_buf(),
            length,
            reserver: None,
        };
        if length == 0 {
            storage.append(&file_header(first_sequence))?;
            storage.sync()?;
            sync_directory_of(path)?;
        } else if length < FILE_HEADER_SIZE as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: {length} bytes is shorter than a log file header",
                    path.display()
                ),
            ));
        }
        Ok(storage)
    }

    /// Starts keeping space reserved ahead of the file's end (module documentation). Only worth it when
    /// the log is fsync'd after every write (`appendfsync always`): with `everysec` one fsync a second
    /// costs nothing to speak of, with `no` there is none to speed up, and either way the zeros would
    /// double the bytes written, and the reserving thread's fsyncs would sync the log more often than
    /// asked.
    pub fn with_reserved_space(mut self) -> io::Result<FileStorage> {
        if self.reserver.is_none() {
            self.reserver = Some(Reserver::spawn(&self.path, self.length)?);
        }
        Ok(self)
    }

    /// Stops reserving space (waiting for a step in progress); from then on appends extend the file.
    fn stop_reserving(&mut self) {
        if let Some(reserver) = self.reserver.take() {
            reserver.stop();
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Storage for FileStorage {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let end = self.length + bytes.len() as u64;
        let Some(reserver) = &self.reserver else {
            self.file.write_all_at(bytes, self.length)?;
            self.length = end;
            return Ok(());
        };
        let shared = &reserver.shared;
        let reserved_end = shared.reserved_end.load(Ordering::Acquire);
        if end <= reserved_end {
            self.file.write_all_at(bytes, self.length)?;
        } else {
            // Past the reservation: wait for a step being written, so its zeros can't land on these bytes.
            let _extending = shared
                .extending
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // Published even if the write fails: a partial write's bytes are not to be zeroed either.
            shared.length.store(end, Ordering::Release);
            self.file.write_all_at(bytes, self.length)?;
        }
        self.length = end;
        shared.length.store(end, Ordering::Release);
        if reserved_end < end + LOG_RESERVE_AHEAD_BYTES / 2 {
            reserver.thread.thread().unpark();
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn truncate(&mut self, length: u64) -> io::Result<()> {
        // A step of zeros written after the cut would grow the file again.
        self.stop_reserving();
        self.file.set_len(length)?;
        self.length = length;
        // The size is metadata; sync_all makes sure the cut itself is durable, not only the data.
        self.file.sync_all()
    }

    fn length(&self) -> u64 {
        self.length
    }

    fn finish(&mut self) -> io::Result<()> {
        self.stop_reserving();
        if self.file.metadata()?.len() > self.length {
            self.file.set_len(self.length)?;
            self.file.sync_all()?;
        }
        Ok(())
    }
}

/// Gives the reserved space back, as `finish` does (best effort: a failure leaves zeros that the next
/// start-up cuts), so that a file opened again starts appending right after its last record.
impl Drop for FileStorage {
    fn drop(&mut self) {
        if self.reserver.is_some() {
            if let Err(error) = self.finish() {
                log::warn!(
                    "the log {} could not give back its reserved space: {error}",
                    self.path.display()
                );
            }
        }
    }
}

/// How the next append of a [`FaultyStorage`] fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendFault {
    /// EIO, nothing written.
    InputOutput,
    /// ENOSPC, nothing written.
    NoSpace,
    /// The first `bytes_written` bytes land, then ENOSPC: the short write a full disk gives.
    Short { bytes_written: usize },
}

#[derive(Debug, Default)]
struct FaultyState {
    contents: Vec<u8>,
    /// `contents[..synced_length]` survives a crash.
    synced_length: usize,
    append_fault: Option<AppendFault>,
    sync_fault: bool,
    truncate_fault: bool,
    /// Appends may not grow `contents` past this many bytes (a full disk).
    capacity: Option<usize>,
    appends_count: u64,
    syncs_count: u64,
    /// Syncs that have started, including ones still held.
    syncs_started: u64,
    /// While true, a sync blocks until the test releases it.
    syncs_held: bool,
    /// Syncs the test has allowed through while `syncs_held`.
    syncs_released: u64,
}

#[derive(Debug, Default)]
struct FaultyShared {
    state: Mutex<FaultyState>,
    changed: Condvar,
}

/// An in-memory log that fails when told to and models what a crash keeps. Clone the
/// [`FaultyStorageControl`] before handing the storage to a syncer to steer and inspect it.
#[derive(Debug)]
pub struct FaultyStorage {
    shared: Arc<FaultyShared>,
}

/// The test's side of a [`FaultyStorage`].
#[derive(Debug, Clone)]
pub struct FaultyStorageControl {
    shared: Arc<FaultyShared>,
}

fn os_error(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl FaultyStorage {
    /// A storage holding `contents` (already durable, e.g. a file header), and its control.
    pub fn new(contents: Vec<u8>) -> (FaultyStorage, FaultyStorageControl) {
        let shared = Arc::new(FaultyShared::default());
        {
            let mut state = shared.state.lock().expect("faulty storage lock");
            state.synced_length = contents.len();
            state.contents = contents;
        }
        (
            FaultyStorage {
                shared: Arc::clone(&shared),
            },
            FaultyStorageControl { shared },
        )
    }

    fn state(&self) -> MutexGuard<'_, FaultyState> {
        self.shared.state.lock().expect("faulty storage lock")
    }
}

impl Storage for FaultyStorage {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.state();
        state.appends_count += 1;
        let room = state.capacity.map_or(usize::MAX, |capacity| {
            capacity.saturating_sub(state.contents.len())
        });
        let fault = match state.append_fault.take() {
            None if bytes.len() > room => Some(AppendFault::Short {
                bytes_written: room,
            }),
            fault => fault,
        };
        let result = match fault {
            None => {
                state.contents.extend_from_slice(bytes);
                Ok(())
            }
            Some(AppendFault::InputOutput) => Err(os_error(libc::EIO)),
            Some(AppendFault::NoSpace) => Err(os_error(libc::ENOSPC)),
            Some(AppendFault::Short { bytes_written }) => {
                state
                    .contents
                    .extend_from_slice(&bytes[..bytes_written.min(bytes.len())]);
                Err(os_error(libc::ENOSPC))
            }
        };
        self.shared.changed.notify_all();
        result
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut state = self.state();
        state.syncs_started += 1;
        let ticket = state.syncs_started;
        self.shared.changed.notify_all();
        while state.syncs_held && state.syncs_released < ticket {
            state = self
                .shared
                .changed
                .wait(state)
                .expect("faulty storage lock");
        }
        state.syncs_count += 1;
        let result = if std::mem::take(&mut state.sync_fault) {
            // The pages are gone or not: a failed sync makes nothing durable.
            Err(os_error(libc::EIO))
        } else {
            state.synced_length = state.contents.len();
            Ok(())
        };
        self.shared.changed.notify_all();
        result
    }

    fn truncate(&mut self, length: u64) -> io::Result<()> {
        let mut state = self.state();
        if std::mem::take(&mut state.truncate_fault) {
            return Err(os_error(libc::EIO));
        }
        let length = usize::try_from(length).expect("in-memory length");
        assert!(length <= state.contents.len(), "truncate beyond the end");
        state.contents.truncate(length);
        state.synced_length = length;
        self.shared.changed.notify_all();
        Ok(())
    }

    fn length(&self) -> u64 {
        self.state().contents.len() as u64
    }
}

impl FaultyStorageControl {
    fn state(&self) -> MutexGuard<'_, FaultyState> {
        self.shared.state.lock().expect("faulty storage lock")
    }

    /// The next append fails as described.
    pub fn fail_next_append(&self, fault: AppendFault) {
        self.state().append_fault = Some(fault);
    }

    /// The next sync fails with EIO and makes nothing durable.
    pub fn fail_next_sync(&self) {
        self.state().sync_fault = true;
    }

    /// The next truncate fails with EIO and cuts nothing.
    pub fn fail_next_truncate(&self) {
        self.state().truncate_fault = true;
    }

    /// From now on appends fail with ENOSPC once the contents would pass `capacity` bytes, after writing
    /// what fits (a short write). `None` lifts the limit.
    pub fn set_capacity(&self, capacity: Option<usize>) {
        self.state().capacity = capacity;
    }

    /// From now on every sync blocks until [`FaultyStorageControl::release_syncs`] lets it through.
    pub fn hold_syncs(&self) {
        self.state().syncs_held = true;
    }

    /// Lets `count` more held syncs through.
    pub fn release_syncs(&self, count: u64) {
        self.state().syncs_released += count;
        self.shared.changed.notify_all();
    }

    /// Stops holding syncs; any blocked sync goes through.
    pub fn stop_holding_syncs(&self) {
        self.state().syncs_held = false;
        self.shared.changed.notify_all();
    }

    /// Blocks until `count` syncs have started (some may still be held).
    pub fn wait_for_syncs_started(&self, count: u64) {
        let mut state = self.state();
        while state.syncs_started < count {
            state = self
                .shared
                .changed
                .wait(state)
                .expect("faulty storage lock");
        }
    }

    /// Blocks until the contents are at least `length` bytes long (appended, not necessarily synced).
    pub fn wait_for_length(&self, length: usize) {
        let mut state = self.state();
        while state.contents.len() < length {
            state = self
                .shared
                .changed
                .wait(state)
                .expect("faulty storage lock");
        }
    }

    /// Syncs that have started, including ones still held.
    pub fn syncs_started(&self) -> u64 {
        self.state().syncs_started
    }

    /// Every byte appended and not cut, synced or not.
    pub fn contents(&self) -> Vec<u8> {
        self.state().contents.clone()
    }

    /// Bytes a crash now would keep for sure.
    pub fn synced_length(&self) -> usize {
        self.state().synced_length
    }

    /// Completed sync calls, failed ones included.
    pub fn syncs_count(&self) -> u64 {
        self.state().syncs_count
    }

    pub fn appends_count(&self) -> u64 {
        self.state().appends_count
    }

    /// What a crash now leaves on disk: the synced prefix, plus up to `torn_bytes` of what was appended
    /// after it (the pages the kernel happened to write back).
    pub fn crash(&self, torn_bytes: usize) -> Vec<u8> {
        let state = self.state();
        let kept = (state.synced_length + torn_bytes).min(state.contents.len());
        state.contents[..kept].to_vec()
    }

    /// What a crash now leaves when the disk persisted unsynced data sector by sector, in any order.
    ///
    /// The file is cut into `sector_size`-byte sectors at absolute offsets; bytes up to the synced length
    /// always survive. Each sector holding unsynced bytes survives when `sector_survives(sector_index)`
    /// says so; one that does not reads as zeros past the synced length. With `length_survives`, the file
    /// keeps its whole appended length (the size reached the disk, some data did not); otherwise it ends
    /// after the last surviving sector.
    pub fn crash_torn(
        &self,
        sector_size: usize,
        length_survives: bool,
        mut sector_survives: impl FnMut(usize) -> bool,
    ) -> Vec<u8> {
        assert!(sector_size > 0, "sectors have a size");
        let state = self.state();
        let synced = state.synced_length;
        let length = state.contents.len();
        let mut image = state.contents[..synced].to_vec();
        let mut kept_length = synced;
        let mut offset = synced;
        while offset < length {
            let sector = offset / sector_size;
            let end = ((sector + 1) * sector_size).min(length);
            if sector_survives(sector) {
                image.extend_from_slice(&state.contents[offset..end]);
                kept_length = end;
            } else {
                image.resize(end, 0);
            }
            offset = end;
        }
        if !length_survives {
            image.truncate(kept_length);
        }
        image
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn scratch_file(name: &str) -> PathBuf {
        let directory =
            std::env::temp_dir().join(format!("dibs-storage-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).unwrap();
        directory.join("log-00000000000000000001.aof")
    }

    fn file_length(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    /// Bytes with no zero among them, different at every offset, so a misplaced or zeroed byte shows.
    fn pattern(start: usize, length: usize) -> Vec<u8> {
        (start..start + length)
            .map(|index| (index % 251) as u8 + 1)
            .collect()
    }

    #[test]
    fn a_file_storage_reserves_zeros_ahead_and_gives_them_back() {
        let path = scratch_file("reserve");
        let mut storage = FileStorage::open(&path, 1)
            .and_then(FileStorage::with_reserved_space)
            .unwrap();
        let data = pattern(0, 1000);
        storage.append(&data).unwrap();
        storage.sync().unwrap();
        let end = FILE_HEADER_SIZE as u64 + 1000;
        let deadline = Instant::now() + Duration::from_secs(30);
        while file_length(&path) < end + LOG_RESERVE_AHEAD_BYTES / 2 {
            assert!(Instant::now() < deadline, "no space was reserved");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(storage.length(), end);
        let contents = std::fs::read(&path).unwrap();
        assert_eq!(&contents[..FILE_HEADER_SIZE], &file_header(1));
        assert_eq!(&contents[FILE_HEADER_SIZE..end as usize], data.as_slice());
        assert!(contents[end as usize..].iter().all(|&byte| byte == 0));
        storage.finish().unwrap();
        assert_eq!(file_length(&path), end);
        // Appends after `finish` extend the file as they would without a reservation.
        storage.append(b"after").unwrap();
        assert_eq!(file_length(&path), end + 5);
        drop(storage);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// Appends of every size, some far past the reserved space, race the reserving thread; not one of
    /// their bytes may end up zeroed or out of place.
    #[test]
    fn appends_that_outrun_the_reservation_keep_every_byte() {
        let path = scratch_file("outrun");
        let mut storage = FileStorage::open(&path, 1)
            .and_then(FileStorage::with_reserved_space)
            .unwrap();
        let mut written = 0;
        let sizes = [1, 20, 4096, 65_536, 3 << 20, 100, 5 << 20, 7, 1 << 20];
        for round in 0..6 {
            for size in sizes {
                let size = size + round;
                storage.append(&pattern(written, size)).unwrap();
                written += size;
            }
            storage.sync().unwrap();
        }
        let end = FILE_HEADER_SIZE as u64 + written as u64;
        assert_eq!(storage.length(), end);
        let contents = std::fs::read(&path).unwrap();
        assert!(contents.len() as u64 >= end);
        assert!(
            contents[FILE_HEADER_SIZE..end as usize] == pattern(0, written)[..],
            "an appended byte was overwritten"
        );
        // A cut stops the reservation for good: nothing grows the file after it.
        storage.truncate(end - 7).unwrap();
        assert_eq!(file_length(&path), end - 7);
        storage.append(b"x").unwrap();
        storage.sync().unwrap();
        assert_eq!(file_length(&path), end - 6);
        drop(storage);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn faulty_storage_models_sync_and_crash() {
        let (mut storage, control) = FaultyStorage::new(b"head".to_vec());
        storage.append(b"one").unwrap();
        assert_eq!(control.crash(0), b"head");
        assert_eq!(control.crash(2), b"headon");
        storage.sync().unwrap();
        assert_eq!(control.crash(0), b"headone");
        storage.append(b"two").unwrap();
        control.fail_next_sync();
        let error = storage.sync().unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EIO));
        assert_eq!(control.crash(0), b"headone");
        control.fail_next_append(AppendFault::Short { bytes_written: 2 });
        let error = storage.append(b"three").unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(control.contents(), b"headonetwoth");
        storage.truncate(7).unwrap();
        assert_eq!(storage.length(), 7);
        assert_eq!(control.crash(100), b"headone");
    }

    #[test]
    fn a_torn_crash_keeps_synced_bytes_and_some_sectors() {
        let (mut storage, control) = FaultyStorage::new(b"head".to_vec());
        storage.append(b"abcdefghij").unwrap();
        // Sectors of 4: [0,4) synced, [4,8) "abcd", [8,12) "efgh", [12,14) "ij".
        assert_eq!(
            control.crash_torn(4, false, |sector| sector == 2),
            b"head\0\0\0\0efgh"
        );
        assert_eq!(
            control.crash_torn(4, true, |sector| sector == 2),
            b"head\0\0\0\0efgh\0\0"
        );
        assert_eq!(control.crash_torn(4, false, |_| false), b"head");
        storage.sync().unwrap();
        assert_eq!(control.crash_torn(4, false, |_| false), b"headabcdefghij");
    }

    #[test]
    fn a_full_disk_gives_a_short_write() {
        let (mut storage, control) = FaultyStorage::new(b"head".to_vec());
        control.set_capacity(Some(7));
        storage.append(b"ab").unwrap();
        let error = storage.append(b"cdef").unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(control.contents(), b"headabc");
        storage.truncate(6).unwrap();
        control.set_capacity(None);
        storage.append(b"xyz").unwrap();
        assert_eq!(control.contents(), b"headabxyz");
    }
}
