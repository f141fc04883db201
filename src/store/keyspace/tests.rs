use super::*;
use crate::limits::SCAN_CURSOR_SHARD_SHIFT;
use crate::store::SetValue;

fn string(value: &str) -> Value {
    Value::String(SmallBytes::from(value))
}

#[test]
fn overwrite_replaces_any_value_and_counts_an_expired_one() {
    let mut keyspace = Keyspace::new();
    keyspace.insert_with_expiry(b"k", string("old"), Some(100));
    keyspace.overwrite(b"k", string("live"), 50);
    assert_eq!(keyspace.expired_keys_total, 0);
    keyspace.insert_with_expiry(b"k", string("old"), Some(100));
    keyspace.overwrite(b"k", string("new"), 200);
    assert_eq!(keyspace.expired_keys_total, 1);
    let entry = keyspace.get(b"k", 300).expect("present");
    assert!(matches!(&entry.value, Value::String(bytes) if bytes[..] == *b"new"));
    assert_eq!(entry.expires_at_ms, None);
    assert_eq!(keyspace.expiring_count(), 0);
    keyspace.overwrite(b"fresh", string("v"), 0);
    assert_eq!(keyspace.len(), 2);
}

#[test]
fn expired_keys_are_absent_and_actively_collected_in_bounded_steps() {
    let mut keyspace = Keyspace::new();
    for index in 0..10 {
        keyspace.insert_with_expiry(
            format!("k{index}").as_bytes(),
            string("v"),
            Some(100 + index),
        );
    }
    keyspace.insert(b"forever", string("v"));
    assert!(keyspace.contains(b"k0", 99));
    assert!(!keyspace.contains(b"k0", 100));
    assert_eq!(keyspace.len(), 10);
    let expired = keyspace.expire_due(1_000, 4);
    assert_eq!(expired.len(), 4);
    assert_eq!(keyspace.len(), 6);
    assert_eq!(keyspace.expire_due(1_000, 100).len(), 5);
    assert_eq!(keyspace.len(), 1);
    assert_eq!(keyspace.next_expiry_ms(), None);
}

#[test]
fn scan_returns_every_key_present_throughout_despite_removals_and_inserts() {
    let mut keyspace = Keyspace::new();
    for index in 0..1000 {
        keyspace.insert(format!("k{index}").as_bytes(), string("v"));
    }
    let mut seen = std::collections::HashSet::new();
    let mut cursor = 0;
    let mut round = 0;
    loop {
        let (next, keys) = keyspace.scan(cursor, 10, 0, |_, _| true);
        seen.extend(keys);
        // Churn between calls: remove some keys never to be seen again and add new ones.
        keyspace.remove(format!("k{}", 999 - round).as_bytes());
        keyspace.insert(format!("new{round}").as_bytes(), string("v"));
        round += 1;
        if next == 0 {
            break;
        }
        cursor = next;
    }
    for index in 0..1000 - round {
        assert!(
            seen.contains(format!("k{index}").as_bytes()),
            "k{index} missed"
        );
    }
}

#[test]
fn keys_on_both_sides_of_the_inline_limit_are_found_expired_and_scanned() {
    let limit = crate::limits::SMALL_BYTES_INLINE_LENGTH_MAX;
    let names: Vec<Vec<u8>> = (0..=limit + 3).map(|length| vec![b'k'; length]).collect();
    let mut keyspace = Keyspace::new();
    for (index, name) in names.iter().enumerate() {
        keyspace.insert_with_expiry(name, string("v"), Some(100 + index as u64));
    }
    for name in &names {
        assert!(keyspace.contains(name, 0), "{} bytes", name.len());
    }
    let (_, mut scanned) = keyspace.scan(0, 1_000, 0, |_, _| true);
    scanned.sort();
    assert_eq!(
        scanned.iter().map(|key| key.to_vec()).collect::<Vec<_>>(),
        names
    );
    // Expiry order is by time; the index holds each key by value, whatever its form.
    let expired = keyspace.expire_due(100 + limit as u64, 1_000);
    assert_eq!(
        expired.iter().map(|key| key.to_vec()).collect::<Vec<_>>(),
        names[..=limit]
    );
    assert_eq!(keyspace.len(), 3);
    assert!(keyspace.remove(&names[limit + 1]).is_some());
    assert!(!keyspace.contains(&names[limit + 1], 0));
    assert_eq!(keyspace.expire_due(u64::MAX, 1_000).len(), 2);
    assert!(keyspace.is_empty());
}

