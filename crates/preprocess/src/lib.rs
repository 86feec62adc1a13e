//! Images in, model inputs out: decoding with safety limits, then torchvision's
//! `Resize(256) -> CenterCrop(224) -> ToTensor -> Normalize(ImageNet)` with PIL's exact
//! semantics, so featx sees the same pixels a torchvision pipeline would.

mod decode;
mod error;
mod resample;
mod transform;

pub use decode::{DecodeLimits, load_rgb, load_rgb_with};
pub use error::{PreprocessError, Result};
pub use resample::{Filter, resize, resize_bilinear};
pub use transform::{Preprocess, Preprocessed, batch_tensor};
