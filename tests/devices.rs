//! Device discovery: the lavapipe adapter is listed and opens with its own limits.

use std::process::Command;

use gpu_fmnist::gpu::{list_adapters, DeviceKind, Executor};

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
