//! Reference for shaders/conv.wgsl: im2col and col2im over NHWC images (conv = im2col · kernelᵀ,
//! with the kernel stored (F, KH, KW, C); the matmul is src/cpu/matmul.rs).
//!
//! For one output pixel and one kernel row, the KW taps read KW neighbouring input pixels of C
//! values each: one contiguous run of the input, clipped where it leaves the image. Both
//! functions walk those runs.

use super::Real;
use crate::graph::ops::Window;

/// Every (output pixel, kernel row) with a run inside the image: the offset of the row's
/// KW·C values in the im2col matrix, the taps `j0..j1` that fall inside, and the input offset
/// of tap `j0`. Rows outside the image and taps `..j0`, `j1..` are padding.
fn runs(g: &Window, mut f: impl FnMut(usize, usize, usize, Option<usize>)) {
    let row_len = g.kw * g.c;
    for b in 0..g.batch {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let row = (b * g.oh + oy) * g.ow + ox;
                // Taps j with 0 ≤ ox·sw + j − pad_left < w.
                let x0 = (ox * g.sw) as isize - g.pad_left as isize;
                let j0 = (-x0).max(0) as usize;
                let j1 = ((g.w as isize - x0).min(g.kw as isize)).max(j0 as isize) as usize;
                for i in 0..g.kh {
                    let at = row * g.patch() + i * row_len;
                    let y = (oy * g.sh + i) as isize - g.pad_top as isize;
                    let pixel = (0..g.h as isize)
                        .contains(&y)
                        .then(|| ((b * g.h + y as usize) * g.w + (x0 + j0 as isize) as usize) * g.c);
                    f(at, j0, j1, pixel.filter(|_| j1 > j0));
                }
            }
        }
    }
}

/// cols (B·OH·OW, KH·KW·C) from x (B, H, W, C); taps outside the image are 0.
pub fn im2col<F: Real>(g: &Window, x: &[F], cols: &mut [F]) {
    let c = g.c;
    runs(g, |at, j0, j1, pixel| {
        let dst = &mut cols[at..at + g.kw * c];
        match pixel {
            Some(p) => {
                dst[..j0 * c].fill(F::zero());
                dst[j0 * c..j1 * c].copy_from_slice(&x[p..p + (j1 - j0) * c]);
                dst[j1 * c..].fill(F::zero());
            }
            None => dst.fill(F::zero()),
        }
    });
}

/// dx (B, H, W, C) = the sum of dcols (B·OH·OW, KH·KW·C) over every (output pixel, tap) that
/// read it, added in im2col order.
pub fn col2im<F: Real>(g: &Window, dcols: &[F], dx: &mut [F]) {
    dx.fill(F::zero());
    let c = g.c;
    runs(g, |at, j0, j1, pixel| {
        if let Some(p) = pixel {
            let src = &dcols[at + j0 * c..at + j1 * c];
            for (d, s) in dx[p..p + (j1 - j0) * c].iter_mut().zip(src) {
                *d += *s;
            }
        }
    });
}
