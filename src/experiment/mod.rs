//! Studies: a claim of the report, a base model, one knob varied over a few values, several
//! seeds — each trial an ordinary training run — and a verdict on the claim (`REPORT.md`).
//! Layers: `cli → experiment → report → train`.
//!
//! A study is a TOML file (`experiments/<name>.toml`; the repository's are built in):
//!
//! ```toml
//! claim = "ReLU beats sigmoid and tanh as the hidden layers' activation."
//! source = "report, MLP: activation functions"
//! base = "mlp"                              # a preset, or a model file beside the study
//! vary = { activation = ["relu", "sigmoid", "tanh"] }
//! expect = ["relu > sigmoid", "relu > tanh (slightly)"]
//! seeds = "auto:10"                         # optional: 5, or a first round of 5 and up to 10
//! epochs = 13                               # optional (default: the base model's)
//! margin = 0.5                              # optional: points, for statements without words
//! ```
//!
//! Several knobs in `vary` are zipped (setting i takes value i of each); `labels` may name the
//! settings. A curve study has no `vary` but `curve = [5, 10, 25]`: its one setting trains for
//! `epochs`, and statements read it at an epoch (`epoch 10 > epoch 5`). See [`knobs`] for the
//! knobs, [`verdict`] for the statements and the rule, [`record`] for what a finished trial
//! leaves in `DIR/<study>/trials/`.

pub mod figures;
pub mod knobs;
pub mod record;
pub mod report;
pub mod stats;
pub mod verdict;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::data::{DataId, FashionMnist};
use crate::device::{DeviceKind, Executor};
use crate::graph::ModelSpec;
use crate::train::{Checkpoint, Progress, TrainConfig, Trainer};
use knobs::Value;
use record::Record;
use verdict::{Plan, Run, Statement};

/// The studies of the report, built in (the files in `experiments/`).
pub const BUILTIN: &[(&str, &str)] = &[
    ("mlp-activation", include_str!("../../experiments/mlp-activation.toml")),
    ("mlp-widths", include_str!("../../experiments/mlp-widths.toml")),
    ("mlp-depth", include_str!("../../experiments/mlp-depth.toml")),
    ("mlp-lr", include_str!("../../experiments/mlp-lr.toml")),
    ("mlp-lr-text", include_str!("../../experiments/mlp-lr-text.toml")),
    ("mlp-l2", include_str!("../../experiments/mlp-l2.toml")),
    ("mlp-dropout", include_str!("../../experiments/mlp-dropout.toml")),
    ("mlp-overfitting", include_str!("../../experiments/mlp-overfitting.toml")),
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
    ("cnn-vs-mlp", include_str!("../../experiments/cnn-vs-mlp.toml")),
    ("confusion", include_str!("../../experiments/confusion.toml")),
];

/// A study file as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct StudyFile {
    /// Defaults to the file's stem.
    name: Option<String>,
    /// The claim, in the report's words.
    claim: String,
    /// Where the report says it.
    #[serde(default)]
    source: Option<String>,
    /// `mlp`, `cnn`, `strong`, or a model file (relative to the study file).
    base: String,
    /// Knob → values; several knobs are zipped.
    #[serde(default)]
    vary: std::collections::BTreeMap<String, Vec<Value>>,
    /// Names of the settings, one per value (default: the values).
    #[serde(default)]
    labels: Option<Vec<String>>,
    /// Curve study: the epochs its report tabulates (statements may read any epoch).
    #[serde(default)]
    curve: Option<Vec<usize>>,
    /// Statements the claim expects (see [`verdict`]).
    expect: Vec<String>,
    /// A number of seeds, or `"auto"` / `"auto:MAX"` ([`Plan`]).
    #[serde(default)]
    seeds: Option<Value>,
    #[serde(default)]
    epochs: Option<usize>,
    /// The margin, in points, of statements whose words give none.
    #[serde(default)]
    margin: Option<f64>,
    /// What the study cannot separate, for its report.
    #[serde(default)]
    note: Option<String>,
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
    pub note: Option<String>,
    pub base: String,
    /// The knobs varied, in the file's order.
    pub knobs: Vec<String>,
    pub settings: Vec<Setting>,
    /// Curve study: the epochs its report tabulates.
    pub curve: Option<Vec<usize>>,
    pub expect: Vec<Statement>,
    pub plan: Plan,
    /// The study's default margin, in points.
    pub margin: f64,
    /// The study file's text, kept beside its results.
    pub text: String,
}

