//! What must be true after a restart, given what the clients were told, and the check against the server.
//!
//! The model carries what is known for certain from cycle to cycle. After each restart the server's state
//! is read back and checked against the histories of the cycle; once checked, the observed state is what
//! is known (an unknown call has been settled one way or the other by the restart), so bounds never widen
//! over a long run.
//!
//! Checks, each a violation when it fails:
//! - own counters: exactly the acknowledged sum, or that plus the one unknown increment;
//! - shared counter: between the acknowledged and the attempted sums, and at least every value a reply
//!   reported (a reply is only sent once its record is durable);
//! - own sets: a member acknowledged added is there, acknowledged removed is not;
//! - coupons: every acknowledged `ISSUED` user holds exactly that number; no number twice; no user twice;
//!   no holder whose call was answered `SOLDOUT` or never made; never more held than the total;
//! - stock: `available + reserved + sold == supplied`; `supplied` is exactly what was added; `sold` is
//!   between acknowledged and attempted takes and confirmations; an acknowledged `CONFIRMED`/`RELEASED`
//!   is answered the same again;
//! - likes: every acknowledged like is there (adding it again says `added = 0`); the count is between
//!   the acknowledged and attempted likes;
//! - queue: every acknowledged join still has a position;
//! - own lists: every acknowledged LPOP answered the head the model expected, and the list is exactly
//!   what the acknowledged RPUSH and LPOP calls leave, with or without the one unknown call.

use crate::load::{
    coupon_event, own_counter, own_list, own_set, post, Call, ClientHistory, Operation, Outcome,
    Parts, ROOM, SET_MEMBERS_COUNT, SHARED_COUNTER, SKU,
};
use crate::resp::{Connection, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// What is known of one set member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Presence {
    Known(bool),
    /// An unknown SADD or SREM was the last call on it.
    Either,
}

/// A COUPON.ISSUE reply: its status and number.
type IssueReply = (String, Option<i64>);

/// One coupon event and what has been settled about it.
#[derive(Debug, Default)]
struct CouponEvent {
    total: i64,
    /// Holders already checked, user → number; they never change (nobody revokes).
    holders: BTreeMap<String, i64>,
}

#[derive(Debug, Default)]
pub struct Model {
    parts: Option<Parts>,
    own_counters: BTreeMap<usize, i64>,
    shared_counter: i64,
    own_sets: BTreeMap<usize, Vec<Presence>>,
    coupon_events: BTreeMap<u64, CouponEvent>,
    stock_supplied: i64,
    stock_sold: i64,
    like_counts: Vec<i64>,
    /// Each client's list as last checked, head first.
    own_lists: BTreeMap<usize, VecDeque<String>>,
    /// Acknowledged operations checked against the server, over the whole run.
    pub acknowledged_checked: u64,
    /// Calls whose outcome the kill made unknown, settled by the check after the restart.
    pub unknown_settled: u64,
}

/// One cycle's histories, with the expectations the checker derives from them.
pub struct Cycle<'h> {
    pub number: u64,
    pub histories: &'h [ClientHistory],
}

fn field(map: &Value, name: &str) -> Option<i64> {
    let items = map.array()?;
    items
        .chunks(2)
        .find(|pair| pair[0].text().as_deref() == Some(name))
        .and_then(|pair| pair.get(1)?.integer())
}

/// Why a check could not finish.
enum Stop {
    /// The server answered a read with an error (a key that must exist is gone, say): a violation.
    Answered(String),
    /// The connection broke: the run is broken, not the server's state.
    Broken(String),
}

impl From<String> for Stop {
    fn from(message: String) -> Stop {
        Stop::Broken(message)
    }
}

impl From<&str> for Stop {
    fn from(message: &str) -> Stop {
        Stop::Answered(message.to_string())
    }
}

