//! Measures how fast start-up replays the log: writes a log of SET and INCR records straight through the
//! `aof` encoders, then times `recovery::recover` on it.
//!
//! ```text
//! cargo run --release --example replay_speed [RECORDS]      # default 2000000
//! ```
//! The target is at least 2 million records per second in release mode.
use std::time::Instant;

use dibs::aof::directory::log_file_name;
use dibs::aof::payload::encode_payload;
use dibs::aof::record::{encode_record, file_header};
use dibs::config::Config;
use dibs::recovery::recover;

/// Distinct counters the INCR records spread over.
const COUNTERS: u64 = 1000;
/// Distinct keys the SET records spread over, so the keyspace grows to a realistic size.
const KEYS: u64 = 100_000;

/// CPU time this thread has used: on a shared machine a steadier measure than the wall clock.
fn thread_cpu_seconds() -> f64 {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // Safety: clock_gettime writes the timespec it is given and nothing else.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut time) };
    assert_eq!(result, 0, "clock_gettime");
    time.tv_sec as f64 + time.tv_nsec as f64 / 1e9
}

fn main() {
    let records: u64 = std::env::args().nth(1).map_or(2_000_000, |argument| {
        argument.parse().expect("a record count")
    });
    let dir = std::env::temp_dir().join(format!("dibs-replay-speed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the data directory");

    let started = Instant::now();
    let mut log = file_header(1).to_vec();
    let mut payload = Vec::new();
    let mut key = String::new();
    let mut value = String::new();
    for sequence in 1..=records {
        payload.clear();
        key.clear();
        value.clear();
        let now_ms = 1_700_000_000_000 + sequence / 1000;
        if sequence % 2 == 0 {
            use std::fmt::Write;
            write!(key, "key:{}", sequence % KEYS).unwrap();
            write!(value, "value-{sequence}").unwrap();
            encode_payload(
                &mut payload,
                now_ms,
                [[b"SET".as_slice(), key.as_bytes(), value.as_bytes()]],
            );
        } else {
            use std::fmt::Write;
            write!(key, "counter:{}", sequence % COUNTERS).unwrap();
            encode_payload(&mut payload, now_ms, [[b"INCR".as_slice(), key.as_bytes()]]);
        }
        encode_record(&mut log, sequence, &payload);
    }
    let path = dir.join(log_file_name(1));
    std::fs::write(&path, &log).expect("write the log");
    println!(
        "wrote {records} records, {} bytes, in {:.2} s",
        log.len(),
        started.elapsed().as_secs_f64()
    );
    drop(log);

    let config = Config::for_tests(0, dir.clone());
    let started = Instant::now();
    let cpu_started = thread_cpu_seconds();
    let recovered = recover(&config, 1).expect("recover");
    let cpu = thread_cpu_seconds() - cpu_started;
    let elapsed = started.elapsed();
    assert_eq!(recovered.records_replayed, records);
    println!(
        "replayed {records} records in {:.3} s: {:.0} records/s, {:.0} MB/s ({:.3} s of CPU: {:.0} records per CPU second)",
        elapsed.as_secs_f64(),
        records as f64 / elapsed.as_secs_f64(),
        recovered.bytes_replayed as f64 / elapsed.as_secs_f64() / 1e6,
        cpu,
        records as f64 / cpu
    );
    drop(recovered);
    let _ = std::fs::remove_dir_all(&dir);
}
