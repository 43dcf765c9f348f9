//! Dispatch for shaders/pool.wgsl (reference: src/cpu/pool.rs).

use super::compiler::Compiler;
use super::context::Tuning;
use super::kernels::{grid, mask_constants, Dispatch, POOL};
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
        Op::MaxPool { x, y, argmax, dropout, .. } => {
            let mask = dropout.map(|d| d.mask);
            c.dispatch(
                POOL,
                "forward",
                &[max(true).to_vec(), mask_constants(mask)].concat(),
                params,
                &[
                    (1, c.buf(x)),
                    (2, c.buf(y)),
                    (3, c.buf(argmax)),
                    (5, c.buf_or_placeholder(mask.map(|m| m.state))),
                    (6, c.buf_or_placeholder(dropout.map(|d| d.y))),
                ],
                outputs,
            )?
        }
        Op::AvgPool { x, y, .. } => {
            let unused = c.buf_or_placeholder(None);
            c.dispatch(
                POOL,
                "forward",
                &max(false),
                params,
                &[
                    (1, c.buf(x)),
                    (2, c.buf(y)),
                    (3, unused),
                    (5, c.buf_or_placeholder(None)),
                    (6, c.buf_or_placeholder(None)),
                ],
                outputs,
            )?
        }
        Op::MaxPoolGrad { dy, dx, .. } | Op::AvgPoolGrad { dy, dx, .. } => {
            let (argmax, mask) = match *op {
                Op::MaxPoolGrad { argmax, mask, .. } => (Some(argmax), mask),
                _ => (None, None),
            };
            // Average pooling has no argmax; the kernel still declares the binding.
            let argmax = c.buf_or_placeholder(argmax);
            let bindings = [
                (1, c.buf(dy)),
                (2, c.buf(dx)),
                (4, argmax),
                (5, c.buf_or_placeholder(mask.map(|m| m.state))),
            ];
            let constants = [max(is_max).to_vec(), mask_constants(mask)].concat();
            let disjoint = g.sh >= g.kh && g.sw >= g.kw;
            if disjoint && c.ctx.tuning == Tuning::Cpu {
                // Each input cell has at most one window: zero, then scatter window by window.
                return Ok(vec![
                    c.dispatch(POOL, "zero", &[], params, &[(2, c.buf(dx))], inputs)?,
                    c.dispatch(POOL, "backward_scatter", &constants, params, &bindings, outputs)?,
                ]);
            }
            // One invocation per input cell, summing the windows over it: no zero-fill pass.
            c.dispatch(POOL, "backward", &constants, params, &bindings, inputs)?
        }
        _ => unreachable!(),
    };
    Ok(vec![d])
}
