//! Device discovery: the lavapipe adapter is listed and opens with its own limits.

use std::process::Command;

use gpu_fmnist::device::{list_adapters, DeviceKind, Executor};

#[test]
fn lists_lavapipe_on_vulkan() {
    let adapters = list_adapters(DeviceKind::Vulkan);
    let names: Vec<_> = adapters.iter().map(|a| a.info.name.clone()).collect();
    assert!(names.iter().any(|n| n.contains("llvmpipe")), "adapters: {names:?}");
}

#[test]
fn opens_vulkan_with_adapter_limits_not_webgpu_defaults() {
    let (exec, line) = Executor::open(DeviceKind::Vulkan, Some("LLVMPIPE")).unwrap();
    assert!(line.contains("llvmpipe"), "{line}");
    let Executor::Gpu(ctx) = exec else { panic!("expected a GPU") };
    let limits = ctx.device.limits();
    assert_eq!(
        limits.max_storage_buffers_per_shader_stage,
        ctx.adapter.limits.max_storage_buffers_per_shader_stage
    );
    assert!(
        limits.max_storage_buffers_per_shader_stage
            > wgpu::Limits::default().max_storage_buffers_per_shader_stage
    );
}

#[test]
fn unknown_adapter_name_is_one_clear_error() {
    // It names what was asked for and the adapters that exist (or, with none, what to install).
    let err = Executor::open(DeviceKind::Vulkan, Some("no-such-gpu")).err().unwrap().to_string();
    let found = list_adapters(DeviceKind::Vulkan);
    assert!(err.contains("no-such-gpu") || found.is_empty(), "{err}");
    for a in &found {
        assert!(err.contains(&a.info.name), "{err} lacks {}", a.info.name);
    }
}

#[test]
fn auto_without_hardware_falls_back_to_cpu_and_says_so() {
    let (exec, line) = Executor::open(DeviceKind::Auto, None).unwrap();
    if list_adapters(DeviceKind::Auto).iter().any(|a| a.is_hardware()) {
        assert!(matches!(exec, Executor::Gpu(_)), "{line}");
    } else {
        assert!(matches!(exec, Executor::Cpu { .. }), "{line}");
        assert!(line.contains("cpu"), "{line}");
    }
}

#[test]
fn devices_command_shows_llvmpipe() {
    let out = Command::new(env!("CARGO_BIN_EXE_gpu-fmnist")).arg("devices").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    // lavapipe here; a hardware GPU elsewhere.
    let adapter = text.contains("llvmpipe") || text.contains("DiscreteGpu") || text.contains("IntegratedGpu");
    assert!(adapter && text.contains("Vulkan") && text.contains("timestamp queries"), "{text}");
}

/// `bench --profile-step`: a real training step timed dispatch by dispatch on lavapipe (which
/// has timestamp queries) — the dispatches the engine compiled, in order, each with a time and
/// a gap, and their sum inside the span on the device and that inside the profiled step's wall time.
#[test]
fn a_whole_gpu_step_is_timed_dispatch_by_dispatch() {
    use gpu_fmnist::bench::{profile_whole_step, step_dispatch_names};
    let Ok(ctx) = gpu_fmnist::device::open_gpu(DeviceKind::Vulkan) else {
        assert!(std::env::var_os("CI").is_none(), "no Vulkan adapter in CI");
        return;
    };
    if !ctx.has_timestamps() {
        eprintln!("skipped: {} has no timestamp queries", ctx.adapter.info.name);
        return;
    }
    let data = gpu_fmnist::data::FashionMnist::load_dir(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/sample"
    )))
    .unwrap();
    for spec in [gpu_fmnist::graph::model::mlp(), gpu_fmnist::graph::model::cnn()] {
        let p = profile_whole_step(&ctx, &data, &spec, 32).unwrap().unwrap();
        let names: Vec<String> = p.dispatches.iter().map(|d| d.name.clone()).collect();
        assert_eq!(names, step_dispatch_names(&ctx, &data, &spec, 32).unwrap(), "{}", spec.name);
        assert!(p.dispatches.iter().all(|d| d.seconds > 0.0 && d.gap >= 0.0), "{p:?}");
        assert!(p.dispatches.windows(2).all(|w| w[1].start >= w[0].start), "{p:?}");
        let gaps: f64 = p.dispatches.iter().map(|d| d.gap).sum();
        assert!((p.busy + gaps - p.span).abs() < 1e-6 * p.span.max(1e-3) + 1e-9, "{p:?}");
        assert!(
            p.busy <= p.span + 1e-9 && p.span <= p.profiled_wall && p.wall > 0.0,
            "{}: busy {} span {} profiled wall {}",
            spec.name,
            p.busy,
            p.span,
            p.profiled_wall
        );
    }
}
