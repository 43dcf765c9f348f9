//! Reference for shaders/pool.wgsl: max and average pooling over NHWC images, Keras semantics
//! (windows clipped to the image; average over the cells inside; ties go to the first maximum).

use super::Real;
use crate::graph::ops::Window;

/// Flat indices into x of the cells of output (b, oy, ox, ci)'s window, in row-major window order.
fn cells(g: &Window, b: usize, oy: usize, ox: usize, ci: usize) -> impl Iterator<Item = usize> + '_ {
    let y0 = (oy * g.sh) as isize - g.pad_top as isize;
    let x0 = (ox * g.sw) as isize - g.pad_left as isize;
    let ys = y0.max(0) as usize..((y0 + g.kh as isize).min(g.h as isize)) as usize;
    let xs = x0.max(0) as usize..((x0 + g.kw as isize).min(g.w as isize)) as usize;
    ys.flat_map(move |y| xs.clone().map(move |x| ((b * g.h + y) * g.w + x) * g.c + ci))
}

/// Every output cell (b, oy, ox, ci) in the order of its flat index.
fn outputs(g: &Window) -> impl Iterator<Item = (usize, usize, usize, usize)> + '_ {
    (0..g.batch).flat_map(move |b| {
        (0..g.oh).flat_map(move |oy| (0..g.ow).flat_map(move |ox| (0..g.c).map(move |ci| (b, oy, ox, ci))))
    })
}

/// y (B, OH, OW, C) = window maxima; argmax = the flat index in x of the first maximum.
pub fn max_forward<F: Real>(g: &Window, x: &[F], y: &mut [F], argmax: &mut [u32]) {
    for (o, (b, oy, ox, ci)) in outputs(g).enumerate() {
        let mut best = cells(g, b, oy, ox, ci).next().unwrap();
        for i in cells(g, b, oy, ox, ci) {
            if x[i] > x[best] {
                best = i;
            }
        }
        y[o] = x[best];
        argmax[o] = best as u32;
    }
}

/// dx = each dy sent to its window's argmax (added in output order, as the kernel does).
pub fn max_backward<F: Real>(dy: &[F], argmax: &[u32], dx: &mut [F]) {
    dx.fill(F::zero());
    for (&d, &i) in dy.iter().zip(argmax) {
        dx[i as usize] += d;
    }
}

/// y (B, OH, OW, C) = the mean of each window's cells inside the image.
pub fn avg_forward<F: Real>(g: &Window, x: &[F], y: &mut [F]) {
    for (o, (b, oy, ox, ci)) in outputs(g).enumerate() {
        let (sum, n) = cells(g, b, oy, ox, ci).fold((F::zero(), 0), |(s, n), i| (s + x[i], n + 1));
        y[o] = sum / F::of(n as f64);
    }
}

/// dx = each dy shared equally among its window's cells.
pub fn avg_backward<F: Real>(g: &Window, dy: &[F], dx: &mut [F]) {
    dx.fill(F::zero());
    for (o, (b, oy, ox, ci)) in outputs(g).enumerate() {
        let n = cells(g, b, oy, ox, ci).count();
        for i in cells(g, b, oy, ox, ci) {
            dx[i] += dy[o] / F::of(n as f64);
        }
    }
}
