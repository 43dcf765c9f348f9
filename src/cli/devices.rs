//! `gpu-fmnist devices`: every adapter wgpu finds, with what matters for compute.

use crate::device::{list_adapters, DeviceKind};

pub fn run(kind: DeviceKind, json: bool) -> anyhow::Result<()> {
    crate::device::check_backend_env()?;
    let adapters = list_adapters(kind);
    if json {
        let list: Vec<serde_json::Value> = adapters
            .iter()
            .map(|a| {
                let (info, l, f) = (&a.info, &a.limits, a.features);
                serde_json::json!({
                    "name": info.name,
                    "backend": format!("{:?}", info.backend).to_lowercase(),
                    "device_type": format!("{:?}", info.device_type),
                    "hardware": a.is_hardware(),
                    "vendor": info.vendor,
                    "device": info.device,
                    "driver": info.driver,
                    "driver_info": info.driver_info,
                    "max_compute_invocations_per_workgroup": l.max_compute_invocations_per_workgroup,
                    "max_compute_workgroup_storage_size": l.max_compute_workgroup_storage_size,
                    "max_storage_buffers_per_shader_stage": l.max_storage_buffers_per_shader_stage,
                    "max_storage_buffer_binding_size": l.max_storage_buffer_binding_size,
                    "max_buffer_size": l.max_buffer_size,
                    "timestamp_queries": f.contains(wgpu::Features::TIMESTAMP_QUERY),
                    "subgroups": f.contains(wgpu::Features::SUBGROUP),
                    "f16": f.contains(wgpu::Features::SHADER_F16),
                })
            })
            .collect();
        let auto = adapters.iter().position(|a| a.is_hardware());
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "adapters": list, "auto_picks": auto }))?
        );
        return Ok(());
    }
    if adapters.is_empty() {
        println!("no GPU adapters found (the `cpu` device needs none; for Vulkan on Debian: sudo apt-get install mesa-vulkan-drivers libvulkan1)");
        return Ok(());
    }
    let auto_pick = adapters
        .iter()
        .position(|a| a.is_hardware())
        .map(|i| format!("--device auto picks adapter {i}"))
        .unwrap_or_else(|| "--device auto picks cpu: none of these is a hardware GPU".into());
    for (i, a) in adapters.iter().enumerate() {
        let info = &a.info;
        let l = &a.limits;
        println!("[{i}] {}", info.name);
        println!(
            "    backend {:?}, type {:?}, vendor 0x{:04x}, device 0x{:04x}",
            info.backend, info.device_type, info.vendor, info.device
        );
        println!("    driver {} {}", info.driver, info.driver_info);
        println!(
            "    workgroup: {} invocations, size {}×{}×{}, {} KiB shared memory; {} workgroups per dimension",
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroup_size_x,
            l.max_compute_workgroup_size_y,
            l.max_compute_workgroup_size_z,
            l.max_compute_workgroup_storage_size / 1024,
            l.max_compute_workgroups_per_dimension
        );
        println!(
            "    buffers: {} MiB max, {} MiB per storage binding, {} storage buffers per stage",
            l.max_buffer_size >> 20,
            l.max_storage_buffer_binding_size >> 20,
            l.max_storage_buffers_per_shader_stage
        );
        let f = a.features;
        let flag = |b: bool| if b { "yes" } else { "no" };
        println!(
            "    features: timestamp queries {}, subgroups {} (size {}–{}), f16 {}, f64 {}, i64 {}, f32 atomics {}",
            flag(f.contains(wgpu::Features::TIMESTAMP_QUERY)),
            flag(f.contains(wgpu::Features::SUBGROUP)),
            info.subgroup_min_size,
            info.subgroup_max_size,
            flag(f.contains(wgpu::Features::SHADER_F16)),
            flag(f.contains(wgpu::Features::SHADER_F64)),
            flag(f.contains(wgpu::Features::SHADER_INT64)),
            flag(f.contains(wgpu::Features::SHADER_FLOAT32_ATOMIC)),
        );
    }
    println!("{auto_pick}");
    Ok(())
}
