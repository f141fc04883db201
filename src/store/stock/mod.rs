//! The `stock` value type: units of one sku that can be taken outright or held for a checkout.
//!
//! # What it owns
//! One sku's counts (available, reserved, sold, and everything ever supplied), its open reservations with
//! an index ordered by deadline, the final states of recently settled reservations, and the request IDs of
//! `STOCK.ADD/TAKE/RESERVE ... ID` calls. No networking and no RESP: the command table turns the outcomes
//! into replies, and logs the calls whose [`Applied::changed`] is `true`.
//!
//! # Guarantee
//! `available + reserved + sold == supplied` after every call, where `supplied` is everything ever set or
//! added (adjusted by `SET`, below). Asserted at the end of every mutation and checked by the tests.
//!
//! # Semantics (protocol.md copies this section)
//! - Quantities for `ADD`, `TAKE` and `RESERVE` are 1 to [`STOCK_QUANTITY_MAX`]; `SET` also accepts 0. `ADD`
//!   refuses to push `available` past [`STOCK_QUANTITY_MAX`] (an error; nothing changes).
//! - `STOCK.SET sku qty` sets `available` to `qty`; reservations and sales stand. It is a correction of the
//!   shelf count, so `supplied` moves by the same amount (`supplied = qty + reserved + sold`) and the
//!   invariant holds by definition.
//! - `TAKE` takes all `qty` or nothing: `SOLDOUT` when fewer are available.
//! - `RESERVE sku qty ttl-ms` moves `qty` from available to reserved until `now + ttl-ms` (`ttl-ms` 1 to
//!   [`STOCK_RESERVATION_TTL_MS_MAX`]); `SOLDOUT` holds nothing. At most [`STOCK_RESERVATIONS_OPEN_MAX`]
//!   reservations are open per sku; one more is an error.
//! - Reservation ids are integers 1, 2, 3, ... per sku, never reused: deterministic, no randomness.
//! - Expiry: a reservation whose deadline is `<= now` is expired. Every call that may change the sku first
//!   expires all due reservations, in deadline order, as part of its own (logged) mutation; reads
//!   (`STOCK.INFO`) report the same view without changing anything. So `CONFIRM` after the TTL says
//!   `EXPIRED` even if the active expiry cycle has not run yet, and replay, which runs the same calls with
//!   the logged times, does exactly the same. The loop's active cycle calls `expire_due(now, max_count)`
//!   (bounded work, to be logged when it expired anything) and sleeps until `next_expiry_ms()`.
//! - `CONFIRM` of an open reservation: held units become sold, `CONFIRMED`. `RELEASE` of an open one: they
//!   become available again, `RELEASED`. On a settled reservation both answer its final state and change
//!   nothing: confirming an expired one says `EXPIRED`, releasing a confirmed one says `CONFIRMED`. Both are
//!   safe to repeat.
//! - Final states are remembered for [`STOCK_SETTLED_WINDOW_MS`] after settling (an expiry settles at its
//!   deadline) and for at most [`STOCK_SETTLED_REMEMBERED_MAX`] reservations per sku, oldest forgotten first.
//!   A forgotten reservation, and an id never handed out, answers `UNKNOWN`.
//! - `ID` pins the replies that changed state: every `ADD`, `TAKE ... OK` and `RESERVE ... OK`. A repeat of
//!   that ID on the same sku within the window replays the first reply and changes nothing (no second
//!   take, no second hold). A first call that changed nothing (`SOLDOUT`) leaves no trace, so a retry is
//!   evaluated afresh and can succeed once stock is back. Using one ID for two different commands on one
//!   sku is an error.
//! - `STOCK.INFO`: available, reserved, sold, reservations (open ones), and supplied.

pub mod codec;
pub mod commands;

use std::collections::{BTreeSet, HashMap};

use crate::limits::{
    STOCK_QUANTITY_MAX, STOCK_RESERVATIONS_OPEN_MAX, STOCK_RESERVATION_TTL_MS_MAX,
    STOCK_SETTLED_REMEMBERED_MAX, STOCK_SETTLED_WINDOW_MS,
};
use crate::store::idempotency::{Applied, IdempotencyCache, IdempotencyPolicy, WindowedMap};

/// What `TYPE` says for a stock key.
pub const TYPE_NAME: &str = "stock";

