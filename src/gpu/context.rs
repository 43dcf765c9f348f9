//! Finding adapters and opening a device on one: kept apart from the work so that tests and
//! tools can open one device and hand it to everything that needs it. Which device a run asks
//! for (`DeviceKind`, `Executor`) is src/device.rs.

use std::sync::{Arc, Mutex};

use crate::text::one_line;

/// One adapter as `gpu-fmnist devices` shows it.
#[derive(Debug, Clone)]
pub struct AdapterReport {
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
}

impl AdapterReport {
    pub fn of(adapter: &wgpu::Adapter) -> Self {
        AdapterReport { info: adapter.get_info(), limits: adapter.limits(), features: adapter.features() }
    }

    /// Whether this is real GPU hardware rather than a software rasterizer such as llvmpipe.
    pub fn is_hardware(&self) -> bool {
        matches!(
            self.info.device_type,
            wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu | wgpu::DeviceType::VirtualGpu
        )
    }
}

/// `$WGPU_BACKEND`, when set, must name backends wgpu knows: a typo would otherwise look like
/// a machine without drivers.
pub fn check_backend_env() -> anyhow::Result<()> {
    const KNOWN: [&str; 11] =
        ["vulkan", "vk", "metal", "mtl", "dx12", "d3d12", "gl", "gles", "opengl", "webgpu", "noop"];
    let Ok(value) = std::env::var("WGPU_BACKEND") else { return Ok(()) };
    for name in value.split(',').map(|n| n.trim().to_lowercase()) {
        anyhow::ensure!(
            KNOWN.contains(&name.as_str()),
            "WGPU_BACKEND={value}: `{name}` is not a backend (vulkan, metal, dx12, gl, webgpu; comma-separated)"
        );
    }
    Ok(())
}

pub fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    desc.flags = desc.flags.with_env();
    wgpu::Instance::new(desc)
}

/// Every adapter wgpu finds on `backends`.
pub fn adapters(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance(backends).enumerate_adapters(backends))
}

/// Kernel choices that depend on the kind of adapter (the same results either way, within the
/// check tolerance). A CPU driver such as lavapipe runs a few workgroups at once, each as a loop
/// over its invocations, and pays dearly for workgroup barriers and wide workgroups; a hardware
/// GPU idles unless a dispatch has thousands of invocations, and a barrier costs it little.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tuning {
    /// Few workgroups, no barrier trees where a loop will do, scatter where it saves a search.
    Cpu,
    /// Many workgroups: K split finely, 256-wide reductions, one gather pass per pooling gradient.
    Gpu,
}

impl Tuning {
    /// The adapter's kind decides, unless `GPU_FMNIST_TUNING` is `cpu` or `gpu` (to check or time
    /// one tuning's kernels on another adapter).
    pub fn for_adapter(device_type: wgpu::DeviceType) -> Tuning {
        match std::env::var("GPU_FMNIST_TUNING").as_deref() {
            Ok("cpu") => Tuning::Cpu,
            Ok("gpu") => Tuning::Gpu,
            _ if device_type == wgpu::DeviceType::Cpu => Tuning::Cpu,
            _ => Tuning::Gpu,
        }
    }

    /// Whether a column pass over `rows` rows (BatchNorm's statistics, normalization and gradient
    /// sums, a bias gradient) runs one invocation per column, its rows in order: on a CPU driver,
    /// for columns short enough that one loop beats a barrier tree (the MLP's batch).
    pub fn by_column(self, rows: usize) -> bool {
        self == Tuning::Cpu && rows <= 1024
    }
}

/// An open wgpu device with what the rest of the program needs to know about it.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterReport,
    /// How kernels are arranged for this adapter; tests set it to check both arrangements.
    pub tuning: Tuning,
    /// Errors wgpu raised outside an error scope (validation, out of memory), kept instead of
    /// panicking so that the caller can report them as one line.
    errors: Arc<Mutex<Vec<String>>>,
    /// Command buffers submitted to the queue, and waits for the device, by anything that uses
    /// this context: what tests count to prove that a step never waits.
    pub submits: std::sync::atomic::AtomicU64,
    pub waits: std::sync::atomic::AtomicU64,
}

