//! `dibs-crash` end to end, short: a few SIGKILL cycles against the real server must pass, and the
//! checker must notice when acknowledged writes are in fact not kept (`--appendonly no`).
mod common;

use common::TempDir;
use std::process::Command;

fn run_crash(dir: &TempDir, extra: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_dibs-crash"))
        .arg("--dibs")
        .arg(env!("CARGO_BIN_EXE_dibs"))
        .arg("--dir")
        .arg(dir.path().join("data"))
        .args(extra)
        .output()
        .expect("run dibs-crash");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

#[test]
fn three_kill_cycles_lose_nothing_acknowledged() {
    let dir = TempDir::new("crash-tool");
    let (code, output) = run_crash(
        &dir,
        &[
            "--cycles",
            "3",
            "--seed",
            "7",
            "--kill-after-ms-min",
            "100",
            "--kill-after-ms-max",
            "300",
        ],
    );
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("verdict: PASS seed=7 cycles=3"), "{output}");
}

#[test]
fn the_checker_notices_lost_writes() {
    let dir = TempDir::new("crash-tool-lossy");
    // Without a log nothing survives the kill: every acknowledged write is lost, and must be reported.
    let (code, output) = run_crash(
        &dir,
        &[
            "--cycles",
            "2",
            "--seed",
            "3",
            "--kill-after-ms-min",
            "100",
            "--kill-after-ms-max",
            "100",
            "--server-arg=--appendonly",
            "--server-arg=no",
        ],
    );
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("verdict: FAIL seed=3"), "{output}");
    assert!(output.contains("was acknowledged"), "{output}");
}
