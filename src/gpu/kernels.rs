//! The WGSL sources, embedded in the binary, and the pipelines built from them.
//!
//! A shader module is compiled once per file; a pipeline once per (file, entry point,
//! override constants). Pipelines use the layout the shader implies (`layout: None`): each
//! entry point's bind group holds exactly the bindings that entry point uses.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use wgpu::util::DeviceExt;

use super::context::GpuContext;
use crate::graph::ops::Mask;
use crate::rng::keep_scale;
use crate::text::one_line;

/// A kernel file: `shaders/<name>.wgsl` with `shaders/common.wgsl` in front of it.
#[derive(Debug, Clone, Copy)]
pub struct Shader {
    pub name: &'static str,
    pub source: &'static str,
}

macro_rules! shader {
    ($name:literal) => {
        Shader {
            name: $name,
            source: concat!(
                include_str!("../../shaders/common.wgsl"),
                include_str!(concat!("../../shaders/", $name, ".wgsl"))
            ),
        }
    };
}

pub const MATMUL: Shader = shader!("matmul");
pub const ACTIVATION: Shader = shader!("activation");
pub const SOFTMAX_XENT: Shader = shader!("softmax_xent");
pub const CONV: Shader = shader!("conv");
pub const POOL: Shader = shader!("pool");
pub const DROPOUT: Shader = shader!("dropout");
pub const BATCHNORM: Shader = shader!("batchnorm");
pub const OPTIMIZER: Shader = shader!("optimizer");
pub const DATA: Shader = shader!("data");

/// Every kernel file.
pub const SHADERS: [Shader; 9] =
    [MATMUL, ACTIVATION, SOFTMAX_XENT, CONV, POOL, DROPOUT, BATCHNORM, OPTIMIZER, DATA];

/// Invocations per workgroup of the one-dimensional kernels: `WG` of common.wgsl.
pub const WG: usize = 256;

/// The override constants that give a kernel a dropout's mask (`under_mask` in common.wgsl);
/// none without a mask (MASKED stays false).
pub fn mask_constants(mask: Option<Mask>) -> Vec<(&'static str, f64)> {
    mask.map_or_else(Vec::new, |m| {
        vec![
            ("MASKED", 1.0),
            ("MASK_SEED", m.seed as f64),
            ("MASK_RATE", m.rate as f64),
            ("MASK_SCALE", keep_scale(m.rate) as f64),
        ]
    })
}

/// Parses and validates WGSL with naga, with no device: the error is naga's report.
pub fn validate(source: &str) -> Result<naga::Module, String> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| e.emit_to_string(source))?;
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
        .validate(&module)
        .map_err(|e| format!("{e:?}"))?;
    Ok(module)
}