#[test]
fn watch_versions_move_on_touch() {
    let mut keyspace = Keyspace::new();
    let version = keyspace.watch(b"a");
    keyspace.touch(b"b");
    assert_eq!(keyspace.watch_version(b"a"), version);
    keyspace.touch(b"a");
    assert_ne!(keyspace.watch_version(b"a"), version);
    keyspace.unwatch(b"a");
    assert!(!keyspace.has_watchers());
}

#[test]
fn keys_spread_over_shards_and_the_shared_hash_finds_them() {
    let mut keyspace = Keyspace::new();
    for index in 0..20_000 {
        keyspace.insert(format!("k{index}").as_bytes(), string("v"));
    }
    assert_eq!(keyspace.len(), 20_000);
    assert_eq!(keyspace.iter().count(), 20_000);
    let used = keyspace
        .shards
        .iter()
        .filter(|shard| !shard.is_empty())
        .count();
    assert_eq!(used, KEYSPACE_SHARD_COUNT, "20,000 keys reach every shard");
    let largest = keyspace.shards.iter().map(|shard| shard.len()).max();
    assert!(largest < Some(60), "even spread, largest shard {largest:?}");
    for index in 0..20_000 {
        let key = format!("k{index}");
        let place = keyspace.find(key.as_bytes()).expect("present");
        // The shard's own hashing agrees with the hash that picked the shard.
        assert_eq!(
            keyspace.shards[place.shard].get_index_of(key.as_bytes()),
            Some(place.index)
        );
    }
    for index in 0..10_000 {
        assert!(keyspace.remove(format!("k{index}").as_bytes()).is_some());
    }
    assert!(keyspace.remove(b"k0").is_none());
    assert_eq!(keyspace.len(), 10_000);
    keyspace.clear();
    assert_eq!(keyspace.len(), 0);
    assert!(keyspace.is_empty());
}

#[test]
fn scan_crosses_empty_shards_and_ends_with_cursor_zero_only_at_the_end() {
    let mut keyspace = Keyspace::new();
    assert_eq!(keyspace.scan(0, 10, 0, |_, _| true), (0, Vec::new()));
    for key in ["a", "b", "c"] {
        keyspace.insert(key.as_bytes(), string("v"));
    }
    // Empty shards cost no COUNT: three keys come back in one call of COUNT 10.
    let (next, mut keys) = keyspace.scan(0, 10, 0, |_, _| true);
    keys.sort();
    assert_eq!(
        (next, keys),
        (0, vec![Key::from("a"), Key::from("b"), Key::from("c")])
    );
    // COUNT 1: one position per call; the cursor is never 0 before the end.
    let mut cursor = 0;
    let mut seen = Vec::new();
    loop {
        let (next, keys) = keyspace.scan(cursor, 1, 0, |_, _| true);
        seen.extend(keys);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 3);
    // A cursor naming a shard past the last one ends the iteration.
    let past = (KEYSPACE_SHARD_COUNT as u64) << SCAN_CURSOR_SHARD_SHIFT;
    assert_eq!(keyspace.scan(past, 10, 0, |_, _| true), (0, Vec::new()));
}

