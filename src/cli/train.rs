//! `gpu-fmnist train`: train a model, show progress, and leave a run directory behind.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::{DeviceArgs, TrainArgs};
use crate::data::FashionMnist;
use crate::graph::{ModelSpec, Optimizer};
use crate::report;
use crate::train::{Checkpoint, EpochRow, Interrupted, Progress, TrainConfig, Trainer};
use std::sync::atomic::Ordering;

/// Progress: on a terminal a bar per epoch, at most 80 columns, with an ETA for the whole run;
/// elsewhere (a log) a line every [`LOG_EVERY`] saying where the epoch is; and Keras's one line
/// per epoch when it ends.
struct Bar {
    bar: Option<ProgressBar>,
    epochs: usize,
    epoch: usize,
    steps: usize,
    /// Steps done by this process, and when it started them: the run's ETA.
    run_steps: usize,
    started: Instant,
    /// The epoch's steps at the last progress report (to count the run's steps).
    done: usize,
    terminal: bool,
    last_line: Instant,
}

/// How often a run whose progress goes to a log says where it is.
const LOG_EVERY: Duration = Duration::from_secs(30);

impl Bar {
    fn new(epochs: usize) -> Bar {
        Bar {
            bar: None,
            epochs,
            epoch: 0,
            steps: 0,
            run_steps: 0,
            started: Instant::now(),
            done: 0,
            terminal: std::io::stderr().is_terminal(),
            last_line: Instant::now(),
        }
    }

    /// Seconds left in the whole run, from its pace so far (None before the first steps).
    fn eta(&self) -> Option<f64> {
        let left = (self.steps - self.done.min(self.steps)) + (self.epochs - self.epoch) * self.steps;
        (self.run_steps > 0)
            .then(|| self.started.elapsed().as_secs_f64() / self.run_steps as f64 * left as f64)
    }

    /// Takes the bar off the terminal (before an error message, so it starts its own line).
    fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// `1h02m`, `4m05s`, `12s`.
fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The bar's message: the running loss and accuracy and the run's ETA, kept short enough that
/// `Epoch E/N [bar] step/steps message` fits 80 columns.
fn bar_message(loss: f64, accuracy: f64, eta: Option<f64>) -> String {
    let eta = eta.map_or("…".to_string(), duration);
    format!("loss {loss:.3} acc {:.2}% ETA {eta}", 100.0 * accuracy)
}

/// The bar's template: `Epoch E/N` (prefix), a 12-column bar, the steps, the message.
const BAR_TEMPLATE: &str = "{prefix} [{bar:12}] {pos}/{len} {msg}";

impl Progress for Bar {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize) {
        (self.epoch, self.epochs, self.steps, self.done) = (epoch, epochs, steps, 0);
        if !self.terminal {
            return;
        }
        let bar = ProgressBar::new(steps as u64);
        bar.set_style(
            ProgressStyle::with_template(BAR_TEMPLATE).expect("a valid template").progress_chars("=> "),
        );
        bar.set_prefix(format!("Epoch {epoch}/{epochs}"));
        bar.set_message(bar_message(f64::NAN, f64::NAN, self.eta()));
        self.bar = Some(bar);
    }

    fn steps(&mut self, done: usize, loss: f64, accuracy: f64, _images_per_second: f64) {
        self.run_steps += done.saturating_sub(self.done);
        self.done = done;
        let eta = self.eta();
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            bar.set_message(bar_message(loss, accuracy, eta));
        } else if !self.terminal && self.last_line.elapsed() >= LOG_EVERY {
            self.last_line = Instant::now();
            say(&format!(
                "Epoch {}/{}: step {done}/{}, loss {loss:.4}, accuracy {:.2}%, ETA {} for the run",
                self.epoch,
                self.epochs,
                self.steps,
                100.0 * accuracy,
                eta.map_or("…".to_string(), duration)
            ));
        }
    }

    fn epoch_end(&mut self, r: &EpochRow) {
        self.run_steps += self.steps.saturating_sub(self.done);
        self.done = self.steps;
        if let Some(bar) = &self.bar {
            bar.set_position(self.steps as u64);
        }
        self.clear();
        say(&format!(
            "Epoch {}/{}: {:.1}s, loss {:.4}, accuracy {:.2}%, val_loss {:.4}, val_accuracy {:.2}%",
            r.epoch,
            self.epochs,
            r.seconds,
            r.train_loss,
            100.0 * r.train_accuracy,
            r.val_loss,
            100.0 * r.val_accuracy
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
        crate::graph::model::group(data.train.len()),
        crate::graph::model::group(data.val.len()),
        crate::graph::model::group(data.test.len()),
        data.dir.display()
    ));
    let params = config.spec.parameters()?;
    say(&format!(
        "model: {} ({} parameters), {}{}{}, batch {}, {} epoch{}, seed {}; writing to {}",
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
        if config.epochs == 1 { "" } else { "s" },
        config.seed,
        out.display()
    ));
    if let Some(c) = &resume {
        say(&format!("resuming after epoch {} (step {})", c.epoch, c.step));
    }
    let mut bar = Bar::new(config.epochs);
    super::stop_on_signals();
    let provenance = report::Provenance::new(data.identity(), std::env::args().collect::<Vec<_>>().join(" "));
    let done = report::fit(&mut trainer, &executor, device.pick.device, &out, &mut bar, &provenance)
        .map_err(|e| {
            bar.clear();
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
        "test: loss {:.4}, accuracy {:.2}% ({} images)",
        done.test.loss,
        100.0 * done.test.accuracy,
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
        if device.pick.device != crate::device::DeviceKind::Auto {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The bar as indicatif lays it out, with the widest values a run can show, fits 80
    /// columns; the log line says where the epoch and the run are.
    #[test]
    fn the_progress_bar_fits_80_columns() {
        let prefix = "Epoch 10000/10000";
        let message = bar_message(12.3456, 0.9999, Some(359_999.0));
        let line = BAR_TEMPLATE
            .replace("{prefix}", prefix)
            .replace("{bar:12}", &"=".repeat(12))
            .replace("{pos}/{len}", "99999/99999")
            .replace("{msg}", &message);
        assert!(line.chars().count() <= 80, "{} columns: {line}", line.chars().count());
        assert_eq!(duration(59.4), "59s");
        assert_eq!(duration(245.0), "4m05s");
        assert_eq!(duration(3720.0), "1h02m");
        let mut bar = Bar::new(3);
        bar.terminal = true;
        bar.epoch_start(1, 3, 100);
        bar.steps(50, 0.5, 0.8, 0.0);
        // Half an epoch of three done: five half-epochs are left.
        let eta = bar.eta().unwrap();
        let per_half = bar.started.elapsed().as_secs_f64();
        assert!(eta <= 5.0 * per_half + 1e-9 && eta > 0.0, "{eta} {per_half}");
    }
}
