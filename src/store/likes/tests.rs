use super::*;
use crate::store::encoding::Reader;
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

impl Likes {
    /// A post whose sequence numbers start at `sequence`, to reach exhaustion quickly.
    fn with_sequence_start(sequence: u32) -> Self {
        Likes {
            sequence_base: sequence,
            sequence_next: sequence,
            ..Likes::new()
        }
    }
}

fn added(count: u64) -> Result<LikeChange, String> {
    Ok(LikeChange {
        changed: true,
        count,
    })
}

fn page(likes: &Likes, cursor: u64, count: u64) -> (u64, Vec<String>) {
    let page = likes.list(cursor, count).unwrap();
    (
        page.next_cursor,
        page.users
            .into_iter()
            .map(|user| String::from_utf8(user).unwrap())
            .collect(),
    )
}

/// The whole walk, page by page.
fn walk(likes: &Likes, count: u64) -> Vec<String> {
    let mut users = Vec::new();
    let mut cursor = 0;
    loop {
        let (next, mut listed) = page(likes, cursor, count);
        users.append(&mut listed);
        if next == 0 {
            return users;
        }
        cursor = next;
    }
}

#[test]
fn a_double_click_counts_once() {
    let mut likes = Likes::new();
    assert_eq!(likes.add(b"42"), added(1));
    assert_eq!(
        likes.add(b"42"),
        Ok(LikeChange {
            changed: false,
            count: 1
        })
    );
    assert_eq!(likes.add(b"alice"), added(2));
    assert!(likes.contains(b"42") && likes.contains(b"alice"));
    assert!(!likes.contains(b"43"));
    likes.check_invariants();
}

#[test]
fn remove_reports_whether_it_removed() {
    let mut likes = Likes::new();
    likes.add(b"1").unwrap();
    likes.add(b"bob").unwrap();
    assert_eq!(
        likes.remove(b"1"),
        LikeChange {
            changed: true,
            count: 1
        }
    );
    assert_eq!(
        likes.remove(b"1"),
        LikeChange {
            changed: false,
            count: 1
        }
    );
    assert_eq!(
        likes.remove(b"bob"),
        LikeChange {
            changed: true,
            count: 0
        }
    );
    assert!(likes.is_empty());
    assert!(
        likes.side_tables.is_none(),
        "the text table goes when its last id does"
    );
    likes.check_invariants();
}

#[test]
fn non_canonical_integers_are_text_and_round_trip() {
    let mut likes = Likes::new();
    let ids: [&[u8]; 9] = [
        b"7",
        b"007",
        b"+7",
        b"-1",
        b"0",
        b"00",
        b"2147483647",
        b"2147483648",
        b"",
    ];
    for id in ids {
        likes.add(id).unwrap();
    }
    assert_eq!(likes.count(), 9);
    assert_eq!(UserKey::parse(b"7"), UserKey::Integer(7));
    assert_eq!(UserKey::parse(b"0"), UserKey::Integer(0));
    assert_eq!(
        UserKey::parse(b"2147483647"),
        UserKey::Integer(2_147_483_647)
    );
    assert_eq!(UserKey::parse(b"2147483648"), UserKey::Text(b"2147483648"));
    assert_eq!(
        UserKey::parse(b"99999999999"),
        UserKey::Text(b"99999999999")
    );
    assert_eq!(UserKey::parse(b"007"), UserKey::Text(b"007"));
    let listed = walk(&likes, 4);
    let expected: Vec<String> = ids
        .iter()
        .rev()
        .map(|id| String::from_utf8(id.to_vec()).unwrap())
        .collect();
    assert_eq!(listed, expected);
    assert!(!likes.contains(b"07"));
    likes.check_invariants();
}

#[test]
fn user_ids_are_bounded() {
    let mut likes = Likes::new();
    let long = vec![b'x'; USER_ID_BYTES_MAX + 1];
    assert!(likes.add(&long).unwrap_err().starts_with("ERR"));
    assert!(likes.add(&long[..USER_ID_BYTES_MAX]).is_ok());
    assert!(!likes.contains(&long));
    assert_eq!(
        likes.remove(&long),
        LikeChange {
            changed: false,
            count: 1
        }
    );
}