/// A reservation's id: 1, 2, 3, ... per sku.
pub type ReservationId = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StockStatus {
    Ok,
    SoldOut,
}

impl StockStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StockStatus::Ok => "OK",
            StockStatus::SoldOut => "SOLDOUT",
        }
    }
}

/// The reply of `STOCK.TAKE`: `[status, available]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TakeOutcome {
    pub status: StockStatus,
    pub available: u64,
}

/// The reply of `STOCK.RESERVE`: `[status, reservation-id, available]`; the id is null for `SOLDOUT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReserveOutcome {
    pub status: StockStatus,
    pub reservation_id: Option<ReservationId>,
    pub available: u64,
}

/// A reservation's state as `STOCK.CONFIRM` and `STOCK.RELEASE` report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReservationState {
    Confirmed,
    Released,
    Expired,
    Unknown,
}

impl ReservationState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationState::Confirmed => "CONFIRMED",
            ReservationState::Released => "RELEASED",
            ReservationState::Expired => "EXPIRED",
            ReservationState::Unknown => "UNKNOWN",
        }
    }
}

/// The reply of `STOCK.INFO`, field by field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StockInfo {
    pub available: u64,
    pub reserved: u64,
    pub sold: u64,
    /// Open reservations.
    pub reservations: u64,
    /// Everything ever set or added: `available + reserved + sold`.
    pub supplied: u64,
}

/// The first reply of a call with an ID, kept to replay a repeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RememberedReply {
    Add(u64),
    Take(TakeOutcome),
    Reserve(ReserveOutcome),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OpenReservation {
    quantity: u64,
    deadline_ms: u64,
}

/// One sku. See the module docs for the semantics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stock {
    available: u64,
    reserved: u64,
    sold: u64,
    supplied: u64,
    /// The last reservation id handed out; the next is one more.
    reservation_id_last: ReservationId,
    open: HashMap<ReservationId, OpenReservation, ahash::RandomState>,
    /// `(deadline_ms, id)` of every open reservation: expiry walks it from the front.
    expiry_order: BTreeSet<(u64, ReservationId)>,
    /// Final states of settled reservations, kept for a window so repeats answer the same.
    settled: WindowedMap<ReservationId, ReservationState>,
    request_replies: IdempotencyCache<RememberedReply>,
}

impl Stock {
    /// An empty sku: nothing available, nothing supplied.
    pub fn new(policy: IdempotencyPolicy) -> Stock {
        Stock::with_settled_memory(
            policy,
            STOCK_SETTLED_WINDOW_MS,
            STOCK_SETTLED_REMEMBERED_MAX,
        )
    }

    /// Like `new`, with other bounds on how long and how many settled reservations are remembered.
    pub fn with_settled_memory(
        policy: IdempotencyPolicy,
        settled_window_ms: u64,
        settled_max: usize,
    ) -> Stock {
        Stock {
            available: 0,
            reserved: 0,
            sold: 0,
            supplied: 0,
            reservation_id_last: 0,
            open: HashMap::default(),
            expiry_order: BTreeSet::new(),
            settled: WindowedMap::new(settled_window_ms, settled_max),
            request_replies: IdempotencyCache::new(policy),
        }
    }

    /// `STOCK.SET sku qty`: sets `available`; `supplied` follows so the invariant holds.
    pub fn set(&mut self, quantity: u64, now_ms: u64) -> Result<Applied<()>, String> {
        if quantity > STOCK_QUANTITY_MAX {
            return Err(format!(
                "ERR quantity must be between 0 and {STOCK_QUANTITY_MAX}"
            ));
        }
        // After the due reservations expire, `supplied` becomes `reserved + sold + quantity`.
        let supplied =
            (self.reserved - self.due_quantity(now_ms) + self.sold).checked_add(quantity);
        if supplied.is_none() {
            return Err("ERR stock counters would overflow".to_string());
        }
        let expired = self.expire_all_due(now_ms);
        let changed = expired > 0 || quantity != self.available;
        self.supplied = self.supplied - self.available + quantity;
        self.available = quantity;
        self.assert_conserved();
        Ok(Applied {
            outcome: (),
            changed,
        })
    }

