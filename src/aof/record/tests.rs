use super::*;

fn log_with(payloads: &[&[u8]], first_sequence: u64) -> (Vec<u8>, Vec<usize>) {
    let mut file = file_header(first_sequence).to_vec();
    let mut offsets = Vec::new();
    for (index, payload) in payloads.iter().enumerate() {
        offsets.push(file.len());
        encode_record(&mut file, first_sequence + index as u64, payload);
    }
    (file, offsets)
}

fn sample_payloads() -> Vec<Vec<u8>> {
    (0..6u8)
        .map(|index| vec![index; 3 + index as usize * 7])
        .collect()
}

fn sample_log() -> (Vec<u8>, Vec<usize>, Vec<Vec<u8>>) {
    let payloads = sample_payloads();
    let borrowed: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    let (file, offsets) = log_with(&borrowed, 1);
    (file, offsets, payloads)
}

#[test]
fn begin_and_finish_match_encode() {
    let mut built = Vec::new();
    let start = begin_record(&mut built, 7);
    built.extend_from_slice(b"payload bytes");
    finish_record(&mut built, start);
    let mut encoded = Vec::new();
    encode_record(&mut encoded, 7, b"payload bytes");
    assert_eq!(built, encoded);
    assert_eq!(&encoded[..4], &[0xC0, 0x10, 0xB5, 0xD1]);
    assert_eq!(&encoded[4..8], &13u32.to_le_bytes());
    assert_eq!(&encoded[8..16], &7u64.to_le_bytes());
}

#[test]
fn clean_log_yields_every_record() {
    let (file, offsets, payloads) = sample_log();
    let (records, verdict) = scan(&file);
    assert_eq!(
        verdict,
        ScanVerdict::Clean {
            end_offset: file.len() as u64,
            reserved_bytes: 0
        }
    );
    assert_eq!(records.len(), payloads.len());
    for (index, record) in records.iter().enumerate() {
        assert_eq!(record.offset, offsets[index] as u64);
        assert_eq!(record.sequence, index as u64 + 1);
        assert_eq!(record.payload, payloads[index].as_slice());
    }
}

#[test]
fn header_only_and_first_sequence() {
    let file = file_header(42);
    assert_eq!(parse_file_header(&file), Ok(42));
    let (records, verdict) = scan(&file);
    assert!(records.is_empty());
    assert_eq!(
        verdict,
        ScanVerdict::Clean {
            end_offset: 16,
            reserved_bytes: 0
        }
    );
    // A file whose first record is not its header's first sequence is corrupt.
    let (file, _) = log_with(&[b"x"], 5);
    let mut wrong = file_header(4).to_vec();
    wrong.extend_from_slice(&file[16..]);
    let (records, verdict) = scan(&wrong);
    assert!(records.is_empty());
    assert!(matches!(
        verdict,
        ScanVerdict::Corrupt {
            offset: 16,
            reason: Damage::SequenceUnexpected {
                expected: 4,
                found: 5
            },
            ..
        }
    ));
}

