//! Reference for shaders/matmul.wgsl: `c = act(op(a)·op(b) + bias)` and the bias gradient.

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2, Axis};

use super::activation::activate;
use super::Real;
use crate::graph::ops::Matmul;

/// c (m, n) = act(op(a) · op(b) + bias); see [`Matmul`] for the stored layouts. The product
/// is written straight into `c` (prefilled with the bias, added once per element after the
/// sum, as the kernel does), then the activation runs over it in place.
pub fn matmul<F: Real>(op: &Matmul, a: &[F], b: &[F], bias: Option<&[F]>, c: &mut [F]) {
    let &Matmul { m, n, k, .. } = op;
    let a = if op.trans_a {
        ArrayView2::from_shape((k, m), a).unwrap().reversed_axes()
    } else {
        ArrayView2::from_shape((m, k), a).unwrap()
    };
    let b = if op.trans_b {
        ArrayView2::from_shape((n, k), b).unwrap().reversed_axes()
    } else {
        ArrayView2::from_shape((k, n), b).unwrap()
    };
    let mut out = ArrayViewMut2::from_shape((m, n), c).unwrap();
    let beta = match bias {
        Some(bias) => {
            for mut row in out.rows_mut() {
                row.as_slice_mut().unwrap().copy_from_slice(bias);
            }
            F::one()
        }
        None => F::zero(),
    };
    general_mat_mul(F::one(), &a, &b, beta, &mut out);
    if op.act != crate::graph::ops::Act::Linear {
        for v in out.iter_mut() {
            *v = activate(op.act, *v);
        }
    }
}

/// db (cols) = Σ over rows of dy (rows, cols).
pub fn bias_grad<F: Real>(dy: &[F], rows: usize, cols: usize, db: &mut [F]) {
    let sums = ArrayView2::from_shape((rows, cols), dy).unwrap().sum_axis(Axis(0));
    db.copy_from_slice(sums.as_slice().unwrap());
}
