//! Timings for `gpu-fmnist bench` and `benches/`: the GPU and the CPU reference side by side,
//! in one process, reported as medians.

use std::time::Instant;

use crate::cpu;
use crate::gpu::{GpuContext, GpuEngine};
use crate::graph::ops::{Act, Matmul, Op};
use crate::graph::{Engine, Program};
use crate::rng::Rng;

/// The median of `reps` timings of `f`, in seconds.
pub fn median_seconds(reps: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// One matmul shape, timed on both executors.
#[derive(Debug, Clone)]
pub struct MatmulTiming {
    pub label: String,
    pub flop: f64,
    pub gpu_seconds: f64,
    pub cpu_seconds: f64,
}

/// Times `c = op(a)·op(b)` (m, n, k) on the GPU (kernel only: inputs stay on the device; by
/// timestamp queries where the adapter has them, else each timed run is `inner` launches and
/// one wait) and with ndarray on one CPU thread.
pub fn matmul(ctx: &GpuContext, op: Matmul, reps: usize, label: &str) -> anyhow::Result<MatmulTiming> {
    let mut rng = Rng::new(1);
    let mut p = Program::default();
    let (a, b, c) = (p.f32("a", op.m * op.k), p.f32("b", op.k * op.n), p.f32("c", op.m * op.n));
    let bias = op.bias.map(|_| p.f32("bias", op.n));
    let op = Matmul { a, b, c, bias, ..op };
    p.add_list(vec![Op::Matmul(op)]);
    let (av, bv) = (rng.vec(op.m * op.k, -1.0, 1.0), rng.vec(op.k * op.n, -1.0, 1.0));
    let mut gpu = GpuEngine::new(ctx, &p)?;
    gpu.write_f32(a, &av)?;
    gpu.write_f32(b, &bv)?;
    let flop = 2.0 * (op.m * op.n * op.k) as f64;
    // Enough launches per timed run that the wait costs little next to them (aim: ~50 ms).
    let inner = (5e7 / flop).ceil().clamp(1.0, 200.0) as usize;
    gpu.run(0, 1)?;
    ctx.wait()?;
    // On the device's clock where it has timestamp queries (each dispatch of the product, summed:
    // a split-K product is two); else on the host's, around a wait.
    let gpu_seconds = if ctx.has_timestamps() {
        let mut times = Vec::with_capacity(reps);
        for _ in 0..reps {
            times.push(gpu.profile(0, inner)?.iter().map(|(_, s)| s).sum::<f64>());
        }
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    } else {
        median_seconds(reps, || {
            gpu.run(0, inner)?;
            ctx.wait()
        })? / inner as f64
    };
    let mut out = vec![0.0f32; op.m * op.n];
    let bias_v = bias.map(|_| vec![0.1f32; op.n]);
    let cpu_seconds = median_seconds(reps, || {
        for _ in 0..inner {
            cpu::matmul::matmul(&op, &av, &bv, bias_v.as_deref(), &mut out);
        }
        Ok(())
    })? / inner as f64;
    Ok(MatmulTiming { label: label.to_string(), flop, gpu_seconds, cpu_seconds })
}

/// The matmul shapes `bench` reports: the usual square one and the report's layers.
pub fn matmul_shapes() -> Vec<(String, Matmul)> {
    let mm = |m, n, k, trans_a, trans_b, bias: bool, act| Matmul {
        a: crate::graph::T(0),
        b: crate::graph::T(0),
        c: crate::graph::T(0),
        m,
        n,
        k,
        trans_a,
        trans_b,
        bias: bias.then_some(crate::graph::T(0)),
        act,
        dropout: None,
    };
    vec![
        ("1024×1024 · 1024×1024".into(), mm(1024, 1024, 1024, false, false, false, Act::Linear)),
        (
            "256×784 · 784×350 (B rows of 350: 4 scalar loads)".into(),
            mm(256, 350, 784, false, false, false, Act::Linear),
        ),
        ("256×784 · (350×784)ᵀ".into(), mm(256, 350, 784, false, true, false, Act::Linear)),
        ("MLP dense 1: 32×784 · (350×784)ᵀ + b, relu".into(), mm(32, 350, 784, false, true, true, Act::Relu)),
        ("MLP dense 1 dW: (32×350)ᵀ · 32×784".into(), mm(350, 784, 32, true, false, false, Act::Linear)),
        (
            "CNN conv 1: 25088×16 · (64×16)ᵀ + b, relu".into(),
            mm(25_088, 64, 16, false, true, true, Act::Relu),
        ),
        (
            "CNN conv 1 dW: (25088×64)ᵀ · 25088×16 (split-K)".into(),
            mm(64, 16, 25_088, true, false, false, Act::Linear),
        ),
        (
            "CNN conv 2: 512×1024 · (64×1024)ᵀ + b, relu".into(),
            mm(512, 64, 1024, false, true, true, Act::Relu),
        ),
    ]
}

/// Training throughput of one model on one executor.
#[derive(Debug, Clone)]
pub struct StepTiming {
    pub seconds_per_step: f64,
    pub images_per_second: f64,
    pub dispatches_per_step: usize,
}

/// Times full training steps of `spec` (batch `batch`, the model's optimizer) on `executor`:
/// each timed run is `steps` steps (0: every full batch of an epoch) in one submission and one
/// wait, after a warm-up step.
pub fn train_steps(
    executor: &crate::device::Executor,
    data: &crate::data::FashionMnist,
    spec: &crate::graph::ModelSpec,
    batch: usize,
    steps: usize,
    reps: usize,
) -> anyhow::Result<StepTiming> {
    let config = crate::train::TrainConfig {
        schedule: spec.training.schedule_for(
            None,
            spec.training.optimizer.lr(),
            data.train.len().div_ceil(batch) as u64,
            // The model's own run (a timing does not depend on the rates).
            spec.training.epochs,
        )?,
        optimizer: spec.training.optimizer,
        spec: spec.clone(),
        epochs: 1,
        batch_size: batch,
        seed: 1,
    };
    let mut trainer = crate::train::Trainer::new(executor, data, config, None)?;
    let pass = trainer.graph.train_pass.unwrap();
    let steps = if steps == 0 { pass.full_steps } else { steps.min(pass.full_steps) }.max(1);
    trainer.run_steps(1)?;
    let state = trainer.graph.state;
    let seconds = median_seconds(reps, || {
        // Every timed run starts at the split's first image, so none runs past its end.
        trainer.engine().write_u32(state, crate::graph::ops::State::at_step(1).words())?;
        trainer.engine().run(pass.full, steps)?;
        // A read is the only way to wait for an engine through the trait: one small tensor.
        trainer.engine().read_u32(state).map(|_| ())
    })?;
    let seconds_per_step = seconds / steps as f64;
    Ok(StepTiming {
        seconds_per_step,
        images_per_second: batch as f64 / seconds_per_step,
        dispatches_per_step: trainer.dispatches_per_step(),
    })
}

/// Sums a profile's entries by name: (name, count, seconds), slowest first.
fn by_name(entries: Vec<(String, f64)>) -> Vec<(String, usize, f64)> {
    let mut out: Vec<(String, usize, f64)> = Vec::new();
    for (name, seconds) in entries {
        match out.iter_mut().find(|(n, _, _)| *n == name) {
            Some(entry) => {
                entry.1 += 1;
                entry.2 += seconds;
            }
            None => out.push((name, 1, seconds)),
        }
    }
    out.sort_by(|a, b| b.2.total_cmp(&a.2));
    out
}

/// The training schedule of `spec` at batch `batch`, over the training split of `data`.
fn step_graph(
    data: &crate::data::FashionMnist,
    spec: &crate::graph::ModelSpec,
    batch: usize,
) -> anyhow::Result<crate::graph::Graph> {
    let split = [(crate::data::SplitName::Train, data.train.len())];
    crate::graph::Graph::build(spec, batch, &split, Some(spec.training.optimizer), 1)
}

/// Where one CPU training step of `spec` spends its time, on one thread, by op:
/// (op, count per step, seconds per step), slowest first.
pub fn profile_cpu_step(
    data: &crate::data::FashionMnist,
    spec: &crate::graph::ModelSpec,
    batch: usize,
) -> anyhow::Result<Vec<(String, usize, f64)>> {
    use crate::data::SplitName;
    let graph = step_graph(data, spec, batch)?;
    let mut cpu = crate::cpu::CpuEngine::new(&graph.program);
    graph.upload_split(&mut cpu, SplitName::Train, &data.train.images, &data.train.labels)?;
    let order: Vec<u32> = (0..data.train.len() as u32).collect();
    cpu.write_u32(graph.splits[&SplitName::Train].index, &order)?;
    let list = graph.train_pass.ok_or_else(|| anyhow::anyhow!("no training pass"))?.full;
    cpu.run(list, 1)?;
    Ok(by_name(cpu.profile(list, 5)?))
}

/// Where one GPU training step of `spec` spends its time, by kernel entry point:
/// (entry point, launches per step, seconds per step), slowest first.
pub fn profile_step(
    ctx: &GpuContext,
    data: &crate::data::FashionMnist,
    spec: &crate::graph::ModelSpec,
    batch: usize,
) -> anyhow::Result<Vec<(String, usize, f64)>> {
    use crate::data::SplitName;
    let graph = step_graph(data, spec, batch)?;
    let mut gpu = GpuEngine::new(ctx, &graph.program)?;
    graph.upload_split(&mut gpu, SplitName::Train, &data.train.images, &data.train.labels)?;
    let list = graph.train_pass.unwrap().full;
    gpu.run(list, 1)?;
    Ok(by_name(gpu.profile(list, 10)?))
}

/// One dispatch of a profiled GPU training step.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DispatchTime {
    pub name: String,
    /// Seconds from the step's first dispatch's start.
    pub start: f64,
    pub seconds: f64,
    /// Seconds from its end to the next dispatch's start (0 for the last).
    pub gap: f64,
}

