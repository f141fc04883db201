//! coupon-rush: N users race for K numbered coupons, one per user.
//!
//! Load: every request is COUPON.ISSUE for a user drawn uniformly from 1..=N, so the same user shows up
//! again and again (duplicates), and about one request in five is a retry that re-sends an earlier request
//! with the same request ID, as a client would after a timeout.
//!
//! Check (`check`): the ISSUED acknowledgements number exactly min(K, distinct users); their numbers are
//! exactly 1..=issued with none twice; no user is issued twice; ALREADY carries the user's first number;
//! one request ID never yields two different numbers; SOLDOUT only once all K are gone; and the server's
//! final holders (COUPON.HOLDERS, or the Redis hash) equal what the clients were told.

use super::{
    call_ok, evalsha, fields, integer_field, load_script, or_default, user_name, user_number,
    ScenarioResult, ScenarioSettings, Target, Verdict,
};
use crate::command;
use crate::random::Random;
use crate::resp::{Command, Connection, Value};
use crate::runner::{self, Worker};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

const SCRIPT: &str = include_str!("../../lua/coupon_issue.lua");

/// Share of requests that re-send an earlier request unchanged.
const RETRY_PROBABILITY: f64 = 0.2;
/// How many recent requests a client remembers for retries.
const RETRY_WINDOW: usize = 64;

/// What one COUPON.ISSUE was answered.
#[derive(Clone, Debug, PartialEq)]
pub enum IssueStatus {
    Issued,
    Already,
    SoldOut,
    NotStarted,
    Ended,
    /// An error reply or a reply of the wrong shape, with its text.
    Malformed(String),
}

/// One acknowledged request in the client-side ledger.
#[derive(Clone, Debug, PartialEq)]
pub struct IssueAck {
    pub user: u64,
    pub request: String,
    pub status: IssueStatus,
    pub number: Option<u64>,
}

/// The server's state after the run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CouponFinal {
    pub issued: u64,
    pub remaining: i64,
    /// (user, number) for every holder.
    pub holders: Vec<(u64, u64)>,
}

