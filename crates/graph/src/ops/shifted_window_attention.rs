use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::softmax;
use burn::tensor::ops::PadMode;
use serde::Serialize;

use super::args::{broadcast_shape, shapes, tensor};
use super::{Cx, Dropout, OpDef};
use crate::{Feature, Mode, TensorFn, Value};

/// torchvision's `shifted_window_attention` (Swin Transformer; `torch.fx.wrap`ped, so one FX
/// node): multi-head self attention inside `wh x ww` windows of a channels-last map.
///
/// As torchvision computes it: the map is padded with zeros at the bottom and right to whole
/// windows; rolled up and left by `shift` (a shift is dropped along a side no longer than the
/// window); cut into windows of `N = wh * ww` tokens; projected to queries, keys and values
/// (`qkv_weight`, `qkv_bias`); the logits are `q k^T / sqrt(C / heads)`, or with `cosine`
/// (Swin V2's `logit_scale`) the cosine similarity of `q` and `k` times
/// `exp(min(logit_scale, ln 100))`, the key's bias zeroed; plus `relative_position_bias`;
/// after a shift, token pairs that come from different regions of the unrolled map get -100
/// (the attention mask); softmax, times the values, projected (`proj_weight`, `proj_bias`);
/// windows put back, the roll undone, the padding cut off. Dropout applies in train mode only.
///
/// Inputs, in FX's order (positional, then keyword): `x`, `qkv_weight`, `proj_weight`,
/// `relative_position_bias`, `qkv_bias`, `proj_bias`, and with `cosine` `logit_scale`.
///
/// # Shapes
/// `[B, H, W, C]`, `[3C, C]`, `[C, C]`, a bias broadcasting to `[B * windows, heads, N, N]`
/// (torchvision's `[1, heads, N, N]`), `[3C]`, `[C]` and with `cosine` a `logit_scale` of
/// `heads` values (`[heads, 1, 1]`), to `[B, H, W, C]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShiftedWindowAttention {
    /// The window's `[height, width]`.
    pub window: [usize; 2],
    /// Attention heads.
    pub num_heads: usize,
    /// The roll `[down, right]` undone after attention (torchvision's `shift_size`).
    pub shift: [usize; 2],
    /// Dropout probability of the attention weights (train mode).
    pub attention_dropout: f64,
    /// Dropout probability of the output (train mode).
    pub dropout: f64,
    /// Swin V2's scaled cosine attention (a `logit_scale` input).
    pub cosine: bool,
}

/// The sizes of one call: the padded map and its windows.
struct Layout {
    b: usize,
    h: usize,
    w: usize,
    c: usize,
    padded: [usize; 2],
    shift: [usize; 2],
}

impl Layout {
    fn windows(&self, window: [usize; 2]) -> usize {
        (self.padded[0] / window[0]) * (self.padded[1] / window[1])
    }
}

impl ShiftedWindowAttention {
    fn inputs(&self) -> usize {
        if self.cosine { 7 } else { 6 }
    }

    /// The padded size and the shift actually applied, for a `[B, H, W, C]` input.
    fn layout(&self, shape: &[usize]) -> Result<Layout, String> {
        let [b, h, w, c] = *shape else {
            return Err(format!("expected a [B, H, W, C] map, got {shape:?}"));
        };
        let [wh, ww] = self.window;
        if wh == 0 || ww == 0 || self.num_heads == 0 || c % self.num_heads != 0 {
            return Err(format!(
                "{c} channels do not split into {} heads with a {:?} window",
                self.num_heads, self.window
            ));
        }
        let padded = [h.div_ceil(wh) * wh, w.div_ceil(ww) * ww];
        // "If window size is larger than feature size, there is no need to shift window".
        let shift = [0, 1].map(|i| match self.window[i] >= padded[i] {
            true => 0,
            false => self.shift[i],
        });
        Ok(Layout {
            b,
            h,
            w,
            c,
            padded,
            shift,
        })
    }

