//! A sku checked against a simple reference model: random operations, the same answers, and a replay of
//! the changes that reaches the same state.

use super::*;
use proptest::prelude::*;

const POLICY_SMALL: IdempotencyPolicy = IdempotencyPolicy {
    window_ms: 60,
    entries_max: 3,
};
const SETTLED_WINDOW_MS_SMALL: u64 = 80;
const SETTLED_MAX_SMALL: usize = 3;

#[derive(Clone, Debug)]
enum Operation {
    Set {
        quantity: u64,
    },
    Add {
        quantity: u64,
        request_id: Option<u8>,
    },
    Take {
        quantity: u64,
        request_id: Option<u8>,
    },
    Reserve {
        quantity: u64,
        ttl_ms: u64,
        request_id: Option<u8>,
    },
    Confirm {
        reservation_id: u64,
    },
    Release {
        reservation_id: u64,
    },
    ExpireDue {
        max_count: usize,
    },
    Info,
    Advance {
        ms: u64,
    },
}

#[derive(Clone, Debug, PartialEq)]
enum Reply {
    Set,
    Add(u64),
    Take(TakeOutcome),
    Reserve(ReserveOutcome),
    State(ReservationState),
    Expired(Vec<ReservationId>),
    Info(StockInfo),
    Error,
    Advance,
}

#[derive(Default)]
struct Model {
    available: u64,
    sold: u64,
    supplied: u64,
    /// (id, quantity, deadline) of open reservations, in order of creation.
    open: Vec<(u64, u64, u64)>,
    reservations_made: u64,
    /// (id, state, settled at), oldest first.
    settled: Vec<(u64, ReservationState, u64)>,
    /// (request id, recorded at, reply), oldest first.
    requests: Vec<(u8, u64, Reply)>,
}

impl Model {
    fn remember_settled(&mut self, id: u64, state: ReservationState, settled_ms: u64, now_ms: u64) {
        while self
            .settled
            .first()
            .is_some_and(|entry| entry.2 + SETTLED_WINDOW_MS_SMALL <= now_ms)
        {
            self.settled.remove(0);
        }
        self.settled.push((id, state, settled_ms));
        if self.settled.len() > SETTLED_MAX_SMALL {
            self.settled.remove(0);
        }
    }

    fn expire(&mut self, now_ms: u64, max_count: usize) -> Vec<u64> {
        let mut due: Vec<(u64, u64, u64)> = self
            .open
            .iter()
            .copied()
            .filter(|r| r.2 <= now_ms)
            .collect();
        due.sort_by_key(|(id, _, deadline_ms)| (*deadline_ms, *id));
        due.truncate(max_count);
        for (id, quantity, deadline_ms) in &due {
            self.open.retain(|r| r.0 != *id);
            self.available += quantity;
            self.remember_settled(*id, ReservationState::Expired, *deadline_ms, now_ms);
        }
        due.iter().map(|r| r.0).collect()
    }

    fn reserved(&self) -> u64 {
        self.open.iter().map(|r| r.1).sum()
    }

    fn replayed(&self, request_id: Option<u8>, now_ms: u64) -> Option<Reply> {
        let request_id = request_id?;
        let live = self
            .requests
            .iter()
            .find(|r| r.0 == request_id && r.1 + POLICY_SMALL.window_ms > now_ms);
        live.map(|r| r.2.clone())
    }

    fn remember_request(&mut self, request_id: Option<u8>, reply: &Reply, now_ms: u64) {
        let Some(request_id) = request_id else {
            return;
        };
        while self
            .requests
            .first()
            .is_some_and(|r| r.1 + POLICY_SMALL.window_ms <= now_ms)
        {
            self.requests.remove(0);
        }
        self.requests.push((request_id, now_ms, reply.clone()));
        if self.requests.len() > POLICY_SMALL.entries_max {
            self.requests.remove(0);
        }
    }

