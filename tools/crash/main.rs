//! dibs-crash: kill the server with SIGKILL under load, restart it, and check that nothing acknowledged
//! was lost and nothing impossible appeared.
//!
//! # Layout
//! - `server`: start the `dibs` binary, wait until it is ready, SIGKILL it.
//! - `load`: client threads that record every call as invoked, then acknowledged / failed / unknown.
//! - `model`: what must hold after a restart given those histories, and the check against the server.
//! - `resp`, `random`: shared with dibs-bench (the RESP client and the seeded generator).
//!
//! One cycle: start (or restart) the server on the same data directory, check the previous cycle's
//! histories against it, set up this cycle (a coupon event, more stock), run the clients, and kill the
//! server at a random moment drawn from the seed. State carries across cycles. The run ends with a verdict
//! naming the seed; the exit code is 0 when every check passed, 1 on a violation, 2 when the run itself
//! broke (the binary missing, a client that could not connect at set-up).

mod load;
mod model;
// Shared with dibs-bench, which uses all of them; this tool needs only part.
#[allow(dead_code)]
#[path = "../bench/random.rs"]
mod random;
#[allow(dead_code)]
#[path = "../bench/resp.rs"]
mod resp;
mod server;

use clap::Parser;
use load::{ClientHistory, Parts};
use model::{Cycle, Model};
use random::Random;
use resp::{Connection, Value};
use server::ServerProcess;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Crash-test dibs: run a mixed load, SIGKILL the server at a random moment, restart it, and check that
/// every acknowledged write survived and nothing impossible appeared. Repeats for --cycles cycles on one
/// data directory.
///
/// Exit code: 0 every check passed; 1 a violation was found (the seed is printed: rerun with --seed to
/// draw the same load and kill moments); 2 the run itself failed.
#[derive(Debug, Parser)]
#[command(name = "dibs-crash", version)]
struct Options {
    /// The dibs server binary. Default: `dibs` next to this executable.
    #[arg(long)]
    dibs: Option<PathBuf>,

    /// Kill-and-restart cycles.
    #[arg(long, default_value_t = 20)]
    cycles: u64,

    /// Stop after the cycle during which this many seconds have passed, even if fewer than --cycles ran
    /// (for "as many cycles as fit in ten minutes": --cycles 1000000 --max-seconds 600).
    #[arg(long)]
    max_seconds: Option<u64>,

    /// Seed for the load and the kill moments. Default: drawn from the clock and printed.
    #[arg(long)]
    seed: Option<u64>,

    /// Concurrent client connections.
    #[arg(long, default_value_t = 4)]
    clients: usize,

    /// Shortest time the load runs before the kill, in milliseconds.
    #[arg(long, default_value_t = 50)]
    kill_after_ms_min: u64,

    /// Longest time the load runs before the kill, in milliseconds.
    #[arg(long, default_value_t = 400)]
    kill_after_ms_max: u64,

    /// Data directory; it must not exist yet or be empty (the run never deletes what it did not
    /// create). Default: a fresh directory under the system temp dir, removed after a passing run and
    /// kept after a failing one.
    #[arg(long)]
    dir: Option<PathBuf>,

    /// Leave out INCRBY on counters.
    #[arg(long)]
    no_counters: bool,
    /// Leave out SADD/SREM on sets.
    #[arg(long)]
    no_sets: bool,
    /// Leave out COUPON.ISSUE.
    #[arg(long)]
    no_coupons: bool,
    /// Leave out STOCK.TAKE/RESERVE/CONFIRM/RELEASE.
    #[arg(long)]
    no_stock: bool,
    /// Leave out LIKE.ADD (also skipped by itself when the server answers `ERR unknown command`).
    #[arg(long)]
    no_likes: bool,
    /// Leave out QUEUE.JOIN (also skipped by itself when the server answers `ERR unknown command`).
    #[arg(long)]
    no_queue: bool,
    /// Leave out RPUSH/LPOP on lists.
    #[arg(long)]
    no_lists: bool,

    /// Extra argument for the server (repeatable), e.g. --server-arg=--appendfsync --server-arg=always.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_arguments: Vec<String>,
}

