//! `gpu-fmnist import`: weights written by Python's safetensors with Keras's names and layouts
//! and with PyTorch's (tests/fixtures/import/make.py made them, and computed with numpy the
//! accuracy they give) become checkpoints whose `eval` gives that accuracy; every mismatch is a
//! one-line error naming the tensor.

mod common;

use std::path::Path;

use common::{eval_json, one_line_error, run, SAMPLE};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/import");

fn model() -> String {
    format!("{FIXTURES}/small.toml")
}

#[test]
fn keras_and_pytorch_weights_give_the_accuracy_they_were_made_to_give() {
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURES}/expected.json")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (file, layout, shown) in
        [("keras", "Keras", "conv2d_7/kernel:0 (3, 3, 1, 4)"), ("torch", "PyTorch", "0.weight (4, 1, 3, 3)")]
    {
        let out = dir.path().join(format!("{file}.safetensors"));
        let weights = format!("{FIXTURES}/{file}.safetensors");
        let (code, table, stderr) =
            run(&["import", &weights, "--model", &model(), "--out", out.to_str().unwrap()]);
        assert_eq!(code, 0, "{stderr}");
        assert!(table.contains(&format!("{layout} names and layouts")) && table.contains(shown), "{table}");
        let e = eval_json(&out);
        assert_eq!(e["accuracy"], expected["accuracy"], "{file}: {e}");
        let (loss, want) = (e["loss"].as_f64().unwrap(), expected["loss"].as_f64().unwrap());
        assert!((loss - want).abs() < 1e-4, "{file}: loss {loss} against numpy's {want}");
        // Imported weights serve eval and predict, not --resume.
        let (code, _, stderr) = run(&[
            "train",
            "--resume",
            out.to_str().unwrap(),
            "--epochs",
            "2",
            "--device",
            "cpu",
            "--data-dir",
            SAMPLE,
        ]);
        assert!(code == 1 && stderr.contains("no training state"), "{stderr}");
    }
    let table = run(&[
        "import",
        &format!("{FIXTURES}/torch.safetensors"),
        "--model",
        &model(),
        "--out",
        dir.path().join("t2").to_str().unwrap(),
    ])
    .1;
    for row in [
        "→ conv2d/kernel (3, 3, 1, 4)  (out, in, kh, kw) → (kh, kw, in, out)",
        "5.weight (16, 676)",
        "transposed, inputs reordered channel-last",
        "4.running_var (676)",
        "4.num_batches_tracked ()",
    ] {
        assert!(table.contains(row), "{row} not in\n{table}");
    }
}

/// A safetensors file of f32 tensors.
fn write(path: &Path, tensors: &[(&str, Vec<usize>)]) {
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s)| (n.to_string(), s.clone(), vec![0u8; 4 * s.iter().product::<usize>()]))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = data
        .iter()
        .map(|(n, s, d)| {
            (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d).unwrap())
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn mismatches_are_one_line_errors_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    let out_s = out.to_str().unwrap();
    let torch = format!("{FIXTURES}/torch.safetensors");
    one_line_error(
        run(&["import", &torch, "--model", "mlp", "--out", out_s]),
        &["1 convolution layer(s)", "`mlp` has 0"],
    );
    let wrong = dir.path().join("wrong.safetensors");
    write(
        &wrong,
        &[
            ("0.weight", vec![4, 1, 3, 3]),
            ("0.bias", vec![4]),
            ("4.weight", vec![676]),
            ("4.bias", vec![676]),
            ("4.running_mean", vec![676]),
            ("4.running_var", vec![676]),
            ("5.weight", vec![16, 676]),
            ("5.bias", vec![16]),
            ("7.weight", vec![10, 15]),
            ("7.bias", vec![10]),
        ],
    );
    one_line_error(
        run(&["import", wrong.to_str().unwrap(), "--model", &model(), "--out", out_s]),
        &["7.weight has shape [10, 15]", "dense_1/kernel needs [16, 10]"],
    );
    write(
        &wrong,
        &[
            ("0.weight", vec![4, 1, 3, 3]),
            ("4.weight", vec![676]),
            ("4.bias", vec![676]),
            ("4.running_mean", vec![676]),
            ("4.running_var", vec![676]),
            ("5.weight", vec![16, 676]),
            ("5.bias", vec![16]),
            ("7.weight", vec![10, 16]),
            ("7.bias", vec![10]),
        ],
    );
    one_line_error(
        run(&["import", wrong.to_str().unwrap(), "--model", &model(), "--out", out_s]),
        &["`0` has no `bias`"],
    );
    write(&wrong, &[("weights", vec![3])]);
    one_line_error(
        run(&["import", wrong.to_str().unwrap(), "--model", &model(), "--out", out_s]),
        &["cannot tell whose names"],
    );
    assert!(!out.exists());
    std::fs::write(&out, b"x").unwrap();
    one_line_error(run(&["import", &torch, "--model", &model(), "--out", out_s]), &["exists already"]);
}
