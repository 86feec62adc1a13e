use burn::prelude::Device;

use crate::{ExtractError, Result};

/// A backend named on the command line or in `BURN_DEVICE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// burn-flex, the pure-Rust CPU backend.
    Cpu,
    /// burn-ndarray (deprecated upstream), kept for comparison.
    Ndarray,
    /// burn's wgpu backend.
    Wgpu,
}

impl std::str::FromStr for DeviceChoice {
    type Err = ExtractError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" | "flex" => Ok(DeviceChoice::Cpu),
            "ndarray" => Ok(DeviceChoice::Ndarray),
            "wgpu" | "gpu" => Ok(DeviceChoice::Wgpu),
            other => Err(ExtractError::DeviceUnavailable {
                name: other.to_string(),
                reason: "unknown device; expected cpu, ndarray, wgpu or auto".into(),
            }),
        }
    }
}

/// The Burn device for `choice`, or a typed error if this build does not include it.
pub fn select_device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::flex()),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        DeviceChoice::Ndarray => Ok(Device::ndarray()),
        #[cfg(not(feature = "ndarray"))]
        DeviceChoice::Ndarray => Err(ExtractError::DeviceUnavailable {
            name: "ndarray".into(),
            reason: "this build has no ndarray backend (build featx with its `ndarray` feature)"
                .into(),
        }),
        #[cfg(feature = "wgpu-plain")]
        DeviceChoice::Wgpu => probe_wgpu(),
        #[cfg(not(feature = "wgpu-plain"))]
        DeviceChoice::Wgpu => Err(ExtractError::DeviceUnavailable {
            name: "wgpu".into(),
            reason: "this build has no wgpu backend (build featx with its `wgpu` feature)".into(),
        }),
    }
}

/// The wgpu device, after one small computation proves an adapter works.
///
/// burn creates wgpu devices lazily and panics on first use when no adapter exists (or when
/// wgpu falls back to a GL driver that lacks a shader capability): the probe turns that into a
/// typed error instead of a crash or a silent CPU fallback.
#[cfg(feature = "wgpu-plain")]
fn probe_wgpu() -> Result<Device> {
    use burn::prelude::Tensor;
    use burn::tensor::DeviceKind;
    root_gpu_cache();
    let device = Device::wgpu(DeviceKind::DefaultDevice);
    let probe = device.clone();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(move || {
        let x = Tensor::<1>::from_floats([1.0, 2.0], &probe);
        (x * 2.0).into_data().try_to_vec::<f32>()
    });
    std::panic::set_hook(hook);
    match outcome {
        Ok(Ok(values)) if values == [2.0, 4.0] => Ok(device),
        Ok(Ok(values)) => Err(ExtractError::DeviceUnavailable {
            name: "wgpu".into(),
            reason: format!("the adapter computed 2 * [1, 2] = {values:?}"),
        }),
        Ok(Err(e)) => Err(ExtractError::DeviceUnavailable {
            name: "wgpu".into(),
            reason: format!("{e:?}"),
        }),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the wgpu backend failed to start".into());
            Err(ExtractError::DeviceUnavailable {
                name: "wgpu".into(),
                reason: format!(
                    "no usable GPU adapter ({message}); install a Vulkan driver (on Linux \
                     without a GPU: mesa-vulkan-drivers for the lavapipe software driver), or \
                     run on the CPU"
                ),
            })
        }
    }
}

/// What this build's GPU backend has, for reports: `none`, `plain` (burn's wgpu alone), or the
/// parts it has joined by `+` (`autotune+fusion`, `autotune+fusion+spirv`).
pub const GPU_BUILD: &str = if !cfg!(feature = "wgpu-plain") {
    "none"
} else if cfg!(feature = "wgpu") {
    "autotune+fusion+spirv"
} else if cfg!(feature = "wgpu-autotune") && cfg!(feature = "wgpu-fusion") {
    "autotune+fusion"
} else if cfg!(feature = "wgpu-autotune") {
    "autotune"
} else if cfg!(feature = "wgpu-fusion") {
    "fusion"
} else {
    "plain"
};

