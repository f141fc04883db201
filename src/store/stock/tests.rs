use super::*;
use crate::store::encoding::Reader;

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