fn main() {
    let options = Options::parse();
    if options.clients == 0 || options.kill_after_ms_max < options.kill_after_ms_min {
        eprintln!("dibs-crash: --clients must be at least 1 and --kill-after-ms-max >= --kill-after-ms-min");
        std::process::exit(2);
    }
    let seed = options.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos() as u64)
            .unwrap_or(1)
    });
    let (dir, temporary) = match &options.dir {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!("dibs-crash-{}-{seed}", std::process::id())),
            true,
        ),
    };
    let occupied = std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied {
        eprintln!(
            "dibs-crash: {} is not empty; give a new or empty directory",
            dir.display()
        );
        std::process::exit(2);
    }
    if let Err(error) = std::fs::create_dir_all(&dir) {
        eprintln!("dibs-crash: cannot create {}: {error}", dir.display());
        std::process::exit(2);
    }
    let code = match run(&options, seed, &dir) {
        Ok(summary) if summary.violations.is_empty() => {
            println!(
                "dibs-crash verdict: PASS seed={seed} cycles={} calls={} acknowledged-checked={} \
                 unknown-settled={} lost=0 elapsed={:.1}s",
                summary.cycles,
                summary.calls,
                summary.acknowledged_checked,
                summary.unknown_settled,
                summary.elapsed.as_secs_f64()
            );
            if temporary {
                let _ = std::fs::remove_dir_all(&dir);
            }
            0
        }
        Ok(summary) => {
            for violation in summary.violations.iter().take(50) {
                println!("violation: {violation}");
            }
            println!(
                "dibs-crash verdict: FAIL seed={seed} cycles={} violations={} (data directory kept: {}; \
                 rerun with --seed {seed})",
                summary.cycles,
                summary.violations.len(),
                dir.display()
            );
            1
        }
        Err(message) => {
            println!(
                "dibs-crash verdict: ERROR seed={seed}: {message} (data directory kept: {})",
                dir.display()
            );
            2
        }
    };
    std::process::exit(code);
}

struct Summary {
    cycles: u64,
    calls: u64,
    acknowledged_checked: u64,
    unknown_settled: u64,
    violations: Vec<String>,
    elapsed: Duration,
}

/// True when the server does not know the command (so that part of the load is skipped).
fn is_unknown_command(reply: &Value) -> bool {
    reply
        .error()
        .is_some_and(|message| message.starts_with("ERR unknown command"))
}

