//! The naming contract: which name each tensor in a value graph gets.
//!
//! - dict keys are kept; nested containers join with `.`; list/tuple items use their index;
//! - objects of unknown classes are walked through their state; a pickled `nn.Module` yields
//!   exactly its `state_dict()` names (`_modules`/`_parameters`/`_buffers` levels disappear);
//! - a file holding one bare tensor names it `tensor`;
//! - two different tensors on one name is an error naming both paths.
//!
//! The walk is iterative with a visit budget, so deep nesting and memo "doubling bombs" (a DAG
//! with 2^40 paths) end with a limit error instead of a stack overflow or an endless loop.

use crate::error::{Error, Result};
use crate::pickle::value::{ArrayData, Graph, Node, NodeId, Object};
use std::collections::{HashMap, HashSet};

/// TorchScript classes: which attributes are parameters/buffers (from `code/` `__parameters__`
/// and `__buffers__` lists), so names match `torch.jit.load(f).state_dict()`.
#[derive(Debug, Default, Clone)]
pub struct ScriptClasses {
    pub classes: HashMap<String, HashSet<String>>,
}

#[derive(Debug, Clone)]
pub struct Named {
    pub name: String,
    pub node: NodeId,
    /// Where it was found, e.g. `$["model"]["0.weight"]`, for error messages.
    pub path: String,
}

enum Step {
    Enter {
        node: NodeId,
        name: String,
        path: String,
        depth: usize,
    },
    Exit(NodeId),
}

pub struct NameWalk<'a> {
    graph: &'a Graph,
    script: Option<&'a ScriptClasses>,
    max_depth: usize,
    max_tensors: usize,
    /// Bytes the pending steps (names and paths not yet visited) may hold: a dict of a million
    /// keys would otherwise queue a million names at once.
    max_pending_bytes: u64,
    budget: u64,
}

/// What one queued step costs besides its strings' bytes: the step and the child tuple it is
/// made from, plus allocator overhead, as on a 64-bit target. Fixed rather than `size_of`, so
/// that the jail and the 32-bit WASI guest stop at the same input.
const STEP_BYTES: u64 = 128;

impl<'a> NameWalk<'a> {
    pub fn new(
        graph: &'a Graph,
        script: Option<&'a ScriptClasses>,
        limits: &crate::limits::Limits,
    ) -> Self {
        let budget = 4 * graph.len() as u64 + 1_000_000;
        NameWalk {
            graph,
            script,
            max_depth: limits.max_depth,
            max_tensors: limits.max_tensors,
            max_pending_bytes: limits.max_graph_bytes,
            budget,
        }
    }

    fn pending_limit(&self) -> Error {
        Error::limit(
            "max_graph_bytes",
            format!(
                "naming the tensors needs more than {} bytes (too many keys)",
                self.max_pending_bytes
            ),
        )
    }

    /// Every tensor/array reachable from `root`, with its name, in pickle order.
    pub fn tensors(&mut self, root: NodeId) -> Result<Vec<Named>> {
        let root = object_scalar(self.graph, root).unwrap_or(root);
        if is_tensor(self.graph.get(root)) {
            return Ok(vec![Named {
                name: "tensor".into(),
                node: root,
                path: "$".into(),
            }]);
        }
        let mut out: Vec<Named> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut ancestors: HashSet<NodeId> = HashSet::new();
        let mut stack = vec![Step::Enter {
            node: root,
            name: String::new(),
            path: "$".into(),
            depth: 0,
        }];
        let mut pending: u64 = 0;
        while let Some(step) = stack.pop() {
            let (node, name, path, depth) = match step {
                Step::Exit(n) => {
                    ancestors.remove(&n);
                    continue;
                }
                Step::Enter {
                    node,
                    name,
                    path,
                    depth,
                } => (node, name, path, depth),
            };
            pending = pending.saturating_sub(STEP_BYTES + (name.len() + path.len()) as u64);
            if self.budget == 0 {
                return Err(Error::limit(
                    "max_nodes",
                    "the value graph has too many paths to name (shared containers nested too often)",
                ));
            }
            self.budget -= 1;
            if depth > self.max_depth {
                return Err(Error::limit(
                    "max_depth",
                    format!("values nested deeper than {}", self.max_depth),
                ));
            }
            // A 0-d object array is its one element (`np.load(...).item()`).
            let node = object_scalar(self.graph, node).unwrap_or(node);
            let n = self.graph.get(node);
            if is_tensor(n) {
                match seen.get(&name) {
                    Some(&i) if out[i].node != node => {
                        return Err(Error::malformed(format!(
                            "two different tensors are both named `{name}`: {} and {path}",
                            out[i].path
                        )))
                    }
                    Some(_) => {}
                    None => {
                        if out.len() >= self.max_tensors {
                            return Err(Error::limit(
                                "max_tensors",
                                format!("more than {} tensors", self.max_tensors),
                            ));
                        }
                        seen.insert(name.clone(), out.len());
                        out.push(Named { name, node, path });
                    }
                }
                continue;
            }
            // Checked before the children's names are made, then charged exactly below.
            let count = self.child_count(node) as u64;
            if pending.saturating_add(count.saturating_mul(STEP_BYTES)) > self.max_pending_bytes {
                return Err(self.pending_limit());
            }
            let children = self.children(node)?;
            if children.is_empty() || !ancestors.insert(node) {
                continue;
            }
            stack.push(Step::Exit(node));
            for (seg, display, child) in children.into_iter().rev() {
                let child_name = if name.is_empty() {
                    seg
                } else {
                    format!("{name}.{seg}")
                };
                let child_path = format!("{path}{display}");
                pending += STEP_BYTES + (child_name.len() + child_path.len()) as u64;
                if pending > self.max_pending_bytes {
                    return Err(self.pending_limit());
                }
                stack.push(Step::Enter {
                    node: child,
                    name: child_name,
                    path: child_path,
                    depth: depth + 1,
                });
            }
        }
        Ok(out)
    }

