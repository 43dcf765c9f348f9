//! `gpu-fmnist experiment` as a user meets it: study files expand to exactly their trials, bad
//! files are one-line errors, a tiny study runs and writes its records and report, a record
//! counts as a finished trial (and one from other data is refused), an interrupted study
//! resumes without rerunning what finished, `auto` seeds add a round only where statements are
//! undecided, and trials spread by GNU parallel with `--trial` then `--report` give the same
//! results as the whole study. (The statistics' own tests, simulations included, are in
//! `src/experiment/verdict.rs` and `stats.rs`.)

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
    assert_eq!(BUILTIN.len(), 20, "the report's testable claims");
    for (name, _) in BUILTIN {
        let study = Study::load(name).unwrap();
        let on_disk = Study::load(dir.join(format!("{name}.toml")).to_str().unwrap()).unwrap();
        assert_eq!(study.text, on_disk.text, "{name}: the built-in copy is the file");
        // Every study of the report: the full data, at least 5 seeds, more where undecided (up
        // to 20 for the MLP's, whose runs take seconds; 10 for the CNN's).
        let max = if name.starts_with("mlp-") { 20 } else { 10 };
        assert_eq!((study.plan.first, study.plan.max), (5, max), "{name}");
        let trials = study.trials(&Overrides::default());
        let first = study.plan.first;
        assert_eq!(trials.len(), study.settings.len() * first, "{name}");
        for (i, t) in trials.iter().enumerate() {
            assert_eq!(t.setting, study.settings[i / first].label);
            assert_eq!(t.seed, (i % first) as u64 + 1);
            // Indices leave room for the seeds a second round may add.
            assert_eq!(t.index, (i / first) * study.plan.max + i % first);
            assert_eq!(study.trial_by_index(&Overrides::default(), t.index).unwrap(), *t);
        }
    }
    // The CNN studies train the report's 10 epochs (one long run per seed where they read a
    // curve), and a study of two presets keeps each preset's own epochs.
    for name in ["cnn-activation", "cnn-dropout", "cnn-filters", "cnn-optimizer"] {
        assert!(Study::load(name).unwrap().settings.iter().all(|s| s.spec.training.epochs == 10), "{name}");
    }
    let both = Study::load("cnn-vs-mlp").unwrap();
    assert_eq!(both.settings[0].spec, gpu_fmnist::graph::model::mlp());
    assert_eq!(both.settings[1].spec, gpu_fmnist::graph::model::cnn());
    // SGD with momentum at three rates against Adam at Keras's defaults.
    let opt = Study::load("cnn-optimizer").unwrap();
    assert_eq!(opt.settings[0].spec, gpu_fmnist::graph::model::cnn());
    for (s, lr) in opt.settings[1..].iter().zip([0.003f32, 0.01, 0.03]) {
        assert_eq!(
            s.spec.training.optimizer,
            gpu_fmnist::graph::Optimizer::Sgd { lr, momentum: 0.9, nesterov: false }
        );
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
    let plan = Some(gpu_fmnist::experiment::verdict::Plan { first: 3, max: 3 });
    let more = study.trials(&Overrides { epochs: Some(5), plan, subset: Some(100) });
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
        ("claim = \"x\"\nbase = \"mlp\"\nvary = { lr = [0.1, 0.01] }\nexpect = [\"0.1 > 0.01 (hugely)\"]", "expect[0]: `(hugely)`: say the margin as"),
        ("claim = \"x\"\nbase = \"mlp\"\nvary = { lr = [0.1, 0.01] }\nexpect = [\"0.1 > 0.01\"]\nmargin = -1", "margin: a number of points above 0"),
        ("claim = \"x\"\nbase = \"mlp\"\nvary = { lr = [0.1, 0.01] }\nexpect = [\"0.1 > 0.01\"]\nseeds = \"auto:4\"", "seeds: `auto:4`: MAX must be above"),
        ("claim = \"x\"\nbase = \"mlp\"\nvary = { lr = [0.1, 0.01] }\nexpect = [\"0.1 at epoch 20 > 0.01 at epoch 20\"]", "reads epoch 20, past the 13 epochs"),
        ("claim = \"x\"\nbase = \"mlp\"\nvary = { lr = [0.1, 0.01] }\nexpect = [\"0.1 ≈ 0.01\"]", "expect[0]: `0.1 ≈ 0.01` is not `A > B`"),
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
    let (code, _, stderr) = run(&[
        "experiment",
        "mlp-lr",
        "--trial",
        "999",
        "--device",
        "cpu",
        "--data-dir",
        SAMPLE,
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(code == 1 && stderr.contains("no trial 999"), "{stderr}");
}

#[test]
fn list_shows_every_claim() {
    let (code, stdout, _) = run(&["experiment", "--list"]);
    assert_eq!(code, 0);
    assert_eq!(stdout.lines().count(), BUILTIN.len() + 1, "{stdout}");
    for (name, _) in BUILTIN {
        assert!(stdout.contains(name));
    }
    assert!(
        stdout.contains("ReLU beats sigmoid and tanh")
            && stdout.contains("Max pooling beats average pooling")
    );
}

fn read_record(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_tiny_study_runs_writes_its_records_and_resumes_without_rerunning() {
    let dir = tempfile::tempdir().unwrap();
    let study = write_study(dir.path(), "tiny", TINY);
    let (out, work) = (dir.path().join("out"), dir.path().join("work"));
    let (out_s, work_s) = (out.to_str().unwrap(), work.to_str().unwrap());
    let common =
        ["--device", "cpu", "--data-dir", SAMPLE, "--subset", "300", "--out", out_s, "--work", work_s];
    let with = |extra: &[&str]| -> Vec<String> {
        ["experiment", study.as_str()]
            .iter()
            .chain(extra)
            .chain(common.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let go = |args: &[String]| run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // Interrupted after one trial: only trial 1 (relu, seed 2) has run.
    let (code, stdout, stderr) = go(&with(&["--trial", "1"]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let trials = out.join("tiny/trials");
    let first = trials.join("relu-seed2.json");
    let before = std::fs::read(&first).unwrap();
    assert!(!trials.join("relu-seed1.json").exists());
    // The report of a study under way: a setting with no record shows dashes, not NaN.
    let (code, stdout, stderr) = go(&with(&["--report"]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report = std::fs::read_to_string(out.join("tiny/REPORT.md")).unwrap();
    assert!(
        report.contains("| tanh, l2 1e-6 | 0 | 0 | — | — | — | — |") && !report.contains("NaN"),
        "{report}"
    );

    let (code, stdout, stderr) = go(&with(&["--jobs", "2"]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("tiny trial 1 (relu, seed 2): finished before, kept"), "{stdout}");
    assert_eq!(stdout.matches("val ").count(), 3, "three trials trained: {stdout}");
    assert_eq!(std::fs::read(&first).unwrap(), before);

    let study_dir = out.join("tiny");
    for f in [
        "REPORT.md",
        "results.csv",
        "effects.png",
        "accuracy.png",
        "curves.png",
        "time.png",
        "summary.json",
        "study.toml",
    ] {
        assert!(study_dir.join(f).exists(), "{f} missing");
    }
    for png in ["effects.png", "accuracy.png", "curves.png", "time.png"] {
        let img = image::open(study_dir.join(png)).unwrap();
        assert!(img.width() > 300 && img.height() > 150, "{png}");
    }
    // Each record: what was trained, on what, by which build, every epoch and the final metrics.
    let (code, data, _) = run(&["data", "--data-dir", SAMPLE]);
    assert_eq!(code, 0);
    let hash =
        data.lines().find_map(|l| l.strip_prefix("content hash: ")).unwrap().split(' ').next().unwrap();
    for trial in ["relu-seed1", "relu-seed2", "tanh-l2-1e-6-seed1", "tanh-l2-1e-6-seed2"] {
        let r = read_record(&trials.join(format!("{trial}.json")));
        assert_eq!(r["data"]["hash"], hash, "{trial}");
        assert_eq!(r["train_images"], 300, "{trial}");
        assert_eq!(r["history"].as_array().unwrap().len(), 2, "{trial}");
        assert!(r["build"].as_str().unwrap().starts_with(env!("CARGO_PKG_VERSION")), "{trial}");
        assert!(
            r["test_accuracy"].as_f64().unwrap() > 0.0
                && r["test_confusion"].as_array().unwrap().len() == 100
        );
        for f in ["history.csv", "metrics.json", "model.safetensors", "trial.json"] {
            assert!(work.join("tiny").join(trial).join(f).exists(), "{trial}/{f} missing");
        }
    }
    let csv = std::fs::read_to_string(study_dir.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(csv.lines().skip(1).all(|l| l.contains(",2,300,")), "2 epochs on 300 images: {csv}");
    let report = std::fs::read_to_string(study_dir.join("REPORT.md")).unwrap();
    assert!(
        report.contains("## Verdict: **")
            && report.contains("seed-blocked")
            && report.contains("relu > tanh, l2 1e-6"),
        "{report}"
    );
    assert!(report.contains("300 training images"), "{report}");
    let merged = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    assert!(merged.contains("[tiny](tiny/REPORT.md)") && merged.contains("ReLU beats tanh."), "{merged}");
    // Every built-in study is listed, those without a record as not run yet (none counted inconclusive).
    let (_, list, _) = run(&["experiment", "--list"]);
    let builtin = list.lines().count() - 1;
    assert!(merged.contains(&format!("{} claims: ", builtin + 1)), "{merged}");
    assert!(merged.contains(&format!("{builtin} not run yet")), "{merged}");
    assert!(merged.contains("| cnn-epochs **not run yet** | "), "{merged}");

    // A trial stopped after its last checkpoint but before its metrics resumes from the
    // checkpoint and ends with the same history.
    let run_dir = work.join("tiny/relu-seed2");
    let history = std::fs::read_to_string(run_dir.join("history.csv")).unwrap();
    std::fs::remove_file(run_dir.join("metrics.json")).unwrap();
    std::fs::remove_file(&first).unwrap();
    let (code, stdout, stderr) = go(&with(&[]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(stdout.matches("val ").count(), 1, "{stdout}");
    assert_eq!(std::fs::read_to_string(run_dir.join("history.csv")).unwrap(), history);

    // A record counts as a finished trial: with every run directory gone, nothing trains.
    std::fs::remove_dir_all(&work).unwrap();
    let (code, stdout, stderr) = go(&with(&[]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(stdout.matches("finished before, kept").count(), 4, "{stdout}");
    assert!(!stdout.contains("val ") && !work.join("tiny").exists(), "{stdout}");
    // results.csv gives each record's own training-image count, whatever the command says.
    let (code, _, stderr) = run(&["experiment", &study, "--report", "--out", out_s]);
    assert_eq!(code, 0, "{stderr}");
    let csv = std::fs::read_to_string(study_dir.join("results.csv")).unwrap();
    assert!(csv.lines().skip(1).all(|l| l.contains(",2,300,")), "{csv}");

    // Another study whose first setting is the same run: its record is copied, not trained.
    let other = write_study(
        dir.path(),
        "other",
        &TINY.replace("\"tanh\"", "\"sigmoid\"").replace("tanh, l2 1e-6", "sigmoid, l2 1e-6"),
    );
    let args2: Vec<&str> = ["experiment", &other, "--trial", "0"].iter().copied().chain(common).collect();
    let (code, stdout, stderr) = run(&args2);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("the same run finished in tiny/relu-seed1.json, copied") && !stdout.contains("val "),
        "{stdout}"
    );
    let copied = read_record(&out.join("other/trials/relu-seed1.json"));
    assert_eq!(copied["copied_from"], "tiny/relu-seed1.json");
    assert_eq!(copied["history"], read_record(&trials.join("relu-seed1.json"))["history"]);

    // Other data, or the same trials defined otherwise, are refused, not mixed.
    let other_data: Vec<String> =
        with(&[]).into_iter().map(|a| if a == "300" { "200".into() } else { a }).collect();
    let (code, _, stderr) = go(&other_data);
    assert!(code == 1 && stderr.contains("trained on other data") && stderr.contains("200"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let (code, _, stderr) = go(&with(&["--epochs", "3"]));
    assert!(code == 1 && stderr.contains("another definition"), "{stderr}");
}

/// `auto` seeds: a first round of 5, then a sixth seed only for the settings that the first
/// look left undecided.
#[test]
fn auto_seeds_add_a_round_only_where_statements_are_undecided() {
    use gpu_fmnist::experiment::verdict::wants_more;
    let dir = tempfile::tempdir().unwrap();
    let text = TINY.replace("seeds = 2", "seeds = \"auto:6\"").replace("epochs = 2", "epochs = 1");
    let study_path = write_study(dir.path(), "tiny", &text);
    let (out, work) = (dir.path().join("out"), dir.path().join("work"));
    let common = ["--device", "cpu", "--data-dir", SAMPLE, "--subset", "200", "--jobs", "2"];
    let (code, stdout, stderr) =
        run(&["experiment", &study_path, "--out", out.to_str().unwrap(), "--work", work.to_str().unwrap()]
            .iter()
            .chain(common.iter())
            .copied()
            .collect::<Vec<_>>());
    assert_eq!(code, 0, "{stdout}{stderr}");
    let study = Study::load(&study_path).unwrap();
    let o = Overrides::default();
    let records = study.records(&o, &out.join("tiny"), None).unwrap();
    let first: Vec<_> = records.iter().filter(|r| r.seed <= 5).cloned().collect();
    assert_eq!(first.len(), 10);
    let want = wants_more(&study.expect, &study.runs(&first), &study.labels(), &study.plan);
    for (i, s) in study.settings.iter().enumerate() {
        let sixth =
            out.join("tiny/trials").join(format!("{}-seed6.json", gpu_fmnist::experiment::slug(&s.label)));
        assert_eq!(sixth.exists(), want.contains(&i), "{}: {want:?}", s.label);
    }
    // Nothing is left to run.
    let (code, listing, stderr) =
        run(&["experiment", &study_path, "--trials", "--out", out.to_str().unwrap()]);
    assert!(code == 0 && listing.is_empty(), "{listing}{stderr}");
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
        let work = out.join("work");
        [
            "--device",
            "cpu",
            "--data-dir",
            SAMPLE,
            "--subset",
            "200",
            "--out",
            out.to_str().unwrap(),
            "--work",
            work.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let mut args = vec!["experiment".to_string(), study.clone()];
    args.extend(common(&whole));
    let (code, stdout, stderr) = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{stdout}{stderr}");

    // The documented form: one line per trial, its index first, fed to GNU parallel.
    let (code, listing, _) = run(&["experiment", &study, "--trials", "--out", spread.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(listing.lines().count(), 4, "{listing}");
    let script = format!(
        "'{BIN}' experiment '{study}' --trials --out '{}' | cut -f1 | parallel -j2 '{BIN}' experiment '{study}' --trial {{}} {}",
        spread.display(),
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
        "--work",
        out.join("work").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let csv = std::fs::read_to_string(out.join("tiny/results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(csv.contains("llvmpipe"), "{csv}");
    let metrics = std::fs::read_to_string(out.join("work/tiny/relu-seed1/metrics.json")).unwrap();
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
        "--work",
        out.join("work").to_str().unwrap(),
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
