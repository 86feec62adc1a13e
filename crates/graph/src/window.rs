use serde::Serialize;

/// The geometry of a sliding 2-D window (a convolution's kernel or a pooling window): one type
/// for every op that slides one, so the output-size rule is written once.
///
/// Padding is `(before, after)` per spatial dimension, as burn's `ConvOptions` takes it, so
/// asymmetric ("same" with an even kernel) padding is representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window2d {
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[sh, sw]`.
    pub stride: [usize; 2],
    /// `[(top, bottom), (left, right)]`.
    pub padding: [(usize, usize); 2],
    /// `[dh, dw]`.
    pub dilation: [usize; 2],
}

impl Window2d {
    /// A square `kernel` with equal `stride` and symmetric `padding` on both axes, dilation 1:
    /// what `nn.Conv2d(.., k, s, p)` and `nn.MaxPool2d(k, s, p)` mean.
    pub fn square(kernel: usize, stride: usize, padding: usize) -> Self {
        Self {
            kernel: [kernel; 2],
            stride: [stride; 2],
            padding: [(padding, padding); 2],
            dilation: [1; 2],
        }
    }

    /// The padding that keeps a stride-1 output the input's size (`padding="same"`): the
    /// window's span minus one, split with the extra element after, as PyTorch does.
    pub fn same_padding(kernel: [usize; 2], dilation: [usize; 2]) -> [(usize, usize); 2] {
        let pad = |i: usize| {
            let total = dilation[i] * kernel[i].saturating_sub(1);
            (total / 2, total - total / 2)
        };
        [pad(0), pad(1)]
    }

    /// Whether the window is symmetric about its centre on both axes.
    pub fn is_symmetric(&self) -> bool {
        self.padding.iter().all(|(before, after)| before == after)
    }

    /// PyTorch's output size `[oh, ow]` for an `[h, w]` input, rounding down, or up in
    /// `ceil_mode` (pooling), or why the window does not fit.
    pub fn output_size(&self, [h, w]: [usize; 2], ceil_mode: bool) -> Result<[usize; 2], String> {
        Ok([self.axis(0, h, ceil_mode)?, self.axis(1, w, ceil_mode)?])
    }

    fn axis(&self, i: usize, size: usize, ceil_mode: bool) -> Result<usize, String> {
        let (before, after) = self.padding[i];
        let stride = self.stride[i];
        if stride == 0 || self.kernel[i] == 0 {
            return Err(format!(
                "kernel {:?} and stride {:?} must be non-zero",
                self.kernel, self.stride
            ));
        }
        let span = self.dilation[i] * (self.kernel[i] - 1) + 1;
        let padded = size + before + after;
        if padded < span {
            return Err(format!(
                "spatial size {size} (padded {padded}) is smaller than the window {span}"
            ));
        }
        let steps = padded - span;
        let mut out = if ceil_mode {
            steps.div_ceil(stride) + 1
        } else {
            steps / stride + 1
        };
        // PyTorch: the last window must start inside the input or its leading padding.
        if ceil_mode && (out - 1) * stride >= size + before {
            out -= 1;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_size_follows_pytorch() {
        // ResNet's stem: 7x7 stride 2 padding 3 on 224 -> 112.
        assert_eq!(
            Window2d::square(7, 2, 3).output_size([224, 224], false),
            Ok([112, 112])
        );
        // Ceil mode drops a window that would start in the trailing padding.
        let pool = Window2d::square(3, 2, 0);
        assert_eq!(pool.output_size([6, 6], false), Ok([2, 2]));
        assert_eq!(pool.output_size([6, 6], true), Ok([3, 3]));
        // Asymmetric padding counts both sides: 5 + 0 + 1 - 2 + 1 = 5 per axis.
        let even = Window2d {
            kernel: [2, 2],
            stride: [1, 1],
            padding: Window2d::same_padding([2, 2], [1, 1]),
            dilation: [1, 1],
        };
        assert_eq!(even.padding, [(0, 1), (0, 1)]);
        assert!(!even.is_symmetric());
        assert_eq!(even.output_size([5, 5], false), Ok([5, 5]));
        let err = Window2d::square(11, 4, 2).output_size([4, 4], false);
        assert!(err.unwrap_err().contains("smaller than the window"));
    }
}
