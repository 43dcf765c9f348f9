//! `gpu-fmnist bench`: GPU against the CPU reference, side by side, as a markdown table.

use crate::bench;
use crate::gpu::{DeviceKind, Executor};

pub fn run(device: DeviceKind, adapter: Option<&str>, reps: usize) -> anyhow::Result<()> {
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
    Ok(())
}
