//! The graph layer: ops and tensors, and the schedule built from a model. It knows shapes, not
//! wgpu: `cpu` and `gpu` are two executors ([`Engine`]s) of the same [`Program`].

pub mod callbacks;
pub mod fuse;
pub mod layers;
pub mod lr;
pub mod model;
pub mod ops;
pub mod schedule;

pub use model::{Layer, ModelSpec};
pub use ops::{Act, DType, Matmul, Op, Optimizer, Padding, Window, T};
pub use schedule::Graph;

/// One tensor of a program: a flat buffer of `len` elements.
#[derive(Debug, Clone)]
pub struct TensorSpec {
    pub name: String,
    pub len: usize,
    pub dtype: DType,
    /// A view of elements `offset..offset + len` of an arena tensor (`Some((arena, offset))`),
    /// `offset` a multiple of [`ops::CHUNK`]. The GPU keeps one buffer per arena, so that one
    /// dispatch can update every weight ([`Op::Update`]); the CPU keeps each view on its own
    /// and never touches an arena as a whole.
    pub within: Option<(T, usize)>,
}

/// Tensors, and lists of ops over them (a training step, an evaluation step, …). Every tensor is
/// allocated once, when an engine is built from the program.
#[derive(Debug, Clone, Default)]
pub struct Program {
    pub tensors: Vec<TensorSpec>,
    pub lists: Vec<Vec<Op>>,
}

impl Program {
    pub fn tensor(&mut self, name: impl Into<String>, len: usize, dtype: DType) -> T {
        self.tensors.push(TensorSpec { name: name.into(), len, dtype, within: None });
        T(self.tensors.len() - 1)
    }

    /// An f32 arena of `len` elements, and a view of each of `lens` in it, each starting at a
    /// multiple of [`ops::CHUNK`] elements: (arena, views).
    pub fn arena(&mut self, name: &str, views: &[(String, usize)]) -> (T, Vec<T>) {
        let mut offsets = Vec::new();
        let mut end = 0;
        for (_, len) in views {
            offsets.push(end);
            end += len.next_multiple_of(ops::CHUNK);
        }
        let arena = self.f32(name, end);
        let views = views
            .iter()
            .zip(offsets)
            .map(|((view, len), offset)| {
                let t = self.f32(view.clone(), *len);
                self.tensors[t.0].within = Some((arena, offset));
                t
            })
            .collect();
        (arena, views)
    }

    pub fn f32(&mut self, name: impl Into<String>, len: usize) -> T {
        self.tensor(name, len, DType::F32)
    }

    pub fn u32(&mut self, name: impl Into<String>, len: usize) -> T {
        self.tensor(name, len, DType::U32)
    }

    /// Adds a list of ops and returns its number.
    pub fn add_list(&mut self, ops: Vec<Op>) -> usize {
        self.lists.push(ops);
        self.lists.len() - 1
    }
}

/// Work counters, as `metrics.json` reports them for the GPU path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Kernel launches recorded.
    pub dispatches: u64,
    /// Command buffers submitted to the queue.
    pub submits: u64,
    /// Reads from device memory back to the host (each one a wait for the GPU).
    pub host_reads: u64,
}

impl Counters {
    /// What was done between `before` and these counters.
    pub fn since(self, before: Counters) -> Counters {
        Counters {
            dispatches: self.dispatches - before.dispatches,
            submits: self.submits - before.submits,
            host_reads: self.host_reads - before.host_reads,
        }
    }
}

/// An executor of a [`Program`]: the CPU reference or the GPU.
pub trait Engine {
    /// Replaces the contents of an f32 tensor.
    fn write_f32(&mut self, t: T, data: &[f32]) -> anyhow::Result<()>;
    /// Replaces the contents of a u32 tensor.
    fn write_u32(&mut self, t: T, data: &[u32]) -> anyhow::Result<()>;
    /// Reads an f32 tensor back, after everything submitted so far.
    fn read_f32(&mut self, t: T) -> anyhow::Result<Vec<f32>>;
    /// Reads a u32 tensor back, after everything submitted so far.
    fn read_u32(&mut self, t: T) -> anyhow::Result<Vec<u32>>;
    /// Runs op list `list` `times` times in a row. The GPU records them into one submission
    /// and returns without waiting.
    fn run(&mut self, list: usize, times: usize) -> anyhow::Result<()>;
    /// What the engine has done so far.
    fn counters(&self) -> Counters;
    /// Kernel launches (CPU: ops) in one run of list `list`.
    fn dispatches_per_run(&self, list: usize) -> usize;
    /// A name for reports: `cpu` or the adapter's name.
    fn name(&self) -> String;
}
