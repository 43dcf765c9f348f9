//! Dispatch for shaders/data.wgsl (reference: src/cpu/data.rs).

use super::engine::Compiler;
use super::kernels::{grid, Dispatch, DATA};
use crate::graph::ops::Op;

pub fn compile(c: &Compiler, op: &Op) -> anyhow::Result<Vec<Dispatch>> {
    let params = |batch: usize, width: usize, train: bool| [batch as u32, width as u32, train as u32];
    let d = match *op {
        Op::Gather { images, labels, index, state, x, y, batch, pixels } => c.dispatch(
            DATA,
            "gather",
            &[],
            (0, &params(batch, pixels, false)),
            &[
                (1, c.buf(images)),
                (2, c.buf(labels)),
                (3, c.buf(index)),
                (4, c.buf(state)),
                (5, c.buf(x)),
                (6, c.buf(y)),
            ],
            grid(batch * pixels, 256),
        )?,
        Op::Confusion { labels, pred, counts, batch, classes } => c.dispatch(
            DATA,
            "confusion",
            &[],
            (0, &params(batch, classes, false)),
            &[(6, c.buf(labels)), (8, c.buf(pred)), (9, c.buf(counts))],
            [(classes * classes).div_ceil(64) as u32, 1, 1],
        )?,
        Op::Record { loss, pred, labels, penalties, state, records, batch, train } => {
            let slots = penalties.map_or(0, |(_, n)| n);
            c.dispatch(
                DATA,
                "record",
                &[],
                (0, &params(batch, slots, train)),
                &[
                    (13, c.buf(state)),
                    (6, c.buf(labels)),
                    (8, c.buf(pred)),
                    (10, c.buf(loss)),
                    (11, c.buf_or_placeholder(penalties.map(|(t, _)| t))),
                    (12, c.buf(records)),
                ],
                [1, 1, 1],
            )?
        }
        _ => unreachable!("not a data op: {op:?}"),
    };
    Ok(vec![d])
}
