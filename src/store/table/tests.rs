//! The table against `std::collections::HashMap`: unit tests for a resize in progress, and random
//! operations that grow tables to thousands of entries and shrink them back to a handful, with every reply,
//! `len` and the layout checked after every step.

use super::*;
use crate::limits::TABLE_REHASH_BUCKETS_PER_OPERATION;
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

fn seeded() -> Table<u32, u32> {
    Table::with_hasher(ahash::RandomState::with_seeds(1, 2, 3, 4))
}

/// Scans from 0 until the cursor comes back to 0 and returns every key visited (with repeats).
fn scan_all<V, S>(table: &Table<u32, V, S>, count: usize) -> Vec<u32> {
    let mut keys = Vec::new();
    let mut cursor = 0;
    loop {
        cursor = table.scan(cursor, count, |key, _| keys.push(*key));
        if cursor == 0 {
            return keys;
        }
    }
}

/// Inserts until a resize starts, and returns the table mid-move.
fn table_mid_growth() -> Table<u32, u32> {
    let mut table = seeded();
    let mut key = 0;
    while !table.is_rehashing() || table.bucket_count() < 1024 {
        table.insert(key, key * 10);
        key += 1;
    }
    assert!(table.is_rehashing());
    table
}

#[test]
fn an_empty_table_answers_everything_and_holds_no_memory() {
    let mut table = seeded();
    assert!(table.is_empty());
    assert_eq!(table.get(&1), None);
    assert_eq!(table.remove(&1), None);
    assert_eq!(table.random(7), None);
    assert_eq!(table.scan(0, 10, |_, _| panic!("nothing to visit")), 0);
    assert_eq!(table.memory_bytes(), 0);
    table.insert(1, 1);
    assert_eq!(table.remove(&1), Some(1));
    assert_eq!(table.memory_bytes(), 0, "an emptied table frees its arrays");
}

#[test]
fn insert_remove_and_get_while_two_bucket_arrays_coexist() {
    let mut table = table_mid_growth();
    let len = table.len() as u32;
    // Entries on both sides of the move are found, replaced and removed.
    for key in 0..len {
        assert_eq!(table.get(&key), Some(&(key * 10)), "key {key}");
    }
    assert!(table.is_rehashing(), "lookups move nothing");
    assert_eq!(table.insert(3, 33), Some(30));
    assert_eq!(table.remove(&4), Some(40));
    assert_eq!(table.insert(len + 100, 1), None);
    *table.get_mut(&5).expect("present") = 55;
    table.assert_consistent();
    assert!(
        table.is_rehashing(),
        "one operation moves only a few buckets"
    );
    assert_eq!(table.get(&3), Some(&33));
    assert_eq!(table.get(&4), None);
    assert_eq!(table.get(&5), Some(&55));
    assert_eq!(table.get(&(len + 100)), Some(&1));
    while table.rehash_step(7) {
        table.assert_consistent();
    }
    table.assert_consistent();
    assert_eq!(table.len(), len as usize);
}

#[test]
fn an_operation_moves_at_most_the_constant_and_a_step_at_most_its_count() {
    let mut table = table_mid_growth();
    let position = table.move_position;
    table.insert(u32::MAX, 0);
    assert!(table.move_position - position <= TABLE_REHASH_BUCKETS_PER_OPERATION);
    let position = table.move_position;
    table.rehash_step(3);
    assert_eq!(table.move_position - position, 3);
}

#[test]
fn growth_finishes_before_the_next_is_due() {
    let mut table = seeded();
    for key in 0..100_000 {
        table.insert(key, key);
        // Never more entries than twice the buckets: a resize is never postponed for long.
        assert!(table.len() <= 2 * table.bucket_count());
    }
    table.assert_consistent();
}

#[test]
fn a_table_emptied_from_many_to_few_gives_its_memory_back() {
    let mut table = seeded();
    for key in 0..50_000 {
        table.insert(key, key);
    }
    let full = table.memory_bytes();
    for key in 10..50_000 {
        assert_eq!(table.remove(&key), Some(key));
    }
    while table.rehash_step(100) {}
    table.assert_consistent();
    assert_eq!(table.len(), 10);
    assert!(
        table.bucket_count() <= 16,
        "{} buckets",
        table.bucket_count()
    );
    assert!(
        table.memory_bytes() < full / 100,
        "{} of {full} bytes",
        table.memory_bytes()
    );
    for key in 0..10 {
        assert_eq!(table.get(&key), Some(&key));
    }
}

