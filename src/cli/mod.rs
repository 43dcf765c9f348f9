//! Argument parsing and the commands. Everything that prints lives here.

mod augment;
mod bench;
mod check;
mod data;
mod devices;
mod eval;
mod experiment;
mod import;
mod predict;
mod train;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::data::SplitName;
use crate::device::DeviceKind;

/// Train and check neural networks on Fashion-MNIST with WGSL compute shaders (wgpu), on any
/// GPU — Vulkan, Metal, DX12, GL — or on the CPU reference path.
#[derive(Debug, Parser)]
#[command(name = "gpu-fmnist", version = crate::VERSION, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a model (a preset — the report's `mlp` or `cnn`, or `strong` — or a TOML/JSON file)
    /// and write a run directory: checkpoint, history, metrics, curves, confusion matrices,
    /// summary.
    Train {
        #[command(flatten)]
        args: TrainArgs,
        #[command(flatten)]
        device: DeviceArgs,
        #[command(flatten)]
        data: DataDirArg,
    },
    /// Loss, accuracy and confusion matrix of a checkpoint on one split, in inference mode.
    Eval {
        /// A `model.safetensors` written by `train`.
        #[arg(long, value_name = "FILE")]
        checkpoint: PathBuf,
        /// The split to evaluate (`val`: the first 5,000 training images, as in the report).
        #[arg(long, value_enum, default_value_t = SplitName::Test)]
        split: SplitName,
        /// Images per batch (only speed depends on it).
        #[arg(long)]
        batch_size: Option<usize>,
        /// Print loss, accuracy and the confusion matrix as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        device: DeviceArgs,
        #[command(flatten)]
        data: DataDirArg,
    },
    /// Classify images (PNG or JPEG; colour is converted to gray): 28×28, or any size with
    /// --resize; a light garment on a dark ground, as in Fashion-MNIST (--invert otherwise).
    Predict {
        /// A `model.safetensors` written by `train` (or by `import`).
        #[arg(long, value_name = "FILE")]
        checkpoint: PathBuf,
        /// Image files, or directories of them.
        #[arg(required = true, value_name = "IMAGE|DIR")]
        images: Vec<PathBuf>,
        /// Fit images of any size into 28×28, keeping their proportions.
        #[arg(long)]
        resize: bool,
        /// Invert the gray levels (for a dark garment on a light ground).
        #[arg(long)]
        invert: bool,
        /// Show the K most likely classes of each image.
        #[arg(long, default_value_t = 1, value_name = "K")]
        top: usize,
        /// Print every image's whole probability vector and its top classes as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        device: DeviceArgs,
    },
    /// Bring in weights trained elsewhere: a safetensors file with Keras's names and layouts or
    /// PyTorch's, mapped onto one of our models (the mapping is printed) and written as a
    /// checkpoint that eval and predict read.
    Import {
        /// The weights, as `safetensors.numpy.save_file` or `safetensors.torch.save_file` wrote them.
        #[arg(value_name = "WEIGHTS")]
        weights: PathBuf,
        /// The model they belong to: `mlp`, `cnn`, `strong` or a model file (.toml, .json).
        #[arg(long)]
        model: String,
        /// The checkpoint to write (an existing file is refused).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print a Keras-style summary of a model: layers, output shapes, parameter counts.
    Summary {
        /// `mlp`, `cnn`, `strong` (see `models`), or a model file (.toml or .json).
        #[arg(long, default_value = "mlp")]
        model: String,
    },
    /// List the preset models, each with its parameters and what it is.
    Models,
    /// Find Fashion-MNIST, validate it, and print its splits, class counts, pixel statistics and
    /// content hash.
    Data {
        #[command(flatten)]
        data: DataDirArg,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell's completion script for gpu-fmnist (e.g. `gpu-fmnist completions bash >
    /// ~/.local/share/bash-completion/completions/gpu-fmnist`).
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write a PNG grid of training images as augmentation changes them in successive epochs:
    /// what the model sees.
    AugmentPreview(augment::AugmentPreviewArgs),
    /// List every adapter wgpu finds, with the limits and features that matter for compute.
    Devices(DevicesArgs),
    /// Run every kernel on the GPU and on the CPU reference with the same random inputs, and
    /// print how far apart they are; exits non-zero if any output is out of tolerance.
    Check(CheckArgs),
    /// Time training as a user meets it — a whole epoch on the CPU path and on the GPU adapter,
    /// and (unless --no-peers) PyTorch's and Keras's side by side — plus every kernel on the GPU
    /// against the CPU reference; markdown tables (medians).
    Bench(BenchArgs),
    /// Run the report's hyperparameter studies (or your own study files), each trial a training
    /// run, and give each claim a verdict; `experiment figures` redraws the report's figures.
    Experiment(experiment::ExperimentArgs),
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    device: AdapterArgs,
    /// Timed runs per measurement; the median is reported.
    #[arg(long, default_value_t = 7)]
    reps: usize,
    /// Training steps per timed run (0: a whole epoch's full batches, after a warm-up step, as
    /// the peers are timed by default).
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// Rounds of the whole comparison, alternating whether ours or the peers go first; each row
    /// is the median over the rounds.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Thread counts to time the CPU paths at (ours and the peers'), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2], value_name = "N,M,…")]
    threads: Vec<usize>,
    /// Models to time, comma-separated: `mlp`, `cnn`, `strong` or model files (the peers know
    /// only mlp and cnn).
    #[arg(long, value_delimiter = ',', default_values_t = ["mlp".to_string(), "cnn".to_string()])]
    model: Vec<String>,
    /// Batch sizes to time the training step at, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [32], value_name = "N,M,…")]
    batch: Vec<usize>,
    /// Do not time the peers (PyTorch and Keras, through benches/peers.py).
    #[arg(long)]
    no_peers: bool,
    /// Steps each peer is timed over, after a warm-up step (0: a whole epoch, as Keras's `fit`
    /// reports it; fewer steps flatter none but include `fit`'s start-up in Keras's figure).
    #[arg(long, default_value_t = 0)]
    peer_steps: usize,
    /// The Python that has the peers installed.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Skip the kernel table and the per-op profiles: the epoch table only.
    #[arg(long)]
    epochs_only: bool,
    /// Only time one real GPU training step of each model dispatch by dispatch (timestamps
    /// around each dispatch): its time, the gap to the next, and the step's wall time; the
    /// optional FILE gets it as JSON.
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    profile_step: Option<Option<PathBuf>>,
    /// Also write the epoch table as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also write the epoch table as CSV to this file.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Also draw the epoch times as a bar chart (PNG) to this file.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    #[command(flatten)]
    data: DataDirArg,
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    device: AdapterArgs,
    /// Seed of the random shapes and inputs (a failure names it so it can be replayed).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fewer, smaller shapes: a few seconds.
    #[arg(long)]
    quick: bool,
    /// Print every comparison as JSON.
    #[arg(long)]
    json: bool,
}

/// Where the data set is: `--data-dir`, else `$GPU_FMNIST_DATA`, else `./data/fashion-mnist`,
/// else `/usr/share/datasets/fashion-mnist` (Debian's `dataset-fashion-mnist`).
#[derive(Debug, Args)]
pub struct DataDirArg {
    /// Directory holding the four IDX files (gzipped or not), e.g. `data/sample`.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// What to train and how; unset options come from the model (the presets carry the report's).
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// `mlp`, `cnn` or `strong` (`gpu-fmnist models` lists them, each with its optimizer,
    /// learning rate and epochs), or a model file (.toml or .json) [default: mlp].
    #[arg(long)]
    model: Option<String>,
    /// Passes over the training set [default: the model's: 13 for mlp, 10 for cnn, 15 for strong].
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per step [default: the model's; Keras's 32 for mlp and cnn].
    #[arg(long)]
    batch_size: Option<usize>,
    /// `sgd`, `adam` or `adamw` (Adam with decoupled weight decay 0.004), with Keras's
    /// defaults unless --lr etc. are given.
    #[arg(long, value_parser = ["sgd", "adam", "adamw"])]
    optimizer: Option<String>,
    /// Adam's decoupled weight decay (AdamW): each step first shrinks every weight by
    /// lr·weight_decay of itself.
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Learning rate [default: the model's].
    #[arg(long)]
    lr: Option<f32>,
    /// SGD's momentum, in [0, 1) [default: the model's; 0 for mlp].
    #[arg(long)]
    momentum: Option<f32>,
    /// SGD with Nesterov momentum.
    #[arg(long)]
    nesterov: bool,
    /// Learning-rate schedule over the run: `constant`, `cosine[:warmup=E][,alpha=A]` (warm-up
    /// from 0 over E epochs, then a half cosine down to A × lr at the last step),
    /// `exponential:rate=R[,every=E][,staircase]` (× R every E epochs), or
    /// `plateau[:factor=F,patience=P,min_lr=M,cooldown=C]` (× F after P epochs without a better
    /// validation loss, Keras's ReduceLROnPlateau) [default: the model's]. A model file's
    /// `[training.schedule]` takes Keras's own schedule configurations.
    #[arg(long, value_name = "SCHEDULE")]
    lr_schedule: Option<String>,
    /// Label smoothing ε of the loss (Keras's `label_smoothing`): the target is
    /// (1 − ε)·onehot + ε/10.
    #[arg(long, value_name = "EPSILON")]
    label_smoothing: Option<f32>,
    /// Random changes to the training images, drawn per (seed, epoch, image) on the device:
    /// `shift=N` (translate by up to N pixels), `flip` (mirror half), `erase=P` (zero a
    /// rectangle with probability P), comma-separated, or `none`. Evaluation never augments.
    #[arg(long, value_name = "SPEC")]
    augment: Option<String>,
    /// Stop when the validation loss (see --monitor) has not improved for PATIENCE epochs,
    /// and go back to the best epoch's weights (Keras's EarlyStopping, restore_best_weights).
    #[arg(long, value_name = "PATIENCE")]
    early_stopping: Option<usize>,
    /// What early stopping watches.
    #[arg(long, value_parser = ["val_loss", "val_accuracy"], requires = "early_stopping")]
    monitor: Option<String>,
    /// Keep the best epoch by validation accuracy (or by early stopping's monitor) as
    /// best.safetensors beside the last checkpoint.
    #[arg(long)]
    save_best: bool,
    /// Seeds the initial weights, the shuffles and the dropout masks [default: 1; with --resume,
    /// the checkpoint's].
    #[arg(long)]
    seed: Option<u64>,
    /// The run directory [default: runs/<model>-<timestamp>, made unique; with --resume, the
    /// checkpoint's]. It is made once the first epoch (or an interrupted one) has something to
    /// save; a directory that holds a run is refused unless --overwrite.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Replace the run in --out: its files are removed before training starts.
    #[arg(long, requires = "out")]
    overwrite: bool,
    /// Train on the first N training images only (validation and test stay whole).
    #[arg(long, value_name = "N")]
    subset: Option<usize>,
    /// Continue from a checkpoint (its model, optimizer state, epoch and history).
    #[arg(long, value_name = "FILE")]
    resume: Option<PathBuf>,
}

/// Which backend and adapter to use (`bench` and `check`, which take no `--threads`).
#[derive(Debug, Args, Clone)]
pub struct AdapterArgs {
    /// Backend to run on: a wgpu backend, `cpu` for the ndarray reference path, or `auto`
    /// (a hardware GPU when there is one, otherwise cpu).
    #[arg(long, value_enum, default_value_t = DeviceKind::Auto)]
    pub device: DeviceKind,
    /// Pick the adapter whose name contains this text (case-insensitive); `$WGPU_ADAPTER_NAME` works too.
    #[arg(long, value_name = "SUBSTRING")]
    pub adapter: Option<String>,
}

/// `--threads` above this many per core only adds overhead (and 10,000 threads exhaust a machine).
const MAX_THREADS_PER_CORE: usize = 4;

/// Which executor to use.
#[derive(Debug, Args, Clone)]
pub struct DeviceArgs {
    #[command(flatten)]
    pub pick: AdapterArgs,
    /// CPU path: threads for the large products, at most 4 per core; results are the same
    /// whatever the count [default: every core].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

impl DeviceArgs {
    /// Opens the executor asked for; `default_threads` applies to the CPU path when
    /// `--threads` is not given (None: every core).
    pub fn open(&self, default_threads: Option<usize>) -> anyhow::Result<(crate::device::Executor, String)> {
        if let Some(n) = self.threads {
            let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
            anyhow::ensure!(
                (1..=MAX_THREADS_PER_CORE * cores).contains(&n),
                "--threads must be between 1 and {} ({MAX_THREADS_PER_CORE} per core of this machine's {cores})",
                MAX_THREADS_PER_CORE * cores
            );
            anyhow::ensure!(
                matches!(self.pick.device, DeviceKind::Cpu | DeviceKind::Auto),
                "--threads sets the CPU path's threads; --device {:?} runs on a GPU",
                self.pick.device
            );
        }
        let (executor, line) = crate::device::Executor::open(self.pick.device, self.pick.adapter.as_deref())?;
        Ok(match (self.threads.or(default_threads), executor) {
            (Some(n), e @ crate::device::Executor::Cpu { .. }) => (e.with_threads(n), line),
            (_, e) => (e, line),
        })
    }
}

#[derive(Debug, Args)]
struct DevicesArgs {
    /// Print them as JSON.
    #[arg(long)]
    json: bool,
    /// Only list adapters of this backend (`auto` and `cpu` list all; `$WGPU_BACKEND` narrows them).
    #[arg(long, value_enum, default_value_t = DeviceKind::Auto)]
    device: DeviceKind,
}

/// Parses the command line and runs the command.
pub fn run() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Train { args, device, data } => train::run(&args, &device, data.data_dir.as_deref()),
        Command::Eval { checkpoint, split, batch_size, json, device, data } => {
            eval::run(&checkpoint, split, &device, data.data_dir.as_deref(), batch_size, json)
        }
        Command::Predict { checkpoint, images, resize, invert, top, json, device } => {
            let prepare = crate::data::image::Prepare { resize, invert };
            predict::run(
                &predict::Ask { checkpoint: &checkpoint, images: &images, prepare, top, json },
                &device,
            )
        }
        Command::Import { weights, model, out } => import::run(&weights, &model, &out),
        Command::Summary { model } => {
            print!("{}", crate::graph::model::summary(&crate::graph::ModelSpec::load(&model)?)?);
            Ok(())
        }
        Command::Models => {
            print!("{}", crate::graph::model::presets_table()?);
            Ok(())
        }
        Command::Data { data, json } => data::run(data.data_dir.as_deref(), json),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "gpu-fmnist", &mut std::io::stdout());
            Ok(())
        }
        Command::AugmentPreview(args) => augment::run(&args),
        Command::Devices(args) => devices::run(args.device, args.json),
        Command::Bench(args) => bench::run(&args),
        Command::Experiment(args) => experiment::run(&args),
        Command::Check(args) => {
            check::run(args.device.device, args.device.adapter.as_deref(), args.seed, args.quick, args.json)
        }
    }
}

