use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::relu;

/// One extracted tensor: a feature map `[N, C, H, W]` or a vector batch `[N, F]`.
#[derive(Debug, Clone)]
pub enum Feature {
    /// A rank-4 activation (convolution, pooling, ...).
    Map(Tensor<4>),
    /// A rank-2 activation (`flatten`, `fc`, ...).
    Vector(Tensor<2>),
}

impl Feature {
    /// The tensor's shape.
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Feature::Map(t) => t.dims().to_vec(),
            Feature::Vector(t) => t.dims().to_vec(),
        }
    }

    /// Reads the values back from the device.
    pub fn to_data(&self) -> TensorData {
        match self {
            Feature::Map(t) => t.to_data(),
            Feature::Vector(t) => t.to_data(),
        }
    }

    /// `max(x, 0)` elementwise.
    pub(crate) fn relu(self) -> Feature {
        match self {
            Feature::Map(t) => Feature::Map(relu(t)),
            Feature::Vector(t) => Feature::Vector(relu(t)),
        }
    }

    /// The values as `f32`, row-major, converting from the tensor's float type if needed.
    pub fn to_vec_f32(&self) -> Vec<f32> {
        let data = self.to_data().convert::<f32>();
        data.try_to_vec::<f32>().unwrap_or_default()
    }
}

/// Extracted tensors by output key, in request order.
#[derive(Debug, Clone, Default)]
pub struct Features {
    entries: Vec<(String, Feature)>,
}

impl Features {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            entries: Vec::with_capacity(n),
        }
    }

    pub(crate) fn push(&mut self, key: String, feature: Feature) {
        self.entries.push((key, feature));
    }

    /// The tensor returned under `key`.
    pub fn get(&self, key: &str) -> Option<&Feature> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, f)| f)
    }

    /// Output keys in request order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// `(key, tensor)` pairs in request order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Feature)> {
        self.entries.iter().map(|(k, f)| (k.as_str(), f))
    }

    /// Number of outputs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was requested.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl IntoIterator for Features {
    type Item = (String, Feature);
    type IntoIter = std::vec::IntoIter<(String, Feature)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}
