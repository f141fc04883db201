//! waiting-room: a virtual queue in front of a sale. Users join, poll their position, and an admitter
//! lets them in a few at a time.
//!
//! Load: each client owns a slice of the users and joins them one by one (40% of its requests while it
//! has users left; one join in ten is a double click, the same JOIN sent again right after) and spends
//! the rest polling QUEUE.POS for users it already joined. A separate admitter connection calls
//! QUEUE.ADMIT for a small batch every few milliseconds for as long as the load runs, and records who was
//! admitted, in order.
//!
//! Check (`check`): for every user, the positions the server reported (join, re-join, polls) never move
//! backwards, a user who joined is never forgotten, and 0 (admitted) is only reported to admitted users;
//! no user is admitted twice or without joining; admission follows join order wherever the clients can
//! prove an order (a join acknowledged before another join was sent must be admitted first, and nobody
//! still waiting may have joined before someone admitted); at the end QUEUE.LEN equals joined minus
//! admitted, admitted users are at 0 and the waiting ones hold positions 1..=length in join order.

use super::{
    call_many, call_ok, evalsha, load_script, or_default, user_name, user_number, ScenarioResult,
    ScenarioSettings, Target, Verdict,
};
use crate::command;
use crate::random::Random;
use crate::resp::{Command, Connection, Value};
use crate::runner::{self, Worker};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const SCRIPT: &str = include_str!("../../lua/queue.lua");

const JOIN_PROBABILITY: f64 = 0.4;
const DOUBLE_CLICK_PROBABILITY: f64 = 0.1;
/// Users let in per admission round, and how often a round runs: slower than users arrive, so the line
/// grows and positions have room to move.
const ADMIT_BATCH: u64 = 5;
const ADMIT_INTERVAL: Duration = Duration::from_millis(5);
/// Long enough that no pass expires during a run, so an admitted user stays at 0.
const PASS_TTL_MS: u64 = 600_000;

/// One acknowledged JOIN or POS.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    pub user: u64,
    pub join: bool,
    /// The reported position: Some(0) admitted, Some(n) n-th in line, None unknown (null).
    pub position: Option<i64>,
    /// When the request was sent and when its reply was read.
    pub sent_at: Instant,
    pub acknowledged_at: Instant,
}

/// The room after the run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueFinal {
    pub length: i64,
    /// QUEUE.POS for every user that joined.
    pub positions: HashMap<u64, Option<i64>>,
}

/// Checks the observations (each user's in the order they were acknowledged), the admitter's record of
/// admissions in order, and the final state.
pub fn check(observations: &[Observation], admitted: &[u64], last: &QueueFinal) -> Verdict {
    let mut verdict = Verdict::default();
    // Each user's first acknowledged join: the window in which they entered the line.
    let mut joins: HashMap<u64, (Instant, Instant)> = HashMap::new();
    for observation in observations.iter().filter(|observation| observation.join) {
        joins
            .entry(observation.user)
            .or_insert((observation.sent_at, observation.acknowledged_at));
    }
    let mut admitted_set: HashSet<u64> = HashSet::new();
    for user in admitted {
        if !admitted_set.insert(*user) {
            verdict.fail(format!("user {user} admitted twice"));
        }
        if !joins.contains_key(user) {
            verdict.fail(format!("user {user} admitted without an acknowledged join"));
        }
    }

    let mut last_position: HashMap<u64, i64> = HashMap::new();
    for observation in observations {
        let user = observation.user;
        let action = if observation.join { "join" } else { "poll" };
        match observation.position {
            None => {
                if joins.contains_key(&user) {
                    verdict.fail(format!(
                        "user {user} vanished from the line ({action} answered null)"
                    ));
                }
            }
            Some(position) if position < 0 => {
                verdict.fail(format!("user {user} told position {position}"))
            }
            Some(position) => {
                if let Some(previous) = last_position.insert(user, position) {
                    if position > previous {
                        verdict.fail(format!(
                            "position moved backwards for user {user}: {previous} then {position} ({action})"
                        ));
                    }
                }
                if position == 0 && !admitted_set.contains(&user) {
                    verdict.fail(format!("user {user} told 0 (admitted) but never admitted"));
                }
            }
        }
    }

    check_join_order(admitted, &joins, "admitted", &mut verdict);
    let waiting: Vec<u64> = joins
        .keys()
        .filter(|user| !admitted_set.contains(user))
        .copied()
        .collect();
    // Nobody still waiting may have joined before someone who was let in.
    let latest_admitted_join = admitted
        .iter()
        .filter_map(|user| joins.get(user).map(|(sent, _)| (*sent, *user)))
        .max();
    let earliest_waiting_ack = waiting.iter().map(|user| (joins[user].1, *user)).min();
    if let (Some((sent, admitted_user)), Some((acknowledged, waiting_user))) =
        (latest_admitted_join, earliest_waiting_ack)
    {
        if acknowledged < sent {
            verdict.fail(format!(
                "user {admitted_user} admitted while user {waiting_user}, who joined first, still waits"
            ));
        }
    }

    let expected_length = waiting.len() as i64;
    if last.length != expected_length {
        verdict.fail(format!(
            "QUEUE.LEN is {}, expected {} joined - {} admitted = {expected_length}",
            last.length,
            joins.len(),
            admitted_set.len()
        ));
    }
    let mut line: Vec<(i64, u64)> = Vec::with_capacity(waiting.len());
    for (user, position) in &last.positions {
        match (admitted_set.contains(user), position) {
            (true, Some(0)) => {}
            (true, other) => verdict.fail(format!("admitted user {user} ends at {other:?}, not 0")),
            (false, Some(position)) if *position > 0 => line.push((*position, *user)),
            (false, other) => verdict.fail(format!("waiting user {user} ends at {other:?}")),
        }
    }
    line.sort_unstable();
    if let Some((index, (position, user))) = line
        .iter()
        .enumerate()
        .find(|(index, (position, _))| *position != *index as i64 + 1)
    {
        verdict.fail(format!(
            "final positions are not 1..={}: user {user} at {position}, expected {}",
            line.len(),
            index + 1
        ));
    }
    let final_order: Vec<u64> = line.iter().map(|(_, user)| *user).collect();
    check_join_order(&final_order, &joins, "placed", &mut verdict);
    verdict
}

