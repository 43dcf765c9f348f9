//! The report's two presets, built by the graph scheduler with Keras's formula weights, against
//! Keras itself (`tests/fixtures/keras-models.json`): the inference softmax on 8 real test
//! images, and one training step's loss and gradients — on the CPU path and on lavapipe.

use serde_json::Value;

use gpu_fmnist::cpu::CpuEngine;
use gpu_fmnist::data::{FashionMnist, SplitName, PIXELS};
use gpu_fmnist::device::DeviceKind;
use gpu_fmnist::gpu::GpuEngine;
use gpu_fmnist::graph::model::{cnn, mlp, Layer};
use gpu_fmnist::graph::ops::{Optimizer, RECORD_WIDTH};
use gpu_fmnist::graph::{Engine, Graph, ModelSpec};

fn golden() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras-models.json"))
            .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// The file's weight rule: tensor t, element i, s = sin(0.7·i + 1.3·t) in f64, scaled by kind.
fn formula_weights(graph: &Graph, listed: &Value) -> Vec<Vec<f32>> {
    graph
        .params
        .iter()
        .enumerate()
        .map(|(t, p)| {
            let shape: Vec<usize> =
                listed[t]["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
            assert_eq!(shape, p.spec.keras_shape, "{}", p.spec.name);
            let fan_in: usize = shape[..shape.len() - 1].iter().product();
            let kind = p.spec.name.rsplit('/').next().unwrap();
            (0..p.spec.len())
                .map(|i| {
                    let s = (0.7 * i as f64 + 1.3 * t as f64).sin();
                    (match kind {
                        "kernel" => s / (fan_in as f64).sqrt(),
                        "bias" | "beta" => 0.1 * s,
                        "gamma" => 1.0 + 0.1 * s,
                        "moving_mean" => 0.3 + 0.05 * s,
                        "moving_variance" => 0.1 + 0.05 * s.abs(),
                        other => panic!("unknown weight kind {other}"),
                    }) as f32
                })
                .collect()
        })
        .collect()
}

/// The first 8 test images and their labels, from the repository's sample.
fn images() -> (Vec<u8>, Vec<u8>) {
    let ds =
        FashionMnist::load(Some(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample"))))
            .unwrap();
    (ds.test.images[..8 * PIXELS].to_vec(), ds.test.labels[..8].to_vec())
}

fn close(ours: f64, keras: f64, scale: f64, what: &str) -> Option<String> {
    // Errors compound through a whole model: allow 1e-4 of the quantity's own scale.
    let allowed = 1e-6 + 1e-4 * scale;
    ((ours - keras).abs() > allowed)
        .then(|| format!("{what}: ours {ours:e}, Keras {keras:e}, allowed ±{allowed:e}"))
}

fn without_dropout(spec: &ModelSpec) -> ModelSpec {
    let mut spec = spec.clone();
    for l in &mut spec.layers {
        if let Layer::Dropout { rate } = l {
            *rate = 0.0;
        }
    }
    spec
}

fn check_model<'e>(
    name: &str,
    spec: ModelSpec,
    engine_for: &mut dyn FnMut(&Graph) -> Box<dyn Engine + 'e>,
) -> Vec<String> {
    let g = golden();
    let model = &g["models"][name];
    let (pixels, labels) = images();
    let expected_labels: Vec<u8> =
        g["labels"].as_array().unwrap().iter().map(|l| l.as_u64().unwrap() as u8).collect();
    assert_eq!(labels, expected_labels);
    let mut fails = Vec::new();

    // Inference: softmax on the 8 images with the moving statistics and no dropout.
    let graph = Graph::build(&spec, 8, &[(SplitName::Test, 8)], None, 0).unwrap();
    let mut engine = engine_for(&graph);
    graph.write_weights(engine.as_mut(), &formula_weights(&graph, &model["weights"])).unwrap();
    graph.upload_split(engine.as_mut(), SplitName::Test, &pixels, &labels).unwrap();
    engine.run(graph.eval_passes[&SplitName::Test].full, 1).unwrap();
    let probs = engine.read_f32(graph.probs).unwrap();
    for (i, (ours, keras)) in probs.iter().zip(floats(&model["inference_softmax"]["data"])).enumerate() {
        fails.extend(close(*ours as f64, keras, keras.abs(), &format!("{name} softmax[{i}]")));
    }
    drop(engine);

    // One training step with dropout off: loss and the gradient of every trainable tensor.
    let spec = without_dropout(&spec);
    let opt = Optimizer::Sgd { lr: 0.0, momentum: 0.0, nesterov: false };
    let graph = Graph::build(&spec, 8, &[(SplitName::Train, 8)], Some(opt), 0).unwrap();
    let mut engine = engine_for(&graph);
    graph.write_weights(engine.as_mut(), &formula_weights(&graph, &model["weights"])).unwrap();
    graph.upload_split(engine.as_mut(), SplitName::Train, &pixels, &labels).unwrap();
    engine.run(graph.train_pass.unwrap().full, 1).unwrap();
    let step = &model["train_step_no_dropout"];
    let records = engine.read_f32(graph.records).unwrap();
    let loss_with_l2 = records[0] as f64;
    assert_eq!(records[RECORD_WIDTH - 1], 8.0);
    let keras_total = step["loss_with_l2"].as_f64().unwrap();
    fails.extend(close(loss_with_l2, keras_total, keras_total, &format!("{name} loss with L2")));
    let grads = graph.read_grads(engine.as_mut()).unwrap();
    let expected = step["grads"].as_array().unwrap();
    assert_eq!(grads.len(), expected.len(), "{name}: trainable tensors");
    // Keras's gradient names come from a second model (`sequential_1/dense_3/kernel`): the
    // layer kind and the weight must be ours, in our order (`dense_1/kernel`).
    let kind = |name: &str| -> (String, String) {
        let parts: Vec<&str> = name.rsplit('/').take(2).collect();
        (
            parts[1].trim_end_matches(|c: char| c.is_ascii_digit() || c == '_').to_string(),
            parts[0].to_string(),
        )
    };
    for ((ours_name, ours), keras) in grads.iter().zip(expected) {
        let keras_name = keras["name"].as_str().unwrap();
        assert_eq!(
            kind(ours_name),
            kind(keras_name),
            "{name}: gradient {ours_name} against Keras's {keras_name}"
        );
        let l2 = keras["l2"].as_f64().unwrap();
        let sum: f64 = ours.iter().map(|&v| v as f64).sum();
        let norm = ours.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
        // A sum of n values is compared on the scale √n·‖g‖ of its terms.
        let scale = l2 * (ours.len() as f64).sqrt();
        fails.extend(close(sum, keras["sum"].as_f64().unwrap(), scale, &format!("{name} {ours_name} sum")));
        fails.extend(close(norm, l2, l2, &format!("{name} {ours_name} l2")));
        // Each sampled element against a tolerance of its own: 1e-3 of itself, plus 1e-4 of the
        // tensor's root-mean-square element for the rounding that sums of many terms carry. Of
        // the 1,044 sampled elements, 116 are exactly 0 in Keras and 13 more are small enough to
        // pass as zero; a tolerance on the whole tensor's norm let 147 nonzero ones pass as zero.
        let rms = l2 / (ours.len() as f64).sqrt();
        for (i, v) in keras["sample_index"].as_array().unwrap().iter().zip(floats(&keras["sample_value"])) {
            let i = i.as_u64().unwrap() as usize;
            let allowed = 1e-3 * v.abs() + 1e-4 * rms;
            if (ours[i] as f64 - v).abs() > allowed {
                fails.push(format!(
                    "{name} {ours_name}[{i}]: ours {:e}, Keras {v:e}, allowed ±{allowed:e}",
                    ours[i]
                ));
            }
        }
    }
    fails
}

#[test]
fn presets_match_keras_on_the_cpu_path() {
    let mut fails = check_model("mlp", mlp(), &mut |g| Box::new(CpuEngine::new(&g.program)));
    fails.extend(check_model("cnn", cnn(), &mut |g| Box::new(CpuEngine::new(&g.program))));
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

#[test]
fn presets_match_keras_on_the_gpu() {
    let ctx = gpu_fmnist::device::open_gpu(DeviceKind::Vulkan).unwrap();
    let mut fails = check_model("mlp", mlp(), &mut |g| Box::new(GpuEngine::new(&ctx, &g.program).unwrap()));
    fails.extend(check_model("cnn", cnn(), &mut |g| Box::new(GpuEngine::new(&ctx, &g.program).unwrap())));
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}
