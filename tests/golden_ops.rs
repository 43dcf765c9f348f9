//! The CPU reference (and the GPU kernels, on lavapipe) against Keras itself:
//! `tests/fixtures/keras-ops.json` holds TensorFlow/Keras's outputs and gradients op by op.
//! Every value must be within the tolerance rule of `gpu_fmnist::check`.

use serde_json::Value;

use gpu_fmnist::check::cases::{
    batchnorm_backward_with, batchnorm_inference_with, batchnorm_train_with, conv_backward_with,
    conv_bn_relu_pool_with, conv_forward_with, dense_with, l2_with, pool_with, softmax_with,
};
use gpu_fmnist::check::{compare, magnitudes, run_gpu, run_reference, Case, Data, Output, Rule};
use gpu_fmnist::device::DeviceKind;
use gpu_fmnist::gpu::GpuContext;
use gpu_fmnist::graph::ops::{Act, Op, Optimizer, Padding, Trained, Window};
use gpu_fmnist::graph::Program;

fn golden() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras-ops.json"))
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn data(v: &Value) -> Vec<f32> {
    v["data"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn shape(v: &Value) -> Vec<usize> {
    v["shape"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

/// Keras's dense kernel (in, out) as ours (out, in).
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..cols * rows).map(|i| m[(i % rows) * cols + i / rows]).collect()
}

/// Keras's conv kernel (KH, KW, C, F) as ours (F, KH, KW, C).
fn hwio_to_ohwi(w: &[f32], s: &[usize]) -> Vec<f32> {
    let (kh, kw, c, f) = (s[0], s[1], s[2], s[3]);
    let mut out = vec![0.0; w.len()];
    for i in 0..kh * kw * c {
        for o in 0..f {
            out[o * kh * kw * c + i] = w[i * f + o];
        }
    }
    out
}

/// Compares the named outputs of `case`, computed on the CPU and (if given) on the GPU, with
/// Keras's values; returns one line per mismatch.
fn judge(label: &str, case: &Case, expected: &[(&str, Vec<f32>)], ctx: Option<&GpuContext>) -> Vec<String> {
    let mags = magnitudes(case).unwrap();
    let mut runs = vec![("cpu", run_reference(case).unwrap())];
    if let Some(ctx) = ctx {
        runs.push(("gpu", run_gpu(ctx, case).unwrap()));
    }
    let mut fails = Vec::new();
    for (name, keras) in expected {
        let i = case
            .outputs
            .iter()
            .position(|o| o.name == *name)
            .unwrap_or_else(|| panic!("{label}: no output {name}"));
        let out = &case.outputs[i];
        let keras = Data::F32(keras.clone());
        for (engine, results) in &runs {
            let v = compare(case, out, &results[i], &keras, mags[i].as_deref());
            if let Some((at, ours, theirs, allowed)) = v.first_failure {
                fails.push(format!(
                    "{label} {engine} {name}[{at}]: ours {ours:e}, Keras {theirs:e}, allowed ±{allowed:e}"
                ));
            }
        }
    }
    fails
}

fn padding(c: &Value) -> Padding {
    match c["padding"].as_str().unwrap() {
        "same" => Padding::Same,
        _ => Padding::Valid,
    }
}

fn window(c: &Value, size: &str) -> Window {
    let s = shape(&c["x"]);
    let (k, stride) = (c[size].as_u64().unwrap() as usize, c["stride"].as_u64().unwrap() as usize);
    Window::new(s[0], (s[1], s[2], s[3]), (k, k), (stride, stride), padding(c)).unwrap()
}

fn act(name: &str) -> Act {
    match name {
        "relu" => Act::Relu,
        "sigmoid" => Act::Sigmoid,
        "tanh" => Act::Tanh,
        _ => Act::Linear,
    }
}

/// An optimizer's first `steps` updates of a parameter, as one case.
fn optimizer_case(opt: Optimizer, param: Vec<f32>, grads: &[Vec<f32>], steps: usize) -> Case {
    let len = param.len();
    let mut p = Program::default();
    // Each tensor is the one view of an arena of its own, so all sit at offset 0 as an update
    // requires.
    let mut view = |arena: &str| p.arena(arena, &[(arena.to_string(), len)]).1[0];
    let (w, m, v) = (view("w"), view("m"), view("v"));
    let state = p.u32("state", gpu_fmnist::graph::ops::STATE_WORDS);
    let rates = p.f32("rates", 2 * steps);
    // Each step ends with a record, which advances the state (the rate's row, Adam's t): of a
    // one-image batch whose loss nobody reads.
    let (loss, pred, labels) = (p.f32("loss", 1), p.u32("pred", 1), p.u32("labels", 1));
    let records = p.f32("records", 3 * steps);
    let mut inputs = vec![
        (w, Data::F32(param)),
        (state, Data::U32(gpu_fmnist::graph::ops::State::default().words().to_vec())),
        (rates, Data::F32(opt.step_rates(0, steps, &gpu_fmnist::graph::lr::Schedule::Constant, &[]))),
    ];
    let mut ops = Vec::new();
    for (s, g_values) in grads[..steps].iter().enumerate() {
        let g = p.arena(&format!("g{s}"), &[("g".to_string(), len)]).1[0];
        inputs.push((g, Data::F32(g_values.clone())));
        let slots = match opt {
            Optimizer::Sgd { momentum: 0.0, .. } => (None, None),
            Optimizer::Sgd { .. } => (Some(m), None),
            Optimizer::Adam { .. } => (Some(m), Some(v)),
        };
        let weights = vec![Trained { w, g, m: slots.0, v: slots.1, len, l2: 0.0 }];
        ops.push(Op::Update { weights, state, rates, opt, penalties: None });
        ops.push(Op::Record { loss, pred, labels, penalties: None, state, records, batch: 1, train: true });
    }
    p.add_list(ops);
    let outputs = vec![Output { t: w, name: "w", len, rule: Rule::Sum { k: 4 * steps }, poison: false }];
    Case {
        op: "optimizer",
        direction: "update",
        shape: format!("{steps} steps"),
        program: p,
        inputs,
        outputs,
        magnitude: None,
    }
}

#[test]
fn reference_and_kernels_match_keras_op_by_op() {
    let ctx = gpu_fmnist::device::open_gpu(DeviceKind::Vulkan).ok();
    if ctx.is_none() {
        eprintln!("no Vulkan adapter: comparing the CPU reference only");
    }
    let ctx = ctx.as_ref();
    let golden = golden();
    let mut fails = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (n, c) in golden["cases"].as_array().unwrap().iter().enumerate() {
        let op = c["op"].as_str().unwrap();
        let label = format!("case {n} ({op})");
        seen.insert(op.to_string());
        match op {
            "dense" => {
                let ws = shape(&c["w"]);
                let case = dense_with(
                    data(&c["x"]),
                    transpose(&data(&c["w"]), ws[0], ws[1]),
                    data(&c["b"]),
                    act(c["activation"].as_str().unwrap()),
                    data(&c["g"]),
                );
                let expected = [
                    ("y", data(&c["y"])),
                    ("dw", transpose(&data(&c["dw"]), ws[0], ws[1])),
                    ("db", data(&c["db"])),
                    ("dx", data(&c["dx"])),
                ];
                fails.extend(judge(&label, &case, &expected, ctx));
            }
            "conv2d" => {
                let g = window(c, "kernel");
                let w = hwio_to_ohwi(&data(&c["w"]), &shape(&c["w"]));
                let forward = conv_forward_with(g, data(&c["x"]), w.clone(), data(&c["b"]), Act::Linear);
                fails.extend(judge(&label, &forward, &[("y", data(&c["y"]))], ctx));
                let backward = conv_backward_with(g, data(&c["x"]), w, data(&c["g"]));
                let expected = [
                    ("dkernel", hwio_to_ohwi(&data(&c["dw"]), &shape(&c["dw"]))),
                    ("dbias", data(&c["db"])),
                    ("dx", data(&c["dx"])),
                ];
                fails.extend(judge(&label, &backward, &expected, ctx));
            }
            "maxpool" | "avgpool" => {
                let case = pool_with(window(c, "pool"), op == "maxpool", data(&c["x"]), data(&c["g"]));
                fails.extend(judge(&label, &case, &[("y", data(&c["y"])), ("dx", data(&c["dx"]))], ctx));
            }
            "softmax_xent" => {
                let classes = shape(&c["logits"])[1];
                let labels: Vec<u32> =
                    c["labels"].as_array().unwrap().iter().map(|l| l.as_u64().unwrap() as u32).collect();
                let batch = labels.len();
                let case = softmax_with(data(&c["logits"]), labels, classes, true, true, 0.0);
                let expected = [("probs", data(&c["softmax"])), ("dlogits", data(&c["dlogits"]))];
                fails.extend(judge(&label, &case, &expected, ctx));
                let losses = run_reference(&case).unwrap()[0].clone();
                let Data::F32(losses) = losses else { unreachable!() };
                let mean = losses.iter().map(|&l| l as f64).sum::<f64>() / batch as f64;
                let keras = c["loss"].as_f64().unwrap();
                assert!(
                    (mean - keras).abs() <= gpu_fmnist::check::bound(keras, batch * classes, mean.abs()),
                    "{label}: loss {mean} vs Keras {keras}"
                );
            }
            "batchnorm" => {
                let (x, gamma, beta) = (data(&c["x"]), data(&c["gamma"]), data(&c["beta"]));
                let train = batchnorm_train_with(
                    x.clone(),
                    gamma.clone(),
                    beta.clone(),
                    data(&c["moving_mean"]),
                    data(&c["moving_var"]),
                );
                let expected = [
                    ("y", data(&c["y"])),
                    ("moving_mean", data(&c["moving_mean_after"])),
                    ("moving_var", data(&c["moving_var_after"])),
                ];
                fails.extend(judge(&label, &train, &expected, ctx));
                let backward = batchnorm_backward_with(x.clone(), data(&c["g"]), gamma.clone());
                let expected =
                    [("dx", data(&c["dx"])), ("dgamma", data(&c["dgamma"])), ("dbeta", data(&c["dbeta"]))];
                fails.extend(judge(&label, &backward, &expected, ctx));
                let inference = batchnorm_inference_with(
                    x,
                    gamma,
                    beta,
                    data(&c["moving_mean_after"]),
                    data(&c["moving_var_after"]),
                );
                fails.extend(judge(&label, &inference, &[("y", data(&c["y_inference_after"]))], ctx));
            }
            "optimizer" => {
                let cfg = &c["config"];
                let f = |k: &str| cfg[k].as_f64().unwrap() as f32;
                let opt = if c["name"].as_str().unwrap().starts_with("adam") {
                    Optimizer::Adam {
                        lr: f("learning_rate"),
                        beta1: f("beta_1"),
                        beta2: f("beta_2"),
                        eps: f("epsilon"),
                        weight_decay: 0.0,
                    }
                } else {
                    Optimizer::Sgd {
                        lr: f("learning_rate"),
                        momentum: f("momentum"),
                        nesterov: cfg["nesterov"].as_bool().unwrap(),
                    }
                };
                let grads: Vec<Vec<f32>> = c["grads"].as_array().unwrap().iter().map(data).collect();
                for (i, after) in c["after_each_step"].as_array().unwrap().iter().enumerate() {
                    let case = optimizer_case(opt, data(&c["param"]), &grads, i + 1);
                    fails.extend(judge(
                        &format!("{label} {} step {}", c["name"], i + 1),
                        &case,
                        &[("w", data(after))],
                        ctx,
                    ));
                }
            }
            "l2" => {
                let w = data(&c["w"]);
                let case = l2_with(w.clone(), vec![0.0; w.len()], c["c"].as_f64().unwrap() as f32);
                // The arena's first chunk holds another, unregularized weight.
                let expected =
                    [("partials", vec![0.0, c["penalty"].as_f64().unwrap() as f32]), ("g", data(&c["dw"]))];
                fails.extend(judge(&label, &case, &expected, ctx));
            }
            other => panic!("unknown golden op {other}"),
        }
    }
    assert_eq!(seen.len(), 8, "ops seen: {seen:?}");
    assert!(fails.is_empty(), "{} mismatches with Keras:\n{}", fails.len(), fails.join("\n"));
}

#[test]
fn the_tolerance_is_tight_enough_to_see_a_wrong_padding_split() {
    // `same` padding with an even kernel puts the extra row after; putting it before must fail.
    let golden = golden();
    let c = golden["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["op"] == "conv2d" && c["kernel"] == 4 && c["padding"] == "same")
        .unwrap();
    let mut g = window(c, "kernel");
    g.pad_top += 1;
    g.pad_left += 1;
    let w = hwio_to_ohwi(&data(&c["w"]), &shape(&c["w"]));
    let case = conv_forward_with(g, data(&c["x"]), w, data(&c["b"]), Act::Linear);
    assert!(!judge("shifted", &case, &[("y", data(&c["y"]))], None).is_empty());
}

/// The cases of `keras-ops-extra.json` (Keras's results for the ops beyond the report's models)
/// whose op is `op`.
fn extra_cases(op: &str) -> Vec<Value> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras-ops-extra.json"))
            .unwrap();
    let golden: Value = serde_json::from_str(&text).unwrap();
    golden["cases"].as_array().unwrap().iter().filter(|c| c["op"] == op).cloned().collect()
}

/// Keras's learning-rate schedules (`keras-ops-extra.json`, from `../shared/golden/`): the rate
/// Keras uses at each listed step, against `Schedule::rate`.
#[test]
fn schedules_match_keras_step_by_step() {
    use gpu_fmnist::graph::lr::Schedule;
    let mut seen = Vec::new();
    for c in &extra_cases("lr_schedule") {
        let name = c["name"].as_str().unwrap();
        let k = &c["config"];
        let f = |key: &str| k[key].as_f64().unwrap();
        let schedule = match name {
            "cosine_decay" | "cosine_decay_alpha_warmup" => Schedule::Cosine {
                initial: f("initial_learning_rate"),
                decay_steps: f("decay_steps") as u64,
                alpha: k["alpha"].as_f64().unwrap_or(0.0),
                warmup_target: k["warmup_target"].as_f64(),
                warmup_steps: k["warmup_steps"].as_f64().unwrap_or(0.0) as u64,
            },
            "exponential_decay" | "exponential_decay_staircase" => Schedule::Exponential {
                initial: f("initial_learning_rate"),
                decay_steps: f("decay_steps") as u64,
                decay_rate: f("decay_rate"),
                staircase: k["staircase"].as_bool().unwrap(),
            },
            "piecewise_constant" => Schedule::Piecewise {
                boundaries: k["boundaries"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap()).collect(),
                values: k["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect(),
            },
            other => panic!("unknown golden schedule {other}"),
        };
        schedule.validate().unwrap();
        for (step, keras) in c["steps"].as_array().unwrap().iter().zip(c["rates"].as_array().unwrap()) {
            let (step, keras) = (step.as_u64().unwrap(), keras.as_f64().unwrap());
            let ours = schedule.rate(f64::NAN, step);
            // Keras computes in f32: its rates carry f32 rounding, a few units of 2⁻²⁴.
            assert!(
                (ours - keras).abs() <= 1e-6 * keras.abs() + 1e-9,
                "{name} at step {step}: ours {ours:e}, Keras {keras:e}"
            );
        }
        seen.push(name.to_string());
    }
    assert_eq!(seen.len(), 5, "schedules seen: {seen:?}");
}

/// Keras's AdamW (`keras-ops-extra.json`): decoupled weight decay, then the Adam step, three
/// steps of each case, on both executors.
#[test]
fn adamw_matches_keras_step_by_step() {
    let ctx = gpu_fmnist::device::open_gpu(DeviceKind::Vulkan).ok();
    let mut fails = Vec::new();
    let mut seen = 0;
    for c in &extra_cases("optimizer") {
        let cfg = &c["config"];
        let f = |k: &str| cfg[k].as_f64().unwrap() as f32;
        let opt = Optimizer::Adam {
            lr: f("learning_rate"),
            beta1: f("beta_1"),
            beta2: f("beta_2"),
            eps: f("epsilon"),
            weight_decay: f("weight_decay"),
        };
        let grads: Vec<Vec<f32>> = c["grads"].as_array().unwrap().iter().map(data).collect();
        for (i, after) in c["after_each_step"].as_array().unwrap().iter().enumerate() {
            let case = optimizer_case(opt, data(&c["param"]), &grads, i + 1);
            fails.extend(judge(
                &format!("{} step {}", c["name"], i + 1),
                &case,
                &[("w", data(after))],
                ctx.as_ref(),
            ));
        }
        seen += 1;
    }
    assert_eq!(seen, 2, "AdamW cases");
    assert!(fails.is_empty(), "{} mismatches with Keras:\n{}", fails.len(), fails.join("\n"));
}

/// Keras's label-smoothed cross-entropy (`keras-ops-extra.json`, ε 0.1 and 0.2, mean over the
/// batch): our per-image losses' mean against Keras's loss, and the gradient element by element,
/// on both executors.
#[test]
fn label_smoothing_matches_keras() {
    let ctx = gpu_fmnist::device::open_gpu(DeviceKind::Vulkan).ok();
    let mut fails = Vec::new();
    let mut seen = 0;
    for c in &extra_cases("softmax_xent_smoothed") {
        let classes = shape(&c["logits"])[1];
        let labels: Vec<u32> =
            c["labels"].as_array().unwrap().iter().map(|l| l.as_u64().unwrap() as u32).collect();
        let smoothing = c["label_smoothing"].as_f64().unwrap() as f32;
        let case = softmax_with(data(&c["logits"]), labels.clone(), classes, false, true, smoothing);
        let label = format!("smoothing {smoothing}");
        fails.extend(judge(&label, &case, &[("dlogits", data(&c["dlogits"]))], ctx.as_ref()));
        let keras = c["loss"].as_f64().unwrap();
        let mut runs = vec![("cpu", run_reference(&case).unwrap())];
        if let Some(ctx) = &ctx {
            runs.push(("gpu", run_gpu(ctx, &case).unwrap()));
        }
        let i = case.outputs.iter().position(|o| o.name == "loss").unwrap();
        for (engine, results) in &runs {
            let Data::F32(loss) = &results[i] else { unreachable!() };
            let mean = loss.iter().map(|&l| l as f64).sum::<f64>() / labels.len() as f64;
            if (mean - keras).abs() > 1e-5 * keras.abs() {
                fails.push(format!("{label} {engine} loss: ours {mean}, Keras {keras}"));
            }
        }
        seen += 1;
    }
    assert_eq!(seen, 2, "label-smoothing cases");
    assert!(fails.is_empty(), "{} mismatches with Keras:\n{}", fails.len(), fails.join("\n"));
}

/// Keras's GlobalAveragePooling2D (`keras-ops-extra.json`): the layer lowers to an average pool
/// whose window is the whole image; its output and input gradient against Keras's.
#[test]
fn global_average_pooling_matches_keras() {
    let ctx = gpu_fmnist::device::open_gpu(DeviceKind::Vulkan).ok();
    let mut fails = Vec::new();
    let mut seen = 0;
    for c in &extra_cases("global_avgpool") {
        let s = shape(&c["x"]);
        let (batch, h, w, ch) = (s[0], s[1], s[2], s[3]);
        let g = Window::new(batch, (h, w, ch), (h, w), (h, w), Padding::Valid).unwrap();
        let case = pool_with(g, false, data(&c["x"]), data(&c["g"]));
        let label = format!("global_avgpool {s:?}");
        fails.extend(judge(&label, &case, &[("y", data(&c["y"])), ("dx", data(&c["dx"]))], ctx.as_ref()));
        seen += 1;
    }
    assert_eq!(seen, 2, "GAP cases");
    assert!(fails.is_empty(), "{} mismatches with Keras:\n{}", fails.len(), fails.join("\n"));
}

/// Keras's Conv2D → BatchNormalization → ReLU → MaxPooling2D block, the `strong` preset's
/// (`keras-ops-extra.json`), built through the graph's own layer lowering: its output and every
/// gradient, on the CPU and on lavapipe. A chain of four ops is judged as the model tests judge
/// whole models: each element within 1e-3 of itself plus 1e-4 of its tensor's RMS.
#[test]
fn conv_bn_relu_pool_block_matches_keras() {
    let ctx = gpu_fmnist::device::open_gpu(DeviceKind::Vulkan).ok();
    let cases = extra_cases("conv_bn_relu_pool");
    assert_eq!(cases.len(), 1, "block cases");
    let c = &cases[0];
    let (xs, ws) = (shape(&c["x"]), shape(&c["w"]));
    let k = c["kernel"].as_u64().unwrap() as usize;
    let pool = c["pool"].as_u64().unwrap() as usize;
    let g = Window::new(xs[0], (xs[1], xs[2], xs[3]), (k, k), (1, 1), padding(c)).unwrap();
    let number = |key: &str| c[key].as_f64().unwrap() as f32;
    let case = conv_bn_relu_pool_with(
        g,
        (pool, pool),
        data(&c["x"]),
        hwio_to_ohwi(&data(&c["w"]), &ws),
        data(&c["b"]),
        data(&c["gamma"]),
        data(&c["beta"]),
        data(&c["g"]),
        (number("momentum"), number("epsilon")),
    );
    let expected = [
        ("y", data(&c["y"])),
        ("dx", data(&c["dx"])),
        ("dkernel", hwio_to_ohwi(&data(&c["dw"]), &ws)),
        ("dbias", data(&c["db"])),
        ("dgamma", data(&c["dgamma"])),
        ("dbeta", data(&c["dbeta"])),
    ];
    let mut runs = vec![("cpu", run_reference(&case).unwrap())];
    if let Some(ctx) = &ctx {
        runs.push(("gpu", run_gpu(ctx, &case).unwrap()));
    }
    let mut fails = Vec::new();
    for (name, keras) in &expected {
        let i = case.outputs.iter().position(|o| o.name == *name).unwrap();
        let rms_of = |t: &[f32]| (t.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / t.len() as f64).sqrt();
        // The conv bias's gradient is zero in exact arithmetic (BatchNorm subtracts the batch
        // mean), so Keras's and ours are both rounding residue (~1e-7): it is judged against the
        // size of the column sums it is made of, which dbeta's are (Σ over the same rows).
        let rms = if *name == "dbias" { rms_of(&expected[5].1) } else { rms_of(keras) };
        assert!(rms > 0.0, "{name}: Keras's values are all zero");
        for (engine, results) in &runs {
            let Data::F32(ours) = &results[i] else { panic!("{name} is f32") };
            assert_eq!(ours.len(), keras.len(), "{name}");
            for (j, (&o, &v)) in ours.iter().zip(keras).enumerate() {
                let allowed = 1e-3 * (v as f64).abs() + 1e-4 * rms;
                if (o as f64 - v as f64).abs() > allowed {
                    fails
                        .push(format!("{engine} {name}[{j}]: ours {o:e}, Keras {v:e}, allowed ±{allowed:e}"));
                }
            }
        }
    }
    assert!(
        fails.is_empty(),
        "{} mismatches with Keras:\n{}",
        fails.len(),
        fails[..fails.len().min(20)].join("\n")
    );
}
