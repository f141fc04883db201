//! Shared helpers for the integration tests, one way to do each thing:
//!
//! - `server`: the real `dibs` binary, started on an ephemeral port (`--port 0`, the port read from its
//!   start-up line) in a fresh data directory, ready once it logs so (or failing at `DEADLINE`), killed when
//!   dropped; restarted on the same directory; run to its exit for refused starts.
//! - `redis_server`: a real `redis-server` the same way, for tests that compare with Redis (they say they
//!   skipped where it is not installed).
//! - `raw_client`: RESP bytes by hand, for what a client library would not send.
//! - `process`: what `/proc` says about a server (resident memory, CPU time).
//!
//! Tests never sleep and hope: they wait for a condition they can observe, with `wait_until` and its
//! deadline. Where a test measures a rate (CPU over a window of wall time) the window is a measurement,
//! and the test checks that the state it measures held through it.
#![allow(dead_code, unused_imports)]

mod process;
mod raw_client;
mod redis_server;
mod server;

pub use process::{cpu_ticks, resident_bytes};
pub use raw_client::{info_field, reply_length, RawClient};
pub use redis_server::RedisServer;
pub use server::{log_contains, run_to_exit, start, strace_usable, Server};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a test waits for a condition before failing.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// How often a condition is polled: often enough that a test does not wait long past the moment it holds,
/// seldom enough that the polling does not load the server it watches.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// A fresh directory under the system's temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        TempDir::new_under(&std::env::temp_dir(), label)
    }

    /// A fresh directory in memory (`/dev/shm`, where fsync costs nothing) when there is one, else as
    /// `new`: for tests that call recovery thousands of times and test the logic, not the disk.
    pub fn in_memory(label: &str) -> TempDir {
        let shared_memory = Path::new("/dev/shm");
        if shared_memory.is_dir() {
            TempDir::new_under(shared_memory, label)
        } else {
            TempDir::new(label)
        }
    }

    fn new_under(base: &Path, label: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = base.join(format!(
            "dibs-test-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The path of `name` inside the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `condition` until it holds; panics naming `what` if `DEADLINE` passes first. The sleep between
/// polls is the polling interval, not a wait for something to happen.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while Instant::now() < deadline {
        if condition() {
            return;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    panic!("timed out waiting for {what}");
}