/// A whole GPU training step timed dispatch by dispatch (`bench --profile-step`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepProfile {
    pub model: String,
    pub adapter: String,
    pub batch: usize,
    pub dispatches: Vec<DispatchTime>,
    /// The dispatches' own seconds, summed.
    pub busy: f64,
    /// From the first dispatch's start to the last one's end, on the device.
    pub span: f64,
    /// The profiled step on the host's clock, from before its submission to after its last
    /// timestamp was read: it holds `span`.
    pub profiled_wall: f64,
    /// The same step run as training runs it (one pass), on the host's clock around
    /// submit-and-wait: the fastest of five.
    pub wall: f64,
}

/// The dispatches of one GPU training step of `spec` at batch `batch`, as the engine compiles
/// them, in order.
pub fn step_dispatch_names(
    ctx: &GpuContext,
    data: &crate::data::FashionMnist,
    spec: &crate::graph::ModelSpec,
    batch: usize,
) -> anyhow::Result<Vec<String>> {
    let graph = step_graph(data, spec, batch)?;
    let gpu = GpuEngine::new(ctx, &graph.program)?;
    Ok(gpu.dispatch_names(graph.train_pass.ok_or_else(|| anyhow::anyhow!("no training pass"))?.full))
}

/// Times one GPU training step of `spec` at batch `batch` dispatch by dispatch, after a few
/// warm-up steps; `None` on an adapter without timestamp queries.
pub fn profile_whole_step(
    ctx: &GpuContext,
    data: &crate::data::FashionMnist,
    spec: &crate::graph::ModelSpec,
    batch: usize,
) -> anyhow::Result<Option<StepProfile>> {
    use crate::data::SplitName;
    use crate::graph::Engine;
    let graph = step_graph(data, spec, batch)?;
    let mut gpu = GpuEngine::new(ctx, &graph.program)?;
    graph.upload_split(&mut gpu, SplitName::Train, &data.train.images, &data.train.labels)?;
    let order: Vec<u32> = (0..data.train.len() as u32).collect();
    gpu.write_u32(graph.splits[&SplitName::Train].index, &order)?;
    let list = graph.train_pass.ok_or_else(|| anyhow::anyhow!("no training pass"))?.full;
    gpu.run(list, 3)?;
    let mut wall = f64::INFINITY;
    for _ in 0..5 {
        ctx.wait()?;
        let start = std::time::Instant::now();
        gpu.run(list, 1)?;
        ctx.wait()?;
        wall = wall.min(start.elapsed().as_secs_f64());
    }
    let start = std::time::Instant::now();
    let Some(timed) = gpu.profile_run(list)? else { return Ok(None) };
    let profiled_wall = start.elapsed().as_secs_f64();
    let dispatches: Vec<DispatchTime> = timed
        .iter()
        .enumerate()
        .map(|(i, (name, start, seconds))| DispatchTime {
            name: name.clone(),
            start: *start,
            seconds: *seconds,
            gap: timed.get(i + 1).map_or(0.0, |next| (next.1 - start - seconds).max(0.0)),
        })
        .collect();
    let busy = dispatches.iter().map(|d| d.seconds).sum();
    let span = dispatches.last().map_or(0.0, |d| d.start + d.seconds);
    Ok(Some(StepProfile {
        model: spec.name.clone(),
        adapter: ctx.adapter.info.name.clone(),
        batch,
        dispatches,
        busy,
        span,
        profiled_wall,
        wall,
    }))
}

