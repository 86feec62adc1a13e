use crate::Feature;

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
