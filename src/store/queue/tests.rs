use super::*;
use crate::store::encoding::Reader;
use proptest::prelude::*;
use std::collections::HashMap;

const NOW: u64 = 1_700_000_000_000;

fn users(admitted: Vec<Vec<u8>>) -> Vec<String> {
    admitted
        .into_iter()
        .map(|user| String::from_utf8(user).unwrap())
        .collect()
}

#[test]
fn join_returns_positions_and_joining_again_keeps_ones_place() {
    let mut room = WaitingRoom::new();
    assert_eq!(room.join(b"a", NOW), Ok(1));
    assert_eq!(room.join(b"b", NOW), Ok(2));
    assert_eq!(room.join(b"c", NOW), Ok(3));
    assert_eq!(room.join(b"a", NOW + 1), Ok(1));
    assert_eq!(room.join(b"c", NOW + 1), Ok(3));
    assert_eq!(room.position(b"b", NOW + 2), Some(2));
    assert_eq!(room.position(b"zed", NOW + 2), None);
    assert_eq!(room.waiting_count(), 3);
    assert!(room.join(&[b'x'; USER_ID_BYTES_MAX + 1], NOW).is_err());
    room.check_invariants();
}

#[test]
fn admit_hands_out_passes_in_order() {
    let mut room = WaitingRoom::new();
    for user in [b"a", b"b", b"c"] {
        room.join(user, NOW).unwrap();
    }
    assert_eq!(users(room.admit(2, 1_000, NOW).unwrap()), ["a", "b"]);
    assert_eq!(room.position(b"a", NOW), Some(0));
    assert_eq!(room.position(b"c", NOW), Some(1));
    assert_eq!(room.waiting_count(), 1);
    assert!(room.has_pass(b"a", NOW + 999));
    assert!(
        !room.has_pass(b"a", NOW + 1_000),
        "valid until now + ttl, exclusive"
    );
    assert!(!room.has_pass(b"c", NOW));
    // Joining with a valid pass changes nothing.
    assert_eq!(room.join(b"b", NOW + 10), Ok(0));
    assert_eq!(room.waiting_count(), 1);
    // After expiry the user is unknown, and a JOIN goes to the back.
    assert_eq!(room.position(b"a", NOW + 1_000), None);
    assert_eq!(room.join(b"b", NOW + 1_000), Ok(2));
    assert_eq!(
        users(room.admit(10, 1_000, NOW + 1_000).unwrap()),
        ["c", "b"]
    );
    assert_eq!(room.admit(1, 1_000, NOW + 1_000), Ok(vec![]));
    room.check_invariants();
}

#[test]
fn a_full_room_refuses_newcomers_and_expired_pass_holders_but_keeps_waiters() {
    let mut room = WaitingRoom::new();
    room.join(b"admitted", NOW).unwrap();
    room.admit(1, 10, NOW).unwrap();
    room.join(b"waiting", NOW).unwrap();
    // Pretend the other places are taken: only the capacity check reads the count before a change.
    room.waiting_count = QUEUE_WAITERS_MAX;
    assert!(room.join(b"new", NOW).unwrap_err().contains("full"));
    assert!(room
        .join(b"admitted", NOW + 10)
        .unwrap_err()
        .contains("full"));
    assert_eq!(room.join(b"waiting", NOW + 10), Ok(1));
    assert!(
        room.entry_id_by_user.contains_key(&b"admitted"[..]),
        "a refused JOIN changed nothing"
    );
}

#[test]
fn admit_validates_its_arguments() {
    let mut room = WaitingRoom::new();
    room.join(b"a", NOW).unwrap();
    assert!(room.admit(0, 1_000, NOW).is_err());
    assert!(room.admit(QUEUE_ADMIT_COUNT_MAX + 1, 1_000, NOW).is_err());
    assert!(room.admit(1, 0, NOW).is_err());
    assert!(room.admit(1, QUEUE_PASS_TTL_MS_MAX + 1, NOW).is_err());
    assert_eq!(room.waiting_count(), 1, "a refused command changes nothing");
    assert!(room
        .set_idle_timeout_ms(QUEUE_IDLE_TIMEOUT_MS_MAX + 1)
        .is_err());
    assert_eq!(room.idle_timeout_ms(), 0);
}