/// Checks the ledger against the final state for an event of `total` coupons, one per user.
pub fn check(total: u64, acks: &[IssueAck], last: &CouponFinal) -> Verdict {
    let mut verdict = Verdict::default();
    let distinct_users: HashSet<u64> = acks.iter().map(|ack| ack.user).collect();
    let mut issued_to: HashMap<u64, u64> = HashMap::new();
    let mut users_of_number: BTreeMap<u64, u64> = BTreeMap::new();
    let mut numbers_of_request: HashMap<&str, HashSet<u64>> = HashMap::new();
    let mut issued_count = 0u64;
    let mut sold_out_seen = false;
    // A retry with the same request ID replays the first reply (dibs's ID contract), so a second ISSUED
    // with the same number for the same request is that one issue acknowledged again, not a new one.
    let mut issued_by_request: HashMap<&str, u64> = HashMap::new();

    for ack in acks {
        if let (IssueStatus::Issued, Some(number)) = (&ack.status, ack.number) {
            if issued_by_request.get(ack.request.as_str()) == Some(&number) {
                continue;
            }
            issued_by_request.insert(ack.request.as_str(), number);
        }
        match &ack.status {
            IssueStatus::Issued => {
                issued_count += 1;
                let Some(number) = ack.number else {
                    verdict.fail(format!("ISSUED without a number for user {}", ack.user));
                    continue;
                };
                if number == 0 || number > total {
                    verdict.fail(format!(
                        "over-issue: coupon number {number} outside 1..={total} (user {})",
                        ack.user
                    ));
                }
                if let Some(first) = issued_to.insert(ack.user, number) {
                    verdict.fail(format!(
                        "user {} issued twice: numbers {first} and {number}",
                        ack.user
                    ));
                }
                if let Some(other) = users_of_number.insert(number, ack.user) {
                    verdict.fail(format!(
                        "duplicate: coupon number {number} issued to users {other} and {}",
                        ack.user
                    ));
                }
            }
            IssueStatus::SoldOut => sold_out_seen = true,
            IssueStatus::Already => {}
            IssueStatus::NotStarted | IssueStatus::Ended => verdict.fail(format!(
                "{:?} for an event with no time window (user {})",
                ack.status, ack.user
            )),
            IssueStatus::Malformed(text) => {
                verdict.fail(format!("bad reply for user {}: {text}", ack.user))
            }
        }
        if let Some(number) = ack.number {
            numbers_of_request
                .entry(ack.request.as_str())
                .or_default()
                .insert(number);
        }
    }

    // ALREADY must repeat the number the user was issued; checked after the pass because the ISSUED ack
    // of another client may come later in the merged ledger.
    for ack in acks.iter().filter(|ack| ack.status == IssueStatus::Already) {
        match (issued_to.get(&ack.user), ack.number) {
            (Some(first), Some(number)) if *first != number => verdict.fail(format!(
                "user {} told ALREADY with number {number} but was issued {first}",
                ack.user
            )),
            (None, _) => verdict.fail(format!(
                "user {} told ALREADY but no ISSUED was acknowledged",
                ack.user
            )),
            _ => {}
        }
    }
    for (request, numbers) in &numbers_of_request {
        if numbers.len() > 1 {
            verdict.fail(format!(
                "request {request} yielded different numbers {numbers:?}"
            ));
        }
    }

    let expected = total.min(distinct_users.len() as u64);
    if issued_count > total {
        verdict.fail(format!(
            "over-issue: {issued_count} ISSUED acknowledgements for {total} coupons"
        ));
    } else if issued_count != expected {
        verdict.fail(format!(
            "{issued_count} coupons issued, expected exactly min({total}, {} users) = {expected}",
            distinct_users.len()
        ));
    }
    if sold_out_seen && issued_count < total {
        verdict.fail(format!(
            "SOLDOUT answered while only {issued_count} of {total} coupons were issued"
        ));
    }
    if let Some(missing) = (1..=issued_count.min(total)).find(|n| !users_of_number.contains_key(n))
    {
        verdict.fail(format!(
            "numbers are not 1..={issued_count}: {missing} was never issued"
        ));
    }

    // The server's own account must match what the clients were told.
    if last.issued != issued_count {
        verdict.fail(format!(
            "server reports {} issued, clients were acknowledged {issued_count}",
            last.issued
        ));
    }
    if last.remaining != total as i64 - issued_count as i64 {
        verdict.fail(format!(
            "server reports {} remaining, expected {}",
            last.remaining,
            total as i64 - issued_count as i64
        ));
    }
    let mut server_holders: HashMap<u64, u64> = HashMap::new();
    let mut server_numbers: HashSet<u64> = HashSet::new();
    for &(user, number) in &last.holders {
        if server_holders.insert(user, number).is_some() {
            verdict.fail(format!("server lists user {user} as holder twice"));
        }
        if !server_numbers.insert(number) {
            verdict.fail(format!("server lists coupon number {number} twice"));
        }
    }
    if server_holders != issued_to {
        let unacknowledged = server_holders
            .iter()
            .find(|(user, number)| issued_to.get(user) != Some(number));
        let lost = issued_to
            .iter()
            .find(|(user, number)| server_holders.get(user) != Some(number));
        verdict.fail(format!(
            "server holders ({}) differ from acknowledged issues ({}): server-only {unacknowledged:?}, \
             acknowledged-only {lost:?}",
            server_holders.len(),
            issued_to.len()
        ));
    }
    verdict
}

/// One client: picks users, retries now and then, and records every reply.
struct IssueWorker {
    target: Target,
    event: String,
    keys: Vec<String>,
    sha: String,
    users: u64,
    client: usize,
    sequence: u64,
    random: Random,
    recent: Vec<(u64, String)>,
    /// (user, request id) of each command in the batch in flight.
    in_flight: Vec<(u64, String)>,
    acks: Vec<IssueAck>,
}