/// Fails if a user later in `order` had their join acknowledged before an earlier user's join was sent:
/// then the later one provably joined first. One pass with a running minimum from the back.
fn check_join_order(
    order: &[u64],
    joins: &HashMap<u64, (Instant, Instant)>,
    what: &str,
    verdict: &mut Verdict,
) {
    let mut earliest_after: Option<(Instant, u64)> = None;
    for user in order.iter().rev() {
        let Some(&(sent, acknowledged)) = joins.get(user) else {
            continue;
        };
        if let Some((later_acknowledged, later_user)) = earliest_after {
            if later_acknowledged < sent {
                verdict.fail(format!(
                    "out of order: user {user} {what} before user {later_user}, who joined first"
                ));
            }
        }
        if earliest_after.is_none_or(|(earliest, _)| acknowledged < earliest) {
            earliest_after = Some((acknowledged, *user));
        }
    }
}

struct Recipe {
    target: Target,
    room: String,
    keys: Vec<String>,
    sha: String,
}

impl Recipe {
    fn join(&self, user: u64) -> Command {
        match self.target {
            Target::Dibs => command!("QUEUE.JOIN", self.room, user_name(user)),
            Target::Redis => evalsha(&self.sha, &self.keys, &["join".into(), user_name(user)]),
        }
    }

    fn position(&self, user: u64) -> Command {
        match self.target {
            Target::Dibs => command!("QUEUE.POS", self.room, user_name(user)),
            Target::Redis => evalsha(&self.sha, &self.keys, &["position".into(), user_name(user)]),
        }
    }

    fn admit(&self, count: u64) -> Command {
        match self.target {
            Target::Dibs => command!("QUEUE.ADMIT", self.room, count, PASS_TTL_MS),
            Target::Redis => evalsha(
                &self.sha,
                &self.keys,
                &["admit".into(), count.to_string(), PASS_TTL_MS.to_string()],
            ),
        }
    }

    fn length(&self) -> Command {
        match self.target {
            Target::Dibs => command!("QUEUE.LEN", self.room),
            Target::Redis => evalsha(&self.sha, &self.keys, &["length".into()]),
        }
    }
}

struct QueueWorker {
    recipe: Recipe,
    random: Random,
    /// This client's users are `client + 1 + k * clients` for k below `users_per_client`.
    client: u64,
    clients: u64,
    users_per_client: u64,
    next_join: u64,
    joined: Vec<u64>,
    pending_joins: Vec<u64>,
    in_flight: Vec<(u64, bool)>,
    observations: Vec<Observation>,
    malformed: Vec<String>,
}

