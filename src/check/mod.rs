//! Kernel checks: run an op on the GPU and on the CPU reference with the same random inputs and
//! compare every output element. Used by `gpu-fmnist check` and by the test suite.
//!
//! The tolerance rule, stated once (see [`Rule`]): an element passes when
//!
//! ```text
//! |gpu − ref| ≤ 1e-5 + 1e-4·|ref| + 2·√K·2⁻²⁴·Σ|terms|
//! ```
//!
//! with K the number of terms summed into the element and Σ|terms| their absolute sum (two
//! correct f32 sums of K terms in different orders differ by up to about √K·2⁻²⁴·Σ|terms|).
//! Results that involve no rounding — gathers, pooling maxima, argmax, counts, dropout masks —
//! must be equal bit for bit.

pub mod cases;

pub use cases::{cases, Size};

use crate::cpu::CpuEngine;
use crate::gpu::{GpuContext, GpuEngine};
use crate::graph::{DType, Engine, Program, T};

/// Tensor contents for inputs and results.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    U32(Vec<u32>),
}

impl Data {
    fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::U32(v) => v.len(),
        }
    }

    fn abs(&self) -> Data {
        match self {
            Data::F32(v) => Data::F32(v.iter().map(|x| x.abs()).collect()),
            Data::U32(v) => Data::U32(v.clone()),
        }
    }

    fn as_f32(&self) -> Vec<f32> {
        match self {
            Data::F32(v) => v.clone(),
            Data::U32(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
}

/// How an output is compared.
#[derive(Debug, Clone)]
pub enum Rule {
    /// Equal bit for bit.
    Exact,
    /// The tolerance rule with K terms per element; Σ|terms| per element comes from running
    /// the reference on the absolute values of the inputs (for ops that are sums of products
    /// of their inputs, that is exactly Σ|terms|), through `magnitude` if given, else the
    /// case's own program.
    Sum { k: usize },
    /// The tolerance rule with K terms and Σ|terms| given per element.
    SumOf { k: usize, abs_sum: Vec<f32> },
    /// An output updated in place (an optimizer's weights and moments), judged by the size of
    /// its change, not of its value: with Δ = after − before (before: the case's input),
    /// |Δgpu − Δref| ≤ 1e-4·|Δref| + 2·√K·2⁻²⁴·Σ|terms of Δ| + 2⁻²⁴·(|before| + |after|), the
    /// last term the rounding of the stored sum. A step of 3e-4 on a weight of 1 may be off by
    /// about 4e-7, not by the 1e-4 that [`Rule::Sum`] would allow.
    Update { k: usize },
}

/// One output of a case.
#[derive(Debug, Clone)]
pub struct Output {
    pub t: T,
    pub name: &'static str,
    /// Elements compared (a prefix of the tensor).
    pub len: usize,
    pub rule: Rule,
    /// Filled with NaN (or 0xFFFFFFFF) on the GPU before the run, so that an element the
    /// kernel fails to write cannot pass. Off for outputs updated in place.
    pub poison: bool,
}

/// One op (or a few ops that make one layer's pass) on one shape.
#[derive(Debug, Clone)]
pub struct Case {
    pub op: &'static str,
    /// `forward` or `backward`.
    pub direction: &'static str,
    pub shape: String,
    /// List 0 is what runs.
    pub program: Program,
    pub inputs: Vec<(T, Data)>,
    pub outputs: Vec<Output>,
    /// The program whose run on |inputs| gives Σ|terms| (e.g. with a linear activation);
    /// `None`: the case's own program.
    pub magnitude: Option<Program>,
}

/// The outcome of one output of one case: a row of `gpu-fmnist check`'s table.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub op: &'static str,
    pub direction: &'static str,
    pub shape: String,
    pub output: &'static str,
    pub max_abs: f64,
    pub max_rel: f64,
    /// The first failing element: (index, gpu, reference, allowed error).
    pub first_failure: Option<(usize, f64, f64, f64)>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.first_failure.is_none()
    }
}

/// The allowed |gpu − ref| for one element.
pub fn bound(reference: f64, k: usize, abs_sum: f64) -> f64 {
    1e-5 + 1e-4 * reference.abs() + 2.0 * (k as f64).sqrt() * 2f64.powi(-24) * abs_sum
}

fn load(engine: &mut dyn Engine, inputs: &[(T, Data)]) -> anyhow::Result<()> {
    for (t, data) in inputs {
        match data {
            Data::F32(v) => engine.write_f32(*t, v)?,
            Data::U32(v) => engine.write_u32(*t, v)?,
        }
    }
    Ok(())
}

fn read(engine: &mut dyn Engine, program: &Program, out: &Output) -> anyhow::Result<Data> {
    Ok(match program.tensors[out.t.0].dtype {
        DType::F32 => Data::F32(engine.read_f32(out.t)?[..out.len].to_vec()),
        DType::U32 => Data::U32(engine.read_u32(out.t)?[..out.len].to_vec()),
    })
}