    /// torchvision's attention mask for a shifted, padded map: `[windows, N, N]` of 0 where
    /// two tokens of a window come from the same region, -100 elsewhere.
    pub fn mask(&self, padded: [usize; 2], shift: [usize; 2]) -> Vec<f32> {
        let [ph, pw] = padded;
        let [wh, ww] = self.window;
        // `attn_mask[h0:h1, w0:w1] = count` over the three slices of each side, with
        // Python's negative indices.
        let slices = |n: usize, win: usize, s: usize| {
            let at = |i: isize| {
                if i < 0 {
                    (n as isize + i).max(0)
                } else {
                    i.min(n as isize)
                }
            };
            let (win, s) = (win as isize, s as isize);
            [(0, at(-win)), (at(-win), at(-s)), (at(-s), n as isize)]
        };
        let mut regions = vec![0f32; ph * pw];
        let mut count = 0.0;
        for (h0, h1) in slices(ph, wh, shift[0]) {
            for (w0, w1) in slices(pw, ww, shift[1]) {
                for r in h0..h1 {
                    for c in w0..w1 {
                        regions[r as usize * pw + c as usize] = count;
                    }
                }
                count += 1.0;
            }
        }
        let (nh, nw, n) = (ph / wh, pw / ww, wh * ww);
        let mut mask = Vec::with_capacity(nh * nw * n * n);
        for wr in 0..nh {
            for wc in 0..nw {
                let region = |t: usize| regions[(wr * wh + t / ww) * pw + wc * ww + t % ww];
                for i in 0..n {
                    mask.extend((0..n).map(|j| match region(j) == region(i) {
                        true => 0.0,
                        false => -100.0,
                    }));
                }
            }
        }
        mask
    }
}

impl OpDef for ShiftedWindowAttention {
    fn infer(&self, inputs: &[&Value]) -> Result<Value, String> {
        let shapes = shapes(inputs)?;
        if shapes.len() != self.inputs() {
            return Err(format!(
                "shifted_window_attention takes {} inputs, got {}",
                self.inputs(),
                shapes.len()
            ));
        }
        let layout = self.layout(shapes[0])?;
        let c = layout.c;
        let n = self.window[0] * self.window[1];
        let attn = [layout.b * layout.windows(self.window), self.num_heads, n, n];
        let expect = |i: usize, shape: &[usize], what: &str| match shapes[i] == shape {
            true => Ok(()),
            false => Err(format!("expected {what} {shape:?}, got {:?}", shapes[i])),
        };
        expect(1, &[3 * c, c], "qkv_weight")?;
        expect(2, &[c, c], "proj_weight")?;
        if broadcast_shape(&attn, shapes[3])? != attn {
            return Err(format!(
                "a relative position bias {:?} does not broadcast to {attn:?}",
                shapes[3]
            ));
        }
        expect(4, &[3 * c], "qkv_bias")?;
        expect(5, &[c], "proj_bias")?;
        if self.cosine && shapes[6].iter().product::<usize>() != self.num_heads {
            return Err(format!(
                "expected a logit_scale of {} heads, got {:?}",
                self.num_heads, shapes[6]
            ));
        }
        tensor(shapes[0].to_vec())
    }

