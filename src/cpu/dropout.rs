//! Reference for shaders/dropout.wgsl and the counter-based generator in shaders/common.wgsl.

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

/// y = x · scale where uniform01(seed, step, i) ≥ rate, else 0 (also the backward pass, on dy).
pub fn dropout<F: super::Real>(x: &[F], y: &mut [F], rate: f32, seed: u32, step: u32) {
    let scale = F::of(keep_scale(rate) as f64);
    for (i, (y, &x)) in y.iter_mut().zip(x).enumerate() {
        *y = if uniform01(seed, step, i as u32) >= rate { x * scale } else { F::zero() };
    }
}
