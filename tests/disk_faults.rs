//! The durability invariant against a slow and a failing disk, on the real binary under `strace` fault
//! injection (skipped, with a message, where strace is missing or ptrace is not permitted), and on an
//! in-process server whose storage fails on command.
//!
//! - Under `appendfsync always` no reply that depends on a record (the write's own reply, or a read that
//!   shows it) leaves before the record's fsync returned; under `everysec` replies do not wait for it.
//! - When an fsync fails, the write that hit it is answered with `-MISCONF ...` naming the OS error, never
//!   `+OK`; later writes are refused with the same error, reads keep working on the durable state, INFO
//!   says `aof_last_write_status:err`, and after a restart every acknowledged write is there and the
//!   failed one is not.
mod common;

use std::io;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{strace_usable, wait_until, RawClient, Server, TempDir};
use dibs::aof::storage::{FileStorage, Storage};
use dibs::aof::syncer::Syncer;
use dibs::aof::FsyncPolicy;
use dibs::config::Config;
use dibs::journal::Journal;
use mio::{Poll, Token, Waker};

/// The delay strace puts before every fsync and fdatasync.
const SYNC_DELAY: Duration = Duration::from_millis(400);
/// Slack for timer granularity: a held reply must not leave before `SYNC_DELAY - SYNC_DELAY_SLACK`.
const SYNC_DELAY_SLACK: Duration = Duration::from_millis(50);
/// How far apart two threads may note the arrival of replies the server released together, on a busy
/// machine.
const THREAD_WAKE_SLACK: Duration = Duration::from_millis(200);

fn strace_wrapper(inject: &str) -> Vec<String> {
    [
        "strace",
        "-f",
        "-o",
        "/dev/null",
        "-e",
        "trace=fdatasync,fsync",
        "-e",
        inject,
    ]
    .iter()
    .map(|argument| argument.to_string())
    .collect()
}

fn skip_without_strace(test: &str) -> bool {
    if strace_usable() {
        return false;
    }
    println!("{test}: skipped, strace is missing or ptrace is not permitted here");
    true
}

fn slow_sync_server(dir: &TempDir, policy: &str) -> Server {
    let delay_us = SYNC_DELAY.as_micros();
    Server::start_wrapped(
        dir.path(),
        strace_wrapper(&format!("inject=fdatasync,fsync:delay_enter={delay_us}")),
        vec!["--appendfsync".into(), policy.into()],
    )
}

#[test]
fn under_always_no_reply_shows_a_write_before_its_sync() {
    if skip_without_strace("under_always_no_reply_shows_a_write_before_its_sync") {
        return;
    }
    let dir = TempDir::new("slow-sync-always");
    let server = slow_sync_server(&dir, "always");
    let mut writer = server.raw();
    let mut reader = server.raw();
    writer.command(&["PING"]);
    assert_eq!(writer.read_reply(), b"+PONG\r\n");
    reader.command(&["PING"]);
    assert_eq!(reader.read_reply(), b"+PONG\r\n");

    let sent_at = Instant::now();
    writer.command(&["SET", "k", "v"]);
    // Reads sent from now on, until one of them shows the new value.
    let reads = thread::spawn(move || {
        let mut seen = Vec::new();
        loop {
            reader.command(&["GET", "k"]);
            let reply = reader.read_reply();
            let at = Instant::now();
            let shows_write = reply == b"$1\r\nv\r\n";
            seen.push((at, reply));
            if shows_write {
                return seen;
            }
        }
    });
    assert_eq!(writer.read_reply(), b"+OK\r\n");
    let acknowledged_at = Instant::now();
    let reads = reads.join().unwrap();

    assert!(
        acknowledged_at - sent_at >= SYNC_DELAY - SYNC_DELAY_SLACK,
        "SET was acknowledged after {:?}, before its fsync ({SYNC_DELAY:?}) could have returned",
        acknowledged_at - sent_at
    );
    let (shown_at, _) = reads.last().unwrap();
    assert!(
        *shown_at - sent_at >= SYNC_DELAY - SYNC_DELAY_SLACK,
        "a GET showed the write after {:?}, before its fsync returned",
        *shown_at - sent_at
    );
    // Both replies are released by the same durability report; the reader's thread may note the time a
    // little before the writer's, but never a sync's length before it.
    assert!(
        *shown_at + THREAD_WAKE_SLACK >= acknowledged_at,
        "a GET showed the write {:?} before the SET was acknowledged",
        acknowledged_at - *shown_at
    );
    for (at, reply) in &reads[..reads.len() - 1] {
        assert_eq!(reply, b"$-1\r\n", "at {:?}", *at - sent_at);
    }
}

