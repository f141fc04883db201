//! The set's encodings against a `BTreeSet` model, the conversions between them, and the codec.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::{SetEncodingLimits, SetValue};
use crate::store::encoding::{decode_value_within, encode_value};
use crate::store::{Shared, Value};

fn limits(intset: usize, listpack: usize, value: usize) -> SetEncodingLimits {
    SetEncodingLimits {
        intset_entries_max: intset,
        listpack_entries_max: listpack,
        listpack_value_length_max: value,
    }
}

fn members_of(set: &SetValue) -> BTreeSet<Vec<u8>> {
    set.iter().map(|member| member.to_vec()).collect()
}

#[test]
fn integers_stay_an_intset_until_the_count_and_widen_as_needed() {
    let limits = limits(6, 3, 8);
    let mut set = SetValue::for_members(b"1", 1, &limits);
    for member in [
        "1",
        "-40000",
        "70000",
        "9223372036854775807",
        "-9223372036854775808",
    ] {
        assert!(set.insert_within(member.as_bytes(), &limits), "{member}");
        assert_eq!(set.encoding_name(), "intset");
    }
    assert!(!set.insert_within(b"70000", &limits));
    let in_order: Vec<Vec<u8>> = set.iter().map(|member| member.to_vec()).collect();
    assert_eq!(
        in_order,
        [
            "-9223372036854775808",
            "-40000",
            "1",
            "70000",
            "9223372036854775807"
        ]
        .map(|member| member.as_bytes().to_vec())
    );
    assert!(set.insert_within(b"2", &limits));
    assert_eq!(set.encoding_name(), "intset");
    // The seventh integer passes set-max-intset-entries: straight to a table, as in Redis.
    assert!(set.insert_within(b"3", &limits));
    assert_eq!(set.encoding_name(), "hashtable");
    assert_eq!(set.len(), 7);
    assert!(set.contains(b"-40000"));
}

#[test]
fn only_canonical_integers_go_in_an_intset() {
    let limits = SetEncodingLimits::default();
    for member in [
        "007",
        "-0",
        "+1",
        "1 ",
        "",
        "9223372036854775808",
        "1.5",
        "0x10",
    ] {
        let mut set = SetValue::for_members(b"5", 2, &limits);
        set.insert_within(b"5", &limits);
        assert!(set.insert_within(member.as_bytes(), &limits));
        assert_eq!(set.encoding_name(), "listpack", "{member:?}");
        assert!(set.contains(member.as_bytes()) && set.contains(b"5"));
        assert!(!set.contains(b"7"), "{member:?}");
    }
    let mut set = SetValue::for_members(b"0", 1, &limits);
    assert!(set.insert_within(b"0", &limits));
    assert!(!set.contains(b"-0") && !set.contains(b"00"));
    assert_eq!(set.encoding_name(), "intset");
}

#[test]
fn an_intset_becomes_a_listpack_or_a_table_as_redis_decides() {
    // Under the listpack's count, and every member fits its value length: a listpack.
    let limits = limits(10, 3, 5);
    let mut set: SetValue = SetValue::for_members(b"1", 1, &limits);
    set.insert_within(b"1", &limits);
    set.insert_within(b"22", &limits);
    set.insert_within(b"abc", &limits);
    assert_eq!(set.encoding_name(), "listpack");
    assert_eq!(
        members_of(&set),
        [&b"1"[..], b"22", b"abc"].map(<[u8]>::to_vec).into()
    );
    // The listpack is full (3): the next member makes a table.
    set.insert_within(b"d", &limits);
    assert_eq!(set.encoding_name(), "hashtable");

    // An intset member longer than the listpack's value length: a table.
    let mut set = SetValue::for_members(b"1", 1, &limits);
    set.insert_within(b"123456", &limits);
    set.insert_within(b"x", &limits);
    assert_eq!(set.encoding_name(), "hashtable");

    // An intset at the listpack's count: a table.
    let mut set = SetValue::for_members(b"1", 1, &limits);
    for member in ["1", "2", "3"] {
        set.insert_within(member.as_bytes(), &limits);
    }
    set.insert_within(b"x", &limits);
    assert_eq!(set.encoding_name(), "hashtable");

    // A long member in a listpack: a table; removals never convert back.
    let mut set = SetValue::for_members(b"a", 1, &limits);
    set.insert_within(b"a", &limits);
    assert_eq!(set.encoding_name(), "listpack");
    set.insert_within(b"longer", &limits);
    assert_eq!(set.encoding_name(), "hashtable");
    assert!(set.swap_remove(b"longer"));
    assert_eq!(set.encoding_name(), "hashtable");
}

#[test]
fn a_new_set_is_encoded_as_redis_set_type_create_picks() {
    let limits = limits(4, 2, 64);
    for (first, count, expected) in [
        ("1", 4, "intset"),
        ("1", 5, "hashtable"),
        ("a", 2, "listpack"),
        ("a", 3, "hashtable"),
        ("1", 0, "intset"),
    ] {
        assert_eq!(
            SetValue::for_members(first.as_bytes(), count, &limits).encoding_name(),
            expected,
            "{first} x{count}"
        );
    }
}

