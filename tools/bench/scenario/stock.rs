//! stock-rush: one hot SKU, many buyers. Takes, reservations, confirms, releases and expiries mixed.
//!
//! Load: each request is a take of 1 or 2 units (35%), a reservation of 1 or 2 units (35%; one in four
//! with a TTL of a few milliseconds so it expires before it is confirmed), or the confirm (65%) or release
//! (35%) of one of the client's open reservations. When the budget is spent, the scenario waits for the
//! short TTLs to pass and closes every reservation still open, so each one ends confirmed, released or
//! expired.
//!
//! Check (`check`): no reply ever shows negative availability; initial stock = available + reserved +
//! sold at the end; sold equals the units of acknowledged takes plus acknowledged confirms (every
//! confirmed order is backed by stock, and nothing sold that no client was told about); the acknowledged
//! units never exceed the stock; a confirm answers CONFIRMED or EXPIRED and a release RELEASED or EXPIRED,
//! never UNKNOWN for a reservation the server handed out; reservation ids are never reused.

use super::{
    call_ok, evalsha, fields, integer_field, load_script, or_default, ScenarioResult,
    ScenarioSettings, Target, Verdict,
};
use crate::command;
use crate::random::Random;
use crate::resp::{Command, Connection, Value};
use crate::runner::{self, Worker};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const SCRIPT: &str = include_str!("../../lua/stock.lua");

const TAKE_PROBABILITY: f64 = 0.35;
const RESERVE_PROBABILITY: f64 = 0.35;
const CONFIRM_PROBABILITY: f64 = 0.65;
/// Share of reservations made to expire: their TTL passes long before the client gets back to them.
const SHORT_TTL_PROBABILITY: f64 = 0.25;
const SHORT_TTL_MS: u64 = 5;
const LONG_TTL_MS: u64 = 600_000;

/// How a reservation ended, as the server answered a confirm or release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Confirmed,
    Released,
    Expired,
    Unknown,
}

/// One acknowledged request in the client-side ledger.
#[derive(Clone, Debug, PartialEq)]
pub enum StockEvent {
    Take {
        quantity: u64,
        ok: bool,
        available: i64,
    },
    Reserve {
        quantity: u64,
        reservation: Option<String>,
        available: i64,
    },
    Resolve {
        reservation: String,
        quantity: u64,
        confirm: bool,
        outcome: Outcome,
    },
    Malformed(String),
}

/// STOCK.INFO after the run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StockFinal {
    pub available: i64,
    pub reserved: i64,
    pub sold: i64,
    /// Open reservations.
    pub reservations: i64,
}

/// Checks the ledger of a run that started with `initial` units and closed every reservation it made.
pub fn check(initial: u64, events: &[StockEvent], last: &StockFinal) -> Verdict {
    let mut verdict = Verdict::default();
    let initial = initial as i64;
    let mut reservations: HashMap<&str, u64> = HashMap::new();
    let mut resolved: HashMap<&str, u32> = HashMap::new();
    let mut sold_acknowledged = 0i64;
    for event in events {
        match event {
            StockEvent::Take {
                quantity,
                ok,
                available,
            } => {
                if *available < 0 {
                    verdict.fail(format!("oversold: a take answered available {available}"));
                }
                if *ok {
                    sold_acknowledged += *quantity as i64;
                }
            }
            StockEvent::Reserve {
                quantity,
                reservation,
                available,
            } => {
                if *available < 0 {
                    verdict.fail(format!(
                        "oversold: a reservation answered available {available}"
                    ));
                }
                if let Some(id) = reservation {
                    if reservations.insert(id.as_str(), *quantity).is_some() {
                        verdict.fail(format!("reservation id {id} handed out twice"));
                    }
                }
            }
            StockEvent::Resolve { .. } => {}
            StockEvent::Malformed(text) => verdict.fail(format!("bad reply: {text}")),
        }
    }
    for event in events {
        let StockEvent::Resolve {
            reservation,
            quantity,
            confirm,
            outcome,
        } = event
        else {
            continue;
        };
        *resolved.entry(reservation.as_str()).or_default() += 1;
        match reservations.get(reservation.as_str()) {
            None => verdict.fail(format!(
                "resolved reservation {reservation} never handed out"
            )),
            Some(reserved) if reserved != quantity => verdict.fail(format!(
                "reservation {reservation} of {reserved} units resolved as {quantity}"
            )),
            Some(_) => {}
        }
        let action = if *confirm { "confirm" } else { "release" };
        match (confirm, outcome) {
            (true, Outcome::Confirmed) => sold_acknowledged += *quantity as i64,
            (false, Outcome::Released) | (_, Outcome::Expired) => {}
            (_, Outcome::Unknown) => verdict.fail(format!(
                "{action} of reservation {reservation} answered UNKNOWN"
            )),
            (_, other) => verdict.fail(format!(
                "{action} of open reservation {reservation} answered {other:?}"
            )),
        }
    }
    let unresolved = reservations
        .keys()
        .filter(|id| !resolved.contains_key(*id))
        .count();
    if let Some((id, _)) = resolved.iter().find(|(_, count)| **count > 1) {
        verdict.fail(format!("ledger resolved reservation {id} more than once"));
    }

    if sold_acknowledged > initial {
        verdict.fail(format!(
            "oversold: clients were acknowledged {sold_acknowledged} units of {initial}"
        ));
    }
    if last.sold != sold_acknowledged {
        verdict.fail(format!(
            "server sold {} units, clients were acknowledged {sold_acknowledged}",
            last.sold
        ));
    }
    if last.available + last.reserved + last.sold != initial {
        verdict.fail(format!(
            "stock not conserved: available {} + reserved {} + sold {} != {initial}",
            last.available, last.reserved, last.sold
        ));
    }
    if last.available < 0 || last.reserved < 0 {
        verdict.fail(format!(
            "negative stock at the end: available {}, reserved {}",
            last.available, last.reserved
        ));
    }
    if unresolved == 0 && (last.reserved != 0 || last.reservations != 0) {
        verdict.fail(format!(
            "every reservation was closed, yet the server holds {} units in {} reservations",
            last.reserved, last.reservations
        ));
    }
    verdict
}