#[test]
fn under_everysec_replies_do_not_wait_for_the_sync() {
    if skip_without_strace("under_everysec_replies_do_not_wait_for_the_sync") {
        return;
    }
    let dir = TempDir::new("slow-sync-everysec");
    let server = slow_sync_server(&dir, "everysec");
    let mut client = server.raw();
    for index in 0..5 {
        let value = index.to_string();
        let sent_at = Instant::now();
        client.command(&["SET", "k", &value]);
        assert_eq!(client.read_reply(), b"+OK\r\n");
        let elapsed = sent_at.elapsed();
        assert!(
            elapsed < SYNC_DELAY - SYNC_DELAY_SLACK,
            "SET {index} waited {elapsed:?} under everysec, as if for the sync"
        );
    }
}

/// Sends SETs one at a time until one is refused; returns the acknowledged keys, the refused key and
/// the refusal.
fn write_until_refused(client: &mut RawClient) -> (Vec<String>, String, String) {
    let mut acknowledged = Vec::new();
    for index in 0..100 {
        let key = format!("key_{index}");
        client.command(&["SET", &key, "value"]);
        let reply = client.read_reply_string();
        if reply == "+OK\r\n" {
            acknowledged.push(key);
        } else {
            return (acknowledged, key, reply);
        }
    }
    panic!("no write was refused");
}

/// The checks after the log failed, common to the strace and the in-process test.
fn assert_failed_log_behaviour(client: &mut RawClient, acknowledged: &[String], failed_key: &str) {
    client.command(&["SET", "later", "value"]);
    let reply = client.read_reply_string();
    assert!(
        reply.starts_with("-MISCONF Errors writing to the AOF file: "),
        "a later write: {reply}"
    );
    client.command(&["MULTI"]);
    assert_eq!(client.read_reply_string(), "+OK\r\n");
    client.command(&["INCR", "counter"]);
    assert_eq!(client.read_reply_string(), "+QUEUED\r\n");
    client.command(&["EXEC"]);
    let reply = client.read_reply_string();
    assert!(reply.starts_with("-EXECABORT"), "a transaction: {reply}");

    client.command(&["GET", &acknowledged[0]]);
    assert_eq!(
        client.read_reply_string(),
        "$5\r\nvalue\r\n",
        "reads still work"
    );
    client.command(&["GET", failed_key]);
    assert_eq!(
        client.read_reply_string(),
        "$-1\r\n",
        "the failed write is not visible"
    );
    client.command(&["INFO", "persistence"]);
    let info = client.read_reply_string();
    assert!(info.contains("aof_last_write_status:err"), "{info}");
}

fn assert_recovered(server: &Server, acknowledged: &[String], failed_key: &str) {
    let mut client = server.raw();
    for key in acknowledged {
        client.command(&["GET", key]);
        assert_eq!(client.read_reply_string(), "$5\r\nvalue\r\n", "{key}");
    }
    for key in [failed_key, "later", "counter"] {
        client.command(&["GET", key]);
        assert_eq!(client.read_reply_string(), "$-1\r\n", "{key}");
    }
}

