//! The GPU executor: a wgpu device, WGSL pipelines, and the dispatches that run a schedule.
//! Each op family's dispatch code sits in a file named like its shader and its CPU reference.

mod batchnorm;
pub mod compiler;
pub mod context;
mod conv;
mod data;
mod elementwise;
pub mod engine;
pub mod kernels;
pub mod matmul;
mod optimizer;
mod pool;
mod softmax_xent;

pub use context::{adapters, check_backend_env, instance, AdapterReport, GpuContext, Tuning};
pub use engine::GpuEngine;
