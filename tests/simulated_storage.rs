//! Simulated storage: thousands of seeded runs of the real syncer over `FaultyStorage`, each ending in a
//! crash, checked against a reference model of what was acknowledged.
//!
//! One seed: random batches of random records (SET / SADD / DEL with random binary values, some spanning
//! several sectors) go through `Syncer` with `appendfsync always`, one batch at a time, with faults drawn
//! from the seed before some of them: EIO or ENOSPC on a write, a short write, a disk that fills up, EIO on
//! fsync, a failing cut. The model records which sequences were reported `Durable`. Then the storage
//! crashes, sometimes with a sync in flight, keeping unsynced bytes as a prefix or as any subset of
//! 512-byte sectors (zeros elsewhere). The surviving bytes are scanned:
//!
//! - every record reported durable is there, byte for byte, and decodes to the commands that were sent;
//! - no record decodes to anything that was not sent under its sequence;
//! - damage is only ever past the durable length (a crash never damages synced bytes);
//! - then 1 to 3 bits are flipped anywhere (a bad read): the scan must stop at or before the damage, as a
//!   torn tail or as corruption, and never yield a record that differs from what was sent;
//! - every 64th seed also writes the surviving file to a directory and runs `dibs::recovery::recover` on it:
//!   it starts (replaying at least every durable record) unless the scan said corrupt, and then refuses.
//!
//! `DIBS_SIMULATION_SEEDS=n` runs more seeds; `DIBS_SIMULATION_SEED=s` replays one seed, which a failure
//! prints.
mod common;

use dibs::aof::payload::{decode_payload, encode_payload};
use dibs::aof::record::{encode_record, file_header, scan, ScanVerdict, FILE_HEADER_SIZE};
use dibs::aof::storage::{AppendFault, FaultyStorage, FaultyStorageControl};
use dibs::aof::syncer::{Batch, SyncReport, Syncer, SyncerHandle};
use dibs::aof::FsyncPolicy;
use std::time::{Duration, Instant};

const SEEDS_DEFAULT: u64 = 3000;
const SECTOR_SIZE: usize = 512;
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// SplitMix64, so a seed means the same run everywhere.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.0;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        ((self.next() as u128 * bound as u128) >> 64) as u64
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn bytes(&mut self, length: usize) -> Vec<u8> {
        (0..length).map(|_| self.next() as u8).collect()
    }
}

/// One record as the model knows it: its sequence and the commands it carries.
struct SentRecord {
    sequence: u64,
    now_ms: u64,
    commands: Vec<Vec<Vec<u8>>>,
}

fn random_commands(random: &mut Random) -> Vec<Vec<Vec<u8>>> {
    (0..1 + random.below(3))
        .map(|_| {
            let key = random.below(8);
            // Mostly small values; sometimes a few sectors' worth, so records straddle sector edges.
            let length = if random.chance(10) {
                random.below(3 * SECTOR_SIZE as u64) as usize
            } else {
                random.below(40) as usize
            };
            match random.below(3) {
                0 => vec![
                    b"SET".to_vec(),
                    format!("k{key}").into_bytes(),
                    random.bytes(length),
                ],
                1 => vec![
                    b"SADD".to_vec(),
                    format!("s{key}").into_bytes(),
                    random.bytes(length.max(1)),
                ],
                _ => vec![b"DEL".to_vec(), format!("k{key}").into_bytes()],
            }
        })
        .collect()
}

fn encode(record: &SentRecord, out: &mut Vec<u8>) {
    let mut payload = Vec::new();
    encode_payload(
        &mut payload,
        record.now_ms,
        record
            .commands
            .iter()
            .map(|command| command.iter().map(Vec::as_slice)),
    );
    encode_record(out, record.sequence, &payload);
}

/// What one seed saw, summed over the run for the report.
#[derive(Default, Debug)]
struct Totals {
    seeds: u64,
    records_sent: u64,
    records_durable_checked: u64,
    failures_reported: u64,
    torn_tails: u64,
    corrupt_after_durable: u64,
    bit_flip_scans: u64,
    recoveries: u64,
}

struct Run {
    random: Random,
    handle: Option<SyncerHandle>,
    control: FaultyStorageControl,
    sent: Vec<SentRecord>,
    /// The last sequence reported durable, and the log length it was reported at.
    durable_sequence: u64,
    durable_length: u64,
    failed: bool,
    next_sequence: u64,
}

impl Run {
    fn handle(&self) -> &SyncerHandle {
        self.handle
            .as_ref()
            .expect("the syncer runs until the crash")
    }

    /// Submits a batch of 1 to 3 new records; returns its last sequence.
    fn submit(&mut self) -> u64 {
        let mut bytes = Vec::new();
        for _ in 0..1 + self.random.below(3) {
            let record = SentRecord {
                sequence: self.next_sequence,
                now_ms: 1_700_000_000_000 + self.next_sequence,
                commands: random_commands(&mut self.random),
            };
            encode(&record, &mut bytes);
            self.sent.push(record);
            self.next_sequence += 1;
        }
        let last_sequence = self.next_sequence - 1;
        self.handle()
            .submit(Batch {
                bytes,
                last_sequence,
            })
            .expect("the syncer takes batches");
        last_sequence
    }

