use serde::Serialize;

use super::args::{first_shape, single_any};
use super::{Cx, Kind, OpDef};
use crate::{Feature, Value};

/// `x.chunk(chunks, dim)`: a tuple of views of `x` along `dim`, each `ceil(size / chunks)`
/// long but the last (ShuffleNetV2's `x1, x2 = x.chunk(2, dim=1)`). FX records the tuple as
/// one node and each piece taken from it as a [`super::ChunkItem`] `getitem`; the tuple node
/// evaluates to `x` itself, which each item slices.
///
/// # Shapes
/// A tensor to a tuple of as many tensors as `torch.chunk` gives (at most `chunks`), equal
/// to it but along `dim`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chunk {
    /// How many pieces are asked for.
    pub chunks: usize,
    /// The dimension split.
    pub dim: usize,
}

impl Chunk {
    /// Each piece's `(start, end)` along `dim` of size `size`, as `torch.chunk` cuts it.
    pub(crate) fn bounds(chunks: usize, size: usize) -> Vec<(usize, usize)> {
        let step = size.div_ceil(chunks.max(1)).max(1);
        (0..size)
            .step_by(step)
            .map(|start| (start, (start + step).min(size)))
            .collect()
    }
}

impl OpDef for Chunk {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let shape = first_shape(inputs)?;
        if self.chunks == 0 {
            return Err("chunk expects at least one chunk".into());
        }
        let Some(&size) = shape.get(self.dim) else {
            return Err(format!("no dimension {} in shape {shape:?}", self.dim));
        };
        let pieces = Self::bounds(self.chunks, size)
            .into_iter()
            .map(|(start, end)| {
                let mut piece = shape.to_vec();
                piece[self.dim] = end - start;
                Value::Tensor(piece)
            })
            .collect();
        Ok(Value::Tuple(pieces))
    }

    fn eval(&self, _: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        // The tuple is carried as the tensor it cuts: each `getitem` takes its own slice.
        single_any(inputs)
    }

    fn kind(&self, _: &[Kind]) -> Kind {
        Kind::Tuple
    }

    fn non_tensor(&self, _: &[Kind]) -> &'static str {
        "a tuple (the pieces of `x.chunk`); each piece is a `getitem` node after it"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_cuts_as_torch_does() {
        let infer =
            |chunks, shape: Vec<usize>| Chunk { chunks, dim: 1 }.infer(&[&Value::Tensor(shape)]);
        let half = Value::Tensor(vec![2, 58, 7, 7]);
        assert_eq!(
            infer(2, vec![2, 116, 7, 7]),
            Ok(Value::Tuple(vec![half.clone(), half]))
        );
        // torch.arange(5).chunk(3) is [0, 1], [2, 3], [4]; arange(4).chunk(3) only two pieces.
        assert_eq!(Chunk::bounds(3, 5), [(0, 2), (2, 4), (4, 5)]);
        assert_eq!(Chunk::bounds(3, 4), [(0, 2), (2, 4)]);
        assert!(infer(0, vec![2, 4]).is_err());
        assert!(
            Chunk { chunks: 2, dim: 2 }
                .infer(&[&Value::Tensor(vec![2, 4])])
                .is_err()
        );
        assert_eq!(
            Chunk { chunks: 2, dim: 1 }.kind(&[Kind::Tensor]),
            Kind::Tuple
        );
    }
}
