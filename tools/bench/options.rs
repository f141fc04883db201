//! Command-line options, in redis-benchmark's spelling where it has one (`-h -p -c -n -P -r -d -t -q
//! --csv`), and their translation into the list of runs to make. `-h` is the host as in redis-benchmark,
//! so help is `--help` only.

use crate::scenario::plain::{DEFAULT_TESTS, TESTS};
use clap::{ArgAction, Parser, ValueEnum};

/// The scenarios besides the plain tests, in the order `all` runs them.
pub const SCENARIOS: [&str; 4] = ["coupon-rush", "stock-rush", "likes-storm", "waiting-room"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TargetChoice {
    /// dibs' own commands on -h/-p.
    Dibs,
    /// Redis with the Lua recipes in tools/lua on -h/-p.
    Redis,
    /// dibs on -h/-p, then Redis on --redis-host/--redis-port, reported side by side.
    Both,
}

#[derive(Debug, Parser)]
#[command(
    name = "dibs-bench",
    version,
    disable_help_flag = true,
    about = "Load generator and correctness checker for dibs and Redis.",
    after_help = "Scenarios: coupon-rush, stock-rush, likes-storm, waiting-room; plain tests: ping, set, \
                  get, incr, sadd (the default), and like (LIKE.ADD on dibs, SADD on Redis, Zipf over \
                  --posts, integer user ids); `all` runs everything. Exit status 1 when a check finds a violation, \
                  2 when the run could not be made."
)]
pub struct Options {
    /// Scenarios or plain tests to run (see below); with none and no -t, the default plain tests run.
    pub scenarios: Vec<String>,
    /// Server host (dibs, or Redis with --target redis).
    #[arg(short = 'h', long, default_value = "127.0.0.1")]
    pub host: String,
    /// Server port.
    #[arg(short = 'p', long, default_value_t = 6379)]
    pub port: u16,
    /// Parallel connections, one thread each.
    #[arg(short = 'c', long, default_value_t = 50)]
    pub clients: usize,
    /// Total requests per test or scenario.
    #[arg(short = 'n', long, default_value_t = 100_000)]
    pub requests: u64,
    /// Pipeline: requests written per round trip on each connection.
    #[arg(short = 'P', long, default_value_t = 1)]
    pub pipeline: usize,
    /// Plain tests: draw key suffixes from 0..KEYSPACE instead of one fixed key.
    #[arg(short = 'r', long, default_value_t = 0)]
    pub keyspace: u64,
    /// Plain tests: SET value size in bytes.
    #[arg(short = 'd', long, default_value_t = 3)]
    pub data_size: usize,
    /// Comma-separated tests and scenarios to run, added to the positional ones.
    #[arg(short = 't', long, value_delimiter = ',')]
    pub tests: Vec<String>,
    /// Which server and recipe to drive.
    #[arg(long, value_enum, default_value_t = TargetChoice::Dibs)]
    pub target: TargetChoice,
    /// Redis host for --target both (defaults to -h).
    #[arg(long)]
    pub redis_host: Option<String>,
    /// Redis port for --target both.
    #[arg(long, default_value_t = 6380)]
    pub redis_port: u16,
    /// Print results as CSV on stdout.
    #[arg(long, conflicts_with_all = ["json", "markdown"])]
    pub csv: bool,
    /// Print results as JSON on stdout.
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Print only the Markdown comparison table on stdout.
    #[arg(long)]
    pub markdown: bool,
    /// No progress display.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Distinct users in coupon-rush, likes-storm and waiting-room [default: derived from -n].
    #[arg(long, default_value_t = 0)]
    pub users: u64,
    /// Coupons on offer in coupon-rush [default: half the users].
    #[arg(long, default_value_t = 0)]
    pub coupons: u64,
    /// Units of stock in stock-rush [default: a third of -n].
    #[arg(long, default_value_t = 0)]
    pub stock: u64,
    /// Posts in likes-storm and the like test.
    #[arg(long, default_value_t = 1000)]
    pub posts: u64,
    /// Zipf exponent for post popularity in likes-storm and the like test.
    #[arg(long, default_value_t = 1.0)]
    pub zipf: f64,
    /// Seed for every random choice [default: from the clock]; the report prints it.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Key prefix [default: bench:<run id>, unique per run].
    #[arg(long)]
    pub prefix: Option<String>,
    /// Send FLUSHDB to each target before the first run.
    #[arg(long)]
    pub flush: bool,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
}

impl Options {
    /// The runs to make, expanded and de-duplicated, in the order given; unknown names are an error.
    pub fn runs(&self) -> Result<Vec<&'static str>, String> {
        let mut requested: Vec<&str> = self
            .scenarios
            .iter()
            .chain(&self.tests)
            .map(|name| name.trim())
            .filter(|name| !name.is_empty())
            .collect();
        if requested.is_empty() {
            requested = DEFAULT_TESTS.to_vec();
        }
        let known: Vec<&'static str> = TESTS.iter().chain(&SCENARIOS).copied().collect();
        let mut runs = Vec::new();
        for name in requested {
            let lowered = name.to_ascii_lowercase();
            let expanded: Vec<&'static str> = if lowered == "all" {
                known.clone()
            } else {
                let found = known
                    .iter()
                    .find(|known| **known == lowered)
                    .ok_or_else(|| {
                        format!(
                            "unknown test or scenario {name:?}; known: {}",
                            known.join(", ")
                        )
                    })?;
                vec![*found]
            };
            for run in expanded {
                if !runs.contains(&run) {
                    runs.push(run);
                }
            }
        }
        Ok(runs)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.clients == 0 || self.requests == 0 || self.pipeline == 0 {
            return Err("-c, -n and -P must be at least 1".into());
        }
        if self.zipf < 0.0 || !self.zipf.is_finite() {
            return Err("--zipf must be a non-negative number".into());
        }
        self.runs().map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(arguments: &[&str]) -> Options {
        Options::try_parse_from(std::iter::once("dibs-bench").chain(arguments.iter().copied()))
            .expect("arguments parse")
    }

    #[test]
    fn redis_benchmark_spelling() {
        let options = parse(&[
            "-h",
            "bench-host",
            "-p",
            "7000",
            "-c",
            "4",
            "-n",
            "9",
            "-P",
            "16",
        ]);
        assert_eq!(options.host, "bench-host");
        assert_eq!(
            (options.port, options.clients, options.requests),
            (7000, 4, 9)
        );
        assert_eq!(options.pipeline, 16);
        assert_eq!(options.runs().unwrap(), DEFAULT_TESTS.to_vec());
    }

    #[test]
    fn tests_and_scenarios_combine() {
        let options = parse(&["coupon-rush", "-t", "ping,SET,ping"]);
        assert_eq!(options.runs().unwrap(), vec!["coupon-rush", "ping", "set"]);
        assert_eq!(
            parse(&["all"]).runs().unwrap().len(),
            TESTS.len() + SCENARIOS.len()
        );
        assert!(parse(&["-t", "lrange"]).runs().is_err());
    }
}
