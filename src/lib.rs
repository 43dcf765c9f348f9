//! gpu-fmnist: train neural networks on Fashion-MNIST with WGSL compute shaders through wgpu,
//! with every kernel checked against a plain CPU reference.
//!
//! Layers, arrows pointing down: `cli` → `experiment`/`bench`/`check` → `report` → `train` →
//! `device` → `graph` ← (`gpu` | `cpu`), and `data`, `rng` and `text` at the bottom. `device` is
//! where a run's executor is chosen and opened.

pub mod bench;
pub mod check;
pub mod cli;
pub mod cpu;
pub mod data;
pub mod device;
pub mod experiment;
pub mod gpu;
pub mod graph;
pub mod report;
pub mod rng;
pub mod text;
pub mod train;

/// The build: the crate's version and the git commit it was built from (`-dirty` when tracked
/// files differed from it), as every run's records and `--version` show it.
pub const BUILD: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("GPU_FMNIST_COMMIT"), ")");

/// What `--version` prints: the build and the wgpu it runs on.
pub const VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), " (", env!("GPU_FMNIST_COMMIT"), "), wgpu ", env!("GPU_FMNIST_WGPU"));