#[test]
fn a_failed_fsync_refuses_the_write_and_keeps_reads_working() {
    if skip_without_strace("a_failed_fsync_refuses_the_write_and_keeps_reads_working") {
        return;
    }
    let dir = TempDir::new("fsync-eio");
    // strace counts calls per thread: the syncer thread's first three fdatasyncs succeed.
    let mut server = Server::start_wrapped(
        dir.path(),
        strace_wrapper("inject=fdatasync:error=EIO:when=4+"),
        Vec::new(),
    );
    let mut client = server.raw();
    let (acknowledged, failed_key, refusal) = write_until_refused(&mut client);
    assert!(
        !acknowledged.is_empty(),
        "writes before the failure succeed"
    );
    assert!(
        refusal.starts_with("-MISCONF Errors writing to the AOF file: ")
            && refusal.contains("Input/output error"),
        "{refusal}"
    );
    assert_failed_log_behaviour(&mut client, &acknowledged, &failed_key);

    server.kill();
    let server = Server::start(dir.path(), &[]);
    assert_recovered(&server, &acknowledged, &failed_key);
}

/// A log file whose fdatasync fails once told to: the server's own storage, with a switch.
struct SwitchedStorage {
    file: FileStorage,
    /// 0: syncs pass. 1: syncs fail with EIO. 2: syncs wait until the mode changes.
    mode: Arc<AtomicU8>,
    syncs_started: Arc<AtomicU64>,
}

const PASS: u8 = 0;
const FAIL: u8 = 1;
const HOLD: u8 = 2;

impl Storage for SwitchedStorage {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.append(bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.syncs_started.fetch_add(1, Ordering::SeqCst);
        wait_until("a held sync to be released", || {
            self.mode.load(Ordering::SeqCst) != HOLD
        });
        match self.mode.load(Ordering::SeqCst) {
            FAIL => Err(io::Error::from_raw_os_error(libc::EIO)),
            _ => self.file.sync(),
        }
    }

    fn truncate(&mut self, length: u64) -> io::Result<()> {
        self.file.truncate(length)
    }

    fn length(&self) -> u64 {
        self.file.length()
    }
}

/// A server in this process, on `dir`, writing its log through a `SwitchedStorage`.
struct InProcessServer {
    port: u16,
    mode: Arc<AtomicU8>,
    syncs_started: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl InProcessServer {
    fn start(dir: &TempDir) -> InProcessServer {
        let config = Config::for_tests(0, dir.path().to_path_buf());
        let recovered = dibs::recovery::recover(&config, 1).unwrap();
        let mode = Arc::new(AtomicU8::new(PASS));
        let syncs_started = Arc::new(AtomicU64::new(0));
        let storage = SwitchedStorage {
            file: recovered.storage.unwrap(),
            mode: Arc::clone(&mode),
            syncs_started: Arc::clone(&syncs_started),
        };
        let poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(1)).unwrap());
        let notify_waker = Arc::clone(&waker);
        let syncer = Syncer::spawn(
            Box::new(storage),
            FsyncPolicy::Always,
            recovered.next_sequence - 1,
            move || {
                let _ = notify_waker.wake();
            },
        );
        let journal = Journal::new(FsyncPolicy::Always, recovered.next_sequence, syncer);
        let mut server = dibs::server::Server::bind(
            config,
            recovered.store,
            journal,
            poll,
            waker,
            recovered.last_now_ms,
        )
        .unwrap();
        let port = server.local_address().port();
        let thread = thread::spawn(move || server.run().unwrap());
        InProcessServer {
            port,
            mode,
            syncs_started,
            thread: Some(thread),
        }
    }

    fn shut_down(mut self) {
        let mut client = RawClient::connect(self.port);
        client.command(&["SHUTDOWN"]);
        self.thread.take().unwrap().join().unwrap();
    }
}

