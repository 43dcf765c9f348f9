//! The GPU executor: one wgpu buffer per tensor, allocated once; every op list compiled once into
//! dispatches (pipeline + bind group + workgroup counts); `run` records many steps into one
//! compute pass and one submission, and never waits.

use super::compiler::{storage_buffer, Compiler};
use super::context::GpuContext;
use super::kernels::{Bind, Dispatch, Kernels};
use super::{batchnorm, conv, data, elementwise, matmul, optimizer, pool, softmax_xent};
use crate::graph::{Counters, Engine, Op, Program, TensorSpec, T};
use crate::text::one_line;

/// The dispatches that run `op`.
fn compile_op(c: &Compiler, op: &Op) -> anyhow::Result<Vec<Dispatch>> {
    match op {
        Op::Matmul(mm) => matmul::compile(c, mm),
        Op::BiasGrad { .. } => matmul::compile_bias_grad(c, op),
        Op::Activation { .. } | Op::ActivationGrad { .. } | Op::Dropout { .. } => elementwise::compile(c, op),
        Op::SoftmaxXent { .. } => softmax_xent::compile(c, op),
        Op::Im2col { .. } | Op::Col2im { .. } => conv::compile(c, op),
        Op::MaxPool { .. } | Op::MaxPoolGrad { .. } | Op::AvgPool { .. } | Op::AvgPoolGrad { .. } => {
            pool::compile(c, op)
        }
        Op::BatchNormStats { .. } | Op::BatchNormApply { .. } | Op::BatchNormGrad { .. } => {
            batchnorm::compile(c, op)
        }
        Op::L2Penalty { .. } | Op::Update { .. } => optimizer::compile(c, op),
        Op::Gather { .. } | Op::Confusion { .. } | Op::Record { .. } => data::compile(c, op),
    }
}

/// Runs a [`Program`] on a wgpu device.
pub struct GpuEngine<'a> {
    ctx: &'a GpuContext,
    specs: Vec<TensorSpec>,
    /// Per tensor: its buffer, or its arena's with the view's range.
    buffers: Vec<Bind>,
    lists: Vec<Vec<Dispatch>>,
    counters: Counters,
}

impl<'a> GpuEngine<'a> {
    /// Allocates every tensor (zero-filled) and compiles every op list of `program`.
    pub fn new(ctx: &'a GpuContext, program: &Program) -> anyhow::Result<Self> {
        let limit = ctx.device.limits().max_storage_buffer_binding_size as usize;
        for t in &program.tensors {
            anyhow::ensure!(
                t.len * 4 <= limit,
                "tensor {} needs {} MiB, over this adapter's {} MiB storage binding limit: use a smaller batch",
                t.name,
                (t.len * 4) >> 20,
                limit >> 20
            );
        }
        // Device memory running out, or a binding wgpu rejects, comes back as an error here
        // rather than a panic later.
        let out_of_memory = ctx.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let invalid = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let align = ctx.device.limits().min_storage_buffer_offset_alignment as usize;
        let mut buffers: Vec<Bind> = Vec::with_capacity(program.tensors.len());
        for t in &program.tensors {
            buffers.push(match t.within {
                None => (&storage_buffer(ctx, t.len, &t.name)).into(),
                Some((arena, offset)) => {
                    anyhow::ensure!(
                        arena.0 < buffers.len() && (offset * 4).is_multiple_of(align),
                        "tensor {}: a view must follow its arena and start at a multiple of {align} bytes",
                        t.name
                    );
                    // Rounded up to 16 bytes so that kernels may read it as vec4s; the arena's
                    // chunks leave room.
                    let size = ((t.len * 4).max(16) as u64).next_multiple_of(16);
                    Bind {
                        buffer: buffers[arena.0].buffer.clone(),
                        offset: (offset * 4) as u64,
                        size: std::num::NonZeroU64::new(size),
                    }
                }
            });
        }
        let kernels = Kernels::new();
        let compiler = Compiler::new(ctx, &kernels, &program.tensors, &buffers);
        let mut lists = Vec::new();
        for ops in &program.lists {
            let mut dispatches = Vec::new();
            let mut ops = ops.iter().peekable();
            while let Some(op) = ops.next() {
                // A pair of ops that one kernel runs on this adapter (`compile_pair` of batchnorm.rs,
                // softmax_xent.rs).
                let pair = |next: &&Op| {
                    batchnorm::compile_pair(&compiler, op, next)
                        .or_else(|| softmax_xent::compile_pair(&compiler, op, next))
                };
                if let Some(d) = ops.peek().and_then(pair) {
                    dispatches.push(d?);
                    ops.next();
                    continue;
                }
                dispatches.extend(compile_op(&compiler, op)?);
            }
            lists.push(dispatches);
        }
        if let Some(e) = pollster::block_on(invalid.pop()) {
            anyhow::bail!("building the GPU schedule: {}", one_line(&e.to_string()));
        }
        if let Some(e) = pollster::block_on(out_of_memory.pop()) {
            anyhow::bail!(
                "the GPU ran out of memory for this model and batch size: {}",
                one_line(&e.to_string())
            );
        }
        Ok(GpuEngine { ctx, specs: program.tensors.clone(), buffers, lists, counters: Counters::default() })
    }

