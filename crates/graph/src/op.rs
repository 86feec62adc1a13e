use serde::Serialize;

use crate::Window2d;

/// What a node computes, with the hyperparameters needed to infer its output shape.
///
/// Parameters (weights) are not part of the IR: a `call_module` node's target names the module
/// that holds them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Op {
    /// The graph input, `[N, channels, H, W]`.
    Input {
        /// Expected channel count.
        channels: usize,
    },
    /// `nn.Conv2d`.
    Conv2d {
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Kernel, stride, zero padding and dilation.
        window: Window2d,
        /// Channel groups.
        groups: usize,
        /// Whether a bias is added.
        bias: bool,
    },
    /// `nn.BatchNorm2d`.
    BatchNorm2d {
        /// Channel count.
        features: usize,
        /// Added to the variance before the square root.
        eps: f64,
    },
    /// `nn.ReLU`.
    Relu,
    /// `nn.MaxPool2d`.
    MaxPool2d {
        /// Window, stride, padding (with negative infinity) and dilation.
        window: Window2d,
        /// Round the output size up instead of down.
        ceil_mode: bool,
    },
    /// `nn.AdaptiveAvgPool2d`.
    AdaptiveAvgPool2d {
        /// Output size `[oh, ow]`.
        output: [usize; 2],
    },
    /// `nn.Linear` over the last dimension.
    Linear {
        /// Input features.
        in_features: usize,
        /// Output features.
        out_features: usize,
        /// Whether a bias is added.
        bias: bool,
    },
    /// `nn.Dropout`: identity in eval mode.
    Dropout {
        /// Probability of zeroing an element in train mode.
        p: f64,
    },
    /// `operator.add` of two tensors of equal shape.
    Add,
    /// `torch.flatten(x, start_dim)`.
    Flatten {
        /// First dimension folded into the last.
        start_dim: usize,
    },
    /// `x.view(*shape)`, with at most one `-1`.
    View {
        /// Target shape; `-1` is inferred.
        shape: Vec<i64>,
    },
    /// `x.permute(*dims)`: output axis `i` is input axis `dims[i]`.
    Permute {
        /// A permutation of the input's axes.
        dims: Vec<usize>,
    },
    // DenseNet, ConvNeXt, ViT.
    /// `torch.cat(tensors, dim)`: tensors of equal shape except along `dim`.
    Cat {
        /// The dimension the tensors are joined along.
        dim: usize,
    },
    /// `nn.AvgPool2d`, zero padding counted in the average (PyTorch's default).
    AvgPool2d {
        /// Window, stride and zero padding.
        window: Window2d,
        /// Round the output size up instead of down.
        ceil_mode: bool,
    },
    /// `F.relu(x)`: a ReLU called as a function (DenseNet's last), not a module.
    FunctionalRelu,
    /// `F.adaptive_avg_pool2d(x, output)`, called as a function.
    FunctionalAdaptiveAvgPool2d {
        /// Output size `[oh, ow]`.
        output: [usize; 2],
    },
}