    /// At most how many children [`Self::children`] returns for `node` (before making them).
    fn child_count(&self, node: NodeId) -> usize {
        match self.graph.get(node) {
            Node::Dict(d) => d.entries.len(),
            Node::List(v) | Node::Tuple(v) | Node::Set(v) | Node::FrozenSet(v) => v.len(),
            Node::Array(a) => match a.data {
                ArrayData::Objects(list) => self.graph.as_seq(list).map_or(0, <[NodeId]>::len),
                _ => 0,
            },
            Node::Object(o) => {
                let state: usize = o.state.iter().map(|&s| self.state_count(s)).sum();
                state + o.dict_items.len() + o.items.len() + o.args.len()
            }
            _ => 0,
        }
    }

    /// At most how many children one BUILD state yields in [`Self::object_children`].
    fn state_count(&self, state: NodeId) -> usize {
        let g = self.graph;
        let entries = |d: NodeId| match g.get(d) {
            Node::Dict(dd) => dd.entries.len(),
            _ => 0,
        };
        if g.dict_get(state, "_parameters").is_some() && g.dict_get(state, "_modules").is_some() {
            return ["_parameters", "_modules", "_buffers"]
                .iter()
                .filter_map(|k| g.dict_get(state, k))
                .map(entries)
                .sum();
        }
        match g.get(state) {
            Node::Dict(d) => d.entries.len(),
            Node::Tuple(t) if t.len() == 2 => t.iter().map(|&i| entries(i)).sum::<usize>().max(1),
            _ => 1,
        }
    }

    /// (name segment, path display, child) for every child that may hold tensors.
    fn children(&self, node: NodeId) -> Result<Vec<(String, String, NodeId)>> {
        let g = self.graph;
        let indexed = |items: &[NodeId]| {
            items
                .iter()
                .enumerate()
                .map(|(i, &c)| (i.to_string(), format!("[{i}]"), c))
                .collect::<Vec<_>>()
        };
        Ok(match g.get(node) {
            Node::Dict(d) => d
                .entries
                .iter()
                .map(|&(k, v)| {
                    let key = key_string(g, k);
                    let display = format!("[{key:?}]");
                    (key, display, v)
                })
                .collect(),
            Node::List(v) | Node::Tuple(v) | Node::Set(v) | Node::FrozenSet(v) => indexed(v),
            // An object array's elements, by flat index.
            Node::Array(a) => match a.data {
                ArrayData::Objects(list) => g.as_seq(list).map(indexed).unwrap_or_default(),
                _ => Vec::new(),
            },
            Node::Object(o) => self.object_children(o),
            _ => Vec::new(),
        })
    }