#[test]
fn leave_removes_waiters_and_revokes_passes() {
    let mut room = WaitingRoom::new();
    for user in [b"a", b"b", b"c"] {
        room.join(user, NOW).unwrap();
    }
    room.admit(1, 100, NOW).unwrap();
    assert!(room.leave(b"b", NOW));
    assert!(!room.leave(b"b", NOW));
    assert_eq!(room.position(b"c", NOW), Some(1));
    assert!(room.leave(b"a", NOW));
    assert!(!room.has_pass(b"a", NOW));
    room.admit(1, 100, NOW).unwrap();
    assert!(
        !room.leave(b"c", NOW + 100),
        "an expired pass is nothing to leave"
    );
    assert!(room.is_empty());
    room.check_invariants();
}

#[test]
fn idle_waiters_are_dropped_lazily_and_actively() {
    let mut room = WaitingRoom::new();
    room.set_idle_timeout_ms(1_000).unwrap();
    for user in [b"a", b"b", b"c", b"d"] {
        room.join(user, NOW).unwrap();
    }
    assert_eq!(room.next_deadline_ms(), Some(NOW + 1_000));
    assert_eq!(room.position(b"b", NOW + 500), Some(2)); // a poll keeps b's spot
    assert_eq!(room.join(b"d", NOW + 600), Ok(4));
    // At NOW + 1000 a and c are idle. c touching the room sees itself dropped and rejoins at the back.
    assert_eq!(room.position(b"c", NOW + 1_000), None);
    assert_eq!(room.join(b"c", NOW + 1_000), Ok(4));
    // a still holds its place for others until the active cycle drops it.
    assert_eq!(room.rank_of(b"b"), Some(2));
    assert_eq!(room.next_deadline_ms(), Some(NOW + 1_000));
    assert_eq!(users(room.expire_idle(NOW + 1_000, 10)), ["a"]);
    assert_eq!(room.rank_of(b"b"), Some(1));
    assert_eq!(room.next_deadline_ms(), Some(NOW + 1_500));
    // ADMIT skips (and drops) idlers at the front.
    assert_eq!(users(room.admit(1, 100, NOW + 1_500).unwrap()), ["d"]);
    assert_eq!(room.position(b"b", NOW + 1_500), None);
    assert_eq!(room.next_deadline_ms(), Some(NOW + 1_600), "d's pass");
    // Turning the timeout off keeps everyone.
    room.set_idle_timeout_ms(0).unwrap();
    assert_eq!(room.position(b"c", NOW + 1_000_000), Some(1));
    room.check_invariants();
}

#[test]
fn sweeps_are_bounded() {
    let mut room = WaitingRoom::new();
    room.set_idle_timeout_ms(10).unwrap();
    for user in 0..10u32 {
        room.join(user.to_string().as_bytes(), NOW).unwrap();
    }
    assert_eq!(room.expire_idle(NOW + 10, 3).len(), 3);
    assert_eq!(room.waiting_count(), 7);
    room.set_idle_timeout_ms(0).unwrap();
    room.admit(7, 5, NOW + 10).unwrap();
    assert_eq!(room.expire_passes(NOW + 14, 100).len(), 0);
    assert_eq!(room.expire_passes(NOW + 15, 4).len(), 4);
    assert_eq!(room.expire_passes(NOW + 15, 4).len(), 3);
    assert!(room.is_empty());
    assert_eq!(room.next_deadline_ms(), None);
    room.check_invariants();
}

#[test]
fn the_line_compacts_and_ranks_survive() {
    let mut room = WaitingRoom::new();
    for user in 0..5_000u32 {
        room.join(user.to_string().as_bytes(), NOW).unwrap();
    }
    for user in (0..5_000u32).filter(|user| user % 4 != 0) {
        assert!(room.leave(user.to_string().as_bytes(), NOW));
    }
    room.admit(200, 1_000, NOW).unwrap();
    room.check_invariants();
    assert!(
        room.line.len() < 2_000,
        "compacted: {} slots",
        room.line.len()
    );
    assert_eq!(room.position(b"800", NOW), Some(1));
    assert_eq!(room.position(b"4996", NOW), Some(1_050));
}

