//! `gpu-fmnist train`: train a model, show progress, and leave a run directory behind.

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use super::{DeviceArgs, TrainArgs};
use crate::data::FashionMnist;
use crate::graph::{ModelSpec, Optimizer};
use crate::report;
use crate::train::{Checkpoint, EpochRow, Interrupted, Progress, TrainConfig, Trainer};
use std::sync::atomic::Ordering;

/// A progress bar per epoch, and Keras's one line per epoch when it ends.
struct Bar {
    bar: Option<ProgressBar>,
    epochs: usize,
    epoch: usize,
}

impl Progress for Bar {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize) {
        let bar = ProgressBar::new(steps as u64);
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} steps, ETA {eta}")
                .unwrap()
                .progress_chars("=> "),
        );
        bar.set_message(format!("Epoch {epoch}/{epochs}"));
        (self.epoch, self.epochs, self.bar) = (epoch, epochs, Some(bar));
    }

    fn steps(&mut self, done: usize, loss: f64, accuracy: f64, images_per_second: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            bar.set_message(format!(
                "Epoch {}/{} loss {loss:.4} accuracy {accuracy:.4} {images_per_second:.0} img/s",
                self.epoch, self.epochs
            ));
        }
    }

    fn epoch_end(&mut self, r: &EpochRow) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        say(&format!(
            "Epoch {}/{}: {:.1}s, loss {:.4}, accuracy {:.4}, val_loss {:.4}, val_accuracy {:.4}",
            r.epoch, self.epochs, r.seconds, r.train_loss, r.train_accuracy, r.val_loss, r.val_accuracy
        ));
    }
}

/// Prints a line. A closed standard output (`train … | head`) stops training as Ctrl-C does,
/// with a checkpoint to resume from, instead of killing the run mid-epoch.
fn say(line: &str) {
    use std::io::Write;
    if writeln!(std::io::stdout(), "{line}").is_err() {
        crate::train::STOP.store(true, Ordering::SeqCst);
    }
}

/// Passes over the training set above this are a typo, not a plan.
const MAX_EPOCHS: usize = 10_000;

/// The files a run directory holds; one of the first three means it holds a run.
const RUN_FILES: [&str; 10] = [
    "model.safetensors",
    "metrics.json",
    "history.csv",
    "best.safetensors",
    "curves.png",
    "confusion_train.csv",
    "confusion_test.csv",
    "confusion_train.png",
    "confusion_test.png",
    "summary.md",
];

/// The run directory: `--out` (refused if it holds a run, unless `--overwrite`, which removes
/// that run's files first), the checkpoint's with `--resume`, or a new
/// `runs/<model>-<timestamp>` claimed atomically (`-2`, `-3`, … when another run took that
/// second). Returns it and whether this run made it (and so removes it again if the run ends
/// with nothing saved).
fn claim_out_dir(args: &TrainArgs, model: &str) -> anyhow::Result<(PathBuf, bool)> {
    match (&args.out, &args.resume) {
        (Some(dir), resume) => {
            let holds_run = RUN_FILES[..3].iter().any(|f| dir.join(f).exists());
            let same_run = resume.as_ref().is_some_and(|c| c.parent() == Some(dir.as_path()));
            if holds_run && !same_run {
                anyhow::ensure!(
                    args.overwrite,
                    "{} holds a run already: pass --overwrite to replace it, or another --out",
                    dir.display()
                );
                for f in RUN_FILES {
                    let _ = std::fs::remove_file(dir.join(f));
                }
            }
            let made = !dir.exists();
            std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
            Ok((dir.clone(), made))
        }
        (None, Some(ckpt)) => Ok((ckpt.parent().map(Path::to_path_buf).unwrap_or_default(), false)),
        (None, None) => {
            let stamp = format!("{model}-{}", chrono::Local::now().format("%Y%m%d-%H%M%S"));
            std::fs::create_dir_all("runs").map_err(|e| anyhow::anyhow!("runs: {e}"))?;
            let mut n = 1;
            loop {
                let name = if n == 1 { stamp.clone() } else { format!("{stamp}-{n}") };
                let dir = PathBuf::from("runs").join(name);
                match std::fs::create_dir(&dir) {
                    Ok(()) => return Ok((dir, true)),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                    Err(e) => anyhow::bail!("{}: {e}", dir.display()),
                }
            }
        }
    }
}