    fn eval(&self, cx: &Cx, inputs: Vec<Feature>) -> Result<Feature, String> {
        let mut inputs = inputs.into_iter();
        let mut next = || inputs.next().ok_or("too few inputs".to_string());
        let rank = |f: Feature, what: &str| format!("{what} of shape {:?}", f.dims());
        let x: Tensor<4> = next()?.into_rank().map_err(|f| rank(f, "an input"))?;
        let qkv_weight: Tensor<2> = next()?.into_rank().map_err(|f| rank(f, "qkv_weight"))?;
        let proj_weight: Tensor<2> = next()?.into_rank().map_err(|f| rank(f, "proj_weight"))?;
        let bias = next()?;
        let qkv_bias: Tensor<1> = next()?.into_rank().map_err(|f| rank(f, "qkv_bias"))?;
        let proj_bias: Tensor<1> = next()?.into_rank().map_err(|f| rank(f, "proj_bias"))?;
        let logit_scale = match self.cosine {
            true => Some(next()?),
            false => None,
        };

        let layout = self.layout(&x.dims())?;
        let Layout { b, h, w, c, .. } = layout;
        let [ph, pw] = layout.padded;
        let [s0, s1] = layout.shift;
        let [wh, ww] = self.window;
        let (heads, n) = (self.num_heads, wh * ww);
        let (nh, nw) = (ph / wh, pw / ww);
        let windows = nh * nw;
        let bw = b * windows;
        let train = |p: f64| (cx.mode == Mode::Train && p > 0.0).then_some(Dropout { p });

        // Pad, roll, cut into windows: [B * windows, N, C].
        let x = match (ph - h, pw - w) {
            (0, 0) => x,
            (bottom, right) => x.pad(
                [(0, 0), (0, bottom), (0, right), (0, 0)],
                PadMode::Constant(0.0),
            ),
        };
        let x = x.roll_dim(-(s0 as isize), 1).roll_dim(-(s1 as isize), 2);
        let x = x
            .reshape([b, nh, wh, nw, ww, c])
            .permute([0, 1, 3, 2, 4, 5])
            .reshape([bw * n, c]);

        // Queries, keys and values: [B * windows, heads, N, C / heads] each.
        let qkv_bias = match self.cosine {
            // Swin V2 zeroes the keys' bias.
            true => Tensor::cat(
                vec![
                    qkv_bias.clone().narrow(0, 0, c),
                    qkv_bias.zeros_like().narrow(0, c, c),
                    qkv_bias.narrow(0, 2 * c, c),
                ],
                0,
            ),
            false => qkv_bias,
        };
        let d = c / heads;
        let qkv = x.matmul(qkv_weight.transpose()) + qkv_bias.reshape([1, 3 * c]);
        let qkv = qkv.reshape([bw, n, 3, heads, d]).permute([2, 0, 3, 1, 4]);
        let part =
            |i: usize| -> Tensor<4> { qkv.clone().narrow(0, i, 1).reshape([bw, heads, n, d]) };
        let (q, k, v) = (part(0), part(1), part(2));

        let attn = match logit_scale {
            Some(scale) => {
                let scale: Tensor<4> = scale
                    .reshape(&[1, heads, 1, 1])
                    .and_then(|s| s.into_rank().ok())
                    .ok_or("logit_scale is not one value per head")?;
                let scale = scale.clamp_max(100f64.ln()).exp();
                normalize(q).matmul(normalize(k).swap_dims(2, 3)) * scale
            }
            None => {
                let q = q * (d as f64).powf(-0.5);
                q.matmul(k.swap_dims(2, 3))
            }
        };
        let bias = bias
            .broadcast_to(&[bw, heads, n, n])
            .and_then(|f| f.into_rank::<4>().ok())
            .ok_or("the relative position bias does not broadcast")?;
        let mut attn = attn + bias;
        if s0 + s1 > 0 {
            let mask = self.mask(layout.padded, layout.shift);
            let mask = Tensor::<5>::from_data(
                TensorData::new(mask, [1, windows, 1, n, n]),
                &attn.device(),
            );
            attn = (attn.reshape([b, windows, heads, n, n]) + mask).reshape([bw, heads, n, n]);
        }
        let mut attn = softmax(attn, 3);
        if let Some(dropout) = train(self.attention_dropout) {
            attn = (&dropout).apply(attn);
        }

        // Back to tokens, projected, windows merged, roll undone, padding cut.
        let x = attn.matmul(v).swap_dims(1, 2).reshape([bw * n, c]);
        let mut x = x.matmul(proj_weight.transpose()) + proj_bias.reshape([1, c]);
        if let Some(dropout) = train(self.dropout) {
            x = (&dropout).apply(x);
        }
        let x = x
            .reshape([b, nh, nw, wh, ww, c])
            .permute([0, 1, 3, 2, 4, 5])
            .reshape([b, ph, pw, c]);
        let x = x.roll_dim(s0 as isize, 1).roll_dim(s1 as isize, 2);
        Ok(x.narrow(1, 0, h).narrow(2, 0, w).into())
    }
}

/// `F.normalize(t, dim=-1)`: each row divided by its length (at least 1e-12).
fn normalize(t: Tensor<4>) -> Tensor<4> {
    let norm = t.clone().powi_scalar(2).sum_dim(3).sqrt().clamp_min(1e-12);
    t / norm
}

#[cfg(test)]
mod tests {
    use super::super::args::testing::{feature, run};
    use super::*;

    fn op(window: [usize; 2], shift: [usize; 2], cosine: bool) -> ShiftedWindowAttention {
        ShiftedWindowAttention {
            window,
            num_heads: 2,
            shift,
            attention_dropout: 0.0,
            dropout: 0.0,
            cosine,
        }
    }