    /// Where the time of one run of list `list` goes: each dispatch repeated `reps` times in one
    /// compute pass, per launch — timed on the device by timestamp queries where the adapter
    /// has them ([`GpuContext::timed_pass`]), else on the host around a wait. Repeating a launch
    /// on warm data can flatter it a little; the ranking is what this is for.
    pub fn profile(&mut self, list: usize, reps: usize) -> anyhow::Result<Vec<(String, f64)>> {
        self.ctx.wait()?;
        let mut out = Vec::new();
        for d in &self.lists[list] {
            let record = |pass: &mut wgpu::ComputePass| {
                pass.set_pipeline(&d.pipeline);
                pass.set_bind_group(0, &d.bind_group, &[]);
                for _ in 0..reps {
                    pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
                }
            };
            let seconds = match self.ctx.timed_pass(record)? {
                Some(s) => s,
                None => {
                    let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
                    record(&mut encoder.begin_compute_pass(&Default::default()));
                    let start = std::time::Instant::now();
                    self.ctx.submit(encoder.finish());
                    self.ctx.wait()?;
                    start.elapsed().as_secs_f64()
                }
            };
            out.push((d.name.clone(), seconds / reps as f64));
        }
        Ok(out)
    }

    /// One run of list `list` dispatch by dispatch, each in a compute pass of its own with
    /// timestamps at its start and end, all in one submission: for each dispatch its name, its
    /// start (seconds from the first) and its seconds on the device. `None` on an adapter
    /// without timestamp queries.
    pub fn profile_run(&mut self, list: usize) -> anyhow::Result<Option<Vec<(String, f64, f64)>>> {
        let dispatches = &self.lists[list];
        let spans = self.ctx.timed_passes(dispatches.len(), |i, pass| {
            let d = &dispatches[i];
            pass.set_pipeline(&d.pipeline);
            pass.set_bind_group(0, &d.bind_group, &[]);
            pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
        })?;
        self.counters.dispatches += dispatches.len() as u64;
        self.counters.submits += 1;
        self.ctx.take_error()?;
        Ok(spans.map(|s| dispatches.iter().zip(s).map(|(d, (a, b))| (d.name.clone(), a, b - a)).collect()))
    }

    /// The dispatch names of list `list`, in order.
    pub fn dispatch_names(&self, list: usize) -> Vec<String> {
        self.lists[list].iter().map(|d| d.name.clone()).collect()
    }

    fn write_bytes(&mut self, t: T, bytes: &[u8]) -> anyhow::Result<()> {
        anyhow::ensure!(
            bytes.len() <= self.specs[t.0].len * 4,
            "{} bytes for tensor {} of {} elements",
            bytes.len(),
            self.specs[t.0].name,
            self.specs[t.0].len
        );
        // write_buffer needs a multiple of 4 bytes, which f32 and u32 data always are.
        let b = &self.buffers[t.0];
        self.ctx.queue.write_buffer(&b.buffer, b.offset, bytes);
        Ok(())
    }

    fn read_bytes(&mut self, t: T) -> anyhow::Result<Vec<u8>> {
        let size = (self.specs[t.0].len * 4) as u64;
        if size == 0 {
            return Ok(Vec::new());
        }
        let staging = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
        let b = &self.buffers[t.0];
        encoder.copy_buffer_to_buffer(&b.buffer, b.offset, &staging, 0, size);
        self.ctx.submit(encoder.finish());
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.ctx.wait()?;
        rx.recv()?.map_err(|e| anyhow::anyhow!("reading {} back: {e}", self.specs[t.0].name))?;
        let bytes = staging
            .get_mapped_range(..)
            .map_err(|e| anyhow::anyhow!("reading {} back: {e}", self.specs[t.0].name))?
            .to_vec();
        staging.unmap();
        self.counters.submits += 1;
        self.counters.host_reads += 1;
        Ok(bytes)
    }
}

impl Engine for GpuEngine<'_> {
    fn write_f32(&mut self, t: T, data: &[f32]) -> anyhow::Result<()> {
        self.write_bytes(t, bytemuck::cast_slice(data))
    }

    fn write_u32(&mut self, t: T, data: &[u32]) -> anyhow::Result<()> {
        self.write_bytes(t, bytemuck::cast_slice(data))
    }

    fn read_f32(&mut self, t: T) -> anyhow::Result<Vec<f32>> {
        Ok(bytemuck::pod_collect_to_vec(&self.read_bytes(t)?))
    }

    fn read_u32(&mut self, t: T) -> anyhow::Result<Vec<u32>> {
        Ok(bytemuck::pod_collect_to_vec(&self.read_bytes(t)?))
    }

    fn run(&mut self, list: usize, times: usize) -> anyhow::Result<()> {
        let mut encoder =
            self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("steps") });
        {
            // One pass for everything: wgpu inserts the barrier each dispatch needs to see the
            // writes of the ones before it.
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("steps"),
                timestamp_writes: None,
            });
            for _ in 0..times {
                for d in &self.lists[list] {
                    pass.set_pipeline(&d.pipeline);
                    pass.set_bind_group(0, &d.bind_group, &[]);
                    pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
                }
            }
        }
        self.ctx.submit(encoder.finish());
        self.counters.dispatches += (self.lists[list].len() * times) as u64;
        self.counters.submits += 1;
        self.ctx.take_error()
    }

    fn counters(&self) -> Counters {
        self.counters
    }

    fn dispatches_per_run(&self, list: usize) -> usize {
        self.lists[list].len()
    }

    fn name(&self) -> String {
        self.ctx.adapter.info.name.clone()
    }
}
