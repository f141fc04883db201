//! Model-based property test: random sequences of string, counter, set, coupon and stock commands, with
//! SIGKILL-and-restart steps, against the real binary and a small reference model. Every reply must be
//! exactly the model's, before and after each restart (replay must rebuild the same state, and with
//! `appendfsync always` every acknowledged command is in the log).
//!
//! All commands share four keys, so wrong-type errors, overwrites and deletions across types are part of
//! the search. `DIBS_MODEL_CASES=n` runs more sequences (default 32); proptest shrinks a failure to a
//! minimal sequence and prints it.
mod common;

use common::{RawClient, Server, TempDir};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const KEYS: [&str; 4] = ["a", "b", "c", "d"];
const RESERVATION_TTL_MS: &str = "3600000";
const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

#[derive(Clone, Debug)]
enum Operation {
    Set(usize, &'static str),
    Get(usize),
    IncrementBy(usize, i64),
    Delete(usize),
    SetAdd(usize, u8),
    SetRemove(usize, u8),
    SetIsMember(usize, u8),
    SetCardinality(usize),
    CouponCreate(usize, i64, i64),
    CouponIssue(usize, u8),
    StockAdd(usize, i64),
    StockTake(usize, i64),
    StockReserve(usize, i64),
    StockConfirm(usize, i64),
    StockRelease(usize, i64),
    StockInfo(usize),
    Restart,
}

fn operation() -> impl Strategy<Value = Operation> {
    let key = 0..KEYS.len();
    prop_oneof![
        3 => (key.clone(), prop::sample::select(vec!["0", "12", "-5", "abc", "", "9223372036854775800"]))
            .prop_map(|(key, value)| Operation::Set(key, value)),
        2 => key.clone().prop_map(Operation::Get),
        3 => (key.clone(), prop_oneof![-20i64..20, Just(i64::MAX), Just(i64::MIN)])
            .prop_map(|(key, delta)| Operation::IncrementBy(key, delta)),
        1 => key.clone().prop_map(Operation::Delete),
        3 => (key.clone(), 0u8..4).prop_map(|(key, member)| Operation::SetAdd(key, member)),
        2 => (key.clone(), 0u8..4).prop_map(|(key, member)| Operation::SetRemove(key, member)),
        1 => (key.clone(), 0u8..4).prop_map(|(key, member)| Operation::SetIsMember(key, member)),
        1 => key.clone().prop_map(Operation::SetCardinality),
        2 => (key.clone(), 1i64..4, 1i64..3)
            .prop_map(|(key, total, per_user)| Operation::CouponCreate(key, total, per_user)),
        4 => (key.clone(), 0u8..4).prop_map(|(key, user)| Operation::CouponIssue(key, user)),
        2 => (key.clone(), 1i64..5).prop_map(|(key, quantity)| Operation::StockAdd(key, quantity)),
        2 => (key.clone(), 1i64..4).prop_map(|(key, quantity)| Operation::StockTake(key, quantity)),
        2 => (key.clone(), 1i64..4).prop_map(|(key, quantity)| Operation::StockReserve(key, quantity)),
        2 => (key.clone(), 1i64..5).prop_map(|(key, id)| Operation::StockConfirm(key, id)),
        1 => (key.clone(), 1i64..5).prop_map(|(key, id)| Operation::StockRelease(key, id)),
        1 => key.clone().prop_map(Operation::StockInfo),
        1 => Just(Operation::Restart),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reservation {
    Open(i64),
    Confirmed,
    Released,
}

#[derive(Clone, Debug)]
enum Value {
    String(Vec<u8>),
    Set(BTreeSet<u8>),
    Coupon {
        total: i64,
        per_user: i64,
        /// Numbers in issue order, with their holder.
        issued: Vec<u8>,
    },
    Stock {
        available: i64,
        reserved: i64,
        sold: i64,
        supplied: i64,
        reservations: Vec<Reservation>,
    },
}

fn bulk(bytes: &[u8]) -> String {
    format!("${}\r\n{}\r\n", bytes.len(), String::from_utf8_lossy(bytes))
}

fn integer(value: i64) -> String {
    format!(":{value}\r\n")
}

/// Redis's integer rules: optional '-', no '+', no leading zeros, no spaces, within i64.
fn parse_strict(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let value: i64 = text.parse().ok()?;
    (value.to_string() == text).then_some(value)
}

#[derive(Default)]
struct Model {
    keys: BTreeMap<usize, Value>,
}

impl Model {
    /// The command to send and the reply the model expects; `None` for a restart.
    fn apply(&mut self, operation: &Operation) -> Option<(Vec<String>, String)> {
        use Operation as O;
        let name = |key: &usize| KEYS[*key].to_string();
        let entry = |model: &Model, key: &usize| model.keys.get(key).cloned();
        Some(match operation {
            O::Restart => return None,
            O::Set(key, value) => {
                self.keys
                    .insert(*key, Value::String(value.as_bytes().to_vec()));
                (
                    vec!["SET".into(), name(key), value.to_string()],
                    "+OK\r\n".into(),
                )
            }
            O::Get(key) => {
                let reply = match entry(self, key) {
                    None => "$-1\r\n".into(),
                    Some(Value::String(bytes)) => bulk(&bytes),
                    Some(_) => WRONGTYPE.into(),
                };
                (vec!["GET".into(), name(key)], reply)
            }
            O::IncrementBy(key, delta) => {
                let current = match entry(self, key) {
                    None => Ok(0),
                    Some(Value::String(bytes)) => parse_strict(&bytes)
                        .ok_or("-ERR value is not an integer or out of range\r\n".to_string()),
                    Some(_) => Err(WRONGTYPE.to_string()),
                };
                let reply = match current {
                    Err(error) => error,
                    Ok(current) => match current.checked_add(*delta) {
                        None => "-ERR increment or decrement would overflow\r\n".into(),
                        Some(new) => {
                            self.keys
                                .insert(*key, Value::String(new.to_string().into_bytes()));
                            integer(new)
                        }
                    },
                };
                (vec!["INCRBY".into(), name(key), delta.to_string()], reply)
            }
            O::Delete(key) => {
                let removed = self.keys.remove(key).is_some();
                (vec!["DEL".into(), name(key)], integer(i64::from(removed)))
            }
            O::SetAdd(key, member) => {
                let reply = match self
                    .keys
                    .entry(*key)
                    .or_insert_with(|| Value::Set(BTreeSet::new()))
                {
                    Value::Set(members) => integer(i64::from(members.insert(*member))),
                    _ => WRONGTYPE.into(),
                };
                (vec!["SADD".into(), name(key), format!("m{member}")], reply)
            }
            O::SetRemove(key, member) => {
                let reply = match self.keys.get_mut(key) {
                    None => integer(0),
                    Some(Value::Set(members)) => {
                        let removed = members.remove(member);
                        if members.is_empty() {
                            self.keys.remove(key);
                        }
                        integer(i64::from(removed))
                    }
                    Some(_) => WRONGTYPE.into(),
                };
                (vec!["SREM".into(), name(key), format!("m{member}")], reply)
            }
            O::SetIsMember(key, member) => {
                let reply = match entry(self, key) {
                    None => integer(0),
                    Some(Value::Set(members)) => integer(i64::from(members.contains(member))),
                    Some(_) => WRONGTYPE.into(),
                };
                (
                    vec!["SISMEMBER".into(), name(key), format!("m{member}")],
                    reply,
                )
            }
            O::SetCardinality(key) => {
                let reply = match entry(self, key) {
                    None => integer(0),
                    Some(Value::Set(members)) => integer(members.len() as i64),
                    Some(_) => WRONGTYPE.into(),
                };
                (vec!["SCARD".into(), name(key)], reply)
            }
            O::CouponCreate(key, total, per_user) => {
                let reply = match entry(self, key) {
                    None => {
                        self.keys.insert(
                            *key,
                            Value::Coupon {
                                total: *total,
                                per_user: *per_user,
                                issued: Vec::new(),
                            },
                        );
                        "+OK\r\n".into()
                    }
                    Some(Value::Coupon { .. }) => "-ERR coupon event already exists\r\n".into(),
                    Some(_) => WRONGTYPE.into(),
                };
                (
                    vec![
                        "COUPON.CREATE".into(),
                        name(key),
                        total.to_string(),
                        "PERUSER".into(),
                        per_user.to_string(),
                    ],
                    reply,
                )
            }
            O::CouponIssue(key, user) => {
                let reply = match self.keys.get_mut(key) {
                    None => "-ERR no such coupon event\r\n".into(),
                    Some(Value::Coupon {
                        total,
                        per_user,
                        issued,
                    }) => {
                        let remaining = *total - issued.len() as i64;
                        let held: Vec<usize> = issued
                            .iter()
                            .enumerate()
                            .filter(|(_, holder)| *holder == user)
                            .map(|(index, _)| index + 1)
                            .collect();
                        if held.len() as i64 >= *per_user {
                            format!("*3\r\n$7\r\nALREADY\r\n:{}\r\n:{remaining}\r\n", held[0])
                        } else if remaining == 0 {
                            "*3\r\n$7\r\nSOLDOUT\r\n$-1\r\n:0\r\n".into()
                        } else {
                            issued.push(*user);
                            format!(
                                "*3\r\n$6\r\nISSUED\r\n:{}\r\n:{}\r\n",
                                issued.len(),
                                remaining - 1
                            )
                        }
                    }
                    Some(_) => WRONGTYPE.into(),
                };
                (
                    vec!["COUPON.ISSUE".into(), name(key), format!("u{user}")],
                    reply,
                )
            }
            O::StockAdd(key, quantity) => {
                let reply = match self.keys.entry(*key).or_insert(Value::Stock {
                    available: 0,
                    reserved: 0,
                    sold: 0,
                    supplied: 0,
                    reservations: Vec::new(),
                }) {
                    Value::Stock {
                        available,
                        supplied,
                        ..
                    } => {
                        *available += quantity;
                        *supplied += quantity;
                        integer(*available)
                    }
                    _ => WRONGTYPE.into(),
                };
                (
                    vec!["STOCK.ADD".into(), name(key), quantity.to_string()],
                    reply,
                )
            }
            O::StockTake(key, quantity) => {
                let reply = match self.keys.get_mut(key) {
                    None => "-ERR no such stock sku\r\n".into(),
                    Some(Value::Stock {
                        available, sold, ..
                    }) => {
                        if *available >= *quantity {
                            *available -= quantity;
                            *sold += quantity;
                            format!("*2\r\n$2\r\nOK\r\n:{available}\r\n")
                        } else {
                            format!("*2\r\n$7\r\nSOLDOUT\r\n:{available}\r\n")
                        }
                    }
                    Some(_) => WRONGTYPE.into(),
                };
                (
                    vec!["STOCK.TAKE".into(), name(key), quantity.to_string()],
                    reply,
                )
            }
            O::StockReserve(key, quantity) => {
                let reply = match self.keys.get_mut(key) {
                    None => "-ERR no such stock sku\r\n".into(),
                    Some(Value::Stock {
                        available,
                        reserved,
                        reservations,
                        ..
                    }) => {
                        if *available >= *quantity {
                            *available -= quantity;
                            *reserved += quantity;
                            reservations.push(Reservation::Open(*quantity));
                            format!(
                                "*3\r\n$2\r\nOK\r\n:{}\r\n:{available}\r\n",
                                reservations.len()
                            )
                        } else {
                            format!("*3\r\n$7\r\nSOLDOUT\r\n$-1\r\n:{available}\r\n")
                        }
                    }
                    Some(_) => WRONGTYPE.into(),
                };
                (
                    vec![
                        "STOCK.RESERVE".into(),
                        name(key),
                        quantity.to_string(),
                        RESERVATION_TTL_MS.into(),
                    ],
                    reply,
                )
            }
            O::StockConfirm(key, id) | O::StockRelease(key, id) => {
                let confirm = matches!(operation, O::StockConfirm(..));
                let reply = match self.keys.get_mut(key) {
                    None => "-ERR no such stock sku\r\n".into(),
                    Some(Value::Stock {
                        available,
                        reserved,
                        sold,
                        reservations,
                        ..
                    }) => match reservations.get_mut(*id as usize - 1) {
                        None => bulk(b"UNKNOWN"),
                        Some(state) => {
                            if let Reservation::Open(quantity) = *state {
                                *reserved -= quantity;
                                if confirm {
                                    *sold += quantity;
                                    *state = Reservation::Confirmed;
                                } else {
                                    *available += quantity;
                                    *state = Reservation::Released;
                                }
                            }
                            match state {
                                Reservation::Confirmed => bulk(b"CONFIRMED"),
                                Reservation::Released => bulk(b"RELEASED"),
                                Reservation::Open(_) => unreachable!("settled above"),
                            }
                        }
                    },
                    Some(_) => WRONGTYPE.into(),
                };
                let command = if confirm {
                    "STOCK.CONFIRM"
                } else {
                    "STOCK.RELEASE"
                };
                (vec![command.into(), name(key), id.to_string()], reply)
            }
            O::StockInfo(key) => {
                let reply = match entry(self, key) {
                    None => "-ERR no such stock sku\r\n".into(),
                    Some(Value::Stock {
                        available,
                        reserved,
                        sold,
                        supplied,
                        reservations,
                    }) => {
                        let open = reservations
                            .iter()
                            .filter(|state| matches!(state, Reservation::Open(_)))
                            .count();
                        format!(
                            "*10\r\n$9\r\navailable\r\n:{available}\r\n$8\r\nreserved\r\n:{reserved}\r\n\
                             $4\r\nsold\r\n:{sold}\r\n$12\r\nreservations\r\n:{open}\r\n\
                             $8\r\nsupplied\r\n:{supplied}\r\n"
                        )
                    }
                    Some(_) => WRONGTYPE.into(),
                };
                (vec!["STOCK.INFO".into(), name(key)], reply)
            }
        })
    }

    /// After a restart, every key must read back as the model holds it.
    fn expected_reads(&self) -> Vec<(Vec<String>, String)> {
        let mut reads = Vec::new();
        for (index, key) in KEYS.iter().enumerate() {
            let (command, reply) = match self.keys.get(&index) {
                None => (vec!["TYPE".into(), key.to_string()], "+none\r\n".into()),
                Some(Value::String(bytes)) => (vec!["GET".into(), key.to_string()], bulk(bytes)),
                Some(Value::Set(members)) => (
                    vec!["SCARD".into(), key.to_string()],
                    integer(members.len() as i64),
                ),
                Some(Value::Coupon { .. }) => {
                    (vec!["TYPE".into(), key.to_string()], "+coupon\r\n".into())
                }
                Some(Value::Stock { .. }) => {
                    (vec!["TYPE".into(), key.to_string()], "+stock\r\n".into())
                }
            };
            reads.push((command, reply));
        }
        reads
    }
}

fn cases() -> u32 {
    std::env::var("DIBS_MODEL_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(32)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn commands_and_restarts_match_the_model(operations in prop::collection::vec(operation(), 1..80)) {
        let dir = TempDir::new("model");
        let mut server = Server::start(dir.path(), &[]);
        let mut client: RawClient = server.raw();
        let mut model = Model::default();
        for (step, operation) in operations.iter().enumerate() {
            match model.apply(operation) {
                Some((command, expected)) => {
                    let arguments: Vec<&str> = command.iter().map(String::as_str).collect();
                    let reply = client.call(&arguments);
                    prop_assert_eq!(reply, expected, "step {}: {:?}", step, command);
                }
                None => {
                    server.restart();
                    client = server.raw();
                    for (command, expected) in model.expected_reads() {
                        let arguments: Vec<&str> = command.iter().map(String::as_str).collect();
                        let reply = client.call(&arguments);
                        prop_assert_eq!(reply, expected, "after the restart at step {}: {:?}", step, command);
                    }
                }
            }
        }
    }
}
