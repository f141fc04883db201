//! The longest single LIKE.REMOVE on a big post, the one that compacts its order log (one linear pass;
//! not yet bounded). cargo run --release --example likes_compact_pause [likes]
use dibs::store::likes::Likes;

fn main() {
    let likes_total: u32 = std::env::args()
        .nth(1)
        .map_or(1_000_000, |a| a.parse().expect("a count"));
    let mut likes = Likes::new();
    for user in 0..likes_total {
        likes
            .add(
                ((user as u64 * 2_654_435_761) % 50_000_000)
                    .to_string()
                    .as_bytes(),
            )
            .expect("valid");
    }
    let mut longest = std::time::Duration::ZERO;
    for user in 0..likes_total / 3 {
        let id = ((user as u64 * 2_654_435_761) % 50_000_000).to_string();
        let started = dibs::memory::thread_cpu_time();
        likes.remove(id.as_bytes());
        longest = longest.max(dibs::memory::thread_cpu_time() - started);
    }
    println!(
        "{likes_total} likes, a third removed: longest LIKE.REMOVE {:.3} CPU ms",
        longest.as_secs_f64() * 1e3
    );
}
