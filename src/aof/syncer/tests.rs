use super::*;
use crate::aof::payload::encode_payload;
use crate::aof::record::{encode_record, file_header, scan, ScanVerdict};
use crate::aof::storage::{AppendFault, FaultyStorage, FaultyStorageControl};
use std::sync::atomic::AtomicUsize;

/// A bound on waiting for a report that must come; a failing test ends instead of hanging.
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

fn batch(sequence: u64) -> Batch {
    let mut payload = Vec::new();
    let value = sequence.to_string();
    encode_payload(
        &mut payload,
        1_000 + sequence,
        [[b"SET".as_slice(), b"key", value.as_bytes()]],
    );
    let mut bytes = Vec::new();
    encode_record(&mut bytes, sequence, &payload);
    Batch {
        bytes,
        last_sequence: sequence,
    }
}

fn start(policy: FsyncPolicy) -> (SyncerHandle, FaultyStorageControl, Arc<AtomicUsize>) {
    let (storage, control) = FaultyStorage::new(file_header(1).to_vec());
    let notified = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&notified);
    let handle = Syncer::spawn(Box::new(storage), policy, 0, move || {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    (handle, control, notified)
}

fn next_report(handle: &SyncerHandle) -> SyncReport {
    handle
        .reports()
        .recv_timeout(REPORT_TIMEOUT)
        .expect("a report")
}

fn scanned_sequences(file: &[u8]) -> Vec<u64> {
    let (records, verdict) = scan(file);
    assert!(matches!(verdict, ScanVerdict::Clean { .. }), "{verdict:?}");
    records.iter().map(|record| record.sequence).collect()
}

#[test]
fn a_rotation_makes_the_old_file_durable_then_switches_whatever_the_policy() {
    for policy in [
        FsyncPolicy::Always,
        FsyncPolicy::EverySecond,
        FsyncPolicy::No,
    ] {
        let (handle, old, _) = start(policy);
        handle.submit(batch(1)).unwrap();
        handle.submit(batch(2)).unwrap();
        let (storage, new) = FaultyStorage::new(file_header(3).to_vec());
        let storage: Box<dyn Storage + Send> = Box::new(storage);
        assert!(handle.rotate(Rotation {
            first_sequence: 3,
            open: Box::new(move || Ok(storage)),
        }));
        handle.submit(batch(3)).unwrap();
        let mut rotated = false;
        while !rotated {
            rotated = next_report(&handle) == SyncReport::Rotated { first_sequence: 3 };
        }
        assert_eq!(scanned_sequences(&old.crash(0)), vec![1, 2], "{policy:?}");
        assert_eq!(handle.shutdown(), Ok(()));
        assert_eq!(scanned_sequences(&new.crash(0)), vec![3], "{policy:?}");
        assert_eq!(scanned_sequences(&old.contents()), vec![1, 2]);
    }
}

#[test]
fn a_rotation_that_cannot_open_keeps_the_old_file() {
    let (handle, old, _) = start(FsyncPolicy::Always);
    handle.submit(batch(1)).unwrap();
    assert!(handle.rotate(Rotation {
        first_sequence: 2,
        open: Box::new(|| Err(io::Error::other("no space"))),
    }));
    handle.submit(batch(2)).unwrap();
    let mut failed = false;
    while !failed {
        failed = matches!(next_report(&handle), SyncReport::RotationFailed { .. });
    }
    assert_eq!(handle.shutdown(), Ok(()));
    assert_eq!(scanned_sequences(&old.crash(0)), vec![1, 2]);
}

#[test]
fn always_makes_each_batch_durable() {
    let (handle, control, notified) = start(FsyncPolicy::Always);
    let mut expected_length = 16;
    for sequence in 1..=3 {
        let batch = batch(sequence);
        expected_length += batch.bytes.len() as u64;
        handle.submit(batch).unwrap();
        assert_eq!(
            next_report(&handle),
            SyncReport::Durable {
                sequence,
                log_length: expected_length
            }
        );
        assert_eq!(control.synced_length() as u64, expected_length);
    }
    let statistics = handle.statistics().snapshot();
    assert_eq!(statistics.syncs_count, 3);
    assert_eq!(statistics.batches_count, 3);
    assert!(!statistics.failed);
    assert_eq!(handle.shutdown(), Ok(()));
    // Joined: every notification has happened.
    assert_eq!(notified.load(Ordering::SeqCst), 3);
    assert_eq!(scanned_sequences(&control.crash(0)), vec![1, 2, 3]);
}

#[test]
fn batches_queued_behind_a_sync_share_the_next_one() {
    let (handle, control, _) = start(FsyncPolicy::Always);
    control.hold_syncs();
    handle.submit(batch(1)).unwrap();
    control.wait_for_syncs_started(1);
    // The first sync is in flight; these queue up behind it.
    for sequence in 2..=10 {
        handle.submit(batch(sequence)).unwrap();
    }
    control.release_syncs(1);
    assert!(matches!(
        next_report(&handle),
        SyncReport::Durable { sequence: 1, .. }
    ));
    control.wait_for_syncs_started(2);
    control.release_syncs(1);
    assert!(matches!(
        next_report(&handle),
        SyncReport::Durable { sequence: 10, .. }
    ));
    assert_eq!(control.syncs_count(), 2);
    assert_eq!(control.appends_count(), 2);
    let statistics = handle.statistics().snapshot();
    assert_eq!(
        (
            statistics.batches_count,
            statistics.appends_count,
            statistics.syncs_count
        ),
        (10, 2, 2)
    );
    control.stop_holding_syncs();
    assert_eq!(handle.shutdown(), Ok(()));
    assert_eq!(
        scanned_sequences(&control.crash(0)),
        (1..=10).collect::<Vec<u64>>()
    );
}

/// Drains every report left after shutdown and checks none claims durability from `sequence` on.
fn assert_never_durable_from(reports: &Receiver<SyncReport>, sequence: u64) {
    for report in reports.try_iter() {
        if let SyncReport::Durable {
            sequence: durable, ..
        } = report
        {
            assert!(
                durable < sequence,
                "durable up to {durable} after a failure at {sequence}"
            );
        }
    }
}

#[test]
fn failed_sync_is_reported_and_never_acknowledged() {
    let (handle, control, _) = start(FsyncPolicy::Always);
    handle.submit(batch(1)).unwrap();
    assert!(matches!(
        next_report(&handle),
        SyncReport::Durable { sequence: 1, .. }
    ));
    let durable = control.contents();
    control.fail_next_sync();
    handle.submit(batch(2)).unwrap();
    let error = "fsync: Input/output error (os error 5)".to_string();
    assert_eq!(
        next_report(&handle),
        SyncReport::Failed {
            first_failed_sequence: 2,
            last_sequence: 2,
            error: error.clone()
        }
    );
    // The syncer cut the unsynced record off and refuses every later batch without writing it.
    assert_eq!(control.contents(), durable);
    handle.submit(batch(3)).unwrap();
    assert_eq!(
        next_report(&handle),
        SyncReport::Failed {
            first_failed_sequence: 2,
            last_sequence: 3,
            error: error.clone()
        }
    );
    assert_eq!(control.appends_count(), 2);
    assert_eq!(control.syncs_count(), 2);
    assert!(handle.statistics().snapshot().failed);
    let reports = handle.reports().clone();
    assert_eq!(handle.shutdown(), Err(error));
    assert_never_durable_from(&reports, 2);
    assert_eq!(scanned_sequences(&control.crash(1000)), vec![1]);
}

#[test]
fn failed_appends_are_reported_and_cut_back() {
    let faults = [
        (
            AppendFault::InputOutput,
            "write: Input/output error (os error 5)",
        ),
        (
            AppendFault::NoSpace,
            "write: No space left on device (os error 28)",
        ),
        (
            AppendFault::Short { bytes_written: 7 },
            "write: No space left on device (os error 28)",
        ),
    ];
    for (fault, error) in faults {
        let (handle, control, _) = start(FsyncPolicy::Always);
        handle.submit(batch(1)).unwrap();
        assert!(matches!(
            next_report(&handle),
            SyncReport::Durable { sequence: 1, .. }
        ));
        control.fail_next_append(fault);
        for sequence in 2..=3 {
            handle.submit(batch(sequence)).unwrap();
            assert_eq!(
                next_report(&handle),
                SyncReport::Failed {
                    first_failed_sequence: 2,
                    last_sequence: sequence,
                    error: error.to_string()
                },
                "{fault:?}"
            );
        }
        assert_eq!(control.appends_count(), 2, "{fault:?}");
        // No sync follows a failed write, and no partial frame is left behind.
        assert_eq!(control.syncs_count(), 1, "{fault:?}");
        assert_eq!(scanned_sequences(&control.contents()), vec![1], "{fault:?}");
        let reports = handle.reports().clone();
        assert_eq!(handle.shutdown(), Err(error.to_string()));
        assert_never_durable_from(&reports, 2);
    }
}

#[test]
fn a_failed_cut_is_named_in_the_error() {
    let (handle, control, _) = start(FsyncPolicy::Always);
    control.fail_next_sync();
    control.fail_next_truncate();
    handle.submit(batch(1)).unwrap();
    match next_report(&handle) {
        SyncReport::Failed {
            first_failed_sequence: 1,
            last_sequence: 1,
            error,
        } => assert_eq!(
            error,
            "fsync: Input/output error (os error 5); \
             then cutting the log back to 16 bytes: Input/output error (os error 5)"
        ),
        other => panic!("{other:?}"),
    }
    drop(handle);
}

#[test]
fn every_second_syncs_a_quiet_log() {
    let (handle, control, _) = start(FsyncPolicy::EverySecond);
    let batch = batch(1);
    let log_length = 16 + batch.bytes.len() as u64;
    handle.submit(batch).unwrap();
    assert_eq!(
        next_report(&handle),
        SyncReport::Written {
            sequence: 1,
            log_length
        }
    );
    // No further batch comes; the deadline alone brings the fsync.
    assert_eq!(
        next_report(&handle),
        SyncReport::Durable {
            sequence: 1,
            log_length
        }
    );
    assert_eq!(control.synced_length() as u64, log_length);
    assert_eq!(handle.shutdown(), Ok(()));
}

#[test]
fn no_policy_writes_and_syncs_only_at_shutdown() {
    let (handle, control, _) = start(FsyncPolicy::No);
    for sequence in 1..=3 {
        handle.submit(batch(sequence)).unwrap();
        assert!(
            matches!(next_report(&handle), SyncReport::Written { sequence: written, .. } if written == sequence)
        );
    }
    assert_eq!(control.syncs_count(), 0);
    assert_eq!(control.crash(0), file_header(1));
    let reports = handle.reports().clone();
    assert_eq!(handle.shutdown(), Ok(()));
    assert!(matches!(
        reports.try_recv(),
        Ok(SyncReport::Durable { sequence: 3, .. })
    ));
    assert_eq!(scanned_sequences(&control.crash(0)), vec![1, 2, 3]);
}

/// A crash at any moment keeps every record reported durable, and what it tears is a torn tail, never
/// corruption.
#[test]
fn a_crash_keeps_every_durable_record() {
    let (handle, control, _) = start(FsyncPolicy::Always);
    handle.submit(batch(1)).unwrap();
    assert!(matches!(
        next_report(&handle),
        SyncReport::Durable { sequence: 1, .. }
    ));
    control.hold_syncs();
    handle.submit(batch(2)).unwrap();
    handle.submit(batch(3)).unwrap();
    control.wait_for_syncs_started(2);
    // 2 (and perhaps 3) are appended, their fsync in flight: nothing beyond 1 is durable yet.
    let unsynced = control.contents().len() - control.synced_length();
    assert!(unsynced > 0);
    for torn_bytes in 0..=unsynced {
        let file = control.crash(torn_bytes);
        let (records, verdict) = scan(&file);
        assert!(
            !matches!(verdict, ScanVerdict::Corrupt { .. }),
            "torn {torn_bytes}: {verdict:?}"
        );
        assert_eq!(records.first().map(|record| record.sequence), Some(1));
    }
    control.stop_holding_syncs();
    assert_eq!(handle.shutdown(), Ok(()));
    assert_eq!(scanned_sequences(&control.crash(0)), vec![1, 2, 3]);
}

#[test]
fn shutdown_flushes_everything_submitted() {
    let (handle, control, _) = start(FsyncPolicy::Always);
    for sequence in 1..=5 {
        handle.submit(batch(sequence)).unwrap();
    }
    assert_eq!(handle.shutdown(), Ok(()));
    assert_eq!(scanned_sequences(&control.crash(0)), vec![1, 2, 3, 4, 5]);
}

#[test]
fn buffers_come_back_empty() {
    let (handle, _control, _) = start(FsyncPolicy::Always);
    let mut buffer = handle.take_buffer();
    buffer.extend_from_slice(&batch(1).bytes);
    let capacity = buffer.capacity();
    handle
        .submit(Batch {
            bytes: buffer,
            last_sequence: 1,
        })
        .unwrap();
    next_report(&handle);
    let reused = handle.take_buffer();
    assert!(reused.is_empty());
    assert_eq!(reused.capacity(), capacity);
}
