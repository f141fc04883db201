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
//! # Memory and pauses
//! - Holders live in a [`Table`] (`store::table`), which grows a few buckets per insert and per loop
//!   iteration ([`Coupon::rehash_step`]) instead of doubling in one go, so a coupon of millions of holders
//!   adds no pause to the loop as it crosses a power of two. Holders are never removed (a user whose
//!   coupons were revoked keeps their entry), so a holder's position in the table's dense array is stable:
//!   it is the holder's index in issue order of their first coupon.
//! - Per holder: one table entry of 40 bytes (the name as a [`SmallBytes`], inline up to 30 bytes, plus
//!   the table's cached hash and chain link), 4 to 8 bytes of bucket array, and 4 bytes for their first
//!   number. Names longer than 30 bytes add one heap allocation. Numbers past the first (`PERUSER > 1`)
//!   live in a second table keyed by holder index, so the usual holder of one coupon pays nothing for them.
//! - Per issued number: 4 bytes naming its holder. Numbers are issued 1, 2, 3, ..., so this index is a
//!   dense array, not a map, and it grows a fixed-size segment at a time (`segmented.rs`), never copying
//!   itself; so does the first-number array. Numbers fit 32 bits (`COUPON_NUMBER_MAX < u32::MAX`).

pub mod codec;
pub mod commands;
mod segmented;

use segmented::SegmentedArray;

use crate::limits::{
    COUPON_HOLDERS_COUNT_MAX, COUPON_NUMBER_MAX, COUPON_PER_USER_MAX, COUPON_TOTAL_MAX,
    COUPON_USER_LENGTH_MAX,
};
use crate::small_bytes::SmallBytes;
use crate::store::idempotency::{Applied, IdempotencyCache, IdempotencyPolicy};
use crate::store::table::Table;

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

/// One coupon event. See the module docs for the semantics.
#[derive(Debug)]
pub struct Coupon {
    total: u64,
    per_user: u64,
    start_ms: Option<u64>,
    end_ms: Option<u64>,
    /// Numbers handed out so far; the next number is `issued + 1`.
    issued: u64,
    /// Coupons given back by `revoke`.
    revoked: u64,
    /// Every user who was ever issued a coupon, at their holder index (the order of their first issue).
    /// Never removed from, so positions stay put.
    holders: Table<SmallBytes, ()>,
    /// Holder index -> the lowest number the holder holds, or 0 when they hold none (numbers start at 1).
    first_number_by_holder: SegmentedArray<u32>,
    /// Holder index -> the numbers they hold after the first, ascending; only holders of two or more
    /// (`PERUSER > 1`) have an entry.
    more_numbers_by_holder: Table<u32, Box<[u32]>>,
    /// `number - 1` -> holder index, or `HOLDER_INDEX_REVOKED`.
    holder_index_by_number: SegmentedArray<u32>,
    /// Heap bytes owned outside the tables and arrays (names too long to be inline, the boxes of
    /// `more_numbers_by_holder`), for `approximate_memory_bytes`.
    holders_heap_bytes: usize,
    request_outcomes: IdempotencyCache<IssueOutcome>,
}

/// Equality of what a coupon holds: limits, counters, holders in order with their numbers, the
/// number-to-holder index and the request-ID cache; not how the tables happen to be laid out (their
/// bucket arrays, a resize in progress).
impl PartialEq for Coupon {
    fn eq(&self, other: &Coupon) -> bool {
        self.total == other.total
            && self.per_user == other.per_user
            && self.start_ms == other.start_ms
            && self.end_ms == other.end_ms
            && self.issued == other.issued
            && self.revoked == other.revoked
            && self.holders.len() == other.holders.len()
            && self.holder_index_by_number == other.holder_index_by_number
            && self.holders_heap_bytes == other.holders_heap_bytes
            && self.request_outcomes == other.request_outcomes
            && (0..self.holders.len()).all(|holder_index| {
                self.holder_name(holder_index) == other.holder_name(holder_index)
                    && self
                        .numbers_of(holder_index)
                        .eq(other.numbers_of(holder_index))
            })
    }
}

impl Eq for Coupon {}