impl Worker for QueueWorker {
    fn build(&mut self, count: usize, commands: &mut Vec<Command>) {
        self.in_flight.clear();
        for _ in 0..count {
            let can_join = self.next_join < self.users_per_client;
            let (user, join) = if let Some(user) = self.pending_joins.pop() {
                (user, true)
            } else if can_join && (self.joined.is_empty() || self.random.chance(JOIN_PROBABILITY)) {
                let user = self.client + 1 + self.next_join * self.clients;
                self.next_join += 1;
                self.joined.push(user);
                if self.random.chance(DOUBLE_CLICK_PROBABILITY) {
                    self.pending_joins.push(user);
                }
                (user, true)
            } else {
                let index = self.random.below(self.joined.len() as u64) as usize;
                (self.joined[index], false)
            };
            commands.push(if join {
                self.recipe.join(user)
            } else {
                self.recipe.position(user)
            });
            self.in_flight.push((user, join));
        }
    }

    fn absorb(&mut self, _commands: &[Command], replies: Vec<Value>, sent_at: Instant) {
        let acknowledged_at = Instant::now();
        for ((user, join), reply) in self.in_flight.drain(..).zip(replies) {
            let position = match &reply {
                Value::Null => None,
                other => match other.integer() {
                    Some(position) => Some(position),
                    None => {
                        self.malformed.push(format!("user {user}: {reply:?}"));
                        continue;
                    }
                },
            };
            self.observations.push(Observation {
                user,
                join,
                position,
                sent_at,
                acknowledged_at,
            });
        }
    }
}

