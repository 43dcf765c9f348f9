//! Reference for shaders/optimizer.wgsl: L2 regularization and the updates, as Keras 3 writes them.

use super::Real;
use crate::graph::ops::Optimizer;

/// c · Σ w², the penalty Keras adds to the loss. The sum runs in 8 interleaved lanes (lane i
/// takes elements i, i + 8, …), then adds the lanes: a vectorizable order, like the kernel's
/// tree, rather than one long chain.
pub fn l2_penalty<F: Real>(w: &[F], c: f32) -> F {
    let mut lanes = [F::zero(); 8];
    let chunks = w.chunks_exact(8);
    let tail = chunks.remainder().iter().fold(F::zero(), |s, &v| s + v * v);
    for chunk in chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += v * v;
        }
    }
    F::of(c as f64) * (lanes.iter().fold(F::zero(), |s, &l| s + l) + tail)
}

/// g += 2c · w, the penalty's gradient.
pub fn l2_grad<F: Real>(w: &[F], g: &mut [F], c: f32) {
    let c2 = F::of((2.0 * c) as f64);
    for (g, &w) in g.iter_mut().zip(w) {
        *g += c2 * w;
    }
}

/// One update of w from g at the step's `rate` (see `Optimizer::step_rates`: SGD's learning rate,
/// Adam's bias-corrected one); `m` is SGD's velocity or Adam's first moment, `v` Adam's second.
/// A nonzero `decay` (lr·weight_decay) first shrinks w by w·decay: decoupled weight decay, as
/// Keras 3 applies it before the step (AdamW).
pub fn update(
    opt: &Optimizer,
    w: &mut [f32],
    g: &[f32],
    m: Option<&mut [f32]>,
    v: Option<&mut [f32]>,
    rate: f32,
    decay: f32,
) {
    if decay != 0.0 {
        for w in w.iter_mut() {
            *w -= *w * decay;
        }
    }
    match *opt {
        Optimizer::Sgd { momentum: 0.0, .. } => {
            for (w, &g) in w.iter_mut().zip(g) {
                *w -= g * rate;
            }
        }
        Optimizer::Sgd { momentum, nesterov, .. } => {
            let m = m.expect("SGD with momentum needs its velocity");
            for ((w, &g), vel) in w.iter_mut().zip(g).zip(m) {
                *vel = *vel * momentum - g * rate;
                *w += if nesterov { *vel * momentum - g * rate } else { *vel };
            }
        }
        Optimizer::Adam { beta1, beta2, eps, .. } => {
            let (m, v) = (m.expect("Adam needs m"), v.expect("Adam needs v"));
            let alpha = rate;
            for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m).zip(v) {
                *m += (g - *m) * (1.0 - beta1);
                *v += (g * g - *v) * (1.0 - beta2);
                *w -= *m * alpha / (v.sqrt() + eps);
            }
        }
    }
}
