//! Argument parsing and the commands. Everything that prints lives here.

mod bench;
mod check;
mod data;
mod devices;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::gpu::DeviceKind;

/// Train and check neural networks on Fashion-MNIST with WGSL compute shaders (wgpu), on any
/// GPU — Vulkan, Metal, DX12, GL — or on the CPU reference path.
#[derive(Debug, Parser)]
#[command(name = "gpu-fmnist", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Find Fashion-MNIST, validate it, and print its splits, class counts and pixel statistics.
    Data(DataDirArg),
    /// List every adapter wgpu finds, with the limits and features that matter for compute.
    Devices(DevicesArgs),
    /// Run every kernel on the GPU and on the CPU reference with the same random inputs, and
    /// print how far apart they are; exits non-zero if any output is out of tolerance.
    Check(CheckArgs),
    /// Time the kernels on the GPU against the CPU reference (medians, side by side), as markdown.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
struct BenchArgs {
    #[command(flatten)]
    device: DeviceArgs,
    /// Timed runs per measurement; the median is reported.
    #[arg(long, default_value_t = 7)]
    reps: usize,
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    device: DeviceArgs,
    /// Seed of the random shapes and inputs (a failure names it so it can be replayed).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fewer, smaller shapes: a few seconds.
    #[arg(long)]
    quick: bool,
}

/// Where the data set is: `--data-dir`, else `$GPU_FMNIST_DATA`, else `./data/fashion-mnist`,
/// else `/usr/share/datasets/fashion-mnist` (Debian's `dataset-fashion-mnist`).
#[derive(Debug, Args)]
struct DataDirArg {
    /// Directory holding the four IDX files (gzipped or not), e.g. `data/sample`.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// Which executor to use.
#[derive(Debug, Args, Clone)]
struct DeviceArgs {
    /// Backend to run on: a wgpu backend, `cpu` for the ndarray reference path, or `auto`
    /// (a hardware GPU when there is one, otherwise cpu).
    #[arg(long, value_enum, default_value_t = DeviceKind::Auto)]
    device: DeviceKind,
    /// Pick the adapter whose name contains this text (case-insensitive); `$WGPU_ADAPTER_NAME` works too.
    #[arg(long, value_name = "SUBSTRING")]
    adapter: Option<String>,
}

#[derive(Debug, Args)]
struct DevicesArgs {
    /// Only list adapters of this backend (`auto` and `cpu` list all; `$WGPU_BACKEND` narrows them).
    #[arg(long, value_enum, default_value_t = DeviceKind::Auto)]
    device: DeviceKind,
}

/// Parses the command line and runs the command.
pub fn run() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Data(args) => data::run(args.data_dir.as_deref()),
        Command::Devices(args) => devices::run(args.device),
        Command::Bench(args) => bench::run(args.device.device, args.device.adapter.as_deref(), args.reps),
        Command::Check(args) => {
            check::run(args.device.device, args.device.adapter.as_deref(), args.seed, args.quick)
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
