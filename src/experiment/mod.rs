//! Studies: a claim of the report, a base model, one knob varied over a few values, several
//! seeds — each trial an ordinary training run — and a verdict on the claim (`REPORT.md`).
//! Layers: `cli → experiment → report → train`.
//!
//! A study is a TOML file (`experiments/<name>.toml`; the repository's are built in):
//!
//! ```toml
//! claim = "ReLU beats sigmoid and tanh as the hidden layers' activation."
//! base = "mlp"                              # a preset, or a model file beside the study
//! vary = { activation = ["relu", "sigmoid", "tanh"] }
//! expect = ["relu > sigmoid", "relu > tanh"]
//! seeds = 3                                 # optional (default 3)
//! epochs = 13                               # optional (default: the base model's)
//! ```
//!
//! Several knobs in `vary` are zipped (setting i takes value i of each); `labels` may name the
//! settings. A curve study has no `vary` but `curve = [5, 10, 25]`: its one setting trains for
//! `epochs` and is read at those epochs ("epoch 5", …). See [`knobs`] for the knobs and
//! [`verdict`] for the statements `expect` may hold and the rule that judges them.

pub mod figures;
pub mod knobs;
pub mod report;
pub mod verdict;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::data::FashionMnist;
use crate::gpu::{DeviceKind, Executor};
use crate::graph::ModelSpec;
use crate::train::{Checkpoint, Progress, TrainConfig, Trainer};
use knobs::Value;
use verdict::Statement;

/// The studies of the report, built in (the files in `experiments/`).
pub const BUILTIN: &[(&str, &str)] = &[
    ("mlp-activation", include_str!("../../experiments/mlp-activation.toml")),
    ("mlp-widths", include_str!("../../experiments/mlp-widths.toml")),
    ("mlp-depth", include_str!("../../experiments/mlp-depth.toml")),
    ("mlp-lr", include_str!("../../experiments/mlp-lr.toml")),
    ("mlp-l2", include_str!("../../experiments/mlp-l2.toml")),
    ("mlp-dropout", include_str!("../../experiments/mlp-dropout.toml")),
    ("mlp-batchnorm", include_str!("../../experiments/mlp-batchnorm.toml")),
    ("mlp-epochs", include_str!("../../experiments/mlp-epochs.toml")),
    ("cnn-activation", include_str!("../../experiments/cnn-activation.toml")),
    ("cnn-optimizer", include_str!("../../experiments/cnn-optimizer.toml")),
    ("cnn-filters", include_str!("../../experiments/cnn-filters.toml")),
    ("cnn-padding", include_str!("../../experiments/cnn-padding.toml")),
    ("cnn-pooling", include_str!("../../experiments/cnn-pooling.toml")),
    ("cnn-dense", include_str!("../../experiments/cnn-dense.toml")),
    ("cnn-dropout", include_str!("../../experiments/cnn-dropout.toml")),
    ("cnn-epochs", include_str!("../../experiments/cnn-epochs.toml")),
];

/// A study file as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct StudyFile {
    /// Defaults to the file's stem.
    name: Option<String>,
    /// The claim, in the report's words.
    claim: String,
    /// Where the report says it (free text).
    #[serde(default)]
    source: Option<String>,
    /// `mlp`, `cnn`, or a model file (relative to the study file).
    base: String,
    /// Knob → values; several knobs are zipped.
    #[serde(default)]
    vary: std::collections::BTreeMap<String, Vec<Value>>,
    /// Names of the settings, one per value (default: the values).
    #[serde(default)]
    labels: Option<Vec<String>>,
    /// Curve study: read the validation accuracy at these epochs.
    #[serde(default)]
    curve: Option<Vec<usize>>,
    /// Statements the claim expects (see [`verdict`]).
    expect: Vec<String>,
    #[serde(default)]
    seeds: Option<usize>,
    #[serde(default)]
    epochs: Option<usize>,
}

/// One setting of a study: its label and its model (with the training section set).
#[derive(Debug, Clone)]
pub struct Setting {
    pub label: String,
    pub spec: ModelSpec,
}

/// A study, parsed and checked: every setting builds.
#[derive(Debug, Clone)]
pub struct Study {
    pub name: String,
    pub claim: String,
    pub source: Option<String>,
    pub base: String,
    /// The knobs varied, in the file's order.
    pub knobs: Vec<String>,
    pub settings: Vec<Setting>,
    /// Curve study: the epochs read, as settings `epoch N`.
    pub curve: Option<Vec<usize>>,
    pub expect: Vec<Statement>,
    pub seeds: usize,
    /// The study file's text, kept beside its results.
    pub text: String,
}

