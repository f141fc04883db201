//! Decoder properties shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`) and the proptest runner
//! (`tests/decoder_properties.rs`), so the same checks run under `cargo test` where libFuzzer is not
//! available. Each function panics when its property fails.
//!
//! - RESP request decoder: never panics; a stream fed in any split (as TCP may deliver it) gives the same
//!   requests and the same protocol error as the stream fed whole; encoding a command and decoding it
//!   gives the command back.
//! - Log scanner and payload decoder: never panic on any bytes; records written and read back are the
//!   same; a file cut at any byte (a crash) yields a prefix of the records and is a torn tail, never
//!   corruption.
#![allow(dead_code)]

use dibs::aof::payload::{decode_payload, encode_payload};
use dibs::aof::record::{encode_record, file_header, scan, ScanVerdict, FILE_HEADER_SIZE};
use dibs::resp::{encode_request, DecodeLimits, Request, RequestDecoder};

/// What decoding a stream produced, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Command(Vec<Vec<u8>>),
    /// A blank inline line or a multibulk of count 0 or less: ignored without a reply.
    Ignored,
    /// A protocol error; decoding stops there (the server replies and closes).
    Error(&'static str),
}

/// Feeds `stream` to a decoder in chunks ending at `cuts` (then the rest), as a connection's reads
/// deliver it, decoding everything complete after each chunk.
pub fn decode_in_chunks(stream: &[u8], cuts: &[usize], limits: DecodeLimits) -> Vec<Decoded> {
    let mut cut_points: Vec<usize> = cuts.iter().map(|cut| cut % (stream.len() + 1)).collect();
    cut_points.push(stream.len());
    cut_points.sort_unstable();
    let mut decoder = RequestDecoder::new();
    let mut buffer = Vec::new();
    let mut decoded = Vec::new();
    let mut fed = 0;
    for cut in cut_points {
        buffer.extend_from_slice(&stream[fed..cut]);
        fed = cut;
        loop {
            match decoder.decode(&buffer, limits) {
                Ok(None) => break,
                Ok(Some(Request::Multibulk { consumed })) => {
                    decoded.push(Decoded::Command(
                        decoder
                            .argument_ranges()
                            .iter()
                            .map(|range| buffer[range.clone()].to_vec())
                            .collect(),
                    ));
                    buffer.drain(..consumed);
                }
                Ok(Some(Request::Inline {
                    consumed,
                    arguments,
                })) => {
                    decoded.push(if arguments.is_empty() {
                        Decoded::Ignored
                    } else {
                        Decoded::Command(arguments)
                    });
                    buffer.drain(..consumed);
                }
                Ok(Some(Request::Empty { consumed })) => {
                    decoded.push(Decoded::Ignored);
                    buffer.drain(..consumed);
                }
                Err(error) => {
                    decoded.push(Decoded::Error(error.0));
                    return decoded;
                }
            }
        }
    }
    decoded
}

/// Any bytes, any split: the same outcome as fed whole, under both sets of limits.
pub fn resp_any_split_decodes_the_same(stream: &[u8], cuts: &[usize]) {
    for limits in [DecodeLimits::AUTHENTICATED, DecodeLimits::UNAUTHENTICATED] {
        let whole = decode_in_chunks(stream, &[], limits);
        let split = decode_in_chunks(stream, cuts, limits);
        assert_eq!(
            whole, split,
            "split at {cuts:?} decodes differently from the whole stream"
        );
        let byte_by_byte: Vec<usize> = (0..stream.len()).collect();
        if stream.len() <= 512 {
            assert_eq!(whole, decode_in_chunks(stream, &byte_by_byte, limits));
        }
    }
}

/// Encoding commands as a client does and decoding them gives them back, whatever the split.
pub fn resp_round_trip(commands: &[Vec<Vec<u8>>], cuts: &[usize]) {
    let commands: Vec<&Vec<Vec<u8>>> = commands
        .iter()
        .filter(|command| !command.is_empty())
        .collect();
    let mut stream = Vec::new();
    for command in &commands {
        let arguments: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
        encode_request(&arguments, &mut stream);
    }
    let decoded = decode_in_chunks(&stream, cuts, DecodeLimits::AUTHENTICATED);
    let expected: Vec<Decoded> = commands
        .iter()
        .map(|command| Decoded::Command(command.to_vec()))
        .collect();
    assert_eq!(decoded, expected);
}

/// Any bytes, as a file or after a good header: the scan and the payload decoder never panic, and what
/// the scan yields lies inside the good prefix.
pub fn log_arbitrary_bytes(bytes: &[u8]) {
    let mut with_header = file_header(1).to_vec();
    with_header.extend_from_slice(bytes);
    for file in [bytes, with_header.as_slice()] {
        let (records, verdict) = scan(file);
        assert!(verdict.good_length() as usize <= file.len());
        for record in &records {
            assert!(record.end_offset() <= verdict.good_length());
            let _ = decode_payload(record.payload);
        }
    }
    let _ = decode_payload(bytes);
}

/// One record's content: the clock and the commands.
pub type RecordContent = (u64, Vec<Vec<Vec<u8>>>);

/// Records encoded into a log file scan back the same, and a cut at any byte keeps a prefix of them and
/// is judged a torn tail (or clean at a record boundary), never corruption.
pub fn log_round_trip_and_every_cut(records: &[RecordContent]) {
    let records: Vec<&RecordContent> = records
        .iter()
        .filter(|(_, commands)| !commands.is_empty() && commands.iter().all(|c| !c.is_empty()))
        .collect();
    let mut file = file_header(1).to_vec();
    let mut ends = Vec::new();
    for (index, (now_ms, commands)) in records.iter().enumerate() {
        let mut payload = Vec::new();
        encode_payload(&mut payload, *now_ms, commands);
        encode_record(&mut file, index as u64 + 1, &payload);
        ends.push(file.len());
    }
    let (scanned, verdict) = scan(&file);
    assert_eq!(
        verdict,
        ScanVerdict::Clean {
            end_offset: file.len() as u64,
            reserved_bytes: 0
        }
    );
    assert_eq!(scanned.len(), records.len());
    for (record, (now_ms, commands)) in scanned.iter().zip(&records) {
        let payload = decode_payload(record.payload).expect("a written payload decodes");
        assert_eq!(payload.now_ms, *now_ms);
        let decoded: Vec<Vec<Vec<u8>>> = payload
            .commands
            .iter()
            .map(|command| command.iter().map(|argument| argument.to_vec()).collect())
            .collect();
        assert_eq!(&decoded, commands);
    }
    for cut in FILE_HEADER_SIZE..file.len() {
        let (kept, verdict) = scan(&file[..cut]);
        let whole_records = ends.iter().filter(|end| **end <= cut).count();
        assert_eq!(kept.len(), whole_records, "cut at {cut}");
        let at_boundary = cut == FILE_HEADER_SIZE || ends.contains(&cut);
        let judged_right = match verdict {
            ScanVerdict::Clean { .. } => at_boundary,
            ScanVerdict::TornTail { .. } => !at_boundary,
            // A payload that itself holds a whole valid record (a value that is a dibs log) makes the
            // scanner refuse instead of cut: the documented, safe way to be wrong. Random bytes do not.
            ScanVerdict::Corrupt { .. } => false,
        };
        assert!(judged_right, "cut at {cut}: {verdict}");
    }
}
