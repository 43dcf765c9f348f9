//! Every WGSL kernel against the CPU reference on lavapipe (or whatever Vulkan adapter there is),
//! on fresh random inputs and shapes for several seeds. The seed of a failure is in its message:
//! `gpu-fmnist check --device vulkan --seed N` replays it.

use gpu_fmnist::check::{cases, check_case, compare, Case, Data, Output, Rule, Size};
use gpu_fmnist::gpu::{adapters, DeviceKind, GpuContext};
use gpu_fmnist::graph::Program;

fn failures(ctx: &GpuContext, seed: u64, size: Size) -> Vec<String> {
    let mut out = Vec::new();
    for case in cases(seed, size) {
        for v in check_case(ctx, &case).unwrap() {
            if let Some((i, g, r, allowed)) = v.first_failure {
                out.push(format!(
                    "seed {seed}: {} {} {} {}: [{i}] gpu {g:e} ref {r:e} allowed ±{allowed:e}",
                    v.op, v.direction, v.shape, v.output
                ));
            }
        }
    }
    out
}

#[test]
fn every_kernel_matches_the_reference_full_shapes() {
    let ctx = GpuContext::open(DeviceKind::Vulkan).unwrap();
    let fails: Vec<String> = (1..=3).flat_map(|seed| failures(&ctx, seed, Size::Full)).collect();
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

#[test]
fn every_kernel_matches_the_reference_many_seeds() {
    let ctx = GpuContext::open(DeviceKind::Vulkan).unwrap();
    let base = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    // Fixed seeds, and a few fresh ones every run (their seed is printed on failure).
    let seeds = (10..20).chain(base..base + 5);
    let fails: Vec<String> = seeds.flat_map(|seed| failures(&ctx, seed, Size::Quick)).collect();
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

#[test]
fn every_backend_wgpu_finds_passes_the_quick_check() {
    // lavapipe through Vulkan, and llvmpipe through GL where the EGL libraries are installed
    // (./setup.sh installs them); on a real machine, every GPU and backend it has.
    let found = adapters(DeviceKind::Auto);
    let names: Vec<String> =
        found.iter().map(|a| format!("{:?} {}", a.get_info().backend, a.get_info().name)).collect();
    println!("adapters: {names:?}");
    assert!(
        found.iter().any(|a| a.get_info().backend == wgpu::Backend::Vulkan),
        "no Vulkan adapter: {names:?}"
    );
    if std::env::var_os("CI").is_some() {
        // CI installs Mesa's EGL: GL must be there too, not silently missing.
        assert!(found.iter().any(|a| a.get_info().backend == wgpu::Backend::Gl), "no GL adapter: {names:?}");
    }
    for (adapter, name) in found.iter().zip(&names) {
        let ctx = GpuContext::from_adapter(adapter).unwrap();
        let fails = failures(&ctx, 99, Size::Quick);
        assert!(fails.is_empty(), "{name}:\n{}", fails.join("\n"));
    }
}

#[test]
fn cases_cover_every_op_in_both_directions() {
    let all = cases(1, Size::Full);
    for (op, direction) in [
        ("matmul", "forward"),
        ("matmul", "backward"),
        ("bias_grad", "backward"),
        ("activation", "forward"),
        ("activation", "backward"),
        ("softmax_xent", "forward"),
        ("softmax_xent", "backward"),
        ("conv2d", "forward"),
        ("conv2d", "backward"),
        ("maxpool", "forward+backward"),
        ("avgpool", "forward+backward"),
        ("dropout", "forward"),
        ("dropout", "backward"),
        ("batchnorm", "forward"),
        ("batchnorm", "backward"),
        ("l2", "forward+backward"),
        ("optimizer", "update"),
        ("data", "gather"),
        ("data", "metrics"),
    ] {
        assert!(all.iter().any(|c| c.op == op && c.direction == direction), "no {op} {direction} case");
    }
    // Same-padded windows, strides over 1, sizes of 1 and split-K all occur.
    assert!(all.iter().any(|c| c.shape.contains("pad 1,") || c.shape.contains("pad 2,")));
    assert!(all.iter().any(|c| c.op == "matmul" && (c.shape.contains("1100") || c.shape.contains("3001"))));
}

fn dummy_case(rule: Rule) -> (Case, Output) {
    let mut p = Program::default();
    let t = p.f32("y", 3);
    let out = Output { t, name: "y", len: 3, rule, poison: true };
    let case = Case {
        op: "test",
        direction: "forward",
        shape: "3".into(),
        program: p,
        inputs: vec![],
        outputs: vec![out.clone()],
        magnitude: None,
    };
    (case, out)
}

#[test]
fn comparison_rejects_nan_unwritten_and_out_of_tolerance_elements() {
    let reference = Data::F32(vec![1.0, 2.0, 3.0]);
    let (case, out) = dummy_case(Rule::SumOf { k: 4, abs_sum: vec![1.0, 2.0, 3.0] });
    assert!(compare(&case, &out, &reference, &reference, None).passed());
    assert!(compare(&case, &out, &Data::F32(vec![1.0, 2.0 + 1e-4, 3.0]), &reference, None).passed());
    assert!(!compare(&case, &out, &Data::F32(vec![1.0, 2.0, f32::NAN]), &reference, None).passed());
    assert!(!compare(&case, &out, &Data::F32(vec![1.0, 2.01, 3.0]), &reference, None).passed());
    let (case, out) = dummy_case(Rule::Exact);
    assert!(!compare(&case, &out, &Data::F32(vec![1.0, 2.0, 3.0000002]), &reference, None).passed());
}