#[test]
fn in_process_a_failed_sync_fails_every_reply_that_waited_for_it() {
    let dir = TempDir::new("in-process-sync-failure");
    let server = InProcessServer::start(&dir);
    let mut writer = RawClient::connect(server.port);
    let mut reader = RawClient::connect(server.port);
    let mut acknowledged = Vec::new();
    for index in 0..3 {
        let key = format!("key_{index}");
        writer.command(&["SET", &key, "value"]);
        assert_eq!(writer.read_reply_string(), "+OK\r\n");
        acknowledged.push(key);
    }

    // The next sync blocks: the write and a pipelined read behind it, and a read on another connection,
    // all wait for it; then it fails.
    server.mode.store(HOLD, Ordering::SeqCst);
    let syncs_before = server.syncs_started.load(Ordering::SeqCst);
    writer.send(
        b"*3\r\n$3\r\nSET\r\n$6\r\nfailed\r\n$5\r\nvalue\r\n*2\r\n$3\r\nGET\r\n$6\r\nfailed\r\n",
    );
    wait_until("the write's sync to start", || {
        server.syncs_started.load(Ordering::SeqCst) > syncs_before
    });
    reader.command(&["GET", "failed"]);
    server.mode.store(FAIL, Ordering::SeqCst);

    let refusal = writer.read_reply_string();
    assert!(
        refusal.starts_with("-MISCONF Errors writing to the AOF file: fsync: ")
            && refusal.contains("Input/output error"),
        "the write: {refusal}"
    );
    let pipelined = writer.read_reply_string();
    assert!(
        pipelined.starts_with("-MISCONF"),
        "a read held behind the failed write is failed too: {pipelined}"
    );
    let other = reader.read_reply_string();
    assert!(
        other.starts_with("-MISCONF") || other == "$-1\r\n",
        "a read on another connection never shows the failed write: {other}"
    );
    assert_failed_log_behaviour(&mut writer, &acknowledged, "failed");
    assert_failed_log_behaviour(&mut reader, &acknowledged, "failed");
    server.shut_down();

    let server = Server::start(dir.path(), &[]);
    assert_recovered(&server, &acknowledged, "failed");
}

/// A process holding a mount namespace with a tiny tmpfs mounted over a directory, so a server started
/// inside it (with `nsenter`) finds a full disk, and finds the same bytes again after a restart.
struct TinyDisk {
    holder: std::process::Child,
}

impl TinyDisk {
    /// Mounts a tmpfs of `size` over `dir` in a new user and mount namespace; `None` (with a message)
    /// where unprivileged namespaces or mounts are not permitted.
    fn mount(dir: &std::path::Path, size: &str) -> Option<TinyDisk> {
        use std::io::BufRead;
        let script = format!(
            "mount -t tmpfs -o size={size} dibs-full {} && echo mounted && exec sleep 600",
            dir.display()
        );
        let mut holder = std::process::Command::new("unshare")
            .args(["--user", "--map-root-user", "--mount", "sh", "-c", &script])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        let mut line = String::new();
        let stdout = holder.stdout.take().expect("piped");
        let _ = io::BufReader::new(stdout).read_line(&mut line);
        if line.trim() != "mounted" {
            let _ = holder.kill();
            let output = holder.wait_with_output().ok()?;
            eprintln!(
                "skipped: cannot mount a tmpfs in a user namespace here: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return None;
        }
        Some(TinyDisk { holder })
    }

    /// The wrapper that runs a program inside the namespace.
    fn wrapper(&self) -> Vec<String> {
        [
            "nsenter",
            "--target",
            &self.holder.id().to_string(),
            "--user",
            "--mount",
            "--preserve-credentials",
            "--",
        ]
        .iter()
        .map(|argument| argument.to_string())
        .collect()
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

#[test]
fn a_full_disk_refuses_writes_and_keeps_every_acknowledged_one() {
    let dir = TempDir::new("full-disk");
    let Some(disk) = TinyDisk::mount(dir.path(), "4k") else {
        return;
    };
    let mut server = Server::start_wrapped(dir.path(), disk.wrapper(), Vec::new());
    let mut client = server.raw();
    // About 65 records fit in 4 KB; the write that does not is refused, never acknowledged.
    let (acknowledged, failed_key, refusal) = write_until_refused(&mut client);
    eprintln!(
        "{} writes acknowledged on a 4 KB disk, then: {}",
        acknowledged.len(),
        refusal.trim_end()
    );
    assert!(acknowledged.len() > 10, "only {} fit", acknowledged.len());
    assert!(
        refusal.starts_with("-MISCONF Errors writing to the AOF file: ")
            && refusal.contains("No space left on device"),
        "{refusal}"
    );
    assert_failed_log_behaviour(&mut client, &acknowledged, &failed_key);
    drop(client);
    // The restart reads the same full tmpfs: every acknowledged write, and nothing that was refused.
    server.restart();
    assert_recovered(&server, &acknowledged, &failed_key);
}
