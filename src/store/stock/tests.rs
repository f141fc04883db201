use super::*;
use crate::store::encoding::Reader;
use proptest::prelude::*;

const POLICY: IdempotencyPolicy = IdempotencyPolicy {
    window_ms: 1_000,
    entries_max: 100,
};

fn stock(available: u64) -> Stock {
    let mut stock = Stock::new(POLICY);
    stock.set(available, 0).unwrap();
    stock
}

fn reserve(stock: &mut Stock, quantity: u64, ttl_ms: u64, now_ms: u64) -> ReserveOutcome {
    stock
        .reserve(quantity, ttl_ms, None, now_ms)
        .unwrap()
        .outcome
}

fn info(available: u64, reserved: u64, sold: u64, reservations: u64) -> StockInfo {
    StockInfo {
        available,
        reserved,
        sold,
        reservations,
        supplied: available + reserved + sold,
    }
}

#[test]
fn take_is_all_or_nothing() {
    let mut stock = stock(5);
    let taken = stock.take(3, None, 0).unwrap();
    assert_eq!(
        taken,
        Applied::changed(TakeOutcome {
            status: StockStatus::Ok,
            available: 2
        })
    );
    let refused = stock.take(3, None, 0).unwrap();
    assert_eq!(
        refused,
        Applied::unchanged(TakeOutcome {
            status: StockStatus::SoldOut,
            available: 2
        })
    );
    assert_eq!(stock.info(0), info(2, 0, 3, 0));
}

#[test]
fn add_restocks_and_answers_available() {
    let mut stock = Stock::new(POLICY);
    assert_eq!(stock.add(4, None, 0).unwrap(), Applied::changed(4));
    assert_eq!(stock.add(1, None, 0).unwrap(), Applied::changed(5));
    assert_eq!(stock.info(0).supplied, 5);
}

#[test]
fn set_keeps_reservations_and_sales_and_the_invariant() {
    let mut stock = stock(10);
    stock.take(2, None, 0).unwrap();
    reserve(&mut stock, 3, 100, 0);
    assert_eq!(stock.set(1, 0).unwrap(), Applied::changed(()));
    assert_eq!(stock.info(0), info(1, 3, 2, 1));
    assert_eq!(
        stock.set(1, 0).unwrap(),
        Applied::unchanged(()),
        "setting the same count changes nothing"
    );
    stock.check_invariants();
}

#[test]
fn reserve_holds_and_confirm_sells() {
    let mut stock = stock(5);
    let held = reserve(&mut stock, 2, 100, 0);
    assert_eq!(
        held,
        ReserveOutcome {
            status: StockStatus::Ok,
            reservation_id: Some(1),
            available: 3
        }
    );
    assert_eq!(stock.info(0), info(3, 2, 0, 1));
    assert_eq!(stock.next_expiry_ms(), Some(100));
    assert_eq!(
        stock.confirm(1, 50),
        Applied::changed(ReservationState::Confirmed)
    );
    assert_eq!(stock.info(50), info(3, 0, 2, 0));
    assert_eq!(stock.next_expiry_ms(), None);
    // Repeats are safe: same answer, nothing changes.
    assert_eq!(
        stock.confirm(1, 60),
        Applied::unchanged(ReservationState::Confirmed)
    );
    assert_eq!(
        stock.release(1, 60),
        Applied::unchanged(ReservationState::Confirmed)
    );
    assert_eq!(stock.info(60), info(3, 0, 2, 0));
}

#[test]
fn release_returns_the_hold() {
    let mut stock = stock(5);
    reserve(&mut stock, 2, 100, 0);
    assert_eq!(
        stock.release(1, 10),
        Applied::changed(ReservationState::Released)
    );
    assert_eq!(
        stock.release(1, 10),
        Applied::unchanged(ReservationState::Released)
    );
    assert_eq!(
        stock.confirm(1, 10),
        Applied::unchanged(ReservationState::Released)
    );
    assert_eq!(stock.info(10), info(5, 0, 0, 0));
}

#[test]
fn reserve_beyond_available_is_sold_out_and_holds_nothing() {
    let mut stock = stock(1);
    let refused = stock.reserve(2, 100, None, 0).unwrap();
    let expected = ReserveOutcome {
        status: StockStatus::SoldOut,
        reservation_id: None,
        available: 1,
    };
    assert_eq!(refused, Applied::unchanged(expected));
    assert_eq!(stock.info(0), info(1, 0, 0, 0));
}

#[test]
fn ids_unknown_and_never_handed_out_are_unknown() {
    let mut stock = stock(1);
    assert_eq!(
        stock.confirm(0, 0),
        Applied::unchanged(ReservationState::Unknown)
    );
    assert_eq!(
        stock.release(7, 0),
        Applied::unchanged(ReservationState::Unknown)
    );
}

