use serde::Serialize;

use super::args::{first, single_any};
use super::{Chunk, Cx, OpDef, Slice};
use crate::{Feature, Value};

/// `pieces[index]` of an `x.chunk(chunks, dim)` tuple (FX `operator.getitem`): the piece as
/// a tensor. The [`Chunk`] node evaluates to the whole `x`, so this slices it.
///
/// # Shapes
/// A [`Chunk`] tuple to its `index`th tensor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChunkItem {
    /// The chunk's `chunks`.
    pub chunks: usize,
    /// The chunk's `dim`.
    pub dim: usize,
    /// Which piece.
    pub index: usize,
}

impl OpDef for ChunkItem {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        match first(inputs) {
            Value::Tuple(items) => match items.get(self.index) {
                Some(item @ Value::Tensor(_)) => Ok(item.clone()),
                _ => Err(format!(
                    "index {} of {} is no tensor",
                    self.index,
                    first(inputs)
                )),
            },
            other => Err(format!("cannot index {other}")),
        }
    }

    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let x = single_any(inputs)?;
        let size = x.dims().get(self.dim).copied().unwrap_or(0);
        let Some(&(start, end)) = Chunk::bounds(self.chunks, size).get(self.index) else {
            return Err(format!(
                "no piece {} of a dimension of {size} cut in {}",
                self.index, self.chunks
            ));
        };
        let slice = Slice {
            axes: vec![self.dim],
            starts: vec![start],
            ends: vec![end],
            steps: vec![1],
        };
        slice.eval(cx, vec![x])
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::testing::feature;
    use super::super::{Cx, Kind};
    use super::*;
    use crate::Mode;

    #[test]
    fn items_are_the_pieces_of_the_chunked_tensor() {
        // [1, 5, 1]: 0..5 along dim 1, cut in 3: [0, 1], [2, 3], [4].
        let x = Value::Tensor(vec![1, 5, 1]);
        let chunk = Chunk { chunks: 3, dim: 1 };
        let pieces = chunk.infer(&[&x]).unwrap();
        let mut got = Vec::new();
        for index in 0..3 {
            let item = ChunkItem {
                chunks: 3,
                dim: 1,
                index,
            };
            let shape = item
                .infer(&[&pieces])
                .unwrap()
                .tensor_shape()
                .unwrap()
                .to_vec();
            let cx = Cx {
                layer: None,
                mode: Mode::Eval,
                out_shape: &shape,
            };
            let whole = feature((0..5).map(|v| v as f32).collect(), &[1, 5, 1]);
            let carried = chunk.eval(&cx, vec![whole]).unwrap();
            let out = item.eval(&cx, vec![carried]).unwrap();
            assert_eq!(out.dims(), shape);
            got.push(out.to_vec_f32().unwrap());
        }
        assert_eq!(got, [vec![0.0, 1.0], vec![2.0, 3.0], vec![4.0]]);
        let past = ChunkItem {
            chunks: 3,
            dim: 1,
            index: 3,
        };
        assert!(past.infer(&[&pieces]).is_err());
        assert!(past.infer(&[&x]).is_err());
        assert_eq!(past.kind(&[Kind::Tuple]), Kind::Tensor);
    }
}
