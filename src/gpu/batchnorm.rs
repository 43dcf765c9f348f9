//! Dispatch for shaders/batchnorm.wgsl (reference: src/cpu/batchnorm.rs).

use super::compiler::Compiler;
use super::context::Tuning;
use super::kernels::{grid, Dispatch, BATCHNORM};
use crate::graph::ops::Op;

/// Longest column that `stats_apply` normalizes in the workgroup that took its statistics (4
/// rows per invocation); longer ones keep the element-wise `apply`, which a GPU spreads wider.
const FUSED_ROWS: usize = 256;

/// A training pass's statistics and the normalization that reads them, as one kernel
/// (`stats_apply`), where the adapter is a GPU (a CPU driver pays more for the column-strided
/// writes than for the second dispatch) and the column is short. None: compile them apart.
pub fn compile_pair(c: &Compiler, first: &Op, next: &Op) -> Option<anyhow::Result<Dispatch>> {
    let (
        &Op::BatchNormStats { x, mean, var, moving_mean, moving_var, rows, cols, momentum },
        &Op::BatchNormApply { x: x2, mean: mean2, var: var2, gamma, beta, y, rows: rows2, cols: cols2, eps },
    ) = (first, next)
    else {
        return None;
    };
    let same = (x, mean, var, rows, cols) == (x2, mean2, var2, rows2, cols2);
    if !same || c.ctx.tuning != Tuning::Gpu || rows > FUSED_ROWS || cols > 65_535 {
        return None;
    }
    Some(c.dispatch(
        BATCHNORM,
        "stats_apply",
        &[],
        (0, bytemuck::cast_slice(&[norm(rows, cols, momentum, eps)])),
        &[
            (1, c.buf(x)),
            (3, c.buf(gamma)),
            (4, c.buf(beta)),
            (5, c.buf(mean)),
            (6, c.buf(var)),
            (7, c.buf(moving_mean)),
            (8, c.buf(moving_var)),
            (9, c.buf(y)),
        ],
        [cols as u32, 1, 1],
    ))
}

/// A column pass: `wide` with a workgroup per column, or where the adapter takes the column by
/// invocation ([`Tuning::by_column`]) `serial` with an invocation per column; and its grid.
fn column_pass(
    c: &Compiler,
    rows: usize,
    cols: usize,
    wide: &'static str,
    serial: &'static str,
) -> (&'static str, [u32; 3]) {
    match c.ctx.tuning.by_column(rows) {
        true => (serial, [cols.div_ceil(64) as u32, 1, 1]),
        false => (wide, [cols as u32, 1, 1]),
    }
}

/// The uniform block `Norm`, field for field.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Norm {
    rows: u32,
    cols: u32,
    /// The moving statistics' momentum (statistics passes; 0 otherwise).
    momentum: f32,
    /// 1 − momentum, rounded once here.
    one_minus_momentum: f32,
    /// ε inside the square root (normalizing passes; 0 otherwise).
    eps: f32,
}

fn norm(rows: usize, cols: usize, momentum: f32, eps: f32) -> Norm {
    let one_minus_momentum = (1.0 - momentum as f64) as f32;
    Norm { rows: rows as u32, cols: cols as u32, momentum, one_minus_momentum, eps }
}

pub fn compile(c: &Compiler, op: &Op) -> anyhow::Result<Vec<Dispatch>> {
    match *op {
        Op::BatchNormStats { x, mean, var, moving_mean, moving_var, rows, cols, momentum } => {
            anyhow::ensure!(cols <= 65_535, "batch norm over {cols} features is too wide");
            let (entry, groups) = column_pass(c, rows, cols, "stats", "stats_columns");
            Ok(vec![c.dispatch(
                BATCHNORM,
                entry,
                &[],
                (0, bytemuck::cast_slice(&[norm(rows, cols, momentum, 0.0)])),
                &[
                    (1, c.buf(x)),
                    (5, c.buf(mean)),
                    (6, c.buf(var)),
                    (7, c.buf(moving_mean)),
                    (8, c.buf(moving_var)),
                ],
                groups,
            )?])
        }
        Op::BatchNormApply { x, mean, var, gamma, beta, y, rows, cols, eps } => {
            // Element-wise, or a column per invocation where the adapter sums columns so.
            let (entry, groups) = match c.ctx.tuning.by_column(rows) {
                true => ("apply_columns", [cols.div_ceil(64) as u32, 1, 1]),
                false => ("apply", grid(rows * cols, 256)),
            };
            Ok(vec![c.dispatch(
                BATCHNORM,
                entry,
                &[],
                (0, bytemuck::cast_slice(&[norm(rows, cols, 0.0, eps)])),
                &[
                    (1, c.buf(x)),
                    (3, c.buf(gamma)),
                    (4, c.buf(beta)),
                    (5, c.buf(mean)),
                    (6, c.buf(var)),
                    (9, c.buf(y)),
                ],
                groups,
            )?])
        }
        Op::BatchNormGrad { x, dy, mean, var, gamma, dx, dgamma, dbeta, rows, cols, eps } => {
            anyhow::ensure!(cols <= 65_535, "batch norm over {cols} features is too wide");
            let params = [norm(rows, cols, 0.0, eps)];
            let (entry, groups) = column_pass(c, rows, cols, "grad_sums", "grad_sums_columns");
            let mut out = vec![c.dispatch(
                BATCHNORM,
                entry,
                &[],
                (0, bytemuck::cast_slice(&params)),
                &[
                    (1, c.buf(x)),
                    (2, c.buf(dy)),
                    (5, c.buf(mean)),
                    (6, c.buf(var)),
                    (10, c.buf(dgamma)),
                    (11, c.buf(dbeta)),
                ],
                groups,
            )?];
            if let Some(dx) = dx {
                out.push(c.dispatch(
                    BATCHNORM,
                    "grad_input",
                    &[],
                    (0, bytemuck::cast_slice(&params)),
                    &[
                        (1, c.buf(x)),
                        (2, c.buf(dy)),
                        (3, c.buf(gamma)),
                        (5, c.buf(mean)),
                        (6, c.buf(var)),
                        (9, c.buf(dx)),
                        (10, c.buf(dgamma)),
                        (11, c.buf(dbeta)),
                    ],
                    grid(rows * cols, 256),
                )?);
            }
            Ok(out)
        }
        _ => unreachable!("not a batch-norm op: {op:?}"),
    }
}
