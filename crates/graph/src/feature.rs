use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::{Gradients, TensorData};

use crate::GraphError;

/// The largest rank a [`Feature`] holds (a 4-D feature map, a 3-D token sequence, a 2-D
/// vector batch... with room for 5-D and 6-D intermediates of reshapes and permutes).
pub const MAX_RANK: usize = 6;

/// One extracted tensor, of any rank from 1 to [`MAX_RANK`].
///
/// burn's tensors carry their rank in the type (`Tensor<4>`), while a node's rank is only
/// known from the traced graph; a `Feature` holds whichever rank the node produced, and ops ask
/// for the rank they need with [`Feature::into_rank`]. Its shape is the one the graph's shape
/// inference computed.
#[derive(Debug, Clone)]
pub struct Feature(Repr);

#[derive(Debug, Clone)]
enum Repr {
    R1(Tensor<1>),
    R2(Tensor<2>),
    R3(Tensor<3>),
    R4(Tensor<4>),
    R5(Tensor<5>),
    R6(Tensor<6>),
}

/// Runs `$body` with `$t` bound to the tensor inside a `Repr`, whatever its rank.
macro_rules! with_tensor {
    ($repr:expr, $t:ident => $body:expr) => {
        match $repr {
            Repr::R1($t) => $body,
            Repr::R2($t) => $body,
            Repr::R3($t) => $body,
            Repr::R4($t) => $body,
            Repr::R5($t) => $body,
            Repr::R6($t) => $body,
        }
    };
}

/// Applies the rank-preserving `$f` to the tensor inside a `Repr`.
macro_rules! map_tensor {
    ($repr:expr, $t:ident => $body:expr) => {
        match $repr {
            Repr::R1($t) => Repr::R1($body),
            Repr::R2($t) => Repr::R2($body),
            Repr::R3($t) => Repr::R3($body),
            Repr::R4($t) => Repr::R4($body),
            Repr::R5($t) => Repr::R5($body),
            Repr::R6($t) => Repr::R6($body),
        }
    };
}

macro_rules! from_rank {
    ($($d:literal => $v:ident),*) => {$(
        impl From<Tensor<$d>> for Feature {
            fn from(t: Tensor<$d>) -> Self {
                Feature(Repr::$v(t))
            }
        }
    )*};
}
from_rank!(1 => R1, 2 => R2, 3 => R3, 4 => R4, 5 => R5, 6 => R6);

impl Feature {
    /// The tensor's shape.
    pub fn dims(&self) -> Vec<usize> {
        with_tensor!(&self.0, t => t.dims().to_vec())
    }

    /// The tensor's rank.
    pub fn rank(&self) -> usize {
        with_tensor!(&self.0, t => t.dims().len())
    }

    /// The device the tensor lives on.
    pub fn device(&self) -> Device {
        with_tensor!(&self.0, t => t.device())
    }

    /// Reads the values back from the device.
    pub fn to_data(&self) -> TensorData {
        with_tensor!(&self.0, t => t.to_data())
    }

