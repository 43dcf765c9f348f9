//! No silent surprises: a run records what it was made from, is never resumed on other data or
//! from an edited checkpoint, never overwritten or shared by two runs, leaves no empty directory
//! when it fails at once, and every flag that would do nothing — or a number out of range — is a
//! one-line error. (Experiment records refusing other data: tests/experiment.rs.)

mod common;

use std::path::Path;
use std::process::Command;

use common::{one_line_error, run, run_in, BIN, SAMPLE};

/// A one-epoch run on 300 of the sample's images.
fn small_run(out: &Path) {
    let (code, stdout, stderr) = run(&[
        "train",
        "--device",
        "cpu",
        "--data-dir",
        SAMPLE,
        "--subset",
        "300",
        "--epochs",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

fn sample_hash() -> String {
    let (_, data, _) = run(&["data", "--data-dir", SAMPLE]);
    data.lines()
        .find_map(|l| l.strip_prefix("content hash: "))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_run_records_what_it_was_made_from() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    small_run(&out);
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    // The subset is its own data set: 300 training images, a hash of its own.
    assert_eq!(m["data"]["train_images"], 300, "{m}");
    assert_eq!(m["data"]["test_images"], 1000, "{m}");
    assert_ne!(m["data"]["hash"], sample_hash().as_str(), "{m}");
    assert!(m["build"].as_str().unwrap().starts_with(env!("CARGO_PKG_VERSION")), "{m}");
    assert!(m["command"].as_str().unwrap().contains("--subset 300"), "{m}");
    assert!(m["started"].as_str().unwrap().starts_with("20"), "{m}");
    assert_eq!(m["threads"].as_u64().map(|t| t >= 1), Some(true), "{m}");
    assert_eq!((m["device"].as_str(), m["adapter"].as_str()), (Some("cpu"), Some("cpu (ndarray reference)")));
    let ckpt = gpu_fmnist::train::Checkpoint::load(&out.join("model.safetensors")).unwrap();
    assert_eq!(ckpt.data.unwrap().hash, m["data"]["hash"].as_str().unwrap());
    let (code, version, _) = run(&["--version"]);
    assert!(code == 0 && version.contains(" (") && version.contains("wgpu 30."), "{version}");
}

#[test]
fn resume_on_other_data_or_from_an_edited_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    small_run(&out);
    let ckpt = out.join("model.safetensors");
    let ckpt_s = ckpt.to_str().unwrap();
    // Without --subset the data is the sample's 1,800 images: another data set, named with ours.
    one_line_error(
        run(&["train", "--resume", ckpt_s, "--epochs", "2", "--device", "cpu", "--data-dir", SAMPLE]),
        &["trained on", "300 training", "1800 training"],
    );
    let (code, _, stderr) = run(&[
        "train",
        "--resume",
        ckpt_s,
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--data-dir",
        SAMPLE,
        "--subset",
        "300",
    ]);
    assert_eq!(code, 0, "{stderr}");

    // The metadata's epoch edited (the header rewritten, the tensors untouched): refused by
    // `train --resume` and by `eval` alike.
    let bytes = std::fs::read(&ckpt).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    assert_eq!(header["__metadata__"]["epoch"], "2");
    header["__metadata__"]["epoch"] = "9".into();
    let mut text = serde_json::to_vec(&header).unwrap();
    text.resize(text.len().div_ceil(8) * 8, b' ');
    let mut edited = (text.len() as u64).to_le_bytes().to_vec();
    edited.extend(&text);
    edited.extend(&bytes[8 + n..]);
    let edited_path = dir.path().join("edited.safetensors");
    std::fs::write(&edited_path, edited).unwrap();
    let e = edited_path.to_str().unwrap();
    let args = ["--device", "cpu", "--data-dir", SAMPLE, "--subset", "300"];
    one_line_error(
        run(&[&["train", "--resume", e, "--epochs", "12"][..], &args].concat()),
        &["checksum", "edited"],
    );
    one_line_error(run(&["eval", "--checkpoint", e, "--device", "cpu", "--data-dir", SAMPLE]), &["checksum"]);
    // A checkpoint of the first format (its checksum covering its tensors only) still serves eval.
    let old = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/checkpoint.safetensors");
    let (code, _, stderr) = run(&["eval", "--checkpoint", old, "--device", "cpu", "--data-dir", SAMPLE]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_run_is_never_overwritten_and_runs_of_the_same_second_do_not_share_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    small_run(&out);
    let before = std::fs::read(out.join("model.safetensors")).unwrap();
    let train = |extra: &[&str]| {
        let args = [
            "train",
            "--device",
            "cpu",
            "--data-dir",
            SAMPLE,
            "--subset",
            "200",
            "--epochs",
            "1",
            "--seed",
            "7",
        ];
        run(&[&args[..], extra].concat())
    };
    one_line_error(train(&["--out", out.to_str().unwrap()]), &["holds a run already", "--overwrite"]);
    assert_eq!(std::fs::read(out.join("model.safetensors")).unwrap(), before);
    let (code, _, stderr) = train(&["--out", out.to_str().unwrap(), "--overwrite"]);
    assert_eq!(code, 0, "{stderr}");
    assert_ne!(std::fs::read(out.join("model.safetensors")).unwrap(), before);
    let m = std::fs::read_to_string(out.join("metrics.json")).unwrap();
    assert!(m.contains("\"train_images\": 200") && m.contains("\"seed\": 7"), "{m}");

    // Two runs started at once, each with the default directory: two directories, two runs.
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let spawn = |seed: &str| {
        Command::new(BIN)
            .args([
                "train",
                "--device",
                "cpu",
                "--data-dir",
                SAMPLE,
                "--subset",
                "100",
                "--epochs",
                "1",
                "--seed",
                seed,
            ])
            .current_dir(&cwd)
            .output()
            .unwrap()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| spawn("1"));
        let b = s.spawn(|| spawn("2"));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(a.status.success() && b.status.success());
    let mut seeds: Vec<String> = std::fs::read_dir(cwd.join("runs"))
        .unwrap()
        .map(|e| {
            let m = std::fs::read_to_string(e.unwrap().path().join("metrics.json")).unwrap();
            let m: serde_json::Value = serde_json::from_str(&m).unwrap();
            m["seed"].to_string()
        })
        .collect();
    seeds.sort();
    assert_eq!(seeds, ["1", "2"]);
}

#[test]
fn a_run_that_fails_in_its_first_epoch_leaves_no_directory_and_names_the_knob() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    let base =
        ["train", "--device", "cpu", "--data-dir", SAMPLE, "--epochs", "1", "--out", out.to_str().unwrap()];
    one_line_error(
        run(&[&base[..], &["--lr", "50"]].concat()),
        &["became NaN", "lower the learning rate (--lr)", "nothing was saved"],
    );
    assert!(!out.exists());
    one_line_error(
        run(&[&base[..], &["--lr", "5", "--momentum", "0.99"]].concat()),
        &["or the momentum (--momentum)", "nothing was saved"],
    );
    assert!(!out.exists());
    // A closed standard output stops the run like Ctrl-C: a checkpoint to resume from, no panic.
    let mut child = Command::new(BIN)
        .args([
            "train",
            "--device",
            "cpu",
            "--data-dir",
            SAMPLE,
            "--epochs",
            "1",
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let done = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("interrupted") && stderr.contains("resume with"), "{stderr}");
    assert!(out.join("model.safetensors").exists(), "{stderr}");
}

#[test]
fn flags_that_would_do_nothing_and_numbers_out_of_range_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    small_run(&out);
    let ckpt = out.join("model.safetensors");
    let c = ckpt.to_str().unwrap();
    let train = |extra: &[&str]| run(&[&["train", "--data-dir", SAMPLE][..], extra].concat());
    one_line_error(
        train(&["--resume", c, "--model", "cnn", "--device", "cpu", "--epochs", "2"]),
        &["drop --model"],
    );
    one_line_error(train(&["--model", "cnn", "--momentum", "0.9", "--device", "cpu"]), &["SGD's", "Adam"]);
    one_line_error(train(&["--model", "cnn", "--nesterov", "--device", "cpu"]), &["SGD's"]);
    one_line_error(train(&["--device", "cpu", "--adapter", "llvm"]), &["--adapter", "--device cpu"]);
    one_line_error(train(&["--device", "vulkan", "--threads", "2"]), &["--threads", "GPU"]);
    one_line_error(
        run(&["eval", "--checkpoint", c, "--batch-size", "0", "--device", "cpu", "--data-dir", SAMPLE]),
        &["--batch-size"],
    );
    one_line_error(train(&["--device", "cpu", "--momentum", "1"]), &["--momentum must be"]);
    one_line_error(train(&["--device", "cpu", "--momentum=-0.1"]), &["--momentum must be"]);
    one_line_error(train(&["--device", "cpu", "--threads", "10000"]), &["--threads must be between 1 and"]);
    one_line_error(
        train(&["--device", "cpu", "--epochs", "1000000"]),
        &["--epochs must be between 1 and 10000"],
    );
    one_line_error(train(&["--device", "cpu", "--subset", "0"]), &["--subset"]);
    let zero = dir.path().join("zero");
    let (code, _, stderr) = train(&[
        "--device",
        "cpu",
        "--lr",
        "0",
        "--subset",
        "64",
        "--epochs",
        "1",
        "--out",
        zero.to_str().unwrap(),
    ]);
    assert!(code == 0 && stderr.contains("warning: a learning rate of 0"), "{stderr}");
}

#[test]
fn device_and_data_errors_say_what_exists() {
    one_line_error(
        run(&["train", "--device", "vulkan", "--adapter", "no-such-gpu", "--data-dir", SAMPLE]),
        &["no-such-gpu", "there are: ", "llvmpipe"],
    );
    one_line_error(
        run_in(None, &[("WGPU_BACKEND", "foo")], &["train", "--device", "vulkan", "--data-dir", SAMPLE]),
        &["WGPU_BACKEND=foo", "not a backend"],
    );
    one_line_error(run_in(None, &[("WGPU_BACKEND", "vulkn")], &["devices"]), &["`vulkn` is not a backend"]);
    one_line_error(run(&["data", "--data-dir", "/no/such/dir"]), &["/no/such/dir", "does not exist"]);
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    one_line_error(run(&["data", "--data-dir", file]), &["is not a directory"]);
}