#[test]
fn list_pages_newest_first_and_ends_with_cursor_zero() {
    let mut likes = Likes::new();
    for user in 1..=5u32 {
        likes.add(user.to_string().as_bytes()).unwrap();
    }
    let (cursor, users) = page(&likes, 0, 2);
    assert_eq!(users, ["5", "4"]);
    assert_ne!(cursor, 0);
    let (cursor, users) = page(&likes, cursor, 2);
    assert_eq!(users, ["3", "2"]);
    let (cursor, users) = page(&likes, cursor, 2);
    assert_eq!((cursor, users), (0, vec!["1".to_string()]));
    // Exactly a page left: the page that takes it says 0 at once.
    assert_eq!(page(&likes, 0, 5).0, 0);
    assert_eq!(page(&Likes::new(), 0, 10), (0, vec![]));
    assert!(likes.list(0, 0).is_err());
    assert!(likes.list(0, LIKES_LIST_COUNT_MAX + 1).is_err());
    // A cursor from the future (or from a deleted and recreated post) starts at the top.
    assert_eq!(page(&likes, 1_000_000, 1).1, ["5"]);
}

#[test]
fn a_walk_is_stable_under_adds_and_removes() {
    let mut likes = Likes::new();
    for user in 1..=6u32 {
        likes.add(user.to_string().as_bytes()).unwrap();
    }
    let (cursor, users) = page(&likes, 0, 2);
    assert_eq!(users, ["6", "5"]);
    likes.add(b"7").unwrap(); // added after the walk began: not listed by it
    likes.remove(b"4"); // removed before its turn: not listed
    likes.remove(b"6"); // already listed
    likes.remove(b"3");
    likes.add(b"3").unwrap(); // re-liked: a new sequence number above the cursor
    let (cursor, users) = page(&likes, cursor, 2);
    assert_eq!(users, ["2", "1"]);
    assert_eq!(cursor, 0);
}

#[test]
fn tombstones_are_compacted_and_sequences_kept() {
    let mut likes = Likes::new();
    for user in 0..1_000u32 {
        likes.add(user.to_string().as_bytes()).unwrap();
    }
    let (cursor, _) = page(&likes, 0, 10);
    for user in (0..1_000u32).filter(|user| user % 3 != 0) {
        likes.remove(user.to_string().as_bytes());
    }
    assert!(likes.tombstone_count < 200, "compaction ran");
    likes.check_invariants();
    let rest = walk_from(&likes, cursor, 7);
    let expected: Vec<String> = (0..990u32)
        .rev()
        .filter(|user| user % 3 == 0)
        .map(|u| u.to_string())
        .collect();
    assert_eq!(rest, expected);
    // Drain everything but the newest: leading empty blocks go.
    for user in 0..999u32 {
        likes.remove(user.to_string().as_bytes());
    }
    likes.check_invariants();
    assert!(likes.log_blocks.len() <= 2);
    assert_eq!(walk(&likes, 3), ["999"]);
}

fn walk_from(likes: &Likes, mut cursor: u64, count: u64) -> Vec<String> {
    let mut users = Vec::new();
    while cursor != 0 {
        let (next, mut listed) = page(likes, cursor, count);
        users.append(&mut listed);
        cursor = next;
    }
    users
}

#[test]
fn index_chunks_split_and_merge() {
    let mut likes = Likes::new();
    let users: Vec<u32> = (0..5_000u32)
        .map(|i| i.wrapping_mul(2_654_435_761) % 1_000_000)
        .collect();
    for user in &users {
        likes.add(user.to_string().as_bytes()).unwrap();
    }
    assert!(likes.index_chunks.len() > 5_000 / LIKES_INDEX_CHUNK_ENTRIES_MAX);
    likes.check_invariants();
    for user in users.iter().skip(100) {
        assert!(likes.remove(user.to_string().as_bytes()).changed);
    }
    likes.check_invariants();
    assert!(
        likes.index_chunks.len() <= 2,
        "{} chunks for 100 likes",
        likes.index_chunks.len()
    );
    assert!(users
        .iter()
        .take(100)
        .all(|user| likes.contains(user.to_string().as_bytes())));
}