    fn apply(&mut self, operation: &Operation, now_ms: u64) -> Reply {
        match *operation {
            Operation::Set { quantity } => {
                self.expire(now_ms, usize::MAX);
                self.supplied = self.supplied - self.available + quantity;
                self.available = quantity;
                Reply::Set
            }
            Operation::Add {
                quantity,
                request_id,
            } => {
                if let Some(reply) = self.replayed(request_id, now_ms) {
                    return if matches!(reply, Reply::Add(_)) {
                        reply
                    } else {
                        Reply::Error
                    };
                }
                self.expire(now_ms, usize::MAX);
                self.available += quantity;
                self.supplied += quantity;
                let reply = Reply::Add(self.available);
                self.remember_request(request_id, &reply, now_ms);
                reply
            }
            Operation::Take {
                quantity,
                request_id,
            } => {
                if let Some(reply) = self.replayed(request_id, now_ms) {
                    return if matches!(reply, Reply::Take(_)) {
                        reply
                    } else {
                        Reply::Error
                    };
                }
                self.expire(now_ms, usize::MAX);
                if self.available < quantity {
                    return Reply::Take(TakeOutcome {
                        status: StockStatus::SoldOut,
                        available: self.available,
                    });
                }
                self.available -= quantity;
                self.sold += quantity;
                let reply = Reply::Take(TakeOutcome {
                    status: StockStatus::Ok,
                    available: self.available,
                });
                self.remember_request(request_id, &reply, now_ms);
                reply
            }
            Operation::Reserve {
                quantity,
                ttl_ms,
                request_id,
            } => {
                if let Some(reply) = self.replayed(request_id, now_ms) {
                    return if matches!(reply, Reply::Reserve(_)) {
                        reply
                    } else {
                        Reply::Error
                    };
                }
                self.expire(now_ms, usize::MAX);
                if self.available < quantity {
                    let available = self.available;
                    let outcome = ReserveOutcome {
                        status: StockStatus::SoldOut,
                        reservation_id: None,
                        available,
                    };
                    return Reply::Reserve(outcome);
                }
                self.reservations_made += 1;
                self.available -= quantity;
                self.open
                    .push((self.reservations_made, quantity, now_ms + ttl_ms));
                let reply = Reply::Reserve(ReserveOutcome {
                    status: StockStatus::Ok,
                    reservation_id: Some(self.reservations_made),
                    available: self.available,
                });
                self.remember_request(request_id, &reply, now_ms);
                reply
            }
            Operation::Confirm { reservation_id } | Operation::Release { reservation_id } => {
                self.expire(now_ms, usize::MAX);
                let confirm = matches!(operation, Operation::Confirm { .. });
                if let Some(position) = self.open.iter().position(|r| r.0 == reservation_id) {
                    let (_, quantity, _) = self.open.remove(position);
                    let state = if confirm {
                        self.sold += quantity;
                        ReservationState::Confirmed
                    } else {
                        self.available += quantity;
                        ReservationState::Released
                    };
                    self.remember_settled(reservation_id, state, now_ms, now_ms);
                    return Reply::State(state);
                }
                let remembered = self
                    .settled
                    .iter()
                    .find(|s| s.0 == reservation_id && s.2 + SETTLED_WINDOW_MS_SMALL > now_ms);
                Reply::State(remembered.map_or(ReservationState::Unknown, |s| s.1))
            }
            Operation::ExpireDue { max_count } => Reply::Expired(self.expire(now_ms, max_count)),
            Operation::Info => {
                let due: Vec<&(u64, u64, u64)> =
                    self.open.iter().filter(|r| r.2 <= now_ms).collect();
                let due_quantity: u64 = due.iter().map(|r| r.1).sum();
                Reply::Info(StockInfo {
                    available: self.available + due_quantity,
                    reserved: self.reserved() - due_quantity,
                    sold: self.sold,
                    reservations: (self.open.len() - due.len()) as u64,
                    supplied: self.supplied,
                })
            }
            Operation::Advance { .. } => Reply::Advance,
        }
    }
}

