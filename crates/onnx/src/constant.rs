//! Values known when the file is opened: initializers, `Constant` nodes and the shape
//! arithmetic on them (`Shape -> Gather -> Concat -> Reshape`), computed on the host once.
//!
//! Shape arithmetic is a few dozen integers per model, so it is plain Rust over `Vec`s rather
//! than tensor ops. Structural ops (gather, slice, concat, transpose, expand) are all "take
//! these elements in this order", written once as [`Const::take`].

/// What a constant's elements are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// Any floating-point type, held as `f32`.
    Float,
    /// Any integer type, held as `i64`.
    Int,
    /// Booleans, held as 0 and 1.
    Bool,
}

/// The elements, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// Float elements.
    F(Vec<f32>),
    /// Integer and boolean elements.
    I(Vec<i64>),
}

/// A host tensor known before any input is seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Const {
    /// Element type.
    pub dtype: Dtype,
    /// Shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// Elements.
    pub data: Data,
    /// Which elements are the input's batch size (read from a `Shape` of a tensor whose first
    /// dimension is the batch): a reshape that keeps the batch stays valid for any batch.
    pub batch: Vec<bool>,
}

impl Const {
    /// A float constant.
    pub fn floats(shape: Vec<usize>, values: Vec<f32>) -> Const {
        let n = values.len();
        Const {
            dtype: Dtype::Float,
            shape,
            data: Data::F(values),
            batch: vec![false; n],
        }
    }

    /// An integer (or, with `Dtype::Bool`, boolean) constant.
    pub fn ints(dtype: Dtype, shape: Vec<usize>, values: Vec<i64>) -> Const {
        let n = values.len();
        Const {
            dtype,
            shape,
            data: Data::I(values),
            batch: vec![false; n],
        }
    }

    /// A rank-1 int64 constant.
    pub fn vector(values: Vec<i64>) -> Const {
        Const::ints(Dtype::Int, vec![values.len()], values)
    }

    /// Element count.
    pub fn len(&self) -> usize {
        match &self.data {
            Data::F(v) => v.len(),
            Data::I(v) => v.len(),
        }
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as integers (floats truncated).
    pub fn as_ints(&self) -> Vec<i64> {
        match &self.data {
            Data::F(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I(v) => v.clone(),
        }
    }

    /// The elements as floats.
    pub fn as_floats(&self) -> Vec<f32> {
        match &self.data {
            Data::F(v) => v.clone(),
            Data::I(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// The one element of a scalar or one-element tensor.
    pub fn scalar_f32(&self) -> Option<f32> {
        (self.len() == 1).then(|| self.as_floats()[0])
    }

    /// The elements at flat `indices`, in that order, as a tensor of `shape`.
    pub fn take(&self, indices: &[usize], shape: Vec<usize>) -> Const {
        let data = match &self.data {
            Data::F(v) => Data::F(indices.iter().map(|&i| v[i]).collect()),
            Data::I(v) => Data::I(indices.iter().map(|&i| v[i]).collect()),
        };
        Const {
            dtype: self.dtype,
            shape,
            data,
            batch: indices.iter().map(|&i| self.batch[i]).collect(),
        }
    }

    /// The same elements in another shape.
    pub fn reshaped(mut self, shape: Vec<usize>) -> Const {
        self.shape = shape;
        self
    }

    /// Casts to `dtype` (float to int truncates, as ONNX's `Cast`).
    pub fn cast(&self, dtype: Dtype) -> Const {
        let mut out = match dtype {
            Dtype::Float => Const::floats(self.shape.clone(), self.as_floats()),
            Dtype::Int => Const::ints(Dtype::Int, self.shape.clone(), self.as_ints()),
            Dtype::Bool => Const::ints(
                Dtype::Bool,
                self.shape.clone(),
                self.as_floats()
                    .iter()
                    .map(|&x| i64::from(x != 0.0))
                    .collect(),
            ),
        };
        out.batch = self.batch.clone();
        out
    }

    /// Concatenates along `axis`.
    pub fn concat(parts: &[Const], axis: usize) -> Option<Const> {
        let first = parts.first()?;
        let mut shape = first.shape.clone();
        shape[axis] = parts
            .iter()
            .map(|p| p.shape.get(axis).copied().unwrap_or(0))
            .sum();
        let outer: usize = shape[..axis].iter().product();
        let mut data_f = Vec::new();
        let mut data_i = Vec::new();
        let mut batch = Vec::new();
        let float = parts.iter().any(|p| p.dtype == Dtype::Float);
        for o in 0..outer {
            for p in parts {
                if p.shape.len() != shape.len() {
                    return None;
                }
                let inner: usize = p.shape[axis..].iter().product();
                let range = o * inner..(o + 1) * inner;
                if float {
                    data_f.extend_from_slice(&p.as_floats()[range.clone()]);
                } else {
                    data_i.extend_from_slice(&p.as_ints()[range.clone()]);
                }
                batch.extend_from_slice(&p.batch[range]);
            }
        }
        Some(Const {
            dtype: if float { Dtype::Float } else { first.dtype },
            shape,
            data: if float {
                Data::F(data_f)
            } else {
                Data::I(data_i)
            },
            batch,
        })
    }
}

/// Row-major strides of `shape`.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// The flat index in a tensor of `shape` of each element of a broadcast `out` shape.
pub fn broadcast_indices(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let lead = out.len() - shape.len();
    let st = strides(shape);
    let total: usize = out.iter().product();
    let out_st = strides(out);
    (0..total)
        .map(|flat| {
            (0..shape.len())
                .map(|d| {
                    let i = (flat / out_st[d + lead]) % out[d + lead];
                    if shape[d] == 1 { 0 } else { i * st[d] }
                })
                .sum()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_keeps_batch_marks() {
        let mut a = Const::vector(vec![2]);
        a.batch = vec![true];
        let b = Const::vector(vec![-1, 7]);
        let c = Const::concat(&[a, b], 0).unwrap();
        assert_eq!(c.as_ints(), [2, -1, 7]);
        assert_eq!(c.batch, [true, false, false]);
    }

    #[test]
    fn broadcast_repeats_size_one_axes() {
        assert_eq!(broadcast_indices(&[2, 1], &[2, 3]), [0, 0, 0, 1, 1, 1]);
        assert_eq!(broadcast_indices(&[3], &[2, 3]), [0, 1, 2, 0, 1, 2]);
    }
}
