//! The GPU executor: a wgpu device, WGSL pipelines, and the dispatches that run a schedule.

pub mod context;

pub use context::{list_adapters, one_line, AdapterReport, DeviceKind, Executor, GpuContext};