/// The toydb test: cut the log at every byte of its last two records; a prefix of whole records always
/// survives and the rest is a torn tail.
#[test]
fn cut_at_every_offset_of_the_last_two_records() {
    let (file, offsets, payloads) = sample_log();
    let cut_from = offsets[offsets.len() - 2];
    for cut in cut_from..=file.len() {
        let (records, verdict) = scan(&file[..cut]);
        let ends: Vec<usize> = offsets[1..].iter().copied().chain([file.len()]).collect();
        let whole = ends.iter().filter(|&&end| end <= cut).count();
        assert_eq!(records.len(), whole, "cut at {cut}");
        for (index, record) in records.iter().enumerate() {
            assert_eq!(record.payload, payloads[index].as_slice());
        }
        let boundary = records.last().map_or(16, |record| record.end_offset()) as usize;
        if boundary == cut {
            assert_eq!(
                verdict,
                ScanVerdict::Clean {
                    end_offset: cut as u64,
                    reserved_bytes: 0
                },
                "cut at {cut}"
            );
        } else {
            match verdict {
                ScanVerdict::TornTail {
                    offset,
                    discarded_bytes,
                    ..
                } => {
                    assert_eq!(offset as usize, boundary, "cut at {cut}");
                    assert_eq!(discarded_bytes as usize, cut - boundary);
                }
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }
}

#[test]
fn bit_flip_in_a_middle_record_is_corruption_at_that_record() {
    let (file, offsets, _) = sample_log();
    let victim = 2;
    for byte in offsets[victim]..offsets[victim + 1] {
        for bit in [0, 3, 7] {
            let mut damaged = file.clone();
            damaged[byte] ^= 1 << bit;
            let (records, verdict) = scan(&damaged);
            assert_eq!(records.len(), victim, "flip at {byte}");
            match verdict {
                ScanVerdict::Corrupt {
                    offset,
                    valid_record_offset,
                    ..
                } => {
                    assert_eq!(offset as usize, offsets[victim], "flip at {byte}");
                    assert_eq!(valid_record_offset as usize, offsets[victim + 1]);
                }
                other => panic!("flip at {byte} bit {bit}: {other:?}"),
            }
        }
    }
}

#[test]
fn bit_flip_in_the_last_record_is_a_torn_tail() {
    let (file, offsets, _) = sample_log();
    let last = offsets[offsets.len() - 1];
    for byte in last..file.len() {
        let mut damaged = file.clone();
        damaged[byte] ^= 0x10;
        let (records, verdict) = scan(&damaged);
        assert_eq!(records.len(), offsets.len() - 1);
        assert!(
            matches!(verdict, ScanVerdict::TornTail { offset, .. } if offset as usize == last),
            "flip at {byte}: {verdict:?}"
        );
    }
}

#[test]
fn zeros_after_valid_records_are_reserved_space() {
    let (mut file, offsets, _) = sample_log();
    let length = file.len();
    file.resize(length + 4096, 0);
    let (records, verdict) = scan(&file);
    assert_eq!(records.len(), offsets.len());
    assert_eq!(
        verdict,
        ScanVerdict::Clean {
            end_offset: length as u64,
            reserved_bytes: 4096
        }
    );
    // A header and nothing but zeros after it: an empty log with its space reserved.
    let mut empty = file_header(7).to_vec();
    empty.resize(16 + 4096, 0);
    assert_eq!(
        scan(&empty).1,
        ScanVerdict::Clean {
            end_offset: 16,
            reserved_bytes: 4096
        }
    );
}

#[test]
fn a_record_cut_short_before_zeros_is_a_torn_tail() {
    let (mut file, offsets, _) = sample_log();
    let last = *offsets.last().unwrap();
    file.truncate(last + RECORD_HEADER_SIZE);
    let cut_length = file.len();
    file.resize(cut_length + 4096, 0);
    let verdict = scan(&file).1;
    assert!(
        matches!(verdict, ScanVerdict::TornTail { offset, discarded_bytes, .. }
            if offset == last as u64 && discarded_bytes == (file.len() - last) as u64),
        "{verdict:?}"
    );
}

#[test]
fn garbage_between_records_is_corruption() {
    let (file, offsets, _) = sample_log();
    let mut damaged = file[..offsets[3]].to_vec();
    damaged.extend_from_slice(&[0xAB; 5]);
    damaged.extend_from_slice(&file[offsets[3]..]);
    let (records, verdict) = scan(&damaged);
    assert_eq!(records.len(), 3);
    assert!(matches!(
        verdict,
        ScanVerdict::Corrupt { offset, valid_record_offset, .. }
            if offset as usize == offsets[3] && valid_record_offset as usize == offsets[3] + 5
    ));
}

#[test]
fn sequence_gap_and_repeat_are_corruption() {
    for sequences in [[1u64, 2, 4], [1, 2, 2]] {
        let mut file = file_header(1).to_vec();
        let mut offsets = Vec::new();
        for sequence in sequences {
            offsets.push(file.len());
            encode_record(&mut file, sequence, b"same");
        }
        let (records, verdict) = scan(&file);
        assert_eq!(records.len(), 2);
        assert_eq!(
            verdict,
            ScanVerdict::Corrupt {
                offset: offsets[2] as u64,
                reason: Damage::SequenceUnexpected {
                    expected: 3,
                    found: sequences[2]
                },
                valid_record_offset: offsets[2] as u64,
            }
        );
    }
}

#[test]
fn length_over_the_maximum_is_damage() {
    let (mut file, offsets, _) = sample_log();
    let last = offsets[offsets.len() - 1];
    file[last + 4..last + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    let (_, verdict) = scan(&file);
    assert_eq!(
        verdict,
        ScanVerdict::TornTail {
            offset: last as u64,
            discarded_bytes: (file.len() - last) as u64,
            reason: Damage::LengthOverMax {
                payload_length: u32::MAX
            },
        }
    );
}

#[test]
fn file_header_judgements() {
    let torn = |file: &[u8]| matches!(scan(file).1, ScanVerdict::TornTail { offset: 0, .. });
    let corrupt = |file: &[u8]| matches!(scan(file).1, ScanVerdict::Corrupt { offset: 0, .. });
    assert!(torn(b""));
    assert!(torn(&[0; 7]));
    assert!(torn(&[0; 4096]));
    assert!(torn(b"DIBS"));
    assert!(torn(&file_header(1)[..12]));
    assert!(corrupt(b"REDIS"));
    assert!(corrupt(b"*2\r\n$3\r\nDEL\r\n$1\r\nx\r\n"));
    assert!(corrupt(
        &[0; 16].iter().chain(b"x").copied().collect::<Vec<u8>>()
    ));
    let mut zero_sequence = file_header(1);
    zero_sequence[8..].fill(0);
    assert!(corrupt(&zero_sequence));
    let (mut file, _, _) = sample_log();
    file[0] = b'X';
    let (records, verdict) = scan(&file);
    assert!(records.is_empty());
    assert!(matches!(
        verdict,
        ScanVerdict::Corrupt {
            offset: 0,
            reason: Damage::FileMagicWrong,
            ..
        }
    ));
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
        let mut with_header = file_header(1).to_vec();
        with_header.extend_from_slice(&bytes);
        for file in [bytes.as_slice(), with_header.as_slice()] {
            let (records, verdict) = scan(file);
            proptest::prop_assert!(verdict.good_length() as usize <= file.len());
            proptest::prop_assert!(records.iter().all(|record| record.end_offset() <= verdict.good_length()));
        }
    }

    /// Against a model: CRC-32 catches every change of one byte, so the records before the changed one
    /// survive, and the verdict is a torn tail only when nothing valid follows the change.
    #[test]
    fn one_changed_byte_is_judged_like_the_model(
        position in proptest::prelude::any::<proptest::sample::Index>(),
        delta in 1u8..=255,
    ) {
        let (file, offsets, payloads) = sample_log();
        let index = position.index(file.len());
        let mut damaged = file.clone();
        damaged[index] = damaged[index].wrapping_add(delta);
        let (records, verdict) = scan(&damaged);
        if index < FILE_HEADER_SIZE {
            proptest::prop_assert!(records.is_empty());
            // A changed magic or a first sequence of 0 damages the header; any other first sequence
            // disagrees with the first record's.
            let header_damaged = index < 8 || damaged[8..16] == [0; 8];
            let expected_offset = if header_damaged { 0 } else { FILE_HEADER_SIZE as u64 };
            proptest::prop_assert!(
                matches!(verdict, ScanVerdict::Corrupt { offset, .. } if offset == expected_offset),
                "{:?}", verdict
            );
        } else {
            let victim = offsets.iter().rposition(|&offset| offset <= index).unwrap();
            proptest::prop_assert_eq!(records.len(), victim);
            for (record, payload) in records.iter().zip(&payloads) {
                proptest::prop_assert_eq!(record.payload, payload.as_slice());
            }
            let victim_offset = offsets[victim] as u64;
            if victim == offsets.len() - 1 {
                proptest::prop_assert!(
                    matches!(verdict, ScanVerdict::TornTail { offset, .. } if offset == victim_offset),
                    "{:?}", verdict
                );
            } else {
                proptest::prop_assert!(
                    matches!(verdict, ScanVerdict::Corrupt { offset, .. } if offset == victim_offset),
                    "{:?}", verdict
                );
            }
        }
    }
}

#[test]
fn scanner_reports_progress() {
    let (file, offsets, _) = sample_log();
    let mut scanner = Scanner::new(&file);
    assert_eq!(scanner.first_sequence(), Some(1));
    assert_eq!(scanner.last_sequence(), None);
    assert!(scanner.next().is_some());
    assert_eq!(scanner.last_sequence(), Some(1));
    assert_eq!(scanner.verdict(), None);
    let rest = scanner.by_ref().count();
    assert_eq!(rest, offsets.len() - 1);
    assert_eq!(scanner.records_count(), offsets.len() as u64);
    assert_eq!(scanner.last_sequence(), Some(offsets.len() as u64));
    assert_eq!(
        scanner.finish(),
        ScanVerdict::Clean {
            end_offset: file.len() as u64,
            reserved_bytes: 0
        }
    );
}