#[test]
fn scan_returns_every_key_present_throughout_with_churn_across_shards() {
    for (seed, count) in [(1u64, 1usize), (2, 7), (3, 64), (4, 1_000), (5, 30_000)] {
        let mut random = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = |bound: u64| {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            random % bound
        };
        let mut keyspace = Keyspace::new();
        for index in 0..8_000 {
            keyspace.insert(format!("k{index}").as_bytes(), string("v"));
        }
        // Keys 0..4000 stay; 4000..8000 may be removed and re-added; new ones arrive.
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut calls = 0;
        loop {
            let (next_cursor, keys) = keyspace.scan(cursor, count, 0, |_, _| true);
            seen.extend(keys);
            calls += 1;
            // Fewer arrivals than positions examined, so even COUNT 1 reaches the end.
            for _ in 0..next(4) {
                let key = format!("k{}", 4_000 + next(4_000));
                if next(2) == 0 {
                    keyspace.remove(key.as_bytes());
                } else {
                    keyspace.insert(key.as_bytes(), string("v"));
                }
                if next(4) == 0 {
                    keyspace.insert(format!("new{}", next(1_000_000)).as_bytes(), string("v"));
                }
            }
            if next_cursor == 0 {
                break;
            }
            cursor = next_cursor;
        }
        assert!(calls > 1 || count >= 8_000);
        for index in 0..4_000 {
            assert!(
                seen.contains(format!("k{index}").as_bytes()),
                "k{index} missed with COUNT {count}"
            );
        }
    }
}

#[test]
fn shard_loaders_build_in_parts_the_keyspace_one_loader_would() {
    let mut keyspace = Keyspace::new();
    let mut loaders = keyspace.shard_loaders(3, 5_000);
    let shards: usize = loaders.iter().map(ShardLoader::shard_count).sum();
    assert_eq!(shards, KEYSPACE_SHARD_COUNT);
    for index in 0..5_000u64 {
        let key = format!("k{index}");
        let owners: Vec<(usize, u64)> = loaders
            .iter()
            .enumerate()
            .filter_map(|(part, loader)| loader.owns(key.as_bytes()).map(|hash| (part, hash)))
            .collect();
        assert_eq!(owners.len(), 1, "exactly one loader owns {key}");
        let (part, hash) = owners[0];
        let expiry = (index % 7 == 0).then_some(1_000 + index);
        loaders[part]
            .load_entry(key.as_bytes(), hash, string("v"), expiry)
            .expect("new key");
        if index == 0 {
            let again = loaders[part].load_entry(key.as_bytes(), hash, string("v"), None);
            assert!(again.is_err(), "a key twice is refused");
        }
    }
    keyspace.install(loaders);
    assert_eq!(keyspace.len(), 5_000);
    assert_eq!(keyspace.expiring_count(), 715);
    for index in 0..5_000 {
        assert!(keyspace.contains(format!("k{index}").as_bytes(), 0));
    }
    assert_eq!(
        keyspace.expire_due(1_000, 100).len(),
        1,
        "k0 expires at 1000"
    );
    keyspace.insert(b"after", string("v"));
    assert!(keyspace.remove(b"k1").is_some());
    assert_eq!(keyspace.len(), 4_999);
}

/// A set of `count` members.
fn set_of(count: usize) -> Value {
    let members: super::super::SetValue = (0..count)
        .map(|member| bytes::Bytes::from(member.to_string()))
        .collect();
    Value::Set(super::super::Shared::new(members))
}

#[test]
fn a_snapshot_serializes_small_collections_itself_and_hands_over_only_large_ones() {
    let mut keyspace = Keyspace::new();
    keyspace.insert(b"small", set_of(3));
    keyspace.insert(b"large", set_of(10));
    keyspace.set_snapshot_share_elements_min(10);
    keyspace.snapshot_begin();
    while !keyspace.snapshot_step(usize::MAX, || true) {}
    let shared = keyspace.snapshot_take_shared().walked;
    let shared_keys: Vec<&[u8]> = shared.iter().map(|entry| &entry.key[..]).collect();
    assert_eq!(
        shared_keys,
        vec![&b"large"[..]],
        "only the large set by handle"
    );
    let bytes = keyspace.snapshot_take_bytes(Vec::new());
    let mut reader = super::super::encoding::Reader::new(&bytes);
    let entry = super::super::encoding::read_entry(&mut reader).expect("one entry");
    assert_eq!(entry.key, b"small", "the small set serialized on the loop");
    assert_eq!(reader.remaining(), 0, "and nothing else");
    // Not shared, so a change right away copies nothing: the value is the keyspace's alone.
    let Some(Entry {
        value: Value::Set(set),
        ..
    }) = keyspace.get_mut(b"small", 0)
    else {
        panic!("a set");
    };
    assert!(!set.is_shared());
    assert_eq!(keyspace.snapshot_end(), 2);
}

