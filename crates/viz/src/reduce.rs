use crate::{Result, VizError};

/// One sample's activation `[C, H, W]`, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct FeatureMap<'a> {
    /// Row-major values, `C * H * W` of them.
    pub values: &'a [f32],
    /// `[C, H, W]`.
    pub shape: [usize; 3],
}

impl<'a> FeatureMap<'a> {
    /// Sample `index` of a batch tensor's values and shape (`[N, C, H, W]`, or `[N, F]` seen as
    /// `[F, 1, 1]`).
    pub fn sample(values: &'a [f32], shape: &[usize], index: usize) -> Result<Self> {
        let shape3 = match *shape {
            [_, c, h, w] => [c, h, w],
            [_, f] => [f, 1, 1],
            _ => {
                return Err(VizError::Shape {
                    kind: "picture",
                    shape: shape.to_vec(),
                    reason: "expected [N, C, H, W] or [N, F]".into(),
                });
            }
        };
        let per: usize = shape3.iter().product();
        let start = index * per;
        if per == 0 || values.len() < start + per {
            return Err(VizError::Shape {
                kind: "picture",
                shape: shape.to_vec(),
                reason: format!("no sample {index} in {} values", values.len()),
            });
        }
        Ok(Self {
            values: &values[start..start + per],
            shape: shape3,
        })
    }

    /// Channel `c` as an `H * W` plane.
    pub fn channel(&self, c: usize) -> &'a [f32] {
        let plane = self.shape[1] * self.shape[2];
        &self.values[c * plane..(c + 1) * plane]
    }
}

/// How channels are combined into one map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduce {
    /// Sum over channels, as the article's `out[0].transpose(0, 1).sum(1)`.
    #[default]
    Sum,
    /// Mean over channels.
    Mean,
    /// Maximum over channels.
    Max,
}

impl Reduce {
    /// The word used in titles.
    pub fn label(self) -> &'static str {
        match self {
            Reduce::Sum => "sum",
            Reduce::Mean => "mean",
            Reduce::Max => "max",
        }
    }

    /// Combines the channels of `map` into one `H * W` plane.
    pub fn apply(self, map: &FeatureMap<'_>) -> Vec<f32> {
        let [c, h, w] = map.shape;
        let init = if self == Reduce::Max {
            f32::NEG_INFINITY
        } else {
            0.0
        };
        let mut out = vec![init; h * w];
        for ch in 0..c {
            for (o, &v) in out.iter_mut().zip(map.channel(ch)) {
                *o = if self == Reduce::Max {
                    o.max(v)
                } else {
                    *o + v
                };
            }
        }
        if self == Reduce::Mean && c > 0 {
            out.iter_mut().for_each(|v| *v /= c as f32);
        }
        out
    }
}

/// `(min, max)` of finite values, widened when equal so a scale can be drawn: the colour scale
/// of a picture of `values` (of several maps' values together, for one shared scale).
pub fn range(values: &[f32]) -> (f32, f32) {
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        (0.0, 1.0)
    } else if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_over_channels() {
        let values = [1.0, 2.0, 3.0, 4.0, 10.0, -2.0, 0.0, 4.0];
        let map = FeatureMap {
            values: &values,
            shape: [2, 2, 2],
        };
        assert_eq!(Reduce::Sum.apply(&map), [11.0, 0.0, 3.0, 8.0]);
        assert_eq!(Reduce::Mean.apply(&map), [5.5, 0.0, 1.5, 4.0]);
        assert_eq!(Reduce::Max.apply(&map), [10.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn sample_picks_one_batch_entry() {
        let values: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let map = FeatureMap::sample(&values, &[2, 2, 2, 2], 1).unwrap();
        assert_eq!(map.values[0], 8.0);
        assert!(FeatureMap::sample(&values, &[2, 2, 2, 2], 2).is_err());
        assert_eq!(
            FeatureMap::sample(&values, &[2, 8], 0).unwrap().shape,
            [8, 1, 1]
        );
    }
}