    /// Applies one report to the model, checking it against what the syncer may say.
    fn apply(&mut self, report: SyncReport, totals: &mut Totals) -> Result<(), String> {
        match report {
            SyncReport::Durable {
                sequence,
                log_length,
            } => {
                if self.failed {
                    return Err(format!("durable up to {sequence} after a failure"));
                }
                if sequence < self.durable_sequence || log_length < self.durable_length {
                    return Err(format!("durability went backwards to {sequence}"));
                }
                if (self.control.synced_length() as u64) < log_length {
                    return Err(format!(
                        "reported durable at {log_length} bytes, but only {} are synced",
                        self.control.synced_length()
                    ));
                }
                self.durable_sequence = sequence;
                self.durable_length = log_length;
            }
            SyncReport::Failed {
                first_failed_sequence,
                ..
            } => {
                if first_failed_sequence != self.durable_sequence + 1 {
                    return Err(format!(
                        "failure from {first_failed_sequence}, but {} was durable",
                        self.durable_sequence
                    ));
                }
                if !self.failed {
                    totals.failures_reported += 1;
                }
                self.failed = true;
            }
            SyncReport::Written { .. } => return Err("Written under appendfsync always".into()),
            SyncReport::Rotated { .. } | SyncReport::RotationFailed { .. } => {
                return Err("a rotation report, but this model never rotates".into())
            }
        }
        Ok(())
    }

    fn next_report(&self) -> Result<SyncReport, String> {
        self.handle()
            .reports()
            .recv_timeout(REPORT_TIMEOUT)
            .map_err(|_| "no report from the syncer".to_string())
    }
}

fn inject_fault(run: &mut Run) {
    let control = &run.control;
    // About one batch in 25 meets a fault, so most runs build a history before one strikes.
    match run.random.below(1000) {
        0..=7 => control.fail_next_append(AppendFault::InputOutput),
        8..=15 => control.fail_next_append(AppendFault::NoSpace),
        16..=23 => control.fail_next_append(AppendFault::Short {
            bytes_written: run.random.below(200) as usize,
        }),
        24..=35 => control.fail_next_sync(),
        36..=39 => {
            control.fail_next_sync();
            control.fail_next_truncate();
        }
        _ => {}
    }
}

