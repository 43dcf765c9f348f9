//! Every WGSL kernel against the CPU reference on lavapipe (or whatever Vulkan adapter there is),
//! on fresh random inputs and shapes for several seeds. The seed of a failure is in its message:
//! `gpu-fmnist check --device vulkan --seed N` replays it, and `GPU_FMNIST_SEED=N` replays the
//! clock-drawn seeds of a whole test run.

use gpu_fmnist::check::{
    cases, check_case, compare, magnitudes, run_reference, Case, Data, Output, Rule, Size,
};
use gpu_fmnist::device::DeviceKind;
use gpu_fmnist::gpu::{adapters, GpuContext, Tuning};
use gpu_fmnist::graph::{Op, Optimizer, Program};

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
    let ctx = gpu_fmnist::device::open_gpu(DeviceKind::Vulkan).unwrap();
    let fails: Vec<String> = (1..=3).flat_map(|seed| failures(&ctx, seed, Size::Full)).collect();
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

#[test]
fn both_tunings_match_the_reference() {
    // The kernel arrangements chosen per adapter (a CPU driver's and a hardware GPU's: split-K,
    // reduction widths, pooling gradients, penalty sums) checked on the one adapter CI has.
    let mut ctx = gpu_fmnist::device::open_gpu(DeviceKind::Vulkan).unwrap();
    let mut fails = Vec::new();
    for tuning in [Tuning::Cpu, Tuning::Gpu] {
        ctx.tuning = tuning;
        fails.extend(failures(&ctx, 4, Size::Full).into_iter().map(|f| format!("{tuning:?}: {f}")));
    }
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

#[test]
fn every_kernel_matches_the_reference_many_seeds() {
    let ctx = gpu_fmnist::device::open_gpu(DeviceKind::Vulkan).unwrap();
    // Fresh seeds from the clock, unless GPU_FMNIST_SEED replays a failure's.
    let base = match std::env::var("GPU_FMNIST_SEED") {
        Ok(s) => s.parse().expect("GPU_FMNIST_SEED is a number"),
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
    };
    eprintln!(
        "fresh seeds {base}..{} (replay: GPU_FMNIST_SEED={base} cargo test --release --test kernels)",
        base + 5
    );
    // Fixed seeds, and a few fresh ones every run (their seed is printed on failure).
    let seeds = (10..20).chain(base..base + 5);
    let fails: Vec<String> = seeds.flat_map(|seed| failures(&ctx, seed, Size::Quick)).collect();
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

#[test]
fn every_backend_wgpu_finds_passes_the_quick_check() {
    // lavapipe through Vulkan, and llvmpipe through GL where the EGL libraries are installed
    // (./setup.sh installs them); on a real machine, every GPU and backend it has.
    let found = adapters(DeviceKind::Auto.backends());
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

/// Every op variant, and the forms of them that schedules use, by matching on the variants (a
/// new variant does not compile here until it is named).
fn forms(op: &Op) -> Vec<&'static str> {
    match op {
        Op::Gather { .. } => vec!["Gather"],
        Op::Matmul(mm) => {
            vec!["Matmul", if mm.dropout.is_some() { "Matmul with a dropout" } else { "Matmul alone" }]
        }
        Op::BiasGrad { through, mask, .. } => {
            vec![
                "BiasGrad",
                if through.is_some() { "BiasGrad through an activation" } else { "BiasGrad alone" },
                if mask.is_some() { "BiasGrad under a mask" } else { "BiasGrad without a mask" },
            ]
        }
        Op::Activation { .. } => vec!["Activation"],
        Op::ActivationGrad { .. } => vec!["ActivationGrad"],
        Op::SoftmaxXent { probs, dlogits, .. } => {
            vec![
                "SoftmaxXent",
                if dlogits.is_some() { "SoftmaxXent with dlogits" } else { "SoftmaxXent loss only" },
                if probs.is_some() { "SoftmaxXent with probs" } else { "SoftmaxXent without probs" },
            ]
        }
        Op::Im2col { .. } => vec!["Im2col"],
        Op::Col2im { .. } => vec!["Col2im"],
        Op::MaxPool { dropout, .. } => {
            vec!["MaxPool", if dropout.is_some() { "MaxPool with a dropout" } else { "MaxPool alone" }]
        }
        Op::MaxPoolGrad { mask, .. } => {
            vec![
                "MaxPoolGrad",
                if mask.is_some() { "MaxPoolGrad under a mask" } else { "MaxPoolGrad without a mask" },
            ]
        }
        Op::AvgPool { .. } => vec!["AvgPool"],
        Op::AvgPoolGrad { .. } => vec!["AvgPoolGrad"],
        Op::Dropout { .. } => vec!["Dropout"],
        Op::BatchNormStats { .. } => vec!["BatchNormStats"],
        Op::BatchNormApply { .. } => vec!["BatchNormApply"],
        Op::BatchNormGrad { dx, .. } => {
            vec![
                "BatchNormGrad",
                if dx.is_some() { "BatchNormGrad with dx" } else { "BatchNormGrad without dx" },
            ]
        }
        Op::L2Penalty { .. } => vec!["L2Penalty"],
        Op::Update { weights, opt, penalties, .. } => {
            let mut forms = vec![
                "Update",
                if penalties.is_some() { "Update with its penalty" } else { "Update without its penalty" },
            ];
            if matches!(opt, Optimizer::Adam { weight_decay, .. } if *weight_decay > 0.0) {
                forms.push("Update with decoupled weight decay");
            }
            if weights.iter().any(|t| t.l2 > 0.0) {
                forms.push("Update with L2");
            }
            if weights.len() > 1 {
                forms.push("Update of several weights");
            }
            forms
        }
        Op::Confusion { .. } => vec!["Confusion"],
        Op::Record { penalties, train, .. } => {
            vec![
                "Record",
                if penalties.is_some() { "Record with penalties" } else { "Record without penalties" },
                if *train { "Record training" } else { "Record evaluation" },
            ]
        }
    }
}

#[test]
fn every_op_variant_and_form_has_a_check_case() {
    let mut seen = std::collections::BTreeSet::new();
    for seed in 1..4 {
        for case in cases(seed, Size::Full) {
            for op in &case.program.lists[0] {
                seen.extend(forms(op));
            }
        }
    }
    for form in [
        "Gather",
        "Matmul",
        "Matmul alone",
        "Matmul with a dropout",
        "BiasGrad",
        "BiasGrad through an activation",
        "BiasGrad alone",
        "BiasGrad under a mask",
        "BiasGrad without a mask",
        "Activation",
        "ActivationGrad",
        "SoftmaxXent",
        "SoftmaxXent with dlogits",
        "SoftmaxXent loss only",
        "SoftmaxXent with probs",
        "Im2col",
        "Col2im",
        "MaxPool",
        "MaxPool alone",
        "MaxPool with a dropout",
        "MaxPoolGrad",
        "MaxPoolGrad under a mask",
        "MaxPoolGrad without a mask",
        "AvgPool",
        "AvgPoolGrad",
        "Dropout",
        "BatchNormStats",
        "BatchNormApply",
        "BatchNormGrad",
        "BatchNormGrad with dx",
        "BatchNormGrad without dx",
        "L2Penalty",
        "Update",
        "Update with its penalty",
        "Update without its penalty",
        "Update with L2",
        "Update of several weights",
        "Update with decoupled weight decay",
        "Confusion",
        "Record",
        "Record with penalties",
        "Record without penalties",
        "Record training",
        "Record evaluation",
    ] {
        assert!(seen.contains(form), "no check case runs {form}; cases run {seen:?}");
    }
}

#[test]
fn an_optimizer_step_two_percent_too_large_fails_on_large_weights() {
    let mut case = cases(1, Size::Quick)
        .into_iter()
        .find(|c| c.op == "optimizer" && c.shape.starts_with("adam"))
        .expect("an Adam case");
    // Weights between 2 and 4 (Adam's step does not depend on them): a step of ~1e-3 on them.
    let w = case.outputs.iter().find(|o| o.name == "w0").unwrap().t;
    for (t, data) in &mut case.inputs {
        if let (true, Data::F32(v)) = (*t == w, data) {
            v.iter_mut().for_each(|x| *x += 3.0);
        }
    }
    let reference = run_reference(&case).unwrap();
    let (i, out) = case.outputs.iter().enumerate().find(|(_, o)| o.name == "w0").unwrap();
    let before = match &case.inputs.iter().find(|(t, _)| *t == out.t).unwrap().1 {
        Data::F32(v) => v.clone(),
        Data::U32(_) => unreachable!(),
    };
    let Data::F32(after) = &reference[i] else { unreachable!() };
    let off: Vec<f32> = before.iter().zip(after).map(|(b, a)| b + 1.02 * (a - b)).collect();
    let mags = magnitudes(&case).unwrap();
    assert!(compare(&case, out, &reference[i], &reference[i], mags[i].as_deref()).passed());
    let v = compare(&case, out, &Data::F32(off.clone()), &reference[i], mags[i].as_deref());
    assert!(!v.passed(), "a 2% wrong Adam step passed: {v:?}");
    // Judged by the weight's size (the rule before), the same wrong step passes.
    let abs_sum = before.iter().zip(after).map(|(b, a)| b.abs() + (a - b).abs()).collect();
    let by_value = Output { rule: Rule::SumOf { k: 4, abs_sum }, ..out.clone() };
    assert!(compare(&case, &by_value, &Data::F32(off), &reference[i], None).passed());
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

/// Kernels timed on the device's own clock: lavapipe has timestamp queries, and a product's
/// device time is positive, grows with the launches, and fits inside the host's wall time of
/// the same pass.
#[test]
fn kernels_are_timed_by_timestamp_queries() {
    use gpu_fmnist::graph::ops::{Act, Matmul};
    use gpu_fmnist::graph::Engine;
    let ctx = gpu_fmnist::device::open_gpu(DeviceKind::Vulkan).unwrap();
    assert!(ctx.has_timestamps(), "lavapipe reports timestamp queries");
    let mut p = Program::default();
    let (a, b, c) = (p.f32("a", 128 * 96), p.f32("b", 96 * 80), p.f32("c", 128 * 80));
    let op = Matmul {
        a,
        b,
        c,
        m: 128,
        n: 80,
        k: 96,
        trans_a: false,
        trans_b: false,
        bias: None,
        act: Act::Linear,
        dropout: None,
    };
    p.add_list(vec![Op::Matmul(op)]);
    let mut gpu = gpu_fmnist::gpu::GpuEngine::new(&ctx, &p).unwrap();
    gpu.write_f32(a, &vec![0.5; 128 * 96]).unwrap();
    let sum = |v: Vec<(String, f64)>| v.iter().map(|(_, s)| s).sum::<f64>();
    let (one, many) = (sum(gpu.profile(0, 1).unwrap()), sum(gpu.profile(0, 40).unwrap()) * 40.0);
    assert!(one > 0.0 && many > one, "device seconds: one launch {one}, forty {many}");
    let start = std::time::Instant::now();
    let timed = sum(gpu.profile(0, 40).unwrap()) * 40.0;
    let wall = start.elapsed().as_secs_f64();
    assert!(timed <= wall, "device time {timed} within the host's {wall}");
}
