//! A real `redis-server`, for tests that check dibs's tools against Redis: started the way `server` starts
//! dibs (an ephemeral port, a fresh directory, ready once it answers PING or failing at `DEADLINE`, killed
//! when dropped), with the append-only file synced on every write as dibs's default is.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use super::{TempDir, DEADLINE, POLL_INTERVAL};

/// How many ports a start tries: redis-server cannot pick its own, so the test picks a free one, and
/// another process may take it before redis-server binds it.
const START_ATTEMPTS: usize = 3;

pub struct RedisServer {
    child: Child,
    pub port: u16,
    /// Dropped after the process is killed (fields drop in order, after `drop`).
    _dir: TempDir,
}

impl RedisServer {
    /// Starts one and waits until it answers PING; `None` (after printing why `test` skipped) when
    /// redis-server is not installed.
    pub fn start(test: &str) -> Option<RedisServer> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !installed {
            println!(
                "SKIPPED {test}: redis-server is not installed (apt-get install redis-server)"
            );
            return None;
        }
        for _ in 0..START_ATTEMPTS {
            // The kernel picks a free port for a listener that is closed at once; redis-server binds it
            // next.
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("an ephemeral port")
                .port();
            let dir = TempDir::new(&format!("redis-{test}"));
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args([
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                ])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server starts");
            let mut server = RedisServer {
                child,
                port,
                _dir: dir,
            };
            if server.wait_until_ready() {
                return Some(server);
            }
        }
        panic!("redis-server did not start in {START_ATTEMPTS} attempts");
    }

    /// Polls with PING until redis-server answers (true) or exits, say because its port was taken (false);
    /// panics at the deadline.
    fn wait_until_ready(&mut self) -> bool {
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if self.child.try_wait().expect("try_wait").is_some() {
                return false;
            }
            if answers_ping(self.port) {
                return true;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        panic!("redis-server did not answer PING on port {}", self.port);
    }
}

fn answers_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut reply = [0u8; 7];
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