fn apply(stock: &mut Stock, operation: &Operation, now_ms: u64) -> (Reply, bool) {
    let request = |request_id: Option<u8>| request_id.map(|id| [b'r', id]);
    let reply_of = |result: Result<(Reply, bool), String>| match result {
        Ok(reply) => reply,
        Err(message) => {
            assert!(
                message.starts_with("ERR request id was already used"),
                "{message}"
            );
            (Reply::Error, false)
        }
    };
    match *operation {
        Operation::Set { quantity } => {
            let applied = stock.set(quantity, now_ms).unwrap();
            (Reply::Set, applied.changed)
        }
        Operation::Add {
            quantity,
            request_id,
        } => reply_of(
            stock
                .add(
                    quantity,
                    request(request_id).as_ref().map(|id| &id[..]),
                    now_ms,
                )
                .map(|applied| (Reply::Add(applied.outcome), applied.changed)),
        ),
        Operation::Take {
            quantity,
            request_id,
        } => reply_of(
            stock
                .take(
                    quantity,
                    request(request_id).as_ref().map(|id| &id[..]),
                    now_ms,
                )
                .map(|applied| (Reply::Take(applied.outcome), applied.changed)),
        ),
        Operation::Reserve {
            quantity,
            ttl_ms,
            request_id,
        } => reply_of(
            stock
                .reserve(
                    quantity,
                    ttl_ms,
                    request(request_id).as_ref().map(|id| &id[..]),
                    now_ms,
                )
                .map(|applied| (Reply::Reserve(applied.outcome), applied.changed)),
        ),
        Operation::Confirm { reservation_id } => {
            let applied = stock.confirm(reservation_id, now_ms);
            (Reply::State(applied.outcome), applied.changed)
        }
        Operation::Release { reservation_id } => {
            let applied = stock.release(reservation_id, now_ms);
            (Reply::State(applied.outcome), applied.changed)
        }
        Operation::ExpireDue { max_count } => {
            let expired = stock.expire_due(now_ms, max_count);
            let changed = !expired.is_empty();
            (Reply::Expired(expired), changed)
        }
        Operation::Info => (Reply::Info(stock.info(now_ms)), false),
        Operation::Advance { .. } => (Reply::Advance, false),
    }
}

fn operation_strategy() -> impl Strategy<Value = Operation> {
    let request_id = || proptest::option::of(0..4u8);
    prop_oneof![
        1 => (0..8u64).prop_map(|quantity| Operation::Set { quantity }),
        2 => (1..5u64, request_id()).prop_map(|(quantity, request_id)| Operation::Add { quantity, request_id }),
        3 => (1..5u64, request_id()).prop_map(|(quantity, request_id)| Operation::Take { quantity, request_id }),
        4 => (1..4u64, 1..50u64, request_id())
            .prop_map(|(quantity, ttl_ms, request_id)| Operation::Reserve { quantity, ttl_ms, request_id }),
        2 => (0..10u64).prop_map(|reservation_id| Operation::Confirm { reservation_id }),
        2 => (0..10u64).prop_map(|reservation_id| Operation::Release { reservation_id }),
        1 => (1..3usize).prop_map(|max_count| Operation::ExpireDue { max_count }),
        1 => Just(Operation::Info),
        3 => (0..30u64).prop_map(|ms| Operation::Advance { ms }),
    ]
}

fn empty_stock() -> Stock {
    Stock::with_settled_memory(POLICY_SMALL, SETTLED_WINDOW_MS_SMALL, SETTLED_MAX_SMALL)
}

/// Runs the operations from empty; returns the stock and the calls that changed state, with their time.
fn run(operations: &[Operation], mut model: Option<&mut Model>) -> (Stock, Vec<(Operation, u64)>) {
    let mut stock = empty_stock();
    let mut logged = Vec::new();
    let mut now_ms = 0;
    for operation in operations {
        if let Operation::Advance { ms } = operation {
            now_ms += ms;
        }
        let before = stock.clone();
        let (reply, changed) = apply(&mut stock, operation, now_ms);
        if let Some(model) = model.as_deref_mut() {
            assert_eq!(
                reply,
                model.apply(operation, now_ms),
                "{operation:?} at {now_ms}"
            );
            let viewed = stock.info(now_ms);
            let Reply::Info(expected) = model.apply(&Operation::Info, now_ms) else {
                unreachable!()
            };
            assert_eq!(viewed, expected);
        }
        if changed {
            logged.push((operation.clone(), now_ms));
        } else {
            assert_eq!(
                stock, before,
                "an unchanged call left the value as it was: {operation:?}"
            );
        }
        stock.check_invariants();
        let viewed = stock.info(now_ms);
        assert_eq!(
            viewed.available + viewed.reserved + viewed.sold,
            viewed.supplied
        );
    }
    (stock, logged)
}

proptest! {
    #[test]
    fn matches_the_model_and_replays_to_the_same_state(
        operations in proptest::collection::vec(operation_strategy(), 0..100),
    ) {
        let mut model = Model::default();
        let (live, logged) = run(&operations, Some(&mut model));

        // Determinism: the same operations from empty give the same state.
        let (again, _) = run(&operations, None);
        prop_assert_eq!(&again, &live);

        // Replay: only the calls that changed state, with their logged time, rebuild the same value.
        let mut replayed = empty_stock();
        for (operation, now_ms) in &logged {
            let (_, changed) = apply(&mut replayed, operation, *now_ms);
            prop_assert!(changed, "a logged call changes state again on replay");
        }
        prop_assert_eq!(&replayed, &live);
    }
}