/// What a command in flight was, so its reply can be entered in the ledger.
enum Request {
    Take(u64),
    Reserve(u64, bool),
    Resolve(String, u64, bool),
}

struct Recipe {
    target: Target,
    sku: String,
    keys: Vec<String>,
    sha: String,
}

impl Recipe {
    fn command(&self, request: &Request) -> Command {
        let ttl = |short: bool| if short { SHORT_TTL_MS } else { LONG_TTL_MS };
        match (self.target, request) {
            (Target::Dibs, Request::Take(quantity)) => command!("STOCK.TAKE", self.sku, quantity),
            (Target::Dibs, Request::Reserve(quantity, short)) => {
                command!("STOCK.RESERVE", self.sku, quantity, ttl(*short))
            }
            (Target::Dibs, Request::Resolve(id, _, confirm)) => {
                let name = if *confirm {
                    "STOCK.CONFIRM"
                } else {
                    "STOCK.RELEASE"
                };
                command!(name, self.sku, id)
            }
            (Target::Redis, Request::Take(quantity)) => evalsha(
                &self.sha,
                &self.keys,
                &["take".into(), quantity.to_string()],
            ),
            (Target::Redis, Request::Reserve(quantity, short)) => evalsha(
                &self.sha,
                &self.keys,
                &[
                    "reserve".into(),
                    quantity.to_string(),
                    ttl(*short).to_string(),
                ],
            ),
            (Target::Redis, Request::Resolve(id, _, confirm)) => {
                let operation = if *confirm { "confirm" } else { "release" };
                evalsha(&self.sha, &self.keys, &[operation.into(), id.clone()])
            }
        }
    }
}

fn decode(request: Request, reply: &Value) -> StockEvent {
    let malformed = || StockEvent::Malformed(format!("{reply:?}"));
    match request {
        Request::Take(quantity) => {
            let items = reply.array().unwrap_or(&[]);
            let status = items.first().and_then(Value::text);
            let available = items.get(1).and_then(Value::integer);
            match (status.as_deref(), available) {
                (Some("OK" | "SOLDOUT"), Some(available)) => StockEvent::Take {
                    quantity,
                    ok: status.as_deref() == Some("OK"),
                    available,
                },
                _ => malformed(),
            }
        }
        Request::Reserve(quantity, _) => {
            let items = reply.array().unwrap_or(&[]);
            let status = items.first().and_then(Value::text);
            let id = items.get(1).and_then(|id| {
                id.text()
                    .or_else(|| id.integer().map(|number| number.to_string()))
            });
            let available = items.get(2).and_then(Value::integer);
            match (status.as_deref(), available) {
                (Some("OK"), Some(available)) if id.is_some() => StockEvent::Reserve {
                    quantity,
                    reservation: id,
                    available,
                },
                (Some("SOLDOUT"), Some(available)) => StockEvent::Reserve {
                    quantity,
                    reservation: None,
                    available,
                },
                _ => malformed(),
            }
        }
        Request::Resolve(reservation, quantity, confirm) => {
            let outcome = match reply.text().as_deref() {
                Some("CONFIRMED") => Outcome::Confirmed,
                Some("RELEASED") => Outcome::Released,
                Some("EXPIRED") => Outcome::Expired,
                Some("UNKNOWN") => Outcome::Unknown,
                _ => return malformed(),
            };
            StockEvent::Resolve {
                reservation,
                quantity,
                confirm,
                outcome,
            }
        }
    }
}

