//! Where start-up time goes when loading a snapshot: verifying, decoding values, inserting keys (on one
//! thread; start-up itself inserts with one loader per core).
//! Usage: cargo run --release --example snapshot_load_timing -- FILE.snap
use std::time::Instant;

use dibs::compaction::snapshot_entries::read_snapshot;
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
    // One loader owning every shard: start-up's insert path on a single thread.
    let mut loaders = store
        .keyspace
        .shard_loaders(1, summary.entry_count as usize);
    let loader = &mut loaders[0];
    read_snapshot(&bytes, |entry| {
        let value = decode_value(entry.tag, entry.value)?;
        let hash = loader.owns(entry.key).expect("one loader owns every shard");
        loader.load_entry(entry.key, hash, value, entry.expires_at_ms)
    })
    .expect("valid");
    store.keyspace.install(loaders);
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
