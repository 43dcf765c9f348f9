//! Where a model runs: the device a user asks for (`DeviceKind`), the executor it opens
//! (`Executor`: the CPU path, or an open GPU), and the adapter choice behind it. Above `gpu` and
//! `cpu`, below `train`: `report`, `experiment` and the CLI pick a device here, not in `gpu`.

pub use crate::gpu::check_backend_env;
use crate::gpu::{adapters, instance, AdapterReport, GpuContext};

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
    /// The wgpu backends this kind looks on (every one, honouring `WGPU_BACKEND`, for
    /// `Auto` and `Cpu`).
    pub fn backends(self) -> wgpu::Backends {
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

/// Every adapter wgpu finds for `kind`, as `gpu-fmnist devices` shows it.
pub fn list_adapters(kind: DeviceKind) -> Vec<AdapterReport> {
    adapters(kind.backends()).iter().map(AdapterReport::of).collect()
}

/// Opens the first adapter on `kind`'s backends (lavapipe here); for tests and tools.
pub fn open_gpu(kind: DeviceKind) -> anyhow::Result<GpuContext> {
    match Executor::open(kind, None)? {
        (Executor::Gpu(ctx), _) => Ok(*ctx),
        (Executor::Cpu { .. }, _) => anyhow::bail!("no GPU adapter for {kind:?}"),
    }
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