struct StockWorker {
    recipe: Recipe,
    random: Random,
    /// Reservations this client holds open: (id, quantity).
    open: Vec<(String, u64)>,
    in_flight: Vec<Request>,
    events: Vec<StockEvent>,
}

impl Worker for StockWorker {
    fn build(&mut self, count: usize, commands: &mut Vec<Command>) {
        self.in_flight.clear();
        for _ in 0..count {
            let roll = self.random.unit();
            let quantity = 1 + self.random.below(2);
            let request = if roll < TAKE_PROBABILITY {
                Request::Take(quantity)
            } else if roll < TAKE_PROBABILITY + RESERVE_PROBABILITY || self.open.is_empty() {
                Request::Reserve(quantity, self.random.chance(SHORT_TTL_PROBABILITY))
            } else {
                let index = self.random.below(self.open.len() as u64) as usize;
                let (id, quantity) = self.open.swap_remove(index);
                Request::Resolve(id, quantity, self.random.chance(CONFIRM_PROBABILITY))
            };
            commands.push(self.recipe.command(&request));
            self.in_flight.push(request);
        }
    }

    fn absorb(&mut self, _commands: &[Command], replies: Vec<Value>, _sent_at: Instant) {
        for (request, reply) in self.in_flight.drain(..).zip(replies) {
            let event = decode(request, &reply);
            if let StockEvent::Reserve {
                quantity,
                reservation: Some(id),
                ..
            } = &event
            {
                self.open.push((id.clone(), *quantity));
            }
            self.events.push(event);
        }
    }
}

/// Runs stock-rush once against `settings.target`.
pub fn run(settings: &ScenarioSettings) -> Result<ScenarioResult, String> {
    let load = &settings.load;
    let initial = or_default(settings.stock, load.requests / 3);
    let sku = format!("{{{}:stock}}", settings.prefix);
    let keys: Vec<String> = [
        "available",
        "reserved",
        "sold",
        "holds",
        "deadlines",
        "next-id",
        "outcomes",
    ]
    .iter()
    .map(|name| format!("{sku}:{name}"))
    .collect();
    let mut admin = Connection::open(&load.host, load.port)?;
    let mut sha = String::new();
    match settings.target {
        Target::Dibs => {
            call_ok(&mut admin, command!("STOCK.SET", sku, initial))?;
        }
        Target::Redis => {
            sha = load_script(&mut admin, SCRIPT)?;
            call_ok(&mut admin, command!("SET", keys[0], initial))?;
        }
    }
    let recipe = || Recipe {
        target: settings.target,
        sku: sku.clone(),
        keys: keys.clone(),
        sha: sha.clone(),
    };
    let workers = (0..load.clients)
        .map(|client| StockWorker {
            recipe: recipe(),
            random: Random::new(settings.seed ^ (client as u64 + 1).wrapping_mul(0xA24B_AED4)),
            open: Vec::new(),
            in_flight: Vec::new(),
            events: Vec::new(),
        })
        .collect();
    let (workers, outcome) = runner::run(load, workers)?;

    // Close what is still open, after the short TTLs have surely passed, so the end state is exact.
    std::thread::sleep(Duration::from_millis(SHORT_TTL_MS * 4));
    let closer = recipe();
    let mut random = Random::new(settings.seed.rotate_left(17));
    let mut events = Vec::new();
    for worker in workers {
        events.extend(worker.events);
        for (id, quantity) in worker.open {
            let request = Request::Resolve(id, quantity, random.chance(0.5));
            let reply = admin.call(closer.command(&request))?;
            events.push(decode(request, &reply));
        }
    }
    let last = read_final(&mut admin, &closer)?;
    let verdict = check(initial, &events, &last);
    let expired = events
        .iter()
        .filter(|event| {
            matches!(
                event,
                StockEvent::Resolve {
                    outcome: Outcome::Expired,
                    ..
                }
            )
        })
        .count();
    let detail = format!(
        "stock {initial}: sold {}, available {}, reserved {}; {expired} reservations expired",
        last.sold, last.available, last.reserved
    );
    Ok(ScenarioResult::new(
        "stock-rush",
        settings.target,
        &outcome,
        verdict,
        detail,
    ))
}

