//! Shared helpers for integration tests: start the real `dibs` binary on an ephemeral port in a fresh data
//! directory, wait until it is ready, talk to it with the `redis` crate or raw RESP bytes, kill it and
//! start it again on the same directory.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a test waits for a condition before failing.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A fresh directory under the target dir, removed when dropped.
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
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server process.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
    pub arguments: Vec<String>,
    /// A program the server runs under (e.g. `strace ... --`), empty for none.
    pub wrapper: Vec<String>,
    /// The server's own process id, from its start-up line (differs from `child`'s under a wrapper).
    pub pid: i32,
    /// Every stderr line so far is sent here by a reader thread.
    log_lines: mpsc::Receiver<String>,
    pub log: Vec<String>,
}

impl Server {
    /// Starts `dibs --port 0 --dir DIR` plus `extra` arguments and waits for it to listen.
    pub fn start(dir: &Path, extra: &[&str]) -> Server {
        let arguments: Vec<String> = extra.iter().map(|argument| argument.to_string()).collect();
        Server::start_with(dir, arguments)
    }

    pub fn start_with(dir: &Path, arguments: Vec<String>) -> Server {
        Server::try_start_wrapped(&[], dir, arguments)
            .unwrap_or_else(|log| panic!("dibs did not start; log:\n{}", log.join("\n")))
    }

    /// Starts the server under `wrapper` (a program and its arguments, the server's command line
    /// appended), e.g. `strace -f -e inject=...`; panics if it does not become ready.
    pub fn start_wrapped(dir: &Path, wrapper: Vec<String>, arguments: Vec<String>) -> Server {
        Server::try_start_wrapped(&wrapper, dir, arguments)
            .unwrap_or_else(|log| panic!("dibs did not start; log:\n{}", log.join("\n")))
    }

