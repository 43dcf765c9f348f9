//! `gpu-fmnist experiment` as a user meets it: study files expand to exactly their trials, bad
//! files are one-line errors, a tiny study runs and writes its report, an interrupted study
//! resumes without rerunning what finished, and trials spread by GNU parallel with `--trial`
//! then `--report` give the same results as the whole study.

use std::path::Path;
use std::process::Command;

use gpu_fmnist::experiment::{Overrides, Study, BUILTIN};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample");
const BIN: &str = env!("CARGO_BIN_EXE_gpu-fmnist");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// A 2-setting × 2-seed study of a small MLP: a few dozen steps per trial.
const TINY: &str = r#"
claim = "ReLU beats tanh."
base = "mlp"
epochs = 2
seeds = 2
vary = { activation = ["relu", "tanh"], l2 = [0.0, 1e-6] }
labels = ["relu", "tanh, l2 1e-6"]
expect = ["relu > tanh, l2 1e-6"]
"#;

fn write_study(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// results.csv without its last column (the seconds, the one thing two runs do not share).
fn results_without_seconds(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    text.lines().map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n").collect()
}

#[test]
fn every_file_in_experiments_is_built_in_and_expands_to_its_trials() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/experiments"));
    // The report's studies; experiments/beyond/ holds studies past the report, run by path.
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut builtin: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
    builtin.sort();
    assert_eq!(files, builtin);
    assert_eq!(BUILTIN.len(), 16, "the report's 16 claims");
    for (name, _) in BUILTIN {
        let study = Study::load(name).unwrap();
        let on_disk = Study::load(dir.join(format!("{name}.toml")).to_str().unwrap()).unwrap();
        assert_eq!(study.text, on_disk.text, "{name}: the built-in copy is the file");
        let trials = study.trials(&Overrides::default());
        assert_eq!(trials.len(), study.settings.len() * study.seeds, "{name}");
        for (i, t) in trials.iter().enumerate() {
            assert_eq!(t.index, i);
            assert_eq!(t.setting, study.settings[i / study.seeds].label);
            assert_eq!(t.seed, (i % study.seeds) as u64 + 1);
        }
    }
}

/// The first strong preset's ablation: each setting changes one ingredient and keeps the others.
#[test]
fn the_strong_ablation_study_takes_one_ingredient_away_per_setting() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments/beyond/strong-ablation.toml");
    let study = Study::load(path).unwrap();
    let labels: Vec<&str> = study.settings.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ["strong", "shift-1", "constant-lr", "no-batchnorm"]);
    let v1 = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments/beyond/strong-v1.toml");
    let strong = gpu_fmnist::graph::ModelSpec::load(v1).unwrap();
    // The preset today is the first one with a second 128-filter convolution and mirroring.
    let preset = gpu_fmnist::graph::model::strong();
    assert_eq!(preset.layers.len(), strong.layers.len() + 3);
    assert!(preset.training.augment.is_on() && preset.training.augment.flip);
    assert_eq!(study.settings[0].spec.layers, strong.layers);
    assert_eq!(study.settings[0].spec.training.augment, strong.training.augment);
    assert!(!strong.training.augment.is_on() && study.settings[1].spec.training.augment.shift == 1);
    assert_eq!(study.settings[2].spec.training.lr_schedule.as_deref(), Some("constant"));
    let bn = |s: &gpu_fmnist::graph::ModelSpec| {
        s.layers.iter().filter(|l| matches!(l, gpu_fmnist::graph::model::Layer::BatchNorm { .. })).count()
    };
    assert_eq!((bn(&study.settings[0].spec), bn(&study.settings[3].spec)), (4, 0));
    assert_eq!(study.trials(&Overrides::default()).len(), 4);
}