impl GpuContext {
    /// Opens a device on `adapter` with the adapter's own limits (not WebGPU's smaller
    /// defaults) and the optional features the engine can use.
    pub fn from_adapter(adapter: &wgpu::Adapter) -> anyhow::Result<Self> {
        let report = AdapterReport::of(adapter);
        let wanted = wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("gpu-fmnist"),
            required_features: report.features & wanted,
            required_limits: report.limits.clone(),
            memory_hints: wgpu::MemoryHints::Performance,
            ..Default::default()
        }))
        .map_err(|e| anyhow::anyhow!("cannot open a device on {}: {e}", report.info.name))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().unwrap().push(one_line(&e.to_string()));
        }));
        Ok(GpuContext {
            device,
            queue,
            tuning: Tuning::for_adapter(report.info.device_type),
            adapter: report,
            errors,
            submits: Default::default(),
            waits: Default::default(),
        })
    }

    /// Fails with the first error wgpu reported since the last call, if any.
    pub fn take_error(&self) -> anyhow::Result<()> {
        let first = self.errors.lock().unwrap().drain(..).next();
        match first {
            Some(e) => anyhow::bail!("GPU error: {e}"),
            None => Ok(()),
        }
    }

    /// Submits one command buffer (every submission goes through here, and is counted).
    pub fn submit(&self, commands: wgpu::CommandBuffer) {
        self.submits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.queue.submit([commands]);
    }

    /// Whether kernels can be timed on the device itself (timestamp queries).
    pub fn has_timestamps(&self) -> bool {
        self.device.features().contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Runs the compute pass `record` encodes, alone, and returns the seconds the device spent
    /// on it, from timestamps written at the pass's start and end; `None` on an adapter without
    /// timestamp queries (then only the host's clock can time it, launch and wait included).
    pub fn timed_pass(&self, record: impl FnOnce(&mut wgpu::ComputePass)) -> anyhow::Result<Option<f64>> {
        let mut record = Some(record);
        let spans = self.timed_passes(1, |_, pass| (record.take().expect("one pass"))(pass))?;
        Ok(spans.map(|s| s[0].1 - s[0].0))
    }

    /// Runs `n` compute passes in one submission, pass `i` encoded by `record(i, …)`, and returns
    /// each pass's start and end on the device's clock, in seconds from the first start; `None`
    /// on an adapter without timestamp queries.
    pub fn timed_passes(
        &self,
        n: usize,
        mut record: impl FnMut(usize, &mut wgpu::ComputePass),
    ) -> anyhow::Result<Option<Vec<(f64, f64)>>> {
        if !self.has_timestamps() || n == 0 {
            return Ok(None);
        }
        self.wait()?;
        let count = 2 * n as u32;
        let set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("pass timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count,
        });
        let size = 8 * count as u64;
        let buffer = |usage| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("pass timestamps"),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let resolved = buffer(wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC);
        let staging = buffer(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        for i in 0..n {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("timed"),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: &set,
                    beginning_of_pass_write_index: Some(2 * i as u32),
                    end_of_pass_write_index: Some(2 * i as u32 + 1),
                }),
            });
            record(i, &mut pass);
        }
        encoder.resolve_query_set(&set, 0..count, &resolved, 0);
        encoder.copy_buffer_to_buffer(&resolved, 0, &staging, 0, size);
        self.submit(encoder.finish());
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()?.map_err(|e| anyhow::anyhow!("reading timestamps: {e}"))?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(
            &staging.get_mapped_range(..).map_err(|e| anyhow::anyhow!("reading timestamps: {e}"))?,
        );
        staging.unmap();
        let period = self.queue.get_timestamp_period() as f64 * 1e-9;
        let first = ticks[0];
        Ok(Some(
            ticks
                .chunks_exact(2)
                .map(|t| {
                    (t[0].saturating_sub(first) as f64 * period, t[1].saturating_sub(first) as f64 * period)
                })
                .collect(),
        ))
    }

    /// Waits until the GPU has finished everything submitted so far (every wait goes through
    /// here, and is counted).
    pub fn wait(&self) -> anyhow::Result<()> {
        self.waits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| anyhow::anyhow!("GPU poll failed: {e}"))?;
        self.take_error()
    }
}