#[derive(Clone, Debug)]
enum Operation {
    Join(usize),
    Position(usize),
    Leave(usize),
    HasPass(usize),
    Admit(u64, u64),
    Advance(u64),
    ExpireIdle(usize),
    ExpirePasses,
    SetIdle(u64),
}

fn operations(users: usize) -> impl Strategy<Value = Vec<Operation>> {
    let operation = prop_oneof![
        6 => (0..users).prop_map(Operation::Join),
        4 => (0..users).prop_map(Operation::Position),
        2 => (0..users).prop_map(Operation::Leave),
        1 => (0..users).prop_map(Operation::HasPass),
        2 => (1..4u64, 1..200u64).prop_map(|(count, ttl)| Operation::Admit(count, ttl)),
        3 => (0..80u64).prop_map(Operation::Advance),
        1 => (1..4usize).prop_map(Operation::ExpireIdle),
        1 => Just(Operation::ExpirePasses),
        1 => prop_oneof![Just(0u64), Just(50), Just(300)].prop_map(Operation::SetIdle),
    ];
    proptest::collection::vec(operation, 0..300)
}

/// A FIFO of (user, last seen, join instance) and a map of passes: the waiting room, slowly.
#[derive(Default)]
struct Model {
    line: Vec<(usize, u64, u64)>,
    passes: HashMap<usize, u64>,
    idle_timeout_ms: u64,
    instance_next: u64,
}

impl Model {
    fn is_idle(&self, last_seen_ms: u64, now_ms: u64) -> bool {
        self.idle_timeout_ms > 0 && now_ms >= last_seen_ms + self.idle_timeout_ms
    }

    fn find(&self, user: usize) -> Option<usize> {
        self.line.iter().position(|&(waiter, _, _)| waiter == user)
    }

    fn enqueue(&mut self, user: usize, now_ms: u64) -> u64 {
        self.line.push((user, now_ms, self.instance_next));
        self.instance_next += 1;
        self.line.len() as u64
    }
}

