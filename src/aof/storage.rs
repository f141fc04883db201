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
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::record::{file_header, FILE_HEADER_SIZE};

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
}

/// A log file on disk. Writes go at an explicit offset (`pwrite`), so a failed write never leaves the
/// file position somewhere unknown.
#[derive(Debug)]
pub struct FileStorage {
    file: File,
    path: PathBuf,
    length: u64,
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

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Storage for FileStorage {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all_at(bytes, self.length)?;
        self.length += bytes.len() as u64;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn truncate(&mut self, length: u64) -> io::Result<()> {
        self.file.set_len(length)?;
        self.length = length;
        // The size is metadata; sync_all makes sure the cut itself is durable, not only the data.
        self.file.sync_all()
    }

    fn length(&self) -> u64 {
        self.length
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
