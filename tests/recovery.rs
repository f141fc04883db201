//! Recovery of the durable log, end to end: a log written by the real server, then cut at every byte of
//! its last two records, damaged in its middle, or padded with zeros, then read back by start-up.
//!
//! A cut must recover exactly the complete records before it (a transaction is one record: all or
//! nothing), be logged with its offset and the bytes it discarded, and leave a log that takes new writes.
//! Damage with valid records after it must stop the server without touching the file.
mod common;

use std::path::{Path, PathBuf};

use common::{run_to_exit, Server, TempDir};
use dibs::aof::directory::log_files;
use dibs::aof::payload::decode_payload;
use dibs::aof::record::{scan, ScanVerdict};
use dibs::command::Mutations;
use dibs::config::Config;
use dibs::dispatch::{self, Handler};
use dibs::recovery::recover;
use dibs::resp::Reply;
use dibs::store::Store;
use redis::Commands;

/// Single SETs written before the transaction.
const SET_COUNT: u64 = 20;

/// A record's place in the log file.
#[derive(Debug, Clone, Copy)]
struct Span {
    offset: u64,
    end: u64,
}

/// The sample log: `SET k_i v_i` for i in 1..=SET_COUNT, then one MULTI/EXEC (SET tx_a, SET tx_b,
/// INCR tx_c), then `SET last L`. Returns the log file's path and every record's span.
fn write_sample_log(dir: &Path) -> (PathBuf, Vec<Span>) {
    let mut server = Server::start(dir, &[]);
    let mut connection = server.connection();
    for index in 1..=SET_COUNT {
        let _: () = connection
            .set(format!("k_{index}"), format!("v_{index}"))
            .unwrap();
    }
    let (): () = redis::pipe()
        .atomic()
        .set("tx_a", "A")
        .ignore()
        .set("tx_b", "B")
        .ignore()
        .incr("tx_c", 1)
        .ignore()
        .query(&mut connection)
        .unwrap();
    let _: () = connection.set("last", "L").unwrap();
    let mut raw = server.raw();
    raw.command(&["SHUTDOWN"]);
    assert_eq!(server.wait_exit(), Some(0), "{:?}", server.log);

    let files = log_files(dir).unwrap();
    assert_eq!(files.len(), 1, "one log file: {files:?}");
    let path = files[0].1.clone();
    let bytes = std::fs::read(&path).unwrap();
    let (records, verdict) = scan(&bytes);
    assert!(matches!(verdict, ScanVerdict::Clean { .. }), "{verdict:?}");
    assert_eq!(records.len() as u64, SET_COUNT + 2);
    let transaction = decode_payload(records[SET_COUNT as usize].payload).unwrap();
    assert_eq!(
        transaction.commands.len(),
        3,
        "the transaction is one record"
    );
    let spans = records
        .iter()
        .map(|record| Span {
            offset: record.offset,
            end: record.end_offset(),
        })
        .collect();
    (path, spans)
}

/// Copies every file of `from` into a fresh directory.
fn copy_dir(from: &Path, label: &str) -> TempDir {
    let copy = TempDir::new(label);
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
    }
    copy
}

fn truncate(path: &Path, length: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(length)
        .unwrap();
}

/// GET through the command table, as a client would see it.
fn get(store: &mut Store, key: &str) -> Option<String> {
    let arguments: [&[u8]; 2] = [b"GET", key.as_bytes()];
    let spec = dispatch::lookup(b"GET").unwrap();
    let Handler::Store(handler) = spec.handler else {
        panic!("GET is a data command")
    };
    let mut mutations = Mutations::new();
    match dispatch::execute(store, spec, handler, &arguments, 0, &mut mutations) {
        Reply::Bulk(bytes) => Some(String::from_utf8(bytes.to_vec()).unwrap()),
        Reply::SmallBulk(bytes) => Some(String::from_utf8(bytes.to_vec()).unwrap()),
        Reply::Null => None,
        other => panic!("GET {key}: {other:?}"),
    }
}

