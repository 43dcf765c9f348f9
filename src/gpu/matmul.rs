//! Dispatch for shaders/matmul.wgsl (reference: src/cpu/matmul.rs).
//!
//! The kernel reads rows four floats at a time: as vec4 where the stored row length is a
//! multiple of 4, else as four scalars (override constants ALIGNED_A/ALIGNED_B; the matrix is
//! bound twice, as vec4s and as floats). When the output has few 32×32 tiles
//! and K is long, K is split across workgroups (split-K) so that a large GPU has work for all of
//! its cores; the slices are added in a fixed order.

use super::compiler::Compiler;
use super::context::Tuning;
use super::kernels::{grid, mask_constants, Dispatch, MATMUL};
use crate::graph::ops::{Matmul, Op};

/// The product's entry point and the tile of C (rows, columns) that one 8×8 workgroup computes:
/// a 4×4 block per invocation on a GPU, 16×8 on a CPU driver (which pays per float loaded).
fn arrangement(tuning: Tuning) -> (&'static str, (usize, usize)) {
    match tuning {
        Tuning::Cpu => ("matmul_16x8", (128, 64)),
        Tuning::Gpu => ("matmul", (32, 32)),
    }
}

/// How far to split K, by adapter: a CPU driver (lavapipe) runs a workgroup per thread at once
/// and pays for every partial sum it writes (8 workgroups measured as fast as 128, with fewer
/// sums); a GPU with a hundred multiprocessors idles unless
/// the small products of batch 32 (11 tiles for 32×784·350) are cut into many slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitK {
    /// Split K until about this many workgroups are in flight.
    pub target_workgroups: usize,
    /// Shortest K-slice worth a workgroup of its own.
    pub min_slice: usize,
}

impl SplitK {
    /// For lavapipe and other CPU adapters (the values measured on the development machine).
    pub const CPU: SplitK = SplitK { target_workgroups: 8, min_slice: 256 };
    /// For hardware GPUs.
    pub const GPU: SplitK = SplitK { target_workgroups: 512, min_slice: 64 };

    pub fn of(tuning: Tuning) -> SplitK {
        match tuning {
            Tuning::Cpu => SplitK::CPU,
            Tuning::Gpu => SplitK::GPU,
        }
    }

    /// How K is cut for tiles of (rows, columns) `tile`: (slice length, number of slices).
    pub fn split(&self, m: usize, n: usize, k: usize, tile: (usize, usize)) -> (usize, usize) {
        let tiles = m.div_ceil(tile.0) * n.div_ceil(tile.1);
        let splits = self.target_workgroups.div_ceil(tiles).min(k / self.min_slice).max(1);
        let chunk = k.div_ceil(splits).next_multiple_of(4);
        (chunk, k.div_ceil(chunk))
    }
}

/// The uniform block `Dims` of shaders/matmul.wgsl, field for field.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Dims {
    m: u32,
    n: u32,
    k: u32,
    /// Row stride of A as stored, in floats.
    lda: u32,
    /// Row stride of B as stored, in floats.
    ldb: u32,
    /// Row stride of C, in floats.
    ldc: u32,
    /// K-slice per workgroup z (a multiple of 4); ≥ K without split-K.
    k_chunk: u32,
    /// Number of K-slices.
    splits: u32,
}

/// The uniform block `ColSum` of shaders/matmul.wgsl (bias gradients).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ColSum {
    rows: u32,
    cols: u32,
}

pub fn compile(c: &Compiler, mm: &Matmul) -> anyhow::Result<Vec<Dispatch>> {
    let &Matmul { m, n, k, .. } = mm;
    let mut out = Vec::new();
    // The stored row lengths.
    let lda = if mm.trans_a { m } else { k };
    let ldb = if mm.trans_b { k } else { n };
    let (a, b) = (c.buf(mm.a), c.buf(mm.b));
    let (entry, tile) = arrangement(c.ctx.tuning);
    let (chunk, splits) = SplitK::of(c.ctx.tuning).split(m, n, k, tile);
    let u = |v: usize| v as u32;
    let dims = [Dims {
        m: u(m),
        n: u(n),
        k: u(k),
        lda: u(lda),
        ldb: u(ldb),
        ldc: u(n),
        k_chunk: u(chunk),
        splits: u(splits),
    }];
    let dims: &[u32] = bytemuck::cast_slice(&dims);
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let bias = c.buf_or_placeholder(mm.bias);
    let constants = vec![
        ("TRANS_A", flag(mm.trans_a)),
        ("TRANS_B", flag(mm.trans_b)),
        ("HAS_BIAS", flag(mm.bias.is_some())),
        ("ACT", mm.act.code() as f64),
        ("PARTIAL", flag(splits > 1)),
        ("ALIGNED_A", flag(lda.is_multiple_of(4))),
        ("ALIGNED_B", flag(ldb.is_multiple_of(4))),
    ];
    // The epilogue (bias, activation, and a folded dropout's mask) runs in the product's own
    // pass, or with split-K in the pass that adds the K-slices.
    let mask = mm.dropout.map(|d| d.mask);
    let epilogue = [constants.clone(), mask_constants(mask)].concat();
    let dropout = |used: bool| {
        [
            (6, c.buf_or_placeholder(mask.filter(|_| used).map(|m| m.state))),
            (7, c.buf_or_placeholder(mm.dropout.filter(|_| used).map(|d| d.y))),
        ]
    };
    let groups = [n.div_ceil(tile.1) as u32, m.div_ceil(tile.0) as u32, splits as u32];
    anyhow::ensure!(
        groups.iter().all(|&g| g <= 65_535),
        "matmul {m}×{k}·{k}×{n} is too large for one dispatch"
    );
    let partial = (splits > 1).then(|| c.scratch(splits * m * n));
    let (target, product) = match &partial {
        None => (c.buf(mm.c), &epilogue),
        Some(p) => (p.into(), &constants),
    };
    let [d6, d7] = dropout(partial.is_none());
    out.push(c.dispatch(
        MATMUL,
        entry,
        product,
        (0, dims),
        &[(1, a.clone()), (2, b.clone()), (12, a), (13, b), (3, bias.clone()), (4, target), d6, d7],
        groups,
    )?);
    if let Some(partial) = partial {
        let [d6, d7] = dropout(true);
        out.push(c.dispatch(
            MATMUL,
            "sum_splits",
            &epilogue,
            (0, dims),
            &[(3, bias), (4, c.buf(mm.c)), (5, (&partial).into()), d6, d7],
            grid(m * n, 256),
        )?);
    }
    Ok(out)
}

