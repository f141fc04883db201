//! The fixed stream of likes both likes examples use, so the in-process measurement (`likes_memory`) and
//! the over-the-network one (`likes_load`) see the same data: Zipf (s = 1) over `posts` posts, user ids
//! uniform in 1..=50,000,000, from a fixed xorshift seed so every run is the same.

pub const USER_ID_MAX: u64 = 50_000_000;

pub struct LikeStream {
    random: u64,
    /// Cumulative Zipf probabilities by post rank.
    cumulative: Vec<f64>,
}

impl LikeStream {
    pub fn new(posts: usize) -> LikeStream {
        let harmonic: f64 = (1..=posts).map(|rank| 1.0 / rank as f64).sum();
        let mut cumulative = Vec::with_capacity(posts);
        let mut sum = 0.0;
        for rank in 1..=posts {
            sum += 1.0 / rank as f64 / harmonic;
            cumulative.push(sum);
        }
        LikeStream {
            random: 0x9E37_79B9_7F4A_7C15,
            cumulative,
        }
    }

    fn next_random(&mut self) -> u64 {
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        self.random
    }

    /// The next like: (post index, user id).
    pub fn next_like(&mut self) -> (usize, u64) {
        let uniform = (self.next_random() >> 11) as f64 / (1u64 << 53) as f64;
        let post = self
            .cumulative
            .partition_point(|&c| c < uniform)
            .min(self.cumulative.len() - 1);
        let user = 1 + self.next_random() % USER_ID_MAX;
        (post, user)
    }
}