    /// The values as `f32`, row-major, converting from the tensor's float type if needed.
    pub fn to_vec_f32(&self) -> Result<Vec<f32>, GraphError> {
        self.to_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| GraphError::ReadBack {
                shape: self.dims(),
                reason: format!("{e:?}"),
            })
    }

    /// The tensor as rank `D`, or the feature back when its rank is another.
    // `Err` hands the feature back; its size is moot.
    #[allow(clippy::result_large_err)]
    pub fn into_rank<const D: usize>(self) -> std::result::Result<Tensor<D>, Feature> {
        if self.rank() != D {
            return Err(self);
        }
        // The same primitive under another static rank: no copy, and a strided view (a
        // permute's) stays a view, where a reshape to its own shape would copy it.
        Ok(with_tensor!(self.0, t => Tensor::from_dispatch(t.into_dispatch())))
    }

    /// The same values in `shape` (row-major, as `torch.reshape`), or `None` when `shape`'s
    /// rank is above [`MAX_RANK`] or its element count differs.
    pub fn reshape(self, shape: &[usize]) -> Option<Feature> {
        if shape.iter().product::<usize>() != self.dims().iter().product::<usize>() {
            return None;
        }
        let flat: Tensor<1> = with_tensor!(self.0, t => t.reshape([-1]));
        Some(Feature(match *shape {
            [a] => Repr::R1(flat.reshape([a])),
            [a, b] => Repr::R2(flat.reshape([a, b])),
            [a, b, c] => Repr::R3(flat.reshape([a, b, c])),
            [a, b, c, d] => Repr::R4(flat.reshape([a, b, c, d])),
            [a, b, c, d, e] => Repr::R5(flat.reshape([a, b, c, d, e])),
            [a, b, c, d, e, f] => Repr::R6(flat.reshape([a, b, c, d, e, f])),
            _ => return None,
        }))
    }

    /// The axes reordered: axis `i` of the result is axis `axes[i]` of `self`, as
    /// `torch.permute`; `None` unless `axes` is a permutation of `0..rank`.
    pub fn permute(self, axes: &[usize]) -> Option<Feature> {
        let rank = self.rank();
        let mut seen = vec![false; rank];
        for &a in axes {
            if a >= rank || std::mem::replace(&mut seen[a], true) {
                return None;
            }
        }
        if axes.len() != rank {
            return None;
        }
        let axes: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
        Some(Feature(
            map_tensor!(self.0, t => t.permute(permutation(&axes))),
        ))
    }

    /// `self + other` elementwise; `None` when the shapes differ.
    pub fn checked_add(self, other: Feature) -> Option<Feature> {
        if self.dims() != other.dims() {
            return None;
        }
        Some(Feature(match (self.0, other.0) {
            (Repr::R1(a), Repr::R1(b)) => Repr::R1(a + b),
            (Repr::R2(a), Repr::R2(b)) => Repr::R2(a + b),
            (Repr::R3(a), Repr::R3(b)) => Repr::R3(a + b),
            (Repr::R4(a), Repr::R4(b)) => Repr::R4(a + b),
            (Repr::R5(a), Repr::R5(b)) => Repr::R5(a + b),
            (Repr::R6(a), Repr::R6(b)) => Repr::R6(a + b),
            // Equal shapes have equal ranks.
            _ => return None,
        }))
    }

    /// `max(x, 0)` elementwise.
    pub fn relu(self) -> Feature {
        Feature(map_tensor!(self.0, t => relu(t)))
    }

    /// The same values without a gradient tape (a no-op on devices without autodiff).
    pub fn without_autodiff(self) -> Feature {
        Feature(map_tensor!(self.0, t => t.without_autodiff()))
    }

    /// Whether the value carries a gradient tape.
    pub fn is_autodiff(&self) -> bool {
        with_tensor!(&self.0, t => t.is_autodiff())
    }

    /// A zero tensor of this shape that keeps its gradient. burn retains the gradients of
    /// leaves only; a value with a probe added (`value + 0`) passes the probe's gradient, which
    /// is the value's, to whoever reads it after a backward pass.
    pub fn gradient_probe(&self) -> Feature {
        Feature(map_tensor!(&self.0, t => t.zeros_like().autodiff().require_grad()))
    }

    /// The retained gradient of this leaf in `grads`, if it has one.
    pub fn grad(&self, grads: &Gradients) -> Option<Feature> {
        Some(Feature(map_tensor!(&self.0, t => t.grad(grads)?)))
    }

    /// Zeros of this shape, on this device, without a tape (the gradient of a value the score
    /// does not depend on).
    pub fn zeros(&self) -> Feature {
        Feature(map_tensor!(&self.0, t => t.zeros_like().without_autodiff()))
    }

    /// Applies a rank-preserving tensor function, whatever the rank (dropout masks, scaling).
    pub fn map_float(self, f: impl TensorFn) -> Feature {
        Feature(map_tensor!(self.0, t => f.apply(t)))
    }

    /// `torch.cat(features, dim)`; `None` when the ranks differ, `dim` is out of range or
    /// the other dimensions disagree.
    pub fn cat(features: Vec<Feature>, dim: usize) -> Option<Feature> {
        let first = features.first()?.dims();
        let fits = dim < first.len()
            && features.iter().all(|f| {
                let d = f.dims();
                d.len() == first.len()
                    && d.iter()
                        .zip(&first)
                        .enumerate()
                        .all(|(i, (a, b))| i == dim || a == b)
            });
        if !fits {
            return None;
        }
        macro_rules! cat_rank {
            ($v:ident) => {{
                let ts = features
                    .into_iter()
                    .map(|f| match f.0 {
                        Repr::$v(t) => Some(t),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()?;
                Repr::$v(Tensor::cat(ts, dim))
            }};
        }
        Some(Feature(match first.len() {
            1 => cat_rank!(R1),
            2 => cat_rank!(R2),
            3 => cat_rank!(R3),
            4 => cat_rank!(R4),
            5 => cat_rank!(R5),
            6 => cat_rank!(R6),
            _ => return None,
        }))
    }

    /// `self * other` elementwise, broadcasting as PyTorch does (a `[C, 1, 1]` scale times
    /// an `[N, C, H, W]` map); `None` when the shapes do not broadcast.
    pub fn broadcast_mul(self, other: Feature) -> Option<Feature> {
        self.broadcast_with(other, MulFn)
    }

    /// `self + other` elementwise, broadcasting as PyTorch does (`[N, L, D]` tokens plus a
    /// `[1, L, D]` position embedding); `None` when the shapes do not broadcast.
    pub fn broadcast_add(self, other: Feature) -> Option<Feature> {
        self.broadcast_with(other, AddFn)
    }

    /// `f(self, other)` after both are brought to one rank (leading 1s), when the shapes
    /// broadcast.
    fn broadcast_with(self, other: Feature, f: impl BinaryFn) -> Option<Feature> {
        let (a, b) = (self.dims(), other.dims());
        let rank = a.len().max(b.len());
        let padded = |s: &[usize]| {
            let mut out = vec![1; rank - s.len()];
            out.extend_from_slice(s);
            out
        };
        let (pa, pb) = (padded(&a), padded(&b));
        if pa
            .iter()
            .zip(&pb)
            .any(|(x, y)| x != y && *x != 1 && *y != 1)
        {
            return None;
        }
        self.reshape(&pa)?.zip_same_rank(other.reshape(&pb)?, f)
    }

    /// `f(self, other)` after both are brought to their broadcast shape (leading 1s, then
    /// size-1 dimensions repeated), for ops whose burn kernels want equal shapes (comparisons,
    /// `mask_where`, batched `matmul`'s operands of one rank); `None` when the shapes do not
    /// broadcast.
    pub(crate) fn zip_broadcast(self, other: Feature, f: impl BinaryFn) -> Option<Feature> {
        let shape = broadcast(&self.dims(), &other.dims())?;
        let (a, b) = (self.broadcast_to(&shape)?, other.broadcast_to(&shape)?);
        a.zip_same_rank(b, f)
    }

    /// `f(self, other)` of two features of one rank, shapes as they are.
    pub(crate) fn zip_same_rank(self, other: Feature, f: impl BinaryFn) -> Option<Feature> {
        Some(Feature(match (self.0, other.0) {
            (Repr::R1(a), Repr::R1(b)) => Repr::R1(f.apply(a, b)),
            (Repr::R2(a), Repr::R2(b)) => Repr::R2(f.apply(a, b)),
            (Repr::R3(a), Repr::R3(b)) => Repr::R3(f.apply(a, b)),
            (Repr::R4(a), Repr::R4(b)) => Repr::R4(f.apply(a, b)),
            (Repr::R5(a), Repr::R5(b)) => Repr::R5(f.apply(a, b)),
            (Repr::R6(a), Repr::R6(b)) => Repr::R6(f.apply(a, b)),
            _ => return None,
        }))
    }

    /// `x` where `condition` is nonzero, `y` elsewhere (`torch.where`), the three broadcast
    /// together; `None` when they do not broadcast.
    pub fn where_nonzero(condition: Feature, x: Feature, y: Feature) -> Option<Feature> {
        let shape = broadcast(&broadcast(&condition.dims(), &x.dims())?, &y.dims())?;
        let (c, x, y) = (
            condition.broadcast_to(&shape)?,
            x.broadcast_to(&shape)?,
            y.broadcast_to(&shape)?,
        );
        macro_rules! pick {
            ($($v:ident),*) => {
                match (c.0, x.0, y.0) {
                    $((Repr::$v(c), Repr::$v(x), Repr::$v(y)) => {
                        Repr::$v(y.mask_where(c.not_equal_elem(0.0), x))
                    })*
                    _ => return None,
                }
            };
        }
        Some(Feature(pick!(R1, R2, R3, R4, R5, R6)))
    }

    /// The values repeated to `shape` as NumPy broadcasting does (leading 1s added, size-1
    /// dimensions repeated); `None` when they do not broadcast to it.
    pub fn broadcast_to(self, shape: &[usize]) -> Option<Feature> {
        let dims = self.dims();
        let lead = shape.len().checked_sub(dims.len())?;
        let mut padded = vec![1; lead];
        padded.extend_from_slice(&dims);
        if padded == shape {
            return self.reshape(shape);
        }
        self.reshape(&padded)?.expand(shape)
    }

    /// `x.expand(shape)` to a shape of the same rank (size-1 dimensions repeat); `None`
    /// otherwise.
    pub fn expand(self, shape: &[usize]) -> Option<Feature> {
        let dims = self.dims();
        let fits =
            dims.len() == shape.len() && dims.iter().zip(shape).all(|(d, s)| d == s || *d == 1);
        if !fits {
            return None;
        }
        Some(Feature(map_tensor!(self.0, t => t.expand(sized(shape)))))
    }

    /// `x[..., index, ...]` along `dim`: that dimension dropped.
    pub fn select(self, dim: usize, index: usize) -> Option<Feature> {
        let mut dims = self.dims();
        if dim >= dims.len() || index >= dims[dim] {
            return None;
        }
        let narrowed = Feature(map_tensor!(self.0, t => t.narrow(dim, index, 1)));
        dims.remove(dim);
        narrowed.reshape(&dims)
    }
}

/// The NumPy broadcast shape of `a` and `b`, if they broadcast.
fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    crate::ops::broadcast_shape(a, b).ok()
}

