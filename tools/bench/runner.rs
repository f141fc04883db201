//! The load driver shared by every test and scenario: `clients` threads, each with its own blocking
//! connection, pull batches of up to `pipeline` requests from one shared budget of `requests`, write a batch
//! in one go, read its replies, and record each reply's latency. What to send and what to make of a reply
//! is the `Worker`'s business; the driver only moves bytes and keeps time.
//!
//! Each thread owns its worker, so a scenario's client-side ledger needs no locks: the workers come back
//! to the caller when the run ends and are merged there.

use crate::histogram::Latencies;
use crate::progress::{self, ProgressStyle};
use crate::resp::{Command, Connection, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

/// Where and how hard to push.
#[derive(Clone, Debug)]
pub struct LoadSettings {
    pub host: String,
    pub port: u16,
    pub clients: usize,
    pub requests: u64,
    pub pipeline: usize,
    pub progress: ProgressStyle,
    pub label: String,
}

/// One client's behaviour.
pub trait Worker: Send {
    /// Appends exactly `count` commands to send next as one pipelined batch.
    fn build(&mut self, count: usize, commands: &mut Vec<Command>);
    /// Takes the replies to the batch `build` produced, in order. `sent_at` was taken just before the
    /// batch was written, so it is no later than the server saw any of it.
    fn absorb(&mut self, commands: &[Command], replies: Vec<Value>, sent_at: Instant);
}

/// What a run measured.
pub struct LoadOutcome {
    pub latencies: Latencies,
    pub requests: u64,
    pub elapsed: Duration,
    /// Error replies (`-ERR ...`) seen, with the first one kept for the report.
    pub error_replies: u64,
    pub first_error: Option<String>,
}

impl LoadOutcome {
    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs the workers (one per client) until the request budget is spent. Fails if any connection breaks:
/// a half-finished ledger cannot be verified.
pub fn run<W: Worker>(
    settings: &LoadSettings,
    workers: Vec<W>,
) -> Result<(Vec<W>, LoadOutcome), String> {
    assert_eq!(workers.len(), settings.clients, "one worker per client");
    let mut connections = Vec::with_capacity(settings.clients);
    for _ in 0..settings.clients {
        connections.push(Connection::open(&settings.host, settings.port)?);
    }
    let claimed = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let finished = AtomicBool::new(false);
    let start_line = Barrier::new(settings.clients + 1);
    let started_at = Mutex::new(Instant::now());
    let pipeline = settings.pipeline.max(1) as u64;

    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = workers
            .into_iter()
            .zip(connections)
            .map(|(mut worker, mut connection)| {
                let (claimed, done, start_line) = (&claimed, &done, &start_line);
                scope.spawn(move || -> Result<_, String> {
                    let mut latencies = Latencies::new();
                    let mut commands = Vec::with_capacity(pipeline as usize);
                    let (mut error_replies, mut first_error) = (0u64, None);
                    start_line.wait();
                    loop {
                        let first = claimed.fetch_add(pipeline, Ordering::Relaxed);
                        if first >= settings.requests {
                            break;
                        }
                        let count = pipeline.min(settings.requests - first) as usize;
                        commands.clear();
                        worker.build(count, &mut commands);
                        debug_assert_eq!(commands.len(), count, "a worker builds what it is asked");
                        let sent_at = Instant::now();
                        let replies = connection
                            .round_trip(&commands, |latency| latencies.record(latency))?;
                        for reply in &replies {
                            if let Some(message) = reply.error() {
                                error_replies += 1;
                                first_error.get_or_insert_with(|| message.to_string());
                            }
                        }
                        worker.absorb(&commands, replies, sent_at);
                        done.fetch_add(count as u64, Ordering::Relaxed);
                    }
                    Ok((worker, latencies, error_replies, first_error))
                })
            })
            .collect();
        let progress_handle = scope.spawn(|| {
            progress::show(
                settings.progress,
                &settings.label,
                settings.requests,
                &done,
                &finished,
            )
        });
        *started_at.lock().expect("no thread panics holding it") = Instant::now();
        start_line.wait();
        let results: Vec<_> = handles
            .into_iter()
            .map(|handle| handle.join().expect("client thread panicked"))
            .collect();
        let elapsed = started_at.lock().expect("not poisoned").elapsed();
        finished.store(true, Ordering::Release);
        progress_handle.join().expect("progress thread panicked");
        (results, elapsed)
    });

    let (results, elapsed) = results;
    let mut workers = Vec::with_capacity(settings.clients);
    let mut outcome = LoadOutcome {
        latencies: Latencies::new(),
        requests: 0,
        elapsed,
        error_replies: 0,
        first_error: None,
    };
    for result in results {
        let (worker, latencies, error_replies, first_error) = result?;
        outcome.latencies.merge(&latencies);
        outcome.error_replies += error_replies;
        if outcome.first_error.is_none() {
            outcome.first_error = first_error;
        }
        workers.push(worker);
    }
    outcome.requests = outcome.latencies.summary().count;
    Ok((workers, outcome))
}
