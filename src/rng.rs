//! A small seeded generator (SplitMix64) for weights, shuffles and test data: the same seed gives
//! the same numbers on every machine, whatever executor runs the model. And the counter-based
//! generator of dropout masks and shuffle salts (`pcg_hash`), a pure function of its input that
//! the kernels compute too (shaders/common.wgsl), so that the CPU and the GPU draw the same masks.

#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * n as f64) as usize
    }

    /// Uniform in [lo, hi] (integers).
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }

    pub fn vec(&mut self, len: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..len).map(|_| self.uniform(lo, hi)).collect()
    }

    pub fn pick<'a, X>(&mut self, items: &'a [X]) -> &'a X {
        &items[self.below(items.len())]
    }

    /// Fisher–Yates.
    pub fn shuffle<X>(&mut self, items: &mut [X]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// The output permutation of PCG (O'Neill 2014), as `pcg_hash` in shaders/common.wgsl.
pub fn pcg_hash(v: u32) -> u32 {
    let state = v.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277_803_737);
    (word >> 22) ^ word
}

/// A uniform number in [0, 1), a pure function of (seed, step, element).
pub fn uniform01(seed: u32, step: u32, element: u32) -> f32 {
    let h = pcg_hash(element ^ pcg_hash(step ^ pcg_hash(seed)));
    (h >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// The scale of kept elements, 1/(1 − rate), rounded to f32 once for both executors.
pub fn keep_scale(rate: f32) -> f32 {
    (1.0 / (1.0 - rate as f64)) as f32
}