/// Where GPU autotuning results are kept between processes: `$FEATX_CACHE_DIR/gpu`, else the
/// platform's cache folder (`~/.cache/featx/gpu` on Linux), beside featx's weights.
pub fn gpu_cache_dir() -> std::path::PathBuf {
    match std::env::var_os("FEATX_CACHE_DIR") {
        Some(dir) if !dir.is_empty() => std::path::PathBuf::from(dir).join("gpu"),
        #[cfg(feature = "wgpu-plain")]
        _ => dirs::cache_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("featx")
            .join("gpu"),
        #[cfg(not(feature = "wgpu-plain"))]
        _ => std::env::temp_dir().join("featx").join("gpu"),
    }
}

/// Points CubeCL's persistent caches (autotune results: which convolution and matmul kernel
/// won for each shape on this adapter) at [`gpu_cache_dir`], so a second process starts
/// tuned. CubeCL's own default is a `target/` folder found from the working directory, which
/// an installed binary does not have. Done once, before the first device is made; the
/// configuration is loaded first, as loading it would set its own root.
#[cfg(feature = "wgpu-plain")]
fn root_gpu_cache() {
    use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = CubeClRuntimeConfig::get();
        burn::cubecl::environment::set_root(gpu_cache_dir());
    });
}

/// The adapter burn's default wgpu device runs on, as `name (backend, type, driver)`, found the
/// way burn finds it: the first graphics API with an adapter, high-performance preference.
/// `None` when no adapter exists or this build has no wgpu backend.
pub fn wgpu_adapter() -> Option<String> {
    #[cfg(feature = "wgpu-plain")]
    {
        let info = find_adapter()?.get_info();
        let driver = [info.driver.as_str(), info.driver_info.as_str()].join(" ");
        Some(format!(
            "{} ({:?}, {:?}, {})",
            info.name,
            info.backend,
            info.device_type,
            driver.trim()
        ))
    }
    #[cfg(not(feature = "wgpu-plain"))]
    None
}

/// The largest single buffer, in bytes, `device` can hand a kernel (for wgpu the adapter's
/// storage-binding and buffer limits, e.g. 128 MiB on lavapipe); `None` where no such limit
/// applies (the CPU backends).
pub fn max_buffer_bytes(device: &Device) -> Option<u64> {
    if is_cpu(device) {
        return None;
    }
    #[cfg(feature = "wgpu-plain")]
    {
        let limits = find_adapter()?.limits();
        Some(
            limits
                .max_storage_buffer_binding_size
                .min(limits.max_buffer_size),
        )
    }
    #[cfg(not(feature = "wgpu-plain"))]
    None
}

/// Whether `device` is one of the CPU backends (burn-flex, burn-ndarray).
pub(crate) fn is_cpu(device: &Device) -> bool {
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    if *device == Device::ndarray() {
        return true;
    }
    *device == Device::flex()
}

/// The adapter burn's wgpu device uses: the first graphics API with one, high-performance
/// preference.
#[cfg(feature = "wgpu-plain")]
fn find_adapter() -> Option<wgpu::Adapter> {
    use wgpu::{Backend, Instance, InstanceDescriptor, PowerPreference, RequestAdapterOptions};
    [Backend::Vulkan, Backend::Metal, Backend::Dx12, Backend::Gl]
        .into_iter()
        .find_map(|backend| {
            let instance = Instance::new(InstanceDescriptor {
                backends: backend.into(),
                ..InstanceDescriptor::new_without_display_handle()
            });
            let options = RequestAdapterOptions {
                power_preference: PowerPreference::HighPerformance,
                ..RequestAdapterOptions::default()
            };
            futures_lite::future::block_on(instance.request_adapter(&options)).ok()
        })
}