/// How a study is run: what the command line may override.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub epochs: Option<usize>,
    pub seeds: Option<usize>,
    /// Train on the first N training images.
    pub subset: Option<usize>,
}

/// One training run of a study: a setting and a seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    pub index: usize,
    pub setting: String,
    pub seed: u64,
    pub epochs: usize,
    /// Training images (None: all).
    pub subset: Option<usize>,
    pub spec: ModelSpec,
}

impl Trial {
    /// The trial's run directory under the study's.
    pub fn dir(&self, study_dir: &Path) -> PathBuf {
        study_dir.join(format!("{}-seed{}", slug(&self.setting), self.seed))
    }
}

/// A label as a directory name: `350,80` → `350-80`.
pub fn slug(label: &str) -> String {
    let s: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' })
        .collect();
    let s = s.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-");
    if s.is_empty() {
        "setting".into()
    } else {
        s
    }
}

impl Study {
    /// A built-in study by name, or a study file by path.
    pub fn load(name_or_path: &str) -> anyhow::Result<Study> {
        if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Study::parse(name, text, None).map_err(|e| anyhow::anyhow!("{name}: {e}"));
        }
        let path = Path::new(name_or_path);
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("{name_or_path}: {e} (a study is a built-in name — see --list — or a .toml file)")
        })?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Study::parse(&stem, &text, path.parent()).map_err(|e| anyhow::anyhow!("{name_or_path}: {e}"))
    }

    /// Parses and checks a study file; errors name the field.
    pub fn parse(stem: &str, text: &str, dir: Option<&Path>) -> anyhow::Result<Study> {
        let file: StudyFile = toml::from_str(text).map_err(|e| {
            // Where: the line, and the key written on it.
            let at = e.span().map_or(String::new(), |span| {
                let line_no = text[..span.start].matches('\n').count() + 1;
                let line = text.lines().nth(line_no - 1).unwrap_or("");
                match line.split_once('=') {
                    Some((key, _)) => format!("line {line_no} (`{}`): ", key.trim()),
                    None => format!("line {line_no}: "),
                }
            });
            anyhow::anyhow!("{at}{}", e.message())
        })?;
        let name = file.name.clone().unwrap_or_else(|| stem.to_string());
        anyhow::ensure!(
            !name.is_empty() && slug(&name) == name,
            "name: `{name}` must be letters, digits, `.` and `-`"
        );
        let base_path = match (file.base.as_str(), dir) {
            ("mlp" | "cnn" | "strong", _) | (_, None) => file.base.clone(),
            (p, Some(d)) => d.join(p).to_string_lossy().into_owned(),
        };
        let base = ModelSpec::load(&base_path).map_err(|e| anyhow::anyhow!("base: {e}"))?;
        let seeds = file.seeds.unwrap_or(3);
        anyhow::ensure!(seeds >= 1, "seeds: at least 1");
        let epochs = file.epochs.unwrap_or(base.training.epochs);
        anyhow::ensure!(epochs >= 1, "epochs: at least 1");

        let lengths: Vec<usize> = file.vary.values().map(Vec::len).collect();
        let count = lengths.first().copied().unwrap_or(1);
        anyhow::ensure!(
            lengths.iter().all(|&n| n == count && n > 0),
            "vary: every knob needs the same number of values (they are zipped), at least one"
        );
        anyhow::ensure!(
            file.curve.is_none() || file.vary.is_empty(),
            "curve: a curve study reads one setting's curve; drop vary"
        );
        anyhow::ensure!(
            file.curve.is_some() || !file.vary.is_empty(),
            "vary: a study varies a knob (or is a curve study with `curve`)"
        );
        let mut settings = Vec::new();
        for i in 0..count {
            let mut spec = base.clone();
            spec.training.epochs = epochs;
            let mut parts = Vec::new();
            for (knob, values) in &file.vary {
                knobs::apply(&mut spec, knob, &values[i])
                    .map_err(|e| anyhow::anyhow!("vary.{knob}[{i}]: {e}"))?;
                parts.push(values[i].label());
            }
            let label = match &file.labels {
                Some(l) => l.get(i).cloned().ok_or_else(|| anyhow::anyhow!("labels: one per value"))?,
                None if parts.is_empty() => base.name.clone(),
                None => parts.join(" "),
            };
            spec.resolve().map_err(|e| anyhow::anyhow!("vary: setting `{label}`: {e}"))?;
            settings.push(Setting { label, spec });
        }
        if let Some(l) = &file.labels {
            anyhow::ensure!(l.len() == count, "labels: {} labels for {count} settings", l.len());
        }
        let mut slugs: Vec<String> = settings.iter().map(|s| slug(&s.label)).collect();
        slugs.sort();
        slugs.dedup();
        anyhow::ensure!(slugs.len() == settings.len(), "vary: two settings have the same name");
        let spec_epochs = settings.iter().map(|s| s.spec.training.epochs).max().unwrap_or(epochs);
        if let Some(curve) = &file.curve {
            anyhow::ensure!(
                !curve.is_empty() && curve.iter().all(|&e| (1..=spec_epochs).contains(&e)),
                "curve: epochs between 1 and {spec_epochs}"
            );
        }
        let study_labels: Vec<String> = match &file.curve {
            Some(c) => c.iter().map(|e| format!("epoch {e}")).collect(),
            None => settings.iter().map(|s| s.label.clone()).collect(),
        };
        anyhow::ensure!(!file.expect.is_empty(), "expect: at least one statement");
        let expect = file
            .expect
            .iter()
            .enumerate()
            .map(|(i, t)| Statement::parse(t, &study_labels).map_err(|e| anyhow::anyhow!("expect[{i}]: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if expect.iter().any(|s| matches!(s, Statement::Plateau(..))) {
            anyhow::ensure!(file.curve.is_some(), "expect: `plateau` needs a curve study");
        }
        Ok(Study {
            name,
            claim: file.claim,
            source: file.source,
            base: file.base,
            knobs: file.vary.keys().cloned().collect(),
            settings,
            curve: file.curve,
            expect,
            seeds,
            text: text.to_string(),
        })
    }

    /// Every trial, setting by setting, seeds 1..=K in each.
    pub fn trials(&self, o: &Overrides) -> Vec<Trial> {
        let seeds = o.seeds.unwrap_or(self.seeds);
        let mut out = Vec::new();
        for s in &self.settings {
            for seed in 1..=seeds as u64 {
                let mut spec = s.spec.clone();
                if let Some(e) = o.epochs {
                    spec.training.epochs = e;
                }
                out.push(Trial {
                    index: out.len(),
                    setting: s.label.clone(),
                    seed,
                    epochs: spec.training.epochs,
                    subset: o.subset,
                    spec,
                });
            }
        }
        out
    }

    /// The labels statements compare: the settings, or a curve study's epochs.
    pub fn labels(&self) -> Vec<String> {
        match &self.curve {
            Some(c) => c.iter().map(|e| format!("epoch {e}")).collect(),
            None => self.settings.iter().map(|s| s.label.clone()).collect(),
        }
    }
}

/// What happens while trials run, for the command line to show.
pub trait Events: Sync {
    fn trial_start(&self, _study: &str, _trial: &Trial) {}
    fn trial_end(&self, _study: &str, _trial: &Trial, _outcome: &Outcome) {}
    fn trial_skipped(&self, _study: &str, _trial: &Trial) {}
    /// The trial's run had finished in `twin` (another study's): its files were copied.
    fn trial_twin(&self, _study: &str, _trial: &Trial, _twin: &Path) {}
}

/// How a trial ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub val_accuracy: f64,
    pub test_accuracy: f64,
    pub val_loss: f64,
    pub test_loss: f64,
    pub train_seconds: f64,
    /// The loss became NaN or infinite: the trial stopped there and is scored as chance.
    #[serde(default)]
    pub diverged: bool,
}

