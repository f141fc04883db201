//! The `coupon` value type: a numbered, limited pool of coupons handed out to users during a time window.
//!
//! # What it owns
//! One event's pool: its limits (total, per user, start, end), the coupon numbers handed out and to whom,
//! and the request IDs of `COUPON.ISSUE ... ID` calls. No networking and no RESP: the command table turns
//! the outcomes here into replies, and logs the calls whose [`Applied::changed`] is `true`.
//!
//! # Semantics (protocol.md copies this section)
//! - Numbers are 1, 2, 3, ... in order of issue and are never reused: a revoked coupon's number stays
//!   retired and the next issue gets the next number.
//! - `issued` counts numbers ever handed out, revoked ones included; `revoked` counts coupons given back.
//!   Users hold `issued - revoked` coupons, and `remaining = total - (issued - revoked)`: a revoke puts
//!   the coupon back in the pool, so `remaining` rises. `remaining` is never negative and never exceeds
//!   `total`; nothing is ever issued beyond `total` held coupons.
//! - `PERUSER n` (default 1, at most [`COUPON_PER_USER_MAX`]): a user may hold up to `n` coupons; one more
//!   issue gets `ALREADY` with their first (lowest) number. After a revoke they may be issued again.
//! - `START` and `END` are optional Unix milliseconds; the window is half-open, `START <= now < END`. Before
//!   it, `NOTSTARTED`; from `END` on, `ENDED`. Both given: `END > START`. `total` is 1 to
//!   [`COUPON_TOTAL_MAX`].
//! - An issue checks, in order: not started, ended, the user already holds `PERUSER`, nothing remains. So a
//!   holder asking again while sold out hears `ALREADY`, not `SOLDOUT`.
//! - `state` at `now`: `pending` before START, `ended` from END on (even if sold out), otherwise `soldout`
//!   when `remaining == 0`, otherwise `open`. A revoke can take `soldout` back to `open`.
//! - Only `ISSUED` changes state. `SOLDOUT`, `ALREADY`, `NOTSTARTED` and `ENDED` change nothing and need no
//!   log record, so the rush after the last coupon costs no disk. For the same reason an `ID` pins only an
//!   `ISSUED` reply: a repeat of that ID within the window replays it (same number, same `remaining`) and
//!   changes nothing. A first call that changed nothing leaves no trace, so its repeat is evaluated afresh:
//!   a retry after `NOTSTARTED` can be issued once the sale opens, and at most one coupon is ever issued
//!   per ID.
//! - `COUPON.REVOKE` returns every coupon the user holds (any time, also after END) and answers how many.
//! - `COUPON.HOLDERS cursor count`: the cursor is the issue number to resume from (`0` starts at 1). One
//!   call examines at most `count` numbers (1 to [`COUPON_HOLDERS_COUNT_MAX`]) and returns the ones still
//!   held, so a page may be short or even empty while the next cursor is not `0`, like `SCAN`. Revoked
//!   numbers are skipped. The walk ends with cursor `0`; coupons issued during a walk appear at its end.
//! - A user name is 1 to [`COUPON_USER_LENGTH_MAX`] bytes. At most [`COUPON_NUMBER_MAX`] numbers are ever
//!   handed out (only revokes can get there); past it `ISSUE` is an error.
//!
//! # Memory
//! Per user who ever held a coupon: their name once (an `IndexMap` entry, so the name is not stored
//! twice), their numbers (inline for the first, `PERUSER > 1` adds a boxed slice), and 4 bytes per issued
//! number in the number-to-holder table. A user whose coupons were revoked keeps their (empty) entry so
//! that holder indexes stay stable.

pub mod codec;
pub mod commands;

use indexmap::IndexMap;

use crate::limits::{
    COUPON_HOLDERS_COUNT_MAX, COUPON_NUMBER_MAX, COUPON_PER_USER_MAX, COUPON_TOTAL_MAX,
    COUPON_USER_LENGTH_MAX,
};
use crate::store::idempotency::{Applied, IdempotencyCache, IdempotencyPolicy};

/// What `TYPE` says for a coupon key.
pub const TYPE_NAME: &str = "coupon";

/// Marks a number in `holder_index_by_number` whose coupon was revoked.
const HOLDER_INDEX_REVOKED: u32 = u32::MAX;

/// The arguments of `COUPON.CREATE`, after the command layer parsed them as integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CouponSpec {
    pub total: u64,
    /// `PERUSER`; `None` means 1.
    pub per_user: Option<u64>,
    pub start_ms: Option<u64>,
    pub end_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueStatus {
    Issued,
    Already,
    SoldOut,
    NotStarted,
    Ended,
}