fn call(connection: &mut Connection, command: crate::resp::Command) -> Result<Value, Stop> {
    let shown = command
        .iter()
        .map(|argument| String::from_utf8_lossy(argument).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    match connection.call(command)? {
        Value::Error(message) => Err(Stop::Answered(format!("{shown}: {message}"))),
        reply => Ok(reply),
    }
}

impl Model {
    pub fn new(parts: Parts, clients: usize) -> Model {
        Model {
            parts: Some(parts),
            own_counters: (0..clients).map(|client| (client, 0)).collect(),
            own_sets: (0..clients)
                .map(|client| {
                    (
                        client,
                        vec![Presence::Known(false); SET_MEMBERS_COUNT as usize],
                    )
                })
                .collect(),
            like_counts: vec![0; crate::load::POSTS_COUNT],
            own_lists: (0..clients)
                .map(|client| (client, VecDeque::new()))
                .collect(),
            ..Model::default()
        }
    }

    fn parts(&self) -> Parts {
        self.parts.expect("a model is made with its parts")
    }

    /// Called once the driver's own set-up of a cycle was acknowledged.
    pub fn coupon_event_created(&mut self, cycle: u64, total: i64) {
        self.coupon_events.insert(
            cycle,
            CouponEvent {
                total,
                holders: BTreeMap::new(),
            },
        );
    }

    pub fn stock_added(&mut self, quantity: i64) {
        self.stock_supplied += quantity;
    }

    /// Checks the restarted server against the cycle; returns every violation found (empty: all good).
    /// `Err` is a broken check (the server stopped answering), not a verdict.
    pub fn check(
        &mut self,
        connection: &mut Connection,
        cycle: &Cycle,
        all_coupon_events: bool,
    ) -> Result<Vec<String>, String> {
        let mut violations = Vec::new();
        let calls = || {
            cycle
                .histories
                .iter()
                .flat_map(|history| history.calls.iter().map(move |call| (history.client, call)))
        };
        for call in calls() {
            if matches!(call.1.outcome, Outcome::Unknown) {
                self.unknown_settled += 1;
            }
        }
        let parts = self.parts();
        let mut results = Vec::new();
        if parts.counters {
            results.push(self.check_counters(connection, cycle, &mut violations));
        }
        if parts.sets {
            results.push(self.check_sets(connection, cycle, &mut violations));
        }
        if parts.coupons {
            results.push(self.check_coupons(connection, cycle, all_coupon_events, &mut violations));
        }
        if parts.stock {
            results.push(self.check_stock(connection, cycle, &mut violations));
        }
        if parts.likes {
            results.push(self.check_likes(connection, cycle, &mut violations));
        }
        if parts.queue {
            results.push(self.check_queue(connection, cycle, &mut violations));
        }
        if parts.lists {
            results.push(self.check_lists(connection, cycle, &mut violations));
        }
        for result in results {
            match result {
                Ok(()) => {}
                Err(Stop::Answered(message)) => violations.push(format!(
                    "cycle {}: a check's read was refused: {message}",
                    cycle.number
                )),
                Err(Stop::Broken(message)) => return Err(message),
            }
        }
        Ok(violations)
    }

    fn check_counters(
        &mut self,
        connection: &mut Connection,
        cycle: &Cycle,
        violations: &mut Vec<String>,
    ) -> Result<(), Stop> {
        let mut shared_acknowledged = self.shared_counter;
        let mut shared_attempted = self.shared_counter;
        let mut shared_reported_max = self.shared_counter;
        for history in cycle.histories {
            let client = history.client;
            let mut acknowledged = self.own_counters[&client];
            let mut unknown = 0;
            for call in &history.calls {
                match (&call.operation, &call.outcome) {
                    (Operation::IncrementOwn { delta }, Outcome::Acknowledged(_)) => {
                        acknowledged += delta;
                        self.acknowledged_checked += 1;
                    }
                    (Operation::IncrementOwn { delta }, Outcome::Unknown) => unknown = *delta,
                    (Operation::IncrementShared { delta }, Outcome::Acknowledged(reply)) => {
                        shared_acknowledged += delta;
                        shared_attempted += delta;
                        shared_reported_max = shared_reported_max.max(reply.integer().unwrap_or(0));
                        self.acknowledged_checked += 1;
                    }
                    (Operation::IncrementShared { delta }, Outcome::Unknown) => {
                        shared_attempted += delta
                    }
                    _ => {}
                }
            }
            let observed = integer_or_zero(&call(
                connection,
                crate::command!["GET", own_counter(client)],
            )?);
            if observed != acknowledged && observed != acknowledged + unknown {
                violations.push(format!(
                    "cycle {}: counter {} is {observed}; acknowledged increments make {acknowledged}{}",
                    cycle.number,
                    own_counter(client),
                    if unknown > 0 {
                        format!(", or {} with the unknown one", acknowledged + unknown)
                    } else {
                        String::new()
                    }
                ));
            }
            self.own_counters.insert(client, observed);
        }
        let observed = integer_or_zero(&call(connection, crate::command!["GET", SHARED_COUNTER])?);
        if observed < shared_acknowledged.max(shared_reported_max) || observed > shared_attempted {
            violations.push(format!(
                "cycle {}: {SHARED_COUNTER} is {observed}; expected between {} (acknowledged sum \
                 {shared_acknowledged}, largest value a reply reported {shared_reported_max}) and \
                 {shared_attempted} (attempted)",
                cycle.number,
                shared_acknowledged.max(shared_reported_max)
            ));
        }
        self.shared_counter = observed;
        Ok(())
    }

    fn check_sets(
        &mut self,
        connection: &mut Connection,
        cycle: &Cycle,
        violations: &mut Vec<String>,
    ) -> Result<(), Stop> {
        for history in cycle.histories {
            let client = history.client;
            let presence = self.own_sets.get_mut(&client).expect("a set per client");
            let mut acknowledged = 0;
            for call in &history.calls {
                let (member, added) = match call.operation {
                    Operation::SetAdd { member } => (member, true),
                    Operation::SetRemove { member } => (member, false),
                    _ => continue,
                };
                presence[member as usize] = match call.outcome {
                    Outcome::Acknowledged(_) => {
                        acknowledged += 1;
                        Presence::Known(added)
                    }
                    Outcome::Unknown => Presence::Either,
                    Outcome::Failed(_) => presence[member as usize],
                };
            }
            self.acknowledged_checked += acknowledged;
            let members = call(connection, crate::command!["SMEMBERS", own_set(client)])?;
            let mut observed = vec![false; SET_MEMBERS_COUNT as usize];
            for member in members.array().unwrap_or(&[]) {
                let text = member.text().unwrap_or_default();
                match text
                    .strip_prefix('m')
                    .and_then(|number| number.parse::<usize>().ok())
                    .filter(|number| *number < observed.len())
                {
                    Some(number) => observed[number] = true,
                    None => violations.push(format!(
                        "cycle {}: {} holds {text:?}, which no client ever added",
                        cycle.number,
                        own_set(client)
                    )),
                }
            }
            for (member, is_present) in observed.iter().enumerate() {
                if let Presence::Known(expected) = presence[member] {
                    if expected != *is_present {
                        violations.push(format!(
                            "cycle {}: {} member m{member} is {} but was acknowledged {}",
                            cycle.number,
                            own_set(client),
                            if *is_present { "present" } else { "absent" },
                            if expected { "added" } else { "removed" }
                        ));
                    }
                }
                presence[member] = Presence::Known(*is_present);
            }
        }
        Ok(())
    }

    fn check_lists(
        &mut self,
        connection: &mut Connection,
        cycle: &Cycle,
        violations: &mut Vec<String>,
    ) -> Result<(), Stop> {
        for history in cycle.histories {
            let client = history.client;
            let list = self.own_lists.get_mut(&client).expect("a list per client");
            let mut unknown = None;
            for call in &history.calls {
                if !matches!(
                    call.operation,
                    Operation::ListPush { .. } | Operation::ListPop
                ) {
                    continue;
                }
                match &call.outcome {
                    Outcome::Failed(_) => {}
                    Outcome::Unknown => unknown = Some(call.operation.clone()),
                    Outcome::Acknowledged(reply) => {
                        self.acknowledged_checked += 1;
                        match &call.operation {
                            Operation::ListPush { value } => list.push_back(value.clone()),
                            _ => {
                                let popped = list.pop_front();
                                if reply.text() != popped {
                                    violations.push(format!(
                                        "cycle {}: LPOP {} answered {:?} where the head was {popped:?}",
                                        cycle.number,
                                        own_list(client),
                                        reply.text()
                                    ));
                                }
                            }
                        }
                    }
                }
            }
            let mut with_unknown = list.clone();
            match unknown {
                Some(Operation::ListPush { value }) => with_unknown.push_back(value),
                Some(_) => {
                    with_unknown.pop_front();
                }
                None => {}
            }
            let observed: VecDeque<String> = call(
                connection,
                crate::command!["LRANGE", own_list(client), 0, -1],
            )?
            .array()
            .unwrap_or(&[])
            .iter()
            .map(|element| element.text().unwrap_or_default())
            .collect();
            if observed != *list && observed != with_unknown {
                violations.push(format!(
                    "cycle {}: {} holds {} elements, not the {} acknowledged (or {} with the unknown call)",
                    cycle.number,
                    own_list(client),
                    observed.len(),
                    list.len(),
                    with_unknown.len()
                ));
            }
            *list = observed;
        }
        Ok(())
    }

    fn check_coupons(
        &mut self,
        connection: &mut Connection,
        cycle: &Cycle,
        all_events: bool,
        violations: &mut Vec<String>,
    ) -> Result<(), Stop> {
        // This cycle's calls, per event: user → the reply's status and number (None: unknown).
        let mut attempts: BTreeMap<String, BTreeMap<String, Option<IssueReply>>> = BTreeMap::new();
        for history in cycle.histories {
            for call in &history.calls {
                let Operation::CouponIssue { event, user } = &call.operation else {
                    continue;
                };
                let settled = match &call.outcome {
                    Outcome::Acknowledged(reply) => {
                        self.acknowledged_checked += 1;
                        let items = reply.array().unwrap_or(&[]);
                        let status = items.first().and_then(Value::text).unwrap_or_default();
                        let number = items.get(1).and_then(Value::integer);
                        Some((status, number))
                    }
                    Outcome::Unknown => None,
                    Outcome::Failed(_) => continue,
                };
                attempts
                    .entry(event.clone())
                    .or_default()
                    .insert(user.clone(), settled);
            }
        }
        let numbers: Vec<u64> = if all_events {
            self.coupon_events.keys().copied().collect()
        } else {
            self.coupon_events
                .keys()
                .copied()
                .filter(|number| *number == cycle.number)
                .collect()
        };
        for number in numbers {
            let name = coupon_event(number);
            let holders = read_holders(connection, &name)?;
            let event = self.coupon_events.get_mut(&number).expect("listed");
            let empty = BTreeMap::new();
            let attempted = attempts.get(&name).unwrap_or(&empty);
            let mut numbers_seen = BTreeSet::new();
            let mut users_seen = BTreeMap::new();
            for (user, coupon) in &holders {
                if !numbers_seen.insert(*coupon) {
                    violations.push(format!(
                        "cycle {}: {name} has number {coupon} twice",
                        cycle.number
                    ));
                }
                if users_seen.insert(user.clone(), *coupon).is_some() {
                    violations.push(format!(
                        "cycle {}: {name} user {user} holds two coupons with PERUSER 1",
                        cycle.number
                    ));
                }
                if *coupon < 1 || *coupon > event.total {
                    violations.push(format!(
                        "cycle {}: {name} number {coupon} is outside 1..={}",
                        cycle.number, event.total
                    ));
                }
                let known_before = event.holders.get(user) == Some(coupon);
                match attempted.get(user) {
                    _ if known_before => {}
                    Some(None) => {}
                    Some(Some((status, _))) if status == "ISSUED" => {}
                    Some(Some((status, _))) => violations.push(format!(
                        "cycle {}: {name} user {user} holds number {coupon} but was answered {status}",
                        cycle.number
                    )),
                    None => violations.push(format!(
                        "cycle {}: {name} user {user} holds number {coupon} but nobody asked for it",
                        cycle.number
                    )),
                }
            }
            if holders.len() as i64 > event.total {
                violations.push(format!(
                    "cycle {}: {name} oversold: {} held of {}",
                    cycle.number,
                    holders.len(),
                    event.total
                ));
            }
            for (user, coupon) in &event.holders {
                if users_seen.get(user) != Some(coupon) {
                    violations.push(format!(
                        "cycle {}: {name} user {user} held number {coupon} at an earlier check, now {:?}",
                        cycle.number,
                        users_seen.get(user)
                    ));
                }
            }
            for (user, settled) in attempted {
                if let Some((status, Some(coupon))) = settled {
                    if status == "ISSUED" && users_seen.get(user) != Some(coupon) {
                        violations.push(format!(
                            "cycle {}: {name} user {user} was acknowledged number {coupon}, the server \
                             now says {:?}: an acknowledged coupon was lost",
                            cycle.number,
                            users_seen.get(user)
                        ));
                    }
                }
            }
            let info = call(connection, crate::command!["COUPON.INFO", &name])?;
            let issued = field(&info, "issued").unwrap_or(-1);
            if issued != holders.len() as i64 {
                violations.push(format!(
                    "cycle {}: {name} INFO says {issued} issued but {} are held (nobody revokes)",
                    cycle.number,
                    holders.len()
                ));
            }
            event.holders = users_seen;
        }
        Ok(())
    }

    fn check_stock(
        &mut self,
        connection: &mut Connection,
        cycle: &Cycle,
        violations: &mut Vec<String>,
    ) -> Result<(), Stop> {
        let mut sold_acknowledged = self.stock_sold;
        let mut sold_attempted = self.stock_sold;
        let mut settled_again = Vec::new();
        for history in cycle.histories {
            for call in &history.calls {
                let acknowledged = match &call.outcome {
                    Outcome::Acknowledged(reply) => Some(reply),
                    Outcome::Unknown => None,
                    Outcome::Failed(_) => continue,
                };
                match (&call.operation, acknowledged) {
                    (Operation::StockTake { quantity }, Some(reply)) => {
                        self.acknowledged_checked += 1;
                        let status = reply
                            .array()
                            .and_then(|items| items.first()?.text())
                            .unwrap_or_default();
                        if status == "OK" {
                            sold_acknowledged += quantity;
                            sold_attempted += quantity;
                        }
                    }
                    (Operation::StockTake { quantity }, None) => sold_attempted += quantity,
                    (
                        Operation::StockConfirm {
                            reservation,
                            quantity,
                        },
                        Some(reply),
                    ) => {
                        self.acknowledged_checked += 1;
                        let status = reply.text().unwrap_or_default();
                        if status == "CONFIRMED" {
                            sold_acknowledged += quantity;
                            sold_attempted += quantity;
                        }
                        settled_again.push(("STOCK.CONFIRM", *reservation, status));
                    }
                    (Operation::StockConfirm { quantity, .. }, None) => sold_attempted += quantity,
                    (Operation::StockRelease { reservation }, Some(reply)) => {
                        self.acknowledged_checked += 1;
                        settled_again.push((
                            "STOCK.RELEASE",
                            *reservation,
                            reply.text().unwrap_or_default(),
                        ));
                    }
                    (Operation::StockReserve { .. }, Some(_)) => self.acknowledged_checked += 1,
                    _ => {}
                }
            }
        }
        let info = call(connection, crate::command!["STOCK.INFO", SKU])?;
        let available = field(&info, "available").unwrap_or(-1);
        let reserved = field(&info, "reserved").unwrap_or(-1);
        let sold = field(&info, "sold").unwrap_or(-1);
        let supplied = field(&info, "supplied").unwrap_or(-1);
        if available < 0 || reserved < 0 || sold < 0 || available + reserved + sold != supplied {
            violations.push(format!(
                "cycle {}: stock not conserved: available {available} + reserved {reserved} + sold {sold} \
                 != supplied {supplied}",
                cycle.number
            ));
        }
        if supplied != self.stock_supplied {
            violations.push(format!(
                "cycle {}: stock supplied is {supplied}, the acknowledged additions make {}",
                cycle.number, self.stock_supplied
            ));
        }
        if sold < sold_acknowledged || sold > sold_attempted {
            violations.push(format!(
                "cycle {}: stock sold is {sold}; expected between {sold_acknowledged} (acknowledged) and \
                 {sold_attempted} (attempted)",
                cycle.number
            ));
        }
        for (command, reservation, status) in settled_again {
            let again = call(connection, crate::command![command, SKU, reservation])?;
            let again = again.text().unwrap_or_default();
            if again != status {
                violations.push(format!(
                    "cycle {}: {command} {SKU} {reservation} was acknowledged {status}, now answers {again}",
                    cycle.number
                ));
            }
        }
        self.stock_sold = sold;
        Ok(())
    }

    fn check_likes(
        &mut self,
        connection: &mut Connection,
        cycle: &Cycle,
        violations: &mut Vec<String>,
    ) -> Result<(), Stop> {
        let mut acknowledged: Vec<Vec<&str>> = vec![Vec::new(); self.like_counts.len()];
        let mut unknown = vec![0i64; self.like_counts.len()];
        for history in cycle.histories {
            for call in &history.calls {
                let Operation::LikeAdd { post, user } = &call.operation else {
                    continue;
                };
                match call.outcome {
                    Outcome::Acknowledged(_) => acknowledged[*post].push(user),
                    Outcome::Unknown => unknown[*post] += 1,
                    Outcome::Failed(_) => {}
                }
            }
        }
        for index in 0..self.like_counts.len() {
            let lower = self.like_counts[index] + acknowledged[index].len() as i64;
            let upper = lower + unknown[index];
            let count = like_count(&call(
                connection,
                crate::command!["LIKE.COUNT", post(index)],
            )?);
            if count < lower || count > upper {
                violations.push(format!(
                    "cycle {}: LIKE.COUNT {} is {count}; expected between {lower} (acknowledged) and \
                     {upper} (attempted)",
                    cycle.number,
                    post(index)
                ));
            }
            for user in &acknowledged[index] {
                self.acknowledged_checked += 1;
                let reply = call(connection, crate::command!["LIKE.ADD", post(index), user])?;
                let added = reply
                    .array()
                    .and_then(|items| items.first()?.integer())
                    .unwrap_or(-1);
                if added != 0 {
                    violations.push(format!(
                        "cycle {}: the acknowledged like of {user} on {} was lost",
                        cycle.number,
                        post(index)
                    ));
                }
            }
            self.like_counts[index] = like_count(&call(
                connection,
                crate::command!["LIKE.COUNT", post(index)],
            )?);
        }
        Ok(())
    }

    fn check_queue(
        &mut self,
        connection: &mut Connection,
        cycle: &Cycle,
        violations: &mut Vec<String>,
    ) -> Result<(), Stop> {
        let acknowledged = cycle.histories.iter().flat_map(|history| {
            history
                .calls
                .iter()
                .filter_map(|call: &Call| match (&call.operation, &call.outcome) {
                    (Operation::QueueJoin { user }, Outcome::Acknowledged(_)) => Some(user),
                    _ => None,
                })
        });
        for user in acknowledged {
            self.acknowledged_checked += 1;
            let position = call(connection, crate::command!["QUEUE.POS", ROOM, user])?;
            if position.integer().is_none_or(|position| position < 1) {
                violations.push(format!(
                    "cycle {}: {user} joined {ROOM} (acknowledged) but QUEUE.POS answers {position:?}",
                    cycle.number
                ));
            }
        }
        Ok(())
    }
}

/// A `LIKE.COUNT post` reply: an array with one count per post asked (a bare integer accepted too);
/// -1 when it is neither.
fn like_count(reply: &Value) -> i64 {
    match reply.array() {
        Some(counts) => counts.first().and_then(Value::integer).unwrap_or(-1),
        None => reply.integer().unwrap_or(-1),
    }
}

/// A GET reply as a counter: an absent key counts as 0.
fn integer_or_zero(reply: &Value) -> i64 {
    match reply {
        Value::Null => 0,
        other => other.integer().unwrap_or(i64::MIN),
    }
}

/// Every holder of a coupon event, walking COUPON.HOLDERS to the end.
fn read_holders(connection: &mut Connection, event: &str) -> Result<Vec<(String, i64)>, Stop> {
    let mut holders = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let page = call(
            connection,
            crate::command!["COUPON.HOLDERS", event, &cursor, 10000],
        )?;
        let items = page.array().ok_or("COUPON.HOLDERS: not an array")?;
        cursor = items
            .first()
            .and_then(Value::text)
            .ok_or("COUPON.HOLDERS: no cursor")?;
        for pair in items.get(1).and_then(Value::array).unwrap_or(&[]).chunks(2) {
            let user = pair[0].text().unwrap_or_default();
            let number = pair.get(1).and_then(Value::integer).unwrap_or(-1);
            holders.push((user, number));
        }
        if cursor == "0" {
            return Ok(holders);
        }
    }
}
