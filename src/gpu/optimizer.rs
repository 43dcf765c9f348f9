//! Dispatch for shaders/optimizer.wgsl (reference: src/cpu/optimizer.rs).

use super::engine::Compiler;
use super::kernels::{grid, Dispatch, OPTIMIZER};
use crate::graph::ops::{Op, Optimizer};

/// The uniform block `Update`: len, a, b, eps, flag.
fn update(len: usize, a: f32, b: f32, eps: f32, flag: u32) -> [u32; 5] {
    [len as u32, a.to_bits(), b.to_bits(), eps.to_bits(), flag]
}

pub fn compile(c: &Compiler, op: &Op) -> anyhow::Result<Vec<Dispatch>> {
    let d = match *op {
        Op::L2Penalty { w, penalties, slot, len, c: coef } => c.dispatch(
            OPTIMIZER,
            "l2_penalty",
            &[],
            (0, &update(len, coef, 0.0, 0.0, slot as u32)),
            &[(6, c.buf(penalties)), (7, c.buf(w))],
            [1, 1, 1],
        )?,
        Op::L2Grad { w, g, len, c: coef } => c.dispatch(
            OPTIMIZER,
            "l2_grad",
            &[],
            (0, &update(len, 2.0 * coef, 0.0, 0.0, 0)),
            &[(2, c.buf(g)), (7, c.buf(w))],
            grid(len, 256),
        )?,
        Op::Update { w, g, m, v, state, rates, len, opt } => match opt {
            Optimizer::Sgd { momentum, nesterov, .. } => c.dispatch(
                OPTIMIZER,
                "sgd",
                &[],
                (0, &update(len, momentum, 0.0, 0.0, nesterov as u32)),
                &[
                    (1, c.buf(w)),
                    (2, c.buf(g)),
                    (3, &c.buf_or_placeholder(m)),
                    (5, c.buf(state)),
                    (8, c.buf(rates)),
                ],
                grid(len, 256),
            )?,
            Optimizer::Adam { beta1, beta2, eps, .. } => {
                let (Some(m), Some(v)) = (m, v) else { anyhow::bail!("Adam needs its two moment tensors") };
                c.dispatch(
                    OPTIMIZER,
                    "adam",
                    &[],
                    (0, &update(len, beta1, beta2, eps, 0)),
                    &[
                        (1, c.buf(w)),
                        (2, c.buf(g)),
                        (3, c.buf(m)),
                        (4, c.buf(v)),
                        (5, c.buf(state)),
                        (8, c.buf(rates)),
                    ],
                    grid(len, 256),
                )?
            }
        },
        _ => unreachable!("not an optimizer op: {op:?}"),
    };
    Ok(vec![d])
}