/// Where and on what studies run.
pub struct Runner<'a> {
    pub executor: &'a Executor,
    pub device: DeviceKind,
    pub data: &'a FashionMnist,
    /// `DIR`: each study writes `DIR/<study>/`.
    pub out: PathBuf,
    pub overrides: Overrides,
    /// Trials at once.
    pub jobs: usize,
}

/// The accuracy a diverged trial is scored at: chance over ten classes.
pub const CHANCE: f64 = 0.1;

impl Runner<'_> {
    pub fn study_dir(&self, study: &Study) -> PathBuf {
        self.out.join(&study.name)
    }

    /// Runs the trials of `study` chosen by `which` (all when None) that have not finished.
    pub fn run(&self, study: &Study, which: Option<usize>, events: &dyn Events) -> anyhow::Result<()> {
        let trials = study.trials(&self.overrides);
        let chosen: Vec<Trial> = match which {
            Some(k) => vec![trials.get(k).cloned().ok_or_else(|| {
                anyhow::anyhow!("{}: there is no trial {k} (trials 0–{})", study.name, trials.len() - 1)
            })?],
            None => trials,
        };
        let dir = self.study_dir(study);
        std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        crate::report::write_text(&dir.join("study.toml"), &study.text)?;
        self.run_trials(&study.name, &chosen, &dir, events)
    }

    /// Runs `trials` under `dir`, `jobs` at a time, skipping finished ones and resuming each
    /// from its last checkpoint if it has one. Stops taking new trials at the first error and
    /// returns it.
    pub fn run_trials(
        &self,
        name: &str,
        trials: &[Trial],
        dir: &Path,
        events: &dyn Events,
    ) -> anyhow::Result<()> {
        let data = match self.overrides.subset {
            Some(n) => {
                anyhow::ensure!(n >= 1, "--subset must be at least 1");
                let mut d = self.data.clone();
                d.train = d.train.slice(0..n.min(d.train.len()));
                std::borrow::Cow::Owned(d)
            }
            None => std::borrow::Cow::Borrowed(self.data),
        };
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..self.jobs.clamp(1, trials.len().max(1)) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= trials.len() || failed.load(Ordering::SeqCst) {
                        break;
                    }
                    let trial = &trials[i];
                    if let Err(e) = self.run_trial(name, trial, &data, dir, events) {
                        failed.store(true, Ordering::SeqCst);
                        let e = e.context(format!(
                            "{name} trial {} ({}, seed {})",
                            trial.index, trial.setting, trial.seed
                        ));
                        error.lock().expect("no panics hold it").get_or_insert(e);
                    }
                });
            }
        });
        match error.into_inner().expect("no panics hold it") {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// A finished trial elsewhere under `out` (another study's, or the figures') that is the
    /// same run as `trial` — the same model, training settings, seed, epochs and training
    /// images, on the same adapter — if there is one.
    fn finished_twin(&self, trial: &Trial, own: &Path) -> Option<PathBuf> {
        let adapter = crate::report::adapter_name(self.executor);
        let same = |other: &Trial| {
            other.spec == trial.spec
                && other.seed == trial.seed
                && other.epochs == trial.epochs
                && other.subset == trial.subset
        };
        let studies = std::fs::read_dir(&self.out).ok()?;
        for study in studies.flatten() {
            let Ok(trials) = std::fs::read_dir(study.path()) else { continue };
            for t in trials.flatten() {
                let dir = t.path();
                if dir == own {
                    continue;
                }
                let (Ok(def), Ok(metrics)) = (
                    std::fs::read_to_string(dir.join("trial.json")),
                    std::fs::read_to_string(dir.join("metrics.json")),
                ) else {
                    continue;
                };
                let Ok(other) = serde_json::from_str::<Trial>(&def) else { continue };
                let ran_on = serde_json::from_str::<serde_json::Value>(&metrics)
                    .ok()
                    .and_then(|m| m.get("adapter").and_then(|a| a.as_str()).map(str::to_string));
                if same(&other) && ran_on.as_deref() == Some(adapter.as_str()) {
                    return Some(dir);
                }
            }
        }
        None
    }

    fn run_trial(
        &self,
        study: &str,
        trial: &Trial,
        data: &FashionMnist,
        dir: &Path,
        events: &dyn Events,
    ) -> anyhow::Result<()> {
        let tdir = trial.dir(dir);
        let definition = tdir.join("trial.json");
        if definition.exists() {
            let text = std::fs::read_to_string(&definition)?;
            let before: Trial =
                serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", definition.display()))?;
            anyhow::ensure!(
                before == *trial,
                "{} holds a trial defined otherwise (other epochs, subset or model): use another --out",
                tdir.display()
            );
            if tdir.join("metrics.json").exists() {
                events.trial_skipped(study, trial);
                return Ok(());
            }
        }
        std::fs::create_dir_all(&tdir).map_err(|e| anyhow::anyhow!("{}: {e}", tdir.display()))?;
        crate::report::write_text(&definition, &serde_json::to_string_pretty(trial)?)?;
        if let Some(twin) = self.finished_twin(trial, &tdir) {
            // The same training run finished in another study (the base setting recurs in most):
            // its files are this trial's, metrics.json last.
            let mut files: Vec<PathBuf> = std::fs::read_dir(&twin)?.flatten().map(|e| e.path()).collect();
            files.retain(|f| f.is_file() && f.file_name().is_some_and(|n| n != "trial.json"));
            files.sort_by_key(|f| f.file_name().is_some_and(|n| n == "metrics.json"));
            for f in files {
                let bytes = std::fs::read(&f)?;
                crate::train::checkpoint::write_atomic(&tdir.join(f.file_name().expect("a file")), &bytes)?;
            }
            events.trial_twin(study, trial, &twin);
            return Ok(());
        }
        events.trial_start(study, trial);
        let ckpt_path = tdir.join("model.safetensors");
        let resume = if ckpt_path.exists() { Some(Checkpoint::load(&ckpt_path)?) } else { None };
        let t = &trial.spec.training;
        let per_epoch = data.train.len().div_ceil(t.batch_size.max(1)) as u64;
        let config = TrainConfig {
            schedule: t.schedule_for(None, t.optimizer.lr(), per_epoch, trial.epochs)?,
            optimizer: trial.spec.training.optimizer,
            epochs: trial.epochs,
            batch_size: trial.spec.training.batch_size,
            seed: trial.seed,
            spec: trial.spec.clone(),
        };
        anyhow::ensure!(
            config.batch_size <= data.train.len(),
            "batch size {} is larger than the training set ({} images)",
            config.batch_size,
            data.train.len()
        );
        let mut trainer = Trainer::new(self.executor, data, config, resume.as_ref())?;
        let fitted = crate::report::fit(&mut trainer, self.executor, self.device, &tdir, &mut Quiet);
        let train_seconds = trainer.history.iter().map(|r| r.seconds).fold(0.0, |a, b| a + b);
        let outcome = match fitted {
            Ok(done) => {
                let last = trainer.history.last().expect("fit trains at least one epoch");
                Outcome {
                    val_accuracy: last.val_accuracy,
                    test_accuracy: done.test.accuracy,
                    val_loss: last.val_loss,
                    test_loss: done.test.loss,
                    train_seconds,
                    diverged: false,
                }
            }
            Err(e) if e.downcast_ref::<crate::train::Diverged>().is_some() => {
                let outcome = Outcome {
                    val_accuracy: CHANCE,
                    test_accuracy: CHANCE,
                    val_loss: f64::NAN,
                    test_loss: f64::NAN,
                    train_seconds,
                    diverged: true,
                };
                let metrics = serde_json::json!({
                    "diverged": e.to_string(),
                    "val_accuracy": CHANCE,
                    "test_accuracy": CHANCE,
                    "epochs": trainer.epoch,
                    "train_seconds": outcome.train_seconds,
                    "seed": trial.seed,
                    "adapter": crate::report::adapter_name(self.executor),
                });
                crate::report::write_text(
                    &tdir.join("metrics.json"),
                    &serde_json::to_string_pretty(&metrics)?,
                )?;
                outcome
            }
            Err(e) => return Err(e),
        };
        events.trial_end(study, trial, &outcome);
        Ok(())
    }
}