/// The optimizer the command line asks for: `--optimizer` picks the kind (with Keras's
/// defaults), the other flags override single hyperparameters.
fn optimizer(base: Optimizer, args: &TrainArgs) -> anyhow::Result<Optimizer> {
    let mut opt = match args.optimizer.as_deref() {
        Some(name) => base.of_kind(name)?,
        None => base,
    };
    match &mut opt {
        Optimizer::Sgd { lr, momentum, nesterov } => {
            *lr = args.lr.unwrap_or(*lr);
            *momentum = args.momentum.unwrap_or(*momentum);
            *nesterov |= args.nesterov;
        }
        Optimizer::Adam { lr, weight_decay, .. } => {
            anyhow::ensure!(
                args.momentum.is_none() && !args.nesterov,
                "--momentum and --nesterov are SGD's; this run's optimizer is Adam (pass --optimizer sgd)"
            );
            *lr = args.lr.unwrap_or(*lr);
            *weight_decay = args.weight_decay.unwrap_or(*weight_decay);
        }
    }
    anyhow::ensure!(
        args.momentum.is_none_or(|m| (0.0..1.0).contains(&m)),
        "--momentum must be at least 0 and below 1 (0.9 is usual)"
    );
    if let (Some(_), Optimizer::Sgd { .. }) = (args.weight_decay, opt) {
        anyhow::bail!("--weight-decay is Adam's (AdamW): pass --optimizer adamw or adam");
    }
    anyhow::ensure!(
        args.weight_decay.is_none_or(|w| w.is_finite() && w >= 0.0),
        "--weight-decay must be a number ≥ 0"
    );
    Ok(opt)
}