/// What the recovered keys must be when the first `complete` records survived.
fn expected(complete: u64) -> Vec<(String, Option<String>)> {
    let mut keys = Vec::new();
    for index in 1..=SET_COUNT {
        let value = (index <= complete).then(|| format!("v_{index}"));
        keys.push((format!("k_{index}"), value));
    }
    let transaction = complete > SET_COUNT;
    keys.push(("tx_a".into(), transaction.then(|| "A".into())));
    keys.push(("tx_b".into(), transaction.then(|| "B".into())));
    keys.push(("tx_c".into(), transaction.then(|| "1".into())));
    keys.push((
        "last".into(),
        (complete > SET_COUNT + 1).then(|| "L".into()),
    ));
    keys
}

fn complete_records(spans: &[Span], cut: u64) -> u64 {
    spans.iter().filter(|span| span.end <= cut).count() as u64
}

#[test]
fn every_cut_in_the_last_two_records_recovers_the_complete_prefix() {
    let original = TempDir::new("recovery-every-cut");
    let (path, spans) = write_sample_log(original.path());
    let file_name = path.file_name().unwrap().to_owned();
    let file_length = std::fs::metadata(&path).unwrap().len();
    let first_cut = spans[spans.len() - 2].offset;
    assert_eq!(spans.last().unwrap().end, file_length);

    for cut in first_cut..=file_length {
        let copy = copy_dir(original.path(), "recovery-cut");
        let cut_path = copy.path().join(&file_name);
        truncate(&cut_path, cut);
        let complete = complete_records(&spans, cut);
        let good_length = if complete == 0 {
            16
        } else {
            spans[complete as usize - 1].end
        };
        let config = Config::for_tests(0, copy.path().to_path_buf());
        let mut recovered =
            recover(&config, 7).unwrap_or_else(|error| panic!("cut {cut}: {error}"));
        assert_eq!(recovered.next_sequence, complete + 1, "cut at {cut}");
        assert_eq!(recovered.records_replayed, complete, "cut at {cut}");
        for (key, value) in expected(complete) {
            assert_eq!(
                get(&mut recovered.store, &key),
                value,
                "{key}, cut at {cut}"
            );
        }
        drop(recovered);
        assert_eq!(
            std::fs::metadata(&cut_path).unwrap().len(),
            good_length,
            "the torn tail is cut off, cut at {cut}"
        );
    }
}

#[test]
fn the_server_cuts_a_torn_tail_logs_it_and_keeps_writing_after_it() {
    let original = TempDir::new("recovery-binary-cut");
    let (path, spans) = write_sample_log(original.path());
    let file_name = path.file_name().unwrap().to_owned();
    let transaction = spans[spans.len() - 2];
    let last = spans[spans.len() - 1];
    let cuts = [
        transaction.offset + 7,                     // inside the record header
        (transaction.offset + transaction.end) / 2, // inside the transaction's payload
        last.offset + 25,                           // inside the last record's payload
        last.end - 1,                               // one byte short
    ];
    for cut in cuts {
        let copy = copy_dir(original.path(), "recovery-binary-cut");
        truncate(&copy.path().join(&file_name), cut);
        let complete = complete_records(&spans, cut);
        let good_length = spans[complete as usize - 1].end;
        let mut server = Server::start(copy.path(), &[]);
        let line = server
            .log
            .iter()
            .find(|line| line.contains("torn tail"))
            .unwrap_or_else(|| panic!("no torn-tail line for cut {cut}: {:?}", server.log))
            .clone();
        assert!(
            line.contains(&format!("byte offset {good_length}"))
                && line.contains(&format!("cutting {} bytes", cut - good_length)),
            "cut {cut}: {line}"
        );
        let mut connection = server.connection();
        let check = |connection: &mut redis::Connection| {
            for (key, value) in expected(complete) {
                let found: Option<String> = connection.get(&key).unwrap();
                assert_eq!(found, value, "{key}, cut at {cut}");
            }
        };
        check(&mut connection);
        let _: () = connection.set("after_cut", "yes").unwrap();
        server.restart();
        let mut connection = server.connection();
        check(&mut connection);
        let after: Option<String> = connection.get("after_cut").unwrap();
        assert_eq!(after.as_deref(), Some("yes"), "cut at {cut}");
        assert!(
            !server
                .drain_log()
                .iter()
                .any(|line| line.contains("torn tail")),
            "the second start finds a clean log: {:?}",
            server.log
        );
    }
}

