//! Reference for shaders/dropout.wgsl; its masks come from the counter-based generator in
//! src/rng.rs (`pcg_hash` in shaders/common.wgsl).

use crate::rng::{keep_scale, uniform01};

/// y = x · scale where uniform01(seed, step, i) ≥ rate, else 0 (also the backward pass, on dy).
pub fn dropout<F: super::Real>(x: &[F], y: &mut [F], rate: f32, seed: u32, step: u32) {
    let scale = F::of(keep_scale(rate) as f64);
    for (i, (y, &x)) in y.iter_mut().zip(x).enumerate() {
        *y = if uniform01(seed, step, i as u32) >= rate { x * scale } else { F::zero() };
    }
}
