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
//! written and durable ahead of its end (`LOG_RESERVE_AHEAD_BYTES`), on a thread of its own that writes
//! them `LOG_RESERVE_STEP_BYTES` at a time and fdatasyncs each step, and appends overwrite those zeros.
//! Only the reserving thread's own steps change metadata, about once a step instead of once an fsync. An
//! append that outruns the reserved space (a burst faster than the reserving thread) extends the file as
//! a plain append does.
//!
//! The reserving thread opens the file on its own file description: Linux reports a writeback error once
//! to every open file description, so its fdatasync can never take an error meant for the syncer's.
//!
//! A file that ends in zeros after its last record is what a crash (or a kill) leaves; the scanner calls
//! that space reserved, not damage, and recovery cuts it.
//!
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::directory::sync_directory_of;
use super::record::{file_header, FILE_HEADER_SIZE};
use crate::limits::{LOG_RESERVE_AHEAD_BYTES, LOG_RESERVE_STEP_BYTES};

mod faulty;
pub use faulty::{AppendFault, FaultyStorage, FaultyStorageControl};

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
        // A panic in the reserving thread only ends the reservation; appends then extend the file
        // as plain appends do.
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

#[cfg(test)]
mod tests;