fn read_final(admin: &mut Connection, recipe: &Recipe) -> Result<StockFinal, String> {
    match recipe.target {
        Target::Dibs => {
            let info = fields(&call_ok(admin, command!("STOCK.INFO", recipe.sku))?)?;
            Ok(StockFinal {
                available: integer_field(&info, "available")?,
                reserved: integer_field(&info, "reserved")?,
                sold: integer_field(&info, "sold")?,
                reservations: integer_field(&info, "reservations")?,
            })
        }
        Target::Redis => {
            let mut number = |command: Command| -> Result<i64, String> {
                Ok(call_ok(admin, command)?.integer().unwrap_or(0))
            };
            Ok(StockFinal {
                available: number(command!("GET", recipe.keys[0]))?,
                reserved: number(command!("GET", recipe.keys[1]))?,
                sold: number(command!("GET", recipe.keys[2]))?,
                reservations: number(command!("HLEN", recipe.keys[3]))?,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(quantity: u64, ok: bool, available: i64) -> StockEvent {
        StockEvent::Take {
            quantity,
            ok,
            available,
        }
    }

    fn reserve(quantity: u64, id: &str, available: i64) -> StockEvent {
        StockEvent::Reserve {
            quantity,
            reservation: Some(id.into()),
            available,
        }
    }

    fn resolve(id: &str, quantity: u64, confirm: bool, outcome: Outcome) -> StockEvent {
        StockEvent::Resolve {
            reservation: id.into(),
            quantity,
            confirm,
            outcome,
        }
    }

    /// Ten units: take 2, reserve 3 (confirmed), reserve 2 (expired), reserve 1 (released), take 5,
    /// then a take that finds the shelf short.
    fn right_outcome() -> (Vec<StockEvent>, StockFinal) {
        let events = vec![
            take(2, true, 8),
            reserve(3, "r1", 5),
            reserve(2, "r2", 3),
            reserve(1, "r3", 2),
            resolve("r1", 3, true, Outcome::Confirmed),
            resolve("r3", 1, false, Outcome::Released),
            resolve("r2", 2, true, Outcome::Expired),
            take(5, true, 0),
            take(1, false, 0),
        ];
        let last = StockFinal {
            available: 0,
            reserved: 0,
            sold: 10,
            reservations: 0,
        };
        (events, last)
    }

    #[test]
    fn passes_a_right_outcome() {
        let (events, last) = right_outcome();
        let verdict = check(10, &events, &last);
        assert!(verdict.is_correct(), "{verdict:?}");
    }

    #[test]
    fn catches_non_conserved_stock() {
        let (events, mut last) = right_outcome();
        last.available = 2; // units appeared from nowhere
        let verdict = check(10, &events, &last);
        assert!(verdict.mentions("stock not conserved"), "{verdict:?}");
    }

    #[test]
    fn catches_an_oversell() {
        let (mut events, mut last) = right_outcome();
        events[8] = take(1, true, -1);
        last.sold = 11;
        last.available = -1;
        let verdict = check(10, &events, &last);
        assert!(
            verdict.mentions("oversold: a take answered available -1"),
            "{verdict:?}"
        );
        assert!(
            verdict.mentions("acknowledged 11 units of 10"),
            "{verdict:?}"
        );
    }

    #[test]
    fn catches_a_confirmed_order_the_server_did_not_sell() {
        let (events, mut last) = right_outcome();
        last.sold = 7; // the confirm of r1 was acknowledged but not applied
        last.available = 3;
        let verdict = check(10, &events, &last);
        assert!(verdict.mentions("server sold 7 units"), "{verdict:?}");
    }

    #[test]
    fn catches_wrong_answers_to_confirm_and_release() {
        let (mut events, last) = right_outcome();
        events[5] = resolve("r3", 1, false, Outcome::Confirmed);
        events[6] = resolve("r2", 2, true, Outcome::Unknown);
        let verdict = check(10, &events, &last);
        assert!(
            verdict.mentions("release of open reservation r3"),
            "{verdict:?}"
        );
        assert!(verdict.mentions("answered UNKNOWN"), "{verdict:?}");
    }

    #[test]
    fn catches_leaked_reservations_and_reused_ids() {
        let (mut events, mut last) = right_outcome();
        events[3] = reserve(1, "r2", 2);
        last.reserved = 1;
        last.available = -1;
        last.reservations = 1;
        let verdict = check(10, &events, &last);
        assert!(verdict.mentions("handed out twice"), "{verdict:?}");
        assert!(verdict.mentions("negative stock"), "{verdict:?}");
    }

    #[test]
    fn decodes_replies() {
        let reply = Value::Array(vec![
            Value::Simple("OK".into()),
            Value::Integer(12),
            Value::Integer(3),
        ]);
        assert_eq!(
            decode(Request::Reserve(2, false), &reply),
            reserve(2, "12", 3)
        );
        let expired = Value::Simple("EXPIRED".into());
        assert_eq!(
            decode(Request::Resolve("12".into(), 2, true), &expired),
            resolve("12", 2, true, Outcome::Expired)
        );
        assert!(matches!(
            decode(Request::Take(1), &Value::Error("ERR".into())),
            StockEvent::Malformed(_)
        ));
    }
}
