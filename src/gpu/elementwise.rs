//! Dispatch for shaders/activation.wgsl and shaders/dropout.wgsl, the element-wise ops
//! (references: src/cpu/activation.rs, src/cpu/dropout.rs).

use super::compiler::Compiler;
use super::kernels::{grid, mask_constants, Dispatch, ACTIVATION, DROPOUT};
use crate::graph::ops::{Act, Mask, Op, T};

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
        Op::ActivationGrad { y, dy, dx, act, len } => activation_grad(c, y, dy, dx, act, len, None)?,
        Op::Dropout { x, y, len, mask } => c.dispatch(
            DROPOUT,
            "dropout",
            &mask_constants(Some(mask)),
            (0, &[len as u32]),
            &[(1, c.buf(mask.state)), (2, c.buf(x)), (3, c.buf(y))],
            grid(len, 256),
        )?,
        _ => unreachable!("not an element-wise op: {op:?}"),
    };
    Ok(vec![d])
}

/// dx (len) = dy · act'(y), with dy first put under `mask` when there is one (the backward pass
/// of a dropout folded in).
pub fn activation_grad(
    c: &Compiler,
    y: T,
    dy: T,
    dx: T,
    act: Act,
    len: usize,
    mask: Option<Mask>,
) -> anyhow::Result<Dispatch> {
    let mut constants = vec![("ACT", act.code() as f64)];
    constants.extend(mask_constants(mask));
    c.dispatch(
        ACTIVATION,
        "backward",
        &constants,
        (0, &[len as u32]),
        &[(1, c.buf(y)), (2, c.buf(dy)), (3, c.buf(dx)), (4, c.buf_or_placeholder(mask.map(|m| m.state)))],
        grid(len, 256),
    )
}
