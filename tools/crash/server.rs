//! The server under test: start the `dibs` binary on a free port in the data directory, wait until it is
//! ready, and kill it with SIGKILL (what a power cut is to the process: no shutdown code runs).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a start (log replay included) may take before the run is declared broken.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Log lines kept to explain a failed start.
const LOG_LINES_KEPT_MAX: usize = 50;

pub struct ServerProcess {
    child: Child,
    pub port: u16,
    /// The newest stderr lines, for the report when something goes wrong.
    log: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `binary --port 0 --dir dir` plus `extra`, and waits for "Ready to accept connections".
    /// A server that exits instead (say, refusing a damaged log) is an `Err` carrying its last log lines.
    pub fn start(binary: &Path, dir: &Path, extra: &[String]) -> Result<ServerProcess, String> {
        let mut child = Command::new(binary)
            .arg("--port")
            .arg("0")
            .arg("--dir")
            .arg(dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", binary.display()))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_sender, ready) = mpsc::channel();
        let thread_log = Arc::clone(&log);
        // The pipe must be drained for as long as the server lives, or it blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(address) = line.split("Ready to accept connections on ").nth(1) {
                    let _ = ready_sender.send(address.trim().to_string());
                }
                let mut log = thread_log.lock().expect("log lock");
                if log.len() == LOG_LINES_KEPT_MAX {
                    log.remove(0);
                }
                log.push(line);
            }
        });
        let started = Instant::now();
        let address = loop {
            match ready.recv_timeout(Duration::from_millis(50)) {
                Ok(address) => break address,
                Err(_) if started.elapsed() > START_TIMEOUT => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "dibs did not become ready within {START_TIMEOUT:?}; log:\n{}",
                        log.lock().expect("log lock").join("\n")
                    ));
                }
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        // Give the reader a moment to collect the last lines.
                        std::thread::sleep(Duration::from_millis(50));
                        return Err(format!(
                            "dibs exited ({status}) instead of starting; log:\n{}",
                            log.lock().expect("log lock").join("\n")
                        ));
                    }
                }
            }
        };
        let port = address
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .ok_or_else(|| format!("no port in {address:?}"))?;
        Ok(ServerProcess { child, port, log })
    }

    /// SIGKILL, then reap the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_tail(&self) -> String {
        self.log.lock().expect("log lock").join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `dibs` binary next to this executable (both are built into the same target directory).
pub fn default_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|path| path.parent().map(|directory| directory.join("dibs")))
        .unwrap_or_else(|| PathBuf::from("dibs"))
}