fn run(options: &Options, seed: u64, dir: &std::path::Path) -> Result<Summary, String> {
    let binary = options.dibs.clone().unwrap_or_else(server::default_binary);
    let started = Instant::now();
    let mut random = Random::new(seed);
    let mut server = ServerProcess::start(&binary, dir, &options.server_arguments)?;
    let mut parts = Parts {
        counters: !options.no_counters,
        sets: !options.no_sets,
        coupons: !options.no_coupons,
        stock: !options.no_stock,
        likes: !options.no_likes,
        queue: !options.no_queue,
        lists: !options.no_lists,
    };
    {
        let mut probe = Connection::open("127.0.0.1", server.port)?;
        if parts.likes && is_unknown_command(&probe.call(command!["LIKE.COUNT", load::post(0)])?) {
            println!("dibs-crash: the server has no LIKE.* commands; likes are left out");
            parts.likes = false;
        }
        if parts.queue && is_unknown_command(&probe.call(command!["QUEUE.LEN", load::ROOM])?) {
            println!("dibs-crash: the server has no QUEUE.* commands; the queue is left out");
            parts.queue = false;
        }
    }
    println!(
        "dibs-crash: seed {seed}, {} cycles, {} clients, kill after {}..={} ms, parts {parts:?}, dir {}",
        options.cycles,
        options.clients,
        options.kill_after_ms_min,
        options.kill_after_ms_max,
        dir.display()
    );
    let mut model = Model::new(parts, options.clients);
    let mut violations = Vec::new();
    let mut calls = 0u64;
    // Error replies by message: none are expected, but they are not violations by themselves (an error
    // changes nothing); they are shown so a load that mostly fails does not pass unnoticed.
    let mut failures = std::collections::BTreeMap::new();
    let mut reservations: Vec<Vec<(i64, i64)>> = vec![Vec::new(); options.clients];
    let report_every = (options.cycles / 10).clamp(1, 100);
    let mut cycles_run = 0;
    for cycle in 1..=options.cycles {
        cycles_run = cycle;
        // Set-up, acknowledged before the load starts, so the model knows it for certain.
        let mut setup = Connection::open("127.0.0.1", server.port)?;
        if parts.coupons {
            let total = 20 + random.below(100) as i64;
            let reply = setup.call(command![
                "COUPON.CREATE",
                load::coupon_event(cycle),
                total,
                "PERUSER",
                1
            ])?;
            if reply.error().is_some() {
                return Err(format!("COUPON.CREATE failed: {reply:?}"));
            }
            model.coupon_event_created(cycle, total);
        }
        if parts.stock {
            let quantity = 50 + random.below(100) as i64;
            let reply = setup.call(command!["STOCK.ADD", load::SKU, quantity])?;
            if reply.error().is_some() {
                return Err(format!("STOCK.ADD failed: {reply:?}"));
            }
            model.stock_added(quantity);
        }
        drop(setup);

        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..options.clients)
            .map(|client| {
                let stop = Arc::clone(&stop);
                let client_seed = random.next_u64();
                let open = std::mem::take(&mut reservations[client]);
                let port = server.port;
                std::thread::spawn(move || {
                    load::run_client(client, cycle, port, parts, client_seed, open, stop)
                })
            })
            .collect();
        let kill_after = options.kill_after_ms_min
            + random.below(options.kill_after_ms_max - options.kill_after_ms_min + 1);
        std::thread::sleep(Duration::from_millis(kill_after));
        server.kill();
        stop.store(true, Ordering::Relaxed);
        let histories: Vec<ClientHistory> = threads
            .into_iter()
            .map(|thread| thread.join().expect("a client thread panicked"))
            .collect();
        for history in &histories {
            calls += history.calls.len() as u64;
            for call in &history.calls {
                if let load::Outcome::Failed(message) = &call.outcome {
                    *failures.entry(message.clone()).or_insert(0u64) += 1;
                }
            }
            reservations[history.client] = history.open_reservations.clone();
        }

        server = match ServerProcess::start(&binary, dir, &options.server_arguments) {
            Ok(server) => server,
            Err(message) => {
                violations.push(format!(
                    "cycle {cycle}: the server did not come back after the kill: {message}"
                ));
                break;
            }
        };
        let mut checker = Connection::open("127.0.0.1", server.port)?;
        let out_of_time = options
            .max_seconds
            .is_some_and(|seconds| started.elapsed() >= Duration::from_secs(seconds));
        let last = cycle == options.cycles || out_of_time;
        let found = model.check(
            &mut checker,
            &Cycle {
                number: cycle,
                histories: &histories,
            },
            last || cycle % 25 == 0,
        )?;
        violations.extend(found);
        if cycle % report_every == 0 || last || !violations.is_empty() {
            println!(
                "dibs-crash: cycle {cycle}/{}: {calls} calls, {} acknowledged checked, {} violations, \
                 pid {}, {:.1}s",
                options.cycles,
                model.acknowledged_checked,
                violations.len(),
                server.pid(),
                started.elapsed().as_secs_f64()
            );
        }
        if !violations.is_empty() {
            println!("server log tail:\n{}", server.log_tail());
            return Ok(Summary {
                cycles: cycle,
                calls,
                acknowledged_checked: model.acknowledged_checked,
                unknown_settled: model.unknown_settled,
                violations,
                elapsed: started.elapsed(),
            });
        }
        if last {
            break;
        }
    }
    server.kill();
    for (message, count) in &failures {
        println!("dibs-crash: {count} calls answered with an error: {message}");
    }
    Ok(Summary {
        cycles: cycles_run,
        calls,
        acknowledged_checked: model.acknowledged_checked,
        unknown_settled: model.unknown_settled,
        violations,
        elapsed: started.elapsed(),
    })
}
