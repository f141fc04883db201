//! The log scanner and the payload decoder on any bytes, alone and after a good file header: never
//! panic, and every record yielded lies inside the good prefix.
#![no_main]

#[path = "../../tests/properties/mod.rs"]
mod properties;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    properties::log_arbitrary_bytes(data);
});
