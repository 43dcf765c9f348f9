//! Every `shaders/*.wgsl` parses and validates with naga — no device needed.

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

#[test]
fn workgroup_memory_fits_the_webgpu_minimum() {
    // wgpu accepted a 64 KiB workgroup array over the 32 KiB limit on lavapipe: check it here.
    for shader in SHADERS {
        let module = validate(shader.source).unwrap();
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        let bytes: u32 = module
            .global_variables
            .iter()
            .filter(|(_, v)| v.space == naga::AddressSpace::WorkGroup)
            .map(|(_, v)| layouter[v.ty].size)
            .sum();
        assert!(bytes <= 16 * 1024, "{}.wgsl uses {bytes} bytes of workgroup memory", shader.name);
    }
}
