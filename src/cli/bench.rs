//! `gpu-fmnist bench`: GPU against the CPU reference, side by side, as markdown tables.

use std::path::Path;

use crate::bench;
use crate::data::FashionMnist;
use crate::gpu::{DeviceKind, Executor};
use crate::graph::model::{cnn, mlp};

pub fn run(
    device: DeviceKind,
    adapter: Option<&str>,
    reps: usize,
    data_dir: Option<&Path>,
    steps: usize,
) -> anyhow::Result<()> {
    let data = FashionMnist::load(data_dir)?;
    let (exec, line) = Executor::open(device, adapter)?;
    let Executor::Gpu(ctx) = exec else {
        anyhow::bail!("bench compares a GPU with the CPU ({line}); pick a GPU --device (vulkan for lavapipe)")
    };
    println!("{line}; CPU: ndarray on one thread; medians of {reps} runs");
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
    println!("| model | GPU ms/step | GPU images/s | CPU ms/step | CPU images/s | GPU speed / CPU | dispatches/step |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let profiles = [mlp(), cnn()]
        .map(|spec| bench::profile_step(&ctx, &data, &spec, 32).map(|p| (spec.name.clone(), p)));
    let (cpu, gpu) = (Executor::cpu(), Executor::Gpu(ctx));
    for spec in [mlp(), cnn()] {
        let g = bench::train_steps(&gpu, &data, &spec, 32, steps, reps)?;
        let c = bench::train_steps(&cpu, &data, &spec, 32, steps, reps)?;
        println!(
            "| {} | {:.2} | {:.0} | {:.2} | {:.0} | {:.2}× | {} |",
            spec.name,
            g.seconds_per_step * 1e3,
            g.images_per_second,
            c.seconds_per_step * 1e3,
            c.images_per_second,
            c.seconds_per_step / g.seconds_per_step,
            g.dispatches_per_step
        );
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