    /// `STOCK.ADD sku qty [ID request-id]`: answers `available` after.
    pub fn add(
        &mut self,
        quantity: u64,
        request_id: Option<&[u8]>,
        now_ms: u64,
    ) -> Result<Applied<u64>, String> {
        validate_quantity(quantity)?;
        if let Some(reply) = self.remembered_reply(request_id, now_ms)? {
            let RememberedReply::Add(available) = reply else {
                return Err(ID_USED_BY_ANOTHER_COMMAND.to_string());
            };
            return Ok(Applied::unchanged(available));
        }
        if self.supplied.checked_add(quantity).is_none() {
            return Err("ERR stock counters would overflow".to_string());
        }
        // Cannot overflow: available + due <= supplied, and supplied + quantity fits.
        if self.available + self.due_quantity(now_ms) + quantity > STOCK_QUANTITY_MAX {
            return Err(format!("ERR available would exceed {STOCK_QUANTITY_MAX}"));
        }
        self.expire_all_due(now_ms);
        self.available += quantity;
        self.supplied += quantity;
        if let Some(request_id) = request_id {
            self.request_replies
                .remember(request_id, RememberedReply::Add(self.available), now_ms);
        }
        self.assert_conserved();
        Ok(Applied::changed(self.available))
    }

    /// `STOCK.TAKE sku qty [ID request-id]`: all of `qty` or nothing.
    pub fn take(
        &mut self,
        quantity: u64,
        request_id: Option<&[u8]>,
        now_ms: u64,
    ) -> Result<Applied<TakeOutcome>, String> {
        validate_quantity(quantity)?;
        if let Some(reply) = self.remembered_reply(request_id, now_ms)? {
            let RememberedReply::Take(outcome) = reply else {
                return Err(ID_USED_BY_ANOTHER_COMMAND.to_string());
            };
            return Ok(Applied::unchanged(outcome));
        }
        let expired = self.expire_all_due(now_ms);
        if self.available < quantity {
            let outcome = TakeOutcome {
                status: StockStatus::SoldOut,
                available: self.available,
            };
            return Ok(Applied {
                outcome,
                changed: expired > 0,
            });
        }
        self.available -= quantity;
        self.sold += quantity;
        let outcome = TakeOutcome {
            status: StockStatus::Ok,
            available: self.available,
        };
        if let Some(request_id) = request_id {
            self.request_replies
                .remember(request_id, RememberedReply::Take(outcome), now_ms);
        }
        self.assert_conserved();
        Ok(Applied::changed(outcome))
    }

    /// `STOCK.RESERVE sku qty ttl-ms [ID request-id]`: holds `qty` until `now_ms + ttl_ms`.
    pub fn reserve(
        &mut self,
        quantity: u64,
        ttl_ms: u64,
        request_id: Option<&[u8]>,
        now_ms: u64,
    ) -> Result<Applied<ReserveOutcome>, String> {
        validate_quantity(quantity)?;
        if ttl_ms == 0 || ttl_ms > STOCK_RESERVATION_TTL_MS_MAX {
            return Err(format!(
                "ERR ttl must be between 1 and {STOCK_RESERVATION_TTL_MS_MAX} milliseconds"
            ));
        }
        if let Some(reply) = self.remembered_reply(request_id, now_ms)? {
            let RememberedReply::Reserve(outcome) = reply else {
                return Err(ID_USED_BY_ANOTHER_COMMAND.to_string());
            };
            return Ok(Applied::unchanged(outcome));
        }
        // Counting the due ones is only needed, and only paid for, when the table is full.
        if self.open.len() >= STOCK_RESERVATIONS_OPEN_MAX
            && self.open.len() - self.due_count(now_ms) >= STOCK_RESERVATIONS_OPEN_MAX
        {
            return Err(format!(
                "ERR too many open reservations (at most {STOCK_RESERVATIONS_OPEN_MAX})"
            ));
        }
        let expired = self.expire_all_due(now_ms);
        if self.available < quantity {
            let outcome = ReserveOutcome {
                status: StockStatus::SoldOut,
                reservation_id: None,
                available: self.available,
            };
            return Ok(Applied {
                outcome,
                changed: expired > 0,
            });
        }
        let reservation_id = self.reservation_id_last + 1;
        let deadline_ms = now_ms.saturating_add(ttl_ms);
        self.reservation_id_last = reservation_id;
        self.available -= quantity;
        self.reserved += quantity;
        let previous = self.open.insert(
            reservation_id,
            OpenReservation {
                quantity,
                deadline_ms,
            },
        );
        assert!(previous.is_none(), "reservation ids are never reused");
        self.expiry_order.insert((deadline_ms, reservation_id));
        let outcome = ReserveOutcome {
            status: StockStatus::Ok,
            reservation_id: Some(reservation_id),
            available: self.available,
        };
        if let Some(request_id) = request_id {
            self.request_replies
                .remember(request_id, RememberedReply::Reserve(outcome), now_ms);
        }
        self.assert_conserved();
        Ok(Applied::changed(outcome))
    }

