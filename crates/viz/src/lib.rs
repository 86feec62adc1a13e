//! Pictures of extracted features, as PNG files people want to look at.
//!
//! - [`heatmap`]: the seed article's picture — one sample's feature map reduced over channels
//!   (`plt.imshow(out[0].sum(0))`), in viridis, with a colour bar and a descriptive title;
//! - [`grid`]: one tile per channel, each normalised on its own;
//! - [`overlay`]: the reduced map upsampled and blended over the model's input image;
//! - [`bars`]: the largest entries of a vector output (`fc`, `avgpool`, `flatten`);
//! - [`show_cam_on_image`] / [`cam_figure`]: a class activation map over the image, as
//!   pytorch-grad-cam draws it;
//! - [`diagram`]: the traced graph itself, as DOT, Mermaid or SVG, folded to module depth.
//!
//! Everything is drawn with plotters into an RGB buffer and encoded with `image`.

mod bars;
mod cam;
mod canvas;
pub mod diagram;
mod error;
mod grid;
mod heatmap;
mod overlay;
mod reduce;

pub use bars::bars;
pub use cam::{JET, cam_figure, show_cam_on_image};
pub use canvas::{Figure, Rect};
pub use error::{Result, VizError};
pub use grid::{Channels, grid};
pub use heatmap::{heatmap, heatmap_in};
pub use overlay::overlay;
pub use reduce::{FeatureMap, Reduce, range};
