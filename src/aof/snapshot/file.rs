//! The snapshot file as it is written: direct I/O in aligned blocks where the file system allows it, else
//! through the page cache with its writeback paced, so that the snapshot's bytes never queue in front of
//! the log's fsyncs.
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use crate::limits::{SNAPSHOT_DIRECT_BLOCK_BYTES, SNAPSHOT_WRITEBACK_BYTES};

/// The snapshot file being written: with `O_DIRECT` in aligned blocks of `SNAPSHOT_DIRECT_BLOCK_BYTES`
/// where the file system allows it (tmpfs, for one, does not), else through the page cache paced by
/// [`Writeback`].
///
/// Why direct: in the page cache the snapshot's data is the file system's to write back, and on ext4
/// (`data=ordered`) every journal commit waits for the data of blocks allocated in it, so the log's fsyncs,
/// each a commit, wait for snapshot data, and replies with them. A direct write is on the disk when it
/// returns and is never part of a commit's data, and with one block in flight at a time the disk's queue
/// in front of a log write stays short.
pub(super) struct SnapshotFile {
    file: File,
    direct: bool,
    /// One block plus room to align it (direct I/O wants memory, offset and length aligned).
    storage: Vec<u8>,
    block_start: usize,
    filled: usize,
    /// Bytes in the file (direct: whole blocks; the last partial block is written by `finish`).
    written: u64,
    writeback: Writeback,
}

/// What direct I/O needs its buffers, offsets and lengths aligned to: the largest logical block size of
/// common disks.
const DIRECT_ALIGNMENT: usize = 4096;
const DIRECT_BLOCK_BYTES: usize = SNAPSHOT_DIRECT_BLOCK_BYTES;
const _: () = assert!(DIRECT_BLOCK_BYTES.is_multiple_of(DIRECT_ALIGNMENT));

impl SnapshotFile {
    pub(super) fn create(path: &Path) -> io::Result<SnapshotFile> {
        use std::os::unix::fs::OpenOptionsExt;
        let direct = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(path);
        let (file, direct) = match direct {
            Ok(file) => (file, true),
            // EINVAL: this file system does no direct I/O. Anything else, the plain create reports too.
            Err(_) => (File::create(path)?, false),
        };
        let storage = if direct {
            vec![0u8; DIRECT_BLOCK_BYTES + DIRECT_ALIGNMENT]
        } else {
            Vec::new()
        };
        let block_start = storage.as_ptr().align_offset(DIRECT_ALIGNMENT);
        Ok(SnapshotFile {
            file,
            direct,
            storage,
            block_start,
            filled: 0,
            written: 0,
            writeback: Writeback::default(),
        })
    }

    pub(super) fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        if !self.direct {
            self.file.write_all(bytes)?;
            self.written += bytes.len() as u64;
            self.writeback.after_write(&self.file, self.written);
            return Ok(());
        }
        use std::os::unix::fs::FileExt;
        while !bytes.is_empty() {
            let count = (DIRECT_BLOCK_BYTES - self.filled).min(bytes.len());
            let at = self.block_start + self.filled;
            self.storage[at..at + count].copy_from_slice(&bytes[..count]);
            self.filled += count;
            bytes = &bytes[count..];
            if self.filled == DIRECT_BLOCK_BYTES {
                let block = &self.storage[self.block_start..self.block_start + DIRECT_BLOCK_BYTES];
                self.file.write_all_at(block, self.written)?;
                self.written += DIRECT_BLOCK_BYTES as u64;
                self.filled = 0;
            }
        }
        Ok(())
    }

    /// Writes what is buffered and gives back the file (not yet fsync'd) and its length. The last block
    /// goes out padded with zeros to the alignment, then the file is cut to its real length.
    pub(super) fn finish(mut self) -> io::Result<(File, u64)> {
        if self.direct && self.filled > 0 {
            use std::os::unix::fs::FileExt;
            let padded = self.filled.next_multiple_of(DIRECT_ALIGNMENT);
            let start = self.block_start;
            self.storage[start + self.filled..start + padded].fill(0);
            self.file
                .write_all_at(&self.storage[start..start + padded], self.written)?;
            self.written += self.filled as u64;
            self.file.set_len(self.written)?;
        }
        Ok((self.file, self.written))
    }
}

