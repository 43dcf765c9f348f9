//! Dispatch for shaders/pool.wgsl (reference: src/cpu/pool.rs).

use super::context::Tuning;
use super::engine::Compiler;
use super::kernels::{grid, Dispatch, POOL};
use crate::graph::ops::Op;

pub fn compile(c: &Compiler, op: &Op) -> anyhow::Result<Vec<Dispatch>> {
    let max = |yes: bool| [("MAX", if yes { 1.0 } else { 0.0 })];
    let (g, is_max) = match op {
        Op::MaxPool { g, .. } | Op::MaxPoolGrad { g, .. } => (g, true),
        Op::AvgPool { g, .. } | Op::AvgPoolGrad { g, .. } => (g, false),
        _ => unreachable!("not a pooling op: {op:?}"),
    };
    let params = (0, &g.words()[..]);
    let (outputs, inputs) = (grid(g.out_pixels() * g.c, 256), grid(g.input_len(), 256));
    let d = match *op {
        Op::MaxPool { x, y, argmax, .. } => c.dispatch(
            POOL,
            "forward",
            &max(true),
            params,
            &[(1, c.buf(x)), (2, c.buf(y)), (3, c.buf(argmax))],
            outputs,
        )?,
        Op::AvgPool { x, y, .. } => {
            let unused = c.buf_or_placeholder(None);
            c.dispatch(
                POOL,
                "forward",
                &max(false),
                params,
                &[(1, c.buf(x)), (2, c.buf(y)), (3, unused)],
                outputs,
            )?
        }
        Op::MaxPoolGrad { dy, dx, .. } | Op::AvgPoolGrad { dy, dx, .. } => {
            let argmax = match *op {
                Op::MaxPoolGrad { argmax, .. } => Some(argmax),
                _ => None,
            };
            // Average pooling has no argmax; the kernel still declares the binding.
            let argmax = c.buf_or_placeholder(argmax);
            let bindings = [(1, c.buf(dy)), (2, c.buf(dx)), (4, argmax)];
            let disjoint = g.sh >= g.kh && g.sw >= g.kw;
            if disjoint && c.ctx.tuning == Tuning::Cpu {
                // Each input cell has at most one window: zero, then scatter window by window.
                return Ok(vec![
                    c.dispatch(POOL, "zero", &[], params, &[(2, c.buf(dx))], inputs)?,
                    c.dispatch(POOL, "backward_scatter", &max(is_max), params, &bindings, outputs)?,
                ]);
            }
            // One invocation per input cell, summing the windows over it: no zero-fill pass.
            c.dispatch(POOL, "backward", &max(is_max), params, &bindings, inputs)?
        }
        _ => unreachable!(),
    };
    Ok(vec![d])
}