#[test]
fn a_scan_across_a_growth_and_a_shrink_returns_every_entry_present_throughout() {
    let mut table = seeded();
    for key in 0..1000 {
        table.insert(key, 0);
    }
    let mut seen = HashSet::new();
    let mut cursor = table.scan(0, 50, |key, _| {
        seen.insert(*key);
    });
    // Grow to many times the size mid-scan, then shrink below the start, then finish.
    for key in 1000..20_000 {
        table.insert(key, 0);
    }
    cursor = table.scan(cursor, 50, |key, _| {
        seen.insert(*key);
    });
    for key in 500..20_000 {
        table.remove(&key);
    }
    while cursor != 0 {
        cursor = table.scan(cursor, 50, |key, _| {
            seen.insert(*key);
        });
        table.rehash_step(1);
    }
    for key in 0..500 {
        assert!(
            seen.contains(&key),
            "key {key} present throughout was not returned"
        );
    }
}

#[test]
fn scan_during_a_move_visits_both_arrays() {
    let table = table_mid_growth();
    let keys: HashSet<u32> = scan_all(&table, 10).into_iter().collect();
    assert_eq!(keys.len(), table.len());
}

#[test]
fn random_is_uniform_over_the_entries() {
    let mut table = seeded();
    for key in 0..100 {
        table.insert(key, 0);
    }
    let picked: HashSet<u32> = (0..100)
        .map(|random| *table.random(random).expect("not empty").0)
        .collect();
    assert_eq!(
        picked.len(),
        100,
        "100 consecutive numbers pick 100 different entries"
    );
}

/// Every key hashes alike: one chain holds the whole table, and everything still works.
#[derive(Default)]
struct ConstantHasher;
impl Hasher for ConstantHasher {
    fn finish(&self) -> u64 {
        42
    }
    fn write(&mut self, _: &[u8]) {}
}

#[test]
fn one_long_chain_still_answers_correctly() {
    let mut table: Table<u32, u32, BuildHasherDefault<ConstantHasher>> = Table::default();
    for key in 0..300 {
        assert_eq!(table.insert(key, key), None);
    }
    for key in (0..300).step_by(2) {
        assert_eq!(table.remove(&key), Some(key));
    }
    table.assert_consistent();
    for key in 0..300 {
        assert_eq!(table.get(&key), (key % 2 == 1).then_some(&key));
    }
    assert_eq!(scan_all(&table, 1).len(), 150);
}

#[test]
fn keys_are_looked_up_by_their_borrowed_form() {
    let mut table: Table<Vec<u8>, u32> = Table::new();
    table.insert(b"ann".to_vec(), 1);
    assert_eq!(table.get(b"ann".as_slice()), Some(&1));
    assert_eq!(table.remove(b"ann".as_slice()), Some(1));
}

#[derive(Clone, Debug)]
enum Operation {
    Insert {
        key: u32,
        value: u32,
    },
    Remove {
        key: u32,
    },
    RemoveIndex {
        index: usize,
    },
    Get {
        key: u32,
    },
    GetMut {
        key: u32,
        value: u32,
    },
    RehashStep {
        buckets: usize,
    },
    Random {
        random: u64,
    },
    /// Inserts `count` keys from `first`: the table grows through several resizes.
    InsertMany {
        first: u32,
        count: u32,
    },
    /// Removes all but `keep` of the keys: the table shrinks through several resizes.
    RemoveAllBut {
        keep: usize,
    },
    /// Starts a scan; `ScanContinue` goes on with it between the other operations.
    ScanStart,
    /// `insert_if_absent_with`: inserts only a new key, building the entry only then.
    InsertIfAbsent {
        key: u32,
        value: u32,
    },
    ScanContinue {
        count: usize,
    },
    /// Scans from 0 to the end with nothing in between.
    ScanFull {
        count: usize,
    },
}