/// 2·m·n·k summed over the products of op list `list` of `program`.
fn list_flops(program: &Program, list: usize) -> f64 {
    program.lists[list]
        .iter()
        .map(|op| match op {
            Op::Matmul(mm) => 2.0 * (mm.m * mm.n * mm.k) as f64,
            _ => 0.0,
        })
        .sum()
}

/// The floating-point operations of the products in one training step of `spec` at batch
/// `batch` (a full batch; forward, backward and weight gradients). Everything else a step does
/// — im2col, pooling, activations, the update — is memory traffic, counted by no FLOP floor.
pub fn step_flops(
    data: &crate::data::FashionMnist,
    spec: &crate::graph::ModelSpec,
    batch: usize,
) -> anyhow::Result<f64> {
    let graph = step_graph(data, spec, batch)?;
    let pass = graph.train_pass.ok_or_else(|| anyhow::anyhow!("no training pass"))?;
    Ok(list_flops(&graph.program, pass.full))
}

/// The best rate, in FLOP/s, of `bench`'s 1024×1024·1024×1024 product on this CPU with `threads`
/// threads (ndarray's GEMM, as the CPU path runs it): the fastest of three after a warm-up. It
/// stands for the arithmetic this machine can do, and makes `bench`'s floor.
pub fn product_rate(threads: usize) -> anyhow::Result<f64> {
    let (_, op) = matmul_shapes().swap_remove(0);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build()?;
    let mut rng = Rng::new(7);
    let (a, b) = (rng.vec(op.m * op.k, -1.0, 1.0), rng.vec(op.k * op.n, -1.0, 1.0));
    let mut c = vec![0.0f32; op.m * op.n];
    let mut best = f64::INFINITY;
    for rep in 0..4 {
        let start = Instant::now();
        cpu::matmul::matmul_parallel(&pool, &op, &a, &b, None, &mut c);
        if rep > 0 {
            best = best.min(start.elapsed().as_secs_f64());
        }
    }
    Ok(2.0 * (op.m * op.n * op.k) as f64 / best)
}