/// Today's preset's ablation: its first setting is the preset itself (so its trials are the
/// preset's runs), and each other setting takes one ingredient away and keeps the rest.
#[test]
fn the_strong_ingredients_study_starts_from_the_preset_and_takes_one_thing_away_per_setting() {
    use gpu_fmnist::graph::model::{strong, Layer};
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments/beyond/strong-ingredients.toml");
    let study = Study::load(path).unwrap();
    let labels: Vec<&str> = study.settings.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ["strong", "no-flip", "constant-lr", "no-batchnorm"]);
    let preset = strong();
    let spec = |i: usize| study.settings[i].spec.clone();
    assert_eq!(spec(0), preset);
    let mut no_flip = spec(1);
    assert!(!no_flip.training.augment.is_on());
    no_flip.training.augment = preset.training.augment;
    assert_eq!(no_flip, preset);
    let mut constant = spec(2);
    assert_eq!(constant.training.lr_schedule.as_deref(), Some("constant"));
    constant.training.lr_schedule = preset.training.lr_schedule.clone();
    assert_eq!(constant, preset);
    let no_bn = spec(3);
    assert!(!no_bn.layers.iter().any(|l| matches!(l, Layer::BatchNorm { .. })));
    let kept: Vec<&Layer> = preset.layers.iter().filter(|l| !matches!(l, Layer::BatchNorm { .. })).collect();
    assert_eq!(no_bn.layers.iter().collect::<Vec<_>>(), kept);
    assert_eq!(no_bn.training, preset.training);
    assert_eq!(study.trials(&Overrides::default()).len(), 12);
}

#[test]
fn a_study_expands_to_exactly_the_trials_it_describes() {
    let study = Study::parse("tiny", TINY, None).unwrap();
    let trials = study.trials(&Overrides::default());
    let seen: Vec<(String, u64, usize)> =
        trials.iter().map(|t| (t.setting.clone(), t.seed, t.epochs)).collect();
    assert_eq!(
        seen,
        [
            ("relu".into(), 1, 2),
            ("relu".into(), 2, 2),
            ("tanh, l2 1e-6".into(), 1, 2),
            ("tanh, l2 1e-6".into(), 2, 2)
        ]
    );
    let dense = |t: &gpu_fmnist::experiment::Trial| {
        t.spec.layers.iter().find_map(|l| match l {
            gpu_fmnist::graph::Layer::Dense { activation, l2, .. } => Some((*activation, *l2)),
            _ => None,
        })
    };
    use gpu_fmnist::graph::model::Activation;
    assert_eq!(dense(&trials[0]), Some((Activation::Relu, 0.0)));
    assert_eq!(dense(&trials[3]), Some((Activation::Tanh, 1e-6)));
    let more = study.trials(&Overrides { epochs: Some(5), seeds: Some(3), subset: Some(100) });
    assert_eq!(more.len(), 6);
    assert!(more.iter().all(|t| t.epochs == 5 && t.subset == Some(100) && t.spec.training.epochs == 5));
}

#[test]
fn bad_study_files_are_one_line_errors_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("claim = 1\nbase = \"mlp\"\nexpect = []", "claim"),
        ("claim = \"x\"\nbase = \"mlp\"\nvary = { activation = [\"gelu\"] }\nexpect = [\"gelu > relu\"]", "vary.activation[0]: `gelu` is not an activation"),
        ("claim = \"x\"\nbase = \"mlp\"\nvary = { depth = [1, 2] }\nexpect = [\"1 > 2\"]", "vary.depth[0]: `depth` is not a knob"),
        ("claim = \"x\"\nbase = \"mlp\"\nvary = { lr = [0.1, 0.01] }\nexpect = [\"0.1 > 0.5\"]", "expect[0]: `0.5` is not one of the settings"),
        ("claim = \"x\"\nbase = \"nope.toml\"\nvary = { lr = [0.1] }\nexpect = [\"0.1 >= 0.1\"]", "base:"),
        ("claim = \"x\"\nbase = \"mlp\"\nvary = { lr = [0.1, 0.01], l2 = [0.0] }\nexpect = [\"0.1 > 0.01\"]", "vary: every knob needs the same number"),
        ("claim = \"x\"\nbase = \"cnn\"\nvary = { filters = [\"32\"] }\nexpect = [\"32 >= 32\"]", "1 filter counts for 2 Conv2D layers"),
        ("claim = \"x\"\nbase = \"mlp\"\nvary = { lr = [0.1] }\nexpect = [\"plateau 3..5\"]", "plateau` needs a curve study"),
        ("claim = \"x\"\nbase = \"mlp\"\nvary = { lr = [0.1] }\nexpect = [\"0.1 > 0.1\"]\nseed = 3", "unknown field `seed`"),
    ];
    for (i, (text, expect)) in cases.iter().enumerate() {
        let path = write_study(dir.path(), &format!("bad{i}"), text);
        let (code, _, stderr) = run(&["experiment", &path, "--trials"]);
        assert_eq!(code, 1, "{text}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{text}: not one line: {stderr:?}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expect),
            "{text}: {stderr:?} lacks {expect:?}"
        );
    }
    let (code, _, stderr) = run(&["experiment", "no-such-study"]);
    assert!(code == 1 && stderr.contains("no-such-study") && stderr.lines().count() == 1, "{stderr}");
    let (code, _, stderr) =
        run(&["experiment", "mlp-lr", "--trial", "99", "--device", "cpu", "--data-dir", SAMPLE]);
    assert!(code == 1 && stderr.contains("no trial 99"), "{stderr}");
}

