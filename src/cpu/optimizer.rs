//! Reference for shaders/optimizer.wgsl: L2 regularization and the updates, as Keras 3 writes them.

use super::Real;
use crate::graph::ops::Optimizer;

/// c · Σ w², the penalty Keras adds to the loss.
pub fn l2_penalty<F: Real>(w: &[F], c: f32) -> F {
    F::of(c as f64) * w.iter().map(|&v| v * v).sum::<F>()
}

/// g += 2c · w, the penalty's gradient.
pub fn l2_grad<F: Real>(w: &[F], g: &mut [F], c: f32) {
    let c2 = F::of((2.0 * c) as f64);
    for (g, &w) in g.iter_mut().zip(w) {
        *g += c2 * w;
    }
}

/// One update of w from g. `step` is the number of updates before this one (Adam's t − 1);
/// `m` is SGD's velocity or Adam's first moment, `v` Adam's second moment.
pub fn update(
    opt: &Optimizer,
    w: &mut [f32],
    g: &[f32],
    m: Option<&mut [f32]>,
    v: Option<&mut [f32]>,
    step: u32,
) {
    match *opt {
        Optimizer::Sgd { lr, momentum: 0.0, .. } => {
            for (w, &g) in w.iter_mut().zip(g) {
                *w -= g * lr;
            }
        }
        Optimizer::Sgd { lr, momentum, nesterov } => {
            let m = m.expect("SGD with momentum needs its velocity");
            for ((w, &g), vel) in w.iter_mut().zip(g).zip(m) {
                *vel = *vel * momentum - g * lr;
                *w += if nesterov { *vel * momentum - g * lr } else { *vel };
            }
        }
        Optimizer::Adam { lr, beta1, beta2, eps } => {
            let (m, v) = (m.expect("Adam needs m"), v.expect("Adam needs v"));
            let t = (step + 1) as f32;
            let alpha = lr * (1.0 - beta2.powf(t)).sqrt() / (1.0 - beta1.powf(t));
            for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m).zip(v) {
                *m += (g - *m) * (1.0 - beta1);
                *v += (g * g - *v) * (1.0 - beta2);
                *w -= *m * alpha / (v.sqrt() + eps);
            }
        }
    }
}
