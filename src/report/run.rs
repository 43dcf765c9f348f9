//! One training run from its current epoch to the end, and the files it leaves: what `train`
//! and every trial of `experiment` share.

use std::path::Path;
use std::time::Instant;

use super::{confusion_csv, history_csv, plot_confusion, plot_curves, summary_md, write_text, RunSummary};
use crate::data::SplitName;
use crate::device::{DeviceKind, Executor};
use crate::graph::callbacks::best_epoch;
use crate::graph::model::summary;
use crate::train::{Checkpoint, Evaluation, Interrupted, Progress, Trainer};

/// The files a finished run directory holds, for messages.
pub const RUN_FILES: &str =
    "model.safetensors, history.csv, metrics.json, curves.png, confusion_{train,test}.{csv,png}, summary.md";

/// What a run was made from beyond its model and training settings, for `metrics.json`.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub data: crate::data::DataId,
    /// The command line that started it.
    pub command: String,
    /// When it started (RFC 3339).
    pub started: String,
}

impl Provenance {
    /// Made from `data` by `command`, starting now.
    pub fn new(data: crate::data::DataId, command: String) -> Provenance {
        Provenance {
            data,
            command,
            started: chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        }
    }
}

/// How a run ended: the test set and the training set in inference mode.
pub struct Finished {
    pub test: Evaluation,
    pub train: Evaluation,
}

/// After every epoch: a checkpoint to resume from, and the history so far (both atomic).
pub fn save_epoch(dir: &Path, trainer: &mut Trainer) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    trainer.checkpoint()?.save(&dir.join("model.safetensors"))?;
    write_text(&dir.join("history.csv"), &history_csv(&trainer.history))
}

/// A name for the executor in reports.
pub fn adapter_name(executor: &Executor) -> String {
    match executor {
        Executor::Cpu { .. } => "cpu (ndarray reference)".to_string(),
        Executor::Gpu(ctx) => ctx.adapter.info.name.clone(),
    }
}

