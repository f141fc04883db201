//! The command line, parsed with clap into [`Config`].

use std::path::PathBuf;

use clap::builder::{PossibleValue, RangedU64ValueParser};
use clap::{Parser, ValueEnum};

use crate::aof::FsyncPolicy;
use crate::limits;
use crate::store::SetEncodingLimits;

/// `--appendfsync` takes the policy's own names; each value's help is what `--help` lists.
impl ValueEnum for FsyncPolicy {
    fn value_variants<'a>() -> &'a [Self] {
        &FsyncPolicy::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let help = match self {
            FsyncPolicy::Always => {
                "Sync every write before any reply that depends on it (group commit keeps it fast). \
                 Loses nothing acknowledged"
            }
            FsyncPolicy::EverySecond => {
                "Sync at most a second behind; replies are not held. A crash may lose the last second"
            }
            FsyncPolicy::No => {
                "Never sync; the OS writes back when it likes. A crash may lose what the OS had not \
                 written (about 30 seconds on Linux by default)"
            }
        };
        Some(PossibleValue::new(self.name()).help(help))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum YesNo {
    Yes,
    No,
}

/// dibs: an in-memory, Redis-compatible engine for rush traffic (coupons, stock, likes, waiting rooms,
/// rate limits), with every write logged to disk before it is acknowledged.
#[derive(Debug, Clone, Parser)]
#[command(name = "dibs", version, about, long_about = None)]
pub struct Config {
    /// TCP port to listen on (0 picks a free port and logs it).
    #[arg(long, default_value_t = 6379)]
    pub port: u16,

    /// Address to listen on. Without --requirepass, clients from non-loopback addresses are refused
    /// (protected mode).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,

    /// Data directory holding the log; created if missing.
    #[arg(long, default_value = "./data")]
    pub dir: PathBuf,

    /// Whether writes are logged at all. With `no`, nothing survives a restart.
    #[arg(long, value_enum, default_value = "yes")]
    pub appendonly: YesNo,

    /// When the log is synced to disk: `always` (no acknowledged write is ever lost), `everysec` (up to
    /// a second lost on a crash) or `no` (the OS decides).
    #[arg(long, value_enum, default_value = "always")]
    pub appendfsync: FsyncPolicy,

    /// Require clients to AUTH with this password.
    #[arg(long)]
    pub requirepass: Option<String>,

    /// Most simultaneous clients; the next one gets `-ERR max number of clients reached`.
    #[arg(long, default_value_t = limits::CLIENTS_MAX_DEFAULT)]
    pub maxclients: usize,

    /// Hard limit, in bytes, of the replies waiting for one client; past it the client is disconnected.
    #[arg(long, default_value_t = limits::OUTPUT_BUFFER_SIZE_MAX_DEFAULT)]
    pub client_output_buffer_limit: usize,

    /// Compact the log automatically once the log written since the last snapshot is at least this
    /// percentage of the snapshot's size (Redis's auto-aof-rewrite-percentage); 0 turns it off.
    #[arg(long, default_value_t = 100)]
    pub auto_aof_rewrite_percentage: u64,

    /// ... and at least this many bytes (Redis's auto-aof-rewrite-min-size).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub auto_aof_rewrite_min_size: u64,

    /// With `no`, clients from non-loopback addresses are served even without a password.
    #[arg(long, value_enum, default_value = "yes")]
    pub protected_mode: YesNo,

    /// Most members a set of integers keeps as an `intset` (a sorted array of packed numbers) before it
    /// becomes a `hashtable` (Redis's set-max-intset-entries). Also read by replay, so keep it the same
    /// across restarts to rebuild the same encodings.
    #[arg(long, default_value_t = 512,
          value_parser = RangedU64ValueParser::<usize>::new().range(0..=limits::SET_COMPACT_ENTRIES_CEILING as u64))]
    pub set_max_intset_entries: usize,

    /// Most members a set keeps as a `listpack` (one flat buffer) before it becomes a `hashtable`
    /// (Redis's set-max-listpack-entries).
    #[arg(long, default_value_t = 128,
          value_parser = RangedU64ValueParser::<usize>::new().range(0..=limits::SET_COMPACT_ENTRIES_CEILING as u64))]
    pub set_max_listpack_entries: usize,

    /// Longest member, in bytes, a `listpack` set takes; a longer one makes it a `hashtable` (Redis's
    /// set-max-listpack-value).
    #[arg(long, default_value_t = 64,
          value_parser = RangedU64ValueParser::<usize>::new().range(0..=limits::SET_LISTPACK_VALUE_CEILING as u64))]
    pub set_max_listpack_value: usize,
}

impl Config {
    /// The set encoding thresholds the store starts with (CONFIG SET may change them at run time).
    pub fn set_encoding_limits(&self) -> SetEncodingLimits {
        SetEncodingLimits {
            intset_entries_max: self.set_max_intset_entries,
            listpack_entries_max: self.set_max_listpack_entries,
            listpack_value_length_max: self.set_max_listpack_value,
        }
    }

    /// The defaults, as if run with no arguments but on `port` in `dir` (for tests).
    pub fn for_tests(port: u16, dir: PathBuf) -> Config {
        let mut config = Config::parse_from(["dibs"]);
        config.port = port;
        config.dir = dir;
        config
    }
}