impl Op {
    /// The name FX gives a function or method call (`add`, `flatten`, `view`), and the
    /// class name of a module op (`Conv2d`, `ReLU`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Op::Input { .. } => "placeholder",
            Op::Conv2d { .. } => "Conv2d",
            Op::BatchNorm2d { .. } => "BatchNorm2d",
            Op::Relu => "ReLU",
            Op::MaxPool2d { .. } => "MaxPool2d",
            Op::AdaptiveAvgPool2d { .. } => "AdaptiveAvgPool2d",
            Op::Linear { .. } => "Linear",
            Op::Dropout { .. } => "Dropout",
            Op::Add => "add",
            Op::Flatten { .. } => "flatten",
            Op::View { .. } => "view",
            Op::Permute { .. } => "permute",
            // DenseNet, ConvNeXt, ViT.
            Op::Cat { .. } => "cat",
            Op::AvgPool2d { .. } => "AvgPool2d",
            Op::FunctionalRelu => "relu",
            Op::FunctionalAdaptiveAvgPool2d { .. } => "adaptive_avg_pool2d",
        }
    }

    /// The FX target of a function or method op (`operator.add`, `torch.flatten`, `view`).
    pub fn function_target(&self) -> &'static str {
        match self {
            Op::Add => "operator.add",
            Op::Flatten { .. } => "torch.flatten",
            // DenseNet, ConvNeXt, ViT.
            Op::Cat { .. } => "torch.cat",
            Op::FunctionalRelu => "torch.nn.functional.relu",
            Op::FunctionalAdaptiveAvgPool2d { .. } => "torch.nn.functional.adaptive_avg_pool2d",
            other => other.type_name(),
        }
    }

    /// Output shape for the given input shapes, or why they are not acceptable.
    ///
    /// The error is a bare reason; [`crate::Graph::infer_shapes`] adds the node name.
    pub fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        let first = inputs.first().copied().unwrap_or(&[]);
        match self {
            Op::Input { channels } => {
                if first.len() != 4 {
                    return Err(format!(
                        "expected a rank-4 [N, {channels}, H, W] tensor, got rank {}",
                        first.len()
                    ));
                }
                if first[1] != *channels {
                    return Err(format!(
                        "expected {channels} channels ([N, {channels}, H, W]), got {}",
                        first[1]
                    ));
                }
                if first[0] == 0 || first[2] == 0 || first[3] == 0 {
                    return Err("batch, height and width must be non-zero".into());
                }
                Ok(first.to_vec())
            }
            Op::Conv2d {
                in_channels,
                out_channels,
                window,
                ..
            } => {
                let [n, c, h, w] = rank4(first)?;
                if c != *in_channels {
                    return Err(format!("expected {in_channels} channels, got {c}"));
                }
                let [oh, ow] = window.output_size([h, w], false)?;
                Ok(vec![n, *out_channels, oh, ow])
            }
            Op::BatchNorm2d { features, .. } => {
                let [_, c, _, _] = rank4(first)?;
                if c != *features {
                    return Err(format!("expected {features} channels, got {c}"));
                }
                Ok(first.to_vec())
            }
            Op::Relu | Op::Dropout { .. } => Ok(first.to_vec()),
            Op::MaxPool2d { window, ceil_mode } => {
                let [n, c, h, w] = rank4(first)?;
                let [oh, ow] = window.output_size([h, w], *ceil_mode)?;
                Ok(vec![n, c, oh, ow])
            }
            Op::AdaptiveAvgPool2d { output } => {
                let [n, c, _, _] = rank4(first)?;
                Ok(vec![n, c, output[0], output[1]])
            }
            Op::Linear {
                in_features,
                out_features,
                ..
            } => match first.split_last() {
                Some((last, rest)) if last == in_features => {
                    let mut out = rest.to_vec();
                    out.push(*out_features);
                    Ok(out)
                }
                _ => Err(format!("expected a last dimension of {in_features}")),
            },
            Op::Add => {
                let second = inputs.get(1).copied().unwrap_or(&[]);
                if first != second {
                    return Err(format!("cannot add shapes {first:?} and {second:?}"));
                }
                Ok(first.to_vec())
            }
            Op::Flatten { start_dim } => {
                if *start_dim >= first.len() {
                    return Err(format!("cannot flatten from dimension {start_dim}"));
                }
                let mut out = first[..*start_dim].to_vec();
                out.push(first[*start_dim..].iter().product());
                Ok(out)
            }
            Op::View { shape } => view_shape(first, shape),
            Op::Permute { dims } => {
                let mut seen = vec![false; first.len()];
                let valid = dims.len() == first.len()
                    && dims
                        .iter()
                        .all(|&d| d < first.len() && !std::mem::replace(&mut seen[d], true));
                if !valid {
                    return Err(format!(
                        "{dims:?} is not a permutation of a rank-{} tensor's axes",
                        first.len()
                    ));
                }
                Ok(dims.iter().map(|&d| first[d]).collect())
            }
            // DenseNet, ConvNeXt, ViT.
            Op::Cat { dim } => cat_shape(inputs, *dim),
            Op::AvgPool2d { window, ceil_mode } => {
                let [n, c, h, w] = rank4(first)?;
                let [oh, ow] = window.output_size([h, w], *ceil_mode)?;
                Ok(vec![n, c, oh, ow])
            }
            Op::FunctionalRelu => Ok(first.to_vec()),
            Op::FunctionalAdaptiveAvgPool2d { output } => {
                let [n, c, _, _] = rank4(first)?;
                Ok(vec![n, c, output[0], output[1]])
            }
        }
    }
}