impl IssueStatus {
    /// The status word of the reply.
    pub fn as_str(self) -> &'static str {
        match self {
            IssueStatus::Issued => "ISSUED",
            IssueStatus::Already => "ALREADY",
            IssueStatus::SoldOut => "SOLDOUT",
            IssueStatus::NotStarted => "NOTSTARTED",
            IssueStatus::Ended => "ENDED",
        }
    }
}

/// The reply of `COUPON.ISSUE`: `[status, number, remaining]`. `number` is present exactly for `ISSUED`
/// (the new number) and `ALREADY` (the user's first number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IssueOutcome {
    pub status: IssueStatus,
    pub number: Option<u64>,
    pub remaining: u64,
}

impl IssueOutcome {
    fn new(status: IssueStatus, number: Option<u64>, remaining: u64) -> Self {
        let has_number = matches!(status, IssueStatus::Issued | IssueStatus::Already);
        assert_eq!(
            number.is_some(),
            has_number,
            "a number goes with ISSUED and ALREADY only"
        );
        IssueOutcome {
            status,
            number,
            remaining,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CouponState {
    Pending,
    Open,
    SoldOut,
    Ended,
}

impl CouponState {
    pub fn as_str(self) -> &'static str {
        match self {
            CouponState::Pending => "pending",
            CouponState::Open => "open",
            CouponState::SoldOut => "soldout",
            CouponState::Ended => "ended",
        }
    }
}

/// The reply of `COUPON.INFO`, field by field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CouponInfo {
    pub total: u64,
    pub issued: u64,
    pub remaining: u64,
    pub revoked: u64,
    pub per_user: u64,
    pub start_ms: Option<u64>,
    pub end_ms: Option<u64>,
    pub state: CouponState,
}

/// The reply of `COUPON.HOLDERS`: the cursor to pass next (`0` at the end) and `(user, number)` pairs in
/// issue order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldersPage<'coupon> {
    pub next_cursor: u64,
    pub holders: Vec<(&'coupon [u8], u64)>,
}

/// One user's coupon numbers, ascending. The first is inline because `PERUSER` is usually 1: a million
/// holders then cost no allocation beyond their names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct HeldNumbers {
    /// `0` when the user holds nothing (numbers start at 1).
    first: u64,
    rest: Box<[u64]>,
}

impl HeldNumbers {
    fn len(&self) -> u64 {
        if self.first == 0 {
            0
        } else {
            1 + self.rest.len() as u64
        }
    }

    fn push(&mut self, number: u64) {
        assert!(
            number > self.rest.last().copied().unwrap_or(self.first),
            "numbers grow"
        );
        if self.first == 0 {
            self.first = number;
        } else {
            self.rest = self.rest.iter().copied().chain([number]).collect();
        }
    }

    fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (self.first != 0)
            .then_some(self.first)
            .into_iter()
            .chain(self.rest.iter().copied())
    }

    fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.rest)
    }
}

/// One coupon event. See the module docs for the semantics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coupon {
    total: u64,
    per_user: u64,
    start_ms: Option<u64>,
    end_ms: Option<u64>,
    /// Numbers handed out so far; the next number is `issued + 1`.
    issued: u64,
    /// Coupons given back by `revoke`.
    revoked: u64,
    /// Every user who was ever issued a coupon, in order of their first issue.
    holders: IndexMap<Box<[u8]>, HeldNumbers, ahash::RandomState>,
    /// `number - 1` -> index into `holders`, or `HOLDER_INDEX_REVOKED`.
    holder_index_by_number: Vec<u32>,
    /// Bytes owned by `holders` on the heap (names and extra numbers), for `approximate_memory_bytes`.
    holders_heap_bytes: usize,
    request_outcomes: IdempotencyCache<IssueOutcome>,
}

impl Coupon {
    /// `COUPON.CREATE`. Whether the key already exists is the keyspace's check.
    pub fn create(spec: CouponSpec, policy: IdempotencyPolicy) -> Result<Coupon, String> {
        if spec.total == 0 || spec.total > COUPON_TOTAL_MAX {
            return Err(format!(
                "ERR total must be between 1 and {COUPON_TOTAL_MAX}"
            ));
        }
        let per_user = spec.per_user.unwrap_or(1);
        if per_user == 0 || per_user > COUPON_PER_USER_MAX {
            return Err(format!(
                "ERR PERUSER must be between 1 and {COUPON_PER_USER_MAX}"
            ));
        }
        if let (Some(start_ms), Some(end_ms)) = (spec.start_ms, spec.end_ms) {
            if end_ms <= start_ms {
                return Err("ERR END must be after START".to_string());
            }
        }
        Ok(Coupon {
            total: spec.total,
            per_user,
            start_ms: spec.start_ms,
            end_ms: spec.end_ms,
            issued: 0,
            revoked: 0,
            holders: IndexMap::default(),
            holder_index_by_number: Vec::new(),
            holders_heap_bytes: 0,
            request_outcomes: IdempotencyCache::new(policy),
        })
    }

