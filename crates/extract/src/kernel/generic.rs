//! Every op with burn's own tensor ops ([`featx_graph::OpDef::eval`], in each op's file): the
//! kernel for any device, and the reference the specialised kernels are tested against.

use featx_graph::{Cx, Layer, Op};

use super::{Kernel, NodeSpec};
use crate::{Feature, Mode};

/// One node computed with burn's ops, with the ReLU and residual add the planner fused into
/// it.
#[derive(Debug)]
pub(super) struct Generic {
    op: Op,
    layer: Option<Layer>,
    mode: Mode,
    relu: bool,
    /// The add after it folded in: its last input is added to its output.
    residual: bool,
}

impl Generic {
    pub(super) fn new(spec: &NodeSpec) -> Self {
        Self {
            op: spec.op.clone(),
            layer: spec.layer.cloned(),
            mode: spec.mode,
            relu: spec.relu,
            residual: spec.residual,
        }
    }
}

impl Kernel for Generic {
    fn run(&self, mut inputs: Vec<Feature>, out_shape: &[usize]) -> Result<Feature, String> {
        let identity = match self.residual {
            true => Some(inputs.pop().ok_or("no residual value")?),
            false => None,
        };
        let cx = Cx {
            layer: self.layer.as_ref(),
            mode: self.mode,
            out_shape,
        };
        let mut value = self.op.def().eval(&cx, inputs)?;
        if let Some(identity) = identity {
            let shapes = (value.dims(), identity.dims());
            value = value
                .broadcast_add(identity)
                .ok_or_else(|| format!("cannot add shapes {:?} and {:?}", shapes.0, shapes.1))?;
        }
        Ok(if self.relu { value.relu() } else { value })
    }

    fn name(&self) -> &'static str {
        "burn"
    }
}
