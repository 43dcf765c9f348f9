//! Dispatch for shaders/activation.wgsl and shaders/dropout.wgsl, the element-wise ops
//! (references: src/cpu/activation.rs, src/cpu/dropout.rs).

use super::engine::Compiler;
use super::kernels::{grid, Dispatch, ACTIVATION, DROPOUT};
use crate::graph::ops::Op;
use crate::rng::keep_scale;

pub fn compile(c: &Compiler, op: &Op) -> anyhow::Result<Vec<Dispatch>> {
    let d = match *op {
        Op::Activation { x, y, act, len } => c.dispatch(
            ACTIVATION,
            "forward",
            &[("ACT", act.code() as f64)],
            (0, &[len as u32]),
            &[(1, c.buf(x)), (3, c.buf(y))],
            grid(len, 256),
        )?,
        Op::ActivationGrad { y, dy, dx, act, len } => c.dispatch(
            ACTIVATION,
            "backward",
            &[("ACT", act.code() as f64)],
            (0, &[len as u32]),
            &[(1, c.buf(y)), (2, c.buf(dy)), (3, c.buf(dx))],
            grid(len, 256),
        )?,
        Op::Dropout { x, y, state, len, rate, seed } => c.dispatch(
            DROPOUT,
            "dropout",
            &[],
            (0, &[len as u32, seed, rate.to_bits(), keep_scale(rate).to_bits()]),
            &[(1, c.buf(state)), (2, c.buf(x)), (3, c.buf(y))],
            grid(len, 256),
        )?,
        _ => unreachable!("not an element-wise op: {op:?}"),
    };
    Ok(vec![d])
}