/// Trials report nothing per step.
struct Quiet;
impl Progress for Quiet {}

/// A finished trial as read back from its directory.
#[derive(Debug, Clone)]
pub struct Result {
    pub trial: Trial,
    pub outcome: Outcome,
    /// Validation accuracy per epoch.
    pub curve: Vec<f64>,
    /// Where it ran (`metrics.json`'s adapter).
    pub adapter: String,
    /// Images it trained on.
    pub train_images: Option<usize>,
}

/// Reads the finished trials of `study` under `study_dir`; unfinished ones are left out.
pub fn read_results(study: &Study, study_dir: &Path, o: &Overrides) -> anyhow::Result<Vec<Result>> {
    let mut out = Vec::new();
    for trial in study.trials(o) {
        let dir = trial.dir(study_dir);
        let metrics_path = dir.join("metrics.json");
        if !metrics_path.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&metrics_path)?;
        let m: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", metrics_path.display()))?;
        let num = |k: &str| m.get(k).and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
        let outcome = Outcome {
            val_accuracy: num("val_accuracy"),
            test_accuracy: num("test_accuracy"),
            val_loss: num("val_loss"),
            test_loss: num("test_loss"),
            train_seconds: num("train_seconds"),
            diverged: m.get("diverged").is_some(),
        };
        let curve = match std::fs::read_to_string(dir.join("history.csv")) {
            Ok(csv) => {
                csv.lines().skip(1).filter_map(|l| l.split(',').nth(4).and_then(|v| v.parse().ok())).collect()
            }
            Err(_) => vec![],
        };
        let adapter = m.get("adapter").and_then(serde_json::Value::as_str).unwrap_or("unknown").to_string();
        let train_images = m.get("train_images").and_then(serde_json::Value::as_u64).map(|n| n as usize);
        out.push(Result { trial, outcome, curve, adapter, train_images });
    }
    Ok(out)
}