/// One engine's training speed at one setting: a row of `bench`'s epoch table and of `--json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EpochTiming {
    /// `gpu-fmnist`, `torch` or `keras`.
    pub engine: String,
    /// The adapter's name, or `cpu`.
    pub device: String,
    pub model: String,
    pub batch: usize,
    /// CPU threads (0: the engine's default, or not a CPU).
    pub threads: usize,
    pub seconds_per_step: f64,
    /// An epoch of the training split at this speed: its full batches × seconds per step.
    pub epoch_seconds: f64,
    pub images_per_second: f64,
    /// Kernel launches per step (the GPU path).
    pub dispatches_per_step: Option<usize>,
}

/// One row per engine, device, model, batch and thread count, in the order first met: the
/// round whose seconds per step is the median of that row's rounds (the lower middle one of an
/// even count).
pub fn median_rows(rounds: Vec<EpochTiming>) -> Vec<EpochTiming> {
    let key = |r: &EpochTiming| (r.engine.clone(), r.device.clone(), r.model.clone(), r.batch, r.threads);
    let mut groups: Vec<Vec<EpochTiming>> = Vec::new();
    for r in rounds {
        match groups.iter_mut().find(|g| key(&g[0]) == key(&r)) {
            Some(g) => g.push(r),
            None => groups.push(vec![r]),
        }
    }
    groups
        .into_iter()
        .map(|mut g| {
            g.sort_by(|a, b| a.seconds_per_step.total_cmp(&b.seconds_per_step));
            g.swap_remove((g.len() - 1) / 2)
        })
        .collect()
}

/// benches/peers.py, carried in the binary so that `bench --peers` runs from any directory.
pub const PEERS_SCRIPT: &str = include_str!("../benches/peers.py");

/// What `bench --peers` got from one peer engine.
#[derive(Debug, Clone)]
pub enum Peer {
    Timed(EpochTiming),
    /// The engine could not be imported (or Python not started): why.
    Missing {
        engine: String,
        reason: String,
    },
}

