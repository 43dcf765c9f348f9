//! `cargo bench`: the matmul kernel on the first Vulkan adapter against ndarray on one thread,
//! for the shapes `gpu-fmnist bench` reports. (`gpu-fmnist bench` prints the same comparison as
//! a table; this is the criterion view with its statistics.)

use criterion::{criterion_group, criterion_main, Criterion};

use gpu_fmnist::bench::matmul_shapes;
use gpu_fmnist::cpu;
use gpu_fmnist::gpu::{DeviceKind, GpuContext, GpuEngine};
use gpu_fmnist::graph::ops::{Matmul, Op};
use gpu_fmnist::graph::{Engine, Program};
use gpu_fmnist::rng::Rng;

fn matmul(c: &mut Criterion) {
    let ctx = GpuContext::open(DeviceKind::Vulkan).expect("a Vulkan adapter (lavapipe: ./setup.sh)");
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
        let mut gpu = GpuEngine::new(&ctx, &p).unwrap();
        gpu.write_f32(a, &av).unwrap();
        gpu.write_f32(b, &bv).unwrap();
        group.bench_function(format!("gpu {label}"), |bench| {
            bench.iter(|| {
                gpu.run(0, 1).unwrap();
                ctx.wait().unwrap();
            })
        });
        let mut c_host = vec![0.0f32; op.m * op.n];
        let bias_host = bias.map(|_| vec![0.1f32; op.n]);
        group.bench_function(format!("cpu {label}"), |bench| {
            bench.iter(|| cpu::matmul::matmul(&op, &av, &bv, bias_host.as_deref(), &mut c_host))
        });
    }
    group.finish();
}

criterion_group!(benches, matmul);
criterion_main!(benches);
