//! Finding an adapter and opening a device: kept apart from the work so that tests and tools
//! can open one device and hand it to everything that needs it.

use std::sync::{Arc, Mutex};

/// Which executor runs the model: a wgpu backend, the CPU reference, or a choice made for you.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// A hardware GPU if there is one (honouring `WGPU_BACKEND`), otherwise the CPU reference.
    Auto,
    /// The CPU reference path (ndarray); needs no adapter.
    Cpu,
    Vulkan,
    Metal,
    Dx12,
    Gl,
}

impl DeviceKind {
    fn backends(self) -> wgpu::Backends {
        match self {
            DeviceKind::Vulkan => wgpu::Backends::VULKAN,
            DeviceKind::Metal => wgpu::Backends::METAL,
            DeviceKind::Dx12 => wgpu::Backends::DX12,
            DeviceKind::Gl => wgpu::Backends::GL,
            DeviceKind::Auto | DeviceKind::Cpu => wgpu::Backends::all().with_env(),
        }
    }

    fn install_hint(self) -> &'static str {
        match self {
            DeviceKind::Vulkan => "install a Vulkan driver and loader (on Debian: `sudo apt-get install mesa-vulkan-drivers libvulkan1`, or run ./setup.sh)",
            DeviceKind::Metal => "Metal exists on macOS and iOS only",
            DeviceKind::Dx12 => "DirectX 12 exists on Windows 10 and later only",
            DeviceKind::Gl => "install an OpenGL ES / EGL driver (on Debian: `sudo apt-get install libegl1 libgles2 libgl1-mesa-dri`)",
            DeviceKind::Auto | DeviceKind::Cpu => "install a GPU driver, or use --device cpu",
        }
    }
}

/// One adapter as `gpu-fmnist devices` shows it.
#[derive(Debug, Clone)]
pub struct AdapterReport {
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
}

impl AdapterReport {
    fn of(adapter: &wgpu::Adapter) -> Self {
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

fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    desc.flags = desc.flags.with_env();
    wgpu::Instance::new(desc)
}

/// Every adapter wgpu finds on the given backends (all of them for `Auto`/`Cpu`).
pub fn adapters(kind: DeviceKind) -> Vec<wgpu::Adapter> {
    let backends = kind.backends();
    pollster::block_on(instance(backends).enumerate_adapters(backends))
}

/// What [`adapters`] finds, as `gpu-fmnist devices` shows it.
pub fn list_adapters(kind: DeviceKind) -> Vec<AdapterReport> {
    adapters(kind).iter().map(AdapterReport::of).collect()
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

/// Where a model runs: the CPU reference or an open GPU.
pub enum Executor {
    /// The ndarray path, its large products split over `threads` threads.
    Cpu {
        threads: usize,
    },
    Gpu(Box<GpuContext>),
}

impl Executor {
    /// The CPU path on every core.
    pub fn cpu() -> Executor {
        Executor::Cpu { threads: std::thread::available_parallelism().map_or(1, |n| n.get()) }
    }

    /// The CPU path with `threads` threads (the GPU is left as it is).
    pub fn with_threads(self, threads: usize) -> Executor {
        match self {
            Executor::Cpu { .. } => Executor::Cpu { threads: threads.max(1) },
            gpu => gpu,
        }
    }

    /// Opens what `kind` asks for. `adapter` (or `$WGPU_ADAPTER_NAME`) picks an adapter whose
    /// name contains it, case-insensitively. `Auto` takes a hardware GPU when there is one and
    /// otherwise the CPU path; the returned line says which.
    pub fn open(kind: DeviceKind, adapter: Option<&str>) -> anyhow::Result<(Executor, String)> {
        if kind == DeviceKind::Cpu {
            anyhow::ensure!(adapter.is_none(), "--adapter picks a GPU adapter; --device cpu uses none");
            return Ok((Executor::cpu(), "device: cpu (ndarray reference path)".into()));
        }
        check_backend_env()?;
        let filter = adapter
            .map(str::to_owned)
            .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok())
            .map(|s| s.to_lowercase());
        let backends = kind.backends();
        let inst = instance(backends);
        let all: Vec<wgpu::Adapter> = pollster::block_on(inst.enumerate_adapters(backends));
        let names: Vec<String> =
            all.iter().map(|a| format!("{} ({:?})", a.get_info().name, a.get_info().backend)).collect();
        let adapters: Vec<wgpu::Adapter> = all
            .into_iter()
            .filter(|a| filter.as_ref().is_none_or(|f| a.get_info().name.to_lowercase().contains(f)))
            .collect();
        let rank = |a: &wgpu::Adapter| match a.get_info().device_type {
            wgpu::DeviceType::DiscreteGpu => 0,
            wgpu::DeviceType::IntegratedGpu => 1,
            wgpu::DeviceType::VirtualGpu => 2,
            wgpu::DeviceType::Other => 3,
            wgpu::DeviceType::Cpu => 4,
        };
        let chosen = if kind == DeviceKind::Auto {
            // A named adapter is taken whatever it is; otherwise only real hardware.
            adapters
                .into_iter()
                .filter(|a| filter.is_some() || AdapterReport::of(a).is_hardware())
                .min_by_key(rank)
        } else {
            adapters.into_iter().min_by_key(rank)
        };
        let Some(chosen) = chosen else {
            if kind == DeviceKind::Auto {
                return Ok((Executor::cpu(), "device: cpu (auto: no hardware GPU adapter found)".into()));
            }
            if let (Some(f), false) = (&filter, names.is_empty()) {
                anyhow::bail!("no {kind:?} adapter's name contains {f:?}; there are: {}", names.join(", "));
            }
            anyhow::bail!(
                "no {kind:?} adapter found; {} (`gpu-fmnist devices` lists what wgpu sees)",
                kind.install_hint()
            );
        };
        let ctx = GpuContext::from_adapter(&chosen)?;
        let line = format!(
            "device: {} ({:?}, {:?}{})",
            ctx.adapter.info.name,
            ctx.adapter.info.backend,
            ctx.adapter.info.device_type,
            if kind == DeviceKind::Auto { ", chosen by auto" } else { "" }
        );
        Ok((Executor::Gpu(Box::new(ctx)), line))
    }
}

impl GpuContext {
    /// Opens the first adapter on `kind`'s backends (lavapipe here); for tests and tools.
    pub fn open(kind: DeviceKind) -> anyhow::Result<Self> {
        match Executor::open(kind, None)? {
            (Executor::Gpu(ctx), _) => Ok(*ctx),
            (Executor::Cpu { .. }, _) => anyhow::bail!("no GPU adapter for {kind:?}"),
        }
    }

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

/// wgpu's error texts span several lines; our errors are one.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
