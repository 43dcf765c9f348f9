//! A finished trial's record: a small JSON file under `DIR/<study>/trials/` — what was trained
//! (spec hash, seed, epochs, data), where and by which build, every epoch's figures and the final
//! metrics; no weights. Records are what a study's report is built from, and a committed record
//! counts as a finished trial, so a study can be completed across machines and days.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::verdict::{Run, FAILED_LOSS};
use super::Trial;
use crate::data::DataId;
use crate::graph::ModelSpec;
use crate::train::EpochRow;

/// A finished trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub study: String,
    pub setting: String,
    pub seed: u64,
    /// FNV-1a of the model and training settings as JSON ([`spec_hash`]).
    pub spec_hash: String,
    pub epochs: usize,
    /// The data set; `train_images` below says how many of its training images were used.
    pub data: DataId,
    pub train_images: usize,
    pub device: String,
    pub adapter: String,
    /// CPU threads (the CPU path only).
    #[serde(default)]
    pub threads: Option<usize>,
    /// The build that trained it (`version (commit)`).
    pub build: String,
    /// When the run started (RFC 3339), if known.
    #[serde(default)]
    pub started: Option<String>,
    /// Why the run failed to train, when it did: it is then kept out of accuracy statistics.
    #[serde(default)]
    pub failed: Option<String>,
    /// Every epoch as `history.csv` has it.
    pub history: Vec<EpochRow>,
    pub val_accuracy: Option<f64>,
    pub test_accuracy: Option<f64>,
    pub val_loss: Option<f64>,
    pub test_loss: Option<f64>,
    /// On the training images after the last epoch, inference mode.
    pub train_accuracy: Option<f64>,
    pub train_loss: Option<f64>,
    /// Test-set confusion counts, row = true class.
    #[serde(default)]
    pub test_confusion: Vec<u64>,
    pub train_seconds: f64,
    /// The study and trial it was copied from, when the same run had finished there.
    #[serde(default)]
    pub copied_from: Option<String>,
}

/// FNV-1a (hex) of the spec as JSON: two trials with the same hash train the same model the
/// same way.
pub fn spec_hash(spec: &ModelSpec) -> String {
    use crate::data::identity::{fnv1a, FNV_START};
    let json = serde_json::to_string(spec).expect("a spec serializes");
    format!("{:016x}", fnv1a(FNV_START, json.as_bytes()))
}

impl Record {
    /// Where a trial's record lives under the study's directory.
    pub fn path(study_dir: &Path, setting: &str, seed: u64) -> PathBuf {
        study_dir.join("trials").join(format!("{}-seed{seed}.json", super::slug(setting)))
    }

