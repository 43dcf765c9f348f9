//! Dispatch for shaders/data.wgsl (reference: src/cpu/data.rs).

use super::compiler::Compiler;
use super::kernels::{grid, Dispatch, DATA};
use crate::graph::ops::Op;

/// The uniform block `Batch` of shaders/data.wgsl, word for word.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Batch {
    batch: u32,
    /// gather: pixels per image; confusion: classes; record: penalty slots.
    width: u32,
    /// record: whether this was an optimizer step.
    train: u32,
    /// gather: the image's side (width = side²).
    side: u32,
    /// gather: 1 to augment.
    augment: u32,
    /// gather: the largest translation in pixels.
    shift: u32,
    /// gather: 1 to mirror half the images.
    flip: u32,
    /// gather: the probability of erasing a rectangle.
    erase: f32,
    /// gather: seeds the draws.
    seed: u32,
}

impl Batch {
    fn words(&self) -> &[u32] {
        bytemuck::cast_slice(std::slice::from_ref(self))
    }
}

pub fn compile(c: &Compiler, op: &Op) -> anyhow::Result<Vec<Dispatch>> {
    let params = |batch: usize, width: usize, train: bool| Batch {
        batch: batch as u32,
        width: width as u32,
        train: train as u32,
        ..Batch::default()
    };
    let d = match *op {
        Op::Gather { images, labels, index, state, x, y, batch, pixels, augment, seed } => {
            let a = augment.unwrap_or_default();
            let side = (pixels as f64).sqrt() as usize;
            anyhow::ensure!(augment.is_none() || side * side == pixels, "augmentation needs square images");
            let params = Batch {
                side: side as u32,
                augment: augment.is_some() as u32,
                shift: a.shift,
                flip: a.flip as u32,
                erase: a.erase,
                seed,
                ..params(batch, pixels, false)
            };
            c.dispatch(
                DATA,
                "gather",
                &[],
                (0, params.words()),
                &[
                    (1, c.buf(images)),
                    (2, c.buf(labels)),
                    (3, c.buf(index)),
                    (4, c.buf(state)),
                    (5, c.buf(x)),
                    (6, c.buf(y)),
                ],
                grid(batch * pixels, 256),
            )?
        }
        Op::Confusion { labels, pred, counts, batch, classes } => c.dispatch(
            DATA,
            "confusion",
            &[],
            (0, params(batch, classes, false).words()),
            &[(6, c.buf(labels)), (8, c.buf(pred)), (9, c.buf(counts))],
            [(classes * classes).div_ceil(64) as u32, 1, 1],
        )?,
        Op::Record { loss, pred, labels, penalties, state, records, batch, train } => {
            let slots = penalties.map_or(0, |(_, n)| n);
            c.dispatch(
                DATA,
                "record",
                &[],
                (0, params(batch, slots, train).words()),
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
