//! Commands encoded as a client sends them decode back to the same commands, whatever the split. The
//! input is cut into commands at 0xFF bytes and into arguments at 0xFE bytes.
#![no_main]

#[path = "../../tests/properties/mod.rs"]
mod properties;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let commands: Vec<Vec<Vec<u8>>> = data
        .split(|byte| *byte == 0xFF)
        .map(|command| {
            command
                .split(|byte| *byte == 0xFE)
                .map(<[u8]>::to_vec)
                .collect()
        })
        .collect();
    let cuts: Vec<usize> = data.iter().take(8).map(|byte| *byte as usize * 3).collect();
    properties::resp_round_trip(&commands, &cuts);
});
