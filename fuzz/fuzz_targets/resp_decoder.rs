//! The RESP request decoder on any bytes: never panics, and any split of the stream into reads decodes
//! the same as the whole. The first bytes choose the split points; the rest is the stream.
#![no_main]

#[path = "../../tests/properties/mod.rs"]
mod properties;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (cuts, stream) = data.split_at(data.len().min(4));
    let cuts: Vec<usize> = cuts.iter().map(|cut| *cut as usize * 7).collect();
    properties::resp_any_split_decodes_the_same(stream, &cuts);
});
