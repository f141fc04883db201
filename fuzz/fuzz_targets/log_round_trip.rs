//! Records written and scanned back are the same, and the file cut at any byte (a crash) keeps a prefix
//! of them as a torn tail, never corruption. The input is cut into records at 0xFF, commands at 0xFE and
//! arguments at 0xFD; a record's first byte is its clock.
#![no_main]

#[path = "../../tests/properties/mod.rs"]
mod properties;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let records: Vec<properties::RecordContent> = data
        .split(|byte| *byte == 0xFF)
        .take(8)
        .map(|record| {
            let now_ms = record.first().copied().unwrap_or(0) as u64;
            let commands = record
                .split(|byte| *byte == 0xFE)
                .map(|command| {
                    command
                        .split(|byte| *byte == 0xFD)
                        .map(<[u8]>::to_vec)
                        .collect()
                })
                .collect();
            (now_ms, commands)
        })
        .collect();
    properties::log_round_trip_and_every_cut(&records);
});