#[test]
fn a_change_to_a_large_collection_waits_while_the_snapshot_holds_it_and_never_copies_it() {
    let mut keyspace = Keyspace::new();
    keyspace.insert(b"small", set_of(3));
    keyspace.insert(b"large", set_of(10));
    keyspace.insert(b"walked", set_of(10));
    keyspace.set_snapshot_share_elements_min(10);
    assert!(!keyspace.snapshot_holds(b"large"), "no snapshot, no wait");
    keyspace.snapshot_begin();
    assert!(
        !keyspace.snapshot_holds(b"small"),
        "small: the hook serializes it"
    );
    assert!(!keyspace.snapshot_holds(b"absent"));
    // Pending and large: handed over now, in constant time, and the change must wait.
    assert!(keyspace.snapshot_holds(b"large"));
    assert!(
        keyspace.snapshot_holds(b"large"),
        "still held: the handle is not taken"
    );
    let handed = keyspace.snapshot_take_shared();
    assert!(handed.walked.is_empty());
    assert_eq!(handed.wanted.len(), 1, "wanted: a command waits for it");
    assert_eq!(&handed.wanted[0].key[..], b"large");
    while !keyspace.snapshot_step(usize::MAX, || true) {}
    let HandedOver { wanted, walked } = keyspace.snapshot_take_shared();
    assert!(wanted.is_empty());
    let walked_keys: Vec<&[u8]> = walked.iter().map(|entry| &entry.key[..]).collect();
    assert_eq!(
        walked_keys,
        vec![&b"walked"[..]],
        "the walk skips what went first"
    );
    assert!(keyspace.snapshot_holds(b"walked"), "shared by the walk");
    drop(handed);
    assert!(!keyspace.snapshot_holds(b"large"), "the writer let go");
    let Some(Entry {
        value: Value::Set(set),
        ..
    }) = keyspace.get_mut(b"large", 0)
    else {
        panic!("a set");
    };
    assert!(!set.is_shared(), "changing it now copies nothing");
    assert_eq!(keyspace.snapshot_end(), 3, "each entry written once");
    assert!(
        keyspace.snapshot_holds(b"walked"),
        "the writer may hold a value after the walk ended"
    );
    drop(walked);
    assert!(!keyspace.snapshot_holds(b"walked"));
}

#[test]
fn a_snapshot_hands_collections_over_by_handle_unchanged_by_later_commands() {
    let mut keyspace = Keyspace::new();
    for index in 0..100 {
        let set: super::super::SetValue = [bytes::Bytes::from("a")].into_iter().collect();
        keyspace.insert(
            format!("s{index}").as_bytes(),
            Value::Set(super::super::Shared::new(set)),
        );
    }
    keyspace.insert(b"string", string("v"));
    keyspace.set_snapshot_share_elements_min(1);
    keyspace.snapshot_begin();
    while !keyspace.snapshot_step(usize::MAX, || true) {}
    let shared = keyspace.snapshot_take_shared().walked;
    assert_eq!(shared.len(), 100, "every set handed over");
    let bytes = keyspace.snapshot_take_bytes(Vec::new());
    assert_eq!(
        decode_snapshot(&bytes).len(),
        1,
        "only the string serialized on the loop"
    );
    for index in 0..100 {
        let key = format!("s{index}");
        let Some(Entry {
            value: Value::Set(set),
            ..
        }) = keyspace.get_mut(key.as_bytes(), 0)
        else {
            panic!("a set");
        };
        set.insert(bytes::Bytes::from("b"));
    }
    assert_eq!(keyspace.snapshot_end(), 101);
    for entry in &shared {
        let Value::Set(set) = &entry.value else {
            panic!("a set");
        };
        assert_eq!(
            set.len(),
            1,
            "the handed-over value is as it was at the start"
        );
        let mut out = Vec::new();
        entry.encode(&mut out);
        let mut reader = super::super::encoding::Reader::new(&out);
        let raw = super::super::encoding::read_entry(&mut reader).expect("entry");
        assert_eq!(raw.key, &entry.key[..]);
    }
    let Some(Entry {
        value: Value::Set(set),
        ..
    }) = keyspace.get(b"s0", 0)
    else {
        panic!("a set");
    };
    assert_eq!(set.len(), 2, "the live value changed");
}