pub fn compile_bias_grad(c: &Compiler, op: &Op) -> anyhow::Result<Vec<Dispatch>> {
    let Op::BiasGrad { dy, db, rows, cols, through, mask } = *op else { unreachable!() };
    anyhow::ensure!(cols <= 65_535, "bias of {cols} columns is too wide for one dispatch");
    anyhow::ensure!(mask.is_none() || through.is_some(), "a bias gradient under a mask must write dz");
    // On a CPU driver a short column is one invocation's loop, the activation's gradient and mask
    // taken on the way (no barrier tree, no second pass).
    let by_column = c.ctx.tuning.by_column(rows);
    if let (Some(t), Tuning::Cpu, false) = (through, c.ctx.tuning, by_column) {
        // A long column on a CPU driver: a workgroup's pass down it would read and write dz with a
        // stride of a whole row, which costs more than a second dispatch — the activation's
        // gradient (and mask) element-wise first, then the sums of dz.
        let mut out = vec![super::elementwise::activation_grad(c, t.y, dy, t.dz, t.act, rows * cols, mask)?];
        let sums = Op::BiasGrad { dy: t.dz, db, rows, cols, through: None, mask: None };
        out.extend(compile_bias_grad(c, &sums)?);
        return Ok(out);
    }
    let act = through.map_or(0.0, |t| t.act.code() as f64);
    let mut constants = vec![("THROUGH_ACT", if through.is_some() { 1.0 } else { 0.0 }), ("ACT", act)];
    constants.extend(mask_constants(mask));
    // A 64-wide tree on a CPU driver (wider workgroups cost it), 256 wide on a GPU.
    let (entry, groups) = match c.ctx.tuning {
        Tuning::Cpu if by_column => ("bias_grad_columns", [cols.div_ceil(64) as u32, 1, 1]),
        Tuning::Cpu => ("bias_grad", [cols as u32, 1, 1]),
        Tuning::Gpu => ("bias_grad_wide", [cols as u32, 1, 1]),
    };
    Ok(vec![c.dispatch(
        MATMUL,
        entry,
        &constants,
        (9, bytemuck::cast_slice(&[ColSum { rows: rows as u32, cols: cols as u32 }])),
        &[
            (10, c.buf(dy)),
            (11, c.buf(db)),
            (14, c.buf_or_placeholder(through.map(|t| t.y))),
            (15, c.buf_or_placeholder(through.map(|t| t.dz))),
            (6, c.buf_or_placeholder(mask.map(|m| m.state))),
        ],
        groups,
    )?])
}

#[cfg(test)]
mod tests {
    use super::{arrangement, SplitK};
    use crate::gpu::Tuning;

    #[test]
    fn k_slices_cover_k_and_a_gpu_gets_more_of_them() {
        for tuning in [Tuning::Cpu, Tuning::Gpu] {
            let (rule, tile) = (SplitK::of(tuning), arrangement(tuning).1);
            for (m, n, k) in [(32, 350, 784), (64, 16, 25_088), (1, 1, 1), (350, 784, 32), (7, 9, 1001)] {
                let (chunk, splits) = rule.split(m, n, k, tile);
                assert!(chunk.is_multiple_of(4) && chunk * splits >= k && chunk * (splits - 1) < k);
            }
        }
        assert_eq!(SplitK::CPU.split(32, 350, 784, (128, 64)).1, 2);
        assert!(SplitK::GPU.split(32, 350, 784, (32, 32)).1 >= 10);
    }
}
