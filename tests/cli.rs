//! The command line as a user meets it: every command documented, a training run's files, eval,
//! predict, resume, and one-line errors (exit code 1, no panic) for bad input.

mod common;

use std::path::Path;
use std::process::Command;

use common::{eval_json, run, SAMPLE};

/// Asserts a failure reported as exactly one `error:` line that contains `expect`.
fn assert_one_line_error(args: &[&str], expect: &str) {
    let (code, _, stderr) = run(args);
    assert_eq!(code, 1, "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: not one line: {stderr:?}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains(expect),
        "{args:?}: {stderr:?} lacks {expect:?}"
    );
}

#[test]
fn help_documents_every_command() {
    let (code, stdout, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for command in [
        "train",
        "eval",
        "predict",
        "summary",
        "check",
        "bench",
        "data",
        "devices",
        "experiment",
        "augment-preview",
    ] {
        assert!(stdout.contains(command), "--help lacks {command}:\n{stdout}");
        let (code, text, _) = run(&[command, "--help"]);
        assert_eq!(code, 0, "{command} --help");
        assert!(text.contains("Usage:"), "{command} --help:\n{text}");
    }
    let (_, text, _) = run(&["train", "--help"]);
    for flag in [
        "--model",
        "--device",
        "--epochs",
        "--batch-size",
        "--optimizer",
        "--lr",
        "--seed",
        "--out",
        "--resume",
        "--augment",
        "--early-stopping",
        "--save-best",
    ] {
        assert!(text.contains(flag), "train --help lacks {flag}");
    }
}

#[test]
fn summary_prints_keras_counts() {
    let (code, stdout, _) = run(&["summary", "--model", "cnn"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("conv2d_1 (Conv2D)")
            && stdout.contains("65,600")
            && stdout.contains("Total params: 154,918"),
        "{stdout}"
    );
}

fn png_size(path: &Path) -> (u32, u32) {
    let img = image::open(path).unwrap();
    (img.width(), img.height())
}

#[test]
fn a_training_run_leaves_its_files_and_they_serve_eval_predict_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    let (code, stdout, stderr) = run(&[
        "train",
        "--model",
        "mlp",
        "--device",
        "cpu",
        "--data-dir",
        SAMPLE,
        "--epochs",
        "1",
        "--out",
        out_s,
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("Epoch 1/1") && stdout.contains("test: loss"), "{stdout}");
    for file in ["model.safetensors", "history.csv", "metrics.json", "curves.png", "summary.md"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    for split in ["train", "test"] {
        let csv = std::fs::read_to_string(out.join(format!("confusion_{split}.csv"))).unwrap();
        assert_eq!(csv.lines().count(), 11);
        assert!(png_size(&out.join(format!("confusion_{split}.png"))).0 >= 800);
    }
    let history = std::fs::read_to_string(out.join("history.csv")).unwrap();
    assert_eq!(history.lines().next().unwrap(), "epoch,loss,accuracy,val_loss,val_accuracy,seconds");
    assert_eq!(history.lines().count(), 2);
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    for key in
        ["val_accuracy", "test_accuracy", "test_loss", "epochs", "train_seconds", "device", "adapter", "seed"]
    {
        assert!(metrics.get(key).is_some(), "metrics.json lacks {key}");
    }
    // Hyperparameters as the user gave them (the MLP's SGD at 0.1), not widened from f32.
    assert_eq!(metrics["optimizer"]["lr"].as_f64(), Some(0.1), "{}", metrics["optimizer"]);
    assert!(std::fs::read_to_string(out.join("summary.md"))
        .unwrap()
        .contains("![loss and accuracy per epoch](curves.png)"));
    assert_eq!(png_size(&out.join("curves.png")), (960, 600));

    let ckpt = out.join("model.safetensors");
    let ckpt_s = ckpt.to_str().unwrap();
    let (code, stdout, _) =
        run(&["eval", "--checkpoint", ckpt_s, "--device", "cpu", "--data-dir", SAMPLE, "--split", "val"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Val split (200 images)") && stdout.contains("accuracy"), "{stdout}");

    // Test image 0 is an ankle boot; a trained model should say so.
    let ds = gpu_fmnist::data::FashionMnist::load(Some(Path::new(SAMPLE))).unwrap();
    let png = dir.path().join("boot.png");
    image::GrayImage::from_raw(28, 28, ds.test.image(0).to_vec()).unwrap().save(&png).unwrap();
    let rgb = dir.path().join("boot-rgb.png");
    image::DynamicImage::ImageLuma8(image::GrayImage::from_raw(28, 28, ds.test.image(0).to_vec()).unwrap())
        .to_rgb8()
        .save(&rgb)
        .unwrap();
    let (code, stdout, stderr) = run(&[
        "predict",
        "--checkpoint",
        ckpt_s,
        "--device",
        "cpu",
        png.to_str().unwrap(),
        rgb.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.matches("Ankle boot").count(), 2, "{stdout}");

    // Outputs other programs read: predict --json and --top, eval --json.
    let (code, stdout, stderr) = run(&[
        "predict",
        "--checkpoint",
        ckpt_s,
        "--device",
        "cpu",
        "--json",
        "--top",
        "3",
        png.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let p: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let first = &p["predictions"][0];
    let probs: Vec<f64> =
        first["probabilities"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(probs.len(), 10);
    assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{probs:?}");
    assert_eq!(first["top"].as_array().unwrap().len(), 3);
    assert_eq!(first["class"], "Ankle boot");
    assert_eq!(first["top"][0]["class"], "Ankle boot");
    assert!(first["top"][0]["probability"].as_f64() >= first["top"][1]["probability"].as_f64());
    let (code, stdout, _) =
        run(&["predict", "--checkpoint", ckpt_s, "--device", "cpu", "--top", "2", png.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(stdout.matches('%').count(), 2, "{stdout}");
    let (code, stdout, stderr) = run(&[
        "eval",
        "--checkpoint",
        ckpt_s,
        "--device",
        "cpu",
        "--data-dir",
        SAMPLE,
        "--split",
        "val",
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let e: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(e["images"], 200);
    let counted: u64 = e["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(counted, 200);
    assert!(e["accuracy"].as_f64().unwrap() > 0.5 && e["loss"].as_f64().is_some());

    // Resume for a second epoch: the history grows, the checkpoint records two epochs.
    let (code, stdout, stderr) =
        run(&["train", "--resume", ckpt_s, "--epochs", "2", "--device", "cpu", "--data-dir", SAMPLE]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("resuming after epoch 1") && stdout.contains("Epoch 2/2"), "{stdout}");
    assert_eq!(std::fs::read_to_string(out.join("history.csv")).unwrap().lines().count(), 3);
    assert_one_line_error(&["train", "--resume", ckpt_s, "--device", "cpu", "--data-dir", SAMPLE], "epochs");
    assert_one_line_error(
        &[
            "train",
            "--resume",
            ckpt_s,
            "--epochs",
            "3",
            "--lr",
            "0.5",
            "--device",
            "cpu",
            "--data-dir",
            SAMPLE,
        ],
        "--resume",
    );

    // Bad images: wrong size, not an image, missing.
    let small = dir.path().join("small.png");
    image::GrayImage::new(32, 30).save(&small).unwrap();
    assert_one_line_error(
        &["predict", "--checkpoint", ckpt_s, "--device", "cpu", small.to_str().unwrap()],
        "32×30, not 28×28",
    );
    let text = dir.path().join("notes.png");
    std::fs::write(&text, "hello").unwrap();
    assert_one_line_error(
        &["predict", "--checkpoint", ckpt_s, "--device", "cpu", text.to_str().unwrap()],
        "notes.png",
    );
    assert_one_line_error(
        &["predict", "--checkpoint", ckpt_s, "--device", "cpu", "/nonexistent.png"],
        "nonexistent.png",
    );
}

#[test]
fn the_gpu_run_reports_its_dispatch_counts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (code, stdout, stderr) = run(&[
        "train",
        "--model",
        "mlp",
        "--device",
        "vulkan",
        "--data-dir",
        SAMPLE,
        "--epochs",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert!(metrics["adapter"].as_str().unwrap().contains("llvmpipe"));
    // The report's MLP on lavapipe: 20 dispatches a step today; at least one per layer's pass.
    assert!((12..=40).contains(&metrics["dispatches_per_step"].as_u64().unwrap()), "{metrics}");
    // Everything the command does in an epoch, pinned: the sample's 1,800 training images are 56
    // full steps in 10 chunks (a run and a read of the records each) and the last partial batch
    // (a run), then the records once more; validation's 200 images are a full and a partial run
    // with a read of the records and of the confusion counts; the checkpoint reads the MLP's 10
    // tensors (SGD without momentum keeps no slots). Reads: 10 + 1 + 2 + 10 = 23; submits: the 13
    // runs and the 23 reads.
    assert_eq!(metrics["host_reads_per_epoch"].as_u64(), Some(23), "{metrics}");
    assert_eq!(metrics["submits_per_epoch"].as_u64(), Some(36), "{metrics}");
}

#[test]
fn bad_input_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("model.safetensors");
    std::fs::write(&garbage, b"not a checkpoint at all").unwrap();
    assert_one_line_error(
        &["eval", "--checkpoint", garbage.to_str().unwrap(), "--device", "cpu", "--data-dir", SAMPLE],
        "model.safetensors",
    );
    assert_one_line_error(
        &["eval", "--checkpoint", "/no/such/file", "--device", "cpu", "--data-dir", SAMPLE],
        "/no/such/file",
    );

    assert_one_line_error(
        &["train", "--device", "cpu", "--data-dir", SAMPLE, "--epochs", "1", "--weight-decay", "0.01"],
        "--weight-decay is Adam's",
    );
    assert_one_line_error(
        &["train", "--device", "cpu", "--data-dir", SAMPLE, "--optimizer", "adamw", "--weight-decay=-1"],
        "--weight-decay must be",
    );
    assert_one_line_error(
        &["train", "--device", "cpu", "--data-dir", SAMPLE, "--epochs", "1", "--label-smoothing", "1"],
        "label smoothing must be",
    );
    for (schedule, expect) in [
        ("cosine:warmup=9", "warm-up"),
        ("linear", "`linear` is not a schedule"),
        ("exponential:every=1", "rate=R"),
        ("cosine:alhpa=0.1", "unknown option `alhpa`"),
    ] {
        assert_one_line_error(
            &["train", "--device", "cpu", "--data-dir", SAMPLE, "--epochs", "2", "--lr-schedule", schedule],
            expect,
        );
    }

    let model = dir.path().join("bad.toml");
    std::fs::write(
        &model,
        "name = \"bad\"\n[[layers]]\ntype = \"flatten\"\n[[layers]]\ntype = \"max_pool2d\"\npool = 2\n",
    )
    .unwrap();
    assert_one_line_error(&["summary", "--model", model.to_str().unwrap()], "layer 2 (MaxPooling2D");
    std::fs::write(
        &model,
        "name = \"bad\"\n[[layers]]\ntype = \"dense\"\nunits = 10\nactivaton = \"relu\"\n",
    )
    .unwrap();
    assert_one_line_error(&["summary", "--model", model.to_str().unwrap()], "activaton");
    std::fs::write(
        &model,
        "name = \"bad\"\n[[layers]]\ntype = \"flatten\"\n[[layers]]\ntype = \"dense\"\nunits = 10\nactivation = \"softmax\"\n[training.schedule]\nname = \"piecewise\"\nboundaries = [10, 5]\nvalues = [0.1, 0.01, 0.001]\n",
    )
    .unwrap();
    assert_one_line_error(
        &[
            "train",
            "--model",
            model.to_str().unwrap(),
            "--device",
            "cpu",
            "--data-dir",
            SAMPLE,
            "--epochs",
            "1",
        ],
        "boundaries increase",
    );
    std::fs::write(
        &model,
        "name = \"bad\"\n[[layers]]\ntype = \"flatten\"\n[[layers]]\ntype = \"dense\"\nunits = 7\n",
    )
    .unwrap();
    assert_one_line_error(&["summary", "--model", model.to_str().unwrap()], "(None, 7)");
    assert_one_line_error(&["summary", "--model", "no-such-model"], "mlp");

    let out = dir.path().join("x");
    assert_one_line_error(
        &[
            "train",
            "--device",
            "cpu",
            "--data-dir",
            SAMPLE,
            "--batch-size",
            "0",
            "--out",
            out.to_str().unwrap(),
        ],
        "batch",
    );
    assert_one_line_error(
        &["train", "--device", "cpu", "--data-dir", "/nonexistent-dir", "--epochs", "1"],
        "/nonexistent-dir",
    );
    assert_one_line_error(&["train", "--device", "metal", "--data-dir", SAMPLE, "--epochs", "1"], "Metal");
    assert_one_line_error(&["train", "--device", "cpu", "--data-dir", SAMPLE, "--epochs", "0"], "--epochs");
    assert_one_line_error(&["train", "--device", "cpu", "--data-dir", SAMPLE, "--lr=-1"], "--lr");
    assert_one_line_error(
        &["train", "--device", "cpu", "--data-dir", SAMPLE, "--batch-size", "5000"],
        "larger than the training set",
    );
    assert_one_line_error(
        &["train", "--device", "vulkan", "--data-dir", SAMPLE, "--batch-size", "1800", "--model", "cnn"],
        "batch",
    );
}

#[test]
fn bench_and_huge_models_are_one_line_errors_and_leave_no_run_directory() {
    assert_one_line_error(&["bench", "--device", "vulkan", "--data-dir", SAMPLE, "--reps", "0"], "--reps");
    // A data set with fewer training images than one batch: 20 images, 18 of them for training.
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny-data");
    std::fs::create_dir(&tiny).unwrap();
    let data = gpu_fmnist::data::FashionMnist::load_dir(Path::new(SAMPLE)).unwrap();
    use gpu_fmnist::data::idx::encode_idx;
    for (prefix, split) in [("train", &data.val), ("t10k", &data.test)] {
        let n = 20.min(split.len());
        let images = encode_idx(&[n, 28, 28], &split.images[..n * 784]);
        std::fs::write(tiny.join(format!("{prefix}-images-idx3-ubyte")), images).unwrap();
        let labels = encode_idx(&[n], &split.labels[..n]);
        std::fs::write(tiny.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
    }
    assert_one_line_error(
        &["bench", "--device", "vulkan", "--data-dir", tiny.to_str().unwrap()],
        "training images",
    );
    let model = dir.path().join("huge.toml");
    std::fs::write(
        &model,
        "name = \"huge\"\n[[layers]]\ntype = \"flatten\"\n[[layers]]\ntype = \"dense\"\nunits = 3000000000\n[[layers]]\ntype = \"dense\"\nunits = 10\nactivation = \"softmax\"\n",
    )
    .unwrap();
    let out = dir.path().join("never");
    assert_one_line_error(
        &[
            "train",
            "--model",
            model.to_str().unwrap(),
            "--device",
            "cpu",
            "--data-dir",
            SAMPLE,
            "--out",
            out.to_str().unwrap(),
        ],
        "GiB",
    );
    assert!(!out.exists(), "a run that could not start left its directory behind");
}

#[test]
fn a_closed_pipe_ends_the_program_quietly() {
    // The read end is closed before the program writes anything, as `| head -0` would.
    for args in [&["experiment", "--list"][..], &["summary", "--model", "cnn"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gpu-fmnist"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }
}

#[test]
fn ctrl_c_checkpoints_where_training_stopped_and_resume_finishes_the_same_run() {
    let dir = tempfile::tempdir().unwrap();
    let (straight, cut) = (dir.path().join("straight"), dir.path().join("cut"));
    let args = |out: &Path| -> Vec<String> {
        [
            "train",
            "--model",
            "cnn",
            "--device",
            "cpu",
            "--data-dir",
            SAMPLE,
            "--epochs",
            "6",
            "--seed",
            "4",
            "--out",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([out.to_str().unwrap().to_string()])
        .collect()
    };
    let (code, _, stderr) = run(&args(&straight).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{stderr}");

    let child = Command::new(env!("CARGO_BIN_EXE_gpu-fmnist"))
        .args(args(&cut))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first epoch has been saved, Ctrl-C.
    let started = std::time::Instant::now();
    while !cut.join("history.csv").exists() && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: sends SIGINT to the child we spawned.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted after step") && stderr.contains("--resume"), "{stderr}");
    // The hint resumes where the run ran: the checkpoint names neither the device nor the data.
    assert!(stderr.contains(&format!("--device cpu --data-dir {SAMPLE}`")), "{stderr}");
    assert!(!cut.join("metrics.json").exists());

    let ckpt = cut.join("model.safetensors");
    let (code, stdout, stderr) = run(&[
        "train",
        "--resume",
        ckpt.to_str().unwrap(),
        "--epochs",
        "6",
        "--device",
        "cpu",
        "--data-dir",
        SAMPLE,
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let columns = |p: &Path| -> Vec<String> {
        std::fs::read_to_string(p.join("history.csv"))
            .unwrap()
            .lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_string())
            .collect()
    };
    assert_eq!(columns(&straight), columns(&cut), "the resumed run differs from the straight one");
}

#[test]
fn a_learning_rate_schedule_is_used_recorded_and_kept_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = out.to_str().unwrap();
    let base = ["train", "--device", "cpu", "--data-dir", SAMPLE, "--out", o];
    let (code, stdout, stderr) =
        run(&[&base[..], &["--epochs", "2", "--lr-schedule", "cosine:warmup=1"]].concat());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("after 57 warm-up steps"), "{stdout}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["schedule"]["name"], "cosine");
    assert_eq!(metrics["schedule"]["warmup_target"], 0.1);
    let ckpt = out.join("model.safetensors");
    let resume = ["train", "--device", "cpu", "--data-dir", SAMPLE, "--resume", ckpt.to_str().unwrap()];
    assert_one_line_error(
        &[&resume[..], &["--epochs", "3", "--lr-schedule", "constant"]].concat(),
        "--lr-schedule",
    );
    let (code, stdout, stderr) = run(&[&resume[..], &["--epochs", "3"]].concat());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("cosine over"), "the resumed run keeps its schedule: {stdout}");
}

#[test]
fn the_readme_model_file_example_is_a_valid_model() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let at = readme.find("\n[training]").expect("the README shows a model file with a training section");
    let start = readme[..at].rfind("```toml").expect("inside a toml block") + "```toml".len();
    let end = at + readme[at..].find("```").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("example.toml");
    std::fs::write(&path, &readme[start..end]).unwrap();
    let (code, stdout, stderr) = run(&["summary", "--model", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Total params"), "{stdout}");
}

/// A model file whose early stopping counts no later epoch as better than the first (its
/// min_delta is larger than any gain in accuracy): training stops after 1 + patience epochs, the
/// last checkpoint holds epoch 1's weights (best.safetensors'), and the test figures are theirs.
#[test]
fn early_stopping_stops_restores_the_best_weights_and_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = "[[layers]]\ntype = \"flatten\"\n[[layers]]\ntype = \"dense\"\nunits = 10\n\
                activation = \"softmax\"\n[training]\nepochs = 6\noptimizer = { name = \"sgd\", lr = 0.05 }\n";
    let (model, plain_model) = (dir.path().join("tiny-es.toml"), dir.path().join("tiny.toml"));
    let stopping = "early_stopping = { monitor = \"val_accuracy\", patience = 2, min_delta = 2.0 }\n";
    std::fs::write(&model, format!("{tiny}{stopping}")).unwrap();
    std::fs::write(&plain_model, tiny).unwrap();
    let out = dir.path().join("run");
    let args = ["train", "--model", model.to_str().unwrap(), "--device", "cpu", "--data-dir", SAMPLE];
    let plain_args =
        ["train", "--model", plain_model.to_str().unwrap(), "--device", "cpu", "--data-dir", SAMPLE];
    let (code, stdout, stderr) = run(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Epoch 3/6") && !stdout.contains("Epoch 4/6"), "{stdout}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!((metrics["stopped_early"].as_bool(), metrics["best_epoch"].as_u64()), (Some(true), Some(1)));
    assert_eq!(metrics["restored_best"], true);
    let best = gpu_fmnist::train::Checkpoint::load(&out.join("best.safetensors")).unwrap();
    let last = gpu_fmnist::train::Checkpoint::load(&out.join("model.safetensors")).unwrap();
    assert_eq!((best.epoch, last.epoch, last.history.len()), (1, 3, 3));
    assert_eq!(best.values(), last.values(), "the last checkpoint holds the restored weights");
    // Epoch 3's own weights differ: a run without early stopping to 3 epochs ends elsewhere.
    let plain = dir.path().join("plain");
    let (code, _, stderr) =
        run(&[&plain_args[..], &["--epochs", "3", "--out", plain.to_str().unwrap(), "--save-best"]].concat());
    assert_eq!(code, 0, "{stderr}");
    let third = gpu_fmnist::train::Checkpoint::load(&plain.join("model.safetensors")).unwrap();
    assert_ne!(third.values(), last.values());
    // --save-best keeps the epoch of the best validation accuracy.
    let kept = gpu_fmnist::train::Checkpoint::load(&plain.join("best.safetensors")).unwrap();
    let accuracies: Vec<f64> = third.history.iter().map(|r| r.val_accuracy).collect();
    let top = accuracies.iter().cloned().fold(f64::MIN, f64::max);
    assert_eq!(accuracies.iter().position(|&a| a == top).unwrap() + 1, kept.epoch);
    // And the test figures are those of the restored weights.
    let eval = eval_json(&out.join("model.safetensors"));
    assert_eq!(eval["accuracy"], metrics["test_accuracy"]);
    assert_one_line_error(&[&args[..], &["--early-stopping", "0"]].concat(), "--early-stopping");
}

/// `--lr-schedule plateau` lowers the rate after epochs without a better validation loss, as
/// recorded in metrics.json; `--augment` is recorded too, and a bad one is a one-line error.
#[test]
fn plateau_and_augment_flags_are_used_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let base =
        ["train", "--device", "cpu", "--data-dir", SAMPLE, "--epochs", "2", "--out", out.to_str().unwrap()];
    let extra = ["--lr-schedule", "plateau:patience=1,factor=0.5", "--augment", "shift=1,flip,erase=0.5"];
    let (code, stdout, stderr) = run(&[&base[..], &extra[..]].concat());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("augment shift=1,flip,erase=0.5"), "{stdout}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["schedule"]["name"], "plateau");
    assert_eq!(metrics["augment"], "shift=1,flip,erase=0.5");
    assert_one_line_error(&[&base[..], &["--augment", "rotate=3"]].concat(), "--augment");
    assert_one_line_error(&[&base[..], &["--lr-schedule", "plateau:factor=3"]].concat(), "factor");
}

/// `augment-preview` writes a grid of (1 + epochs) columns by images rows of 28·scale-pixel
/// tiles with 2-pixel gutters; bad settings are one-line errors.
#[test]
fn augment_preview_draws_the_grid() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grid.png");
    let args = ["augment-preview", "--data-dir", SAMPLE, "--out", out.to_str().unwrap()];
    let (code, stdout, stderr) = run(&[
        &args[..],
        &["--images", "3", "--epochs", "4", "--scale", "2", "--augment", "shift=3,erase=1"],
    ]
    .concat());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("shift=3,erase=1"), "{stdout}");
    assert_eq!(png_size(&out), (5 * 58 + 2, 3 * 58 + 2));
    assert_one_line_error(&[&args[..], &["--augment", "shift=x"]].concat(), "--augment");
    assert_one_line_error(&[&args[..], &["--images", "0"]].concat(), "--images");
}

/// `predict` as a tool: a directory of images, `--resize` and `--invert`, and a bad image that
/// is reported on its own line while the others are still classified (exit 1 at the end).
#[test]
fn predict_reads_directories_resizes_inverts_and_goes_on_past_a_bad_image() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    let data = gpu_fmnist::data::FashionMnist::load_dir(Path::new(SAMPLE)).unwrap();
    let gray = |px: Vec<u8>, side: u32| image::GrayImage::from_raw(side, side, px).unwrap();
    let first = data.test.image(0).to_vec();
    gray(first.clone(), 28).save(imgs.join("a.png")).unwrap();
    gray(data.test.image(1).to_vec(), 28).save(imgs.join("b.png")).unwrap();
    gray(first.iter().map(|v| 255 - v).collect(), 28).save(imgs.join("c-inverted.png")).unwrap();
    let big = image::imageops::resize(&gray(first.clone(), 28), 56, 56, image::imageops::FilterType::Nearest);
    big.save(imgs.join("d-big.png")).unwrap();
    std::fs::write(imgs.join("e-bad.png"), b"not an image").unwrap();
    std::fs::write(imgs.join("notes.txt"), b"not read: not an image file name").unwrap();
    let ckpt = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/checkpoint.safetensors");
    let predict = |extra: &[&str]| {
        let args = [&["predict", "--checkpoint", ckpt, imgs.to_str().unwrap(), "--device", "cpu"][..], extra]
            .concat();
        run(&args)
    };
    let probs = |json: &serde_json::Value, name: &str| -> Vec<f64> {
        let p = json["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["image"].as_str().unwrap().ends_with(name));
        p.unwrap_or_else(|| panic!("{name} not classified: {json}"))["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let (code, stdout, stderr) = predict(&["--json"]);
    assert_eq!(code, 1, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["predictions"].as_array().unwrap().len(), 3, "{json}");
    let errors: Vec<&str> =
        json["errors"].as_array().unwrap().iter().map(|e| e["image"].as_str().unwrap()).collect();
    assert!(
        errors.len() == 2 && errors[0].ends_with("d-big.png") && errors[1].ends_with("e-bad.png"),
        "{errors:?}"
    );
    assert!(stderr.contains("d-big.png: the image is 56×56") && stderr.contains("--resize"), "{stderr}");
    assert!(stderr.lines().last().unwrap().contains("2 of 5 images could not be read"), "{stderr}");
    // The inverted copy: flagged as a light background; --invert gives the original's answer.
    let inverted = json["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["image"].as_str().unwrap().ends_with("c-inverted.png"))
        .unwrap();
    assert_eq!(inverted["light_background"], true);
    let original = probs(&json, "a.png");
    let (_, stdout, _) = predict(&["--json", "--invert", "--resize"]);
    let again: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for (x, y) in probs(&again, "c-inverted.png").iter().zip(&original) {
        assert!((x - y).abs() < 1e-6, "{x} {y}");
    }
    // --resize brings the 56×56 copy back to the original's pixels, so to its class.
    let (_, stdout, _) = predict(&["--json", "--resize"]);
    let resized: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let big = probs(&resized, "d-big.png");
    let best = |p: &[f64]| (0..10).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
    assert_eq!(best(&big), best(&original));
    // Real test images never get the hint.
    let (_, text, _) = predict(&["--resize"]);
    assert!(
        text.lines().filter(|l| l.contains("light background")).all(|l| l.contains("c-inverted")),
        "{text}"
    );
}

/// Every argument of every command has a description in `-h`, and the presets are listed.
#[test]
fn every_argument_is_described_and_the_presets_are_listed() {
    let (_, top, _) = run(&["--help"]);
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 13, "{commands:?}");
    for c in &commands {
        let (code, help, _) = run(&[c, "-h"]);
        assert_eq!(code, 0, "{c}");
        for line in help.lines() {
            let t = line.trim_start();
            if !(t.starts_with('-') || t.starts_with('<')) {
                continue;
            }
            // `--flag <VALUE>  description`: something after the flag and its value.
            let rest = t.split("  ").skip(1).map(str::trim).find(|p| !p.is_empty()).unwrap_or("");
            assert!(!rest.is_empty() && !rest.starts_with('['), "{c}: `{t}` has no description");
        }
    }
    let (code, models, _) = run(&["models"]);
    assert_eq!(code, 0);
    for name in ["mlp", "cnn", "strong"] {
        assert!(models.lines().any(|l| l.starts_with(name)), "{models}");
        let (_, help, _) = run(&["train", "--help"]);
        assert!(help.contains("strong") && help.contains("plateau"), "train --help");
    }
    let (code, script, _) = run(&["completions", "bash"]);
    assert!(code == 0 && script.contains("gpu-fmnist") && script.contains("--lr-schedule"), "{script}");
    // --json outputs parse.
    let (_, data, _) = run(&["data", "--data-dir", SAMPLE, "--json"]);
    let data: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(data["train"]["images"], 1800);
    let (_, devices, _) = run(&["devices", "--json"]);
    let devices: serde_json::Value = serde_json::from_str(&devices).unwrap();
    assert!(devices["adapters"].is_array(), "{devices}");
}
