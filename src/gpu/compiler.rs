//! What an op family's dispatch code (src/gpu/<op>.rs) is handed to turn one op into dispatches:
//! the device, the pipelines, and the tensors' buffers. The engine builds one per program and
//! calls the op files with it; neither the op files nor this file import the engine.

use super::context::GpuContext;
use super::kernels::{Bind, Dispatch, Kernels, Shader};
use crate::graph::{TensorSpec, T};

/// What an op's compiler needs: the device, the pipelines, and the tensors' buffers.
pub struct Compiler<'a> {
    pub ctx: &'a GpuContext,
    pub kernels: &'a Kernels,
    pub specs: &'a [TensorSpec],
    buffers: &'a [Bind],
}

impl<'a> Compiler<'a> {
    pub fn new(
        ctx: &'a GpuContext,
        kernels: &'a Kernels,
        specs: &'a [TensorSpec],
        buffers: &'a [Bind],
    ) -> Self {
        Compiler { ctx, kernels, specs, buffers }
    }

    /// Tensor `t` as a binding: its own buffer, or its range of its arena's.
    pub fn buf(&self, t: T) -> Bind {
        self.buffers[t.0].clone()
    }

    /// The buffer of `t`, or a small unused one where a kernel declares a binding that this
    /// use of it does not need (each placeholder is its own, so writable bindings never alias).
    pub fn buf_or_placeholder(&self, t: Option<T>) -> Bind {
        match t {
            Some(t) => self.buf(t),
            None => (&self.scratch(4)).into(),
        }
    }

    /// A small read-only buffer holding `words` (a table an op keeps, e.g. the update's chunks).
    pub fn constant(&self, words: &[u32]) -> Bind {
        use wgpu::util::DeviceExt;
        let buffer = self.ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("table"),
            contents: bytemuck::cast_slice(if words.is_empty() { &[0u32] } else { words }),
            usage: wgpu::BufferUsages::STORAGE,
        });
        (&buffer).into()
    }

    /// The arena `t` is a view of, and its offset there in elements.
    pub fn within(&self, t: T) -> anyhow::Result<(T, usize)> {
        self.specs[t.0].within.ok_or_else(|| anyhow::anyhow!("{} is not in an arena", self.specs[t.0].name))
    }

    /// A new device buffer of `floats` 4-byte elements (scratch space an op keeps).
    pub fn scratch(&self, floats: usize) -> wgpu::Buffer {
        storage_buffer(self.ctx, floats, "scratch")
    }

    /// A dispatch of `entry` with its uniform block `params` at binding 0 and `bindings` after it.
    pub fn dispatch(
        &self,
        shader: Shader,
        entry: &'static str,
        constants: &[(&'static str, f64)],
        params: (u32, &[u32]),
        bindings: &[(u32, Bind)],
        groups: [u32; 3],
    ) -> anyhow::Result<Dispatch> {
        let pipeline = self.kernels.pipeline(self.ctx, shader, entry, constants)?;
        let uniform = super::kernels::uniform(self.ctx, params.1);
        let mut all = vec![(params.0, Bind::from(&uniform))];
        all.extend_from_slice(bindings);
        Ok(super::kernels::dispatch(self.ctx, pipeline, format!("{}.{entry}", shader.name), &all, groups))
    }
}

/// A buffer that kernels read and write and the host copies to and from. Sizes are rounded up
/// to 16 bytes so that any buffer can be bound as an array of vec4.
pub(super) fn storage_buffer(ctx: &GpuContext, elements: usize, label: &str) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: ((elements * 4).max(16) as u64).next_multiple_of(16),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}
