//! The load: client threads that each own a slice of the keyspace and record every call they make.
//!
//! Every call is recorded before it is sent (invoked) and then resolved to one of:
//! - `Acknowledged(reply)`: the server answered with something other than an error; with `appendfsync
//!   always` the change is durable and must survive the kill;
//! - `Failed(error)`: an error reply; the command changed nothing;
//! - `Unknown`: the connection broke before the reply (the kill). The change may or may not be there.
//!
//! A client stops at its first unknown call, so each client has at most one unknown call per cycle, and it
//! is its last. Clients own their keys (their own counter, their own set) or their own user names (coupon,
//! like and queue users carry the client and the cycle), so what a client was told settles what must be
//! there without guessing at interleavings; the shared counter and the shared stock sku are checked with
//! bounds instead.

use crate::random::Random;
use crate::resp::{Command, Connection, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Set members a client picks from, so SREM finds something to remove.
pub const SET_MEMBERS_COUNT: u64 = 64;
/// Posts the likes go to.
pub const POSTS_COUNT: usize = 3;
/// Reservations live this long: longer than any sane run, so a reservation acknowledged before a kill is
/// still open (or settled by the client) when it is checked.
pub const RESERVATION_TTL_MS: u64 = 3_600_000;
pub const SKU: &str = "crash:sku";
pub const SHARED_COUNTER: &str = "crash:counter:shared";
pub const ROOM: &str = "crash:room";

pub fn own_counter(client: usize) -> String {
    format!("crash:counter:{client}")
}

pub fn own_set(client: usize) -> String {
    format!("crash:set:{client}")
}

pub fn own_list(client: usize) -> String {
    format!("crash:list:{client}")
}

pub fn coupon_event(cycle: u64) -> String {
    format!("crash:coupon:{cycle}")
}

pub fn post(index: usize) -> String {
    format!("crash:post:{index}")
}

/// Which parts of the load run.
#[derive(Clone, Copy, Debug)]
pub struct Parts {
    pub counters: bool,
    pub sets: bool,
    pub coupons: bool,
    pub stock: bool,
    pub likes: bool,
    pub queue: bool,
    pub lists: bool,
}

/// One call, typed by what the checker needs to know about it.
#[derive(Clone, Debug)]
pub enum Operation {
    IncrementOwn {
        delta: i64,
    },
    IncrementShared {
        delta: i64,
    },
    SetAdd {
        member: u64,
    },
    SetRemove {
        member: u64,
    },
    CouponIssue {
        event: String,
        user: String,
    },
    StockTake {
        quantity: i64,
    },
    StockReserve {
        quantity: i64,
    },
    StockConfirm {
        reservation: i64,
        quantity: i64,
    },
    StockRelease {
        reservation: i64,
    },
    LikeAdd {
        post: usize,
        user: String,
    },
    QueueJoin {
        user: String,
    },
    /// RPUSH of a value no other call pushes.
    ListPush {
        value: String,
    },
    /// LPOP.
    ListPop,
}

#[derive(Clone, Debug)]
pub enum Outcome {
    Acknowledged(Value),
    Failed(String),
    Unknown,
}

#[derive(Clone, Debug)]
pub struct Call {
    pub operation: Operation,
    pub outcome: Outcome,
}

/// What one client did in one cycle.
#[derive(Debug, Default)]
pub struct ClientHistory {
    pub client: usize,
    pub calls: Vec<Call>,
    /// Reservations this client holds open (id, quantity), carried from cycle to cycle.
    pub open_reservations: Vec<(i64, i64)>,
}

/// Runs one client until `stop` is set or its connection breaks.
pub fn run_client(
    client: usize,
    cycle: u64,
    port: u16,
    parts: Parts,
    seed: u64,
    open_reservations: Vec<(i64, i64)>,
    stop: Arc<AtomicBool>,
) -> ClientHistory {
    let mut random = Random::new(seed);
    let mut history = ClientHistory {
        client,
        calls: Vec::new(),
        open_reservations,
    };
    let Ok(mut connection) = Connection::open("127.0.0.1", port) else {
        return history;
    };
    let mut user_number = 0u64;
    let mut next_user = |label: &str| {
        user_number += 1;
        format!("{label}-c{client}-y{cycle}-{user_number}")
    };
    let mut kinds = Vec::new();
    if parts.counters {
        kinds.extend([0, 1]);
    }
    if parts.sets {
        kinds.extend([2, 2, 3]);
    }
    if parts.coupons {
        kinds.extend([4, 4]);
    }
    if parts.stock {
        kinds.extend([5, 6, 7]);
    }
    if parts.likes {
        kinds.extend([8, 8]);
    }
    if parts.queue {
        kinds.push(9);
    }
    if parts.lists {
        kinds.extend([10, 10, 11]);
    }
    if kinds.is_empty() {
        return history;
    }
    while !stop.load(Ordering::Relaxed) {
        let kind = kinds[random.below(kinds.len() as u64) as usize];
        let (operation, command): (Operation, Command) = match kind {
            0 => {
                let delta = 1 + random.below(9) as i64;
                (
                    Operation::IncrementOwn { delta },
                    crate::command!["INCRBY", own_counter(client), delta],
                )
            }
            1 => {
                let delta = 1 + random.below(9) as i64;
                (
                    Operation::IncrementShared { delta },
                    crate::command!["INCRBY", SHARED_COUNTER, delta],
                )
            }
            2 => {
                let member = random.below(SET_MEMBERS_COUNT);
                (
                    Operation::SetAdd { member },
                    crate::command!["SADD", own_set(client), format!("m{member}")],
                )
            }
            3 => {
                let member = random.below(SET_MEMBERS_COUNT);
                (
                    Operation::SetRemove { member },
                    crate::command!["SREM", own_set(client), format!("m{member}")],
                )
            }
            4 => {
                let event = coupon_event(cycle);
                let user = next_user("u");
                (
                    Operation::CouponIssue {
                        event: event.clone(),
                        user: user.clone(),
                    },
                    crate::command!["COUPON.ISSUE", event, user],
                )
            }
            5 => {
                let quantity = 1 + random.below(3) as i64;
                (
                    Operation::StockTake { quantity },
                    crate::command!["STOCK.TAKE", SKU, quantity],
                )
            }
            6 if history.open_reservations.is_empty() || random.chance(0.5) => {
                let quantity = 1 + random.below(2) as i64;
                (
                    Operation::StockReserve { quantity },
                    crate::command!["STOCK.RESERVE", SKU, quantity, RESERVATION_TTL_MS],
                )
            }
            6 | 7 if !history.open_reservations.is_empty() => {
                let index = random.below(history.open_reservations.len() as u64) as usize;
                let (reservation, quantity) = history.open_reservations.swap_remove(index);
                if random.chance(0.6) {
                    (
                        Operation::StockConfirm {
                            reservation,
                            quantity,
                        },
                        crate::command!["STOCK.CONFIRM", SKU, reservation],
                    )
                } else {
                    (
                        Operation::StockRelease { reservation },
                        crate::command!["STOCK.RELEASE", SKU, reservation],
                    )
                }
            }
            7 => continue,
            8 => {
                let post_index = random.below(POSTS_COUNT as u64) as usize;
                let user = next_user("l");
                (
                    Operation::LikeAdd {
                        post: post_index,
                        user: user.clone(),
                    },
                    crate::command!["LIKE.ADD", post(post_index), user],
                )
            }
            10 => {
                let value = next_user("v");
                (
                    Operation::ListPush {
                        value: value.clone(),
                    },
                    crate::command!["RPUSH", own_list(client), value],
                )
            }
            11 => (
                Operation::ListPop,
                crate::command!["LPOP", own_list(client)],
            ),
            _ => {
                let user = next_user("q");
                (
                    Operation::QueueJoin { user: user.clone() },
                    crate::command!["QUEUE.JOIN", ROOM, user],
                )
            }
        };
        // Invoked: recorded before a byte is sent, resolved below.
        history.calls.push(Call {
            operation,
            outcome: Outcome::Unknown,
        });
        let outcome = match connection.call(command) {
            Ok(Value::Error(message)) => Outcome::Failed(message),
            Ok(reply) => Outcome::Acknowledged(reply),
            Err(_) => Outcome::Unknown,
        };
        let call = history.calls.last_mut().expect("just pushed");
        call.outcome = outcome;
        match (&call.operation, &call.outcome) {
            (Operation::StockReserve { quantity }, Outcome::Acknowledged(reply)) => {
                if let Some(reservation) = reserved_id(reply) {
                    history.open_reservations.push((reservation, *quantity));
                }
            }
            (_, Outcome::Unknown) => break,
            _ => {}
        }
    }
    history
}

/// The id of a `[OK, id, available]` reservation reply.
pub fn reserved_id(reply: &Value) -> Option<i64> {
    let items = reply.array()?;
    if items.first()?.text()? == "OK" {
        items.get(1)?.integer()
    } else {
        None
    }
}
