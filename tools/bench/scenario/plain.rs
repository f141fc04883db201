//! The plain redis-benchmark tests: ping, set, get, incr, sadd, and like. They measure raw request
//! handling; the only check is that every reply has the shape the command promises (PONG, OK, a bulk or
//! nil, an integer, `[added, count]`).
//!
//! Keys are `<prefix>:key:<n>` (SET/GET), `<prefix>:counter:<n>` (INCR) and `<prefix>:set` (SADD members
//! `element:<n>`), with n drawn from `0..keyspace` (`-r`) or fixed at 0 when no keyspace is given, as
//! redis-benchmark does with `__rand_int__`.
//!
//! `like` is the throughput half of the likes benchmark: `LIKE.ADD <prefix>:post:<rank> <user>` on dibs
//! and `SADD` of the same pair on Redis, the post drawn from Zipf over `--posts` (exponent `--zipf`) and
//! the user a decimal integer in 1..=50,000,000, the shape the likes memory benchmark loads.

use super::{ScenarioResult, ScenarioSettings, Target, Verdict};
use crate::random::{Random, Zipf};
use crate::resp::{Command, Value};
use crate::runner::{self, Worker};
use std::time::Instant;

/// The test names `-t` accepts, in the order they run.
pub const TESTS: [&str; 6] = ["ping", "set", "get", "incr", "sadd", "like"];
/// What runs when no test or scenario is named: redis-benchmark's own plain tests.
pub const DEFAULT_TESTS: [&str; 5] = ["ping", "set", "get", "incr", "sadd"];
/// The largest user id `like` draws, as in the likes memory benchmark.
const LIKE_USER_ID_MAX: u64 = 50_000_000;

struct PlainWorker {
    test: &'static str,
    target: Target,
    /// Post popularity for `like`; None for the other tests.
    posts: Option<Zipf>,
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
                "like" => {
                    let posts = self.posts.as_ref().expect("like has a post distribution");
                    let post = posts.sample(&mut self.random);
                    let user = 1 + self.random.below(LIKE_USER_ID_MAX);
                    let name = match self.target {
                        Target::Dibs => b"LIKE.ADD".to_vec(),
                        Target::Redis => b"SADD".to_vec(),
                    };
                    vec![
                        name,
                        format!("{prefix}:post:{post}").into_bytes(),
                        user.to_string().into_bytes(),
                    ]
                }
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
                "like" if self.target == Target::Dibs => reply.array().is_some_and(|items| {
                    items.len() == 2 && items.iter().all(|item| matches!(item, Value::Integer(_)))
                }),
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
            target: settings.target,
            posts: (test == "like")
                .then(|| Zipf::new(settings.posts.max(1), settings.zipf_exponent)),
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