impl IssueWorker {
    fn issue_command(&self, user: u64, request: &str) -> Command {
        match self.target {
            Target::Dibs => command!("COUPON.ISSUE", self.event, user_name(user), "ID", request),
            Target::Redis => evalsha(
                &self.sha,
                &self.keys,
                &[user_name(user), request.to_string()],
            ),
        }
    }
}

impl Worker for IssueWorker {
    fn build(&mut self, count: usize, commands: &mut Vec<Command>) {
        self.in_flight.clear();
        for _ in 0..count {
            let (user, request) =
                if !self.recent.is_empty() && self.random.chance(RETRY_PROBABILITY) {
                    let index = self.random.below(self.recent.len() as u64) as usize;
                    self.recent[index].clone()
                } else {
                    self.sequence += 1;
                    let user = 1 + self.random.below(self.users);
                    let request = format!("c{}-{}", self.client, self.sequence);
                    if self.recent.len() == RETRY_WINDOW {
                        let slot = self.random.below(RETRY_WINDOW as u64) as usize;
                        self.recent[slot] = (user, request.clone());
                    } else {
                        self.recent.push((user, request.clone()));
                    }
                    (user, request)
                };
            commands.push(self.issue_command(user, &request));
            self.in_flight.push((user, request));
        }
    }

    fn absorb(&mut self, _commands: &[Command], replies: Vec<Value>, _sent_at: Instant) {
        for ((user, request), reply) in self.in_flight.drain(..).zip(replies) {
            let (status, number) = decode_issue(&reply);
            self.acks.push(IssueAck {
                user,
                request,
                status,
                number,
            });
        }
    }
}

/// `[status, number|null, remaining]` to a status and number.
fn decode_issue(reply: &Value) -> (IssueStatus, Option<u64>) {
    let malformed = || (IssueStatus::Malformed(format!("{reply:?}")), None);
    let Some(items) = reply.array() else {
        return malformed();
    };
    let (Some(status), Some(number)) = (items.first().and_then(Value::text), items.get(1)) else {
        return malformed();
    };
    let number = number.integer().map(|number| number as u64);
    let status = match status.to_ascii_uppercase().as_str() {
        "ISSUED" => IssueStatus::Issued,
        "ALREADY" => IssueStatus::Already,
        "SOLDOUT" => IssueStatus::SoldOut,
        "NOTSTARTED" => IssueStatus::NotStarted,
        "ENDED" => IssueStatus::Ended,
        _ => return malformed(),
    };
    (status, number)
}

/// Runs coupon-rush once against `settings.target`.
pub fn run(settings: &ScenarioSettings) -> Result<ScenarioResult, String> {
    let load = &settings.load;
    let users = or_default(settings.users, load.requests / 4);
    let total = or_default(settings.coupons, users / 2);
    let event = format!("{}:coupon", settings.prefix);
    // One hash tag so every key of the event lands in one slot, as a cluster would need for the script.
    let keys: Vec<String> = ["remaining", "holders", "numbers", "issued"]
        .iter()
        .map(|name| format!("{{{event}}}:{name}"))
        .collect();
    let mut admin = Connection::open(&load.host, load.port)?;
    let mut sha = String::new();
    match settings.target {
        Target::Dibs => {
            call_ok(
                &mut admin,
                command!("COUPON.CREATE", event, total, "PERUSER", 1),
            )?;
        }
        Target::Redis => {
            sha = load_script(&mut admin, SCRIPT)?;
            call_ok(&mut admin, command!("SET", keys[0], total))?;
        }
    }
    let workers = (0..load.clients)
        .map(|client| IssueWorker {
            target: settings.target,
            event: event.clone(),
            keys: keys.clone(),
            sha: sha.clone(),
            users,
            client,
            sequence: 0,
            random: Random::new(settings.seed ^ (client as u64 + 1).wrapping_mul(0x9E37_79B9)),
            recent: Vec::new(),
            in_flight: Vec::new(),
            acks: Vec::new(),
        })
        .collect();
    let (workers, outcome) = runner::run(load, workers)?;
    let acks: Vec<IssueAck> = workers.into_iter().flat_map(|worker| worker.acks).collect();
    let last = read_final(&mut admin, settings.target, &event, &keys)?;
    let verdict = check(total, &acks, &last);
    let distinct = acks
        .iter()
        .map(|ack| ack.user)
        .collect::<HashSet<_>>()
        .len();
    let detail = format!(
        "issued {} of {total} coupons; {distinct} distinct users in {} requests",
        last.issued,
        acks.len()
    );
    Ok(ScenarioResult::new(
        "coupon-rush",
        settings.target,
        &outcome,
        verdict,
        detail,
    ))
}