#[test]
fn list_shows_the_sixteen_claims() {
    let (code, stdout, _) = run(&["experiment", "--list"]);
    assert_eq!(code, 0);
    assert_eq!(stdout.lines().count(), 17, "{stdout}");
    for (name, _) in BUILTIN {
        assert!(stdout.contains(name));
    }
    assert!(
        stdout.contains("ReLU beats sigmoid and tanh")
            && stdout.contains("Max pooling beats average pooling")
    );
}

#[test]
fn a_tiny_study_runs_writes_its_report_and_resumes_without_rerunning() {
    let dir = tempfile::tempdir().unwrap();
    let study = write_study(dir.path(), "tiny", TINY);
    let out = dir.path().join("out");
    let out_s = out.to_str().unwrap();
    let common = ["--device", "cpu", "--data-dir", SAMPLE, "--subset", "300", "--out", out_s];
    // Interrupted after one trial: only trial 1 has run.
    let args: Vec<&str> = ["experiment", &study, "--trial", "1"].iter().copied().chain(common).collect();
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let first = out.join("tiny/relu-seed2");
    let before = std::fs::read(first.join("model.safetensors")).unwrap();
    let stamp = std::fs::metadata(first.join("metrics.json")).unwrap().modified().unwrap();
    assert!(!out.join("tiny/relu-seed1").exists());
    // The report of a study under way: a setting with no finished trial shows dashes, not NaN.
    let args: Vec<&str> = ["experiment", &study, "--report"].iter().copied().chain(common).collect();
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report = std::fs::read_to_string(out.join("tiny/REPORT.md")).unwrap();
    assert!(report.contains("| tanh, l2 1e-6 | — | [] | — | — |") && !report.contains("NaN"), "{report}");

    let args: Vec<&str> = ["experiment", &study, "--jobs", "2"].iter().copied().chain(common).collect();
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("tiny trial 1 (relu, seed 2): finished before, kept"), "{stdout}");
    assert_eq!(stdout.matches("val ").count(), 3, "three trials trained: {stdout}");
    assert_eq!(std::fs::metadata(first.join("metrics.json")).unwrap().modified().unwrap(), stamp);
    assert_eq!(std::fs::read(first.join("model.safetensors")).unwrap(), before);

    let study_dir = out.join("tiny");
    for f in
        ["REPORT.md", "results.csv", "accuracy.png", "curves.png", "time.png", "summary.json", "study.toml"]
    {
        assert!(study_dir.join(f).exists(), "{f} missing");
    }
    for png in ["accuracy.png", "curves.png", "time.png"] {
        let img = image::open(study_dir.join(png)).unwrap();
        assert!(img.width() > 300 && img.height() > 300, "{png}");
    }
    for trial in ["relu-seed1", "relu-seed2", "tanh-l2-1e-6-seed1", "tanh-l2-1e-6-seed2"] {
        for f in ["history.csv", "metrics.json", "model.safetensors", "curves.png", "trial.json"] {
            assert!(study_dir.join(trial).join(f).exists(), "{trial}/{f} missing");
        }
    }
    let csv = std::fs::read_to_string(study_dir.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(csv.lines().skip(1).all(|l| l.contains(",2,300,")), "2 epochs on 300 images: {csv}");
    let report = std::fs::read_to_string(study_dir.join("REPORT.md")).unwrap();
    assert!(
        report.contains("## Verdict: **")
            && report.contains("Welch")
            && report.contains("relu > tanh, l2 1e-6")
    );
    assert!(report.contains("300 training images"), "{report}");
    let merged = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    assert!(merged.contains("[tiny](tiny/REPORT.md)") && merged.contains("ReLU beats tanh."));

    // A trial stopped after its last checkpoint but before its metrics resumes from the
    // checkpoint and ends with the same history.
    let history = std::fs::read_to_string(first.join("history.csv")).unwrap();
    std::fs::remove_file(first.join("metrics.json")).unwrap();
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(stdout.matches("val ").count(), 1, "{stdout}");
    assert_eq!(std::fs::read_to_string(first.join("history.csv")).unwrap(), history);

    // Another study whose first setting is the same run: copied, not trained again.
    let other = write_study(
        dir.path(),
        "other",
        &TINY.replace("\"tanh\"", "\"sigmoid\"").replace("tanh, l2 1e-6", "sigmoid, l2 1e-6"),
    );
    let args2: Vec<&str> = ["experiment", &other, "--trial", "0"].iter().copied().chain(common).collect();
    let (code, stdout, stderr) = run(&args2);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("the same run finished in") && !stdout.contains("val "), "{stdout}");
    let copied = out.join("other/relu-seed1");
    for f in ["history.csv", "metrics.json", "model.safetensors"] {
        assert_eq!(
            std::fs::read(copied.join(f)).unwrap(),
            std::fs::read(out.join("tiny/relu-seed1").join(f)).unwrap()
        );
    }

    // The same directory with other settings is refused, not mixed.
    let args: Vec<&str> = ["experiment", &study, "--epochs", "3"].iter().copied().chain(common).collect();
    let (code, _, stderr) = run(&args);
    assert!(code == 1 && stderr.contains("defined otherwise"), "{stderr}");
}

