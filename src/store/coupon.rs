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
use indexmap::IndexMap;

use crate::limits::{
    COUPON_HOLDERS_COUNT_MAX, COUPON_NUMBER_MAX, COUPON_PER_USER_MAX, COUPON_TOTAL_MAX,
    COUPON_USER_LENGTH_MAX,
};
use crate::store::encoding::{
    put_bytes, put_count, put_option_u64, put_u64, put_u8, Codec, Reader,
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

    /// Checks every invariant, walking all holders: for tests and debugging, not for the hot path.
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

impl Codec for IssueOutcome {
    fn encode(&self, out: &mut Vec<u8>) {
        let status = match self.status {
            IssueStatus::Issued => 0,
            IssueStatus::Already => 1,
            IssueStatus::SoldOut => 2,
            IssueStatus::NotStarted => 3,
            IssueStatus::Ended => 4,
        };
        put_u8(out, status);
        put_option_u64(out, self.number);
        put_u64(out, self.remaining);
    }

    fn decode(reader: &mut Reader) -> Result<Self, String> {
        let status = match reader.u8()? {
            0 => IssueStatus::Issued,
            1 => IssueStatus::Already,
            2 => IssueStatus::SoldOut,
            3 => IssueStatus::NotStarted,
            4 => IssueStatus::Ended,
            other => return Err(format!("unknown coupon issue status {other}")),
        };
        let number = reader.option_u64()?;
        let remaining = reader.u64()?;
        if number.is_some() != matches!(status, IssueStatus::Issued | IssueStatus::Already) {
            return Err("a coupon outcome's number does not match its status".to_string());
        }
        Ok(IssueOutcome::new(status, number, remaining))
    }
}

impl Coupon {
    /// Snapshot encoding (see `store::encoding`): limits, counters, holders in order with their numbers,
    /// and the request-ID cache. The number-to-holder table is rebuilt on decode.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.total);
        put_u64(out, self.per_user);
        put_option_u64(out, self.start_ms);
        put_option_u64(out, self.end_ms);
        put_u64(out, self.issued);
        put_u64(out, self.revoked);
        put_count(out, self.holders.len());
        for (user, held) in &self.holders {
            put_bytes(out, user);
            put_u64(out, held.first);
            put_count(out, held.rest.len());
            for number in held.rest.iter() {
                put_u64(out, *number);
            }
        }
        self.request_outcomes.encode(out);
    }

    pub fn decode(reader: &mut Reader) -> Result<Coupon, String> {
        let total = reader.u64()?;
        let per_user = reader.u64()?;
        let start_ms = reader.option_u64()?;
        let end_ms = reader.option_u64()?;
        let issued = reader.u64()?;
        let revoked = reader.u64()?;
        if revoked > issued || issued - revoked > total || issued > COUPON_NUMBER_MAX {
            return Err("coupon counts out of range".to_string());
        }
        let holder_count = reader.count(20)?;
        let mut holders = IndexMap::with_capacity_and_hasher(holder_count, Default::default());
        let mut holder_index_by_number = vec![HOLDER_INDEX_REVOKED; issued as usize];
        let mut holders_heap_bytes = 0;
        let mut held_total = 0;
        for holder_index in 0..holder_count {
            let user: Box<[u8]> = reader.bytes()?.into();
            let first = reader.u64()?;
            let rest_count = reader.count(8)?;
            let rest: Box<[u64]> = (0..rest_count)
                .map(|_| reader.u64())
                .collect::<Result<_, _>>()?;
            let held = HeldNumbers { first, rest };
            if first == 0 && !held.rest.is_empty() {
                return Err("coupon holder with numbers but no first".to_string());
            }
            for number in held.iter() {
                let slot = number
                    .checked_sub(1)
                    .and_then(|index| holder_index_by_number.get_mut(index as usize))
                    .ok_or_else(|| format!("coupon number {number} was never issued"))?;
                if *slot != HOLDER_INDEX_REVOKED {
                    return Err(format!("coupon number {number} is held twice"));
                }
                *slot = holder_index as u32;
            }
            held_total += held.len();
            holders_heap_bytes += user.len() + held.heap_bytes();
            if holders.insert(user, held).is_some() {
                return Err("a coupon holder appears twice".to_string());
            }
        }
        if held_total != issued - revoked {
            return Err("coupon holders do not add up to issued minus revoked".to_string());
        }
        Ok(Coupon {
            total,
            per_user,
            start_ms,
            end_ms,
            issued,
            revoked,
            holders,
            holder_index_by_number,
            holders_heap_bytes,
            request_outcomes: IdempotencyCache::decode(reader)?,
        })
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    const POLICY: IdempotencyPolicy = IdempotencyPolicy {
        window_ms: 1_000,
        entries_max: 100,
    };

    fn coupon(
        total: u64,
        per_user: Option<u64>,
        start_ms: Option<u64>,
        end_ms: Option<u64>,
    ) -> Coupon {
        Coupon::create(
            CouponSpec {
                total,
                per_user,
                start_ms,
                end_ms,
            },
            POLICY,
        )
        .unwrap()
    }

    fn issue(coupon: &mut Coupon, user: &[u8], now_ms: u64) -> IssueOutcome {
        coupon.issue(user, None, now_ms).unwrap().outcome
    }

    fn outcome(status: IssueStatus, number: Option<u64>, remaining: u64) -> IssueOutcome {
        IssueOutcome::new(status, number, remaining)
    }

    #[test]
    fn issues_numbers_in_order_until_sold_out() {
        let mut coupon = coupon(2, None, None, None);
        assert_eq!(
            issue(&mut coupon, b"u1", 0),
            outcome(IssueStatus::Issued, Some(1), 1)
        );
        assert_eq!(coupon.info(0).state, CouponState::Open);
        assert_eq!(
            issue(&mut coupon, b"u2", 0),
            outcome(IssueStatus::Issued, Some(2), 0)
        );
        assert_eq!(coupon.info(0).state, CouponState::SoldOut);
        let sold_out = coupon.issue(b"u3", None, 0).unwrap();
        assert_eq!(
            sold_out,
            Applied::unchanged(outcome(IssueStatus::SoldOut, None, 0))
        );
        coupon.check_invariants();
    }

    #[test]
    fn a_holder_hears_already_with_their_first_number_even_when_sold_out() {
        let mut coupon = coupon(1, None, None, None);
        issue(&mut coupon, b"u1", 0);
        let again = coupon.issue(b"u1", None, 0).unwrap();
        assert_eq!(
            again,
            Applied::unchanged(outcome(IssueStatus::Already, Some(1), 0))
        );
        assert_eq!(coupon.get(b"u1").unwrap(), vec![1]);
    }

    #[test]
    fn per_user_allows_several_then_already() {
        let mut coupon = coupon(10, Some(2), None, None);
        assert_eq!(issue(&mut coupon, b"u1", 0).number, Some(1));
        assert_eq!(issue(&mut coupon, b"u2", 0).number, Some(2));
        assert_eq!(issue(&mut coupon, b"u1", 0).number, Some(3));
        assert_eq!(
            issue(&mut coupon, b"u1", 0),
            outcome(IssueStatus::Already, Some(1), 7)
        );
        assert_eq!(coupon.get(b"u1").unwrap(), vec![1, 3]);
        assert_eq!(coupon.get(b"nobody").unwrap(), Vec::<u64>::new());
        coupon.check_invariants();
    }

    #[test]
    fn the_window_is_half_open() {
        let mut coupon = coupon(5, None, Some(100), Some(200));
        assert_eq!(
            issue(&mut coupon, b"u1", 99),
            outcome(IssueStatus::NotStarted, None, 5)
        );
        assert_eq!(coupon.info(99).state, CouponState::Pending);
        assert_eq!(issue(&mut coupon, b"u1", 100).status, IssueStatus::Issued);
        assert_eq!(issue(&mut coupon, b"u2", 199).status, IssueStatus::Issued);
        assert_eq!(
            issue(&mut coupon, b"u3", 200),
            outcome(IssueStatus::Ended, None, 3)
        );
        assert_eq!(coupon.info(200).state, CouponState::Ended);
        // A holder after the end hears ENDED too: the window gates everything.
        assert_eq!(issue(&mut coupon, b"u1", 300).status, IssueStatus::Ended);
    }

    #[test]
    fn ended_wins_over_sold_out() {
        let mut coupon = coupon(1, None, None, Some(10));
        issue(&mut coupon, b"u1", 0);
        assert_eq!(coupon.info(9).state, CouponState::SoldOut);
        assert_eq!(coupon.info(10).state, CouponState::Ended);
    }

    #[test]
    fn revoke_returns_coupons_to_the_pool_and_never_reuses_numbers() {
        let mut coupon = coupon(2, Some(2), None, None);
        issue(&mut coupon, b"u1", 0);
        issue(&mut coupon, b"u1", 0);
        assert_eq!(coupon.revoke(b"u1").unwrap(), Applied::changed(2));
        assert_eq!(coupon.revoke(b"u1").unwrap(), Applied::unchanged(0));
        assert_eq!(coupon.revoke(b"never").unwrap(), Applied::unchanged(0));
        assert_eq!(coupon.get(b"u1").unwrap(), Vec::<u64>::new());
        let info = coupon.info(0);
        assert_eq!((info.issued, info.revoked, info.remaining), (2, 2, 2));
        assert_eq!(
            issue(&mut coupon, b"u2", 0),
            outcome(IssueStatus::Issued, Some(3), 1)
        );
        assert_eq!(
            issue(&mut coupon, b"u1", 0),
            outcome(IssueStatus::Issued, Some(4), 0)
        );
        coupon.check_invariants();
    }

    #[test]
    fn info_reports_every_field() {
        let mut coupon = coupon(3, Some(2), Some(5), Some(50));
        issue(&mut coupon, b"u1", 10);
        let expected = CouponInfo {
            total: 3,
            issued: 1,
            remaining: 2,
            revoked: 0,
            per_user: 2,
            start_ms: Some(5),
            end_ms: Some(50),
            state: CouponState::Open,
        };
        assert_eq!(coupon.info(10), expected);
    }

    #[test]
    fn holders_walk_in_issue_order_and_skip_revoked() {
        let mut coupon = coupon(10, Some(2), None, None);
        for user in [b"a", b"b", b"a", b"c"] {
            issue(&mut coupon, user, 0);
        }
        coupon.revoke(b"b").unwrap();
        let page = coupon.holders(0, 2).unwrap();
        assert_eq!(
            page,
            HoldersPage {
                next_cursor: 3,
                holders: vec![(&b"a"[..], 1)]
            }
        );
        let page = coupon.holders(3, 2).unwrap();
        assert_eq!(
            page,
            HoldersPage {
                next_cursor: 0,
                holders: vec![(&b"a"[..], 3), (&b"c"[..], 4)]
            }
        );
        assert_eq!(
            coupon.holders(99, 2).unwrap(),
            HoldersPage {
                next_cursor: 0,
                holders: vec![]
            }
        );
        let empty = Coupon::create(
            CouponSpec {
                total: 1,
                per_user: None,
                start_ms: None,
                end_ms: None,
            },
            POLICY,
        );
        assert_eq!(empty.unwrap().holders(0, 5).unwrap().next_cursor, 0);
    }

    #[test]
    fn create_validates_its_arguments() {
        let create = |total, per_user, start_ms, end_ms| {
            Coupon::create(
                CouponSpec {
                    total,
                    per_user,
                    start_ms,
                    end_ms,
                },
                POLICY,
            )
            .map(|_| ())
        };
        assert!(create(0, None, None, None)
            .unwrap_err()
            .starts_with("ERR total"));
        assert!(create(COUPON_TOTAL_MAX + 1, None, None, None).is_err());
        assert!(create(COUPON_TOTAL_MAX, Some(COUPON_PER_USER_MAX), None, None).is_ok());
        assert!(create(1, Some(0), None, None)
            .unwrap_err()
            .starts_with("ERR PERUSER"));
        assert!(create(1, Some(COUPON_PER_USER_MAX + 1), None, None).is_err());
        assert!(create(1, None, Some(10), Some(10))
            .unwrap_err()
            .starts_with("ERR END"));
        assert!(create(1, None, Some(10), Some(11)).is_ok());
        assert!(create(1, None, None, Some(0)).is_ok());
    }

    #[test]
    fn bad_arguments_are_errors_and_change_nothing() {
        let mut coupon = coupon(3, None, None, None);
        let before = coupon.clone();
        assert!(coupon.issue(b"", None, 0).is_err());
        assert!(coupon
            .issue(&[b'u'; COUPON_USER_LENGTH_MAX + 1], None, 0)
            .is_err());
        assert!(coupon.issue(b"u1", Some(b""), 0).is_err());
        assert!(coupon.revoke(b"").is_err());
        assert!(coupon.get(b"").is_err());
        assert!(coupon.holders(0, 0).is_err());
        assert!(coupon.holders(0, COUPON_HOLDERS_COUNT_MAX + 1).is_err());
        assert_eq!(coupon, before);
        assert!(coupon
            .issue(&[b'u'; COUPON_USER_LENGTH_MAX], None, 0)
            .is_ok());
    }

    #[test]
    fn numbers_run_out_only_through_revokes() {
        let mut coupon = coupon(1, None, None, None);
        // Pretend the event already handed out every number but one.
        coupon.issued = COUPON_NUMBER_MAX - 1;
        coupon.revoked = COUPON_NUMBER_MAX - 1;
        coupon.holder_index_by_number =
            vec![HOLDER_INDEX_REVOKED; (COUPON_NUMBER_MAX - 1) as usize];
        assert_eq!(issue(&mut coupon, b"u1", 0).number, Some(COUPON_NUMBER_MAX));
        coupon.revoke(b"u1").unwrap();
        let before = coupon.clone();
        assert!(coupon
            .issue(b"u1", None, 0)
            .unwrap_err()
            .starts_with("ERR coupon numbers exhausted"));
        assert_eq!(coupon, before);
    }

    #[test]
    fn an_id_replays_the_issued_reply_and_changes_nothing() {
        let mut coupon = coupon(3, Some(3), None, None);
        let first = coupon.issue(b"u1", Some(b"r1"), 0).unwrap();
        assert_eq!(
            first,
            Applied::changed(outcome(IssueStatus::Issued, Some(1), 2))
        );
        issue(&mut coupon, b"u2", 0);
        let before = coupon.clone();
        let repeat = coupon.issue(b"u1", Some(b"r1"), 999).unwrap();
        assert_eq!(repeat, Applied::unchanged(first.outcome));
        assert_eq!(coupon, before);
        // The ID belongs to the key, whatever the user: another user with the same ID replays it too.
        assert_eq!(
            coupon.issue(b"u9", Some(b"r1"), 999).unwrap().outcome,
            first.outcome
        );
        // After the window the ID is new again and the call is evaluated afresh.
        let later = coupon.issue(b"u1", Some(b"r1"), 1_000).unwrap();
        assert_eq!(
            later,
            Applied::changed(outcome(IssueStatus::Issued, Some(3), 0))
        );
    }

    #[test]
    fn an_id_whose_first_call_changed_nothing_is_evaluated_again() {
        let mut coupon = coupon(1, None, Some(100), None);
        let early = coupon.issue(b"u1", Some(b"r1"), 50).unwrap();
        assert_eq!(
            early,
            Applied::unchanged(outcome(IssueStatus::NotStarted, None, 1))
        );
        let open = coupon.issue(b"u1", Some(b"r1"), 100).unwrap();
        assert_eq!(open.outcome.status, IssueStatus::Issued);
        let sold_out = coupon.issue(b"u2", Some(b"r2"), 100).unwrap();
        assert_eq!(
            sold_out,
            Applied::unchanged(outcome(IssueStatus::SoldOut, None, 0))
        );
    }

    #[test]
    fn memory_estimate_grows_with_holders() {
        let mut coupon = coupon(1_000, None, None, None);
        let empty = coupon.approximate_memory_bytes();
        for user in 0..500u32 {
            issue(&mut coupon, &user.to_be_bytes(), 0);
        }
        assert!(coupon.approximate_memory_bytes() > empty + 500 * 4);
    }

    // -----------------------------------------------------------------------------------------------------
    // The reference model: the semantics written the plain way, for the property test to compare against.

    #[derive(Clone, Debug)]
    enum Operation {
        Issue { user: u8, request_id: Option<u8> },
        Revoke { user: u8 },
        Get { user: u8 },
        Info,
        Holders { cursor: u64, count: u64 },
        Advance { ms: u64 },
    }

    #[derive(Clone, Debug, PartialEq)]
    enum Reply {
        Issue(IssueOutcome),
        Revoke(u64),
        Get(Vec<u64>),
        Info(CouponInfo),
        Holders(u64, Vec<(Vec<u8>, u64)>),
        Advance,
    }

    struct Model {
        spec: CouponSpec,
        /// (user, number, revoked) in issue order.
        numbers: Vec<(Vec<u8>, u64, bool)>,
        /// (request id, recorded at, outcome) in the order recorded.
        requests: Vec<(Vec<u8>, u64, IssueOutcome)>,
    }

    impl Model {
        fn held_by(&self, user: &[u8]) -> Vec<u64> {
            self.numbers
                .iter()
                .filter(|(holder, _, revoked)| holder == user && !revoked)
                .map(|n| n.1)
                .collect()
        }

        fn remaining(&self) -> u64 {
            self.spec.total - self.numbers.iter().filter(|n| !n.2).count() as u64
        }

        fn state(&self, now_ms: u64) -> CouponState {
            match (self.spec.start_ms, self.spec.end_ms) {
                (Some(start_ms), _) if now_ms < start_ms => CouponState::Pending,
                (_, Some(end_ms)) if now_ms >= end_ms => CouponState::Ended,
                _ if self.remaining() == 0 => CouponState::SoldOut,
                _ => CouponState::Open,
            }
        }

        fn apply(&mut self, operation: &Operation, now_ms: u64) -> Reply {
            match operation {
                Operation::Issue { user, request_id } => {
                    Reply::Issue(self.issue(&[b'u', *user], *request_id, now_ms))
                }
                Operation::Revoke { user } => {
                    let user = [b'u', *user];
                    let mut count = 0;
                    for number in self.numbers.iter_mut().filter(|n| n.0 == user && !n.2) {
                        number.2 = true;
                        count += 1;
                    }
                    Reply::Revoke(count)
                }
                Operation::Get { user } => Reply::Get(self.held_by(&[b'u', *user])),
                Operation::Info => Reply::Info(CouponInfo {
                    total: self.spec.total,
                    issued: self.numbers.len() as u64,
                    remaining: self.remaining(),
                    revoked: self.numbers.iter().filter(|n| n.2).count() as u64,
                    per_user: self.spec.per_user.unwrap_or(1),
                    start_ms: self.spec.start_ms,
                    end_ms: self.spec.end_ms,
                    state: self.state(now_ms),
                }),
                Operation::Holders { cursor, count } => {
                    let first = (*cursor).max(1);
                    let issued = self.numbers.len() as u64;
                    let last = issued.min(first + count - 1);
                    let page = self
                        .numbers
                        .iter()
                        .filter(|(_, number, revoked)| (first..=last).contains(number) && !revoked)
                        .map(|(user, number, _)| (user.clone(), *number))
                        .collect();
                    let next = if first > issued || last == issued {
                        0
                    } else {
                        last + 1
                    };
                    Reply::Holders(next, page)
                }
                Operation::Advance { .. } => Reply::Advance,
            }
        }

        fn issue(&mut self, user: &[u8], request_id: Option<u8>, now_ms: u64) -> IssueOutcome {
            let request_id = request_id.map(|id| vec![b'r', id]);
            if let Some(request_id) = &request_id {
                let live = self.requests.iter().find(|(id, recorded_ms, _)| {
                    id == request_id && recorded_ms + POLICY_SMALL.window_ms > now_ms
                });
                if let Some((_, _, outcome)) = live {
                    return *outcome;
                }
            }
            let remaining = self.remaining();
            let held = self.held_by(user);
            let outcome = match self.state(now_ms) {
                CouponState::Pending => outcome(IssueStatus::NotStarted, None, remaining),
                CouponState::Ended => outcome(IssueStatus::Ended, None, remaining),
                _ if held.len() as u64 >= self.spec.per_user.unwrap_or(1) => {
                    outcome(IssueStatus::Already, Some(held[0]), remaining)
                }
                _ if remaining == 0 => outcome(IssueStatus::SoldOut, None, 0),
                _ => {
                    let number = self.numbers.len() as u64 + 1;
                    self.numbers.push((user.to_vec(), number, false));
                    outcome(IssueStatus::Issued, Some(number), remaining - 1)
                }
            };
            if let (Some(request_id), IssueStatus::Issued) = (request_id, outcome.status) {
                self.requests
                    .retain(|(_, recorded_ms, _)| recorded_ms + POLICY_SMALL.window_ms > now_ms);
                self.requests.push((request_id, now_ms, outcome));
                if self.requests.len() > POLICY_SMALL.entries_max {
                    self.requests.remove(0);
                }
            }
            outcome
        }
    }

    /// Small bounds so the property test reaches the window and the count bound.
    const POLICY_SMALL: IdempotencyPolicy = IdempotencyPolicy {
        window_ms: 60,
        entries_max: 3,
    };

    fn apply(coupon: &mut Coupon, operation: &Operation, now_ms: u64) -> (Reply, bool) {
        match operation {
            Operation::Issue { user, request_id } => {
                let request_id = request_id.map(|id| [b'r', id]);
                let applied = coupon
                    .issue(
                        &[b'u', *user],
                        request_id.as_ref().map(|id| &id[..]),
                        now_ms,
                    )
                    .unwrap();
                (Reply::Issue(applied.outcome), applied.changed)
            }
            Operation::Revoke { user } => {
                let applied = coupon.revoke(&[b'u', *user]).unwrap();
                (Reply::Revoke(applied.outcome), applied.changed)
            }
            Operation::Get { user } => (Reply::Get(coupon.get(&[b'u', *user]).unwrap()), false),
            Operation::Info => (Reply::Info(coupon.info(now_ms)), false),
            Operation::Holders { cursor, count } => {
                let page = coupon.holders(*cursor, *count).unwrap();
                let holders = page
                    .holders
                    .iter()
                    .map(|(user, number)| (user.to_vec(), *number))
                    .collect();
                (Reply::Holders(page.next_cursor, holders), false)
            }
            Operation::Advance { .. } => (Reply::Advance, false),
        }
    }

    fn operation_strategy() -> impl Strategy<Value = Operation> {
        prop_oneof![
            4 => (0..6u8, proptest::option::of(0..4u8))
                .prop_map(|(user, request_id)| Operation::Issue { user, request_id }),
            1 => (0..6u8).prop_map(|user| Operation::Revoke { user }),
            1 => (0..6u8).prop_map(|user| Operation::Get { user }),
            1 => Just(Operation::Info),
            1 => (0..12u64, 1..5u64).prop_map(|(cursor, count)| Operation::Holders { cursor, count }),
            2 => (0..40u64).prop_map(|ms| Operation::Advance { ms }),
        ]
    }

    fn spec_strategy() -> impl Strategy<Value = CouponSpec> {
        (
            1..6u64,
            proptest::option::of(1..4u64),
            proptest::option::of(0..60u64),
            proptest::option::of(1..200u64),
        )
            .prop_map(|(total, per_user, start_ms, length_ms)| CouponSpec {
                total,
                per_user,
                start_ms,
                end_ms: length_ms.map(|length_ms| start_ms.unwrap_or(0) + length_ms),
            })
    }

    /// Runs the operations from empty; returns the coupon and the calls that changed state, with their time.
    fn run(
        spec: CouponSpec,
        operations: &[Operation],
        model: Option<&mut Model>,
    ) -> (Coupon, Vec<(Operation, u64)>) {
        let mut coupon = Coupon::create(spec, POLICY_SMALL).unwrap();
        let mut model = model;
        let mut logged = Vec::new();
        let mut now_ms = 0;
        for operation in operations {
            if let Operation::Advance { ms } = operation {
                now_ms += ms;
            }
            let before = coupon.clone();
            let (reply, changed) = apply(&mut coupon, operation, now_ms);
            if let Some(model) = model.as_deref_mut() {
                assert_eq!(
                    reply,
                    model.apply(operation, now_ms),
                    "{operation:?} at {now_ms}"
                );
            }
            if changed {
                logged.push((operation.clone(), now_ms));
            } else {
                assert_eq!(
                    coupon, before,
                    "an unchanged call left the value as it was: {operation:?}"
                );
            }
            coupon.check_invariants();
            let info = coupon.info(now_ms);
            assert!(info.issued - info.revoked <= info.total, "never over-issue");
        }
        (coupon, logged)
    }

    fn all_holders(coupon: &Coupon) -> Vec<(Vec<u8>, u64)> {
        let page = coupon.holders(0, COUPON_HOLDERS_COUNT_MAX).unwrap();
        page.holders
            .iter()
            .map(|(user, number)| (user.to_vec(), *number))
            .collect()
    }

    proptest! {
        #[test]
        fn matches_the_model_and_replays_to_the_same_state(
            spec in spec_strategy(),
            operations in proptest::collection::vec(operation_strategy(), 0..80),
        ) {
            let mut model = Model { spec, numbers: Vec::new(), requests: Vec::new() };
            let (live, logged) = run(spec, &operations, Some(&mut model));

            // Determinism: the same operations from empty give the same state.
            let (again, _) = run(spec, &operations, None);
            prop_assert_eq!(&again, &live);
            prop_assert_eq!(all_holders(&again), all_holders(&live));

            // Replay: only the calls that changed state, with their logged time, rebuild the same value.
            let mut replayed = Coupon::create(spec, POLICY_SMALL).unwrap();
            for (operation, now_ms) in &logged {
                let (_, changed) = apply(&mut replayed, operation, *now_ms);
                prop_assert!(changed, "a logged call changes state again on replay");
            }
            prop_assert_eq!(&replayed, &live);
            prop_assert_eq!(all_holders(&replayed), all_holders(&live));
        }
    }

    fn round_trip(coupon: &Coupon) -> Coupon {
        let mut out = Vec::new();
        coupon.encode(&mut out);
        let mut reader = Reader::new(&out);
        let decoded = Coupon::decode(&mut reader).expect("decodes");
        reader.finish().expect("every byte read");
        for cut in [0, out.len() / 2, out.len() - 1] {
            assert!(Coupon::decode(&mut Reader::new(&out[..cut])).is_err());
        }
        decoded
    }

    #[test]
    fn snapshot_encoding_round_trips_holders_revokes_and_request_ids() {
        let mut coupon = coupon(10, Some(2), Some(5), Some(1_000));
        assert_eq!(round_trip(&coupon), coupon);
        for (index, user) in [&b"u1"[..], b"u2", b"u1", b"u3"].iter().enumerate() {
            let id = format!("req{index}");
            coupon.issue(user, Some(id.as_bytes()), 10).unwrap();
        }
        coupon.revoke(b"u2").unwrap();
        let mut decoded = round_trip(&coupon);
        decoded.check_invariants();
        assert_eq!(decoded, coupon);
        assert_eq!(
            decoded.holder_index_by_number,
            coupon.holder_index_by_number
        );
        // Both answer the next calls alike, a repeated request ID included.
        for copy in [&mut coupon, &mut decoded] {
            assert_eq!(
                copy.issue(b"u4", Some(b"req0"), 20).unwrap().outcome.number,
                Some(1)
            );
            assert_eq!(copy.issue(b"u2", None, 20).unwrap().outcome.number, Some(5));
        }
        assert_eq!(decoded, coupon);
    }
}
