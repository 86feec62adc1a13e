//! A layered layout computed here, and the SVG drawn from it.
//!
//! Traced graphs are close to chains, in an order where every node comes after its inputs, so
//! a longest-path layering in that order is enough: a box's layer is one below its lowest
//! input, boxes of a layer sit side by side in traced order, and module scopes are the
//! rectangles around their boxes. Linear in the graph's size, so a 500-node graph lays out in
//! well under a millisecond; written here because the layout crates either lack nested
//! groups or were reported to stall on graphs of this size.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::fold::{Diagram, DiagramBox};
use super::scopes::Scopes;

/// Box width and height, and the gaps between boxes and layers, in SVG user units.
const WIDTH: f64 = 200.0;
const HEIGHT: f64 = 46.0;
const GAP_X: f64 = 30.0;
const GAP_Y: f64 = 34.0;
/// Space a cluster keeps around its boxes, and its title line.
const PAD: f64 = 8.0;
const TITLE: f64 = 14.0;

/// Where every box and every module scope is drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Each box's top-left corner, in box order.
    pub positions: Vec<(f64, f64)>,
    /// Each module scope's rectangle `(path, x, y, width, height)`, outer scopes first.
    pub clusters: Vec<(String, f64, f64, f64, f64)>,
    /// The picture's width and height.
    pub size: (f64, f64),
}

/// Lays the diagram out in layers, top to bottom.
pub fn layout(diagram: &Diagram) -> Layout {
    let n = diagram.boxes.len();
    let mut layer = vec![0usize; n];
    let mut inputs: Vec<Vec<usize>> = vec![Vec::new(); n];
    for edge in &diagram.edges {
        inputs[edge.to].push(edge.from);
    }
    for b in 0..n {
        layer[b] = inputs[b]
            .iter()
            .filter(|&&i| i < b)
            .map(|&i| layer[i] + 1)
            .max()
            .unwrap_or(0);
    }
    let mut column = vec![0usize; n];
    let mut width_of: BTreeMap<usize, usize> = BTreeMap::new();
    let mut first_of: BTreeMap<usize, usize> = BTreeMap::new();
    for b in 0..n {
        let slot = width_of.entry(layer[b]).or_insert(0);
        column[b] = *slot;
        *slot += 1;
        first_of.entry(layer[b]).or_insert(b);
    }
    let scopes = Scopes::of(diagram);
    let deepest = scopes.all().map(Vec::len).max().unwrap_or(0);
    // A cluster at depth d keeps room for every cluster nested in it: its title and padding
    // above, padding around.
    let levels = |d: usize| (deepest + 1).saturating_sub(d) as f64;
    let top = |d: usize| levels(d) * (TITLE + PAD);
    let side = |d: usize| levels(d) * PAD;
    // Each layer's top: the gap grows where clusters close below one layer and open above
    // the next (judged by each layer's first box; traced graphs are close to chains).
    let mut layer_y = Vec::with_capacity(width_of.len());
    let mut y = side(1) + top(1);
    let mut previous: Option<&[String]> = None;
    for &b in first_of.values() {
        let scope = diagram.boxes[b].scope.as_slice();
        if let Some(prev) = previous {
            let common = prev.iter().zip(scope).take_while(|(a, b)| a == b).count();
            let closing = if prev.len() > common {
                side(common + 1)
            } else {
                0.0
            };
            let opening = if scope.len() > common {
                top(common + 1)
            } else {
                0.0
            };
            y += HEIGHT + GAP_Y.max(closing + opening + PAD * 2.0);
        }
        layer_y.push(y);
        previous = Some(scope);
    }
    let left = side(1) + PAD;
    let positions: Vec<(f64, f64)> = (0..n)
        .map(|b| {
            (
                left + column[b] as f64 * (WIDTH + GAP_X),
                layer_y.get(layer[b]).copied().unwrap_or(0.0),
            )
        })
        .collect();
    let mut clusters = Vec::new();
    for path in scopes.all() {
        let members: Vec<usize> = (0..n)
            .filter(|&b| diagram.boxes[b].scope.starts_with(path))
            .collect();
        if members.is_empty() {
            continue;
        }
        let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for &b in &members {
            let (x, y) = positions[b];
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x + WIDTH);
            y1 = y1.max(y + HEIGHT);
        }
        let d = path.len();
        clusters.push((
            path.join("."),
            x0 - side(d),
            y0 - top(d),
            x1 - x0 + 2.0 * side(d),
            y1 - y0 + top(d) + side(d),
        ));
    }
    let columns = width_of.values().copied().max().unwrap_or(1) as f64;
    let bottom = layer_y.last().copied().unwrap_or(0.0) + HEIGHT + side(1) + PAD;
    Layout {
        positions,
        clusters,
        size: (2.0 * left + columns * (WIDTH + GAP_X) - GAP_X, bottom),
    }
}