#[test]
fn trials_spread_by_gnu_parallel_then_report_equal_the_whole_study() {
    if Command::new("parallel").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "GNU parallel is missing: ./setup.sh installs it");
        eprintln!("skipped: GNU parallel is not installed (./setup.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let study = write_study(dir.path(), "tiny", TINY);
    let whole = dir.path().join("whole");
    let spread = dir.path().join("spread");
    let common = |out: &Path| -> Vec<String> {
        ["--device", "cpu", "--data-dir", SAMPLE, "--subset", "200", "--out", out.to_str().unwrap()]
            .map(String::from)
            .to_vec()
    };
    let mut args = vec!["experiment".to_string(), study.clone()];
    args.extend(common(&whole));
    let (code, stdout, stderr) = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{stdout}{stderr}");

    // The documented form: one line per trial, its index first, fed to GNU parallel.
    let (code, listing, _) = run(&["experiment", &study, "--trials"]);
    assert_eq!(code, 0);
    assert_eq!(listing.lines().count(), 4, "{listing}");
    let script = format!(
        "'{BIN}' experiment '{study}' --trials | cut -f1 | parallel -j2 '{BIN}' experiment '{study}' --trial {{}} {}",
        common(&spread).join(" ")
    );
    let status = Command::new("bash").arg("-c").arg(&script).status().unwrap();
    assert!(status.success(), "{script}");
    let mut args = vec!["experiment".to_string(), study.clone(), "--report".into()];
    args.extend(common(&spread));
    let (code, stdout, stderr) = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(results_without_seconds(&whole.join("tiny")), results_without_seconds(&spread.join("tiny")));
    assert!(spread.join("tiny/REPORT.md").exists() && spread.join("REPORT.md").exists());
}

#[test]
fn a_study_runs_on_lavapipe() {
    let dir = tempfile::tempdir().unwrap();
    let study = write_study(dir.path(), "tiny", TINY);
    let out = dir.path().join("out");
    let (code, stdout, stderr) = run(&[
        "experiment",
        &study,
        "--device",
        "vulkan",
        "--data-dir",
        SAMPLE,
        "--subset",
        "200",
        "--epochs",
        "1",
        "--seeds",
        "2",
        "--jobs",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let csv = std::fs::read_to_string(out.join("tiny/results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    let metrics = std::fs::read_to_string(out.join("tiny/relu-seed1/metrics.json")).unwrap();
    assert!(metrics.contains("llvmpipe"), "{metrics}");
}

#[test]
fn figures_redraws_the_reports_figures() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (code, stdout, stderr) = run(&[
        "experiment",
        "figures",
        "--device",
        "cpu",
        "--data-dir",
        SAMPLE,
        "--subset",
        "100",
        "--epochs",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let figures = out.join("figures");
    let grid = image::open(figures.join("training-images.png")).unwrap();
    assert!(grid.width() > 500 && grid.height() > 500);
    for n in 1..=6 {
        let found = std::fs::read_dir(&figures)
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().starts_with(&format!("figure-{n}-")));
        assert!(found, "figure {n} missing");
    }
    let md = std::fs::read_to_string(figures.join("FIGURES.md")).unwrap();
    assert!(md.contains("90.13%") && md.contains("92.15%"), "{md}");
}