fn run_seed(seed: u64, totals: &mut Totals) -> Result<(), String> {
    let (storage, control) = FaultyStorage::new(file_header(1).to_vec());
    let mut run = Run {
        random: Random(seed),
        handle: None,
        control,
        sent: Vec::new(),
        durable_sequence: 0,
        durable_length: FILE_HEADER_SIZE as u64,
        failed: false,
        next_sequence: 1,
    };
    if run.random.chance(20) {
        run.control
            .set_capacity(Some(FILE_HEADER_SIZE + run.random.below(6000) as usize));
    }
    run.handle = Some(Syncer::spawn(
        Box::new(storage),
        FsyncPolicy::Always,
        0,
        || {},
    ));
    let steps = 1 + run.random.below(24);
    for _ in 0..steps {
        inject_fault(&mut run);
        let last_sequence = run.submit();
        let report = run.next_report()?;
        if let SyncReport::Durable { sequence, .. } = report {
            if sequence != last_sequence {
                return Err(format!(
                    "durable {sequence} after submitting {last_sequence}"
                ));
            }
        }
        run.apply(report, totals)?;
    }
    // Half the time the crash comes with a batch appended and its fsync in flight.
    if !run.failed && run.random.chance(50) {
        run.control.hold_syncs();
        let started = run.control.syncs_started();
        run.submit();
        let deadline = Instant::now() + REPORT_TIMEOUT;
        while run.control.syncs_started() == started {
            // A full disk fails the append instead; then no sync starts.
            if let Ok(report) = run.handle().reports().try_recv() {
                run.apply(report, totals)?;
                break;
            }
            if Instant::now() > deadline {
                return Err("the held sync never started".into());
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    let image = match run.random.below(3) {
        0 => {
            let unsynced = run.control.contents().len() - run.control.synced_length();
            run.control
                .crash(run.random.below(unsynced as u64 + 1) as usize)
        }
        kind => {
            let percent = run.random.below(101);
            let random = &mut run.random;
            run.control
                .crash_torn(SECTOR_SIZE, kind == 2, |_| random.chance(percent))
        }
    };
    run.control.stop_holding_syncs();
    drop(run.handle.take());

    check_image(&image, &run, totals)?;
    let mut flipped = image.clone();
    // Distinct bits: flipping one bit twice would give the original bytes back.
    let flips = 1 + run.random.below(3) as usize;
    let mut bits = std::collections::BTreeSet::new();
    while bits.len() < flips {
        bits.insert(run.random.below(flipped.len() as u64 * 8) as usize);
    }
    for bit in bits {
        flipped[bit / 8] ^= 1 << (bit % 8);
    }
    check_flipped(&flipped, &run)?;
    totals.bit_flip_scans += 1;
    if seed.is_multiple_of(64) {
        check_recovery(&image, &run, seed)?;
        totals.recoveries += 1;
    }
    totals.seeds += 1;
    totals.records_sent += run.sent.len() as u64;
    totals.records_durable_checked += run.durable_sequence;
    Ok(())
}

/// Every yielded record must be exactly the one sent under its sequence.
fn check_records_match(image: &[u8], run: &Run) -> Result<(usize, ScanVerdict), String> {
    let (records, verdict) = scan(image);
    for record in &records {
        let sent = run
            .sent
            .get(record.sequence.wrapping_sub(1) as usize)
            .ok_or_else(|| format!("record {} was never sent", record.sequence))?;
        let payload = decode_payload(record.payload).map_err(|error| {
            format!(
                "record {} passed its checksum but does not decode: {error}",
                record.sequence
            )
        })?;
        let commands: Vec<Vec<Vec<u8>>> = payload
            .commands
            .iter()
            .map(|command| command.iter().map(|argument| argument.to_vec()).collect())
            .collect();
        if payload.now_ms != sent.now_ms || commands != sent.commands {
            return Err(format!(
                "record {} decodes to something other than what was sent",
                record.sequence
            ));
        }
    }
    Ok((records.len(), verdict))
}

fn check_image(image: &[u8], run: &Run, totals: &mut Totals) -> Result<(), String> {
    let (count, verdict) = check_records_match(image, run)?;
    if (count as u64) < run.durable_sequence {
        return Err(format!(
            "{count} records survive but {} were acknowledged durable ({verdict})",
            run.durable_sequence
        ));
    }
    if verdict.good_length() < run.durable_length {
        return Err(format!(
            "damage inside the durable {} bytes: {verdict}",
            run.durable_length
        ));
    }
    match verdict {
        ScanVerdict::Clean { .. } => {}
        ScanVerdict::TornTail { .. } => totals.torn_tails += 1,
        // Sectors persisted out of order: a zeroed sector with a whole record after it. Nothing past
        // the durable length was acknowledged; the server refuses to start and `dibs-aof fix` cuts here.
        ScanVerdict::Corrupt { .. } => totals.corrupt_after_durable += 1,
    }
    Ok(())
}

fn check_flipped(flipped: &[u8], run: &Run) -> Result<(), String> {
    let (count, verdict) = check_records_match(flipped, run)?;
    // A flip in a record or the file magic is caught by the checksum or the magic; a flip in the
    // header's first sequence is caught by the first record's sequence. Only a header with no record
    // after it (nothing, or zeros) can scan clean: its number changed, and no record contradicts it.
    if matches!(verdict, ScanVerdict::Clean { end_offset, .. } if end_offset > FILE_HEADER_SIZE as u64)
    {
        return Err(format!(
            "bit flips went unnoticed: the scan is clean with {count} records"
        ));
    }
    Ok(())
}

fn check_recovery(image: &[u8], run: &Run, seed: u64) -> Result<(), String> {
    let dir = common::TempDir::in_memory(&format!("simulated-{seed}"));
    std::fs::write(
        dir.path().join(dibs::aof::directory::log_file_name(1)),
        image,
    )
    .map_err(|error| error.to_string())?;
    let (_, verdict) = scan(image);
    let config = dibs::config::Config::for_tests(0, dir.path().to_path_buf());
    match (dibs::recovery::recover(&config, seed), verdict) {
        (Err(error), ScanVerdict::Corrupt { .. }) => {
            if !error.0.contains("dibs-aof fix") {
                return Err(format!("refusal without the repair hint: {error}"));
            }
        }
        (Err(error), verdict) => return Err(format!("recovery refused a {verdict}: {error}")),
        (Ok(_), verdict @ ScanVerdict::Corrupt { .. }) => {
            return Err(format!("recovery started on a {verdict}"))
        }
        (Ok(recovered), _) => {
            if recovered.records_replayed < run.durable_sequence {
                return Err(format!(
                    "recovery replayed {} records, {} were durable",
                    recovered.records_replayed, run.durable_sequence
                ));
            }
        }
    }
    Ok(())
}

fn seeds() -> Vec<u64> {
    if let Ok(seed) = std::env::var("DIBS_SIMULATION_SEED") {
        return vec![seed.parse().expect("DIBS_SIMULATION_SEED is a number")];
    }
    let count = std::env::var("DIBS_SIMULATION_SEEDS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(SEEDS_DEFAULT);
    (0..count).collect()
}

#[test]
fn acknowledged_records_survive_every_simulated_crash() {
    let started = Instant::now();
    let mut totals = Totals::default();
    for seed in seeds() {
        if let Err(message) = run_seed(seed, &mut totals) {
            panic!("seed {seed} failed: {message}\nreplay it with DIBS_SIMULATION_SEED={seed} cargo test --test simulated_storage");
        }
    }
    eprintln!(
        "simulated storage: {totals:?} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(totals.records_durable_checked > 0);
}
