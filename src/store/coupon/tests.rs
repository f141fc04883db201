use super::*;
use crate::store::encoding::Reader;
use proptest::prelude::*;

const POLICY: IdempotencyPolicy = IdempotencyPolicy {
    window_ms: 1_000,
    entries_max: 100,
};

fn coupon(total: u64, per_user: Option<u64>, start_ms: Option<u64>, end_ms: Option<u64>) -> Coupon {
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
    coupon
        .holder_index_by_number
        .extend_filled(HOLDER_INDEX_REVOKED, (COUPON_NUMBER_MAX - 1) as usize);
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

/// A deterministic stream of pseudo-random numbers (a 64-bit LCG's high bits), so the growth tests below
/// are the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// User `n`: every seventh name is longer than `SmallBytes` holds inline, so both forms are stored.
fn user_name(n: u64) -> Vec<u8> {
    if n.is_multiple_of(7) {
        format!("a-user-name-longer-than-thirty-bytes:{n}").into_bytes()
    } else {
        format!("user:{n:012}").into_bytes()
    }
}

/// Every held number with its holder, walked through COUPON.HOLDERS pages as a client would.
fn holders_by_paging(coupon: &Coupon, count: u64) -> Vec<(Vec<u8>, u64)> {
    let mut cursor = 0;
    let mut all = Vec::new();
    loop {
        let page = coupon.holders(cursor, count).unwrap();
        all.extend(
            page.holders
                .iter()
                .map(|(user, number)| (user.to_vec(), *number)),
        );
        if page.next_cursor == 0 {
            return all;
        }
        cursor = page.next_cursor;
    }
}

/// The reference's holders in number order, as `holders_by_paging` lists them.
fn reference_holders(
    reference: &std::collections::HashMap<Vec<u8>, Vec<u64>>,
) -> Vec<(Vec<u8>, u64)> {
    let mut all: Vec<(Vec<u8>, u64)> = reference
        .iter()
        .flat_map(|(user, numbers)| numbers.iter().map(|number| (user.clone(), *number)))
        .collect();
    all.sort_by_key(|(_, number)| *number);
    all
}

#[test]
fn growth_across_resizes_with_revokes_keeps_holders_and_numbers_consistent() {
    let mut coupon = coupon(1_000_000, Some(3), None, None);
    let mut reference: std::collections::HashMap<Vec<u8>, Vec<u64>> = Default::default();
    let mut random = Lcg(15);
    let mut next_number = 1;
    let (mut resizes_seen, mut was_rehashing) = (0, false);
    for step in 0..40_000u64 {
        let choice = random.next() % 100;
        // Users drawn from a range that widens as the test goes, so the holder table keeps growing
        // while earlier holders come back for more numbers or give theirs back.
        let user = user_name(random.next() % (1 + step / 2));
        if choice < 80 {
            let outcome = issue(&mut coupon, &user, 0);
            let held = reference.entry(user.clone()).or_default();
            if held.len() < 3 {
                assert_eq!(
                    outcome,
                    outcome_of(IssueStatus::Issued, next_number, &coupon)
                );
                held.push(next_number);
                next_number += 1;
            } else {
                assert_eq!(outcome.status, IssueStatus::Already);
                assert_eq!(outcome.number, Some(held[0]));
            }
        } else if choice < 95 {
            let returned = coupon.revoke(&user).unwrap().outcome;
            let held = reference.remove(&user).unwrap_or_default();
            assert_eq!(returned, held.len() as u64);
        } else {
            // The loop's share of a resize, between requests.
            coupon.rehash_step((random.next() % 64) as usize);
        }
        assert_eq!(
            coupon.get(&user).unwrap(),
            reference.get(&user).cloned().unwrap_or_default()
        );
        if coupon.is_rehashing() != was_rehashing {
            // Check everything as each resize starts and as it ends.
            was_rehashing = coupon.is_rehashing();
            resizes_seen += u32::from(was_rehashing);
            coupon.check_invariants();
        }
    }
    assert!(
        coupon.holder_count() > 8_192,
        "the holders grew past several resizes"
    );
    assert!(resizes_seen >= 10, "{resizes_seen} resizes seen");
    coupon.check_invariants();
    assert_eq!(
        holders_by_paging(&coupon, 997),
        reference_holders(&reference)
    );
    // The loop finishes any resize in progress; nothing changes for the commands.
    let before = coupon.clone();
    while coupon.rehash_step(16) {}
    assert!(!coupon.is_rehashing());
    coupon.check_invariants();
    assert_eq!(coupon, before);
}

/// An `ISSUED` outcome of `number`, with the coupon's remaining count after it.
fn outcome_of(status: IssueStatus, number: u64, coupon: &Coupon) -> IssueOutcome {
    outcome(status, Some(number), coupon.remaining())
}

#[test]
fn snapshot_round_trips_at_sizes_crossing_resizes() {
    let mut coupon = coupon(100_000, Some(2), None, None);
    let mut random = Lcg(7);
    let mut holders = 0;
    let mut mid_resize_snapshots = 0;
    let sizes = [
        0, 1, 3, 4, 5, 8, 9, 16, 17, 64, 65, 1_024, 1_025, 4_096, 4_097, 4_100, 9_000,
    ];
    for size in sizes {
        while coupon.holder_count() < size {
            holders += 1;
            let user = user_name(holders);
            issue(&mut coupon, &user, 0);
            match random.next() % 10 {
                0 => {
                    issue(&mut coupon, &user, 0);
                }
                1 => {
                    coupon.revoke(&user).unwrap();
                }
                _ => {}
            }
        }
        mid_resize_snapshots += u32::from(coupon.is_rehashing());
        let mut decoded = round_trip(&coupon);
        decoded.check_invariants();
        assert_eq!(decoded, coupon, "at {size} holders");
        assert_eq!(
            holders_by_paging(&decoded, 1_000),
            holders_by_paging(&coupon, 1_000)
        );
        // The copy goes on as the original does: a new user, a holder's second number, a revoke.
        let mut original = coupon.clone();
        for copy in [&mut original, &mut decoded] {
            issue(copy, b"someone new", 0);
            issue(copy, &user_name(1), 0);
            copy.revoke(&user_name(2)).unwrap();
            copy.check_invariants();
        }
        assert_eq!(decoded, original, "after {size} holders");
    }
    assert!(
        mid_resize_snapshots > 0,
        "a snapshot was taken while a resize was in progress"
    );
}

#[test]
fn the_snapshot_encoding_is_the_documented_byte_format() {
    use crate::store::encoding::{put_bytes, put_count, put_option_u64, put_u64};
    let mut coupon = coupon(10, Some(2), None, Some(5_000));
    issue(&mut coupon, b"u1", 0);
    issue(&mut coupon, b"u2", 0);
    issue(&mut coupon, b"u1", 0);
    issue(&mut coupon, b"u3", 0);
    coupon.revoke(b"u2").unwrap();
    let mut expected = Vec::new();
    for value in [10, 2] {
        put_u64(&mut expected, value);
    }
    put_option_u64(&mut expected, None);
    put_option_u64(&mut expected, Some(5_000));
    put_u64(&mut expected, 4); // issued
    put_u64(&mut expected, 1); // revoked
    put_count(&mut expected, 3);
    // Per holder in order of first issue: name, first number (0: holds none), further numbers.
    for (user, first, more) in [
        (&b"u1"[..], 1, &[3u64][..]),
        (b"u2", 0, &[]),
        (b"u3", 4, &[]),
    ] {
        put_bytes(&mut expected, user);
        put_u64(&mut expected, first);
        put_count(&mut expected, more.len());
        for number in more {
            put_u64(&mut expected, *number);
        }
    }
    IdempotencyCache::<IssueOutcome>::new(POLICY).encode(&mut expected);
    let mut encoded = Vec::new();
    coupon.encode(&mut encoded);
    assert_eq!(encoded, expected);
    assert_eq!(round_trip(&coupon), coupon);
}

#[test]
fn a_snapshot_that_breaks_an_invariant_is_refused() {
    use crate::store::encoding::{put_bytes, put_count, put_option_u64, put_u64};
    // total 10, PERUSER 2, 3 issued, none revoked, then the holders given.
    let encode = |holders: &[(&[u8], u64, &[u64])]| {
        let mut out = Vec::new();
        for value in [10, 2] {
            put_u64(&mut out, value);
        }
        put_option_u64(&mut out, None);
        put_option_u64(&mut out, None);
        put_u64(&mut out, 3);
        put_u64(&mut out, 0);
        put_count(&mut out, holders.len());
        for (user, first, more) in holders {
            put_bytes(&mut out, user);
            put_u64(&mut out, *first);
            put_count(&mut out, more.len());
            for number in *more {
                put_u64(&mut out, *number);
            }
        }
        IdempotencyCache::<IssueOutcome>::new(POLICY).encode(&mut out);
        out
    };
    let decode = |bytes: Vec<u8>| Coupon::decode(&mut Reader::new(&bytes));
    let good = decode(encode(&[(b"a", 1, &[3]), (b"b", 2, &[])])).unwrap();
    good.check_invariants();
    for (holders, why) in [
        (
            &[(&b"a"[..], 1, &[3][..]), (b"a", 2, &[])][..],
            "appears twice",
        ),
        (&[(b"a", 1, &[3]), (b"b", 1, &[])], "held twice"),
        (&[(b"a", 3, &[1]), (b"b", 2, &[])], "do not ascend"),
        (&[(b"a", 1, &[2, 3])], "more than PERUSER"),
        (&[(b"a", 1, &[4]), (b"b", 2, &[])], "never issued"),
        (&[(b"a", 0, &[3]), (b"b", 2, &[])], "no first"),
        (&[(b"a", 1, &[3])], "do not add up"),
        (&[(b"", 1, &[3]), (b"b", 2, &[])], "name"),
    ] {
        let error = decode(encode(holders)).unwrap_err();
        assert!(error.contains(why), "{why}: {error}");
    }
}
