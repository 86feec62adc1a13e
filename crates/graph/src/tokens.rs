//! Token sequences as feature maps: a vision transformer's `[N, 1 + h*w, C]` (the class token
//! first, then the patches row by row) read as `[N, C, h, w]`, as pytorch-grad-cam's
//! `reshape_transform` for ViT does, so that pictures and CAMs of transformer layers are drawn
//! on the patch grid.

use burn::prelude::*;

use crate::Feature;

/// Where the patch grid is in a token sequence `[N, T, C]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenGrid {
    /// Leading tokens that are not patches (1: ViT's class token; 0: patches only).
    pub skip: usize,
    /// Grid rows.
    pub h: usize,
    /// Grid columns.
    pub w: usize,
    /// Channels per token.
    pub channels: usize,
}

impl TokenGrid {
    /// The grid of a `[N, T, C]` shape: a class token and a square grid when `T - 1` is a
    /// square (ViT's `1 + 14 * 14`), else a square grid of all `T` tokens; `None` for other
    /// shapes.
    pub fn of(shape: &[usize]) -> Option<TokenGrid> {
        let &[_, tokens, channels] = shape else {
            return None;
        };
        let side = |t: usize| {
            (1..=t)
                .take_while(|s| s * s <= t)
                .last()
                .filter(|s| s * s == t)
        };
        let (skip, side) = match (tokens.checked_sub(1).and_then(side), side(tokens)) {
            (Some(s), _) => (1, s),
            (None, Some(s)) => (0, s),
            (None, None) => return None,
        };
        (channels > 0).then_some(TokenGrid {
            skip,
            h: side,
            w: side,
            channels,
        })
    }

    /// The feature map `[N, C, h, w]` of a `[N, T, C]` feature (`None` if it does not fit).
    pub fn to_map(&self, feature: Feature) -> Option<Feature> {
        let tokens: Tensor<3> = feature.into_rank().ok()?;
        let [n, t, c] = tokens.dims();
        if t != self.skip + self.h * self.w || c != self.channels {
            return None;
        }
        let map = tokens
            .slice([0..n, self.skip..t, 0..c])
            .reshape([n, self.h, self.w, c])
            .permute([0, 3, 1, 2]);
        Some(Feature::from(map))
    }

    /// [`TokenGrid::to_map`] on row-major values of `n` sequences: `[n, C, h, w]` values.
    pub fn map_values(&self, values: &[f32], n: usize) -> Vec<f32> {
        let (t, c, hw) = (self.skip + self.h * self.w, self.channels, self.h * self.w);
        let mut out = vec![0.0; n * c * hw];
        for i in 0..n {
            for p in 0..hw {
                let token = &values[(i * t + self.skip + p) * c..][..c];
                for (ch, &v) in token.iter().enumerate() {
                    out[(i * c + ch) * hw + p] = v;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_of_vit_and_patch_only_sequences() {
        let vit = TokenGrid::of(&[1, 197, 768]).expect("ViT-B/16");
        assert_eq!((vit.skip, vit.h, vit.w, vit.channels), (1, 14, 14, 768));
        let patches = TokenGrid::of(&[2, 49, 8]).expect("7x7 patches");
        assert_eq!((patches.skip, patches.h), (0, 7));
        assert_eq!(TokenGrid::of(&[1, 11, 4]), None);
        assert_eq!(TokenGrid::of(&[1, 64, 56, 56]), None);
    }

    #[test]
    fn the_map_drops_the_class_token_and_puts_channels_first() {
        // 2 sequences of 1 + 2x2 tokens with 3 channels: value = 100 i + 10 token + channel.
        let grid = TokenGrid::of(&[2, 5, 3]).unwrap();
        let values: Vec<f32> = (0..2)
            .flat_map(|i| {
                (0..5).flat_map(move |t| (0..3).map(move |c| (100 * i + 10 * t + c) as f32))
            })
            .collect();
        let map = grid.map_values(&values, 2);
        // [i=1, channel 2, row 1, column 0] is patch 2, token 3.
        assert_eq!(map[(3 + 2) * 4 + 2], 132.0);
        let device = Device::flex();
        let feature = Feature::from(Tensor::<3>::from_data(
            burn::tensor::TensorData::new(values, [2, 5, 3]),
            &device,
        ));
        let tensor = grid.to_map(feature).expect("fits");
        assert_eq!(tensor.dims(), [2, 3, 2, 2]);
        assert_eq!(tensor.to_vec_f32().unwrap(), map);
    }
}
