//! The float precision a GPU computes in. Parameters are cast once, when a plan is made (after
//! BatchNorm folding, which stays in float32), the input when it reaches the device, and every
//! returned value back to float32: callers see float32 whatever the device computed in.
//! `mixed` keeps float32 tensors and lets featx's GPU convolution take its products in float16
//! on tensor cores.

use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::FloatDType;

use crate::{ExtractError, Result};

/// The precision of a run: `f32` (the default, torchvision's numbers to its parity tolerance)
/// or a reduced one a GPU runs faster in, with its own documented tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// IEEE float32 throughout.
    #[default]
    F32,
    /// IEEE float16 storage and arithmetic (parameters, activations, accumulation where the
    /// kernel accumulates in its input type). Every node of ResNet18 stays within 3% of its
    /// largest magnitude of torchvision's float32 values (docs/src/gpu.md).
    F16,
    /// float32 storage and arithmetic, except that featx's GPU convolution multiplies float16
    /// roundings of its operands on cooperative matrices (tensor cores) and sums in float32
    /// where the adapter has them: TF32's idea (float16 keeps TF32's 10-bit mantissa, in a
    /// narrower range), as PyTorch uses TF32 for float32 convolutions on CUDA. Where the adapter
    /// has no cooperative matrices for float16, or with burn's convolutions, it is float32.
    /// Every node of ResNet18 stays within 1% of its largest magnitude of torchvision's values.
    Mixed,
}

impl Precision {
    /// Every precision, in the order the command line lists them.
    pub const ALL: [Precision; 3] = [Precision::F32, Precision::F16, Precision::Mixed];

    /// The name on the command line (`f32`, `f16`, `mixed`).
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Mixed => "mixed",
        }
    }

    /// burn's float type for the tensors: parameters, activations, the values kernels write.
    pub fn dtype(self) -> FloatDType {
        match self {
            Precision::F32 | Precision::Mixed => FloatDType::F32,
            Precision::F16 => FloatDType::F16,
        }
    }

    /// The float type featx's GPU convolution may take its products in (on cooperative
    /// matrices, where the adapter has them for it).
    pub fn multiply_dtype(self) -> FloatDType {
        match self {
            Precision::F32 => FloatDType::F32,
            Precision::F16 | Precision::Mixed => FloatDType::F16,
        }
    }

    /// Whether `device` can compute in this precision: float32 everywhere; a reduced one on GPU
    /// devices whose adapter supports its storage type (burn's `supports_dtype`; `mixed`
    /// stores float32, and falls back to float32 products where float16 ones are not to be
    /// had). featx's CPU kernels are float32 kernels, so the CPU backends take float32 only.
    pub fn check(self, device: &Device) -> Result<()> {
        if self == Precision::F32 {
            return Ok(());
        }
        let reason = if crate::device::is_cpu(device) {
            Some("reduced precision runs on GPU devices only; on the CPU use f32".to_string())
        } else if !device.supports_dtype(self.dtype()) {
            Some(format!(
                "the adapter has no {} arithmetic; use f32",
                self.name()
            ))
        } else {
            None
        };
        match reason {
            None => Ok(()),
            Some(reason) => Err(ExtractError::PrecisionUnsupported {
                precision: self.name().into(),
                reason,
            }),
        }
    }

    /// `tensor` in this precision (unchanged when it already is).
    pub fn cast<const D: usize>(self, tensor: Tensor<D>) -> Tensor<D> {
        if tensor.dtype() == self.dtype().into() {
            tensor
        } else {
            tensor.cast(self.dtype())
        }
    }

    /// `module` with every float parameter and buffer in this precision.
    pub fn cast_module<M: Module>(self, module: M) -> M {
        module.map(&mut CastParams(self))
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Precision {
    type Err = ExtractError;

    fn from_str(s: &str) -> Result<Self> {
        Precision::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| ExtractError::PrecisionUnsupported {
                precision: s.into(),
                reason: "unknown precision; expected f32, f16 or mixed".into(),
            })
    }
}

/// Casts a value of any rank (`Feature::map_float`).
impl featx_graph::TensorFn for Precision {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        self.cast(t)
    }
}

/// Casts every float parameter (and running statistic) a module holds.
struct CastParams(Precision);

impl ModuleMapper for CastParams {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let precision = self.0;
        param.map(|t| precision.cast(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::DType;

    #[test]
    fn names_round_trip_and_unknown_is_typed() {
        for p in Precision::ALL {
            assert_eq!(p.name().parse::<Precision>().unwrap(), p);
        }
        let err = "bf16".parse::<Precision>().unwrap_err();
        assert!(
            matches!(&err, ExtractError::PrecisionUnsupported { precision, .. } if precision == "bf16"),
            "{err}"
        );
    }

    #[test]
    fn the_cpu_takes_float32_only() {
        let cpu = Device::flex();
        assert!(Precision::F32.check(&cpu).is_ok());
        for reduced in [Precision::F16, Precision::Mixed] {
            let err = reduced.check(&cpu).unwrap_err();
            assert!(
                matches!(&err, ExtractError::PrecisionUnsupported { precision, .. } if *precision == reduced.name()),
                "{err}"
            );
        }
    }

    #[test]
    fn cast_module_casts_parameters_and_running_statistics() {
        use burn::nn::BatchNormConfig;
        let device = Device::flex();
        let bn = BatchNormConfig::new(3).init(&device);
        let bn = Precision::F16.cast_module(bn);
        assert_eq!(bn.gamma.val().dtype(), DType::F16);
        assert_eq!(bn.running_var.value().dtype(), DType::F16);
    }
}
