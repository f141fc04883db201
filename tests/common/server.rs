//! The real `dibs` binary under test: started on an ephemeral port (`--port 0`; the port is read from the
//! start-up line) in a data directory the test owns, ready once it logs so, killed when dropped. Optionally
//! under a wrapper program (strace's fault injection, prlimit, nsenter).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use super::{RawClient, TempDir, DEADLINE, POLL_INTERVAL};

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
        // Blocks until the next line arrives, so the deadline is the only timeout.
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log_lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                // The deadline passed, or the process closed its stderr (it exited).
                Err(_) => return None,
            }
        }
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
            // Polls the exit status; the deadline bounds the wait.
            std::thread::sleep(POLL_INTERVAL);
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
