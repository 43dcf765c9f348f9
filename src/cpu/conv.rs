//! Reference for shaders/conv.wgsl: im2col and col2im over NHWC images (conv = im2col · kernelᵀ,
//! with the kernel stored (F, KH, KW, C); the matmul is src/cpu/matmul.rs).

use super::Real;
use crate::graph::ops::Window;

/// Every (output pixel, kernel tap) in im2col order: the offset of its C values in the im2col
/// matrix, and the offset of the input pixel it reads, or `None` for a tap in the padding.
fn taps(g: &Window) -> impl Iterator<Item = (usize, Option<usize>)> + '_ {
    let pixels =
        (0..g.batch).flat_map(move |b| (0..g.oh).flat_map(move |oy| (0..g.ow).map(move |ox| (b, oy, ox))));
    pixels.enumerate().flat_map(move |(row, (b, oy, ox))| {
        (0..g.kh).flat_map(move |i| {
            (0..g.kw).map(move |j| {
                let y = (oy * g.sh + i).checked_sub(g.pad_top).filter(|&y| y < g.h);
                let x = (ox * g.sw + j).checked_sub(g.pad_left).filter(|&x| x < g.w);
                let pixel = y.zip(x).map(|(y, x)| ((b * g.h + y) * g.w + x) * g.c);
                (row * g.patch() + (i * g.kw + j) * g.c, pixel)
            })
        })
    })
}

/// cols (B·OH·OW, KH·KW·C) from x (B, H, W, C); taps outside the image are 0.
pub fn im2col<F: Real>(g: &Window, x: &[F], cols: &mut [F]) {
    for (at, pixel) in taps(g) {
        let dst = &mut cols[at..at + g.c];
        match pixel {
            Some(p) => dst.copy_from_slice(&x[p..p + g.c]),
            None => dst.fill(F::zero()),
        }
    }
}

/// dx (B, H, W, C) = the sum of dcols (B·OH·OW, KH·KW·C) over every (output pixel, tap) that read it.
pub fn col2im<F: Real>(g: &Window, dcols: &[F], dx: &mut [F]) {
    dx.fill(F::zero());
    for (at, pixel) in taps(g) {
        if let Some(p) = pixel {
            for (d, s) in dx[p..p + g.c].iter_mut().zip(&dcols[at..at + g.c]) {
                *d += *s;
            }
        }
    }
}