#[test]
fn index_samples_follow_inserts_removals_splits_and_merges() {
    let mut likes = Likes::new();
    let user = |i: u32| {
        let scrambled = i.wrapping_mul(2_654_435_761) % 100_000;
        if i.is_multiple_of(3) {
            format!("text-{scrambled}").into_bytes()
        } else {
            scrambled.to_string().into_bytes()
        }
    };
    for i in 0..2_000u32 {
        assert!(likes.add(&user(i)).unwrap().changed);
        if i % 7 == 0 {
            likes.check_invariants();
        }
        assert_eq!(
            likes.samples().is_some(),
            i + 1 >= LIKES_INDEX_SAMPLED_LIKES_MIN
        );
    }
    assert!(likes.index_chunks.len() > 2);
    // Removing from the low end moves every sample of the first chunk, and removes sampled entries.
    for i in (0..2_000u32).rev() {
        assert!(likes.remove(&user(i)).changed);
        if i % 7 == 0 {
            likes.check_invariants();
        }
        assert!((0..i).step_by(101).all(|kept| likes.contains(&user(kept))));
    }
    assert!(likes.samples().is_none() && likes.is_empty());
    // Below the threshold, then back above it: hysteresis keeps the samples until half of it.
    for i in 0..LIKES_INDEX_SAMPLED_LIKES_MIN {
        likes.add(&user(i)).unwrap();
    }
    for i in 0..=LIKES_INDEX_SAMPLED_LIKES_MIN / 2 {
        assert!(likes.samples().is_some());
        likes.remove(&user(i));
        likes.check_invariants();
    }
    assert!(likes.samples().is_none());
}

#[test]
fn sequence_exhaustion_renumbers() {
    let mut likes = Likes::with_sequence_start(SEQUENCE_EXHAUSTED - 100);
    for user in 0..100u32 {
        likes.add(user.to_string().as_bytes()).unwrap();
    }
    likes.add(b"text").unwrap();
    likes.remove(b"50");
    likes.check_invariants();
    assert_eq!(
        likes.sequence_next,
        SEQUENCE_FIRST + 101,
        "100 renumbered, then \"text\""
    );
    let expected: Vec<String> = std::iter::once("text".to_string())
        .chain(
            (0..100u32)
                .rev()
                .filter(|u| *u != 50)
                .map(|u| u.to_string()),
        )
        .collect();
    assert_eq!(walk(&likes, 9), expected);
    assert!(likes.contains(b"0") && likes.contains(b"text") && !likes.contains(b"50"));
}

#[derive(Clone, Debug)]
enum Operation {
    Add(usize),
    Remove(usize),
    ListPage(u64),
}

fn operations(users: usize, length: usize) -> impl Strategy<Value = Vec<Operation>> {
    let operation = prop_oneof![
        4 => (0..users).prop_map(Operation::Add),
        2 => (0..users).prop_map(Operation::Remove),
        1 => (1..6u64).prop_map(Operation::ListPage),
    ];
    proptest::collection::vec(operation, 0..length)
}

fn user_pool(integers: usize) -> Vec<Vec<u8>> {
    let texts: [&[u8]; 9] = [
        b"007",
        b"+7",
        b"-1",
        b"abc",
        b"",
        b"2147483647",
        b"2147483648",
        b"4294967296",
        b"x",
    ];
    (0..integers)
        .map(|i| i.to_string().into_bytes())
        .chain(texts.iter().map(|t| t.to_vec()))
        .collect()
}

/// A walk in progress, checked against the model.
struct Walk {
    cursor: u64,
    /// The stamp of the last like listed: the next page lists below it.
    boundary_stamp: u64,
    present_at_start: HashSet<Vec<u8>>,
    removed_during: HashSet<Vec<u8>>,
    listed: Vec<Vec<u8>>,
}

