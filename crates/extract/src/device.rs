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
                reason: "unknown device; expected cpu, ndarray or wgpu".into(),
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
            reason: "this build has no ndarray backend; rebuild with `--features ndarray`".into(),
        }),
        DeviceChoice::Wgpu => Err(ExtractError::DeviceUnavailable {
            name: "wgpu".into(),
            reason: "this build has no wgpu backend; use --device cpu".into(),
        }),
    }
}