#[test]
fn a_snapshot_frees_cleared_shards_as_it_walks_them() {
    let mut keyspace = Keyspace::new();
    for index in 0..3_000 {
        keyspace.insert(format!("k{index}").as_bytes(), string("v0"));
    }
    let expected = state(&keyspace);
    keyspace.snapshot_begin();
    let mut written = Vec::new();
    let mut checks = 0;
    assert!(!keyspace.snapshot_step(usize::MAX, || {
        checks += 1;
        checks < 3
    }));
    written.extend(keyspace.snapshot_take_bytes(Vec::new()));
    keyspace.clear();
    keyspace.insert(b"k1", string("after"));
    keyspace.insert(b"fresh", string("after"));
    let frozen_keys = |keyspace: &Keyspace| -> usize {
        let snapshot = keyspace.snapshot.as_ref().expect("running");
        let frozen = snapshot
            .frozen
            .as_ref()
            .expect("cleared during the snapshot");
        frozen.iter().map(|shard| shard.len()).sum()
    };
    let before = frozen_keys(&keyspace);
    let mut checks = 0;
    assert!(!keyspace.snapshot_step(usize::MAX, || {
        checks += 1;
        checks < 10
    }));
    assert!(frozen_keys(&keyspace) < before, "walked shards are freed");
    while !keyspace.snapshot_step(usize::MAX, || true) {}
    written.extend(keyspace.snapshot_take_bytes(Vec::new()));
    assert!(keyspace.snapshot.as_ref().unwrap().frozen.is_none());
    keyspace.snapshot_end();
    assert_eq!(decode_snapshot(&written), expected);
    assert_eq!(keyspace.len(), 2);
}

/// The entries a snapshot wrote: key -> (string value, expiry).
fn decode_snapshot(bytes: &[u8]) -> std::collections::BTreeMap<Vec<u8>, (Vec<u8>, Option<u64>)> {
    let mut reader = super::super::encoding::Reader::new(bytes);
    let mut decoded = std::collections::BTreeMap::new();
    while reader.remaining() > 0 {
        let entry = super::super::encoding::read_entry(&mut reader).expect("entry");
        let (key, expiry) = (entry.key, entry.expires_at_ms);
        let Value::String(value) =
            super::super::encoding::decode_value(entry.tag, entry.value).unwrap()
        else {
            panic!("strings only here");
        };
        assert!(
            decoded
                .insert(key.to_vec(), (value.to_vec(), expiry))
                .is_none(),
            "{key:?} written twice"
        );
    }
    decoded
}

fn state(keyspace: &Keyspace) -> std::collections::BTreeMap<Vec<u8>, (Vec<u8>, Option<u64>)> {
    keyspace
        .iter()
        .map(|(key, entry)| {
            let Value::String(value) = &entry.value else {
                panic!("strings only here");
            };
            (key.to_vec(), (value.to_vec(), entry.expires_at_ms))
        })
        .collect()
}

#[test]
fn a_snapshot_holds_exactly_the_state_at_its_start_whatever_changes_meanwhile() {
    // 200 keys: mostly one per shard. 5,000: several per shard, so removals inside the shard being
    // walked move entries across its cursor. FLUSHALL (`clear`) now and then, and often.
    check_snapshot_under_churn(200, 1..40, 50);
    check_snapshot_under_churn(5_000, 1..6, 50);
    check_snapshot_under_churn(5_000, 6..10, 3);
}