fn rank4(shape: &[usize]) -> std::result::Result<[usize; 4], String> {
    <[usize; 4]>::try_from(shape).map_err(|_| format!("expected rank 4, got rank {}", shape.len()))
}

/// `torch.cat`'s output: the inputs' common shape, summed along `dim`.
fn cat_shape(inputs: &[&[usize]], dim: usize) -> std::result::Result<Vec<usize>, String> {
    let Some(first) = inputs.first() else {
        return Err("cat of no tensors".into());
    };
    if dim >= first.len() {
        return Err(format!("cannot join rank-{} tensors along dimension {dim}", first.len()));
    }
    let mut out = first.to_vec();
    out[dim] = 0;
    for shape in inputs {
        let fits = shape.len() == first.len()
            && shape.iter().zip(first.iter()).enumerate().all(|(d, (a, b))| d == dim || a == b);
        if !fits {
            return Err(format!("cannot join shapes {first:?} and {shape:?} along dimension {dim}"));
        }
        out[dim] += shape[dim];
    }
    Ok(out)
}

fn view_shape(input: &[usize], shape: &[i64]) -> std::result::Result<Vec<usize>, String> {
    let numel: usize = input.iter().product();
    let known: usize = shape
        .iter()
        .filter(|&&d| d >= 0)
        .map(|&d| d as usize)
        .product();
    let inferred = shape.iter().filter(|&&d| d == -1).count();
    if inferred > 1 || shape.iter().any(|&d| d < -1) {
        return Err(format!("invalid view shape {shape:?}"));
    }
    if inferred == 0 {
        if known != numel {
            return Err(format!("cannot view {numel} elements as {shape:?}"));
        }
        return Ok(shape.iter().map(|&d| d as usize).collect());
    }
    if known == 0 || !numel.is_multiple_of(known) {
        return Err(format!("cannot view {numel} elements as {shape:?}"));
    }
    Ok(shape
        .iter()
        .map(|&d| if d == -1 { numel / known } else { d as usize })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_output_matches_pytorch_formula() {
        let conv = Op::Conv2d {
            in_channels: 3,
            out_channels: 64,
            window: Window2d::square(7, 2, 3),
            groups: 1,
            bias: false,
        };
        assert_eq!(
            conv.output_shape(&[&[2, 3, 224, 224]]).unwrap(),
            vec![2, 64, 112, 112]
        );
        assert!(conv.output_shape(&[&[2, 4, 224, 224]]).is_err());
    }

    #[test]
    fn maxpool_ceil_mode_drops_window_starting_in_padding() {
        let pool = |ceil_mode| Op::MaxPool2d {
            window: Window2d::square(3, 2, 0),
            ceil_mode,
        };
        assert_eq!(
            pool(false).output_shape(&[&[1, 1, 6, 6]]).unwrap(),
            vec![1, 1, 2, 2]
        );
        assert_eq!(
            pool(true).output_shape(&[&[1, 1, 6, 6]]).unwrap(),
            vec![1, 1, 3, 3]
        );
    }

    #[test]
    fn view_infers_minus_one_and_rejects_uneven_sizes() {
        let view = Op::View { shape: vec![-1, 6] };
        assert_eq!(view.output_shape(&[&[2, 3, 2, 2]]).unwrap(), vec![4, 6]);
        assert!(view.output_shape(&[&[1, 5]]).is_err());
    }

    #[test]
    fn permute_reorders_axes_and_checks_the_permutation() {
        let permute = Op::Permute {
            dims: vec![0, 2, 1],
        };
        assert_eq!(
            permute.output_shape(&[&[2, 64, 49]]).unwrap(),
            vec![2, 49, 64]
        );
        assert!(permute.output_shape(&[&[2, 64]]).is_err());
        let repeated = Op::Permute {
            dims: vec![0, 1, 1],
        };
        assert!(repeated.output_shape(&[&[2, 3, 4]]).is_err());
    }

    #[test]
    fn window_larger_than_input_is_an_error() {
        let conv = Op::Conv2d {
            in_channels: 3,
            out_channels: 8,
            window: Window2d::square(11, 4, 2),
            groups: 1,
            bias: true,
        };
        let err = conv.output_shape(&[&[1, 3, 4, 4]]).unwrap_err();
        assert!(err.contains("smaller than the window"), "{err}");
    }
}
