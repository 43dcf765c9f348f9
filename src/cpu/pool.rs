//! Reference for shaders/pool.wgsl: max and average pooling over NHWC images, Keras semantics
//! (windows clipped to the image; average over the cells inside; ties go to the first maximum
//! in row-major window order). The loops run over whole pixels, C channels at a time.

use super::Real;
use crate::graph::ops::Window;

/// Every output pixel (b, oy, ox) in order, with the flat offsets in x of its window's pixels
/// inside the image, in row-major window order (`cells` is reused between pixels).
fn windows(g: &Window, mut f: impl FnMut(usize, &[usize])) {
    let mut cells = Vec::with_capacity(g.kh * g.kw);
    for b in 0..g.batch {
        for oy in 0..g.oh {
            let y0 = (oy * g.sh) as isize - g.pad_top as isize;
            let ys = y0.max(0) as usize..((y0 + g.kh as isize).min(g.h as isize)).max(0) as usize;
            for ox in 0..g.ow {
                let x0 = (ox * g.sw) as isize - g.pad_left as isize;
                let xs = x0.max(0) as usize..((x0 + g.kw as isize).min(g.w as isize)).max(0) as usize;
                cells.clear();
                for y in ys.clone() {
                    cells.extend(xs.clone().map(|x| ((b * g.h + y) * g.w + x) * g.c));
                }
                f((b * g.oh + oy) * g.ow + ox, &cells);
            }
        }
    }
}

/// y (B, OH, OW, C) = window maxima; argmax = the flat index in x of the first maximum.
pub fn max_forward<F: Real>(g: &Window, x: &[F], y: &mut [F], argmax: &mut [u32]) {
    let c = g.c;
    windows(g, |o, cells| {
        let (best, arg) = (&mut y[o * c..(o + 1) * c], &mut argmax[o * c..(o + 1) * c]);
        let first = cells[0];
        best.copy_from_slice(&x[first..first + c]);
        for (ci, a) in arg.iter_mut().enumerate() {
            *a = (first + ci) as u32;
        }
        for &p in &cells[1..] {
            for (ci, (&v, (b, a))) in x[p..p + c].iter().zip(best.iter_mut().zip(arg.iter_mut())).enumerate()
            {
                if v > *b {
                    *b = v;
                    *a = (p + ci) as u32;
                }
            }
        }
    });
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
    let c = g.c;
    windows(g, |o, cells| {
        let out = &mut y[o * c..(o + 1) * c];
        out.fill(F::zero());
        for &p in cells {
            for (s, &v) in out.iter_mut().zip(&x[p..p + c]) {
                *s += v;
            }
        }
        let n = F::of(cells.len() as f64);
        for s in out.iter_mut() {
            *s = *s / n;
        }
    });
}

/// dx = each dy shared equally among its window's cells.
pub fn avg_backward<F: Real>(g: &Window, dy: &[F], dx: &mut [F]) {
    dx.fill(F::zero());
    let c = g.c;
    windows(g, |o, cells| {
        let n = F::of(cells.len() as f64);
        for &p in cells {
            for (d, &v) in dx[p..p + c].iter_mut().zip(&dy[o * c..(o + 1) * c]) {
                *d += v / n;
            }
        }
    });
}
