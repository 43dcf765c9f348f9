//! Dispatch for shaders/softmax_xent.wgsl (reference: src/cpu/softmax_xent.rs).

use super::compiler::Compiler;
use super::context::Tuning;
use super::kernels::{Dispatch, SOFTMAX_XENT, WG};
use crate::graph::ops::Op;

/// The uniform block `Rows`, field for field.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Rows {
    batch: u32,
    classes: u32,
    /// The gradient's factor (1/B for a batch-mean loss).
    scale: f32,
    /// Label smoothing ε.
    smoothing: f32,
}

pub fn compile(c: &Compiler, op: &Op) -> anyhow::Result<Vec<Dispatch>> {
    Ok(vec![dispatch(c, op, None)?])
}

/// The loss's gradient and the bias gradient of the layer that made the logits, as one kernel
/// (`softmax_xent_bias`), where the adapter is a GPU and the batch fits one workgroup. None:
/// compile them apart.
pub fn compile_pair(c: &Compiler, first: &Op, next: &Op) -> Option<anyhow::Result<Dispatch>> {
    let (
        &Op::SoftmaxXent { dlogits: Some(d), batch, classes, .. },
        &Op::BiasGrad { dy, db, rows, cols, through: None, mask: None },
    ) = (first, next)
    else {
        return None;
    };
    let fits = (dy, rows, cols) == (d, batch, classes) && batch <= WG;
    (fits && c.ctx.tuning == Tuning::Gpu).then(|| dispatch(c, first, Some(db)))
}

/// `softmax_xent` over rows of 64, or with `db` `softmax_xent_bias` in one workgroup.
fn dispatch(c: &Compiler, op: &Op, db: Option<crate::graph::ops::T>) -> anyhow::Result<Dispatch> {
    let Op::SoftmaxXent { logits, labels, loss, pred, probs, dlogits, batch, classes, scale, smoothing } =
        *op
    else {
        unreachable!()
    };
    let flag = |t: Option<_>| if t.is_some() { 1.0 } else { 0.0 };
    let rows = Rows { batch: batch as u32, classes: classes as u32, scale, smoothing };
    let (entry, groups) = match db {
        Some(_) => ("softmax_xent_bias", [1, 1, 1]),
        None => ("softmax_xent", [batch.div_ceil(64) as u32, 1, 1]),
    };
    let mut bindings = vec![
        (1, c.buf(logits)),
        (2, c.buf(labels)),
        (3, c.buf(loss)),
        (4, c.buf_or_placeholder(probs)),
        (5, c.buf_or_placeholder(dlogits)),
        (6, c.buf(pred)),
    ];
    if let Some(db) = db {
        bindings.push((7, c.buf(db)));
    }
    c.dispatch(
        SOFTMAX_XENT,
        entry,
        &[("WRITE_PROBS", flag(probs)), ("WRITE_GRAD", flag(dlogits))],
        (0, bytemuck::cast_slice(&[rows])),
        &bindings,
        groups,
    )
}
