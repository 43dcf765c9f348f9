//! `cargo bench`: the matmul kernel on the first Vulkan adapter against ndarray on one thread,
//! for the shapes `gpu-fmnist bench` reports, and whole training steps of the report's two
//! models on the CPU path and on the GPU. (`gpu-fmnist bench` prints the same comparisons as
//! tables; this is the criterion view with its statistics.) Without a Vulkan adapter the GPU
//! groups say they are skipped and the CPU ones run.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};

use gpu_fmnist::bench::matmul_shapes;
use gpu_fmnist::cpu;
use gpu_fmnist::data::FashionMnist;
use gpu_fmnist::device::{DeviceKind, Executor};
use gpu_fmnist::gpu::{GpuContext, GpuEngine};
use gpu_fmnist::graph::model::{cnn, mlp};
use gpu_fmnist::graph::ops::{Matmul, Op, State};
use gpu_fmnist::graph::{Engine, Program};
use gpu_fmnist::rng::Rng;
use gpu_fmnist::train::{TrainConfig, Trainer};

fn vulkan() -> Option<GpuContext> {
    match gpu_fmnist::device::open_gpu(DeviceKind::Vulkan) {
        Ok(ctx) => Some(ctx),
        Err(e) => {
            eprintln!("GPU benchmarks skipped: no Vulkan adapter ({e}); ./setup.sh installs lavapipe");
            None
        }
    }
}

fn matmul(c: &mut Criterion) {
    let ctx = vulkan();
    let mut group = c.benchmark_group("matmul");
    group.sample_size(10);
    for (label, op) in matmul_shapes().into_iter().take(4) {
        let mut p = Program::default();
        let (a, b, out) = (p.f32("a", op.m * op.k), p.f32("b", op.k * op.n), p.f32("c", op.m * op.n));
        let bias = op.bias.map(|_| p.f32("bias", op.n));
        let op = Matmul { a, b, c: out, bias, ..op };
        p.add_list(vec![Op::Matmul(op)]);
        let mut rng = Rng::new(1);
        let (av, bv) = (rng.vec(op.m * op.k, -1.0, 1.0), rng.vec(op.k * op.n, -1.0, 1.0));
        if let Some(ctx) = &ctx {
            let mut gpu = GpuEngine::new(ctx, &p).unwrap();
            gpu.write_f32(a, &av).unwrap();
            gpu.write_f32(b, &bv).unwrap();
            group.bench_function(format!("gpu {label}"), |bench| {
                bench.iter(|| {
                    gpu.run(0, 1).unwrap();
                    ctx.wait().unwrap();
                })
            });
        }
        let mut c_host = vec![0.0f32; op.m * op.n];
        let bias_host = bias.map(|_| vec![0.1f32; op.n]);
        group.bench_function(format!("cpu {label}"), |bench| {
            bench.iter(|| cpu::matmul::matmul(&op, &av, &bv, bias_host.as_deref(), &mut c_host))
        });
    }
    group.finish();
}

/// One training step at batch 32 of each preset, on the repository's sample (a read of the
/// small state tensor waits for the GPU).
fn training_step(c: &mut Criterion) {
    let data =
        FashionMnist::load(Some(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample")))).unwrap();
    let mut executors = vec![("cpu 1 thread", Executor::Cpu { threads: 1 })];
    if let Some(ctx) = vulkan() {
        executors.push(("gpu", Executor::Gpu(Box::new(ctx))));
    }
    let mut group = c.benchmark_group("training step");
    group.sample_size(10);
    for spec in [mlp(), cnn()] {
        for (name, executor) in &executors {
            let config = TrainConfig {
                schedule: Default::default(),
                optimizer: spec.training.optimizer,
                spec: spec.clone(),
                epochs: 1,
                batch_size: 32,
                seed: 1,
            };
            let mut trainer = Trainer::new(executor, &data, config, None).unwrap();
            trainer.run_steps(1).unwrap();
            let (list, state) = (trainer.graph.train_pass.unwrap().full, trainer.graph.state);
            group.bench_function(format!("{} {name}", spec.name), |bench| {
                bench.iter(|| {
                    // Back to the epoch's first batch, so that the cursor never runs off the data.
                    trainer.engine().write_u32(state, State::at_step(1).words()).unwrap();
                    trainer.engine().run(list, 1).unwrap();
                    trainer.engine().read_u32(state).unwrap();
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, matmul, training_step);
criterion_main!(benches);