/// Runs `case` on the CPU reference, returning each output.
pub fn run_reference(case: &Case) -> anyhow::Result<Vec<Data>> {
    let mut cpu = CpuEngine::new(&case.program);
    load(&mut cpu, &case.inputs)?;
    cpu.run(0, 1)?;
    case.outputs.iter().map(|o| read(&mut cpu, &case.program, o)).collect()
}

/// Runs `case` on the GPU with poisoned outputs, returning each output.
pub fn run_gpu(ctx: &GpuContext, case: &Case) -> anyhow::Result<Vec<Data>> {
    let mut gpu = GpuEngine::new(ctx, &case.program)?;
    load(&mut gpu, &case.inputs)?;
    for o in case.outputs.iter().filter(|o| o.poison) {
        let len = case.program.tensors[o.t.0].len;
        match case.program.tensors[o.t.0].dtype {
            DType::F32 => gpu.write_f32(o.t, &vec![f32::NAN; len])?,
            DType::U32 => gpu.write_u32(o.t, &vec![u32::MAX; len])?,
        }
    }
    gpu.run(0, 1)?;
    case.outputs.iter().map(|o| read(&mut gpu, &case.program, o)).collect()
}

/// Σ|terms| for each output that needs it, by running the magnitude program on |inputs|.
pub fn magnitudes(case: &Case) -> anyhow::Result<Vec<Option<Vec<f32>>>> {
    let needed = case.outputs.iter().any(|o| matches!(o.rule, Rule::Sum { .. }));
    if !needed {
        return Ok(case.outputs.iter().map(|_| None).collect());
    }
    let program = case.magnitude.as_ref().unwrap_or(&case.program);
    let mut cpu = CpuEngine::new(program);
    let abs: Vec<(T, Data)> = case.inputs.iter().map(|(t, d)| (*t, d.abs())).collect();
    load(&mut cpu, &abs)?;
    cpu.run(0, 1)?;
    case.outputs
        .iter()
        .map(|o| match o.rule {
            Rule::Sum { .. } => Ok(Some(read(&mut cpu, program, o)?.as_f32())),
            _ => Ok(None),
        })
        .collect()
}

/// Compares one output.
pub fn compare(case: &Case, out: &Output, gpu: &Data, reference: &Data, abs_sum: Option<&[f32]>) -> Verdict {
    let mut v = Verdict {
        op: case.op,
        direction: case.direction,
        shape: case.shape.clone(),
        output: out.name,
        max_abs: 0.0,
        max_rel: 0.0,
        first_failure: None,
    };
    let (g, r) = (gpu.as_f32(), reference.as_f32());
    assert_eq!(gpu.len(), reference.len());
    let before: Vec<f32> = match out.rule {
        Rule::Update { .. } => match case.inputs.iter().find(|(t, _)| *t == out.t) {
            Some((_, d)) => d.as_f32(),
            None => panic!("{}: an Update output must be an input too", out.name),
        },
        _ => vec![],
    };
    for i in 0..r.len() {
        let (gi, ri) = (g[i] as f64, r[i] as f64);
        let err = (gi - ri).abs();
        let allowed = match &out.rule {
            Rule::Exact => 0.0,
            Rule::Sum { k } => bound(ri, *k, abs_sum.unwrap()[i] as f64),
            Rule::SumOf { k, abs_sum } => bound(ri, *k, abs_sum[i] as f64),
            Rule::Update { k } => {
                let b = before[i] as f64;
                let delta = (ri - b).abs();
                1e-4 * delta
                    + 2.0 * (*k as f64).sqrt() * 2f64.powi(-24) * delta
                    + 2f64.powi(-24) * (b.abs() + ri.abs())
            }
        };
        let exact_equal = match (gpu, reference) {
            (Data::U32(a), Data::U32(b)) => a[i] == b[i],
            (Data::F32(a), Data::F32(b)) => a[i].to_bits() == b[i].to_bits() || a[i] == b[i],
            _ => false,
        };
        let ok = if matches!(out.rule, Rule::Exact) {
            exact_equal
        } else {
            err <= allowed // NaN compares false: a NaN never passes
        };
        if err.is_nan() {
            v.max_abs = f64::NAN;
            v.max_rel = f64::NAN;
        } else if !v.max_abs.is_nan() {
            v.max_abs = v.max_abs.max(err);
            v.max_rel = v.max_rel.max(err / ri.abs().max(1e-30));
        }
        if !ok && v.first_failure.is_none() {
            v.first_failure = Some((i, gi, ri, allowed));
        }
    }
    v
}

/// Runs one case on both executors and judges every output.
pub fn check_case(ctx: &GpuContext, case: &Case) -> anyhow::Result<Vec<Verdict>> {
    let reference = run_reference(case)?;
    let gpu = run_gpu(ctx, case)?;
    let mags = magnitudes(case)?;
    Ok(case
        .outputs
        .iter()
        .enumerate()
        .map(|(i, o)| compare(case, o, &gpu[i], &reference[i], mags[i].as_deref()))
        .collect())
}