/// Runs waiting-room once against `settings.target`.
pub fn run(settings: &ScenarioSettings) -> Result<ScenarioResult, String> {
    let load = &settings.load;
    let clients = load.clients as u64;
    let users = or_default(settings.users, load.requests / 5).max(clients);
    let room = format!("{{{}:room}}", settings.prefix);
    let keys = vec![
        format!("{room}:line"),
        format!("{room}:tickets"),
        format!("{room}:passes"),
    ];
    let mut admin = Connection::open(&load.host, load.port)?;
    let sha = match settings.target {
        Target::Dibs => String::new(),
        Target::Redis => load_script(&mut admin, SCRIPT)?,
    };
    let recipe = || Recipe {
        target: settings.target,
        room: room.clone(),
        keys: keys.clone(),
        sha: sha.clone(),
    };
    let workers = (0..clients)
        .map(|client| QueueWorker {
            recipe: recipe(),
            random: Random::new(settings.seed ^ (client + 1).wrapping_mul(0x5851_F42D)),
            client,
            clients,
            users_per_client: users.div_ceil(clients),
            next_join: 0,
            joined: Vec::new(),
            pending_joins: Vec::new(),
            in_flight: Vec::new(),
            observations: Vec::new(),
            malformed: Vec::new(),
        })
        .collect();

    let stop = AtomicBool::new(false);
    let mut admitter = Connection::open(&load.host, load.port)?;
    let admit_recipe = recipe();
    let (load_result, admissions) = std::thread::scope(|scope| {
        let admitter_thread = scope.spawn(|| -> Result<Vec<u64>, String> {
            let mut admitted = Vec::new();
            while !stop.load(Ordering::Acquire) {
                let reply = call_ok(&mut admitter, admit_recipe.admit(ADMIT_BATCH))?;
                for user in reply.array().unwrap_or(&[]) {
                    let number = user.text().as_deref().and_then(user_number);
                    admitted.push(number.ok_or_else(|| format!("admitted {user:?}"))?);
                }
                std::thread::sleep(ADMIT_INTERVAL);
            }
            Ok(admitted)
        });
        let load_result = runner::run(load, workers);
        stop.store(true, Ordering::Release);
        let admissions = admitter_thread.join().expect("admitter thread panicked");
        (load_result, admissions)
    });
    let (workers, outcome) = load_result?;
    let admitted = admissions?;

    let mut observations = Vec::new();
    let mut malformed = Vec::new();
    let mut joined = Vec::new();
    for worker in workers {
        observations.extend(worker.observations);
        malformed.extend(worker.malformed);
        joined.extend(worker.joined);
    }
    let closer = recipe();
    let length = call_ok(&mut admin, closer.length())?
        .integer()
        .ok_or("QUEUE.LEN did not answer a number")?;
    let commands: Vec<Command> = joined.iter().map(|user| closer.position(*user)).collect();
    let positions = joined
        .iter()
        .zip(call_many(&mut admin, &commands)?)
        .map(|(user, reply)| (*user, reply.integer()))
        .collect();
    let last = QueueFinal { length, positions };
    let mut verdict = check(&observations, &admitted, &last);
    for problem in malformed {
        verdict.fail(format!("bad reply: {problem}"));
    }
    let detail = format!(
        "{} joined, {} admitted, {} still waiting",
        joined.len(),
        admitted.len(),
        last.length
    );
    Ok(ScenarioResult::new(
        "waiting-room",
        settings.target,
        &outcome,
        verdict,
        detail,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds observations on a synthetic clock: `tick` t is `t` milliseconds after a fixed origin, and a
    /// request sent at t is acknowledged at t + 1.
    struct Clock(Instant);

    impl Clock {
        fn at(&self, tick: u64) -> Instant {
            self.0 + Duration::from_millis(tick)
        }

        fn observe(&self, tick: u64, user: u64, join: bool, position: Option<i64>) -> Observation {
            Observation {
                user,
                join,
                position,
                sent_at: self.at(tick),
                acknowledged_at: self.at(tick + 1),
            }
        }
    }

    /// Users 1, 2, 3 join in that order; 1 and 2 are admitted; 3 waits at position 1.
    fn right_outcome(clock: &Clock) -> (Vec<Observation>, Vec<u64>, QueueFinal) {
        let observations = vec![
            clock.observe(0, 1, true, Some(1)),
            clock.observe(10, 2, true, Some(2)),
            clock.observe(11, 2, true, Some(2)), // double click keeps the ticket
            clock.observe(20, 3, true, Some(3)),
            clock.observe(30, 3, false, Some(2)),
            clock.observe(40, 1, false, Some(0)),
            clock.observe(50, 3, false, Some(1)),
            clock.observe(60, 2, false, Some(0)),
        ];
        let last = QueueFinal {
            length: 1,
            positions: HashMap::from([(1, Some(0)), (2, Some(0)), (3, Some(1))]),
        };
        (observations, vec![1, 2], last)
    }

    #[test]
    fn passes_a_right_outcome() {
        let clock = Clock(Instant::now());
        let (observations, admitted, last) = right_outcome(&clock);
        let verdict = check(&observations, &admitted, &last);
        assert!(verdict.is_correct(), "{verdict:?}");
    }

    #[test]
    fn catches_a_backwards_position() {
        let clock = Clock(Instant::now());
        let (mut observations, admitted, last) = right_outcome(&clock);
        observations[6] = clock.observe(50, 3, false, Some(4));
        let verdict = check(&observations, &admitted, &last);
        assert!(
            verdict.mentions("moved backwards for user 3: 2 then 4"),
            "{verdict:?}"
        );
    }

    #[test]
    fn catches_admission_out_of_order() {
        let clock = Clock(Instant::now());
        let (observations, _, mut last) = right_outcome(&clock);
        // 2 admitted before 1, and 3 admitted while 1 (who joined first) still waits.
        let admitted = vec![2, 1];
        let verdict = check(&observations, &admitted, &last);
        assert!(
            verdict.mentions("out of order: user 2 admitted before user 1"),
            "{verdict:?}"
        );
        let admitted = vec![2, 3];
        last.positions = HashMap::from([(1, Some(1)), (2, Some(0)), (3, Some(0))]);
        let verdict = check(&observations, &admitted, &last);
        assert!(verdict.mentions("still waits"), "{verdict:?}");
    }

    #[test]
    fn catches_double_admission_and_false_zero() {
        let clock = Clock(Instant::now());
        let (mut observations, _, last) = right_outcome(&clock);
        observations.push(clock.observe(70, 3, false, Some(0)));
        let verdict = check(&observations, &[1, 2, 2], &last);
        assert!(verdict.mentions("user 2 admitted twice"), "{verdict:?}");
        assert!(verdict.mentions("user 3 told 0"), "{verdict:?}");
    }

    #[test]
    fn catches_a_wrong_final_line() {
        let clock = Clock(Instant::now());
        let (observations, admitted, mut last) = right_outcome(&clock);
        last.length = 2;
        last.positions.insert(3, Some(2));
        let verdict = check(&observations, &admitted, &last);
        assert!(verdict.mentions("QUEUE.LEN is 2"), "{verdict:?}");
        assert!(
            verdict.mentions("final positions are not 1..=1"),
            "{verdict:?}"
        );
    }

    #[test]
    fn catches_a_forgotten_user() {
        let clock = Clock(Instant::now());
        let (mut observations, admitted, last) = right_outcome(&clock);
        observations[4] = clock.observe(30, 3, false, None);
        let verdict = check(&observations, &admitted, &last);
        assert!(verdict.mentions("user 3 vanished"), "{verdict:?}");
    }
}
