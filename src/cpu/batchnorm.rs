//! Reference for shaders/batchnorm.wgsl: batch normalization over the last axis, Keras style
//! (biased batch variance; moving averages with momentum; ε inside the square root).

use ndarray::{ArrayView1, ArrayView2, Axis};

use super::Real;

/// mean and var (cols) of x (rows, cols), the variance biased (divided by rows); and
/// moving ← moving · momentum + statistic · (1 − momentum).
#[allow(clippy::too_many_arguments)]
pub fn stats<F: Real>(
    x: &[F],
    rows: usize,
    cols: usize,
    momentum: f32,
    mean: &mut [F],
    var: &mut [F],
    moving_mean: &mut [F],
    moving_var: &mut [F],
) {
    let x = ArrayView2::from_shape((rows, cols), x).unwrap();
    let (n, momentum) = (F::of(rows as f64), F::of(momentum as f64));
    let one_minus = F::of((1.0 - momentum.to_f64().unwrap()) as f32 as f64);
    for (col, column) in x.axis_iter(Axis(1)).enumerate() {
        let m = column.sum() / n;
        let v = column.mapv(|v| (v - m) * (v - m)).sum() / n;
        mean[col] = m;
        var[col] = v;
        moving_mean[col] = moving_mean[col] * momentum + m * one_minus;
        moving_var[col] = moving_var[col] * momentum + v * one_minus;
    }
}

/// y = x · inv + (beta − mean · inv) with inv = gamma / sqrt(var + eps), per column (TensorFlow's form).
#[allow(clippy::too_many_arguments)]
pub fn apply<F: Real>(
    x: &[F],
    mean: &[F],
    var: &[F],
    gamma: &[F],
    beta: &[F],
    cols: usize,
    eps: f32,
    y: &mut [F],
) {
    let eps = F::of(eps as f64);
    for (xr, yr) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        for j in 0..cols {
            let inv = gamma[j] / (var[j] + eps).sqrt();
            yr[j] = xr[j] * inv + (beta[j] - mean[j] * inv);
        }
    }
}

/// dbeta = Σ dy, dgamma = Σ dy · xhat, and dx = gamma/σ/N · (N·dy − dbeta − xhat · dgamma).
#[allow(clippy::too_many_arguments)]
pub fn backward<F: Real>(
    x: &[F],
    dy: &[F],
    mean: &[F],
    var: &[F],
    gamma: &[F],
    rows: usize,
    cols: usize,
    eps: f32,
    dx: Option<&mut [F]>,
    dgamma: &mut [F],
    dbeta: &mut [F],
) {
    let eps = F::of(eps as f64);
    let x = ArrayView2::from_shape((rows, cols), x).unwrap();
    let dy = ArrayView2::from_shape((rows, cols), dy).unwrap();
    let inv_std = ArrayView1::from(var).mapv(|v| F::one() / (v + eps).sqrt());
    let xhat = (&x - &ArrayView1::from(mean)) * &inv_std;
    dbeta.copy_from_slice(dy.sum_axis(Axis(0)).as_slice().unwrap());
    dgamma.copy_from_slice((&dy * &xhat).sum_axis(Axis(0)).as_slice().unwrap());
    if let Some(dx) = dx {
        let n = F::of(rows as f64);
        for (r, out) in dx.chunks_exact_mut(cols).enumerate() {
            for (j, o) in out.iter_mut().enumerate() {
                *o = gamma[j] * inv_std[j] / n * (n * dy[[r, j]] - dbeta[j] - xhat[[r, j]] * dgamma[j]);
            }
        }
    }
}
