//! The traffic scenarios and what they share: the target a scenario talks to, the verdict a checker
//! returns, and the few helpers every scenario needs (field/value replies, Lua script loading).
//!
//! Every scenario has the same shape: set up keys unique to this run, drive load with one `Worker` per
//! client that records what the clients were acknowledged (the ledger), read the server's final state,
//! then hand ledger and final state to a pure `check` function. The checks are pure so the unit tests can
//! feed them deliberately wrong outcomes and see them caught.

pub mod coupon;
pub mod likes;
pub mod plain;
pub mod queue;
pub mod stock;

use crate::histogram::LatencySummary;
use crate::resp::{Command, Connection, Value};
use crate::runner::{LoadOutcome, LoadSettings};
use std::collections::HashMap;
use std::fmt;

/// Which server and which recipe a scenario uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// dibs' own commands (COUPON.*, STOCK.*, LIKE.*, QUEUE.*).
    Dibs,
    /// A stock Redis with the Lua scripts, sets and sorted sets in tools/lua.
    Redis,
}

impl fmt::Display for Target {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Target::Dibs => "dibs",
            Target::Redis => "redis",
        })
    }
}

/// Everything a scenario needs to run once against one server.
#[derive(Clone, Debug)]
pub struct ScenarioSettings {
    pub load: LoadSettings,
    pub target: Target,
    /// Prepended to every key so repeated runs never see each other's state.
    pub prefix: String,
    pub seed: u64,
    /// Distinct users (coupon-rush, likes-storm, waiting-room); 0 picks a default from `-n`.
    pub users: u64,
    /// Coupons on offer in coupon-rush; 0 picks a default.
    pub coupons: u64,
    /// Units of stock in stock-rush; 0 picks a default.
    pub stock: u64,
    /// Posts in likes-storm.
    pub posts: u64,
    pub zipf_exponent: f64,
    /// Keyspace for the plain tests (`-r`); 0 means one fixed key.
    pub keyspace: u64,
    /// Value size in bytes for SET (`-d`).
    pub data_size: usize,
}

/// Violations found by a checker. Empty means the outcome was correct.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    /// The first few violations in words; `violation_count` counts all of them.
    pub violations: Vec<String>,
    pub violation_count: u64,
}

/// A broken invariant tends to break thousands of times; keeping the first few is enough to debug.
const VIOLATIONS_KEPT_MAX: usize = 20;

impl Verdict {
    pub fn fail(&mut self, message: impl Into<String>) {
        self.violation_count += 1;
        if self.violations.len() < VIOLATIONS_KEPT_MAX {
            self.violations.push(message.into());
        }
    }

    /// Adds another checker's findings to these, keeping the count exact.
    pub fn merge(&mut self, other: Verdict) {
        let kept = other.violations.len() as u64;
        for violation in other.violations {
            self.fail(violation);
        }
        self.violation_count += other.violation_count - kept;
    }

    pub fn is_correct(&self) -> bool {
        self.violation_count == 0
    }

    /// "correct" or "VIOLATED (n): first problem".
    pub fn describe(&self) -> String {
        match self.violations.first() {
            None => "correct".to_string(),
            Some(first) => format!("VIOLATED ({}): {first}", self.violation_count),
        }
    }

    /// True if any kept violation mentions `needle`; for tests.
    #[cfg(test)]
    pub fn mentions(&self, needle: &str) -> bool {
        self.violations
            .iter()
            .any(|message| message.contains(needle))
    }
}

/// The result of one scenario (or plain test) against one target.
#[derive(Clone, Debug)]
pub struct ScenarioResult {
    pub name: String,
    pub target: String,
    pub requests: u64,
    pub requests_per_second: f64,
    pub latency: LatencySummary,
    pub verdict: Verdict,
    /// A one-line account of the end state, e.g. "issued 500 of 500 coupons to 2000 users".
    pub detail: String,
}

impl ScenarioResult {
    pub fn new(
        name: &str,
        target: Target,
        outcome: &LoadOutcome,
        mut verdict: Verdict,
        detail: String,
    ) -> ScenarioResult {
        if outcome.error_replies > 0 {
            verdict.fail(format!(
                "{} error replies, first: {}",
                outcome.error_replies,
                outcome.first_error.as_deref().unwrap_or("?")
            ));
        }
        ScenarioResult {
            name: name.to_string(),
            target: target.to_string(),
            requests: outcome.requests,
            requests_per_second: outcome.requests_per_second(),
            latency: outcome.latencies.summary(),
            verdict,
            detail,
        }
    }
}