/// The diagram drawn as a standalone SVG document: one `<g class="node">` per box with its
/// name as text (so a reader or a test finds nodes by name), one `<g class="edge">` per edge
/// with the shape it carries.
pub fn svg(diagram: &Diagram) -> String {
    let l = layout(diagram);
    let (w, h) = l.size;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" font-family=\"Helvetica, Arial, sans-serif\">"
    );
    out.push_str("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#555\"/></marker></defs>\n");
    for (name, x, y, cw, ch) in &l.clusters {
        let _ = writeln!(
            out,
            "<g class=\"cluster\" data-scope=\"{}\" tabindex=\"0\" role=\"group\"><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{cw:.1}\" height=\"{ch:.1}\" rx=\"6\" fill=\"#4a7bd0\" fill-opacity=\"0.06\" stroke=\"#4a7bd0\" stroke-opacity=\"0.5\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#345\">{}</text></g>",
            escape(name),
            x + 6.0,
            y + 12.0,
            escape(name)
        );
    }
    for edge in &diagram.edges {
        let (fx, fy) = l.positions[edge.from];
        let (tx, ty) = l.positions[edge.to];
        let (x1, y1, x2, y2) = (fx + WIDTH / 2.0, fy + HEIGHT, tx + WIDTH / 2.0, ty);
        let _ = writeln!(
            out,
            "<g class=\"edge\" data-from=\"{}\" data-to=\"{}\"><line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"#555\" marker-end=\"url(#arrow)\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"8\" fill=\"#666\">{}</text></g>",
            escape(&diagram.boxes[edge.from].name),
            escape(&diagram.boxes[edge.to].name),
            (x1 + x2) / 2.0 + 4.0,
            (y1 + y2) / 2.0 + 3.0,
            escape(&edge.shape)
        );
    }
    for (b, (x, y)) in diagram.boxes.iter().zip(&l.positions) {
        let _ = writeln!(
            out,
            "<g class=\"node\" data-name=\"{name}\" data-op=\"{op}\" tabindex=\"0\" role=\"button\" aria-label=\"{name}: {aria}\"><title>{name}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" rx=\"5\" fill=\"{fill}\" stroke=\"#333\"/><text x=\"{tx:.1}\" y=\"{t1:.1}\" font-size=\"11\" text-anchor=\"middle\">{short}</text><text x=\"{tx:.1}\" y=\"{t2:.1}\" font-size=\"9\" text-anchor=\"middle\" fill=\"#444\">{detail}</text></g>",
            name = escape(&b.name),
            op = escape(&b.op),
            aria = escape(&detail(b)),
            fill = if b.op == "module" {
                "#e8eefb"
            } else {
                "#ffffff"
            },
            tx = x + WIDTH / 2.0,
            t1 = y + 18.0,
            t2 = y + 34.0,
            short = escape(&ellipsis(&b.name, 32)),
            detail = escape(&ellipsis(&detail(b), 40)),
        );
    }
    out.push_str("</svg>\n");
    out
}

/// The second line of a box: op and shape, or a folded module's node count and shapes.
fn detail(b: &DiagramBox) -> String {
    if b.op == "module" {
        format!(
            "{} nodes, {} → {}",
            b.nodes,
            b.input_shapes.join(", "),
            b.output_shape
        )
    } else {
        format!("{} · {}", b.op, b.output_shape)
    }
}

/// `s` cut to `max` characters with an ellipsis (the full name is the box's `<title>`).
fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let tail: String = s
            .chars()
            .rev()
            .take(max - 1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    }
}

/// Text and attribute values with XML's special characters escaped.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::super::fold::fold;
    use super::super::tests::block;
    use super::*;

    #[test]
    fn layers_follow_the_data_flow_and_clusters_hold_their_boxes() {
        let d = fold(&block(), None);
        let l = layout(&d);
        // A chain: each box one layer below the previous, the add below both its inputs.
        let ys: Vec<f64> = l.positions.iter().map(|p| p.1).collect();
        assert!(ys.windows(2).all(|w| w[0] < w[1]), "{ys:?}");
        let names: Vec<&str> = l.clusters.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(names, ["layer1", "layer1.0"]);
        let (_, x, y, w, h) = l.clusters[0];
        for b in 2..=4 {
            let (bx, by) = l.positions[b];
            assert!(bx >= x && by >= y && bx + WIDTH <= x + w && by + HEIGHT <= y + h);
        }
        // The outer cluster encloses the inner one.
        let (_, ix, iy, iw, ih) = l.clusters[1];
        assert!(ix > x && iy > y && ix + iw < x + w && iy + ih < y + h);
    }

    #[test]
    fn sibling_clusters_do_not_overlap() {
        // Two blocks one after the other: `layer1.0` then `layer2.0`.
        let mut nodes = block();
        let mut second: Vec<_> = nodes[2..5].to_vec();
        for (i, node) in second.iter_mut().enumerate() {
            node.name = node.name.replace("layer1", "layer2");
            node.scope[0] = "layer2".into();
            node.inputs = if i == 0 { vec![4] } else { vec![4 + i] };
        }
        nodes.truncate(5);
        nodes.extend(second);
        let l = layout(&fold(&nodes, None));
        let rect = |name: &str| {
            l.clusters
                .iter()
                .find(|c| c.0 == name)
                .cloned()
                .expect(name)
        };
        let (_, _, y1, _, h1) = rect("layer1");
        let (_, _, y2, _, _) = rect("layer2");
        assert!(
            y1 + h1 < y2,
            "layer1 ends at {}, layer2 starts at {y2}",
            y1 + h1
        );
        let (_, _, iy, _, ih) = rect("layer1.0");
        assert!(iy + ih < y2);
    }

    #[test]
    fn the_svg_has_one_named_group_per_box_and_edge() {
        let d = fold(&block(), Some(1));
        let text = svg(&d);
        assert!(text.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(text.trim_end().ends_with("</svg>"));
        assert_eq!(text.matches("<g class=\"node\"").count(), d.boxes.len());
        assert_eq!(text.matches("<g class=\"edge\"").count(), d.edges.len());
        assert!(text.contains("data-name=\"layer1\""));
        assert!(text.contains("3 nodes, 1x4x8x8 → 1x4x8x8"), "{text}");
    }

    #[test]
    fn text_is_escaped_and_long_names_shortened() {
        assert_eq!(escape("a<b>&\"c\""), "a&lt;b&gt;&amp;&quot;c&quot;");
        assert_eq!(ellipsis("abcdef", 4), "…def");
        assert_eq!(ellipsis("abc", 4), "abc");
    }
}