#[test]
fn a_flipped_bit_with_records_after_it_refuses_to_start_and_leaves_the_file_alone() {
    let dir = TempDir::new("recovery-bit-flip");
    let (path, spans) = write_sample_log(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let damaged = spans[5];
    bytes[(damaged.offset + 24) as usize] ^= 0x04;
    std::fs::write(&path, &bytes).unwrap();

    let (code, stderr) = run_to_exit(dir.path(), &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&path.display().to_string()),
        "names the file: {stderr}"
    );
    assert!(
        stderr.contains(&format!("offset {}", damaged.offset)),
        "names the offset {}: {stderr}",
        damaged.offset
    );
    assert!(stderr.contains("dibs-aof"), "names the tool: {stderr}");
    assert!(!stderr.contains("Ready to accept connections"), "{stderr}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the file is untouched"
    );
}

#[test]
fn a_zero_filled_tail_is_reserved_space_cut_and_the_data_kept() {
    let dir = TempDir::new("recovery-zeros");
    let (path, spans) = write_sample_log(dir.path());
    let length = std::fs::metadata(&path).unwrap().len();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0u8; 4096]);
    std::fs::write(&path, &bytes).unwrap();

    let server = Server::start(dir.path(), &[]);
    assert!(
        server.log.iter().any(
            |line| line.contains("ends in 4096 bytes of reserved space after its last record")
        ),
        "{:?}",
        server.log
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), length);
    let mut connection = server.connection();
    for (key, value) in expected(spans.len() as u64) {
        let found: Option<String> = connection.get(&key).unwrap();
        assert_eq!(found, value, "{key}");
    }
}

/// A killed server leaves the log's reserved space behind it (zeros after the last record, on disk);
/// restart cuts it, keeps every acknowledged write, and appends right after the last record.
#[test]
fn a_killed_server_leaves_reserved_space_that_restart_cuts() {
    let dir = TempDir::new("recovery-reserved");
    let mut server = Server::start(dir.path(), &[]);
    let mut connection = server.connection();
    for index in 0..100 {
        let _: () = connection.set(format!("key_{index}"), index).unwrap();
    }
    let path = log_files(dir.path()).unwrap()[0].1.clone();
    let reserved = || {
        let bytes = std::fs::read(&path).unwrap();
        match scan(&bytes).1 {
            ScanVerdict::Clean {
                end_offset,
                reserved_bytes,
            } => (end_offset, reserved_bytes),
            verdict => panic!("{verdict:?}"),
        }
    };
    common::wait_until("space is reserved after the log's end", || reserved().1 > 0);
    server.kill();
    let (end_offset, _) = reserved();

    server.restart();
    assert!(
        server.log.iter().any(
            |line| line.contains("bytes of reserved space after its last record; cutting them")
        ),
        "{:?}",
        server.log
    );
    let mut connection = server.connection();
    for index in 0..100 {
        let found: Option<i64> = connection.get(format!("key_{index}")).unwrap();
        assert_eq!(found, Some(index));
    }
    let _: () = connection.set("after", "restart").unwrap();
    server.raw().command(&["SHUTDOWN"]);
    assert_eq!(server.wait_exit(), Some(0), "{:?}", server.log);
    // A clean shutdown gives the reserved space back; the new record follows the old ones directly.
    let bytes = std::fs::read(&path).unwrap();
    let (records, verdict) = scan(&bytes);
    assert_eq!(
        verdict,
        ScanVerdict::Clean {
            end_offset: bytes.len() as u64,
            reserved_bytes: 0
        }
    );
    assert_eq!(records.len(), 101);
    assert_eq!(records[100].offset, end_offset);
}