pub fn run(args: &TrainArgs, device: &DeviceArgs, data_dir: Option<&Path>) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.resume.is_none() || args.model.is_none(),
        "--resume continues the checkpoint's own model: drop --model"
    );
    let resume = args.resume.as_deref().map(Checkpoint::load).transpose()?;
    let (spec, base) = match &resume {
        Some(c) => (c.spec.clone(), (c.optimizer, c.epochs, c.batch_size, c.seed)),
        None => {
            let spec = ModelSpec::load(args.model.as_deref().unwrap_or("mlp"))?;
            let t = spec.training.clone();
            (spec, (t.optimizer, t.epochs, t.batch_size, 1))
        }
    };
    let mut config = TrainConfig {
        schedule: match &resume {
            Some(c) => c.schedule.clone(),
            None => spec.training.schedule.clone(),
        },
        optimizer: optimizer(base.0, args)?,
        epochs: args.epochs.unwrap_or(base.1),
        batch_size: args.batch_size.unwrap_or(base.2),
        seed: args.seed.unwrap_or(base.3),
        spec,
    };
    anyhow::ensure!(config.batch_size > 0, "--batch-size must be at least 1");
    anyhow::ensure!((1..=MAX_EPOCHS).contains(&config.epochs), "--epochs must be between 1 and {MAX_EPOCHS}");
    anyhow::ensure!(
        config.optimizer.lr().is_finite() && config.optimizer.lr() >= 0.0,
        "--lr must be a number ≥ 0"
    );
    if config.optimizer.lr() == 0.0 {
        eprintln!("warning: a learning rate of 0 leaves the weights as they were initialized");
    }
    anyhow::ensure!(args.subset != Some(0), "--subset must be at least 1");
    if let Some(c) = &resume {
        anyhow::ensure!(
            config.batch_size == c.batch_size && config.optimizer == c.optimizer && config.seed == c.seed,
            "--resume continues a run as it was: drop --batch-size, --optimizer, --lr, --momentum, --weight-decay and --seed"
        );
        anyhow::ensure!(
            args.lr_schedule.is_none()
                && args.label_smoothing.is_none()
                && args.augment.is_none()
                && args.early_stopping.is_none()
                && !args.save_best,
            "--resume continues a run as it was, its schedule, loss, augmentation and callbacks included: drop --lr-schedule, --label-smoothing, --augment, --early-stopping and --save-best"
        );
        anyhow::ensure!(
            config.epochs > c.epoch,
            "the checkpoint has done {} of {} epochs: pass --epochs N with N > {}",
            c.epoch,
            c.epochs,
            c.epoch
        );
    }
    if let Some(eps) = args.label_smoothing {
        config.spec.training.label_smoothing = eps;
    }
    if let Some(text) = &args.augment {
        config.spec.training.augment = crate::data::Augment::parse(text)?;
    }
    if let Some(patience) = args.early_stopping {
        anyhow::ensure!(patience >= 1, "--early-stopping takes a patience of at least 1 epoch");
        let monitor = crate::graph::callbacks::Monitor::parse(args.monitor.as_deref().unwrap_or("val_loss"))?;
        config.spec.training.early_stopping = Some(crate::graph::callbacks::EarlyStopping {
            monitor,
            patience,
            min_delta: 0.0,
            restore_best: true,
        });
    }
    config.spec.training.save_best |= args.save_best;
    let eps = config.spec.training.label_smoothing;
    anyhow::ensure!((0.0..1.0).contains(&eps), "label smoothing must be at least 0 and below 1, not {eps}");
    // Everything that can fail on bad input fails before the run directory exists.
    let mut data = FashionMnist::load(data_dir)?;
    if let Some(n) = args.subset {
        data.train = data.train.slice(0..n.min(data.train.len()));
    }
    config.schedule.validate()?;
    if resume.is_none() {
        // The short form (the flag's, or the model's) spans this run's epochs.
        let per_epoch = data.train.len().div_ceil(config.batch_size.max(1)) as u64;
        let text = args.lr_schedule.as_deref().or(config.spec.training.lr_schedule.as_deref());
        config.schedule =
            config.spec.training.schedule_for(text, config.optimizer.lr(), per_epoch, config.epochs)?;
    }
    anyhow::ensure!(
        config.batch_size <= data.train.len(),
        "--batch-size {} is larger than the training set ({} images)",
        config.batch_size,
        data.train.len()
    );
    let (executor, device_line) = device.open(None)?;
    let mut trainer = Trainer::new(&executor, &data, config.clone(), resume.as_ref())?;
    // The run directory is claimed only once the run can start.
    let (out, made) = claim_out_dir(args, &config.spec.name)?;
    // A closed standard output stops the run with a checkpoint (see `say`), not a kill.
    #[cfg(unix)]
    // SAFETY: setting one signal's disposition; nothing here relies on SIGPIPE's default.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    say(&device_line);
    say(&format!(
        "data: {} train, {} validation, {} test images from {}",
        data.train.len(),
        data.val.len(),
        data.test.len(),
        data.dir.display()
    ));
    let params = config.spec.parameters()?;
    say(&format!(
        "model: {} ({} parameters), {}{}{}, batch {}, {} epochs, seed {}; writing to {}",
        config.spec.name,
        crate::graph::model::group(params),
        config.optimizer,
        match config.schedule {
            crate::graph::lr::Schedule::Constant => String::new(),
            ref s => format!(", learning rate {s}"),
        },
        match config.spec.training.augment {
            a if a.is_on() => format!(", augment {a}"),
            _ => String::new(),
        },
        config.batch_size,
        config.epochs,
        config.seed,
        out.display()
    ));
    if let Some(c) = &resume {
        say(&format!("resuming after epoch {} (step {})", c.epoch, c.step));
    }
    let mut bar = Bar { bar: None, epochs: config.epochs, epoch: 0 };
    super::stop_on_signals();
    let provenance = report::Provenance::new(data.identity(), std::env::args().collect::<Vec<_>>().join(" "));
    let done = report::fit(&mut trainer, &executor, device.pick.device, &out, &mut bar, &provenance)
        .map_err(|e| {
            if let Some(bar) = bar.bar.take() {
                bar.abandon();
            }
            // A run that ends before it saved anything leaves no directory behind.
            let removed = made && std::fs::remove_dir(&out).is_ok();
            let nothing = if removed {
                format!(" (nothing was saved: {} removed)", out.display())
            } else {
                String::new()
            };
            if let Some(i) = e.downcast_ref::<Interrupted>() {
                let ckpt = out.join("model.safetensors");
                let again = resume_command(&ckpt, config.epochs, device, data_dir, args.subset);
                return anyhow::anyhow!(
                    "{i}; {} holds where it stopped: resume with `{again}`",
                    ckpt.display()
                );
            }
            if let Some(d) = e.downcast_ref::<crate::train::Diverged>() {
                let knob = match config.optimizer {
                    Optimizer::Sgd { momentum, .. } if momentum > 0.0 => {
                        "lower the learning rate (--lr) or the momentum (--momentum)"
                    }
                    _ => "lower the learning rate (--lr)",
                };
                let kept =
                    if removed { nothing } else { format!("; {} holds the last good epoch", out.display()) };
                return anyhow::anyhow!("{d}: {knob}{kept}");
            }
            anyhow::anyhow!("{e:#}{nothing}")
        })?;
    say(&format!(
        "test: loss {:.4}, accuracy {:.4} ({} images)",
        done.test.loss,
        done.test.accuracy,
        crate::graph::model::group(done.test.images)
    ));
    say(&format!(
        "\nconfusion matrix on the training set, inference mode (rows: true class):\n{}",
        report::confusion_table(&done.train.confusion)
    ));
    say(&format!(
        "confusion matrix on the test set (rows: true class):\n{}",
        report::confusion_table(&done.test.confusion)
    ));
    say(&format!("wrote {}: {}", out.display(), report::RUN_FILES));
    Ok(())
}

/// The command that continues an interrupted run where it ran: the checkpoint holds the model
/// and its training, not the device or the data directory, and `--device auto` would pick the
/// CPU path on a machine whose only Vulkan driver is lavapipe.
fn resume_command(
    ckpt: &Path,
    epochs: usize,
    device: &DeviceArgs,
    data_dir: Option<&Path>,
    subset: Option<usize>,
) -> String {
    let mut cmd = format!("gpu-fmnist train --resume {} --epochs {epochs}", ckpt.display());
    if let Some(kind) = clap::ValueEnum::to_possible_value(&device.pick.device) {
        if device.pick.device != crate::gpu::DeviceKind::Auto {
            cmd += &format!(" --device {}", kind.get_name());
        }
    }
    if let Some(a) = &device.pick.adapter {
        cmd += &format!(" --adapter '{a}'");
    }
    if let Some(d) = data_dir {
        cmd += &format!(" --data-dir {}", d.display());
    }
    if let Some(n) = subset {
        cmd += &format!(" --subset {n}");
    }
    cmd
}