/// Runs benches/peers.py with `python` for the report's models among `models`: each (engine,
/// model, threads, batch) timed over `steps` consecutive steps after a warm-up step, on the
/// first 55,000 training images of `data_dir`. `epoch_steps(batch)` turns per-step times into
/// epochs.
#[allow(clippy::too_many_arguments)]
pub fn peers(
    python: &str,
    engines: &[&str],
    data_dir: &std::path::Path,
    models: &[&str],
    batches: &[usize],
    threads: &[usize],
    steps: usize,
    epoch_steps: impl Fn(usize) -> usize,
) -> anyhow::Result<Vec<Peer>> {
    let models: Vec<&str> = models.iter().copied().filter(|m| matches!(*m, "mlp" | "cnn")).collect();
    if models.is_empty() {
        return Ok(vec![]);
    }
    let script = std::env::temp_dir().join(format!("gpu-fmnist-peers-{}.py", std::process::id()));
    std::fs::write(&script, PEERS_SCRIPT)?;
    let join = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    let output = std::process::Command::new(python)
        .arg(&script)
        .args(["--engine", &engines.join(","), "--model", &models.join(",")])
        .args(["--device", "cpu", "--threads", &join(threads), "--batch", &join(batches)])
        .args(["--steps", &steps.to_string()])
        .arg("--data-dir")
        .arg(data_dir)
        .output();
    let _ = std::fs::remove_file(&script);
    let output = match output {
        Ok(o) => o,
        Err(e) => {
            let reason = format!("cannot run {python}: {e}");
            return Ok(engines
                .iter()
                .map(|e| Peer::Missing { engine: e.to_string(), reason: reason.clone() })
                .collect());
        }
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message");
        anyhow::bail!("benches/peers.py failed ({}): {last}", output.status);
    }
    let mut out = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        let number = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        if v.get("missing").is_some() {
            out.push(Peer::Missing { engine: text("engine"), reason: text("missing") });
            continue;
        }
        let (batch, steps) = (number("batch") as usize, number("steps"));
        let seconds_per_step = number("seconds") / steps;
        out.push(Peer::Timed(EpochTiming {
            engine: text("engine"),
            device: "cpu".into(),
            model: text("model"),
            batch,
            threads: number("threads") as usize,
            seconds_per_step,
            epoch_seconds: seconds_per_step * epoch_steps(batch) as f64,
            images_per_second: batch as f64 / seconds_per_step,
            dispatches_per_step: None,
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rounds collapse to one row per engine, model, batch and thread count, in the order first
    /// met, each the round with the median seconds per step (the lower middle of an even count).
    #[test]
    fn rounds_collapse_to_their_medians() {
        let row = |engine: &str, threads, seconds| EpochTiming {
            engine: engine.into(),
            device: "cpu".into(),
            model: "mlp".into(),
            batch: 32,
            threads,
            seconds_per_step: seconds,
            epoch_seconds: seconds * 1718.0,
            images_per_second: 32.0 / seconds,
            dispatches_per_step: None,
        };
        let rounds = vec![
            row("gpu-fmnist", 1, 3.0),
            row("torch", 1, 5.0),
            row("gpu-fmnist", 2, 9.0),
            row("torch", 1, 4.0),
            row("gpu-fmnist", 1, 1.0),
            row("gpu-fmnist", 2, 7.0),
            row("gpu-fmnist", 1, 2.0),
        ];
        let got: Vec<(String, usize, f64)> =
            median_rows(rounds).into_iter().map(|r| (r.engine, r.threads, r.seconds_per_step)).collect();
        assert_eq!(
            got,
            vec![("gpu-fmnist".into(), 1, 2.0), ("torch".into(), 1, 4.0), ("gpu-fmnist".into(), 2, 7.0)]
        );
    }

    /// The floor's FLOPs of an MLP step, counted by hand: each Dense layer's product forward, its
    /// weight gradient and its input gradient (the first layer's too: BatchNorm before it
    /// learns), 2·B·in·out each.
    #[test]
    fn a_training_step_counts_every_product_three_times() {
        let data = crate::data::FashionMnist::load_dir(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/sample"
        )))
        .unwrap();
        let per_image: usize = [(784, 350), (350, 80), (80, 10)].iter().map(|(i, o)| i * o).sum();
        for batch in [32, 7] {
            let f = step_flops(&data, &crate::graph::model::mlp(), batch).unwrap();
            assert_eq!(f, (2 * 3 * batch * per_image) as f64, "batch {batch}");
        }
        // A model without BatchNorm first needs no input gradient for its first layer.
        let mut spec = crate::graph::model::mlp();
        spec.layers.retain(|l| !matches!(l, crate::graph::Layer::BatchNorm { .. }));
        let f = step_flops(&data, &spec, 32).unwrap();
        assert_eq!(f, (2 * 32 * (3 * per_image - 784 * 350)) as f64);
    }
}