    /// Deterministic values in [-1, 1).
    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + seed * 104729) % 2003) as f32 / 1001.5) - 1.0)
            .collect()
    }

    /// The inputs for a `[1, h, w, 4]` map, 2 heads, `[1, 2, N, N]` bias.
    fn inputs(h: usize, w: usize, n: usize, cosine: bool) -> Vec<Feature> {
        let c = 4;
        let mut inputs = vec![
            feature(values(h * w * c, 1), &[1, h, w, c]),
            feature(values(3 * c * c, 2), &[3 * c, c]),
            feature(values(c * c, 3), &[c, c]),
            feature(values(2 * n * n, 4), &[1, 2, n, n]),
            feature(values(3 * c, 5), &[3 * c]),
            feature(values(c, 6), &[c]),
        ];
        if cosine {
            inputs.push(feature(vec![1.0, 5.0], &[2, 1, 1]));
        }
        inputs
    }

    /// Attention of one window of `tokens` (`[N, C]` row-major, `C = 4`, two heads) written
    /// out a scalar at a time: the reference the op is checked against.
    fn window_reference(
        tokens: &[Vec<f32>],
        inputs: &[Vec<f32>],
        mask: impl Fn(usize, usize) -> f32,
        cosine: bool,
    ) -> Vec<Vec<f32>> {
        let (c, d, n) = (4, 2, tokens.len());
        let (wqkv, wp, bias, bqkv, bp) =
            (&inputs[1], &inputs[2], &inputs[3], &inputs[4], &inputs[5]);
        let linear = |x: &[f32], w: &[f32], b: &[f32], out: usize| -> Vec<f32> {
            (0..out)
                .map(|o| b[o] + (0..c).map(|i| x[i] * w[o * c + i]).sum::<f32>())
                .collect()
        };
        let mut bqkv = bqkv.clone();
        if cosine {
            bqkv[c..2 * c].fill(0.0);
        }
        let qkv: Vec<Vec<f32>> = tokens
            .iter()
            .map(|t| linear(t, wqkv, &bqkv, 3 * c))
            .collect();
        let mut out = vec![vec![0.0; c]; n];
        for head in 0..2 {
            let q = |i: usize| &qkv[i][head * d..head * d + d];
            let k = |i: usize| &qkv[i][c + head * d..c + head * d + d];
            let v = |i: usize| &qkv[i][2 * c + head * d..2 * c + head * d + d];
            let unit = |x: &[f32]| {
                let len = x.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                x.iter().map(|v| v / len).collect::<Vec<f32>>()
            };
            for i in 0..n {
                let logits: Vec<f32> = (0..n)
                    .map(|j| {
                        let dot = match cosine {
                            true => {
                                let scale = inputs[6][head].min(100f32.ln()).exp();
                                let (a, b) = (unit(q(i)), unit(k(j)));
                                a.iter().zip(&b).map(|(a, b)| a * b).sum::<f32>() * scale
                            }
                            false => {
                                let s = (d as f32).powf(-0.5);
                                q(i).iter().zip(k(j)).map(|(a, b)| a * s * b).sum::<f32>()
                            }
                        };
                        dot + bias[(head * n + i) * n + j] + mask(i, j)
                    })
                    .collect();
                let max = logits.iter().cloned().fold(f32::MIN, f32::max);
                let e: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
                let sum: f32 = e.iter().sum();
                for (j, e) in e.iter().enumerate() {
                    for t in 0..d {
                        out[i][head * d + t] += e / sum * v(j)[t];
                    }
                }
            }
        }
        out.iter().map(|o| linear(o, wp, bp, c)).collect()
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() < 1e-5, "value {i}: {x} vs {y}");
        }
    }

    #[test]
    fn one_window_is_plain_attention_with_the_bias() {
        for cosine in [false, true] {
            let (h, w) = (2, 3);
            let ins = inputs(h, w, 6, cosine);
            let raw: Vec<Vec<f32>> = ins.iter().map(|f| f.to_vec_f32().unwrap()).collect();
            let tokens: Vec<Vec<f32>> = raw[0].chunks(4).map(<[f32]>::to_vec).collect();
            let expected: Vec<f32> = window_reference(&tokens, &raw, |_, _| 0.0, cosine).concat();
            // A shift along a side no longer than the window is dropped.
            let (shape, out) = run(&op([2, 3], [1, 1], cosine), ins).expect("runs");
            assert_eq!(shape, [1, 2, 3, 4]);
            close(&out, &expected);
        }
    }

    #[test]
    fn padding_and_shifted_windows_follow_torchvision() {
        // A 3x3 map, 2x2 windows: padded to 4x4, rolled by (1, 1), four windows, masked.
        let (h, w, win) = (3, 3, 2);
        let attention = op([win, win], [1, 1], false);
        let ins = inputs(h, w, 4, false);
        let raw: Vec<Vec<f32>> = ins.iter().map(|f| f.to_vec_f32().unwrap()).collect();
        let padded = |r: usize, c: usize| -> Vec<f32> {
            match r < h && c < w {
                true => raw[0][(r * w + c) * 4..][..4].to_vec(),
                false => vec![0.0; 4],
            }
        };
        let mask = attention.mask([4, 4], [1, 1]);
        let mut expected = vec![vec![0.0; 4]; 16];
        for wr in 0..2 {
            for wc in 0..2 {
                // Token t of the rolled window sits at ((2 wr + t / 2 + 1) % 4, ...).
                let at = |t: usize| ((2 * wr + t / 2 + 1) % 4, (2 * wc + t % 2 + 1) % 4);
                let tokens: Vec<Vec<f32>> = (0..4).map(|t| padded(at(t).0, at(t).1)).collect();
                let m = |i: usize, j: usize| mask[((wr * 2 + wc) * 4 + i) * 4 + j];
                let out = window_reference(&tokens, &raw, m, false);
                for (t, o) in out.into_iter().enumerate() {
                    let (r, c) = at(t);
                    expected[r * 4 + c] = o;
                }
            }
        }
        let expected: Vec<f32> = (0..h)
            .flat_map(|r| {
                (0..w)
                    .flat_map(|c| expected[r * 4 + c].clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        let (shape, out) = run(&attention, ins).expect("runs");
        assert_eq!(shape, [1, 3, 3, 4]);
        close(&out, &expected);
    }

    #[test]
    fn the_mask_separates_the_regions_the_roll_brought_together() {
        // torchvision's mask for a 4x4 map, 2x2 windows, shift 1: the regions are
        // rows {0, 1}, {2}, {3} by columns {0, 1}, {2}, {3}.
        let mask = op([2, 2], [1, 1], false).mask([4, 4], [1, 1]);
        assert_eq!(mask.len(), 4 * 4 * 4);
        // Window 0 holds rows 0-1, columns 0-1: one region, no mask.
        assert!(mask[..16].iter().all(|&m| m == 0.0));
        // Window 3 holds (2,2), (2,3), (3,2), (3,3): four regions, only the diagonal is open.
        for i in 0..4 {
            for j in 0..4 {
                let expected = if i == j { 0.0 } else { -100.0 };
                assert_eq!(mask[48 + i * 4 + j], expected);
            }
        }
        // Window 1 holds rows 0-1, columns 2-3: columns 2 and 3 are two regions.
        assert_eq!(mask[16 + 1], -100.0);
        assert_eq!(mask[16 + 2], 0.0);
    }

    #[test]
    fn shapes_are_checked() {
        let attention = op([7, 7], [3, 3], false);
        let t = |s: &[usize]| Value::Tensor(s.to_vec());
        let ok = [
            t(&[2, 16, 16, 96]),
            t(&[288, 96]),
            t(&[96, 96]),
            t(&[1, 2, 49, 49]),
            t(&[288]),
            t(&[96]),
        ];
        let refs: Vec<&Value> = ok.iter().collect();
        assert_eq!(attention.infer(&refs), Ok(t(&[2, 16, 16, 96])));
        let mut bad = ok.clone();
        bad[3] = t(&[1, 3, 49, 49]);
        assert!(attention.infer(&bad.iter().collect::<Vec<_>>()).is_err());
        assert!(attention.infer(&refs[..5]).is_err());
        let mut bad = ok.clone();
        bad[0] = t(&[2, 16, 16, 95]);
        assert!(attention.infer(&bad.iter().collect::<Vec<_>>()).is_err());
        let cosine = op([8, 8], [4, 4], true);
        let mut v2 = ok.to_vec();
        v2[3] = t(&[1, 2, 64, 64]);
        v2.push(t(&[2, 1, 1]));
        assert!(cosine.infer(&v2.iter().collect::<Vec<_>>()).is_ok());
    }
}
