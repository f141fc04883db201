//! The plain redis-benchmark tests: ping, set, get, incr, sadd. They measure raw request handling; the
//! only check is that every reply has the shape the command promises (PONG, OK, a bulk or nil, an integer).
//!
//! Keys are `<prefix>:key:<n>` (SET/GET), `<prefix>:counter:<n>` (INCR) and `<prefix>:set` (SADD members
//! `element:<n>`), with n drawn from `0..keyspace` (`-r`) or fixed at 0 when no keyspace is given, as
//! redis-benchmark does with `__rand_int__`.

use super::{ScenarioResult, ScenarioSettings, Verdict};
use crate::random::Random;
use crate::resp::{Command, Value};
use crate::runner::{self, Worker};
use std::time::Instant;

/// The test names `-t` accepts, in the order they run.
pub const TESTS: [&str; 5] = ["ping", "set", "get", "incr", "sadd"];

struct PlainWorker {
    test: &'static str,
    prefix: String,
    value: Vec<u8>,
    keyspace: u64,
    random: Random,
    verdict: Verdict,
}

impl PlainWorker {
    fn next_index(&mut self) -> u64 {
        if self.keyspace == 0 {
            0
        } else {
            self.random.below(self.keyspace)
        }
    }
}

impl Worker for PlainWorker {
    fn build(&mut self, count: usize, commands: &mut Vec<Command>) {
        for _ in 0..count {
            let index = self.next_index();
            let prefix = &self.prefix;
            let command: Command = match self.test {
                "ping" => vec![b"PING".to_vec()],
                "set" => vec![
                    b"SET".to_vec(),
                    format!("{prefix}:key:{index}").into_bytes(),
                    self.value.clone(),
                ],
                "get" => vec![
                    b"GET".to_vec(),
                    format!("{prefix}:key:{index}").into_bytes(),
                ],
                "incr" => vec![
                    b"INCR".to_vec(),
                    format!("{prefix}:counter:{index}").into_bytes(),
                ],
                "sadd" => vec![
                    b"SADD".to_vec(),
                    format!("{prefix}:set").into_bytes(),
                    format!("element:{index}").into_bytes(),
                ],
                other => unreachable!("unknown test {other} passed validation"),
            };
            commands.push(command);
        }
    }

    fn absorb(&mut self, _commands: &[Command], replies: Vec<Value>, _sent_at: Instant) {
        for reply in replies {
            if reply.error().is_some() {
                continue; // counted by the runner
            }
            let expected = match self.test {
                "ping" => reply.text().as_deref() == Some("PONG"),
                "set" => reply.text().as_deref() == Some("OK"),
                "get" => matches!(reply, Value::Bulk(_) | Value::Null),
                _ => matches!(reply, Value::Integer(_)),
            };
            if !expected {
                self.verdict
                    .fail(format!("{} answered {reply:?}", self.test.to_uppercase()));
            }
        }
    }
}

/// Runs one plain test; `test` must be one of `TESTS`.
pub fn run(test: &'static str, settings: &ScenarioSettings) -> Result<ScenarioResult, String> {
    let workers = (0..settings.load.clients)
        .map(|client| PlainWorker {
            test,
            prefix: settings.prefix.clone(),
            value: vec![b'x'; settings.data_size],
            keyspace: settings.keyspace,
            random: Random::new(settings.seed.wrapping_add(client as u64 * 7919)),
            verdict: Verdict::default(),
        })
        .collect();
    let (workers, outcome) = runner::run(&settings.load, workers)?;
    let mut verdict = Verdict::default();
    for worker in workers {
        verdict.merge(worker.verdict);
    }
    Ok(ScenarioResult::new(
        test,
        settings.target,
        &outcome,
        verdict,
        format!("{} replies of the right shape", test.to_uppercase()),
    ))
}
