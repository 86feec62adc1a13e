use featx_extract::Feature;
use serde::{Deserialize, Serialize};

/// Spatial pooling applied to feature maps before they are stored (`--pool`), so that a large
/// run of a late layer stores `[C]` per image instead of `[C, H, W]`. Vectors pass unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pool {
    /// Store maps as they are.
    #[default]
    None,
    /// Mean over height and width (torch's `adaptive_avg_pool2d(x, 1).flatten(1)`).
    Avg,
    /// Maximum over height and width (`adaptive_max_pool2d(x, 1).flatten(1)`).
    Max,
}

impl Pool {
    /// Pools a feature map (`[N, C, H, W]`) on its device, so only the pooled values travel
    /// back; other ranks pass unchanged.
    pub fn apply(self, feature: Feature) -> Feature {
        if self == Pool::None {
            return feature;
        }
        match feature.into_rank::<4>() {
            Ok(t) => {
                let [n, c, h, w] = t.dims();
                let flat = t.reshape([n, c, h * w]);
                let pooled = match self {
                    Pool::Max => flat.max_dim(2),
                    _ => flat.mean_dim(2),
                };
                Feature::from(pooled.reshape([n, c]))
            }
            Err(other) => other,
        }
    }

    /// The per-image shape after pooling, given the per-image shape before.
    pub fn row_shape(self, shape: &[usize]) -> Vec<usize> {
        match (self, shape) {
            (Pool::Avg | Pool::Max, [c, _, _]) => vec![*c],
            _ => shape.to_vec(),
        }
    }
}

impl std::str::FromStr for Pool {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Pool::None),
            "avg" => Ok(Pool::Avg),
            "max" => Ok(Pool::Max),
            other => Err(format!(
                "unknown pooling {other:?}: expected avg, max or none"
            )),
        }
    }
}