/// A copy whose tables are built entry by entry, in position order, so each holder keeps its index.
///
/// Why not `Table`'s own `Clone`: it clones the entry segments as `Vec`s, which allocate their length,
/// not their capacity, and the table's next insert into a partly filled last segment then trips its
/// debug check that only the first segment is ever short of capacity. A copy is the rare fallback of
/// `Shared` (a change to a coupon the snapshot writer still holds), so an insert per entry costs little.
impl Clone for Coupon {
    fn clone(&self) -> Coupon {
        let mut holders = Table::default();
        for (name, ()) in self.holders.iter() {
            holders.insert(name.clone(), ());
        }
        let mut more_numbers_by_holder = Table::default();
        for (holder_index, numbers) in self.more_numbers_by_holder.iter() {
            more_numbers_by_holder.insert(*holder_index, numbers.clone());
        }
        Coupon {
            holders,
            more_numbers_by_holder,
            first_number_by_holder: self.first_number_by_holder.clone(),
            holder_index_by_number: self.holder_index_by_number.clone(),
            request_outcomes: self.request_outcomes.clone(),
            ..*self
        }
    }
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
        Ok(Coupon::empty(
            spec.total,
            per_user,
            spec.start_ms,
            spec.end_ms,
            IdempotencyCache::new(policy),
        ))
    }

    fn empty(
        total: u64,
        per_user: u64,
        start_ms: Option<u64>,
        end_ms: Option<u64>,
        request_outcomes: IdempotencyCache<IssueOutcome>,
    ) -> Coupon {
        Coupon {
            total,
            per_user,
            start_ms,
            end_ms,
            issued: 0,
            revoked: 0,
            holders: Table::default(),
            first_number_by_holder: SegmentedArray::default(),
            more_numbers_by_holder: Table::default(),
            holder_index_by_number: SegmentedArray::default(),
            holders_heap_bytes: 0,
            request_outcomes,
        }
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
        // One lookup serves the PERUSER check and the issue below.
        let holder_index = self.holders.get_index_of(user);
        let refused = match self.state(now_ms) {
            CouponState::Pending => {
                Some(IssueOutcome::new(IssueStatus::NotStarted, None, remaining))
            }
            CouponState::Ended => Some(IssueOutcome::new(IssueStatus::Ended, None, remaining)),
            CouponState::Open | CouponState::SoldOut => {
                let first = holder_index.map_or(0, |index| self.first_number_by_holder.get(index));
                match holder_index {
                    Some(index) if first != 0 && self.held_count(index) >= self.per_user => Some(
                        IssueOutcome::new(IssueStatus::Already, Some(u64::from(first)), remaining),
                    ),
                    _ if remaining == 0 => Some(IssueOutcome::new(IssueStatus::SoldOut, None, 0)),
                    _ => None,
                }
            }
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
        let number_u32 = u32::try_from(number).expect("numbers <= COUPON_NUMBER_MAX < u32::MAX");
        let holder_index = match holder_index {
            Some(holder_index) => holder_index,
            None => self.add_holder(user),
        };
        self.hold(holder_index, number_u32);
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

    /// Adds a user who never held a coupon, holding none yet; returns their holder index.
    fn add_holder(&mut self, user: &[u8]) -> usize {
        let name = SmallBytes::copy_from_slice(user);
        self.holders_heap_bytes += name_heap_bytes(&name);
        let (holder_index, replaced) = self.holders.insert_full(name, ());
        assert!(replaced.is_none(), "the user was not a holder");
        assert_eq!(
            holder_index,
            self.first_number_by_holder.len(),
            "holders are never removed"
        );
        self.first_number_by_holder.push(0);
        holder_index
    }

    /// Gives `number`, larger than every number issued before, to the holder at `holder_index`.
    fn hold(&mut self, holder_index: usize, number: u32) {
        let first = self.first_number_by_holder.get(holder_index);
        if first == 0 {
            self.first_number_by_holder.set(holder_index, number);
            return;
        }
        assert!(number > first, "numbers grow");
        let key = holder_index as u32;
        let numbers: Box<[u32]> = match self.more_numbers_by_holder.get(&key) {
            Some(more) => {
                assert!(
                    more.last().is_some_and(|last| number > *last),
                    "numbers grow"
                );
                self.holders_heap_bytes -= std::mem::size_of_val(&**more);
                more.iter().copied().chain([number]).collect()
            }
            None => Box::new([number]),
        };
        self.holders_heap_bytes += std::mem::size_of_val(&*numbers);
        self.more_numbers_by_holder.insert(key, numbers);
    }

    /// How many numbers the holder at `holder_index` holds.
    fn held_count(&self, holder_index: usize) -> u64 {
        if self.first_number_by_holder.get(holder_index) == 0 {
            return 0;
        }
        let more = self
            .more_numbers_by_holder
            .get(&(holder_index as u32))
            .map_or(0, |more| more.len());
        1 + more as u64
    }

    /// The numbers the holder at `holder_index` holds, ascending.
    fn numbers_of(&self, holder_index: usize) -> impl Iterator<Item = u64> + '_ {
        let first = self.first_number_by_holder.get(holder_index);
        let more: &[u32] = if first == 0 {
            &[]
        } else {
            self.more_numbers_by_holder
                .get(&(holder_index as u32))
                .map_or(&[], |more| &**more)
        };
        (first != 0)
            .then_some(first)
            .into_iter()
            .chain(more.iter().copied())
            .map(u64::from)
    }

    fn holder_name(&self, holder_index: usize) -> &[u8] {
        let (name, ()) = self
            .holders
            .get_index(holder_index)
            .expect("a holder index");
        name
    }

    /// `COUPON.GET event user`: the user's numbers, ascending.
    pub fn get(&self, user: &[u8]) -> Result<Vec<u64>, String> {
        validate_user(user)?;
        Ok(self
            .holders
            .get_index_of(user)
            .map(|holder_index| self.numbers_of(holder_index).collect())
            .unwrap_or_default())
    }

    /// `COUPON.REVOKE event user`: gives all the user's coupons back to the pool; answers how many.
    pub fn revoke(&mut self, user: &[u8]) -> Result<Applied<u64>, String> {
        validate_user(user)?;
        let Some(holder_index) = self.holders.get_index_of(user) else {
            return Ok(Applied::unchanged(0));
        };
        let first = self.first_number_by_holder.get(holder_index);
        if first == 0 {
            return Ok(Applied::unchanged(0));
        }
        let more = self
            .more_numbers_by_holder
            .remove(&(holder_index as u32))
            .unwrap_or_default();
        self.holders_heap_bytes -= std::mem::size_of_val(&*more);
        self.first_number_by_holder.set(holder_index, 0);
        for number in [first].iter().chain(more.iter()) {
            let index = (*number - 1) as usize;
            assert_eq!(
                self.holder_index_by_number.get(index),
                holder_index as u32,
                "a held number is indexed to its holder"
            );
            self.holder_index_by_number.set(index, HOLDER_INDEX_REVOKED);
        }
        let count = 1 + more.len() as u64;
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
                let holder_index = self.holder_index_by_number.get((number - 1) as usize);
                if holder_index == HOLDER_INDEX_REVOKED {
                    return None;
                }
                Some((self.holder_name(holder_index as usize), number))
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

    /// Moves up to `buckets` buckets of its tables' resizes in progress (the loop calls this between
    /// requests, see `Table::rehash_step`); true while one is still in progress.
    pub fn rehash_step(&mut self, buckets: usize) -> bool {
        let holders_rehashing = self.holders.rehash_step(buckets);
        let more_rehashing = self.more_numbers_by_holder.rehash_step(buckets);
        holders_rehashing || more_rehashing
    }

    /// Whether one of its tables is resizing, so [`Coupon::rehash_step`] has work to do.
    pub fn is_rehashing(&self) -> bool {
        self.holders.is_rehashing() || self.more_numbers_by_holder.is_rehashing()
    }

    /// An estimate of the heap and inline bytes this value owns, for `INFO memory`.
    pub fn approximate_memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.holders.memory_bytes()
            + self.first_number_by_holder.memory_bytes()
            + self.more_numbers_by_holder.memory_bytes()
            + self.holder_index_by_number.memory_bytes()
            + self.holders_heap_bytes
            + self.request_outcomes.approximate_memory_bytes()
    }

    /// Checks every invariant, walking all holders: in tests, and in debug builds after a snapshot load
    /// and after replay (`Value::check_invariants`); never on the hot path.
    pub fn check_invariants(&self) {
        self.assert_counts();
        assert_eq!(self.holder_index_by_number.len() as u64, self.issued);
        assert_eq!(self.first_number_by_holder.len(), self.holders.len());
        #[cfg(test)]
        {
            self.holders.assert_consistent();
            self.more_numbers_by_holder.assert_consistent();
        }
        let mut held_total = 0;
        let mut heap_bytes = 0;
        let mut holders_of_more = 0;
        for holder_index in 0..self.holders.len() {
            let user = self.holder_name(holder_index);
            validate_user(user).expect("stored users are valid");
            let (stored, ()) = self
                .holders
                .get_key_value(user)
                .expect("a holder is found by name");
            assert_eq!(self.holders.get_index_of(user), Some(holder_index));
            heap_bytes += name_heap_bytes(stored);
            if let Some(more) = self.more_numbers_by_holder.get(&(holder_index as u32)) {
                assert!(!more.is_empty(), "an entry of more numbers is never empty");
                assert_ne!(
                    self.first_number_by_holder.get(holder_index),
                    0,
                    "more numbers only after a first"
                );
                heap_bytes += std::mem::size_of_val(&**more);
                holders_of_more += 1;
            }
            let numbers: Vec<u64> = self.numbers_of(holder_index).collect();
            assert!(
                numbers.len() as u64 <= self.per_user,
                "no user holds more than PERUSER"
            );
            assert!(
                numbers.windows(2).all(|pair| pair[0] < pair[1]),
                "numbers ascend"
            );
            for number in &numbers {
                assert!((1..=self.issued).contains(number));
                assert_eq!(
                    self.holder_index_by_number.get((number - 1) as usize) as usize,
                    holder_index
                );
            }
            held_total += numbers.len() as u64;
        }
        assert_eq!(
            holders_of_more,
            self.more_numbers_by_holder.len(),
            "every entry of more numbers belongs to a holder"
        );
        let unrevoked = self
            .holder_index_by_number
            .iter()
            .filter(|index| *index != HOLDER_INDEX_REVOKED);
        assert_eq!(
            unrevoked.count() as u64,
            held_total,
            "each held number is in the index once"
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

/// Heap bytes a stored name owns: none when inline, else its shared allocation (two reference counts and
/// the bytes).
fn name_heap_bytes(name: &SmallBytes) -> usize {
    if name.is_inline() {
        0
    } else {
        2 * std::mem::size_of::<usize>() + name.len()
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