    /// `COUPON.ISSUE event user [ID request-id]`.
    pub fn issue(
        &mut self,
        user: &[u8],
        request_id: Option<&[u8]>,
        now_ms: u64,
    ) -> Result<Applied<IssueOutcome>, String> {
        validate_user(user)?;
        if let Some(request_id) = request_id {
            IdempotencyCache::<IssueOutcome>::validate_request_id(request_id)?;
            if let Some(outcome) = self.request_outcomes.lookup(request_id, now_ms) {
                return Ok(Applied::unchanged(*outcome));
            }
        }
        let remaining = self.remaining();
        let refused = match self.state(now_ms) {
            CouponState::Pending => {
                Some(IssueOutcome::new(IssueStatus::NotStarted, None, remaining))
            }
            CouponState::Ended => Some(IssueOutcome::new(IssueStatus::Ended, None, remaining)),
            CouponState::Open | CouponState::SoldOut => match self.holders.get(user) {
                Some(held) if held.len() >= self.per_user => Some(IssueOutcome::new(
                    IssueStatus::Already,
                    Some(held.first),
                    remaining,
                )),
                _ if remaining == 0 => Some(IssueOutcome::new(IssueStatus::SoldOut, None, 0)),
                _ => None,
            },
        };
        if let Some(outcome) = refused {
            return Ok(Applied::unchanged(outcome));
        }
        if self.issued >= COUPON_NUMBER_MAX {
            return Err(format!(
                "ERR coupon numbers exhausted: {COUPON_NUMBER_MAX} were handed out, revoked ones included"
            ));
        }

        let number = self.issued + 1;
        let holder_index = match self.holders.get_index_of(user) {
            Some(holder_index) => holder_index,
            None => {
                self.holders_heap_bytes += user.len();
                self.holders
                    .insert_full(user.into(), HeldNumbers::default())
                    .0
            }
        };
        let held = &mut self.holders[holder_index];
        self.holders_heap_bytes -= held.heap_bytes();
        held.push(number);
        self.holders_heap_bytes += held.heap_bytes();
        let holder_index =
            u32::try_from(holder_index).expect("holders <= COUPON_NUMBER_MAX < u32::MAX");
        self.holder_index_by_number.push(holder_index);
        self.issued = number;

        let outcome = IssueOutcome::new(IssueStatus::Issued, Some(number), self.remaining());
        assert_eq!(
            outcome.remaining + 1,
            remaining,
            "one issue takes one coupon"
        );
        if let Some(request_id) = request_id {
            self.request_outcomes.remember(request_id, outcome, now_ms);
        }
        self.assert_counts();
        Ok(Applied::changed(outcome))
    }

    /// `COUPON.GET event user`: the user's numbers, ascending.
    pub fn get(&self, user: &[u8]) -> Result<Vec<u64>, String> {
        validate_user(user)?;
        Ok(self
            .holders
            .get(user)
            .map(|held| held.iter().collect())
            .unwrap_or_default())
    }

    /// `COUPON.REVOKE event user`: gives all the user's coupons back to the pool; answers how many.
    pub fn revoke(&mut self, user: &[u8]) -> Result<Applied<u64>, String> {
        validate_user(user)?;
        let Some(held) = self.holders.get_mut(user) else {
            return Ok(Applied::unchanged(0));
        };
        let count = held.len();
        if count == 0 {
            return Ok(Applied::unchanged(0));
        }
        for number in held.iter() {
            let slot = &mut self.holder_index_by_number[(number - 1) as usize];
            assert_ne!(*slot, HOLDER_INDEX_REVOKED, "a held number is not revoked");
            *slot = HOLDER_INDEX_REVOKED;
        }
        self.holders_heap_bytes -= held.heap_bytes();
        *held = HeldNumbers::default();
        self.revoked += count;
        self.assert_counts();
        Ok(Applied::changed(count))
    }

    /// `COUPON.INFO event`.
    pub fn info(&self, now_ms: u64) -> CouponInfo {
        CouponInfo {
            total: self.total,
            issued: self.issued,
            remaining: self.remaining(),
            revoked: self.revoked,
            per_user: self.per_user,
            start_ms: self.start_ms,
            end_ms: self.end_ms,
            state: self.state(now_ms),
        }
    }