fn run_against_model(operations: &[Operation]) -> WaitingRoom {
    let name = |user: usize| format!("user{user}").into_bytes();
    let mut room = WaitingRoom::new();
    let mut model = Model::default();
    let mut now = NOW;
    // Join instance -> the last position seen: a waiting user's position never increases.
    let mut last_positions: HashMap<u64, u64> = HashMap::new();
    for operation in operations {
        match *operation {
            Operation::Join(user) => {
                let expected = if let Some(index) = model.find(user) {
                    if model.is_idle(model.line[index].1, now) {
                        model.line.remove(index);
                        model.enqueue(user, now)
                    } else {
                        model.line[index].1 = now;
                        index as u64 + 1
                    }
                } else if model
                    .passes
                    .get(&user)
                    .is_some_and(|&expires| now < expires)
                {
                    0
                } else {
                    model.passes.remove(&user);
                    model.enqueue(user, now)
                };
                assert_eq!(room.join(&name(user), now), Ok(expected));
            }
            Operation::Position(user) => {
                let expected = if let Some(index) = model.find(user) {
                    if model.is_idle(model.line[index].1, now) {
                        model.line.remove(index);
                        None
                    } else {
                        model.line[index].1 = now;
                        Some(index as u64 + 1)
                    }
                } else if model
                    .passes
                    .get(&user)
                    .is_some_and(|&expires| now < expires)
                {
                    Some(0)
                } else {
                    model.passes.remove(&user);
                    None
                };
                assert_eq!(room.position(&name(user), now), expected);
            }
            Operation::Leave(user) => {
                let expected = if let Some(index) = model.find(user) {
                    let (_, last_seen, _) = model.line.remove(index);
                    !model.is_idle(last_seen, now)
                } else {
                    model
                        .passes
                        .remove(&user)
                        .is_some_and(|expires| now < expires)
                };
                assert_eq!(room.leave(&name(user), now), expected);
            }
            Operation::HasPass(user) => {
                let expected = model
                    .passes
                    .get(&user)
                    .is_some_and(|&expires| now < expires);
                assert_eq!(room.has_pass(&name(user), now), expected);
            }
            Operation::Admit(count, ttl) => {
                let mut expected = Vec::new();
                while (expected.len() as u64) < count && !model.line.is_empty() {
                    let (user, last_seen, _) = model.line.remove(0);
                    if !model.is_idle(last_seen, now) {
                        model.passes.insert(user, now + ttl);
                        expected.push(name(user));
                    }
                }
                assert_eq!(room.admit(count, ttl, now), Ok(expected));
            }
            Operation::Advance(milliseconds) => now += milliseconds,
            Operation::ExpireIdle(count_max) => {
                let dropped = room.expire_idle(now, count_max);
                let idle: Vec<(usize, u64)> = model
                    .line
                    .iter()
                    .filter(|&&(_, last_seen, _)| model.is_idle(last_seen, now))
                    .map(|&(user, last_seen, _)| (user, last_seen))
                    .collect();
                assert_eq!(dropped.len(), idle.len().min(count_max));
                let dropped_seen: Vec<u64> = dropped
                    .iter()
                    .map(|user| {
                        idle.iter()
                            .find(|(u, _)| name(*u) == *user)
                            .expect("only idlers are dropped")
                            .1
                    })
                    .collect();
                let kept_seen = idle
                    .iter()
                    .filter(|(u, _)| !dropped.contains(&name(*u)))
                    .map(|&(_, seen)| seen);
                let newest_dropped = dropped_seen.iter().copied().max().unwrap_or(0);
                assert!(
                    kept_seen.into_iter().all(|seen| seen >= newest_dropped),
                    "longest idle first"
                );
                model
                    .line
                    .retain(|&(user, _, _)| !dropped.contains(&name(user)));
            }
            Operation::ExpirePasses => {
                let expired = model
                    .passes
                    .values()
                    .filter(|&&expires| now >= expires)
                    .count();
                assert_eq!(room.expire_passes(now, usize::MAX).len(), expired);
                model.passes.retain(|_, &mut expires| now < expires);
            }
            Operation::SetIdle(milliseconds) => {
                room.set_idle_timeout_ms(milliseconds).unwrap();
                model.idle_timeout_ms = milliseconds;
            }
        }
        assert_eq!(room.waiting_count(), model.line.len() as u64);
        for (index, &(user, _, instance)) in model.line.iter().enumerate() {
            let position = index as u64 + 1;
            assert_eq!(room.rank_of(&name(user)), Some(position));
            if let Some(&last) = last_positions.get(&instance) {
                assert!(
                    position <= last,
                    "a waiting user's position never increases"
                );
            }
            last_positions.insert(instance, position);
        }
        let idle_deadline = (model.idle_timeout_ms > 0)
            .then(|| {
                model
                    .line
                    .iter()
                    .map(|&(_, seen, _)| seen + model.idle_timeout_ms)
                    .min()
            })
            .flatten();
        let pass_deadline = model.passes.values().copied().min();
        let expected = [idle_deadline, pass_deadline].into_iter().flatten().min();
        assert_eq!(room.next_deadline_ms(), expected);
    }
    room.check_invariants();
    room
}

proptest! {
    #[test]
    fn agrees_with_a_fifo_and_positions_never_increase(operations in operations(12)) {
        run_against_model(&operations);
    }

    #[test]
    fn the_same_operations_give_the_same_state(operations in operations(30)) {
        prop_assert_eq!(run_against_model(&operations), run_against_model(&operations));
    }
}

#[test]
fn snapshot_encoding_round_trips_waiters_passes_and_vacancies() {
    let mut room = WaitingRoom::new();
    room.set_idle_timeout_ms(1_000).unwrap();
    for user in 0..50 {
        room.join(format!("u{user}").as_bytes(), user).unwrap();
    }
    room.admit(10, 500, 100).unwrap();
    room.leave(b"u20", 100);
    room.leave(b"u3", 100);
    let mut out = Vec::new();
    room.encode(&mut out);
    let mut reader = Reader::new(&out);
    let mut decoded = WaitingRoom::decode(&mut reader).expect("decodes");
    reader.finish().expect("every byte read");
    decoded.check_invariants();
    assert_eq!(decoded, room);
    assert!(WaitingRoom::decode(&mut Reader::new(&out[..out.len() - 1])).is_err());
    assert_eq!(decoded.position(b"u30", 200), room.position(b"u30", 200));
    for copy in [&mut room, &mut decoded] {
        copy.join(b"new", 200).unwrap();
        copy.expire_idle(1_040, 100);
    }
    assert_eq!(decoded, room);
}