type PipelineKey = (&'static str, &'static str, Vec<(&'static str, u64)>);

/// Compiled shader modules and pipelines, built on first use and kept.
pub struct Kernels {
    modules: RefCell<HashMap<&'static str, Rc<wgpu::ShaderModule>>>,
    pipelines: RefCell<HashMap<PipelineKey, Rc<wgpu::ComputePipeline>>>,
}

impl Default for Kernels {
    fn default() -> Self {
        Self::new()
    }
}

impl Kernels {
    pub fn new() -> Self {
        Kernels { modules: RefCell::new(HashMap::new()), pipelines: RefCell::new(HashMap::new()) }
    }

    fn module(&self, ctx: &GpuContext, shader: Shader) -> anyhow::Result<Rc<wgpu::ShaderModule>> {
        if let Some(m) = self.modules.borrow().get(shader.name) {
            return Ok(m.clone());
        }
        // An invalid shader would otherwise panic inside wgpu: catch it as an error instead.
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = ctx.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(shader.name),
            source: wgpu::ShaderSource::Wgsl(shader.source.into()),
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            anyhow::bail!("shader {}.wgsl: {}", shader.name, one_line(&e.to_string()));
        }
        let module = Rc::new(module);
        self.modules.borrow_mut().insert(shader.name, module.clone());
        Ok(module)
    }

    /// The pipeline for `entry` of `shader` with the given override constants.
    pub fn pipeline(
        &self,
        ctx: &GpuContext,
        shader: Shader,
        entry: &'static str,
        constants: &[(&'static str, f64)],
    ) -> anyhow::Result<Rc<wgpu::ComputePipeline>> {
        let key = (shader.name, entry, constants.iter().map(|&(k, v)| (k, v.to_bits())).collect());
        if let Some(p) = self.pipelines.borrow().get(&key) {
            return Ok(p.clone());
        }
        let module = self.module(ctx, shader)?;
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pipeline = ctx.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions { constants, ..Default::default() },
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            anyhow::bail!("pipeline {}.wgsl:{entry}: {}", shader.name, one_line(&e.to_string()));
        }
        let pipeline = Rc::new(pipeline);
        self.pipelines.borrow_mut().insert(key, pipeline.clone());
        Ok(pipeline)
    }
}

/// One recorded kernel launch: what a compute pass needs to run it.
pub struct Dispatch {
    pub pipeline: Rc<wgpu::ComputePipeline>,
    pub bind_group: wgpu::BindGroup,
    pub groups: [u32; 3],
    /// `shader.entry`, for profiles.
    pub name: String,
}

/// A small uniform buffer holding a kernel's parameters (u32 words; floats as their bits).
/// Uniform structs are padded to 16 bytes.
pub fn uniform(ctx: &GpuContext, words: &[u32]) -> wgpu::Buffer {
    let mut padded = words.to_vec();
    padded.resize(words.len().div_ceil(4).max(1) * 4, 0);
    ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("params"),
        contents: bytemuck::cast_slice(&padded),
        usage: wgpu::BufferUsages::UNIFORM,
    })
}

/// What a binding sees: a whole buffer, or a tensor's range of its arena's buffer.
#[derive(Debug, Clone)]
pub struct Bind {
    pub buffer: wgpu::Buffer,
    /// Bytes from the buffer's start (a multiple of the adapter's storage offset alignment).
    pub offset: u64,
    /// Bytes bound; None: to the buffer's end.
    pub size: Option<std::num::NonZeroU64>,
}

impl From<&wgpu::Buffer> for Bind {
    fn from(buffer: &wgpu::Buffer) -> Bind {
        Bind { buffer: buffer.clone(), offset: 0, size: None }
    }
}

/// Builds a dispatch of `entry` with `bindings` (binding number, buffer range) in group 0.
pub fn dispatch(
    ctx: &GpuContext,
    pipeline: Rc<wgpu::ComputePipeline>,
    name: String,
    bindings: &[(u32, Bind)],
    groups: [u32; 3],
) -> Dispatch {
    let layout = pipeline.get_bind_group_layout(0);
    let entries: Vec<wgpu::BindGroupEntry> = bindings
        .iter()
        .map(|(binding, b)| wgpu::BindGroupEntry {
            binding: *binding,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &b.buffer,
                offset: b.offset,
                size: b.size,
            }),
        })
        .collect();
    let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(&name),
        layout: &layout,
        entries: &entries,
    });
    Dispatch { pipeline, bind_group, groups, name }
}

/// Workgroups for `n` invocations of a one-dimensional kernel of `wg` invocations each, on a
/// grid whose x axis holds at most 65,535 (the kernel flattens it back: `flat_index`).
pub fn grid(n: usize, wg: usize) -> [u32; 3] {
    let groups = n.div_ceil(wg).max(1);
    let x = groups.min(65_535);
    [x as u32, groups.div_ceil(x) as u32, 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_covers_and_stays_in_limits() {
        for n in [1, 255, 256, 257, 65_535 * 256, 65_535 * 256 + 1, 50_000_000] {
            let [x, y, _] = grid(n, 256);
            assert!(x <= 65_535 && y <= 65_535);
            assert!((x as usize) * (y as usize) * 256 >= n);
        }
    }
}