/// Paces the snapshot's writeback so the disk never holds a long queue of it in front of the log's fsyncs
/// (see `SNAPSHOT_WRITEBACK_BYTES`). Every window of that many bytes has its writeback started as soon as
/// it is written, and the writer then waits for the window before it, so at most two windows are ever
/// dirty or in flight. `sync_file_range` makes nothing durable (no metadata, no disk cache flush): the
/// final fsync still does that, and reports any I/O error, so errors here are only logged.
#[derive(Default)]
struct Writeback {
    /// Where the window being filled starts.
    window_start: u64,
    /// The window whose writeback was started last: (offset, length).
    in_flight: Option<(u64, u64)>,
}

impl Writeback {
    fn after_write(&mut self, file: &File, written: u64) {
        let length = written - self.window_start;
        if length < SNAPSHOT_WRITEBACK_BYTES {
            return;
        }
        sync_file_range(file, self.window_start, length, false);
        if let Some((offset, length)) = self.in_flight {
            sync_file_range(file, offset, length, true);
        }
        self.in_flight = Some((self.window_start, length));
        self.window_start = written;
    }
}

/// Starts writeback of a file range (`wait`: and waits until it, and any earlier writeback of it, is done).
fn sync_file_range(file: &File, offset: u64, length: u64, wait: bool) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let flags = if wait {
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER
        } else {
            libc::SYNC_FILE_RANGE_WRITE
        };
        // SAFETY: a valid descriptor owned by `file`; the call takes no pointers.
        let result = unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                offset as libc::off64_t,
                length as libc::off64_t,
                flags,
            )
        };
        if result != 0 {
            log::debug!(
                "snapshot writeback pacing: sync_file_range: {}",
                io::Error::last_os_error()
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, length, wait);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_file_holds_exactly_what_was_written_whatever_the_pieces() {
        let directory =
            std::env::temp_dir().join(format!("dibs-snapshot-file-{}", std::process::id()));
        fs::create_dir_all(&directory).unwrap();
        // Lengths that end a block exactly, cross it, fall short of the alignment, and end mid-block.
        for total in [
            0,
            100,
            DIRECT_ALIGNMENT,
            DIRECT_BLOCK_BYTES,
            2 * DIRECT_BLOCK_BYTES + 12_345,
        ] {
            let path = directory.join(format!("snapshot-{total}.tmp"));
            let mut file = SnapshotFile::create(&path).unwrap();
            let mut expected = Vec::new();
            let mut piece = 1;
            while expected.len() < total {
                let length = piece.min(total - expected.len());
                let bytes: Vec<u8> = (0..length)
                    .map(|index| (expected.len() + index) as u8 ^ 0x5a)
                    .collect();
                file.write(&bytes).unwrap();
                expected.extend_from_slice(&bytes);
                piece = piece * 7 % 300_007 + 1;
            }
            let (file, length) = file.finish().unwrap();
            file.sync_all().unwrap();
            assert_eq!(length, total as u64);
            assert_eq!(fs::read(&path).unwrap(), expected, "{total} bytes");
        }
        fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn writeback_is_started_per_window_and_waits_for_the_one_before() {
        let path = std::env::temp_dir().join(format!("dibs-writeback-{}", std::process::id()));
        let mut file = File::create(&path).unwrap();
        let mut writeback = Writeback::default();
        let block = vec![7u8; (SNAPSHOT_WRITEBACK_BYTES / 2) as usize];
        let mut written = 0;
        let mut windows = Vec::new();
        for _ in 0..5 {
            file.write_all(&block).unwrap();
            written += block.len() as u64;
            writeback.after_write(&file, written);
            windows.push((writeback.window_start, writeback.in_flight));
        }
        let window = SNAPSHOT_WRITEBACK_BYTES;
        assert_eq!(
            windows,
            vec![
                (0, None),
                (window, Some((0, window))),
                (window, Some((0, window))),
                (2 * window, Some((window, window))),
                (2 * window, Some((window, window))),
            ]
        );
        fs::remove_file(&path).unwrap();
    }
}
