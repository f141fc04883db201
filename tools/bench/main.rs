//! dibs-bench: a redis-benchmark-style load generator that also checks the outcome.
//!
//! # Layout
//! - `options`: the command line (redis-benchmark's flags plus scenario sizes and targets).
//! - `resp`: a blocking RESP client with its own decoder; pipelining is write P, then read P.
//! - `runner`: client threads sharing one request budget, timing every reply.
//! - `histogram`: HDR latency histograms and the p50/p99/p99.9/max summary.
//! - `progress`: the live bar on a terminal, plain lines elsewhere.
//! - `random`: the seeded generator and the Zipf sampler.
//! - `scenario`: the plain tests and the four rush scenarios, each with a pure checker.
//! - `report`: human, CSV, JSON and Markdown output.
//!
//! This file is the only place that exits: 0 when every check passed, 1 when one found a violation, 2
//! when a run could not be made (bad options, no server, a broken connection).

mod histogram;
mod options;
mod progress;
mod random;
mod report;
mod resp;
mod runner;
mod scenario;

use clap::Parser;
use options::{Options, TargetChoice};
use progress::ProgressStyle;
use runner::LoadSettings;
use scenario::{ScenarioResult, ScenarioSettings, Target};
use std::io::IsTerminal;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    let options = Options::parse();
    if let Err(message) = options.validate() {
        eprintln!("dibs-bench: {message}");
        std::process::exit(2);
    }
    match run(&options) {
        Ok(results) => {
            let all_correct = results.iter().all(|result| result.verdict.is_correct());
            std::process::exit(if all_correct { 0 } else { 1 });
        }
        Err(message) => {
            eprintln!("dibs-bench: {message}");
            std::process::exit(2);
        }
    }
}

fn run(options: &Options) -> Result<Vec<ScenarioResult>, String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    let seed = options.seed.unwrap_or(now.as_nanos() as u64);
    // The run id mixes the time and the process so two runs started in the same second still differ.
    let prefix = options.prefix.clone().unwrap_or_else(|| {
        format!(
            "bench:{:x}{:04x}",
            now.as_millis(),
            std::process::id() & 0xffff
        )
    });
    let progress = if options.quiet {
        ProgressStyle::Quiet
    } else if std::io::stderr().is_terminal() {
        ProgressStyle::Terminal
    } else {
        ProgressStyle::Lines
    };
    let targets: Vec<(Target, String, u16)> = match options.target {
        TargetChoice::Dibs => vec![(Target::Dibs, options.host.clone(), options.port)],
        TargetChoice::Redis => vec![(Target::Redis, options.host.clone(), options.port)],
        TargetChoice::Both => vec![
            (Target::Dibs, options.host.clone(), options.port),
            (
                Target::Redis,
                options.redis_host.clone().unwrap_or(options.host.clone()),
                options.redis_port,
            ),
        ],
    };
    let human = !(options.csv || options.json || options.markdown);
    if human {
        println!("dibs-bench: seed {seed}, key prefix {prefix}");
    }
    if options.flush {
        for (_, host, port) in &targets {
            let mut connection = resp::Connection::open(host, *port)?;
            scenario::call_ok(&mut connection, command!("FLUSHDB"))?;
        }
    }

    let mut results = Vec::new();
    for (index, name) in options.runs()?.into_iter().enumerate() {
        for (target, host, port) in &targets {
            let settings = ScenarioSettings {
                load: LoadSettings {
                    host: host.clone(),
                    port: *port,
                    clients: options.clients,
                    requests: options.requests,
                    pipeline: options.pipeline,
                    progress,
                    label: format!("{name} ({target})"),
                },
                target: *target,
                // Each run gets its own keys, so running a scenario twice in one invocation starts fresh.
                prefix: format!("{prefix}:{index}"),
                seed: seed.wrapping_add(index as u64),
                users: options.users,
                coupons: options.coupons,
                stock: options.stock,
                posts: options.posts,
                zipf_exponent: options.zipf,
                keyspace: options.keyspace,
                data_size: options.data_size,
            };
            let result = run_one(name, &settings).map_err(|message| {
                format!("{name} against {target} at {host}:{port}: {message}")
            })?;
            if human {
                print!("{}", report::human(&result));
            }
            results.push(result);
        }
    }
    if options.csv {
        print!("{}", report::csv(&results));
    } else if options.json {
        print!("{}", report::json(&results, seed, &prefix));
    } else if options.markdown || targets.len() > 1 {
        if human {
            println!();
        }
        print!("{}", report::markdown(&results));
    }
    Ok(results)
}

fn run_one(name: &'static str, settings: &ScenarioSettings) -> Result<ScenarioResult, String> {
    match name {
        "coupon-rush" => scenario::coupon::run(settings),
        "stock-rush" => scenario::stock::run(settings),
        "likes-storm" => scenario::likes::run(settings),
        "waiting-room" => scenario::queue::run(settings),
        plain => scenario::plain::run(plain, settings),
    }
}
