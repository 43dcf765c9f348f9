//! Folds each dropout into a neighbouring op of the same step: into the op that reads its output
//! (the bias gradient that differentiates through the layer's activation, the max-pool
//! gradient: a dropout's backward pass), else into the op that wrote its input (a matmul's
//! epilogue, a max pool: forward, or backward below a dense layer).
//! A fused op computes what the pair computed, in the same order, so results do not change
//! (tests/training.rs compares whole training runs with and without); on the GPU it is one
//! dispatch fewer per fold, two per dropout layer and step.
//!
//! The layers (layers.rs) emit a dropout right after the op that writes its input and, in
//! backward, right before the op that reads its output; only those adjacent pairs are folded,
//! and only where the tensors are exactly the dropout's. A producer keeps writing its own
//! output, so other readers of it are unaffected; a consumer is folded into only where it is
//! the one reader of the dropout's output (the layer patterns above).

use super::ops::{Dropped, Op};

/// `ops` with every foldable dropout folded.
pub fn fold_dropout(ops: Vec<Op>) -> Vec<Op> {
    let mut out: Vec<Op> = Vec::with_capacity(ops.len());
    let mut ops = ops.into_iter().peekable();
    while let Some(op) = ops.next() {
        let Op::Dropout { x, y, len, mask } = op else {
            out.push(op);
            continue;
        };
        // Into the next op, when it is the only reader of y (a gradient below the dropout: the
        // layer's bias gradient reads it and writes dz, which the rest of the layer reads).
        match ops.peek_mut() {
            Some(Op::BiasGrad { dy, rows, cols, through: Some(_), mask: m @ None, .. })
                if *dy == y && *rows * *cols == len =>
            {
                (*dy, *m) = (x, Some(mask));
                continue;
            }
            Some(Op::MaxPoolGrad { dy, g, mask: m @ None, .. })
                if *dy == y && g.out_pixels() * g.c == len =>
            {
                (*dy, *m) = (x, Some(mask));
                continue;
            }
            _ => {}
        }
        // Else into the op before, when it wrote x: that op writes x and y both.
        let dropped = Some(Dropped { y, mask });
        match out.last_mut() {
            Some(Op::Matmul(mm)) if mm.c == x && mm.m * mm.n == len && mm.dropout.is_none() => {
                mm.dropout = dropped;
            }
            Some(Op::MaxPool { y: pooled, g, dropout, .. })
                if *pooled == x && g.out_pixels() * g.c == len && dropout.is_none() =>
            {
                *dropout = dropped;
            }
            _ => out.push(Op::Dropout { x, y, len, mask }),
        }
    }
    out
}