fn check_snapshot_under_churn(key_count: u64, seeds: std::ops::Range<u64>, clear_one_in: u64) {
    for seed in seeds {
        let mut random = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = |bound: u64| {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            random % bound
        };
        let mut keyspace = Keyspace::new();
        for index in 0..key_count {
            keyspace.insert_with_expiry(
                format!("k{index}").as_bytes(),
                string("v0"),
                (index % 5 == 0).then_some(1_000 + index),
            );
        }
        let expected = state(&keyspace);
        keyspace.snapshot_begin();
        let mut written = Vec::new();
        let mut steps = 0;
        loop {
            for _ in 0..next(8) {
                let key = format!("k{}", next(key_count + key_count / 4));
                match next(8) {
                    0 => {
                        keyspace.remove(key.as_bytes());
                    }
                    1 => keyspace.insert(key.as_bytes(), string("new")),
                    2 => {
                        if let Some(entry) = keyspace.get_mut(key.as_bytes(), 0) {
                            entry.value = string("changed");
                        }
                    }
                    3 => {
                        keyspace.set_expiry(key.as_bytes(), Some(5_000));
                    }
                    4 => {
                        keyspace.get_or_insert_with(key.as_bytes(), 0, || string("made"));
                    }
                    5 => {
                        keyspace.expire_due(1_000 + next(200), 3);
                    }
                    6 if next(clear_one_in) == 0 => keyspace.clear(),
                    _ => {
                        keyspace.get(key.as_bytes(), 1_100);
                    }
                }
            }
            let mut checks = 0;
            let done = keyspace.snapshot_step(usize::MAX, || {
                checks += 1;
                checks < 1
            });
            written.extend(keyspace.snapshot_take_bytes(Vec::new()));
            steps += 1;
            if done {
                break;
            }
        }
        let count = keyspace.snapshot_end();
        assert!(steps > 1, "the walk took several steps");
        let decoded = decode_snapshot(&written);
        assert_eq!(decoded.len() as u64, count);
        assert_eq!(decoded, expected, "seed {seed}, {key_count} keys");
    }
}

fn stored_set<'a>(key: &[u8], keyspace: &'a mut Keyspace) -> &'a SetValue {
    match &keyspace.get(key, 0).expect("present").value {
        Value::Set(set) => set,
        other => panic!("not a set: {other:?}"),
    }
}

/// Adds `members` to the set at `key` one change at a time, as SADDs would.
fn add_members(keyspace: &mut Keyspace, key: &[u8], members: impl Iterator<Item = u64>) {
    for member in members {
        let entry = keyspace.get_or_insert_with(key, 0, || {
            Value::Set(crate::store::Shared::new(SetValue::new()))
        });
        let Value::Set(set) = &mut entry.value else {
            panic!("a set");
        };
        set.insert(bytes::Bytes::from(format!("member:{member}")));
    }
}

/// Steps like the loop does until no resize is left; returns how many steps that took.
fn step_until_resized(keyspace: &mut Keyspace, steps_max: usize) -> usize {
    for step in 1..=steps_max {
        keyspace.rehash_step(crate::limits::TABLE_REHASH_BUCKETS_PER_ITERATION);
        if keyspace.resizing_count() == 0 {
            return step;
        }
    }
    panic!("resizes still pending after {steps_max} steps");
}

#[test]
fn a_set_emptied_from_large_to_tiny_gives_back_its_memory_in_loop_steps_without_commands() {
    let mut keyspace = Keyspace::new();
    add_members(&mut keyspace, b"big", 0..200_000);
    step_until_resized(&mut keyspace, 10_000);
    let full = stored_set(b"big", &mut keyspace).table_memory_bytes();
    // Remove all but 10, one change at a time: the table starts shrinking and is left mid-move.
    for member in 10..200_000u64 {
        let entry = keyspace.get_mut(b"big", 0).expect("present");
        let Value::Set(set) = &mut entry.value else {
            panic!("a set");
        };
        assert!(set.swap_remove(format!("member:{member}").as_bytes()));
    }
    assert!(
        stored_set(b"big", &mut keyspace).is_rehashing(),
        "removals alone leave the shrink unfinished"
    );
    assert!(keyspace.resizing_count() > 0);
    // No further command: the loop's steps alone finish every shrink (8x at a time).
    let steps = step_until_resized(&mut keyspace, 10_000);
    assert!(steps > 1, "the work is spread over steps, not done in one");
    let set = stored_set(b"big", &mut keyspace);
    assert_eq!(set.len(), 10);
    assert!(!set.is_rehashing());
    let small = set.table_memory_bytes();
    assert!(
        small * 100 < full,
        "a 10-member set keeps {small} bytes of table (it had {full} at 200,000 members)"
    );
}