    pub fn read(path: &Path) -> anyhow::Result<Record> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: not a trial record: {e}", path.display()))
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        }
        crate::report::write_text(path, &(serde_json::to_string_pretty(self)? + "\n"))
    }

    /// Why this record is not a finished run of `trial` on `data` (None: it is).
    pub fn mismatch(&self, trial: &Trial, data: &DataId, train_images: usize) -> Option<String> {
        if self.spec_hash != spec_hash(&trial.spec) || self.epochs != trial.epochs || self.seed != trial.seed
        {
            return Some(format!(
                "it records another trial (spec {}, {} epochs, seed {}; this one is spec {}, {} epochs, seed {})",
                self.spec_hash,
                self.epochs,
                self.seed,
                spec_hash(&trial.spec),
                trial.epochs,
                trial.seed
            ));
        }
        if !self.data.same_data(data) || self.train_images != train_images {
            return Some(format!(
                "it was trained on other data: {} ({} of its training images), not {} ({} training images)",
                self.data, self.train_images, data, train_images
            ));
        }
        None
    }

    /// The run as the statistics read it; `setting` is its index in the study.
    pub fn run(&self, setting: usize) -> Run {
        Run {
            setting,
            seed: self.seed,
            failed: self.failed.is_some(),
            val: self.val_accuracy.unwrap_or(f64::NAN),
            test: self.test_accuracy.unwrap_or(f64::NAN),
            val_images: self.data.val_images,
            test_images: self.data.test_images,
            train: self.train_accuracy.unwrap_or(f64::NAN),
            curve: self.history.iter().map(|r| r.val_accuracy).collect(),
            train_running: self.history.last().map_or(f64::NAN, |r| r.train_accuracy),
            confusion: self.test_confusion.clone(),
        }
    }

    /// Builds the record of a finished run directory (`metrics.json`, `history.csv`,
    /// `confusion_test.csv`), which must have been made from `data` by `trial`'s definition.
    pub fn from_run_dir(study: &str, trial: &Trial, dir: &Path, data: &DataId) -> anyhow::Result<Record> {
        let metrics_path = dir.join("metrics.json");
        let text = std::fs::read_to_string(&metrics_path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", metrics_path.display()))?;
        let m: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", metrics_path.display()))?;
        // A diverged run has no final metrics (earlier builds wrote chance level there).
        let num = |k: &str| {
            m.get(k)
                .and_then(serde_json::Value::as_f64)
                .filter(|v| v.is_finite() && (k == "train_seconds" || m.get("diverged").is_none()))
        };
        let text_of = |k: &str| m.get(k).and_then(serde_json::Value::as_str).map(str::to_string);
        let ran_on: DataId =
            m.get("data").and_then(|d| serde_json::from_value(d.clone()).ok()).ok_or_else(|| {
                anyhow::anyhow!("{}: says nothing of the data it was trained on", metrics_path.display())
            })?;
        anyhow::ensure!(
            ran_on.same_data(data),
            "{}: trained on other data ({ran_on}), not {data}",
            dir.display()
        );
        let diverged = text_of("diverged");
        // A run that diverged in its first epoch has no history.
        let history_path = dir.join("history.csv");
        let history =
            if diverged.is_some() && !history_path.exists() { vec![] } else { read_history(&history_path)? };
        let confusion = std::fs::read_to_string(dir.join("confusion_test.csv"))
            .map(|csv| parse_confusion(&csv))
            .unwrap_or_default();
        let mut failed = diverged.as_ref().map(|d| format!("diverged: {d}"));
        if failed.is_none() {
            if let Some(last) =
                history.last().filter(|r| r.train_loss.is_nan() || r.train_loss >= FAILED_LOSS)
            {
                let loss = last.train_loss;
                let loss = if loss.abs() < 1e4 { format!("{loss:.3}") } else { format!("{loss:.2e}") };
                failed = Some(format!(
                    "the training loss ended at {loss}, at or above chance level (ln 10 = 2.303)"
                ));
            }
        }
        // (+ 0.0: an empty sum is −0.0.)
        let seconds: f64 = history.iter().map(|r| r.seconds).sum::<f64>() + 0.0;
        Ok(Record {
            study: study.to_string(),
            setting: trial.setting.clone(),
            seed: trial.seed,
            spec_hash: spec_hash(&trial.spec),
            epochs: trial.epochs,
            data: ran_on,
            // (Earlier builds left the count out of a diverged run's metrics: the trial's own.)
            train_images: m
                .get("train_images")
                .and_then(serde_json::Value::as_u64)
                .map_or(trial.subset.unwrap_or(data.train_images).min(data.train_images), |n| n as usize),
            device: text_of("device").unwrap_or_else(|| "unknown".into()),
            adapter: text_of("adapter").unwrap_or_else(|| "unknown".into()),
            threads: m.get("threads").and_then(serde_json::Value::as_u64).map(|n| n as usize),
            build: text_of("build").unwrap_or_else(|| "unknown".into()),
            started: text_of("started"),
            failed,
            history,
            val_accuracy: num("val_accuracy"),
            test_accuracy: num("test_accuracy"),
            val_loss: num("val_loss"),
            test_loss: num("test_loss"),
            train_accuracy: num("train_accuracy_inference"),
            train_loss: num("train_loss_inference"),
            test_confusion: confusion,
            train_seconds: num("train_seconds").unwrap_or(seconds),
            copied_from: None,
        })
    }
}

/// `history.csv` back into rows (the columns [`crate::report::history_csv`] writes).
pub fn read_history(path: &Path) -> anyhow::Result<Vec<EpochRow>> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    // Keras's names (`loss`, `accuracy`), or those of builds before them.
    let col = |names: &[&str]| {
        header
            .iter()
            .position(|h| names.contains(h))
            .ok_or_else(|| anyhow::anyhow!("{}: no column `{}`", path.display(), names[0]))
    };
    let cols = [
        col(&["epoch"])?,
        col(&["loss", "train_loss"])?,
        col(&["accuracy", "train_accuracy"])?,
        col(&["val_loss"])?,
        col(&["val_accuracy"])?,
        col(&["seconds"])?,
    ];
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let v = |i: usize| -> anyhow::Result<f64> {
                f.get(cols[i])
                    .and_then(|x| x.trim().parse().ok())
                    .ok_or_else(|| anyhow::anyhow!("{}: a bad row `{l}`", path.display()))
            };
            Ok(EpochRow {
                epoch: v(0)? as usize,
                train_loss: v(1)?,
                train_accuracy: v(2)?,
                val_loss: v(3)?,
                val_accuracy: v(4)?,
                seconds: v(5)?,
            })
        })
        .collect()
}

/// A confusion CSV (a header row and column, then counts) as row-major counts.
fn parse_confusion(csv: &str) -> Vec<u64> {
    csv.lines()
        .skip(1)
        .flat_map(|l| l.split(',').skip(1).filter_map(|x| x.trim().parse::<u64>().ok()).collect::<Vec<_>>())
        .collect()
}
