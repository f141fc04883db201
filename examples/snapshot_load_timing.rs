//! Where start-up time goes when loading a snapshot: verifying, decoding values, inserting keys.
//! Usage: cargo run --release --example snapshot_load_timing -- FILE.snap
use std::time::Instant;

use dibs::aof::snapshot::read_snapshot;
use dibs::store::encoding::decode_value;
use dibs::store::Store;

fn main() {
    sizes();
    let path = std::env::args().nth(1).expect("a snapshot file");
    let bytes = std::fs::read(&path).expect("readable");
    let started = Instant::now();
    let summary = read_snapshot(&bytes, |_| Ok(())).expect("valid");
    println!("verify only: {:.3} s", started.elapsed().as_secs_f64());
    let started = Instant::now();
    let mut values = 0;
    read_snapshot(&bytes, |entry| {
        decode_value(entry.tag, entry.value)?;
        values += 1;
        Ok(())
    })
    .expect("valid");
    println!("verify + decode: {:.3} s", started.elapsed().as_secs_f64());
    let started = Instant::now();
    let mut store = Store::new(1);
    store.keyspace.reserve(summary.entry_count as usize);
    let keyspace = &mut store.keyspace;
    read_snapshot(&bytes, |entry| {
        let value = decode_value(entry.tag, entry.value)?;
        keyspace.load_entry(entry.key, value, entry.expires_at_ms)
    })
    .expect("valid");
    println!(
        "verify + decode + insert: {:.3} s for {} keys",
        started.elapsed().as_secs_f64(),
        store.keyspace.len()
    );
}

fn sizes() {
    println!(
        "Value {} bytes, Entry {} bytes",
        std::mem::size_of::<dibs::store::Value>(),
        std::mem::size_of::<dibs::store::Entry>()
    );
}
