//! `gpu-fmnist bench`: GPU against the CPU reference, side by side, as markdown tables.

use std::path::Path;

use crate::bench;
use crate::data::FashionMnist;
use crate::gpu::{DeviceKind, Executor};
use crate::graph::model::{cnn, mlp};

/// Images per training step in every timing (Keras's default).
const BATCH: usize = 32;

pub fn run(
    device: DeviceKind,
    adapter: Option<&str>,
    reps: usize,
    data_dir: Option<&Path>,
    steps: usize,
    threads: &[usize],
) -> anyhow::Result<()> {
    anyhow::ensure!(reps >= 1, "--reps must be at least 1");
    anyhow::ensure!(steps >= 1, "--steps must be at least 1");
    anyhow::ensure!(threads.iter().all(|&t| t >= 1), "--threads must be at least 1");
    let data = FashionMnist::load(data_dir)?;
    anyhow::ensure!(
        data.train.len() >= BATCH,
        "bench times batches of {BATCH}, and {} holds {} training images",
        data.dir.display(),
        data.train.len()
    );
    let (exec, line) = Executor::open(device, adapter)?;
    let Executor::Gpu(ctx) = exec else {
        anyhow::bail!("bench compares a GPU with the CPU ({line}); pick a GPU --device (vulkan for lavapipe)")
    };
    println!("{line}; CPU: ndarray, matmuls on one thread; medians of {reps} runs");
    println!();
    println!("| matmul | GPU ms | GPU GFLOP/s | CPU ms | CPU GFLOP/s | GPU speed / CPU |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (label, op) in bench::matmul_shapes() {
        let t = bench::matmul(&ctx, op, reps, &label)?;
        println!(
            "| {} | {:.3} | {:.1} | {:.3} | {:.1} | {:.2}× |",
            t.label,
            t.gpu_seconds * 1e3,
            t.flop / t.gpu_seconds / 1e9,
            t.cpu_seconds * 1e3,
            t.flop / t.cpu_seconds / 1e9,
            t.cpu_seconds / t.gpu_seconds
        );
    }

    println!();
    println!("Training steps, {steps} per timed run (one submission), batch 32, the model's optimizer, data from {}:", data.dir.display());
    println!();
    let cpu_columns: String = threads
        .iter()
        .map(|t| format!(" CPU ms/step, {t} thread{} |", if *t == 1 { "" } else { "s" }))
        .collect();
    println!(
        "| model | GPU ms/step | GPU images/s |{cpu_columns} GPU speed / fastest CPU | dispatches/step |"
    );
    println!("|---|---:|---:|{}---:|---:|", "---:|".repeat(threads.len()));
    let profiles = [mlp(), cnn()]
        .map(|spec| bench::profile_step(&ctx, &data, &spec, BATCH).map(|p| (spec.name.clone(), p)));
    let gpu = Executor::Gpu(ctx);
    for spec in [mlp(), cnn()] {
        let g = bench::train_steps(&gpu, &data, &spec, BATCH, steps, reps)?;
        let mut row =
            format!("| {} | {:.2} | {:.0} |", spec.name, g.seconds_per_step * 1e3, g.images_per_second);
        let mut fastest = f64::MAX;
        for &t in threads {
            let c = bench::train_steps(&Executor::Cpu { threads: t }, &data, &spec, BATCH, steps, reps)?;
            fastest = fastest.min(c.seconds_per_step);
            row += &format!(" {:.2} |", c.seconds_per_step * 1e3);
        }
        println!("{row} {:.2}× | {} |", fastest / g.seconds_per_step, g.dispatches_per_step);
    }
    for spec in [mlp(), cnn()] {
        let ops = bench::profile_cpu_step(&data, &spec, BATCH)?;
        let total: f64 = ops.iter().map(|k| k.2).sum();
        println!();
        println!(
            "Where a CPU training step of `{}` goes, one thread (each op timed alone; {:.2} ms in all):",
            spec.name,
            total * 1e3
        );
        println!();
        println!("| op | count | ms | share |");
        println!("|---|---:|---:|---:|");
        for (op, n, seconds) in ops.iter().take(8) {
            println!("| {op} | {n} | {:.3} | {:.0}% |", seconds * 1e3, 100.0 * seconds / total);
        }
    }
    for profile in profiles {
        let (name, kernels) = profile?;
        let total: f64 = kernels.iter().map(|k| k.2).sum();
        println!();
        println!(
            "Where a GPU training step of `{name}` goes (each kernel timed alone; {:.2} ms in all):",
            total * 1e3
        );
        println!();
        println!("| kernel | launches | ms | share |");
        println!("|---|---:|---:|---:|");
        for (kernel, n, seconds) in kernels.iter().take(8) {
            println!("| {kernel} | {n} | {:.3} | {:.0}% |", seconds * 1e3, 100.0 * seconds / total);
        }
    }
    Ok(())
}
