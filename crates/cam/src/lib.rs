//! Class activation maps: which part of an image made a classifier choose a class, from a
//! named layer's activations and their gradients, as pytorch-grad-cam computes them.
//!
//! A [`Cam`] wraps a traced model with one or more target layers (node queries, as
//! extraction takes them). [`Cam::run`] runs the model (with a backward pass of the target
//! logit for the gradient methods), makes each layer's map with a [`Method`] from
//! [`METHODS`], and finishes it the way pytorch-grad-cam does: rectified, scaled to [0, 1]
//! per image, resized to the input with OpenCV's bilinear, averaged over layers and scaled
//! again. The result equals the package's `cam(input_tensor=x, targets=...)`.

mod cam;
mod eigen;
mod error;
mod method;
mod scale;
mod score;

pub use cam::{Activations, Cam, CamOutput, LayerValues, Target};
pub use error::{CamError, Result};
pub use method::{METHODS, Method, find};
pub use scale::Maps;