/// Trains `trainer` to its last epoch, saving after each, then evaluates the test and training
/// sets and writes the run directory `dir` (which must exist): `metrics.json` last, so that a
/// directory with `metrics.json` holds a finished run.
pub fn fit(
    trainer: &mut Trainer,
    executor: &Executor,
    device: DeviceKind,
    dir: &Path,
    progress: &mut dyn Progress,
    provenance: &Provenance,
) -> anyhow::Result<Finished> {
    let start = Instant::now();
    let training = trainer.config.spec.training.clone();
    let best_path = dir.join("best.safetensors");
    let stops = |t: &Trainer| training.early_stopping.is_some_and(|e| e.should_stop(&t.monitored(e.monitor)));
    while trainer.epoch < trainer.config.epochs && !stops(trainer) {
        let before = trainer.engine().counters();
        match trainer.train_epoch(progress) {
            Ok(_) => {
                save_epoch(dir, trainer)?;
                if let Some((monitor, min_delta)) = training.best_rule() {
                    if best_epoch(&trainer.monitored(monitor), monitor, min_delta) == Some(trainer.epoch) {
                        trainer.checkpoint()?.save(&best_path)?;
                    }
                }
                // The epoch's work as the command did it: the checkpoint's reads included.
                trainer.last_epoch = trainer.engine().counters().since(before);
            }
            // Where it stopped, mid-epoch, so that `--resume` goes on from there. (A diverged
            // run keeps the last good epoch's checkpoint instead.)
            Err(e) if e.is::<Interrupted>() => {
                save_epoch(dir, trainer)?;
                return Err(e);
            }
            Err(e) => return Err(e),
        }
    }
    // Early stopping: back to the best epoch's weights, which the last checkpoint then holds
    // too (with the history of every epoch trained).
    let stopped = stops(trainer);
    let restored = stopped && training.early_stopping.is_some_and(|e| e.restore_best);
    if restored {
        let best = Checkpoint::load(&best_path)?;
        trainer.set_weights(&best.values())?;
        trainer.checkpoint()?.save(&dir.join("model.safetensors"))?;
    }
    let test = trainer.evaluate(SplitName::Test)?;
    let train = trainer.evaluate(SplitName::Train)?;
    let config = &trainer.config;
    let adapter = adapter_name(executor);
    let train_seconds: f64 = trainer.history.iter().map(|r| r.seconds).sum();
    let last = trainer.history.last().cloned().ok_or_else(|| anyhow::anyhow!("no epoch was trained"))?;

    write_text(&dir.join("confusion_test.csv"), &confusion_csv(&test.confusion))?;
    write_text(&dir.join("confusion_train.csv"), &confusion_csv(&train.confusion))?;
    let name = &config.spec.name;
    plot_curves(
        &dir.join("curves.png"),
        &trainer.history,
        &format!("{name} on {adapter}: loss and accuracy"),
    )?;
    plot_confusion(
        &dir.join("confusion_test.png"),
        &test.confusion,
        &format!("{name}: test set ({} images)", test.images),
    )?;
    plot_confusion(
        &dir.join("confusion_train.png"),
        &train.confusion,
        &format!("{name}: training set ({} images, inference mode)", train.images),
    )?;
    let md = summary_md(&RunSummary {
        spec: &config.spec,
        summary: &summary(&config.spec)?,
        optimizer: &config.optimizer,
        batch_size: config.batch_size,
        seed: config.seed,
        adapter: &adapter,
        history: &trainer.history,
        test: &test,
        train: &train,
        train_seconds,
        val_images: trainer.graph.splits[&SplitName::Val].len,
    });
    write_text(&dir.join("summary.md"), &md)?;

    let mut metrics = serde_json::json!({
        "model": name,
        "val_accuracy": last.val_accuracy,
        "val_loss": last.val_loss,
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        "train_accuracy_inference": train.accuracy,
        "train_loss_inference": train.loss,
        "epochs": trainer.epoch,
        "train_seconds": train_seconds,
        "wall_seconds": start.elapsed().as_secs_f64(),
        "device": format!("{device:?}").to_lowercase(),
        "adapter": adapter,
        "seed": config.seed,
        "batch_size": config.batch_size,
        // Through its own JSON text, so that an f32 0.1 reads 0.1 and not 0.10000000149011612.
        "optimizer": serde_json::from_str::<serde_json::Value>(&serde_json::to_string(&config.optimizer)?)?,
        "schedule": serde_json::to_value(&config.schedule)?,
        "label_smoothing": serde_json::from_str::<serde_json::Value>(&config.spec.training.label_smoothing.to_string())?,
        "augment": config.spec.training.augment.to_string(),
        "parameters": config.spec.parameters()?,
        "stopped_early": stopped,
        "best_epoch": training.best_rule().and_then(|(m, d)| best_epoch(&trainer.monitored(m), m, d)),
        "restored_best": restored,
        "train_images": trainer.graph.splits[&SplitName::Train].len,
        "steps": trainer.step,
        "data": serde_json::to_value(&provenance.data)?,
        "build": crate::BUILD,
        "command": provenance.command,
        "started": provenance.started,
    });
    if let Executor::Cpu { threads } = executor {
        metrics.as_object_mut().expect("an object").insert("threads".into(), (*threads).into());
    }
    if matches!(executor, Executor::Gpu(_)) {
        let m = metrics.as_object_mut().expect("an object");
        m.insert("dispatches_per_step".into(), trainer.dispatches_per_step().into());
        m.insert("submits_per_epoch".into(), trainer.last_epoch.submits.into());
        m.insert("host_reads_per_epoch".into(), trainer.last_epoch.host_reads.into());
    }
    write_text(&dir.join("metrics.json"), &serde_json::to_string_pretty(&metrics)?)?;
    Ok(Finished { test, train })
}
