//! LIKE.ADD work at the benchmark's shape, without the network: applies the benchmark's stream of likes
//! (2 million stored likes, Zipf (s = 1) over 20,000 posts, integer user ids up to 50 million) to `Likes`
//! directly, so that instruction and cache-miss counts of the membership search can be compared between
//! builds deterministically:
//!
//! valgrind --tool=callgrind --cache-sim=yes target/release/examples/likes_add_speed
//!
//! It prints the thread's CPU time for the adds and for the same lookups again (take medians of several
//! runs). cargo run --release --example likes_add_speed [likes] [posts]

#[path = "support/like_stream.rs"]
mod like_stream;

use dibs::store::likes::Likes;
use like_stream::LikeStream;

fn main() {
    let mut arguments = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().expect("a count"));
    let likes_total = arguments.next().unwrap_or(2_000_000);
    let posts = arguments.next().unwrap_or(20_000);

    // The stream is generated up front so the timed loop is only the adds.
    let mut stream = LikeStream::new(posts);
    let mut likes_to_add = Vec::new();
    let mut posts_likes: Vec<Likes> = (0..posts).map(|_| Likes::new()).collect();
    let mut distinct = std::collections::HashSet::new();
    while distinct.len() < likes_total {
        let (post, user) = stream.next_like();
        distinct.insert((post, user));
        likes_to_add.push((post, user.to_string()));
    }
    drop(distinct);

    let started = dibs::memory::thread_cpu_time();
    let mut stored = 0u64;
    for (post, user) in &likes_to_add {
        if posts_likes[*post]
            .add(user.as_bytes())
            .expect("valid")
            .changed
        {
            stored += 1;
        }
    }
    let elapsed = dibs::memory::thread_cpu_time() - started;
    // The same ids again: every search now finds its like (LIKE.HAS and duplicate LIKE.ADD).
    let started_again = dibs::memory::thread_cpu_time();
    let found = likes_to_add
        .iter()
        .filter(|(post, user)| posts_likes[*post].contains(user.as_bytes()))
        .count();
    let elapsed_again = dibs::memory::thread_cpu_time() - started_again;
    println!(
        "{stored} likes stored in {:.0} CPU ms ({:.0} ns a LIKE.ADD); {found} found again in {:.0} CPU ms ({:.0} ns a LIKE.HAS)",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_nanos() as f64 / likes_to_add.len() as f64,
        elapsed_again.as_secs_f64() * 1e3,
        elapsed_again.as_nanos() as f64 / likes_to_add.len() as f64,
    );
}