    /// `STOCK.CONFIRM sku reservation-id`: held units become sold. Safe to repeat.
    pub fn confirm(
        &mut self,
        reservation_id: ReservationId,
        now_ms: u64,
    ) -> Applied<ReservationState> {
        self.settle(reservation_id, ReservationState::Confirmed, now_ms)
    }

    /// `STOCK.RELEASE sku reservation-id`: held units become available again. Safe to repeat.
    pub fn release(
        &mut self,
        reservation_id: ReservationId,
        now_ms: u64,
    ) -> Applied<ReservationState> {
        self.settle(reservation_id, ReservationState::Released, now_ms)
    }

    /// The loop's active expiry: expires at most `max_count` due reservations, earliest deadline first, and
    /// returns their ids. Non-empty means state changed and the call must be logged (with `now_ms` and
    /// `max_count`, or as the returned ids; replay expires the same ones either way).
    pub fn expire_due(&mut self, now_ms: u64, max_count: usize) -> Vec<ReservationId> {
        let mut expired = Vec::new();
        while expired.len() < max_count {
            let Some(reservation_id) = self.expire_first_due(now_ms) else {
                break;
            };
            expired.push(reservation_id);
        }
        self.assert_conserved();
        expired
    }

    /// The ids `expire_due(now_ms, max_count)` would expire, in the same order, without changing anything.
    /// Replay checks a logged `STOCK.EXPIRE` against this before applying it.
    pub fn due_reservation_ids(
        &self,
        now_ms: u64,
        max_count: usize,
    ) -> impl Iterator<Item = ReservationId> + '_ {
        self.due(now_ms)
            .take(max_count)
            .map(|(_, reservation_id)| *reservation_id)
    }

    /// When the earliest open reservation falls due, for the loop's timer.
    pub fn next_expiry_ms(&self) -> Option<u64> {
        self.expiry_order
            .first()
            .map(|(deadline_ms, _)| *deadline_ms)
    }

    /// `STOCK.INFO sku` as of `now_ms`: due reservations count as expired, without changing anything.
    pub fn info(&self, now_ms: u64) -> StockInfo {
        let due_quantity = self.due_quantity(now_ms);
        StockInfo {
            available: self.available + due_quantity,
            reserved: self.reserved - due_quantity,
            sold: self.sold,
            reservations: (self.open.len() - self.due_count(now_ms)) as u64,
            supplied: self.supplied,
        }
    }

    /// Open reservations: what its serialization's cost grows with.
    pub fn open_reservation_count(&self) -> usize {
        self.open.len()
    }

    /// An estimate of the heap and inline bytes this value owns, for `INFO memory`.
    pub fn approximate_memory_bytes(&self) -> usize {
        let open_entry_bytes = std::mem::size_of::<(ReservationId, OpenReservation)>() + 8;
        // A B-tree node holds up to 11 keys; assume two thirds full.
        let expiry_entry_bytes = std::mem::size_of::<(u64, ReservationId)>() * 3 / 2;
        std::mem::size_of::<Self>()
            + self.open.capacity() * open_entry_bytes
            + self.expiry_order.len() * expiry_entry_bytes
            + self.settled.approximate_memory_bytes()
            + self.request_replies.approximate_memory_bytes()
    }

    /// Checks every invariant, walking all open reservations: in tests, and in debug builds after a
    /// snapshot load and after replay (`Value::check_invariants`); never on the hot path.
    pub fn check_invariants(&self) {
        self.assert_conserved();
        assert_eq!(self.open.len(), self.expiry_order.len());
        let mut reserved = 0;
        for (reservation_id, reservation) in &self.open {
            assert!(*reservation_id >= 1 && *reservation_id <= self.reservation_id_last);
            assert!(reservation.quantity >= 1);
            assert!(self
                .expiry_order
                .contains(&(reservation.deadline_ms, *reservation_id)));
            reserved += reservation.quantity;
        }
        assert_eq!(
            reserved, self.reserved,
            "reserved is the sum of the open reservations"
        );
        assert!(self.open.len() <= STOCK_RESERVATIONS_OPEN_MAX);
    }

    fn settle(
        &mut self,
        reservation_id: ReservationId,
        state: ReservationState,
        now_ms: u64,
    ) -> Applied<ReservationState> {
        assert!(matches!(
            state,
            ReservationState::Confirmed | ReservationState::Released
        ));
        let expired = self.expire_all_due(now_ms);
        let Some(reservation) = self.open.remove(&reservation_id) else {
            let state = self
                .settled
                .get(&reservation_id, now_ms)
                .copied()
                .unwrap_or(ReservationState::Unknown);
            return Applied {
                outcome: state,
                changed: expired > 0,
            };
        };
        let indexed = self
            .expiry_order
            .remove(&(reservation.deadline_ms, reservation_id));
        assert!(indexed, "every open reservation is in the expiry order");
        assert!(
            reservation.deadline_ms > now_ms,
            "due reservations were expired first"
        );
        self.reserved -= reservation.quantity;
        match state {
            ReservationState::Confirmed => self.sold += reservation.quantity,
            _ => self.available += reservation.quantity,
        }
        self.settled.insert(reservation_id, state, now_ms, now_ms);
        self.assert_conserved();
        Applied::changed(state)
    }

    /// Expires every due reservation; returns how many. Amortised O(1) per reservation: each expires once.
    fn expire_all_due(&mut self, now_ms: u64) -> usize {
        let mut expired = 0;
        while self.expire_first_due(now_ms).is_some() {
            expired += 1;
        }
        expired
    }

    fn expire_first_due(&mut self, now_ms: u64) -> Option<ReservationId> {
        let (deadline_ms, reservation_id) = *self.expiry_order.first()?;
        if deadline_ms > now_ms {
            return None;
        }
        self.expiry_order.pop_first();
        let reservation = self
            .open
            .remove(&reservation_id)
            .expect("the expiry order lists open reservations");
        self.reserved -= reservation.quantity;
        self.available += reservation.quantity;
        // Settled at its deadline, not when noticed: the same time whichever call expires it.
        self.settled.insert(
            reservation_id,
            ReservationState::Expired,
            deadline_ms,
            now_ms,
        );
        Some(reservation_id)
    }

    /// Units held by reservations that are due at `now_ms` but not expired yet. O(due reservations).
    fn due_quantity(&self, now_ms: u64) -> u64 {
        self.due(now_ms)
            .map(|(_, reservation_id)| self.open[reservation_id].quantity)
            .sum()
    }

    fn due_count(&self, now_ms: u64) -> usize {
        self.due(now_ms).count()
    }

    fn due(&self, now_ms: u64) -> impl Iterator<Item = &(u64, ReservationId)> + '_ {
        self.expiry_order.range(..=(now_ms, ReservationId::MAX))
    }

    /// Validates the request ID, and returns the first reply if the ID is a repeat.
    fn remembered_reply(
        &self,
        request_id: Option<&[u8]>,
        now_ms: u64,
    ) -> Result<Option<RememberedReply>, String> {
        let Some(request_id) = request_id else {
            return Ok(None);
        };
        IdempotencyCache::<RememberedReply>::validate_request_id(request_id)?;
        Ok(self.request_replies.lookup(request_id, now_ms).copied())
    }

    fn assert_conserved(&self) {
        assert_eq!(
            self.available + self.reserved + self.sold,
            self.supplied,
            "available + reserved + sold == everything ever set or added"
        );
    }
}

const ID_USED_BY_ANOTHER_COMMAND: &str =
    "ERR request id was already used by another command on this key";

fn validate_quantity(quantity: u64) -> Result<(), String> {
    if quantity == 0 || quantity > STOCK_QUANTITY_MAX {
        return Err(format!(
            "ERR quantity must be between 1 and {STOCK_QUANTITY_MAX}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;
