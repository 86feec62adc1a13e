use burn::prelude::*;
use burn::tensor::ops::PadMode as BurnPadMode;
use serde::Serialize;

use super::args::{first_shape, single_any, tensor};
use super::{Cx, OpDef};
use crate::{Feature, TensorFn, Value};

/// How [`Pad`] fills the new entries (ONNX `Pad`'s `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum PadMode {
    /// This value (`constant`).
    Constant(f32),
    /// The entries mirrored about the edge, the edge itself not repeated (`reflect`): each
    /// pad must be below the axis' size.
    Reflect,
    /// The edge entry repeated (`edge`).
    Edge,
}

/// Padding of every axis (ONNX `Pad` with constant, non-negative pads; `F.pad`).
///
/// # Shapes
/// Any shape to the same with `before + after` added to each axis; `pads` has one pair per
/// axis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pad {
    /// `(before, after)` for each axis of the input.
    pub pads: Vec<(usize, usize)>,
    /// How the new entries are filled.
    pub mode: PadMode,
}

impl Pad {
    /// The padded shape, or why the pads do not fit `shape`.
    fn out_shape(&self, shape: &[usize]) -> Result<Vec<usize>, String> {
        if self.pads.len() != shape.len() {
            return Err(format!(
                "{} pads for shape {shape:?} of rank {}",
                self.pads.len(),
                shape.len()
            ));
        }
        let reflect = self.mode == PadMode::Reflect;
        if reflect
            && let Some(axis) =
                (0..shape.len()).find(|&i| self.pads[i].0.max(self.pads[i].1) >= shape[i])
        {
            return Err(format!(
                "cannot reflect-pad axis {axis} of shape {shape:?} by {:?}: a pad must be below \
                 the size",
                self.pads[axis]
            ));
        }
        Ok(shape
            .iter()
            .zip(&self.pads)
            .map(|(size, (before, after))| size + before + after)
            .collect())
    }
}

impl OpDef for Pad {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        tensor(self.out_shape(first_shape(inputs)?)?)
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let x = single_any(inputs)?;
        self.out_shape(&x.dims())?;
        Ok(x.map_float(self.clone()))
    }
}

impl TensorFn for Pad {
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D> {
        let mode = match self.mode {
            PadMode::Constant(value) => BurnPadMode::Constant(value),
            PadMode::Reflect => BurnPadMode::Reflect,
            PadMode::Edge => BurnPadMode::Edge,
        };
        t.pad(self.pads.as_slice(), mode)
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::testing::{feature, run};
    use super::*;

    #[test]
    fn pad_fills_as_onnx() {
        // [1, 3] = [[1, 2, 3]], padded (0, 0) on axis 0 and (2, 1) on axis 1.
        let x = || feature(vec![1.0, 2.0, 3.0], &[1, 3]);
        let pad = |mode| Pad {
            pads: vec![(0, 0), (2, 1)],
            mode,
        };
        let cases = [
            (PadMode::Constant(-1.0), [-1.0, -1.0, 1.0, 2.0, 3.0, -1.0]),
            (PadMode::Reflect, [3.0, 2.0, 1.0, 2.0, 3.0, 2.0]),
            (PadMode::Edge, [1.0, 1.0, 1.0, 2.0, 3.0, 3.0]),
        ];
        for (mode, want) in cases {
            let (shape, got) = run(&pad(mode), vec![x()]).expect("pads");
            assert_eq!(shape, [1, 6]);
            assert_eq!(got, want, "{mode:?}");
        }
        // Rows too: [[0, 0, 0], [1, 2, 3]].
        let op = Pad {
            pads: vec![(1, 0), (0, 0)],
            mode: PadMode::Constant(0.0),
        };
        assert_eq!(run(&op, vec![x()]).expect("pads").1, [0.0, 0.0, 0.0, 1.0, 2.0, 3.0]);
        let bad = Pad {
            pads: vec![(0, 0), (3, 0)],
            mode: PadMode::Reflect,
        };
        assert!(bad.infer(&[&Value::Tensor(vec![1, 3])]).is_err());
        assert!(pad(PadMode::Edge).infer(&[&Value::Tensor(vec![3])]).is_err());
    }
}
