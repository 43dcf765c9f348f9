//! Dispatch for shaders/softmax_xent.wgsl (reference: src/cpu/softmax_xent.rs).

use super::engine::Compiler;
use super::kernels::{Dispatch, SOFTMAX_XENT};
use crate::graph::ops::Op;

pub fn compile(c: &Compiler, op: &Op) -> anyhow::Result<Vec<Dispatch>> {
    let Op::SoftmaxXent { logits, labels, loss, pred, probs, dlogits, batch, classes, scale, smoothing } =
        *op
    else {
        unreachable!()
    };
    let flag = |t: Option<_>| if t.is_some() { 1.0 } else { 0.0 };
    Ok(vec![c.dispatch(
        SOFTMAX_XENT,
        "softmax_xent",
        &[("WRITE_PROBS", flag(probs)), ("WRITE_GRAD", flag(dlogits))],
        (0, &[batch as u32, classes as u32, scale.to_bits(), smoothing.to_bits()]),
        &[
            (1, c.buf(logits)),
            (2, c.buf(labels)),
            (3, c.buf(loss)),
            (4, c.buf_or_placeholder(probs)),
            (5, c.buf_or_placeholder(dlogits)),
            (6, c.buf(pred)),
        ],
        [batch.div_ceil(64) as u32, 1, 1],
    )?])
}
