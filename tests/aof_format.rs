//! The log on a real file system: `FileStorage`, the syncer writing through it, and the `dibs-aof` tool
//! judging and repairing what they wrote.
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use dibs::aof::payload::encode_payload;
use dibs::aof::record::{encode_record, file_header, scan, ScanVerdict};
use dibs::aof::storage::{FileStorage, Storage};
use dibs::aof::syncer::{Batch, SyncReport, Syncer};
use dibs::aof::FsyncPolicy;

/// A directory under the system's temporary directory, removed when dropped.
struct TemporaryDirectory {
    path: PathBuf,
}

impl TemporaryDirectory {
    fn new(name: &str) -> TemporaryDirectory {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "dibs-aof-test-{}-{name}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TemporaryDirectory { path }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TemporaryDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A record for `SET key<sequence> <value>`, run at a clock derived from the sequence.
fn set_record(out: &mut Vec<u8>, sequence: u64, value: &[u8]) {
    let mut payload = Vec::new();
    let key = format!("key{sequence}");
    encode_payload(
        &mut payload,
        1_700_000_000_000 + sequence,
        [[b"SET".as_slice(), key.as_bytes(), value]],
    );
    encode_record(out, sequence, &payload);
}

/// A log of `count` records; returns its bytes and each record's offset.
fn log_of(count: u64) -> (Vec<u8>, Vec<usize>) {
    let mut file = file_header(1).to_vec();
    let mut offsets = Vec::new();
    for sequence in 1..=count {
        offsets.push(file.len());
        set_record(&mut file, sequence, b"value");
    }
    (file, offsets)
}

fn dibs_aof(arguments: &[&str], file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dibs-aof"))
        .args(arguments)
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .expect("run dibs-aof")
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn file_storage_creates_a_header_and_appends_across_opens() {
    let directory = TemporaryDirectory::new("storage");
    let path = directory.file("appendonly.aof");
    let mut storage = FileStorage::open(&path, 1).unwrap();
    assert_eq!(storage.length(), 16);
    assert_eq!(std::fs::read(&path).unwrap(), file_header(1));
    let mut bytes = Vec::new();
    set_record(&mut bytes, 1, b"one");
    storage.append(&bytes).unwrap();
    storage.sync().unwrap();
    drop(storage);

    let mut storage = FileStorage::open(&path, 99).unwrap();
    assert_eq!(storage.length(), 16 + bytes.len() as u64);
    let mut more = Vec::new();
    set_record(&mut more, 2, b"two");
    storage.append(&more).unwrap();
    storage.append(b"partial frame").unwrap();
    storage
        .truncate(16 + (bytes.len() + more.len()) as u64)
        .unwrap();
    drop(storage);

    let contents = std::fs::read(&path).unwrap();
    let (records, verdict) = scan(&contents);
    assert_eq!(
        verdict,
        ScanVerdict::Clean {
            end_offset: contents.len() as u64,
            reserved_bytes: 0
        }
    );
    assert_eq!(
        records
            .iter()
            .map(|record| record.sequence)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );

    // A file shorter than a header but not empty must be cut by the caller first.
    let short = directory.file("short.aof");
    std::fs::write(&short, b"DIBS").unwrap();
    let error = FileStorage::open(&short, 1).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
fn syncer_on_a_file_leaves_a_clean_log() {
    let directory = TemporaryDirectory::new("syncer");
    let path = directory.file("appendonly.aof");
    let storage = FileStorage::open(&path, 1).unwrap();
    let handle = Syncer::spawn(Box::new(storage), FsyncPolicy::Always, 0, || {});
    for sequence in 1..=20 {
        let mut bytes = handle.take_buffer();
        set_record(&mut bytes, sequence, b"v");
        handle
            .submit(Batch {
                bytes,
                last_sequence: sequence,
            })
            .unwrap();
    }
    let mut durable = 0;
    while durable < 20 {
        match handle
            .reports()
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap()
        {
            SyncReport::Durable { sequence, .. } => durable = sequence,
            other => panic!("{other:?}"),
        }
    }
    let statistics = handle.statistics().snapshot();
    assert!(statistics.syncs_count >= 1 && statistics.syncs_count <= 20);
    assert_eq!(handle.shutdown(), Ok(()));
    let contents = std::fs::read(&path).unwrap();
    let (records, verdict) = scan(&contents);
    assert!(matches!(verdict, ScanVerdict::Clean { .. }));
    assert_eq!(records.len(), 20);
}

#[test]
fn check_judges_clean_torn_and_corrupt_files() {
    let directory = TemporaryDirectory::new("check");
    let (file, offsets) = log_of(3);

    let clean = directory.file("clean.aof");
    std::fs::write(&clean, &file).unwrap();
    let output = dibs_aof(&["check"], &clean);
    let text = stdout_of(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("records: 3"), "{text}");
    assert!(text.contains("sequences: 1..=3"), "{text}");
    assert!(
        text.contains(&format!("last good offset: {}", file.len())),
        "{text}"
    );

    let torn = directory.file("torn.aof");
    std::fs::write(&torn, &file[..file.len() - 3]).unwrap();
    let output = dibs_aof(&["check"], &torn);
    let text = stdout_of(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("records: 2"), "{text}");
    assert!(
        text.contains(&format!("torn tail at offset {}", offsets[2])),
        "{text}"
    );

    let corrupt = directory.file("corrupt.aof");
    let mut damaged = file.clone();
    damaged[offsets[1] + 25] ^= 0x01;
    std::fs::write(&corrupt, &damaged).unwrap();
    let output = dibs_aof(&["check"], &corrupt);
    let text = stdout_of(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!("corrupt at offset {}", offsets[1])),
        "{text}"
    );
    assert!(
        text.contains(&format!("valid record follows at offset {}", offsets[2])),
        "{text}"
    );

    let missing = directory.file("missing.aof");
    assert_eq!(dibs_aof(&["check"], &missing).status.code(), Some(3));
}

#[test]
fn fix_cuts_only_when_told_to() {
    let directory = TemporaryDirectory::new("fix");
    let (file, offsets) = log_of(4);

    // Torn tail: without --yes and without a terminal, nothing changes.
    let torn = directory.file("torn.aof");
    let mut torn_bytes = file.clone();
    // A copy of a record cut short: a frame whose payload never all reached the disk.
    torn_bytes.extend_from_slice(&file[offsets[1]..offsets[1] + 24]);
    std::fs::write(&torn, &torn_bytes).unwrap();
    let output = dibs_aof(&["fix"], &torn);
    assert_eq!(output.status.code(), Some(1), "{}", stdout_of(&output));
    assert_eq!(std::fs::read(&torn).unwrap(), torn_bytes);
    let output = dibs_aof(&["fix", "--yes"], &torn);
    assert_eq!(output.status.code(), Some(0), "{}", stdout_of(&output));
    assert_eq!(std::fs::read(&torn).unwrap(), file);
    assert_eq!(dibs_aof(&["check"], &torn).status.code(), Some(0));
    // Fixing a clean file is a no-op.
    assert_eq!(dibs_aof(&["fix"], &torn).status.code(), Some(0));
    // Zeros after the last record are the log's reserved space: clean, and left alone.
    let reserved = directory.file("reserved.aof");
    let mut reserved_bytes = file.clone();
    reserved_bytes.extend_from_slice(&[0; 100]);
    std::fs::write(&reserved, &reserved_bytes).unwrap();
    let output = dibs_aof(&["check"], &reserved);
    assert_eq!(output.status.code(), Some(0), "{}", stdout_of(&output));
    assert!(
        stdout_of(&output).contains("then 100 bytes of reserved space (zeros)"),
        "{}",
        stdout_of(&output)
    );
    assert_eq!(
        dibs_aof(&["fix", "--yes"], &reserved).status.code(),
        Some(0)
    );
    assert_eq!(std::fs::read(&reserved).unwrap(), reserved_bytes);

    // Corruption: the cut drops the damaged record and everything after it.
    let corrupt = directory.file("corrupt.aof");
    let mut damaged = file.clone();
    damaged[offsets[2] + 2] ^= 0x40;
    std::fs::write(&corrupt, &damaged).unwrap();
    let output = dibs_aof(&["fix", "--yes"], &corrupt);
    assert_eq!(output.status.code(), Some(0), "{}", stdout_of(&output));
    assert!(stdout_of(&output).contains("WARNING"));
    assert_eq!(std::fs::read(&corrupt).unwrap(), &file[..offsets[2]]);
    let output = dibs_aof(&["check"], &corrupt);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout_of(&output).contains("records: 2"));

    // Not a dibs log: left alone even with --yes.
    let foreign = directory.file("foreign.aof");
    std::fs::write(&foreign, b"*1\r\n$4\r\nPING\r\n").unwrap();
    assert_eq!(dibs_aof(&["fix", "--yes"], &foreign).status.code(), Some(1));
    assert_eq!(std::fs::read(&foreign).unwrap(), b"*1\r\n$4\r\nPING\r\n");
}

#[test]
fn dump_prints_one_quoted_line_per_record() {
    let directory = TemporaryDirectory::new("dump");
    let mut file = file_header(1).to_vec();
    set_record(&mut file, 1, b"plain");
    let second_offset = file.len();
    let mut payload = Vec::new();
    encode_payload(
        &mut payload,
        42,
        [
            vec![b"INCR".as_slice(), b"n"],
            vec![b"SET".as_slice(), b"a b", b"q\"\\\n\x00\xff"],
        ],
    );
    encode_record(&mut file, 2, &payload);
    let path = directory.file("dump.aof");
    std::fs::write(&path, &file).unwrap();
    let output = dibs_aof(&["dump"], &path);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout_of(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        vec![
            "offset=16 sequence=1 now_ms=1700000000001 \"SET\" \"key1\" \"plain\"".to_string(),
            format!(
                "offset={second_offset} sequence=2 now_ms=42 \"INCR\" \"n\" ; \"SET\" \"a b\" \"q\\\"\\\\\\n\\x00\\xff\""
            ),
        ]
    );
}

#[test]
fn help_explains_the_exit_codes() {
    let output = Command::new(env!("CARGO_BIN_EXE_dibs-aof"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let text = stdout_of(&output);
    assert!(
        text.contains("check") && text.contains("dump") && text.contains("fix"),
        "{text}"
    );
    assert!(text.contains("Exit status"), "{text}");
    let output = Command::new(env!("CARGO_BIN_EXE_dibs-aof"))
        .arg("bogus")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
}