#[test]
fn a_due_reservation_expires_lazily_at_any_access() {
    let mut stock = stock(5);
    reserve(&mut stock, 2, 100, 0);
    // A read at the deadline already sees it expired, without changing anything.
    let before = stock.clone();
    assert_eq!(stock.info(100), info(5, 0, 0, 0));
    assert_eq!(stock, before);
    // A confirm after the TTL says EXPIRED even though no active cycle ran; the expiry is its change.
    assert_eq!(
        stock.confirm(1, 100),
        Applied::changed(ReservationState::Expired)
    );
    assert_eq!(
        stock.confirm(1, 101),
        Applied::unchanged(ReservationState::Expired)
    );
    assert_eq!(
        stock.release(1, 101),
        Applied::unchanged(ReservationState::Expired)
    );
    assert_eq!(stock.info(101), info(5, 0, 0, 0));
    // One unit short without the expired hold: a take sees it back.
    let mut stock = self::stock(2);
    reserve(&mut stock, 2, 10, 0);
    assert_eq!(
        stock.take(2, None, 10).unwrap(),
        Applied::changed(TakeOutcome {
            status: StockStatus::Ok,
            available: 0
        })
    );
    stock.check_invariants();
}

#[test]
fn a_sold_out_reply_that_expired_holds_is_logged() {
    let mut stock = stock(2);
    reserve(&mut stock, 1, 10, 0);
    let refused = stock.take(5, None, 10).unwrap();
    assert_eq!(
        refused,
        Applied::changed(TakeOutcome {
            status: StockStatus::SoldOut,
            available: 2
        })
    );
}

#[test]
fn expire_due_is_bounded_and_in_deadline_order() {
    let mut stock = stock(10);
    reserve(&mut stock, 1, 30, 0); // id 1, due 30
    reserve(&mut stock, 1, 10, 0); // id 2, due 10
    reserve(&mut stock, 1, 20, 0); // id 3, due 20
    reserve(&mut stock, 1, 90, 0); // id 4, due 90
    assert_eq!(stock.next_expiry_ms(), Some(10));
    assert_eq!(stock.expire_due(5, 10), Vec::<ReservationId>::new());
    assert_eq!(stock.expire_due(50, 2), vec![2, 3]);
    assert_eq!(stock.next_expiry_ms(), Some(30));
    assert_eq!(stock.expire_due(50, 2), vec![1]);
    assert_eq!(stock.next_expiry_ms(), Some(90));
    assert_eq!(stock.info(50), info(9, 1, 0, 1));
    assert_eq!(
        stock.confirm(3, 50),
        Applied::unchanged(ReservationState::Expired)
    );
    stock.check_invariants();
}

#[test]
fn settled_states_are_forgotten_after_the_window_or_the_count() {
    let mut stock = Stock::with_settled_memory(POLICY, 100, 2);
    stock.set(10, 0).unwrap();
    for _ in 0..3 {
        reserve(&mut stock, 1, 1_000, 0);
    }
    stock.confirm(1, 0);
    stock.release(2, 0);
    stock.confirm(3, 0);
    assert_eq!(
        stock.confirm(1, 0).outcome,
        ReservationState::Unknown,
        "the oldest goes over the count"
    );
    assert_eq!(stock.release(2, 99).outcome, ReservationState::Released);
    assert_eq!(
        stock.release(2, 100).outcome,
        ReservationState::Unknown,
        "and all after the window"
    );
    // An expiry is remembered from its deadline.
    reserve(&mut stock, 1, 50, 200); // id 4, due 250
    assert_eq!(stock.confirm(4, 349).outcome, ReservationState::Expired);
    assert_eq!(stock.confirm(4, 350).outcome, ReservationState::Unknown);
}

#[test]
fn ids_replay_effects_and_reevaluate_sold_out() {
    let mut stock = stock(3);
    let taken = stock.take(2, Some(b"t1"), 0).unwrap();
    let before = stock.clone();
    assert_eq!(
        stock.take(2, Some(b"t1"), 10).unwrap(),
        Applied::unchanged(taken.outcome)
    );
    assert_eq!(stock, before, "a repeat takes nothing");
    let held = stock.reserve(1, 100, Some(b"r1"), 0).unwrap();
    assert_eq!(
        stock.reserve(1, 100, Some(b"r1"), 5).unwrap(),
        Applied::unchanged(held.outcome)
    );
    assert_eq!(stock.add(5, Some(b"a1"), 5).unwrap(), Applied::changed(5));
    assert_eq!(stock.add(5, Some(b"a1"), 6).unwrap(), Applied::unchanged(5));
    assert_eq!(stock.info(6), info(5, 1, 2, 1));
    // A first call that took nothing is evaluated again on retry.
    let refused = stock.take(9, Some(b"t2"), 7).unwrap();
    assert_eq!(refused.outcome.status, StockStatus::SoldOut);
    stock.add(4, None, 8).unwrap();
    assert_eq!(
        stock.take(9, Some(b"t2"), 9).unwrap().outcome.status,
        StockStatus::Ok
    );
    // After the window the ID is new again.
    assert_eq!(
        stock.add(1, Some(b"a1"), 1_005).unwrap(),
        Applied::changed(2)
    );
}

