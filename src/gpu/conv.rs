//! Dispatch for shaders/conv.wgsl: im2col and col2im (reference: src/cpu/conv.rs). The
//! convolution itself is a matmul of the im2col matrix with the kernel (src/gpu/matmul.rs).

use super::compiler::Compiler;
use super::kernels::{grid, Dispatch, CONV};
use crate::graph::ops::Op;

pub fn compile(c: &Compiler, op: &Op) -> anyhow::Result<Vec<Dispatch>> {
    let (entry, g, src, dst, n) = match op {
        Op::Im2col { x, cols, g } => ("im2col", g, x, cols, g.out_pixels() * g.patch()),
        Op::Col2im { dcols, dx, g } => ("col2im", g, dcols, dx, g.input_len()),
        _ => unreachable!("not a conv op: {op:?}"),
    };
    Ok(vec![c.dispatch(
        CONV,
        entry,
        &[],
        (0, &g.words()),
        &[(1, c.buf(*src)), (2, c.buf(*dst))],
        grid(n, 256),
    )?])
}
