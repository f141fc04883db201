//! End-to-end tests of the dibs-bench binary against a real `redis-server` on an ephemeral loopback port.
//! When `redis-server` is not installed every test prints why and passes without running: the lead's CI
//! installs it, a laptop may not have it.

mod stand_in;

use stand_in::{Behaviour, FakeDibs};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A redis-server child with append-only fsync on every write, killed when dropped.
struct RedisServer {
    child: Child,
    port: u16,
    directory: PathBuf,
}

impl RedisServer {
    /// Starts one, or returns None (after saying so) when redis-server is not installed.
    fn start(test: &str) -> Option<RedisServer> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            println!(
                "SKIPPED {test}: redis-server is not installed (apt-get install redis-server)"
            );
            return None;
        }
        // Bind to port 0 to let the kernel pick a free port, then hand it to redis-server.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("an ephemeral port")
            .port();
        let directory = std::env::temp_dir().join(format!("dibs-bench-{test}-{port}"));
        std::fs::create_dir_all(&directory).expect("a scratch directory");
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
            .arg(&directory)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let server = RedisServer {
            child,
            port,
            directory,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    fn bench(&self, arguments: &[&str]) -> Output {
        let port = self.port.to_string();
        Command::new(env!("CARGO_BIN_EXE_dibs-bench"))
            .args(["-p", &port, "-q"])
            .args(arguments)
            .output()
            .expect("dibs-bench runs")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn explain(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn plain_tests_run_to_a_verdict() {
    let Some(server) = RedisServer::start("plain") else {
        return;
    };
    let output = server.bench(&[
        "--target", "redis", "-t", "ping,set", "-n", "2000", "-c", "4",
    ]);
    assert!(output.status.success(), "{}", explain(&output));
    let text = stdout(&output);
    assert!(text.contains("====== ping (redis) ======"), "{text}");
    assert!(text.contains("====== set (redis) ======"), "{text}");
    assert_eq!(text.matches("verdict: correct").count(), 2, "{text}");
    assert!(text.contains("latency (ms): p50"), "{text}");
}

#[test]
fn coupon_rush_against_redis_is_correct() {
    let Some(server) = RedisServer::start("coupon") else {
        return;
    };
    let output = server.bench(&[
        "coupon-rush",
        "--target",
        "redis",
        "-n",
        "3000",
        "-c",
        "4",
        "-P",
        "4",
    ]);
    assert!(output.status.success(), "{}", explain(&output));
    let text = stdout(&output);
    assert!(text.contains("verdict: correct"), "{text}");
    assert!(text.contains("issued 375 of 375 coupons"), "{text}");
}

#[test]
fn every_scenario_against_redis_is_correct_and_reports_csv() {
    let Some(server) = RedisServer::start("scenarios") else {
        return;
    };
    let output = server.bench(&[
        "--target",
        "redis",
        "-t",
        "stock-rush,likes-storm,waiting-room",
        "-n",
        "2000",
        "-c",
        "4",
        "--csv",
    ]);
    assert!(output.status.success(), "{}", explain(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with("\"test\",\"target\",\"rps\""),
        "{text}"
    );
    for line in &lines[1..] {
        assert!(line.ends_with(",\"correct\""), "{line}");
    }
}

#[test]
fn stale_state_is_caught_and_fails_the_run() {
    let Some(server) = RedisServer::start("stale") else {
        return;
    };
    // The second run reuses the first run's keys: the holders set and the number counter survive while the
    // stock is reset, so the recipe hands out numbers above K. The checker must say so and exit 1.
    let arguments = [
        "coupon-rush",
        "--target",
        "redis",
        "-n",
        "1000",
        "-c",
        "2",
        "--prefix",
        "stale",
    ];
    let first = server.bench(&arguments);
    assert!(first.status.success(), "{}", explain(&first));
    let second = server.bench(&arguments);
    assert_eq!(second.status.code(), Some(1), "{}", explain(&second));
    assert!(
        stdout(&second).contains("verdict: VIOLATED"),
        "{}",
        explain(&second)
    );
}

#[test]
fn unreachable_server_exits_with_status_2() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("an ephemeral port")
        .port();
    let output = Command::new(env!("CARGO_BIN_EXE_dibs-bench"))
        .args(["-p", &port.to_string(), "-q", "-t", "ping", "-n", "10"])
        .output()
        .expect("dibs-bench runs");
    assert_eq!(output.status.code(), Some(2), "{}", explain(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot connect"));
}

fn bench_at(port: u16, arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dibs-bench"))
        .args(["-p", &port.to_string(), "-q"])
        .args(arguments)
        .output()
        .expect("dibs-bench runs")
}

#[test]
fn every_scenario_against_a_model_of_dibs_is_correct() {
    let server = FakeDibs::start(Behaviour::Correct);
    let output = bench_at(
        server.port,
        &[
            "-t",
            "coupon-rush,stock-rush,likes-storm,waiting-room",
            "-n",
            "2000",
            "-c",
            "4",
            "-P",
            "4",
        ],
    );
    assert!(output.status.success(), "{}", explain(&output));
    let text = stdout(&output);
    assert_eq!(text.matches("verdict: correct").count(), 4, "{text}");
}

#[test]
fn an_over_issuing_server_is_caught() {
    let server = FakeDibs::start(Behaviour::OverIssue);
    let output = bench_at(server.port, &["coupon-rush", "-n", "2000", "-c", "4"]);
    assert_eq!(output.status.code(), Some(1), "{}", explain(&output));
    let text = stdout(&output);
    assert!(text.contains("verdict: VIOLATED"), "{text}");
    assert!(text.contains("over-issue"), "{text}");
}

#[test]
fn both_targets_print_one_table() {
    let Some(redis) = RedisServer::start("both") else {
        return;
    };
    let dibs = FakeDibs::start(Behaviour::Correct);
    let output = bench_at(
        dibs.port,
        &[
            "coupon-rush",
            "--target",
            "both",
            "--redis-port",
            &redis.port.to_string(),
            "-n",
            "2000",
            "-c",
            "4",
            "--markdown",
        ],
    );
    assert!(output.status.success(), "{}", explain(&output));
    let text = stdout(&output);
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 4, "{text}");
    assert!(rows[2].starts_with("| coupon-rush | dibs |") && rows[2].ends_with("| correct |"));
    assert!(rows[3].starts_with("| coupon-rush | redis |") && rows[3].ends_with("| correct |"));
}