fn operation() -> impl Strategy<Value = Operation> {
    let key = 0..6000u32;
    prop_oneof![
        8 => (key.clone(), any::<u32>()).prop_map(|(key, value)| Operation::Insert { key, value }),
        6 => (key.clone(), any::<u32>()).prop_map(|(key, value)| Operation::InsertIfAbsent { key, value }),
        6 => key.clone().prop_map(|key| Operation::Remove { key }),
        2 => (0..4000usize).prop_map(|index| Operation::RemoveIndex { index }),
        4 => key.clone().prop_map(|key| Operation::Get { key }),
        2 => (key.clone(), any::<u32>()).prop_map(|(key, value)| Operation::GetMut { key, value }),
        3 => (0..40usize).prop_map(|buckets| Operation::RehashStep { buckets }),
        2 => any::<u64>().prop_map(|random| Operation::Random { random }),
        2 => (key, 1..3000u32).prop_map(|(first, count)| Operation::InsertMany { first, count }),
        2 => (0..12usize).prop_map(|keep| Operation::RemoveAllBut { keep }),
        1 => Just(Operation::ScanStart),
        6 => (1..30usize).prop_map(|count| Operation::ScanContinue { count }),
        1 => (1..300usize).prop_map(|count| Operation::ScanFull { count }),
    ]
}

/// A scan in progress: its cursor, the keys present since it started and still present, what it saw.
struct ScanInProgress {
    cursor: u64,
    present_throughout: HashSet<u32>,
    seen: HashSet<u32>,
}

/// The references: `HashMap` for the replies, and `IndexMap`, whose `swap_remove` moves entries the same
/// way, for the positions (`get_index_of`, `insert_full`, `swap_remove_index`).
#[derive(Default)]
struct Model {
    map: HashMap<u32, u32>,
    positions: indexmap::IndexMap<u32, u32>,
}

fn check_insert(table: &mut Table<u32, u32>, model: &mut Model, key: u32, value: u32) {
    let (index, old) = table.insert_full(key, value);
    assert_eq!(old, model.map.insert(key, value), "insert {key}");
    assert_eq!(
        (index, old),
        model.positions.insert_full(key, value),
        "insert_full {key}"
    );
}