/// How a study is run: what the command line may override.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub epochs: Option<usize>,
    pub plan: Option<Plan>,
    /// Train on the first N training images.
    pub subset: Option<usize>,
}

/// One training run of a study: a setting and a seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// `setting × MAX + seed − 1`: stable across rounds (`--trial K`).
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

    /// The same training run: model, training settings, seed, epochs and images.
    pub fn same_run(&self, other: &Trial) -> bool {
        self.spec == other.spec
            && self.seed == other.seed
            && self.epochs == other.epochs
            && self.subset == other.subset
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
        let plan = match &file.seeds {
            None => Plan { first: verdict::FIRST_ROUND, max: verdict::FIRST_ROUND },
            Some(v) => Plan::parse(&v.label()).map_err(|e| anyhow::anyhow!("seeds: {e}"))?,
        };
        let margin = file.margin.unwrap_or(verdict::DEFAULT_MARGIN);
        anyhow::ensure!(margin.is_finite() && margin > 0.0, "margin: a number of points above 0");
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
            for (knob, values) in knobs::in_order(&file.vary) {
                knobs::apply(&mut spec, knob, &values[i])
                    .map_err(|e| anyhow::anyhow!("vary.{knob}[{i}]: {e}"))?;
                parts.push(values[i].label());
            }
            if file.epochs.is_some() {
                spec.training.epochs = epochs;
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
        let spec_epochs = settings.iter().map(|s| s.spec.training.epochs).min().unwrap_or(epochs);
        if let Some(curve) = &file.curve {
            anyhow::ensure!(
                !curve.is_empty() && curve.iter().all(|&e| (1..=spec_epochs).contains(&e)),
                "curve: epochs between 1 and {spec_epochs}"
            );
        }
        let labels: Vec<String> = settings.iter().map(|s| s.label.clone()).collect();
        anyhow::ensure!(!file.expect.is_empty(), "expect: at least one statement");
        let expect = file
            .expect
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let s = Statement::parse(t, &labels, file.curve.is_some(), margin)
                    .map_err(|e| anyhow::anyhow!("expect[{i}]: {e}"))?;
                if let Some(&e) = s.epochs().iter().find(|&&e| e > spec_epochs) {
                    anyhow::bail!(
                        "expect[{i}]: `{t}` reads epoch {e}, past the {spec_epochs} epochs trained"
                    );
                }
                Ok(s)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Study {
            name,
            claim: file.claim,
            source: file.source,
            note: file.note,
            base: file.base,
            knobs: file.vary.keys().cloned().collect(),
            settings,
            curve: file.curve,
            expect,
            plan,
            margin,
            text: text.to_string(),
        })
    }

    /// The seeds plan: the command line's, else the study's.
    pub fn plan(&self, o: &Overrides) -> Plan {
        o.plan.unwrap_or(self.plan)
    }

    /// The trial of setting `s` with `seed`.
    pub fn trial(&self, o: &Overrides, s: usize, seed: u64) -> Trial {
        let setting = &self.settings[s];
        let mut spec = setting.spec.clone();
        if let Some(e) = o.epochs {
            spec.training.epochs = e;
        }
        Trial {
            index: s * self.plan(o).max + seed as usize - 1,
            setting: setting.label.clone(),
            seed,
            epochs: spec.training.epochs,
            subset: o.subset,
            spec,
        }
    }

    /// The trial numbered `index` (see [`Trial::index`]).
    pub fn trial_by_index(&self, o: &Overrides, index: usize) -> anyhow::Result<Trial> {
        let max = self.plan(o).max;
        let (s, seed) = (index / max, index % max + 1);
        anyhow::ensure!(
            s < self.settings.len(),
            "{}: there is no trial {index} (trials 0–{})",
            self.name,
            self.settings.len() * max - 1
        );
        Ok(self.trial(o, s, seed as u64))
    }

    /// The first round: every setting with seeds 1..=first.
    pub fn trials(&self, o: &Overrides) -> Vec<Trial> {
        let first = self.plan(o).first as u64;
        (0..self.settings.len())
            .flat_map(|s| (1..=first).map(move |k| (s, k)))
            .map(|(s, k)| self.trial(o, s, k))
            .collect()
    }

    /// The setting labels statements compare.
    pub fn labels(&self) -> Vec<String> {
        self.settings.iter().map(|s| s.label.clone()).collect()
    }

    /// The trials still to run now: the first round's without a record; once it is complete,
    /// the second round's (seeds first+1..=MAX of the settings its undecided statements read).
    /// The first round's trials that have no record in `done`.
    pub fn first_round_left(&self, o: &Overrides, done: &[Record]) -> Vec<Trial> {
        let has = |t: &Trial| done.iter().any(|r| r.setting == t.setting && r.seed == t.seed);
        self.trials(o).into_iter().filter(|t| !has(t)).collect()
    }

    pub fn pending(&self, o: &Overrides, done: &[Record]) -> Vec<Trial> {
        let has = |t: &Trial| done.iter().any(|r| r.setting == t.setting && r.seed == t.seed);
        let first = self.first_round_left(o, done);
        if !first.is_empty() {
            return first;
        }
        let plan = self.plan(o);
        let want = verdict::wants_more(&self.expect, &self.runs(done), &self.labels(), &plan);
        want.into_iter()
            .flat_map(|s| (plan.first as u64 + 1..=plan.max as u64).map(move |k| (s, k)))
            .map(|(s, k)| self.trial(o, s, k))
            .filter(|t| !has(t))
            .collect()
    }

    /// Records as the statistics read them.
    pub fn runs(&self, records: &[Record]) -> Vec<Run> {
        records
            .iter()
            .filter_map(|r| Some(r.run(self.settings.iter().position(|s| s.label == r.setting)?)))
            .collect()
    }

    /// The study's records under `study_dir/trials/` (seeds up to the plan's MAX), each checked
    /// against its trial and against `data` (a data set and the training images used) when
    /// given, else against the first record: all must come from one data set.
    pub fn records(
        &self,
        o: &Overrides,
        study_dir: &Path,
        data: Option<(&DataId, usize)>,
    ) -> anyhow::Result<Vec<Record>> {
        let max = self.plan(o).max as u64;
        let mut out: Vec<Record> = Vec::new();
        for s in 0..self.settings.len() {
            for seed in 1..=max {
                let trial = self.trial(o, s, seed);
                let path = Record::path(study_dir, &trial.setting, seed);
                if !path.exists() {
                    continue;
                }
                let r = Record::read(&path)?;
                if r.spec_hash != record::spec_hash(&trial.spec) || r.epochs != trial.epochs {
                    anyhow::bail!(
                        "{}: records another definition of this trial (the study file or --epochs changed): use another --out",
                        path.display()
                    );
                }
                let against = data.or_else(|| out.first().map(|f: &Record| (&f.data, f.train_images)));
                if let Some(why) = against.and_then(|(d, n)| r.mismatch(&trial, d, n)) {
                    anyhow::bail!(
                        "{}: {why}; records are never overwritten: use another --out",
                        path.display()
                    );
                }
                out.push(r);
            }
        }
        Ok(out)
    }
}

