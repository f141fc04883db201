//! The append-only log: every mutation is recorded here and made durable before any reply that depends on
//! it leaves the server.
//!
//! # Layout
//! - `record`: the file header and record framing (magic, length, sequence, CRC-32), and the scanner that
//!   reads a file back and tells a torn tail (cut it) from corruption (refuse to start).
//! - `payload`: what one record holds: one command or a whole transaction, with the loop clock it ran with.
//! - `storage`: the byte sink (`Storage`), on a real file or on a fault-injecting in-memory buffer.
//! - `syncer`: the thread that appends batches and fsyncs them with group commit, and reports back.
//! - `snapshot`: the snapshot file format and its reader; `snapshot::writer`, the thread that writes one.
//! - `manifest`: the format of the file that names the current snapshot.
//! - `directory`: the data directory: every file name, listing, creation, durable rename and deletion.
//! - [`FsyncPolicy`]: when the log is fsync'd.
//!
//! The byte formats are in `record`, `payload`, `snapshot` and `manifest`, and in `protocol.md`.
//!
//! This layer knows bytes, files and threads, not values: it imports nothing from the store, the server,
//! recovery or compaction, so it can be read and tested on its own. What a snapshot entry means is the
//! store's (`store::encoding`), and compaction feeds the snapshot writer.
pub mod directory;
pub mod manifest;
pub mod payload;
pub mod record;
pub mod snapshot;
pub mod storage;
pub mod syncer;

/// When the log is fsync'd, as Redis's `appendfsync`: the one policy the command line, the journal and
/// the syncer thread share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Sync every write before any reply that depends on it (group commit keeps it fast). Loses nothing
    /// acknowledged.
    Always,
    /// Sync at most a second behind; replies are not held. A crash may lose the last second.
    EverySecond,
    /// Never sync; the OS writes back when it likes. A crash may lose what the OS had not written (about
    /// 30 seconds on Linux by default).
    No,
}

impl FsyncPolicy {
    pub const ALL: [FsyncPolicy; 3] = [
        FsyncPolicy::Always,
        FsyncPolicy::EverySecond,
        FsyncPolicy::No,
    ];

    /// The name Redis gives it (`appendfsync`): on the command line, in INFO and CONFIG GET.
    pub fn name(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::EverySecond => "everysec",
            FsyncPolicy::No => "no",
        }
    }

    /// The policy a name stands for, ignoring ASCII case as Redis does.
    pub fn from_name(name: &str) -> Option<FsyncPolicy> {
        FsyncPolicy::ALL
            .into_iter()
            .find(|policy| policy.name().eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::FsyncPolicy;

    #[test]
    fn every_policy_is_found_by_its_name() {
        for policy in FsyncPolicy::ALL {
            assert_eq!(FsyncPolicy::from_name(policy.name()), Some(policy));
        }
        assert_eq!(
            FsyncPolicy::from_name("EVERYSEC"),
            Some(FsyncPolicy::EverySecond)
        );
        assert_eq!(FsyncPolicy::from_name("sometimes"), None);
    }
}