#[test]
fn bad_arguments_are_errors_and_change_nothing() {
    let mut stock = stock(STOCK_QUANTITY_MAX - 1);
    stock.reserve(1, 10, None, 0).unwrap();
    stock.take(1, Some(b"t"), 0).unwrap();
    let before = stock.clone();
    assert!(stock
        .set(STOCK_QUANTITY_MAX + 1, 0)
        .unwrap_err()
        .starts_with("ERR quantity"));
    assert!(stock
        .add(0, None, 0)
        .unwrap_err()
        .starts_with("ERR quantity"));
    assert!(stock.take(STOCK_QUANTITY_MAX + 1, None, 0).is_err());
    assert!(stock.reserve(0, 10, None, 0).is_err());
    assert!(stock
        .reserve(1, 0, None, 0)
        .unwrap_err()
        .starts_with("ERR ttl"));
    assert!(stock
        .reserve(1, STOCK_RESERVATION_TTL_MS_MAX + 1, None, 0)
        .is_err());
    assert!(stock
        .take(1, Some(b""), 0)
        .unwrap_err()
        .starts_with("ERR request id"));
    assert!(stock
        .add(1, Some(b"t"), 0)
        .unwrap_err()
        .starts_with("ERR request id was already used"));
    // Available is MAX - 3 and one unit is held until 10: at 10 it comes back, so adding 3 is too much.
    assert!(stock
        .add(3, None, 0)
        .is_ok_and(|applied| applied.outcome == STOCK_QUANTITY_MAX));
    let mut stock = before.clone();
    assert!(stock
        .add(3, None, 10)
        .unwrap_err()
        .starts_with("ERR available would exceed"));
    assert_eq!(
        stock, before,
        "the failed add did not expire the due hold either"
    );
    assert!(stock
        .reserve(1, STOCK_RESERVATION_TTL_MS_MAX, None, 0)
        .is_ok());
}

#[test]
fn open_reservations_are_bounded() {
    let mut stock = stock(STOCK_RESERVATIONS_OPEN_MAX as u64 + 1);
    for _ in 0..STOCK_RESERVATIONS_OPEN_MAX {
        stock.reserve(1, 100, None, 0).unwrap();
    }
    let before = stock.clone();
    assert!(stock
        .reserve(1, 100, None, 0)
        .unwrap_err()
        .starts_with("ERR too many open reservations"));
    assert_eq!(stock, before);
    // Once some are due, there is room again.
    assert_eq!(
        stock.reserve(1, 100, None, 100).unwrap().outcome.status,
        StockStatus::Ok
    );
    assert_eq!(stock.info(100).reservations, 1);
    assert!(stock.approximate_memory_bytes() > STOCK_RESERVATIONS_OPEN_MAX);
    stock.check_invariants();
}

// -----------------------------------------------------------------------------------------------------
// The reference model: the semantics written the plain way, for the property test to compare against.

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

#[test]
fn snapshot_encoding_round_trips_reservations_settled_and_request_ids() {
    let mut stock = Stock::new(IdempotencyPolicy::default());
    stock.add(10, Some(b"a"), 0).unwrap();
    stock.take(2, Some(b"t"), 0).unwrap();
    let first = stock.reserve(3, 100, Some(b"r"), 0).unwrap().outcome;
    stock.reserve(1, 50, None, 0).unwrap();
    stock.reserve(1, 500, None, 0).unwrap();
    stock.confirm(first.reservation_id.unwrap(), 10);
    stock.expire_due(60, 10);
    let mut out = Vec::new();
    stock.encode(&mut out);
    let mut reader = Reader::new(&out);
    let mut decoded = Stock::decode(&mut reader).expect("decodes");
    reader.finish().expect("every byte read");
    decoded.check_invariants();
    assert_eq!(decoded, stock);
    assert!(Stock::decode(&mut Reader::new(&out[..out.len() - 1])).is_err());
    for copy in [&mut stock, &mut decoded] {
        copy.take(1, Some(b"t"), 70).unwrap();
        copy.expire_due(1_000, 10);
    }
    assert_eq!(decoded, stock);
}
