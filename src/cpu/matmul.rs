//! Reference for shaders/matmul.wgsl: `c = act(op(a)·op(b) + bias)` and the bias gradient.

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2, Axis};

use super::activation::activate;
use super::Real;
use crate::graph::ops::{Act, Matmul};

/// op(a) (m, k) and op(b) (k, n) as views of the stored layouts.
fn operands<'a, F: Real>(op: &Matmul, a: &'a [F], b: &'a [F]) -> (ArrayView2<'a, F>, ArrayView2<'a, F>) {
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
    (a, b)
}

/// c (m, n) = act(op(a) · op(b) + bias); see [`Matmul`] for the stored layouts. The product
/// is written straight into `c` (prefilled with the bias, added once per element after the
/// sum, as the kernel does), then the activation runs over it in place.
pub fn matmul<F: Real>(op: &Matmul, a: &[F], b: &[F], bias: Option<&[F]>, c: &mut [F]) {
    let (a, b) = operands(op, a, b);
    let mut out = ArrayViewMut2::from_shape((op.m, op.n), c).unwrap();
    block(op, a, b, bias, &mut out);
}

/// One block of the output: rows or columns of c from the same rows of a or columns of b.
fn block<F: Real>(
    op: &Matmul,
    a: ArrayView2<F>,
    b: ArrayView2<F>,
    bias: Option<&[F]>,
    out: &mut ArrayViewMut2<F>,
) {
    let beta = match bias {
        Some(bias) => {
            for mut row in out.rows_mut() {
                row.assign(&ndarray::ArrayView1::from(bias));
            }
            F::one()
        }
        None => F::zero(),
    };
    general_mat_mul(F::one(), &a, &b, beta, out);
    if op.act != Act::Linear {
        out.mapv_inplace(|v| activate(op.act, v));
    }
}

/// The same product as [`matmul`], its output split into one block per thread of `pool`: rows
/// when there are at least as many rows as columns, else columns. Each element is the same
/// sum in the same order as in [`matmul`], so the result is identical, bit for bit.
pub fn matmul_parallel(
    pool: &rayon::ThreadPool,
    op: &Matmul,
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    c: &mut [f32],
) {
    let (a, b) = operands(op, a, b);
    let mut out = ArrayViewMut2::from_shape((op.m, op.n), c).unwrap();
    let threads = pool.current_num_threads().max(1);
    pool.scope(|s| {
        if op.m >= op.n {
            let rows = op.m.div_ceil(threads).max(1);
            for (a, mut out) in a.axis_chunks_iter(Axis(0), rows).zip(out.axis_chunks_iter_mut(Axis(0), rows))
            {
                s.spawn(move |_| block(op, a, b, bias, &mut out));
            }
        } else {
            let cols = op.n.div_ceil(threads).max(1);
            let biases: Vec<Option<&[f32]>> = match bias {
                Some(bias) => bias.chunks(cols).map(Some).collect(),
                None => vec![None; op.n.div_ceil(cols)],
            };
            for ((b, mut out), bias) in
                b.axis_chunks_iter(Axis(1), cols).zip(out.axis_chunks_iter_mut(Axis(1), cols)).zip(biases)
            {
                s.spawn(move |_| block(op, a, b, bias, &mut out));
            }
        }
    });
}

/// db (cols) = Σ over rows of dy (rows, cols).
pub fn bias_grad<F: Real>(dy: &[F], rows: usize, cols: usize, db: &mut [F]) {
    let sums = ArrayView2::from_shape((rows, cols), dy).unwrap().sum_axis(Axis(0));
    db.copy_from_slice(sums.as_slice().unwrap());
}
