//! The module scopes of a diagram as a tree, for the writers that nest them.

use std::collections::BTreeMap;

use super::fold::Diagram;

/// One step of [`Scopes::walk`].
pub(super) enum Step {
    /// A box, `depth` scopes deep.
    Box(usize, usize),
    /// A scope opens (its dotted path), `depth` deep; its boxes and scopes follow.
    Open(String, usize),
    /// The scope opened last closes, `depth` deep.
    Close(usize),
}

/// The module scopes of a diagram's boxes as a tree: which boxes sit directly in a scope, and
/// which scopes sit directly under it. Shared by the writers.
pub(super) struct Scopes {
    /// Every scope path that holds a box, and every prefix of one, in first-seen order.
    paths: Vec<Vec<String>>,
    /// Boxes by the scope they sit directly in.
    boxes: BTreeMap<Vec<String>, Vec<usize>>,
}

impl Scopes {
    pub(super) fn of(diagram: &Diagram) -> Self {
        let mut paths: Vec<Vec<String>> = Vec::new();
        let mut boxes: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
        for (i, b) in diagram.boxes.iter().enumerate() {
            for depth in 1..=b.scope.len() {
                let prefix = b.scope[..depth].to_vec();
                if !paths.contains(&prefix) {
                    paths.push(prefix);
                }
            }
            boxes.entry(b.scope.clone()).or_default().push(i);
        }
        Scopes { paths, boxes }
    }

    /// Every scope, outer ones before the scopes inside them.
    pub(super) fn all(&self) -> impl Iterator<Item = &Vec<String>> {
        self.paths.iter()
    }

    /// The boxes directly in `path`.
    pub(super) fn boxes_in(&self, path: &[String]) -> &[usize] {
        self.boxes.get(path).map_or(&[], Vec::as_slice)
    }

    /// Visits the tree depth first: a scope's own boxes, then each scope under it between its
    /// `Open` and `Close`.
    pub(super) fn walk(&self, visit: &mut impl FnMut(Step)) {
        self.walk_from(&[], visit);
    }

    fn walk_from(&self, path: &[String], visit: &mut impl FnMut(Step)) {
        for &b in self.boxes_in(path) {
            visit(Step::Box(b, path.len()));
        }
        for child in self.children(path) {
            visit(Step::Open(child.join("."), child.len()));
            self.walk_from(child, visit);
            visit(Step::Close(child.len()));
        }
    }

    /// The scopes directly under `path`.
    pub(super) fn children<'a>(
        &'a self,
        path: &'a [String],
    ) -> impl Iterator<Item = &'a Vec<String>> + 'a {
        self.paths
            .iter()
            .filter(move |p| p.len() == path.len() + 1 && p.starts_with(path))
    }
}
