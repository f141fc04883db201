//! [`FaultyStorage`]: an in-memory [`Storage`] that fails on command and models a crash, so the syncer's
//! handling of disk errors is tested deterministically.
//!
//! # What a crash keeps
//!
//! Everything synced survives. Of the bytes appended since the last sync, [`FaultyStorageControl::crash`]
//! keeps a prefix (the kernel wrote back the first pages), and [`FaultyStorageControl::crash_torn`] keeps
//! any subset of their sectors, in any order, the others reading as zeros: what a disk that reorders
//! writes leaves when the power goes. A capacity ([`FaultyStorageControl::set_capacity`]) makes appends
//! past it short writes that fail with ENOSPC, as a full disk does.
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::Storage;

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