    /// Starts dibs as the last arguments of `wrapper` (e.g. `strace ... --`), or plain when it is empty.
    /// Gives the log back if the server never became ready (it exited, or was killed, first).
    pub fn try_start_wrapped(
        wrapper: &[String],
        dir: &Path,
        arguments: Vec<String>,
    ) -> Result<Server, Vec<String>> {
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(env!("CARGO_BIN_EXE_dibs"));
                command
            }
            None => Command::new(env!("CARGO_BIN_EXE_dibs")),
        };
        let mut child = command
            .arg("--port")
            .arg("0")
            .arg("--dir")
            .arg(dir)
            .args(&arguments)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dibs");
        let stderr = child.stderr.take().expect("stderr piped");
        let (sender, log_lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            port: 0,
            dir: dir.to_path_buf(),
            arguments,
            wrapper: wrapper.to_vec(),
            pid: 0,
            log_lines,
            log: Vec::new(),
        };
        let Some(line) = server.wait_for_log("Ready to accept connections on ") else {
            server.drain_log();
            return Err(std::mem::take(&mut server.log));
        };
        // Under a wrapper the child is the wrapper; kill(2) goes to dibs's own pid.
        server.pid = server.dibs_pid().map_or(0, |pid| pid as i32);
        let address = line.rsplit(' ').next().expect("address at the end");
        server.port = address.rsplit(':').next().unwrap().parse().expect("port");
        Ok(server)
    }

    /// The dibs process id from its start-up log line (under a wrapper, the child is the wrapper).
    pub fn dibs_pid(&self) -> Option<u32> {
        let line = self
            .log
            .iter()
            .find(|line| line.contains("starting: pid "))?;
        let rest = line.split("starting: pid ").nth(1)?;
        rest.split(',').next()?.trim().parse().ok()
    }

    /// Waits until a log line containing `needle` appears; returns it, or `None` if the process exits or
    /// the deadline passes.
    pub fn wait_for_log(&mut self, needle: &str) -> Option<String> {
        if let Some(line) = self.log.iter().find(|line| line.contains(needle)) {
            return Some(line.clone());
        }
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            match self.log_lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
        None
    }

    /// Log lines received so far.
    pub fn drain_log(&mut self) -> &[String] {
        while let Ok(line) = self.log_lines.try_recv() {
            self.log.push(line);
        }
        &self.log
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("client")
    }

    pub fn connection(&self) -> redis::Connection {
        let connection = self.client().get_connection().expect("connect");
        connection
            .set_read_timeout(Some(DEADLINE))
            .expect("timeout");
        connection
    }

    pub fn raw(&self) -> RawClient {
        RawClient::connect(self.port)
    }

    /// SIGKILL, then wait for the process to be gone. Under a wrapper the server itself is killed first:
    /// a killed tracer would leave it running.
    pub fn kill(&mut self) {
        if self.pid > 0
            && self.pid as u32 != self.child.id()
            && self.child.try_wait().ok().flatten().is_none()
        {
            // Safety: kill(2) with a pid this test started; no memory is involved.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the server and starts it again on the same directory with the same arguments.
    pub fn restart(&mut self) {
        self.kill();
        *self = Server::start_wrapped(
            &self.dir.clone(),
            self.wrapper.clone(),
            self.arguments.clone(),
        );
    }

    /// Waits for the process to exit by itself; returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.drain_log();
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A fresh data directory and a server on it with the default options (`--appendfsync always`). Keep the
/// directory alive as long as the server.
pub fn start(label: &str) -> (TempDir, Server) {
    let dir = TempDir::new(label);
    let server = Server::start(dir.path(), &[]);
    (dir, server)
}

/// True if any file in the data directory `dir` holds `needle` (a log record's bytes, say).
pub fn log_contains(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|entry| {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        bytes.windows(needle.len()).any(|window| window == needle)
    })
}

/// Runs `dibs` with `arguments` to completion (it must exit by itself, e.g. on a refused start); returns
/// the exit code and stderr.
pub fn run_to_exit(dir: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_dibs"))
        .arg("--port")
        .arg("0")
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .output()
        .expect("run dibs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A client speaking raw RESP bytes, for what a library would not send.
pub struct RawClient {
    pub stream: TcpStream,
    buffer: Vec<u8>,
}

impl RawClient {
    pub fn connect(port: u16) -> RawClient {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        RawClient {
            stream,
            buffer: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Sends a command as a multibulk.
    pub fn command(&mut self, arguments: &[&str]) {
        let mut request = format!("*{}\r\n", arguments.len());
        for argument in arguments {
            request.push_str(&format!("${}\r\n{argument}\r\n", argument.len()));
        }
        self.send(request.as_bytes());
    }

    /// Reads one whole RESP reply and returns its bytes.
    pub fn read_reply(&mut self) -> Vec<u8> {
        loop {
            if let Some(length) = reply_length(&self.buffer) {
                return self.buffer.drain(..length).collect();
            }
            let mut chunk = [0u8; 65536];
            let count = self.stream.read(&mut chunk).expect("read reply");
            assert!(
                count > 0,
                "connection closed while waiting for a reply; got {:?}",
                String::from_utf8_lossy(&self.buffer)
            );
            self.buffer.extend_from_slice(&chunk[..count]);
        }
    }

    pub fn read_reply_string(&mut self) -> String {
        String::from_utf8_lossy(&self.read_reply()).into_owned()
    }

    /// Sends a command and returns its whole reply as text: one round trip.
    pub fn call(&mut self, arguments: &[&str]) -> String {
        self.command(arguments);
        self.read_reply_string()
    }

    /// True once the server has closed the connection (reads return 0 or fail), within the deadline.
    pub fn is_closed_by_server(&mut self) -> bool {
        let mut chunk = [0u8; 65536];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(error)
                    if error.kind() == std::io::ErrorKind::WouldBlock
                        || error.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return false
                }
                Err(_) => return true,
            }
        }
    }
}

/// The length of the first complete RESP value in `bytes`, if it is all there.
pub fn reply_length(bytes: &[u8]) -> Option<usize> {
    let line_end = bytes.windows(2).position(|window| window == b"\r\n")?;
    let header = std::str::from_utf8(&bytes[1..line_end]).ok()?;
    let after = line_end + 2;
    match bytes[0] {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(after),
        b'$' | b'=' | b'!' => {
            let length: i64 = header.parse().ok()?;
            if length < 0 {
                return Some(after);
            }
            let end = after + length as usize + 2;
            (bytes.len() >= end).then_some(end)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let count: i64 = header.parse().ok()?;
            let elements = if bytes[0] == b'%' || bytes[0] == b'|' {
                count * 2
            } else {
                count
            };
            let mut offset = after;
            for _ in 0..elements.max(0) {
                offset += reply_length(&bytes[offset..])?;
            }
            Some(offset)
        }
        _ => panic!("not a RESP reply: {:?}", String::from_utf8_lossy(bytes)),
    }
}

/// True if `strace` runs and may trace here (it is installed and ptrace is permitted). Tests that need it
/// print why they skip otherwise.
pub fn strace_usable() -> bool {
    Command::new("strace")
        .args(["-f", "-o", "/dev/null", "-e", "trace=fdatasync", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Polls `condition` until it holds or the deadline passes.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while Instant::now() < deadline {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

/// Resident memory of the server process, in bytes, from `/proc/<pid>/status`.
pub fn resident_bytes(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id()))
        .expect("read /proc status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kilobytes: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|value| value.parse().ok())
        .expect("VmRSS value");
    kilobytes * 1024
}

/// The value of `field` in INFO's text.
pub fn info_field(client: &mut RawClient, field: &str) -> u64 {
    let info = client.call(&["INFO"]);
    info.split(&format!("{field}:"))
        .nth(1)
        .and_then(|rest| rest.split("\r\n").next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("{field} missing in {info}"))
}

/// CPU time (user + system) the process has used, in clock ticks (100 a second on Linux), from
/// `/proc/<pid>/stat`.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // The command name may hold spaces; the fields after it are counted from its closing parenthesis.
    let after_name = &stat[stat.rfind(')').expect("name in parentheses") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the name and state.
    let user: u64 = fields[11].parse().expect("utime");
    let system: u64 = fields[12].parse().expect("stime");
    user + system
}