fn check_remove(
    table: &mut Table<u32, u32>,
    model: &mut Model,
    scan: &mut Option<ScanInProgress>,
    key: u32,
) {
    assert_eq!(table.remove(&key), model.map.remove(&key), "remove {key}");
    model.positions.swap_remove(&key);
    if let Some(scan) = scan {
        scan.present_throughout.remove(&key);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn the_table_answers_like_a_hash_map(operations in proptest::collection::vec(operation(), 1..120)) {
        let mut table = seeded();
        let mut model = Model::default();
        let mut scan: Option<ScanInProgress> = None;
        for operation in operations {
            match operation {
                Operation::Insert { key, value } => check_insert(&mut table, &mut model, key, value),
                Operation::InsertIfAbsent { key, value } => {
                    let mut built = false;
                    let (index, inserted) = table.insert_if_absent_with(&key, || {
                        built = true;
                        (key, value)
                    });
                    let absent = !model.map.contains_key(&key);
                    prop_assert_eq!(inserted, absent, "insert_if_absent_with {}", key);
                    prop_assert_eq!(built, absent, "the entry is built only when the key is new");
                    if absent {
                        model.map.insert(key, value);
                        model.positions.insert(key, value);
                    }
                    prop_assert_eq!(Some(index), model.positions.get_index_of(&key));
                    prop_assert_eq!(table.get(&key), model.map.get(&key));
                }
                Operation::Remove { key } => check_remove(&mut table, &mut model, &mut scan, key),
                Operation::RemoveIndex { index } => {
                    let removed = table.swap_remove_index(index);
                    prop_assert_eq!(removed, model.positions.swap_remove_index(index));
                    if let Some((key, _)) = removed {
                        model.map.remove(&key);
                        if let Some(scan) = &mut scan {
                            scan.present_throughout.remove(&key);
                        }
                    }
                }
                Operation::Get { key } => {
                    prop_assert_eq!(table.get(&key), model.map.get(&key));
                    prop_assert_eq!(table.contains_key(&key), model.map.contains_key(&key));
                    prop_assert_eq!(table.get_index_of(&key), model.positions.get_index_of(&key));
                }
                Operation::GetMut { key, value } => {
                    match (table.get_mut(&key), model.map.get_mut(&key)) {
                        (Some(stored), Some(expected)) => {
                            *stored = value;
                            *expected = value;
                            model.positions.insert(key, value);
                        }
                        (None, None) => {}
                        (stored, expected) => prop_assert!(false, "get_mut {key}: {stored:?} {expected:?}"),
                    }
                }
                Operation::RehashStep { buckets } => {
                    let before = table.is_rehashing();
                    let still = table.rehash_step(buckets);
                    prop_assert_eq!(still, table.is_rehashing());
                    if buckets == 0 {
                        prop_assert_eq!(still, before);
                    }
                }
                Operation::Random { random } => match table.random(random) {
                    None => prop_assert!(model.map.is_empty()),
                    Some((key, value)) => {
                        prop_assert_eq!(model.map.get(key), Some(value));
                        let index = (random % model.positions.len() as u64) as usize;
                        prop_assert_eq!(table.get_index(index), model.positions.get_index(index));
                    }
                },
                Operation::InsertMany { first, count } => {
                    for key in first..first + count {
                        check_insert(&mut table, &mut model, key, key);
                    }
                }
                Operation::RemoveAllBut { keep } => {
                    let mut keys: Vec<u32> = model.map.keys().copied().collect();
                    keys.sort_unstable();
                    for key in keys.into_iter().skip(keep) {
                        check_remove(&mut table, &mut model, &mut scan, key);
                    }
                }
                Operation::ScanStart => {
                    scan = Some(ScanInProgress {
                        cursor: 0,
                        present_throughout: model.map.keys().copied().collect(),
                        seen: HashSet::new(),
                    });
                }
                Operation::ScanContinue { count } => {
                    if let Some(mut progress) = scan.take() {
                        progress.cursor = table.scan(progress.cursor, count, |key, value| {
                            assert_eq!(model.map.get(key), Some(value), "scan visited a stale entry");
                            progress.seen.insert(*key);
                        });
                        if progress.cursor == 0 {
                            let missed: Vec<_> = progress.present_throughout.difference(&progress.seen).collect();
                            prop_assert!(missed.is_empty(), "scan missed {missed:?}");
                        } else {
                            scan = Some(progress);
                        }
                    }
                }
                Operation::ScanFull { count } => {
                    let seen: HashSet<u32> = scan_all(&table, count).into_iter().collect();
                    let expected: HashSet<u32> = model.map.keys().copied().collect();
                    prop_assert_eq!(seen, expected);
                }
            }
            prop_assert_eq!(table.len(), model.map.len());
            prop_assert_eq!(table.is_empty(), model.map.is_empty());
            table.assert_consistent();
        }
        let mut entries: Vec<(u32, u32)> = table.iter().map(|(key, value)| (*key, *value)).collect();
        entries.sort_unstable();
        let in_order: Vec<(u32, u32)> = model.positions.into_iter().collect();
        let stored_order: Vec<(u32, u32)> = table.iter().map(|(key, value)| (*key, *value)).collect();
        prop_assert_eq!(stored_order, in_order);
        let mut expected: Vec<(u32, u32)> = model.map.into_iter().collect();
        expected.sort_unstable();
        prop_assert_eq!(entries, expected);
    }
}

#[test]
fn an_entry_costs_its_key_and_value_plus_about_twelve_to_sixteen_bytes() {
    // Slot<u32, ()>: key 4 + hash 4 + link 4 = 12 bytes; buckets add 4 to 8 bytes an entry.
    let mut table: Table<u32, ()> = Table::with_hasher(ahash::RandomState::with_seeds(1, 2, 3, 4));
    for key in 0..200_000 {
        table.insert(key, ());
    }
    while table.rehash_step(1000) {}
    let per_entry = table.memory_bytes() as f64 / table.len() as f64;
    assert!(per_entry <= 12.0 + 8.0 + 1.0, "{per_entry} bytes an entry");
}

#[test]
fn a_clone_of_several_segments_keeps_growing_and_stays_equal_to_its_original() {
    // `Vec::clone` gives the clone's last segment no spare capacity, so its next push must grow it.
    let count = slots::SEGMENT_SLOTS as u32 * 2 + 100;
    let mut original = seeded();
    for key in 0..count {
        original.insert(key, key * 2);
    }
    let mut clone = original.clone();
    for key in count..count + slots::SEGMENT_SLOTS as u32 {
        original.insert(key, key * 2);
        clone.insert(key, key * 2);
    }
    assert_eq!(clone.len(), original.len());
    for key in 0..count + slots::SEGMENT_SLOTS as u32 {
        assert_eq!(clone.get(&key), Some(&(key * 2)), "key {key}");
    }
    let positions: Vec<_> = clone.iter().map(|(key, _)| *key).collect();
    let original_positions: Vec<_> = original.iter().map(|(key, _)| *key).collect();
    assert_eq!(positions, original_positions, "same positions");
}