/// Runs `operations` against `Likes` and a model (user -> stamp of its current like), checking every
/// answer, the walk guarantees and the invariants; returns the final state.
fn run_against_model(pool: &[Vec<u8>], operations: &[Operation]) -> Likes {
    let mut likes = Likes::new();
    let mut model: HashMap<Vec<u8>, u64> = HashMap::new();
    let mut stamp_next = 0u64;
    let mut walk: Option<Walk> = None;
    for (index, operation) in operations.iter().enumerate() {
        match *operation {
            Operation::Add(user) => {
                let user = &pool[user];
                let fresh = !model.contains_key(user);
                if fresh {
                    model.insert(user.clone(), stamp_next);
                    stamp_next += 1;
                }
                assert_eq!(
                    likes.add(user),
                    Ok(LikeChange {
                        changed: fresh,
                        count: model.len() as u64
                    })
                );
            }
            Operation::Remove(user) => {
                let user = &pool[user];
                let present = model.remove(user).is_some();
                if present {
                    if let Some(walk) = walk.as_mut() {
                        walk.removed_during.insert(user.clone());
                    }
                }
                assert_eq!(
                    likes.remove(user),
                    LikeChange {
                        changed: present,
                        count: model.len() as u64
                    }
                );
            }
            Operation::ListPage(count) => {
                let state = walk.get_or_insert_with(|| Walk {
                    cursor: 0,
                    boundary_stamp: u64::MAX,
                    present_at_start: model.keys().cloned().collect(),
                    removed_during: HashSet::new(),
                    listed: Vec::new(),
                });
                let mut below: Vec<(u64, &Vec<u8>)> = model
                    .iter()
                    .filter(|(_, &stamp)| stamp < state.boundary_stamp)
                    .map(|(user, &stamp)| (stamp, user))
                    .collect();
                below.sort_unstable_by_key(|&(stamp, _)| std::cmp::Reverse(stamp));
                let expected: Vec<Vec<u8>> = below
                    .iter()
                    .take(count as usize)
                    .map(|(_, u)| (*u).clone())
                    .collect();
                let got = likes.list(state.cursor, count).unwrap();
                assert_eq!(got.users, expected);
                assert_eq!(got.next_cursor == 0, below.len() <= count as usize);
                if let Some(last) = expected.last() {
                    state.boundary_stamp = model[last];
                }
                state.listed.extend(expected);
                state.cursor = got.next_cursor;
                if got.next_cursor == 0 {
                    let listed: HashSet<&Vec<u8>> = state.listed.iter().collect();
                    assert_eq!(listed.len(), state.listed.len(), "no like listed twice");
                    for user in state.present_at_start.difference(&state.removed_during) {
                        assert!(listed.contains(user), "{user:?} was present all along");
                    }
                    walk = None;
                }
            }
        }
        assert_eq!(likes.count(), model.len() as u64);
        // The samples change with every insert and removal: check them (and the rest) often.
        if (index + 1) % 97 == 0 {
            likes.check_invariants();
        }
        if pool.len() <= 64 {
            for user in pool {
                assert_eq!(likes.contains(user), model.contains_key(user));
            }
        }
    }
    for user in pool {
        assert_eq!(likes.contains(user), model.contains_key(user));
    }
    likes.check_invariants();
    likes
}

proptest! {
    // Debug builds are slow: fewer, longer cases for the large pools.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn agrees_with_a_set_and_walks_stably(operations in operations(24, 400)) {
        run_against_model(&user_pool(24), &operations);
    }

    #[test]
    fn agrees_with_a_set_when_chunks_split_and_logs_compact(operations in operations(1_500, 2_500)) {
        run_against_model(&user_pool(1_500), &operations);
    }

    #[test]
    fn agrees_with_a_set_when_sampled_chunks_hold_text_ids(operations in operations(1_500, 2_500)) {
        // Mostly text ids, so index samples name text slots that are freed and reused.
        let pool: Vec<Vec<u8>> = (0..1_500)
            .map(|i| if i % 4 == 0 { i.to_string() } else { format!("user-{i}") }.into_bytes())
            .collect();
        run_against_model(&pool, &operations);
    }

    #[test]
    fn the_same_operations_give_the_same_state(operations in operations(300, 600)) {
        let pool = user_pool(300);
        prop_assert_eq!(run_against_model(&pool, &operations), run_against_model(&pool, &operations));
    }
}

/// Likes over posts with Zipf-distributed popularity and uniform integer users, as in the likes load
/// (20,000 posts, users up to 50 million); returns bytes per like by `approximate_memory_bytes`.
pub(crate) fn zipf_bytes_per_like(posts: usize, likes_total: usize) -> f64 {
    let mut random = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random
    };
    let weights: Vec<f64> = (1..=posts).map(|rank| 1.0 / rank as f64).collect();
    let total: f64 = weights.iter().sum();
    let mut cumulative = Vec::with_capacity(posts);
    let mut sum = 0.0;
    for weight in &weights {
        sum += weight / total;
        cumulative.push(sum);
    }
    let mut all: Vec<Likes> = (0..posts).map(|_| Likes::new()).collect();
    let mut stored = 0;
    while stored < likes_total {
        let uniform = (next() >> 11) as f64 / (1u64 << 53) as f64;
        let post = cumulative.partition_point(|&c| c < uniform).min(posts - 1);
        let user = 1 + next() % 50_000_000;
        if all[post].add(user.to_string().as_bytes()).unwrap().changed {
            stored += 1;
        }
    }
    let bytes: usize = all.iter().map(Likes::approximate_memory_bytes).sum();
    bytes as f64 / stored as f64
}