/// A function of two same-rank tensors, for every rank.
pub(crate) trait BinaryFn {
    fn apply<const D: usize>(&self, a: Tensor<D>, b: Tensor<D>) -> Tensor<D>;
}

/// `a * b`.
struct MulFn;

impl BinaryFn for MulFn {
    fn apply<const D: usize>(&self, a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
        a * b
    }
}

/// `a + b`.
struct AddFn;

impl BinaryFn for AddFn {
    fn apply<const D: usize>(&self, a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
        a + b
    }
}

/// `shape` as the fixed-size array burn's shape arguments take (same length as `D`).
fn sized<const D: usize>(shape: &[usize]) -> [usize; D] {
    let mut out = [0usize; D];
    out.copy_from_slice(shape);
    out
}

/// A function from a tensor to a tensor of the same rank, for every rank (what a closure
/// cannot be in Rust: generic over the const rank).
pub trait TensorFn {
    /// `f(t)`.
    fn apply<const D: usize>(&self, t: Tensor<D>) -> Tensor<D>;
}

/// `axes` as the fixed-size array burn's `permute` takes, for any rank up to [`MAX_RANK`].
fn permutation<const D: usize>(axes: &[isize]) -> [isize; D] {
    let mut out = [0isize; D];
    out.copy_from_slice(axes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feature(values: Vec<f32>, shape: &[usize]) -> Feature {
        let device = Device::flex();
        let flat = Feature::from(Tensor::<1>::from_data(
            TensorData::new(values, [shape.iter().product::<usize>()]),
            &device,
        ));
        flat.reshape(shape).expect("same element count")
    }

    #[test]
    fn reshape_and_permute_any_rank() {
        let x = feature((0..24).map(|v| v as f32).collect(), &[2, 3, 4]);
        assert_eq!(x.rank(), 3);
        // [2, 3, 4] -> permute(0, 2, 1) -> [2, 4, 3]: y[n][j][i] = x[n][i][j] = 12n + 4i + j.
        let y = x.clone().permute(&[0, 2, 1]).expect("a permutation");
        assert_eq!(y.dims(), [2, 4, 3]);
        let v = y.to_vec_f32().expect("f32");
        assert_eq!(&v[..6], &[0.0, 4.0, 8.0, 1.0, 5.0, 9.0]);
        assert_eq!(v[12], 12.0);
        assert!(x.clone().permute(&[0, 0, 1]).is_none());
        assert!(x.clone().reshape(&[5, 5]).is_none());
        let r6 = x.reshape(&[1, 2, 1, 3, 1, 4]).expect("rank 6");
        assert_eq!(r6.rank(), 6);
        assert!(r6.clone().into_rank::<4>().is_err());
        assert_eq!(
            r6.into_rank::<6>().expect("rank 6").dims(),
            [1, 2, 1, 3, 1, 4]
        );
    }

    #[test]
    fn add_and_relu_keep_rank() {
        let a = feature(vec![-1.0, 2.0, -3.0], &[1, 1, 3]);
        let b = feature(vec![0.5, 0.5, 0.5], &[1, 1, 3]);
        let sum = a.clone().checked_add(b).expect("same shape").relu();
        assert_eq!(sum.dims(), [1, 1, 3]);
        assert_eq!(sum.to_vec_f32().expect("f32"), [0.0, 2.5, 0.0]);
        assert!(a.checked_add(feature(vec![1.0; 3], &[3])).is_none());
    }
}
