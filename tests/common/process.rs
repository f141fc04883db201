//! What `/proc` says about a server process: resident memory and CPU time, for tests that check a server
//! stays bounded.

use super::Server;

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
