//! Loads likes into a running server over the network and reports its resident memory growth: the memory
//! half of the likes benchmark (README, Performance). The same fixed stream goes to any server:
//! `likes` likes, Zipf (s = 1) over `posts` posts named `post:N`, integer user ids 1..=50,000,000, sent as
//! `LIKE.ADD post user` to dibs or `SADD post user` to Redis in pipelines of 10,000.
//!
//! cargo run --release --example likes_load -- PORT LIKE.ADD|SADD [likes] [posts]
//!
//! Memory is `used_memory_rss` from `INFO memory` before and after (both servers report it from the
//! kernel's resident set size).

#[path = "support/like_stream.rs"]
mod like_stream;

use like_stream::LikeStream;
use redis::Connection;

const PIPELINE_COMMANDS: usize = 10_000;

fn resident_bytes(connection: &mut Connection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(connection)
        .expect("INFO memory");
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory_rss:"))
        .expect("used_memory_rss in INFO")
        .trim()
        .parse()
        .expect("a number")
}

fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let port: u16 = arguments
        .first()
        .expect("usage: likes_load PORT LIKE.ADD|SADD [likes] [posts]")
        .parse()
        .expect("a port");
    let command = arguments.get(1).map_or("LIKE.ADD", String::as_str);
    let likes_total: usize = arguments.get(2).map_or(2_000_000, |a| a.parse().unwrap());
    let posts: usize = arguments.get(3).map_or(20_000, |a| a.parse().unwrap());

    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
    let mut connection = client.get_connection().expect("connect");

    // The fixed stream of examples/support/like_stream.rs, the same one likes_memory measures.
    let mut stream = LikeStream::new(posts);
    let before = resident_bytes(&mut connection);
    let started = std::time::Instant::now();
    let mut sent = 0;
    while sent < likes_total {
        let mut pipeline = redis::pipe();
        let batch = PIPELINE_COMMANDS.min(likes_total - sent);
        for _ in 0..batch {
            let (post, user) = stream.next_like();
            pipeline
                .cmd(command)
                .arg(format!("post:{post}"))
                .arg(user)
                .ignore();
        }
        let _: () = pipeline.query(&mut connection).expect("pipeline");
        sent += batch;
    }
    let elapsed = started.elapsed();
    let after = resident_bytes(&mut connection);

    // What the server holds: the sum of the posts' sizes.
    let mut pipeline = redis::pipe();
    for post in 0..posts {
        let name = format!("post:{post}");
        if command.eq_ignore_ascii_case("SADD") {
            pipeline.cmd("SCARD").arg(name);
        } else {
            pipeline.cmd("LIKE.COUNT").arg(name);
        }
    }
    let stored: u64 = if command.eq_ignore_ascii_case("SADD") {
        let counts: Vec<u64> = pipeline.query(&mut connection).expect("SCARD");
        counts.iter().sum()
    } else {
        let counts: Vec<Vec<u64>> = pipeline.query(&mut connection).expect("LIKE.COUNT");
        counts.iter().flatten().sum()
    };
    let growth = after.saturating_sub(before);
    println!(
        "{command}: sent {sent} in {:.1} s, stored {stored}; used_memory_rss {before} -> {after}: \
         growth {growth} bytes, {:.2} bytes per like",
        elapsed.as_secs_f64(),
        growth as f64 / stored as f64
    );
}
