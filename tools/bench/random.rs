//! Seeded randomness for the load: a SplitMix64 generator (small, fast, and the same sequence for the same
//! seed on every machine, so a failing run can be replayed with `--seed`) and a Zipf sampler for "a few
//! posts get most of the likes".

/// SplitMix64: one 64-bit state, passes BigCrush, more than good enough to pick keys.
#[derive(Clone, Debug)]
pub struct Random {
    state: u64,
}

impl Random {
    pub fn new(seed: u64) -> Random {
        Random { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// Uniform in `0..bound`; `bound` must be positive.
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "an empty range has nothing to pick");
        // Multiply-shift keeps the bias below 2^-64 * bound, invisible at these sizes.
        ((self.next_u64() as u128 * bound as u128) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with the given probability.
    pub fn chance(&mut self, probability: f64) -> bool {
        self.unit() < probability
    }
}

/// Zipf over ranks `1..=count`: rank k is drawn with weight 1 / k^exponent. Sampling is a binary search
/// in the cumulative table, exact for any exponent.
#[derive(Clone, Debug)]
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    pub fn new(count: u64, exponent: f64) -> Zipf {
        assert!(count > 0, "Zipf needs at least one rank");
        let mut cumulative = Vec::with_capacity(count as usize);
        let mut total = 0.0;
        for rank in 1..=count {
            total += 1.0 / (rank as f64).powf(exponent);
            cumulative.push(total);
        }
        for weight in &mut cumulative {
            *weight /= total;
        }
        Zipf { cumulative }
    }

    /// A rank in `1..=count`; rank 1 is the most popular.
    pub fn sample(&self, random: &mut Random) -> u64 {
        let target = random.unit();
        let index = self.cumulative.partition_point(|&weight| weight <= target);
        index.min(self.cumulative.len() - 1) as u64 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut first = Random::new(7);
        let mut second = Random::new(7);
        for _ in 0..100 {
            assert_eq!(first.next_u64(), second.next_u64());
        }
    }

    #[test]
    fn below_stays_in_range() {
        let mut random = Random::new(1);
        for _ in 0..10_000 {
            assert!(random.below(3) < 3);
            let unit = random.unit();
            assert!((0.0..1.0).contains(&unit));
        }
    }

    #[test]
    fn zipf_favours_low_ranks() {
        let zipf = Zipf::new(100, 1.0);
        let mut random = Random::new(3);
        let mut counts = [0u32; 101];
        for _ in 0..100_000 {
            let rank = zipf.sample(&mut random);
            assert!((1..=100).contains(&rank));
            counts[rank as usize] += 1;
        }
        // With exponent 1, rank 1 is drawn twice as often as rank 2 and ten times as often as rank 10.
        let ratio = counts[1] as f64 / counts[2] as f64;
        assert!((1.8..2.2).contains(&ratio), "rank1/rank2 = {ratio}");
        assert!(counts[1] > 8 * counts[10]);
    }
}
