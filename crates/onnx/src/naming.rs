//! Which PyTorch module a node ran in, from what each exporter leaves in the file, so that a
//! module path (`layer3`) selects the last node inside that module as it does for the zoo.

use onnx_ir::NodeProto;

/// The dynamo exporter's metadata key: the node's enclosing modules, outermost first.
const NAME_SCOPES: &str = "pkg.torch.onnx.name_scopes";

/// The dotted module path of `node` (`layer1.0.conv1`), if the file records one.
pub fn module_path(node: &NodeProto) -> Option<String> {
    if let Some(scopes) = node.metadata_props.iter().find(|p| p.key == NAME_SCOPES) {
        return from_name_scopes(&scopes.value);
    }
    from_scoped_name(&node.name)
}

/// The TorchScript exporter names a node `/<scope>/<scope>/<Op>[_n]`: each scope is a module's
/// attribute name, except that children of containers are written with their parent's name
/// in front (`/layer1/layer1.0/conv1/Conv`, `/features/features.1/conv/conv.0/conv.0.0/Conv`).
fn from_scoped_name(name: &str) -> Option<String> {
    let rest = name.strip_prefix('/')?;
    let mut parts: Vec<&str> = rest.split('/').collect();
    parts.pop(); // The op itself.
    let mut path: Vec<&str> = Vec::new();
    let mut previous = "";
    for part in parts.into_iter().filter(|p| !p.is_empty()) {
        let local = match part
            .strip_prefix(previous)
            .and_then(|p| p.strip_prefix('.'))
        {
            Some(child) if !previous.is_empty() => child,
            _ => part,
        };
        path.push(local);
        previous = part;
    }
    (!path.is_empty()).then(|| path.join("."))
}

/// The dynamo exporter's scopes are a Python list literal: the root module (`''`), the full
/// path of each enclosing module, then the op itself
/// (`['', 'layer1', 'layer1.0', 'layer1.0.bn1', '_native_batch_norm_legit_no_training_1']`,
/// in step with `pkg.torch.onnx.class_hierarchy`, whose last entry is the aten op). The module
/// is the last entry before the op.
fn from_name_scopes(value: &str) -> Option<String> {
    let items: Vec<String> = value
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|s| s.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
        .collect();
    let modules = &items[..items.len().saturating_sub(1)];
    modules.iter().rev().find(|m| !m.is_empty()).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torchscript_scopes_drop_the_parents_prefix() {
        assert_eq!(
            from_scoped_name("/layer1/layer1.0/conv1/Conv").as_deref(),
            Some("layer1.0.conv1")
        );
        assert_eq!(
            from_scoped_name("/features/features.1/conv/conv.0/conv.0.0/Conv").as_deref(),
            Some("features.1.conv.0.0")
        );
        assert_eq!(from_scoped_name("/Flatten").as_deref(), None);
        assert_eq!(from_scoped_name("node_Conv_5"), None);
    }

    #[test]
    fn dynamo_scopes_take_the_innermost() {
        assert_eq!(
            from_name_scopes("['', 'layer1', 'layer1.0', 'layer1.0.bn1', '_native_batch_norm_1']")
                .as_deref(),
            Some("layer1.0.bn1")
        );
        assert_eq!(
            from_name_scopes("['', 'relu', 'relu']").as_deref(),
            Some("relu")
        );
        assert_eq!(from_name_scopes("['', 'flatten']"), None);
    }
}