#[test]
fn a_post_without_text_ids_or_samples_stays_small() {
    // Every post pays for this struct, and most posts hold a few likes: the index samples share the
    // text table's box instead of adding a pointer, and a post's first index chunk, log page and log
    // block sit in the struct instead of three allocations of their own. The keyspace allocates it
    // behind an `Arc` (two 8-byte counts): 120 + 16 bytes is one 144-byte glibc chunk, as 112 + 16 is.
    assert!(std::mem::size_of::<Likes>() <= 120);
}

#[test]
fn a_small_post_makes_few_allocations() {
    let mut likes = Likes::new();
    for user in [5u32, 49_999_999, 12, 300_000] {
        likes.add(user.to_string().as_bytes()).unwrap();
    }
    // One index chunk, one log page, one log block: all inline, so the post's only heap memory is
    // their packed words.
    assert_eq!(likes.memory_parts()[2].1, 0, "index chunk headers");
    assert_eq!(likes.memory_parts()[4].1, 0, "order log blocks");
    assert!(
        likes.approximate_memory_bytes() <= std::mem::size_of::<Likes>() + 32,
        "{}",
        likes.approximate_memory_bytes()
    );
}

#[test]
fn memory_per_like_is_small() {
    let bytes_per_like = zipf_bytes_per_like(2_000, 200_000);
    println!("{bytes_per_like:.2} bytes per like");
    assert!(bytes_per_like < 8.0, "{bytes_per_like:.2} bytes per like");
}

#[test]
fn snapshot_encoding_round_trips_integers_texts_and_tombstones() {
    let mut likes = Likes::new();
    for user in 0..300u32 {
        likes.add(user.to_string().as_bytes()).unwrap();
        likes.add(format!("user-{user}").as_bytes()).unwrap();
    }
    for user in (0..300u32).step_by(3) {
        likes.remove(user.to_string().as_bytes());
        likes.remove(format!("user-{user}").as_bytes());
    }
    let page = likes.list(0, 7).unwrap();
    let mut out = Vec::new();
    likes.encode(&mut out);
    let mut reader = Reader::new(&out);
    let decoded = Likes::decode(&mut reader).expect("decodes");
    reader.finish().expect("every byte read");
    decoded.check_invariants();
    assert_eq!(decoded, likes);
    assert_eq!(
        decoded.list(page.next_cursor, 50).unwrap(),
        likes.list(page.next_cursor, 50).unwrap()
    );
    assert!(Likes::decode(&mut Reader::new(&out[..out.len() - 1])).is_err());
    let empty = Likes::new();
    let mut out = Vec::new();
    empty.encode(&mut out);
    assert_eq!(Likes::decode(&mut Reader::new(&out)).unwrap(), empty);
}

#[test]
fn a_decoded_post_whose_parts_do_not_fit_together_is_refused_not_a_panic() {
    let mut likes = Likes::new();
    for user in 0..2_000u32 {
        likes.add(user.to_string().as_bytes()).unwrap();
    }
    likes.add(b"text-user").unwrap();
    likes.remove(b"7");
    type Damage = dyn Fn(&mut Likes);
    let decode_after = |damage: &Damage| {
        let mut damaged = likes.clone();
        damage(&mut damaged);
        let mut out = Vec::new();
        damaged.encode(&mut out);
        Likes::decode(&mut Reader::new(&out))
    };
    assert!(decode_after(&|_| {}).is_ok(), "undamaged, it loads");
    let refusals: [(&str, &Damage); 5] = [
        ("an indexed like without a log entry", &|likes| {
            likes.index_chunks[0].set(0, likes.sequence_next - 1 + 1_000)
        }),
        ("the index is not sorted by user", &|likes| {
            let (first, second) = (likes.index_chunks[1].get(0), likes.index_chunks[1].get(1));
            likes.index_chunks[1].set(0, second);
            likes.index_chunks[1].set(1, first);
        }),
        ("an indexed like without a user", &|likes| {
            let last = likes.log_entries.len() - 1;
            likes.log_entries.set(last, TEXT_SLOT_FLAG | 77);
        }),
        ("tombstone count", &|likes| {
            likes.log_entries.set(5, TOMBSTONE_SLOT)
        }),
        ("log block offsets", &|likes| {
            likes.log_blocks[3].entries_before += 1
        }),
    ];
    for (expected, damage) in refusals {
        let error = decode_after(damage).expect_err(expected);
        assert!(error.contains(expected), "{error} / {expected}");
    }
}
