//! Every `shaders/*.wgsl` parses and validates with naga, and each entry point fits WebGPU's
//! default limits (storage buffers, workgroup size and memory) — no device needed.

use gpu_fmnist::gpu::kernels::{validate, SHADERS};

#[test]
fn every_shader_validates_with_naga() {
    let mut failures = Vec::new();
    for shader in SHADERS {
        if let Err(e) = validate(shader.source) {
            failures.push(format!("{}.wgsl:\n{e}", shader.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_shader_file_is_registered() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let stem = name.trim_end_matches(".wgsl");
        assert!(stem == "common" || SHADERS.iter().any(|s| s.name == stem), "{name} is not in SHADERS");
    }
}

#[test]
fn validation_catches_a_broken_shader() {
    assert!(validate("@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }").is_err());
}

/// WebGPU's default limits — what a browser grants a page that asks for nothing more (the
/// "default" column of the WebGPU specification's limits table).
mod webgpu_default {
    pub const STORAGE_BUFFERS_PER_STAGE: usize = 8;
    pub const UNIFORM_BUFFERS_PER_STAGE: usize = 12;
    pub const INVOCATIONS_PER_WORKGROUP: u32 = 256;
    pub const WORKGROUP_SIZE: [u32; 3] = [256, 256, 64];
    pub const WORKGROUP_STORAGE_BYTES: u32 = 16 * 1024;
    pub const BIND_GROUPS: u32 = 4;
}

/// What each entry point of `source` needs of a device: (entry point, storage buffers, uniform
/// buffers, workgroup size, workgroup bytes, highest bind group), counting every global the entry
/// point can reach before override constants are applied (so an upper bound).
fn needs(source: &str) -> Vec<(String, usize, usize, [u32; 3], u32, u32)> {
    let module = naga::front::wgsl::parse_str(source).unwrap();
    let info =
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
            .validate(&module)
            .unwrap();
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).unwrap();
    module
        .entry_points
        .iter()
        .enumerate()
        .map(|(i, ep)| {
            let uses = info.get_entry_point(i);
            let used: Vec<&naga::GlobalVariable> = module
                .global_variables
                .iter()
                .filter(|(h, _)| !uses[*h].is_empty())
                .map(|(_, v)| v)
                .collect();
            let storage =
                used.iter().filter(|v| matches!(v.space, naga::AddressSpace::Storage { .. })).count();
            let uniform = used.iter().filter(|v| v.space == naga::AddressSpace::Uniform).count();
            let bytes = used
                .iter()
                .filter(|v| v.space == naga::AddressSpace::WorkGroup)
                .map(|v| layouter[v.ty].size)
                .sum();
            let group = used.iter().filter_map(|v| v.binding.as_ref().map(|b| b.group)).max().unwrap_or(0);
            (ep.name.clone(), storage, uniform, ep.workgroup_size, bytes, group)
        })
        .collect()
}

/// Every kernel fits what a browser grants without asking, so the same kernels can run in a web
/// page; a kernel that would fail there fails here first.
#[test]
fn every_entry_point_fits_webgpus_default_limits() {
    use webgpu_default::*;
    let mut over = Vec::new();
    for shader in SHADERS {
        for (entry, storage, uniform, size, bytes, group) in needs(shader.source) {
            let at = format!("{}.wgsl {entry}", shader.name);
            if storage > STORAGE_BUFFERS_PER_STAGE {
                over.push(format!(
                    "{at}: {storage} storage buffers (WebGPU grants {STORAGE_BUFFERS_PER_STAGE})"
                ));
            }
            if uniform > UNIFORM_BUFFERS_PER_STAGE {
                over.push(format!("{at}: {uniform} uniform buffers"));
            }
            if size.iter().product::<u32>() > INVOCATIONS_PER_WORKGROUP
                || size.iter().zip(WORKGROUP_SIZE).any(|(s, max)| *s > max)
            {
                over.push(format!("{at}: workgroup size {size:?}"));
            }
            if bytes > WORKGROUP_STORAGE_BYTES {
                over.push(format!("{at}: {bytes} bytes of workgroup memory"));
            }
            if group >= BIND_GROUPS {
                over.push(format!("{at}: bind group {group}"));
            }
        }
    }
    assert!(over.is_empty(), "over WebGPU's default limits:\n{}", over.join("\n"));
}

/// The limit check sees what it checks: nine storage buffers, four of them reached only through
/// a function the entry point calls, and 512 invocations are reported.
#[test]
fn the_limit_check_counts_storage_buffers_and_invocations() {
    let nine: String = (0..9)
        .map(|i| format!("@group(0) @binding({i}) var<storage, read_write> b{i}: array<f32>;\n"))
        .collect();
    let direct: String = (0..5).map(|i| format!("b{i}[0] = 1.0;")).collect();
    let called: String = (5..9).map(|i| format!("b{i}[0] = 1.0;")).collect();
    let source = format!(
        "{nine}fn helper() {{ {called} }}\n@compute @workgroup_size(512) fn main() {{ {direct} helper(); }}"
    );
    let n = needs(&source);
    let main = n.iter().find(|e| e.0 == "main").unwrap();
    assert_eq!((main.1, main.3), (9, [512, 1, 1]), "{n:?}");
}