fn read_final(
    admin: &mut Connection,
    target: Target,
    event: &str,
    keys: &[String],
) -> Result<CouponFinal, String> {
    let mut last = CouponFinal::default();
    match target {
        Target::Dibs => {
            let info = fields(&call_ok(admin, command!("COUPON.INFO", event))?)?;
            last.issued = integer_field(&info, "issued")? as u64;
            last.remaining = integer_field(&info, "remaining")?;
            let mut cursor = "0".to_string();
            loop {
                let reply = call_ok(admin, command!("COUPON.HOLDERS", event, cursor, 1000))?;
                let items = reply.array().filter(|items| items.len() == 2);
                let (next, page) = match items {
                    Some([next, page]) => (next.text(), page.array()),
                    _ => (None, None),
                };
                let (Some(next), Some(page)) = (next, page) else {
                    return Err(format!("COUPON.HOLDERS answered {reply:?}"));
                };
                push_pairs(page, &mut last.holders)?;
                if next == "0" {
                    break;
                }
                cursor = next;
            }
        }
        Target::Redis => {
            last.remaining = call_ok(admin, command!("GET", keys[0]))?
                .integer()
                .unwrap_or(0);
            last.issued = call_ok(admin, command!("GET", keys[3]))?
                .integer()
                .unwrap_or(0) as u64;
            let numbers = call_ok(admin, command!("HGETALL", keys[2]))?;
            push_pairs(numbers.array().unwrap_or(&[]), &mut last.holders)?;
        }
    }
    Ok(last)
}