/// Reads a flat field/value reply (`INFO`-style arrays, or a RESP3 map) into a map by field name.
pub fn fields(reply: &Value) -> Result<HashMap<String, Value>, String> {
    let items = reply
        .array()
        .ok_or_else(|| format!("expected a field/value array, got {reply:?}"))?;
    if items.len() % 2 != 0 {
        return Err(format!("odd field/value array of {} items", items.len()));
    }
    let mut map = HashMap::new();
    for pair in items.chunks(2) {
        let name = pair[0]
            .text()
            .ok_or_else(|| format!("field name is not a string: {:?}", pair[0]))?;
        map.insert(name.to_ascii_lowercase(), pair[1].clone());
    }
    Ok(map)
}

/// An integer field of a field/value reply.
pub fn integer_field(map: &HashMap<String, Value>, name: &str) -> Result<i64, String> {
    map.get(name)
        .and_then(Value::integer)
        .ok_or_else(|| format!("field {name:?} missing or not an integer"))
}

/// Sends one command and refuses an error reply: for setup and final-state reads, where an error means the
/// scenario cannot go on.
pub fn call_ok(connection: &mut Connection, command: Command) -> Result<Value, String> {
    let shown = String::from_utf8_lossy(&command[0]).into_owned();
    let reply = connection.call(command)?;
    if let Some(message) = reply.error() {
        return Err(format!("{shown} failed: {message}"));
    }
    Ok(reply)
}

/// Sends many read commands pipelined in chunks and returns their replies in order.
pub fn call_many(connection: &mut Connection, commands: &[Command]) -> Result<Vec<Value>, String> {
    const CHUNK: usize = 512;
    let mut replies = Vec::with_capacity(commands.len());
    for chunk in commands.chunks(CHUNK) {
        for reply in connection.round_trip(chunk, |_| {})? {
            if let Some(message) = reply.error() {
                return Err(format!("final-state read failed: {message}"));
            }
            replies.push(reply);
        }
    }
    Ok(replies)
}

/// Loads a Lua script with SCRIPT LOAD and returns its SHA1 for EVALSHA.
pub fn load_script(connection: &mut Connection, source: &str) -> Result<String, String> {
    let reply = call_ok(connection, crate::command!("SCRIPT", "LOAD", source))?;
    reply
        .text()
        .ok_or_else(|| format!("SCRIPT LOAD answered {reply:?}"))
}

/// `EVALSHA sha numkeys keys... args...`
pub fn evalsha(sha: &str, keys: &[String], arguments: &[String]) -> Command {
    let mut command: Command = vec![
        b"EVALSHA".to_vec(),
        sha.as_bytes().to_vec(),
        keys.len().to_string().into_bytes(),
    ];
    command.extend(keys.iter().map(|key| key.as_bytes().to_vec()));
    command.extend(
        arguments
            .iter()
            .map(|argument| argument.as_bytes().to_vec()),
    );
    command
}

/// A user's wire name, and back. Users are numbers in the ledger and `u<number>` on the wire.
pub fn user_name(user: u64) -> String {
    format!("u{user}")
}

pub fn user_number(name: &str) -> Option<u64> {
    name.strip_prefix('u')?.parse().ok()
}

/// A number that defaults to `default` when the option was left at 0.
pub fn or_default(value: u64, default: u64) -> u64 {
    if value == 0 {
        default.max(1)
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_counts_beyond_what_it_keeps() {
        let mut verdict = Verdict::default();
        assert!(verdict.is_correct());
        assert_eq!(verdict.describe(), "correct");
        for index in 0..100 {
            verdict.fail(format!("problem {index}"));
        }
        assert_eq!(verdict.violation_count, 100);
        assert_eq!(verdict.violations.len(), VIOLATIONS_KEPT_MAX);
        assert_eq!(verdict.describe(), "VIOLATED (100): problem 0");
    }

    #[test]
    fn reads_field_value_arrays() {
        let reply = Value::Array(vec![
            Value::Bulk(b"total".to_vec()),
            Value::Integer(10),
            Value::Simple("STATE".into()),
            Value::Bulk(b"open".to_vec()),
        ]);
        let map = fields(&reply).unwrap();
        assert_eq!(integer_field(&map, "total"), Ok(10));
        assert!(integer_field(&map, "state").is_err());
        assert!(fields(&Value::Array(vec![Value::Integer(1)])).is_err());
        assert_eq!(user_number(&user_name(42)), Some(42));
    }
}
