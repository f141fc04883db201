//! Bytes per like at the benchmark's shape: 2 million likes, Zipf (s = 1) over 20,000 posts, integer user
//! ids up to 50 million, each post under a key like the keyspace holds it. Prints the resident memory
//! growth per like (what the benchmark compares with Redis's ~45 bytes per SADD member) and what
//! `approximate_memory_bytes` accounts for.
//!
//! cargo run --release --example likes_memory [likes] [posts]

#[path = "support/like_stream.rs"]
mod like_stream;

use dibs::store::likes::Likes;
use like_stream::LikeStream;
use std::collections::HashMap;

// The server's allocator and policy, so that heap and resident figures compare with a server's.
#[global_allocator]
static ALLOCATOR: dibs::memory::CountingAllocator = dibs::memory::CountingAllocator;

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .expect("resident field")
        .parse()
        .expect("a number");
    pages * 4096
}

fn main() {
    let mut arguments = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().expect("a count"));
    let likes_total = arguments.next().unwrap_or(2_000_000);
    let posts = arguments.next().unwrap_or(20_000);

    // A fixed xorshift stream: the measurement is repeatable.
    let mut stream = LikeStream::new(posts);
    let names: Vec<Vec<u8>> = (0..posts)
        .map(|post| format!("post:{post}").into_bytes())
        .collect();

    dibs::memory::configure_allocator();
    let before = resident_bytes();
    let heap_before = dibs::memory::allocated_bytes();
    let mut keyspace: HashMap<Vec<u8>, Likes> = HashMap::new();
    let mut stored = 0;
    let mut user = itoa_buffer();
    while stored < likes_total {
        let (post, id) = stream.next_like();
        let likes = keyspace.entry(names[post].clone()).or_default();
        if likes
            .add(format_into(&mut user, id))
            .expect("valid")
            .changed
        {
            stored += 1;
        }
    }
    let after = resident_bytes();
    let heap_after = dibs::memory::allocated_bytes();

    let accounted: usize = keyspace.values().map(Likes::approximate_memory_bytes).sum();
    let largest = keyspace.values().map(Likes::count).max().unwrap_or(0);
    println!(
        "likes: {stored} over {} posts (largest post: {largest})",
        keyspace.len()
    );
    println!(
        "resident growth: {:.2} bytes per like ({} bytes)",
        (after - before) as f64 / stored as f64,
        after - before
    );
    println!(
        "heap growth (requested bytes, the server's used_memory): {:.2} bytes per like",
        (heap_after - heap_before) as f64 / stored as f64
    );
    println!(
        "approximate_memory_bytes: {:.2} bytes per like",
        accounted as f64 / stored as f64
    );
    let mut parts: Vec<(&str, usize)> = Vec::new();
    for likes in keyspace.values() {
        for (name, bytes) in likes.memory_parts() {
            match parts.iter_mut().find(|(known, _)| *known == name) {
                Some(part) => part.1 += bytes,
                None => parts.push((name, bytes)),
            }
        }
    }
    for (name, bytes) in parts {
        println!(
            "  {name}: {:.2} bytes per like",
            bytes as f64 / stored as f64
        );
    }
}

fn itoa_buffer() -> Vec<u8> {
    Vec::with_capacity(20)
}

fn format_into(buffer: &mut Vec<u8>, value: u64) -> &[u8] {
    use std::io::Write;
    buffer.clear();
    write!(buffer, "{value}").expect("writing to a vector");
    buffer
}
