//! Dispatch for shaders/optimizer.wgsl (reference: src/cpu/optimizer.rs).
//!
//! Both ops run over a whole arena (`Program::arena`), one workgroup per chunk of 256 elements:
//! a table gives each chunk the end of its weight and that weight's L2 factor.

use super::compiler::Compiler;
use super::context::Tuning;
use super::kernels::{grid, Dispatch, OPTIMIZER};
use crate::graph::ops::{Op, Optimizer, CHUNK, T};

/// The uniform block `Update`, word for word.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Update {
    /// Chunks in the arena.
    chunks: u32,
    /// SGD: momentum; Adam: β1.
    a: f32,
    /// Adam: β2.
    b: f32,
    /// Adam: ε.
    eps: f32,
    /// SGD: Nesterov (0 or 1).
    flag: u32,
}

/// The chunk table of `weights` (view, L2 factor) in their arena: per chunk, (end of its
/// weight's elements, as an arena index; the factor's bits). Chunks of no listed weight end
/// where they start, so that kernels skip them.
fn chunk_table(c: &Compiler, weights: &[(T, f32)]) -> anyhow::Result<(T, usize, Vec<u32>)> {
    let Some(&(first, _)) = weights.first() else { anyhow::bail!("an arena op with no weights") };
    let arena = c.within(first)?.0;
    let chunks = c.specs[arena.0].len / CHUNK;
    let mut table: Vec<u32> = (0..chunks).flat_map(|j| [(j * CHUNK) as u32, 0]).collect();
    for &(w, l2) in weights {
        let (parent, offset) = c.within(w)?;
        anyhow::ensure!(parent == arena, "{} is not in the arena of the others", c.specs[w.0].name);
        let end = offset + c.specs[w.0].len;
        for j in offset / CHUNK..end.div_ceil(CHUNK) {
            table[2 * j] = end as u32;
            table[2 * j + 1] = l2.to_bits();
        }
    }
    Ok((arena, chunks, table))
}

pub fn compile(c: &Compiler, op: &Op) -> anyhow::Result<Vec<Dispatch>> {
    let d = match op {
        Op::L2Penalty { weights, partials } => {
            let (arena, chunks, table) = chunk_table(c, weights)?;
            let params = Update { chunks: chunks as u32, a: 0.0, b: 0.0, eps: 0.0, flag: 0 };
            // A GPU reduces each chunk with a workgroup's tree; a CPU driver with one invocation.
            let (entry, groups) = match c.ctx.tuning {
                Tuning::Gpu => ("l2_penalty", grid(chunks * CHUNK, CHUNK)),
                Tuning::Cpu => ("l2_penalty_serial", grid(chunks, 64)),
            };
            c.dispatch(
                OPTIMIZER,
                entry,
                &[],
                (0, bytemuck::cast_slice(&[params])),
                &[(6, c.buf(*partials)), (7, c.buf(arena)), (9, c.constant(&table))],
                groups,
            )?
        }
        Op::Update { weights, state, rates, opt, penalties } => {
            let pairs: Vec<(T, f32)> = weights.iter().map(|t| (t.w, t.l2)).collect();
            let (arena, chunks, table) = chunk_table(c, &pairs)?;
            // The gradients and slots lie at the same offsets in arenas of their own.
            let sibling =
                |pick: &dyn Fn(&crate::graph::ops::Trained) -> Option<T>| -> anyhow::Result<Option<T>> {
                    let Some(first) = pick(&weights[0]) else { return Ok(None) };
                    let parent = c.within(first)?.0;
                    for t in weights {
                        let view =
                            pick(t).ok_or_else(|| anyhow::anyhow!("weights with and without a slot"))?;
                        anyhow::ensure!(
                            c.within(view)? == (parent, c.within(t.w)?.1),
                            "{} is not where its weight is in its arena",
                            c.specs[view.0].name
                        );
                    }
                    Ok(Some(parent))
                };
            let g = sibling(&|t| Some(t.g))?.ok_or_else(|| anyhow::anyhow!("an update without gradients"))?;
            let (m, v) = (sibling(&|t| t.m)?, sibling(&|t| t.v)?);
            let mut params = Update { chunks: chunks as u32, a: 0.0, b: 0.0, eps: 0.0, flag: 0 };
            let adam = matches!(opt, Optimizer::Adam { .. });
            match *opt {
                Optimizer::Sgd { momentum, nesterov, .. } => {
                    (params.a, params.flag) = (momentum, nesterov as u32)
                }
                Optimizer::Adam { beta1, beta2, eps, .. } => {
                    anyhow::ensure!(m.is_some() && v.is_some(), "Adam needs its two moment tensors");
                    (params.a, params.b, params.eps) = (beta1, beta2, eps);
                }
            }
            // A GPU updates an element per invocation (and sums the penalty by a tree in the
            // same workgroups); a CPU driver, whose barriers are dear, a chunk per invocation.
            let (entry, groups) = match (c.ctx.tuning, adam) {
                (Tuning::Gpu, false) => ("sgd", grid(chunks * CHUNK, CHUNK)),
                (Tuning::Gpu, true) => ("adam", grid(chunks * CHUNK, CHUNK)),
                (Tuning::Cpu, false) => ("sgd_chunks", grid(chunks, 64)),
                (Tuning::Cpu, true) => ("adam_chunks", grid(chunks, 64)),
            };
            let mut bindings = vec![
                (1, c.buf(arena)),
                (2, c.buf(g)),
                (3, c.buf_or_placeholder(m)),
                (5, c.buf(*state)),
                (6, c.buf_or_placeholder(*penalties)),
                (8, c.buf(*rates)),
                (9, c.constant(&table)),
            ];
            if adam {
                bindings.push((4, c.buf_or_placeholder(v)));
            }
            return Ok(vec![c.dispatch(
                OPTIMIZER,
                entry,
                &[("PENALTY", if penalties.is_some() { 1.0 } else { 0.0 })],
                (0, bytemuck::cast_slice(&[params])),
                &bindings,
                groups,
            )?]);
        }
        _ => unreachable!("not an optimizer op: {op:?}"),
    };
    Ok(vec![d])
}