/// Ctrl-C (SIGINT) and SIGTERM ask training to stop after its current chunk of steps, with a
/// checkpoint of where it stopped; a second one ends the program at once.
pub fn stop_on_signals() {
    #[cfg(unix)]
    {
        extern "C" fn on_signal(signal: libc::c_int) {
            crate::train::STOP.store(true, std::sync::atomic::Ordering::SeqCst);
            // SAFETY: signal() is async-signal-safe; the next one gets the default action.
            unsafe {
                libc::signal(signal, libc::SIG_DFL);
            }
        }
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: the handler only stores to an atomic and resets its own disposition.
            unsafe {
                libc::signal(signal, on_signal as *const () as libc::sighandler_t);
            }
        }
    }
}

/// lavapipe prints "XDG_RUNTIME_DIR is invalid" for every instance when the variable is unset;
/// point it at a private directory (called once at start-up, before any thread exists).
pub fn quiet_lavapipe() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("gpu-fmnist-runtime-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_ok() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        }
        std::env::set_var("XDG_RUNTIME_DIR", &dir);
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    /// `bench --threads 1,2` is the list of thread counts (a flattened `--threads N` once
    /// shadowed it and refused the list); clap's own consistency checks run in debug builds.
    #[test]
    fn bench_takes_a_list_of_thread_counts() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
        let cli = super::Cli::try_parse_from(["gpu-fmnist", "bench", "--threads", "1,16"]).unwrap();
        let super::Command::Bench(args) = cli.command else { panic!("not bench") };
        assert_eq!(args.threads, [1, 16]);
    }
}
