use crate::{ExtractError, Result};

/// The nodes to return, as `(query, output key)` pairs in request order.
///
/// A query is a node name (`layer1.0.relu_1`) or a module path (`layer3`). Lists of names use
/// each name as its own key; pairs map a query to a key of the caller's choice, like the dict
/// form of torchvision's `return_nodes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnNodes(pub Vec<(String, String)>);

impl ReturnNodes {
    /// Parses the CLI form: comma-separated `query` or `query=key` items.
    pub fn parse(spec: &str) -> Result<Self> {
        let mut pairs = Vec::new();
        for item in spec.split(',') {
            let item = item.trim();
            let (query, key) = match item.split_once('=') {
                Some((q, k)) => (q.trim(), k.trim()),
                None => (item, item),
            };
            if query.is_empty() || key.is_empty() {
                return Err(ExtractError::BadRequest {
                    item: item.to_string(),
                    reason: "expected 'query' or 'query=key' with both parts non-empty".into(),
                });
            }
            pairs.push((query.to_string(), key.to_string()));
        }
        Ok(Self(pairs))
    }

    /// Queries with output keys of the caller's choice (torchvision's dict form).
    pub fn aliased<Q, K>(pairs: impl IntoIterator<Item = (Q, K)>) -> Self
    where
        Q: AsRef<str>,
        K: AsRef<str>,
    {
        Self(
            pairs
                .into_iter()
                .map(|(q, k)| (q.as_ref().to_string(), k.as_ref().to_string()))
                .collect(),
        )
    }

    /// Whether nothing is requested.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<S: AsRef<str>> From<&[S]> for ReturnNodes {
    fn from(names: &[S]) -> Self {
        Self(
            names
                .iter()
                .map(|n| (n.as_ref().to_string(), n.as_ref().to_string()))
                .collect(),
        )
    }
}

impl<S: AsRef<str>, const N: usize> From<[S; N]> for ReturnNodes {
    fn from(names: [S; N]) -> Self {
        Self::from(&names[..])
    }
}

impl From<Vec<String>> for ReturnNodes {
    fn from(names: Vec<String>) -> Self {
        Self::from(&names[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_aliases() {
        let r = ReturnNodes::parse("layer1, layer3=feat3,fc").unwrap();
        assert_eq!(
            r.0,
            [("layer1", "layer1"), ("layer3", "feat3"), ("fc", "fc")]
                .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    #[test]
    fn rejects_empty_items() {
        for spec in ["", "a,,b", "=k", "q="] {
            assert!(
                matches!(
                    ReturnNodes::parse(spec),
                    Err(ExtractError::BadRequest { .. })
                ),
                "{spec}"
            );
        }
    }
}
