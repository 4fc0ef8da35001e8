//! The shape of the pickled root, reported next to the flattened tensor table.
//!
//! Converting flattens every checkpoint into names (`model.0.weight`) and drops non-tensor
//! values, so the table alone cannot tell a state dict from `{"model": sd, "epoch": 3}`. A
//! caller that must hand back what `torch.load(weights_only=True)` returns (the Python
//! `guard_torch_load`) needs to know whether the root *was* a flat state dict, whether it was an
//! `OrderedDict` with `_metadata`, and which tensors were `nn.Parameter`s.

use crate::pickle::value::{AttrKey, DictKind, Graph, Node, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `_metadata` of a state dict: (module prefix, {"version": n}) in the pickle's order, as
/// `nn.Module.state_dict` records it for `load_state_dict`'s version migrations.
pub type StateDictMetadata = Vec<(String, BTreeMap<String, i64>)>;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// The root's Python type: `dict`, `OrderedDict`, `tensor`, `ndarray`, `list`, `tuple`,
    /// `object` or `other`.
    pub root: String,
    /// The root is a `dict`/`OrderedDict` whose keys are all `str` and whose values are all
    /// tensors, with no attributes besides a representable `_metadata`: exactly the tensor table.
    pub flat_state_dict: bool,
    /// Tensors pickled as `nn.Parameter`, by name, with their `requires_grad` (flat roots only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, bool>,
    /// The `OrderedDict`'s `_metadata` (flat roots only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dict_metadata: Option<StateDictMetadata>,
}

impl Layout {
    pub fn of(g: &Graph, root: NodeId) -> Layout {
        let mut layout = Layout {
            root: root_type(g.get(root)).into(),
            ..Layout::default()
        };
        let Node::Dict(d) = g.get(root) else {
            return layout;
        };
        if !matches!(d.kind, DictKind::Dict | DictKind::OrderedDict) {
            return layout;
        }
        // Attributes other than a representable `_metadata` make the root more than a table.
        let metadata = match d.attrs.entries() {
            [] => None,
            [(AttrKey::Name(k), v)] if &**k == "_metadata" => match state_dict_metadata(g, *v) {
                Some(m) => Some(m),
                None => return layout,
            },
            _ => return layout,
        };
        let mut parameters = BTreeMap::new();
        for &(k, v) in &d.entries {
            let (Node::Str(name), Node::Tensor(t)) = (g.get(k), g.get(v)) else {
                return layout;
            };
            if let Some(requires_grad) = t.parameter {
                parameters.insert(name.to_string(), requires_grad);
            }
        }
        layout.flat_state_dict = true;
        layout.parameters = parameters;
        layout.state_dict_metadata = metadata;
        layout
    }

    /// Whether this description fits a tensor table with these names: a flat state dict's
    /// parameters and metadata must name no tensor the table lacks. A host that got the layout
    /// from a jailed parser keeps it only then.
    pub fn agrees_with<'a>(&self, names: impl Iterator<Item = &'a str>) -> bool {
        if !self.flat_state_dict {
            return self.parameters.is_empty() && self.state_dict_metadata.is_none();
        }
        let names: std::collections::HashSet<&str> = names.collect();
        self.parameters.keys().all(|p| names.contains(p.as_str()))
    }
}

fn root_type(n: &Node) -> &'static str {
    match n {
        Node::Dict(d) if d.kind == DictKind::OrderedDict => "OrderedDict",
        Node::Dict(d) if d.kind == DictKind::Dict => "dict",
        Node::Tensor(_) => "tensor",
        Node::Array(_) => "ndarray",
        Node::List(_) => "list",
        Node::Tuple(_) => "tuple",
        Node::Object(_) => "object",
        _ => "other",
    }
}

/// The `_metadata` attribute of a state dict: OrderedDict(prefix -> {str: int}), or None when
/// it is anything else (the root is then not representable).
fn state_dict_metadata(g: &Graph, value: NodeId) -> Option<StateDictMetadata> {
    let Node::Dict(prefixes) = g.get(value) else {
        return None;
    };
    let mut out = StateDictMetadata::new();
    for &(prefix, fields) in &prefixes.entries {
        let (Node::Str(prefix), Node::Dict(fields)) = (g.get(prefix), g.get(fields)) else {
            return None;
        };
        let mut entry = BTreeMap::new();
        for &(k, v) in &fields.entries {
            let (Node::Str(k), Node::Int(v)) = (g.get(k), g.get(v)) else {
                return None;
            };
            entry.insert(k.to_string(), *v);
        }
        out.push((prefix.to_string(), entry));
    }
    Some(out)
}
