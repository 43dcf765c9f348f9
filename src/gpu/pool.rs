//! Dispatch for shaders/pool.wgsl (reference: src/cpu/pool.rs).

use super::engine::Compiler;
use super::kernels::{grid, Dispatch, POOL};
use crate::graph::ops::{Op, Window};

pub fn compile(c: &Compiler, op: &Op) -> anyhow::Result<Vec<Dispatch>> {
    // Windows that do not overlap: each input cell gets at most one window's gradient.
    let scatter = |g: &Window,
                   entry: &'static str,
                   bindings: &[(u32, &wgpu::Buffer)]|
     -> anyhow::Result<Vec<Dispatch>> {
        let dx = bindings.iter().find(|(b, _)| *b == 2).unwrap().1;
        Ok(vec![
            c.dispatch(POOL, "zero", &[], (0, &g.words()), &[(2, dx)], grid(g.input_len(), 256))?,
            c.dispatch(POOL, entry, &[], (0, &g.words()), bindings, grid(g.out_pixels() * g.c, 256))?,
        ])
    };
    let disjoint = |g: &Window| g.sh >= g.kh && g.sw >= g.kw;
    match *op {
        Op::MaxPoolGrad { dy, argmax, dx, ref g } if disjoint(g) => {
            return scatter(g, "max_backward_scatter", &[(1, c.buf(dy)), (2, c.buf(dx)), (4, c.buf(argmax))]);
        }
        Op::AvgPoolGrad { dy, dx, ref g } if disjoint(g) => {
            return scatter(g, "avg_backward_scatter", &[(1, c.buf(dy)), (2, c.buf(dx))]);
        }
        _ => {}
    }
    let d = match *op {
        Op::MaxPool { x, y, argmax, ref g } => c.dispatch(
            POOL,
            "max_forward",
            &[],
            (0, &g.words()),
            &[(1, c.buf(x)), (2, c.buf(y)), (3, c.buf(argmax))],
            grid(g.out_pixels() * g.c, 256),
        )?,
        Op::AvgPool { x, y, ref g } => c.dispatch(
            POOL,
            "avg_forward",
            &[],
            (0, &g.words()),
            &[(1, c.buf(x)), (2, c.buf(y))],
            grid(g.out_pixels() * g.c, 256),
        )?,
        Op::MaxPoolGrad { dy, argmax, dx, ref g } => c.dispatch(
            POOL,
            "max_backward",
            &[],
            (0, &g.words()),
            &[(1, c.buf(dy)), (2, c.buf(dx)), (4, c.buf(argmax))],
            grid(g.input_len(), 256),
        )?,
        Op::AvgPoolGrad { dy, dx, ref g } => c.dispatch(
            POOL,
            "avg_backward",
            &[],
            (0, &g.words()),
            &[(1, c.buf(dy)), (2, c.buf(dx))],
            grid(g.input_len(), 256),
        )?,
        _ => unreachable!("not a pooling op: {op:?}"),
    };
    Ok(vec![d])
}
