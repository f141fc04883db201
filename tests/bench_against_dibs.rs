//! dibs-bench against the real server: every flash-sale scenario (and the `like` throughput test) runs to
//! a verdict, and the verdict is "correct". (tests/bench_tool.rs checks the tool itself against redis-server and a stand-in.)

mod common;

use std::process::Command;

use common::{Server, TempDir};

#[test]
fn every_scenario_is_correct_against_the_real_server() {
    let dir = TempDir::new("bench-against-dibs");
    let server = Server::start(dir.path(), &[]);
    let output = Command::new(env!("CARGO_BIN_EXE_dibs-bench"))
        .args([
            "coupon-rush",
            "stock-rush",
            "likes-storm",
            "waiting-room",
            "like",
        ])
        .args([
            "-p",
            &server.port.to_string(),
            "-n",
            "2000",
            "-c",
            "8",
            "--csv",
        ])
        .output()
        .expect("run dibs-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "dibs-bench failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status.code()
    );
    for scenario in [
        "coupon-rush",
        "stock-rush",
        "likes-storm",
        "waiting-room",
        "like",
    ] {
        let line = stdout
            .lines()
            .find(|line| line.starts_with(&format!("\"{scenario}\"")))
            .unwrap_or_else(|| panic!("no result line for {scenario}:\n{stdout}"));
        assert!(line.contains("correct"), "{scenario}: {line}");
        assert!(!line.contains("VIOLATED"), "{scenario}: {line}");
    }
}