    fn object_children(&self, o: &Object) -> Vec<(String, String, NodeId)> {
        let g = self.graph;
        if o.placeholder.is_some() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let attrs = |state: NodeId| -> Vec<(String, String, NodeId)> {
            // BUILD state is a dict, or (dict, slots dict) as `__reduce_ex__` writes it.
            let dicts: Vec<NodeId> = match g.get(state) {
                Node::Dict(_) => vec![state],
                Node::Tuple(t) if t.len() == 2 => t
                    .iter()
                    .copied()
                    .filter(|&i| matches!(g.get(i), Node::Dict(_)))
                    .collect(),
                _ => Vec::new(),
            };
            let mut v = Vec::new();
            for d in dicts {
                if let Node::Dict(dd) = g.get(d) {
                    for &(k, val) in &dd.entries {
                        let key = key_string(g, k);
                        v.push((key.clone(), format!(".{key}"), val));
                    }
                }
            }
            if v.is_empty() && !matches!(g.get(state), Node::Dict(_) | Node::None) {
                v.push(("state".into(), ".__setstate__".into(), state));
            }
            v
        };
        let class = g.as_global(o.callable).map(|gl| gl.dotted());
        for &s in &o.state {
            if let Some(module_children) = module_state(g, s) {
                out.extend(module_children);
                continue;
            }
            let mut a = attrs(s);
            if let (Some(script), Some(class)) = (self.script, &class) {
                if let Some(keep) = script.classes.get(class) {
                    // Only parameters/buffers and submodules belong in state_dict().
                    a.retain(|(k, _, v)| keep.contains(k) || matches!(g.get(*v), Node::Object(_)));
                }
            }
            out.extend(a);
        }
        out.extend(o.dict_items.iter().map(|&(k, v)| {
            let key = key_string(g, k);
            let display = format!("[{key:?}]");
            (key, display, v)
        }));
        out.extend(
            o.items
                .iter()
                .enumerate()
                .map(|(i, &c)| (i.to_string(), format!("[{i}]"), c)),
        );
        out.extend(
            o.args
                .iter()
                .enumerate()
                .map(|(i, &c)| (i.to_string(), format!("(arg {i})"), c)),
        );
        out
    }
}

/// A pickled `nn.Module`'s `__dict__`: children are exactly what `state_dict()` visits.
fn module_state(g: &Graph, state: NodeId) -> Option<Vec<(String, String, NodeId)>> {
    let params = g.dict_get(state, "_parameters")?;
    let modules = g.dict_get(state, "_modules")?;
    let buffers = g.dict_get(state, "_buffers");
    let non_persistent: HashSet<String> = g
        .dict_get(state, "_non_persistent_buffers_set")
        .and_then(|s| match g.get(s) {
            Node::Set(v) | Node::FrozenSet(v) | Node::List(v) => Some(
                v.iter()
                    .filter_map(|&i| g.as_str(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut add = |d: NodeId, what: &str, skip: &HashSet<String>| {
        if let Node::Dict(dd) = g.get(d) {
            for &(k, v) in &dd.entries {
                let key = key_string(g, k);
                if matches!(g.get(v), Node::None) || skip.contains(&key) {
                    continue;
                }
                out.push((key.clone(), format!(".{what}[{key:?}]"), v));
            }
        }
    };
    let none = HashSet::new();
    add(params, "_parameters", &none);
    if let Some(b) = buffers {
        add(b, "_buffers", &non_persistent);
    }
    add(modules, "_modules", &none);
    Some(out)
}

/// Tensors and numeric (non-object) arrays.
fn is_tensor(n: &Node) -> bool {
    match n {
        Node::Tensor(_) => true,
        Node::Array(a) => !matches!(a.data, ArrayData::Objects(_)),
        _ => false,
    }
}

/// The element of a 0-d object array.
fn object_scalar(g: &Graph, node: NodeId) -> Option<NodeId> {
    let Node::Array(a) = g.get(node) else {
        return None;
    };
    let ArrayData::Objects(list) = a.data else {
        return None;
    };
    match (a.shape.is_empty(), g.as_seq(list)) {
        (true, Some([one])) => Some(*one),
        _ => None,
    }
}

/// Dict keys as names: strings as they are, numbers in decimal (optimizer state `0`).
pub fn key_string(g: &Graph, k: NodeId) -> String {
    match g.get(k) {
        Node::Str(s) => s.to_string(),
        Node::Int(i) => i.to_string(),
        Node::Bool(b) => if *b { "True" } else { "False" }.into(),
        Node::None => "None".into(),
        Node::Float(f) => format!("{f:?}"),
        _ => g.describe(k, 64),
    }
}