/// `[user, number, user, number, ...]` onto `holders`.
fn push_pairs(items: &[Value], holders: &mut Vec<(u64, u64)>) -> Result<(), String> {
    for pair in items.chunks(2) {
        let user = pair[0].text().as_deref().and_then(user_number);
        let number = pair.get(1).and_then(Value::integer);
        match (user, number) {
            (Some(user), Some(number)) if number > 0 => holders.push((user, number as u64)),
            _ => return Err(format!("holder entry not understood: {pair:?}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(user: u64, request: &str, status: IssueStatus, number: Option<u64>) -> IssueAck {
        IssueAck {
            user,
            request: request.to_string(),
            status,
            number,
        }
    }

    /// Three users race for two coupons; user 1 retries and double-clicks.
    fn right_outcome() -> (Vec<IssueAck>, CouponFinal) {
        let acks = vec![
            ack(1, "a", IssueStatus::Issued, Some(1)),
            ack(1, "a", IssueStatus::Already, Some(1)),
            ack(1, "b", IssueStatus::Already, Some(1)),
            ack(2, "c", IssueStatus::Issued, Some(2)),
            ack(3, "d", IssueStatus::SoldOut, None),
            ack(3, "d", IssueStatus::SoldOut, None),
        ];
        let last = CouponFinal {
            issued: 2,
            remaining: 0,
            holders: vec![(2, 2), (1, 1)],
        };
        (acks, last)
    }

    #[test]
    fn passes_a_right_outcome() {
        let (acks, last) = right_outcome();
        let verdict = check(2, &acks, &last);
        assert!(verdict.is_correct(), "{verdict:?}");
    }

    #[test]
    fn passes_when_stock_outlasts_users() {
        let acks = vec![ack(5, "x", IssueStatus::Issued, Some(1))];
        let last = CouponFinal {
            issued: 1,
            remaining: 9,
            holders: vec![(5, 1)],
        };
        assert!(check(10, &acks, &last).is_correct());
    }

    #[test]
    fn catches_an_over_issue() {
        let (mut acks, mut last) = right_outcome();
        acks[4] = ack(3, "d", IssueStatus::Issued, Some(3));
        last.issued = 3;
        last.remaining = -1;
        last.holders.push((3, 3));
        let verdict = check(2, &acks, &last);
        assert!(verdict.mentions("over-issue"), "{verdict:?}");
    }

    #[test]
    fn catches_a_duplicate_number() {
        let (mut acks, mut last) = right_outcome();
        acks[3] = ack(2, "c", IssueStatus::Issued, Some(1));
        last.holders = vec![(1, 1), (2, 1)];
        let verdict = check(2, &acks, &last);
        assert!(verdict.mentions("duplicate"), "{verdict:?}");
        assert!(verdict.mentions("2 was never issued"), "{verdict:?}");
    }

    #[test]
    fn a_retry_replaying_the_first_issued_reply_is_one_issue() {
        let (mut acks, last) = right_outcome();
        let replay = acks
            .iter()
            .find(|ack| ack.status == IssueStatus::Issued)
            .cloned()
            .expect("an issue in the right outcome");
        acks.push(replay);
        let verdict = check(2, &acks, &last);
        assert!(verdict.violations.is_empty(), "{verdict:?}");
    }

    #[test]
    fn catches_a_user_issued_twice() {
        let (mut acks, last) = right_outcome();
        acks[3] = ack(1, "c", IssueStatus::Issued, Some(2));
        let verdict = check(2, &acks, &last);
        assert!(verdict.mentions("user 1 issued twice"), "{verdict:?}");
    }

    #[test]
    fn catches_a_retry_that_issues_twice() {
        let (mut acks, last) = right_outcome();
        acks[1] = ack(1, "a", IssueStatus::Already, Some(2));
        let verdict = check(2, &acks, &last);
        assert!(
            verdict.mentions("request a yielded different numbers"),
            "{verdict:?}"
        );
    }

    #[test]
    fn catches_an_under_issue_and_a_false_sold_out() {
        let (mut acks, mut last) = right_outcome();
        acks[3] = ack(2, "c", IssueStatus::SoldOut, None);
        last.issued = 1;
        last.remaining = 1;
        last.holders = vec![(1, 1)];
        let verdict = check(2, &acks, &last);
        assert!(verdict.mentions("expected exactly"), "{verdict:?}");
        assert!(verdict.mentions("SOLDOUT answered"), "{verdict:?}");
    }

    #[test]
    fn catches_server_state_that_disagrees_with_acknowledgements() {
        let (acks, mut last) = right_outcome();
        last.holders.push((3, 3));
        last.issued = 3;
        let verdict = check(2, &acks, &last);
        assert!(verdict.mentions("server reports 3 issued"), "{verdict:?}");
        assert!(verdict.mentions("differ from acknowledged"), "{verdict:?}");
    }

    #[test]
    fn decodes_issue_replies() {
        let reply = Value::Array(vec![
            Value::Simple("ISSUED".into()),
            Value::Integer(4),
            Value::Integer(6),
        ]);
        assert_eq!(decode_issue(&reply), (IssueStatus::Issued, Some(4)));
        let sold_out = Value::Array(vec![
            Value::Bulk(b"SOLDOUT".to_vec()),
            Value::Null,
            Value::Integer(0),
        ]);
        assert_eq!(decode_issue(&sold_out), (IssueStatus::SoldOut, None));
        assert!(matches!(
            decode_issue(&Value::Error("ERR".into())).0,
            IssueStatus::Malformed(_)
        ));
    }
}