    /// `COUPON.HOLDERS event cursor count`.
    pub fn holders(&self, cursor: u64, count: u64) -> Result<HoldersPage<'_>, String> {
        if count == 0 || count > COUPON_HOLDERS_COUNT_MAX {
            return Err(format!(
                "ERR count must be between 1 and {COUPON_HOLDERS_COUNT_MAX}"
            ));
        }
        let first_number = cursor.max(1);
        if first_number > self.issued {
            return Ok(HoldersPage {
                next_cursor: 0,
                holders: Vec::new(),
            });
        }
        let last_number = self.issued.min(first_number + count - 1);
        let holders = (first_number..=last_number)
            .filter_map(|number| {
                let holder_index = self.holder_index_by_number[(number - 1) as usize];
                if holder_index == HOLDER_INDEX_REVOKED {
                    return None;
                }
                let (user, _) = self
                    .holders
                    .get_index(holder_index as usize)
                    .expect("index is valid");
                Some((&**user, number))
            })
            .collect();
        let next_cursor = if last_number == self.issued {
            0
        } else {
            last_number + 1
        };
        Ok(HoldersPage {
            next_cursor,
            holders,
        })
    }

    pub fn state(&self, now_ms: u64) -> CouponState {
        if self.start_ms.is_some_and(|start_ms| now_ms < start_ms) {
            CouponState::Pending
        } else if self.end_ms.is_some_and(|end_ms| now_ms >= end_ms) {
            CouponState::Ended
        } else if self.remaining() == 0 {
            CouponState::SoldOut
        } else {
            CouponState::Open
        }
    }

    /// Coupons left in the pool: `total` minus the ones users hold.
    pub fn remaining(&self) -> u64 {
        self.total - self.held()
    }

    /// Users who were ever issued a coupon: what its serialization's cost grows with.
    pub fn holder_count(&self) -> usize {
        self.holders.len()
    }

    /// An estimate of the heap and inline bytes this value owns, for `INFO memory`.
    pub fn approximate_memory_bytes(&self) -> usize {
        // An IndexMap entry is the key, the value and the hash, plus one index slot in its table.
        let holder_entry_bytes =
            std::mem::size_of::<(Box<[u8]>, HeldNumbers, u64)>() + std::mem::size_of::<usize>();
        std::mem::size_of::<Self>()
            + self.holders.capacity() * holder_entry_bytes
            + self.holders_heap_bytes
            + self.holder_index_by_number.capacity() * std::mem::size_of::<u32>()
            + self.request_outcomes.approximate_memory_bytes()
    }

    /// Checks every invariant, walking all holders: in tests, and in debug builds after a snapshot load
    /// and after replay (`Value::check_invariants`); never on the hot path.
    pub fn check_invariants(&self) {
        self.assert_counts();
        assert_eq!(self.holder_index_by_number.len() as u64, self.issued);
        let mut held_total = 0;
        let mut heap_bytes = 0;
        for (holder_index, (user, held)) in self.holders.iter().enumerate() {
            validate_user(user).expect("stored users are valid");
            assert!(
                held.len() <= self.per_user,
                "no user holds more than PERUSER"
            );
            let numbers: Vec<u64> = held.iter().collect();
            assert!(
                numbers.windows(2).all(|pair| pair[0] < pair[1]),
                "numbers ascend"
            );
            for number in numbers {
                assert!((1..=self.issued).contains(&number));
                assert_eq!(
                    self.holder_index_by_number[(number - 1) as usize] as usize,
                    holder_index
                );
            }
            held_total += held.len();
            heap_bytes += user.len() + held.heap_bytes();
        }
        let unrevoked = self
            .holder_index_by_number
            .iter()
            .filter(|index| **index != HOLDER_INDEX_REVOKED);
        assert_eq!(
            unrevoked.count() as u64,
            held_total,
            "each held number is in the table once"
        );
        assert_eq!(held_total, self.held());
        assert_eq!(heap_bytes, self.holders_heap_bytes);
    }

    fn held(&self) -> u64 {
        self.issued - self.revoked
    }

    fn assert_counts(&self) {
        assert!(self.revoked <= self.issued);
        assert!(self.held() <= self.total, "never more held than total");
        assert!(self.issued <= COUPON_NUMBER_MAX);
        debug_assert_eq!(self.holder_index_by_number.len() as u64, self.issued);
    }
}

fn validate_user(user: &[u8]) -> Result<(), String> {
    if user.is_empty() || user.len() > COUPON_USER_LENGTH_MAX {
        return Err(format!(
            "ERR user must be 1 to {COUPON_USER_LENGTH_MAX} bytes"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