#[test]
fn a_set_that_stops_growing_mid_resize_is_finished_by_the_loop_in_bounded_steps() {
    let mut keyspace = Keyspace::new();
    // 2^16 + 1 members: the table has just started doubling from 65,536 buckets and stops there.
    add_members(&mut keyspace, b"grown", 0..65_537);
    assert!(stored_set(b"grown", &mut keyspace).is_rehashing());
    let steps = step_until_resized(&mut keyspace, 1_000);
    let buckets_left = 65_536 - crate::limits::TABLE_REHASH_BUCKETS_PER_OPERATION;
    assert!(
        steps >= buckets_left / crate::limits::TABLE_REHASH_BUCKETS_PER_ITERATION,
        "each step moves at most TABLE_REHASH_BUCKETS_PER_ITERATION buckets ({steps} steps)"
    );
    assert!(!stored_set(b"grown", &mut keyspace).is_rehashing());
    assert_eq!(stored_set(b"grown", &mut keyspace).len(), 65_537);
}

#[test]
fn keys_deleted_overwritten_or_renamed_while_listed_are_harmless() {
    let mut keyspace = Keyspace::new();
    for key in [&b"deleted"[..], b"overwritten", b"renamed"] {
        add_members(&mut keyspace, key, 0..65_537);
    }
    // The last change is checked at the next step; the others at the change to the next key.
    keyspace.rehash_step(0);
    assert_eq!(keyspace.resizing_count(), 3);
    keyspace.remove(b"deleted");
    keyspace.insert(b"overwritten", string("now a string"));
    let renamed = keyspace.remove(b"renamed").expect("present");
    keyspace.insert(b"new-name", renamed.value);
    // The insert under the new name noted it; the old names are dropped when reached.
    step_until_resized(&mut keyspace, 1_000);
    assert!(!stored_set(b"new-name", &mut keyspace).is_rehashing());
    assert_eq!(stored_set(b"new-name", &mut keyspace).len(), 65_537);
    assert!(matches!(
        &keyspace.get(b"overwritten", 0).expect("present").value,
        Value::String(_)
    ));
    keyspace.check_invariants();
}

#[test]
fn a_value_the_snapshot_writer_holds_is_not_copied_to_move_its_buckets() {
    let mut keyspace = Keyspace::new();
    add_members(&mut keyspace, b"held", 0..65_537);
    let handle = keyspace
        .get(b"held", 0)
        .expect("present")
        .value
        .share()
        .expect("a collection");
    assert!(
        !keyspace.rehash_step(crate::limits::TABLE_REHASH_BUCKETS_PER_ITERATION),
        "nothing moves while the handle lives, so the loop need not come back at once"
    );
    assert_eq!(keyspace.resizing_count(), 1, "kept for later");
    assert!(stored_set(b"held", &mut keyspace).is_rehashing());
    drop(handle);
    step_until_resized(&mut keyspace, 1_000);
    assert!(!stored_set(b"held", &mut keyspace).is_rehashing());
}

#[test]
fn a_step_visits_a_bounded_number_of_keys() {
    let mut keyspace = Keyspace::new();
    let mut handles = Vec::new();
    // 1,500 sets of 257 members (past the listpack threshold, so in a table), each just past 256 buckets
    // and so mid-resize, all held by a "snapshot": nothing moves, and each visit costs a bucket of the
    // budget.
    for index in 0..1_500u32 {
        let key = format!("set:{index}");
        add_members(&mut keyspace, key.as_bytes(), 0..257);
        let entry = keyspace.get(key.as_bytes(), 0).expect("present");
        if entry.value.is_rehashing() {
            handles.push(entry.value.share().expect("a collection"));
        }
    }
    keyspace.rehash_step(0);
    let listed = keyspace.resizing_count();
    assert_eq!(listed, handles.len());
    assert!(
        listed > 1_024,
        "enough listed keys to overrun one step: {listed}"
    );
    keyspace.rehash_step(1_024);
    assert_eq!(
        keyspace.resizing.cursor, 1_024,
        "one key per bucket of budget"
    );
    drop(handles);
    // About 1,500 x 252 buckets left to move, 256 a step.
    step_until_resized(&mut keyspace, 3_000);
}