/// What happens while trials run, for the command line to show.
pub trait Events: Sync {
    fn trial_start(&self, _study: &str, _trial: &Trial) {}
    fn trial_end(&self, _study: &str, _trial: &Trial, _record: &Record) {}
    fn trial_skipped(&self, _study: &str, _trial: &Trial) {}
    /// The trial's run had finished in `twin` (another study's): its record was copied.
    fn trial_twin(&self, _study: &str, _trial: &Trial, _twin: &str) {}
}

/// Where and on what studies run.
pub struct Runner<'a> {
    pub executor: &'a Executor,
    pub device: DeviceKind,
    /// The data set, with `--subset` already applied to its training split.
    pub data: &'a FashionMnist,
    /// The whole data set's identity (a subset is recorded as a training-image count).
    pub data_id: DataId,
    /// `DIR`: each study writes `DIR/<study>/` (records, report, plots).
    pub out: PathBuf,
    /// Where trials train: `WORK/<study>/<setting>-seed<N>/` (checkpoints; not committed).
    pub work: PathBuf,
    pub overrides: Overrides,
    /// Trials at once.
    pub jobs: usize,
    /// The command line, for the runs' provenance.
    pub command: String,
}

impl Runner<'_> {
    pub fn study_dir(&self, study: &Study) -> PathBuf {
        self.out.join(&study.name)
    }

    /// Runs trial `which` of `study`, or every trial it needs: the first round, then (for a
    /// plan with more seeds) the second round that the first round's verdicts ask for.
    pub fn run(&self, study: &Study, which: Option<usize>, events: &dyn Events) -> anyhow::Result<()> {
        let one = which.map(|k| study.trial_by_index(&self.overrides, k)).transpose()?;
        let dir = self.study_dir(study);
        std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        crate::report::write_text(&dir.join("study.toml"), &study.text)?;
        if let Some(trial) = one {
            return self.run_trial(study, &trial, events);
        }
        let mut first = true;
        loop {
            let done = study.records(&self.overrides, &dir, Some((&self.data_id, self.data.train.len())))?;
            if first {
                for r in &done {
                    if let Some(s) = study.settings.iter().position(|s| s.label == r.setting) {
                        events.trial_skipped(&study.name, &study.trial(&self.overrides, s, r.seed));
                    }
                }
                first = false;
            }
            let pending = study.pending(&self.overrides, &done);
            if pending.is_empty() {
                return Ok(());
            }
            self.in_parallel(&pending, |t| {
                self.run_trial(study, t, events).map_err(|e| {
                    e.context(format!("{} trial {} ({}, seed {})", study.name, t.index, t.setting, t.seed))
                })
            })?;
        }
    }

    /// Runs `f` over `items`, `jobs` at a time; stops taking new items at the first error and
    /// returns it.
    pub fn in_parallel<T: Sync>(
        &self,
        items: &[T],
        f: impl Fn(&T) -> anyhow::Result<()> + Sync,
    ) -> anyhow::Result<()> {
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..self.jobs.clamp(1, items.len().max(1)) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= items.len() || failed.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Err(e) = f(&items[i]) {
                        failed.store(true, Ordering::SeqCst);
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

    /// A finished record of the same run in another study under `out`, if there is one.
    fn twin_record(&self, study: &str, trial: &Trial) -> Option<(Record, String)> {
        let hash = record::spec_hash(&trial.spec);
        let studies = std::fs::read_dir(&self.out).ok()?;
        for dir in studies.flatten() {
            if dir.file_name().to_string_lossy() == study {
                continue;
            }
            let Ok(files) = std::fs::read_dir(dir.path().join("trials")) else { continue };
            for f in files.flatten() {
                let Ok(r) = Record::read(&f.path()) else { continue };
                if r.copied_from.is_none()
                    && r.spec_hash == hash
                    && r.seed == trial.seed
                    && r.epochs == trial.epochs
                    && r.data.same_data(&self.data_id)
                    && r.train_images == self.data.train.len()
                {
                    let from = format!("{}/{}", r.study, f.file_name().to_string_lossy());
                    return Some((r, from));
                }
            }
        }
        None
    }

    /// Leaves `trial`'s record: kept if it has one, copied if another study finished the same
    /// run, else built from its run directory, training it first if it has not finished.
    fn run_trial(&self, study: &Study, trial: &Trial, events: &dyn Events) -> anyhow::Result<()> {
        let path = Record::path(&self.study_dir(study), &trial.setting, trial.seed);
        let train_images = self.data.train.len();
        if path.exists() {
            let r = Record::read(&path)?;
            return match r.mismatch(trial, &self.data_id, train_images) {
                None => {
                    events.trial_skipped(&study.name, trial);
                    Ok(())
                }
                Some(why) => anyhow::bail!(
                    "{}: {why}; records are never overwritten: use another --out",
                    path.display()
                ),
            };
        }
        if let Some((mut r, from)) = self.twin_record(&study.name, trial) {
            r.study = study.name.clone();
            r.setting = trial.setting.clone();
            r.copied_from = Some(from.clone());
            r.write(&path)?;
            events.trial_twin(&study.name, trial, &from);
            return Ok(());
        }
        let tdir = trial.dir(&self.work.join(&study.name));
        self.train(&study.name, trial, &tdir, events)?;
        let r = Record::from_run_dir(&study.name, trial, &tdir, &self.data_id)?;
        r.write(&path)?;
        events.trial_end(&study.name, trial, &r);
        Ok(())
    }

    /// Makes `tdir` a finished run directory of `trial` (its `metrics.json` last), resuming
    /// from its checkpoint if it has one; a run that diverges leaves `metrics.json` saying so.
    pub fn train(&self, study: &str, trial: &Trial, tdir: &Path, events: &dyn Events) -> anyhow::Result<()> {
        let definition = tdir.join("trial.json");
        if definition.exists() {
            let text = std::fs::read_to_string(&definition)?;
            let before: Trial =
                serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", definition.display()))?;
            anyhow::ensure!(
                before.same_run(trial),
                "{} holds a trial defined otherwise (other epochs, subset or model): use another work directory",
                tdir.display()
            );
            if tdir.join("metrics.json").exists() {
                return Ok(());
            }
        }
        std::fs::create_dir_all(tdir).map_err(|e| anyhow::anyhow!("{}: {e}", tdir.display()))?;
        crate::report::write_text(&definition, &serde_json::to_string_pretty(trial)?)?;
        events.trial_start(study, trial);
        let ckpt_path = tdir.join("model.safetensors");
        let resume = if ckpt_path.exists() { Some(Checkpoint::load(&ckpt_path)?) } else { None };
        let data = self.data;
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
        let provenance = crate::report::Provenance::new(self.data_id.clone(), self.command.clone());
        let mut trainer = Trainer::new(self.executor, data, config, resume.as_ref())?;
        match crate::report::fit(&mut trainer, self.executor, self.device, tdir, &mut Quiet, &provenance) {
            Ok(_) => Ok(()),
            Err(e) if e.downcast_ref::<crate::train::Diverged>().is_some() => {
                crate::report::write_text(
                    &tdir.join("history.csv"),
                    &crate::report::history_csv(&trainer.history),
                )?;
                let metrics = serde_json::json!({
                    "diverged": e.to_string(),
                    "epochs": trainer.epoch,
                    "train_seconds": trainer.history.iter().map(|r| r.seconds).sum::<f64>(),
                    "seed": trial.seed,
                    "device": format!("{:?}", self.device).to_lowercase(),
                    "adapter": crate::report::adapter_name(self.executor),
                    "train_images": data.train.len(),
                    "data": serde_json::to_value(&self.data_id)?,
                    "build": crate::BUILD,
                    "command": provenance.command,
                    "started": provenance.started,
                });
                crate::report::write_text(
                    &tdir.join("metrics.json"),
                    &serde_json::to_string_pretty(&metrics)?,
                )
            }
            Err(e) => Err(e),
        }
    }
}

/// Trials report nothing per step.
struct Quiet;
impl Progress for Quiet {}
