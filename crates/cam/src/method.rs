//! The CAM methods, in one registry: how each turns a layer's activations (and their
//! gradients) into one map per image, as pytorch-grad-cam's classes compute it.

use crate::{CamError, Result};

/// One CAM method.
#[derive(Debug)]
pub struct Method {
    /// The name `--method` takes (`gradcam`, `gradcam++`, ...).
    pub name: &'static str,
    /// pytorch-grad-cam's class for it.
    pub torch_class: &'static str,
    /// One line about it.
    pub about: &'static str,
    pub(crate) compute: Compute,
}

/// How a method makes a layer's map.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Compute {
    /// One weight per channel from the channel's activations and gradients (both `H * W`
    /// values); the map is the weighted sum of the channels.
    ChannelWeights(fn(activations: &[f32], gradients: &[f32]) -> f64),
    /// The map is the sum over channels of `f(activation, gradient)` at each position.
    Elementwise(fn(activation: f32, gradient: f32) -> f32),
    /// The activations' first principal component (no gradients).
    Eigen,
    /// One weight per channel from the class score of the input masked by that channel
    /// (no gradients).
    Score,
}

/// Every method featx computes.
pub static METHODS: &[Method] = &[
    Method {
        name: "gradcam",
        torch_class: "GradCAM",
        about: "channels weighted by their mean gradient",
        compute: Compute::ChannelWeights(gradcam),
    },
    Method {
        name: "gradcam++",
        torch_class: "GradCAMPlusPlus",
        about: "channels weighted by positive gradients with second- and third-order terms",
        compute: Compute::ChannelWeights(gradcam_plus_plus),
    },
    Method {
        name: "xgradcam",
        torch_class: "XGradCAM",
        about: "channels weighted by gradients times activations, normalised per channel",
        compute: Compute::ChannelWeights(xgradcam),
    },
    Method {
        name: "hirescam",
        torch_class: "HiResCAM",
        about: "gradients times activations at each position, summed over channels",
        compute: Compute::Elementwise(|a, g| g * a),
    },
    Method {
        name: "layercam",
        torch_class: "LayerCAM",
        about: "positive gradients times activations at each position",
        compute: Compute::Elementwise(|a, g| g.max(0.0) * a),
    },
    Method {
        name: "eigencam",
        torch_class: "EigenCAM",
        about: "the activations' first principal component (no gradients, no class)",
        compute: Compute::Eigen,
    },
    Method {
        name: "scorecam",
        torch_class: "ScoreCAM",
        about: "channels weighted by the class score of the input masked by each channel",
        compute: Compute::Score,
    },
    Method {
        name: "gradcam-elementwise",
        torch_class: "GradCAMElementWise",
        about: "rectified gradients times activations at each position",
        compute: Compute::Elementwise(|a, g| (g * a).max(0.0)),
    },
];

/// The method called `name`, or [`CamError::UnknownMethod`] listing them all.
pub fn find(name: &str) -> Result<&'static Method> {
    METHODS
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| CamError::UnknownMethod {
            name: name.to_string(),
            known: METHODS.iter().map(|m| m.name).collect(),
        })
}

impl Method {
    /// Whether the method needs gradients (a backward pass) of the target score.
    pub fn uses_gradients(&self) -> bool {
        matches!(
            self.compute,
            Compute::ChannelWeights(_) | Compute::Elementwise(_)
        )
    }
}

/// Grad-CAM: the spatial mean of the gradient.
fn gradcam(_: &[f32], g: &[f32]) -> f64 {
    g.iter().map(|&v| f64::from(v)).sum::<f64>() / g.len().max(1) as f64
}

/// Grad-CAM++ (eq. 19 of arXiv:1710.11063, as pytorch-grad-cam writes it):
/// `a = g^2 / (2 g^2 + sum(A) g^3 + 1e-6)` where `g != 0`, weight `sum(relu(g) a)`.
fn gradcam_plus_plus(a: &[f32], g: &[f32]) -> f64 {
    let sum_a: f64 = a.iter().map(|&v| f64::from(v)).sum();
    g.iter()
        .map(|&g| {
            if g == 0.0 {
                return 0.0;
            }
            let g = f64::from(g);
            let g2 = g * g;
            let alpha = g2 / (2.0 * g2 + sum_a * g2 * g + 1e-6);
            g.max(0.0) * alpha
        })
        .sum()
}

/// XGrad-CAM: `sum(g A) / (sum(A) + 1e-7)`.
fn xgradcam(a: &[f32], g: &[f32]) -> f64 {
    let sum_a: f64 = a.iter().map(|&v| f64::from(v)).sum();
    a.iter()
        .zip(g)
        .map(|(&a, &g)| f64::from(g) * f64::from(a) / (sum_a + 1e-7))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        for (i, m) in METHODS.iter().enumerate() {
            assert!(METHODS[..i].iter().all(|o| o.name != m.name), "{}", m.name);
            assert_eq!(find(m.name).expect("listed").name, m.name);
        }
        let err = find("gradcam+").unwrap_err();
        assert!(err.to_string().contains("gradcam++"), "{err}");
    }

    #[test]
    fn channel_weights_by_hand() {
        let a = [1.0, 3.0];
        let g = [0.5, -1.0];
        assert!((gradcam(&a, &g) + 0.25).abs() < 1e-12);
        // (0.5 * 1 - 1 * 3) / 4 = -0.625
        assert!((xgradcam(&a, &g) + 0.625).abs() < 1e-6);
        // Only g = 0.5 > 0 counts: 0.5 * 0.25 / (0.5 + 4 * 0.125 + 1e-6).
        let expected = 0.5 * 0.25 / (0.5 + 0.5 + 1e-6);
        assert!((gradcam_plus_plus(&a, &g) - expected).abs() < 1e-12);
    }
}
