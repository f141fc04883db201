//! The fuzz targets' properties (`tests/properties/mod.rs`), run by proptest under `cargo test`, so they
//! are exercised on every build even where cargo-fuzz and libFuzzer are not available. Inputs mix
//! arbitrary bytes with fragments of real requests and records, so the decoders get past their first
//! checks.
mod properties;

use proptest::prelude::*;

/// Bytes that are mostly RESP-shaped: real request fragments, separators, digits and noise.
fn resp_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    let fragment = prop_oneof![
        Just(b"*".to_vec()),
        Just(b"$".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"'".to_vec()),
        Just(b"\\x4".to_vec()),
        Just(b"-1".to_vec()),
        Just(b"0".to_vec()),
        Just(b"3".to_vec()),
        Just(b"99999999999".to_vec()),
        Just(b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n".to_vec()),
        Just(b"SET a \"b c\"\r\n".to_vec()),
        prop::collection::vec(any::<u8>(), 0..8),
    ];
    prop::collection::vec(fragment, 0..24).prop_map(|fragments| fragments.concat())
}

fn command() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..6)
}

fn record_content() -> impl Strategy<Value = properties::RecordContent> {
    (any::<u64>(), prop::collection::vec(command(), 0..4))
}

/// Cases per property: 512 by default (about a second in all); `DIBS_PROPERTY_CASES=n` for a longer hunt.
fn cases() -> u32 {
    std::env::var("DIBS_PROPERTY_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(512)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn resp_any_split_of_any_bytes_decodes_the_same(
        stream in prop_oneof![resp_like_bytes(), prop::collection::vec(any::<u8>(), 0..300)],
        cuts in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        properties::resp_any_split_decodes_the_same(&stream, &cuts);
    }

    #[test]
    fn resp_encode_then_decode_round_trips(
        commands in prop::collection::vec(command(), 0..8),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        properties::resp_round_trip(&commands, &cuts);
    }

    #[test]
    fn log_decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        properties::log_arbitrary_bytes(&bytes);
    }

    #[test]
    fn log_round_trips_and_every_cut_is_a_torn_tail(
        records in prop::collection::vec(record_content(), 0..5),
    ) {
        properties::log_round_trip_and_every_cut(&records);
    }
}

/// The committed fuzz corpus, so every seed the fuzzers start from is also checked here.
#[test]
fn the_fuzz_seed_corpus_passes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut checked = 0;
    for (target, check) in [
        (
            "resp_decoder",
            (|bytes: &[u8]| properties::resp_any_split_decodes_the_same(bytes, &[1, 7, 30]))
                as fn(&[u8]),
        ),
        ("log_decoder", properties::log_arbitrary_bytes as fn(&[u8])),
    ] {
        for entry in std::fs::read_dir(root.join(target)).expect("the seed corpus") {
            let bytes = std::fs::read(entry.expect("entry").path()).expect("read seed");
            check(&bytes);
            checked += 1;
        }
    }
    assert!(checked >= 6, "only {checked} seeds");
}
