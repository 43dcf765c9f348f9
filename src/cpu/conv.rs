//! Reference for shaders/conv.wgsl: im2col and col2im over NHWC images (conv = im2col · kernelᵀ,
//! with the kernel stored (F, KH, KW, C); the matmul is src/cpu/matmul.rs).

use super::Real;
use crate::graph::ops::Window;

/// The input pixel under output (oy, ox) and tap (i, j), if it is inside the image.
fn tap(g: &Window, oy: usize, ox: usize, i: usize, j: usize) -> Option<(usize, usize)> {
    let y = (oy * g.sh + i).checked_sub(g.pad_top)?;
    let x = (ox * g.sw + j).checked_sub(g.pad_left)?;
    (y < g.h && x < g.w).then_some((y, x))
}

/// cols (B·OH·OW, KH·KW·C) from x (B, H, W, C); taps outside the image are 0.
pub fn im2col<F: Real>(g: &Window, x: &[F], cols: &mut [F]) {
    let mut row = cols.chunks_exact_mut(g.patch());
    for b in 0..g.batch {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let out = row.next().unwrap();
                for i in 0..g.kh {
                    for j in 0..g.kw {
                        let dst = &mut out[(i * g.kw + j) * g.c..][..g.c];
                        match tap(g, oy, ox, i, j) {
                            Some((y, x_)) => {
                                dst.copy_from_slice(&x[((b * g.h + y) * g.w + x_) * g.c..][..g.c])
                            }
                            None => dst.fill(F::zero()),
                        }
                    }
                }
            }
        }
    }
}

/// dx (B, H, W, C) = the sum of dcols (B·OH·OW, KH·KW·C) over every (output pixel, tap) that read it.
pub fn col2im<F: Real>(g: &Window, dcols: &[F], dx: &mut [F]) {
    dx.fill(F::zero());
    let mut row = dcols.chunks_exact(g.patch());
    for b in 0..g.batch {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let src = row.next().unwrap();
                for i in 0..g.kh {
                    for j in 0..g.kw {
                        if let Some((y, x)) = tap(g, oy, ox, i, j) {
                            let dst = &mut dx[((b * g.h + y) * g.w + x) * g.c..][..g.c];
                            for (d, s) in dst.iter_mut().zip(&src[(i * g.kw + j) * g.c..]) {
                                *d += *s;
                            }
                        }
                    }
                }
            }
        }
    }
}