#[test]
fn each_encoding_round_trips_through_the_codec_and_the_loader_picks_it() {
    let limits = SetEncodingLimits::default();
    let sets: [(Vec<String>, &str); 3] = [
        (
            (0..300).map(|n| (n * 7 - 1000).to_string()).collect(),
            "intset",
        ),
        (
            (0..100).map(|n| format!("member:{n}")).collect(),
            "listpack",
        ),
        (
            (0..1000).map(|n| format!("member:{n}")).collect(),
            "hashtable",
        ),
    ];
    for (members, encoding) in sets {
        let mut set = SetValue::for_members(members[0].as_bytes(), members.len(), &limits);
        for member in &members {
            set.insert_within(member.as_bytes(), &limits);
        }
        assert_eq!(set.encoding_name(), encoding);
        let mut out = Vec::new();
        let tag = encode_value(&Value::Set(Shared::new(set.clone())), &mut out);
        let Value::Set(decoded) = decode_value_within(tag, &out, &limits).unwrap() else {
            panic!("a set");
        };
        assert_eq!(decoded.encoding_name(), encoding);
        assert_eq!(*decoded, set);
        assert!(decoded.iter().eq(set.iter()), "the same position order");
        // Under thresholds of zero the same bytes load as a table.
        let Value::Set(decoded) = decode_value_within(tag, &out, &limits_zero()).unwrap() else {
            panic!("a set");
        };
        assert_eq!(decoded.encoding_name(), "hashtable");
        assert_eq!(*decoded, set);
    }
}

fn limits_zero() -> SetEncodingLimits {
    limits(0, 0, 0)
}

#[derive(Debug, Clone)]
enum Operation {
    Insert(Vec<u8>),
    Remove(Vec<u8>),
    RemoveAt(usize),
}

fn member() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (-70_000i64..70_000).prop_map(|n| n.to_string().into_bytes()),
        any::<i64>().prop_map(|n| n.to_string().into_bytes()),
        proptest::collection::vec(b'a'..b'e', 0..12),
        Just(b"007".to_vec()),
    ]
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        6 => member().prop_map(Operation::Insert),
        3 => member().prop_map(Operation::Remove),
        1 => (0..64usize).prop_map(Operation::RemoveAt),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Whatever the thresholds and the order of operations, a set answers like a `BTreeSet`, converts only
    /// towards a table, and the encoding it ends in is the one replaying the same operations gives.
    #[test]
    fn every_encoding_answers_like_a_btree_set(
        intset in 0usize..40,
        listpack in 0usize..20,
        value in 0usize..12,
        first in member(),
        operations in proptest::collection::vec(operation(), 1..150),
    ) {
        let limits = limits(intset, listpack, value);
        let run = || {
            let mut set = SetValue::for_members(&first, 1, &limits);
            let mut model = BTreeSet::new();
            let rank = |name: &str| ["intset", "listpack", "hashtable"].iter().position(|n| *n == name).unwrap();
            let mut last_rank = rank(set.encoding_name());
            for operation in &operations {
                match operation {
                    Operation::Insert(member) => {
                        assert_eq!(set.insert_within(member, &limits), model.insert(member.clone()));
                    }
                    Operation::Remove(member) => {
                        assert_eq!(set.swap_remove(member), model.remove(member));
                    }
                    Operation::RemoveAt(position) => {
                        let removed = set.swap_remove_index(*position);
                        match removed {
                            None => assert!(*position >= model.len()),
                            Some(member) => assert!(model.remove(&member[..])),
                        }
                    }
                }
                assert_eq!(set.len(), model.len());
                assert_eq!(members_of(&set), model);
                for position in 0..set.len() {
                    let member = set.get_index(position).unwrap().to_vec();
                    assert!(model.contains(&member));
                    assert!(set.contains(&member));
                }
                assert!(set.get_index(set.len()).is_none());
                let positions: Vec<usize> = (0..set.len()).rev().collect();
                let by_positions: BTreeSet<Vec<u8>> =
                    set.get_indexes(&positions).into_iter().map(|member| member.to_vec()).collect();
                assert_eq!(&by_positions, &model);
                set.check_encoding();
                let now = rank(set.encoding_name());
                assert!(now >= last_rank, "converted back to {}", set.encoding_name());
                last_rank = now;
                if set.encoding_name() == "listpack" {
                    assert!(set.len() <= listpack);
                }
                if set.encoding_name() == "intset" {
                    assert!(set.len() <= intset);
                }
            }
            set
        };
        let set = run();
        let again = run();
        prop_assert_eq!(set.encoding_name(), again.encoding_name());
        prop_assert!(set.iter().eq(again.iter()));
    }
}
