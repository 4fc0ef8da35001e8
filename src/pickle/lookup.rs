//! Instance attribute lookups the unpickler makes: `getattr(inst, "__setstate__")` in BUILD,
//! `extend`/`append` in APPEND(S) on anything but a list, `add` (and the pure-Python
//! unpickler's `update`) in ADDITEMS on anything but a set, and joblib's `wrapper.read`.
//!
//! CPython resolves them on the instance: a value in the instance `__dict__` wins over a
//! function of the class, and a class `__getattr__` answers when nothing is found. So a value a
//! pickle wrote into an object (BUILD state, or SETITEMS into a class whose `__getattr__`
//! serves its items) can be what the loader calls next.

use super::value::{ClassKnowledge, Graph, Node, NodeId};
use crate::policy::interpret::{values, WRAPPER_METHODS};
use crate::policy::registry::Kind;

/// What a lookup of a name on an instance finds, as far as the machine can know.
pub enum Found {
    /// A value the pickle wrote into the instance `__dict__`: the loader calls it.
    Planted(NodeId),
    /// The class's own attribute, whose effect the machine models.
    Class,
    /// Known to be missing: the loader raises AttributeError.
    Absent,
    /// An instance of an unregistered class: its own method, its `__getattr__`, or - when
    /// `exposed` - a value the pickle wrote that such a `__getattr__` may serve.
    Unknown { exposed: bool },
}

/// What a lookup of `name` on `target` finds. Lists, sets and globals are the callers' own
/// cases (exact built-ins, and mutations of live code).
pub fn lookup(g: &Graph, target: NodeId, name: &str) -> Found {
    let setstate = name == "__setstate__";
    match g.get(target) {
        Node::Object(o) => {
            if o.placeholder.is_some() {
                // A fresh ndarray or legacy tensor: ndarray.__setstate__ / Tensor.__setstate__,
                // and nothing planted yet (neither has been restored before).
                return if setstate {
                    Found::Class
                } else {
                    Found::Absent
                };
            }
            if let Some(v) = o.attrs.get(name) {
                return Found::Planted(v);
            }
            match o.class {
                ClassKnowledge::Registered(Kind::JoblibArrayWrapper) => {
                    if setstate {
                        Found::Absent
                    } else {
                        joblib(name)
                    }
                }
                ClassKnowledge::Registered(kind) if setstate && values::has_setstate(kind) => {
                    Found::Class
                }
                // Registered plain classes define none of the looked-up names (checked by
                // tests/registry against the installed libraries).
                ClassKnowledge::Registered(_) => Found::Absent,
                // A TorchScript class's __setstate__ is the archive's own code, which the
                // TorchScript analysis grades.
                ClassKnowledge::TorchScript if setstate => Found::Class,
                ClassKnowledge::TorchScript | ClassKnowledge::Unknown => Found::Unknown {
                    exposed: exposes(g, target, name),
                },
            }
        }
        Node::Dict(d) => match d.attrs.get(name) {
            Some(v) => Found::Planted(v),
            None => Found::Absent,
        },
        Node::Tensor(t) => match t.attrs.get(name) {
            Some(v) => Found::Planted(v),
            None if setstate => Found::Class,
            None => Found::Absent,
        },
        Node::Array(_) | Node::NumpyDtype(_) if setstate => Found::Class,
        _ => Found::Absent,
    }
}

fn joblib(name: &str) -> Found {
    if WRAPPER_METHODS.contains(&name) {
        Found::Class
    } else {
        Found::Absent
    }
}

/// Whether what the pickle wrote into `target` (arguments, items, BUILD states, attributes)
/// could answer a lookup of `name` through a class `__getattr__`: it holds the name as a str,
/// or a global or another object a `__getattr__` could delegate to. Bounded: a graph too large
/// to search counts as exposed.
fn exposes(g: &Graph, target: NodeId, name: &str) -> bool {
    let Node::Object(o) = g.get(target) else {
        return false;
    };
    let mut stack: Vec<NodeId> = Vec::new();
    stack.extend(&o.args);
    stack.extend(o.kwargs);
    stack.extend(&o.state);
    stack.extend(&o.items);
    for &(k, v) in &o.dict_items {
        stack.push(k);
        stack.push(v);
    }
    stack.extend(o.attrs.entries().iter().map(|(_, v)| *v));
    let mut seen = std::collections::HashSet::new();
    let mut budget = 100_000usize;
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        if budget == 0 {
            return true;
        }
        budget -= 1;
        match g.get(id) {
            Node::Str(s) if &**s == name => return true,
            Node::Global(_) | Node::LoadFromBytes(_) => return true,
            Node::Object(inner) => {
                if inner.class == ClassKnowledge::Unknown {
                    return true;
                }
                stack.extend(&inner.args);
                stack.extend(&inner.state);
                stack.extend(&inner.items);
                stack.extend(inner.attrs.entries().iter().map(|(_, v)| *v));
                for &(k, v) in &inner.dict_items {
                    stack.push(k);
                    stack.push(v);
                }
            }
            Node::Tuple(v) | Node::List(v) | Node::Set(v) | Node::FrozenSet(v) => stack.extend(v),
            Node::Dict(d) => {
                for &(k, v) in &d.entries {
                    stack.push(k);
                    stack.push(v);
                }
                stack.extend(d.attrs.entries().iter().map(|(_, v)| *v));
            }
            _ => {}
        }
    }
    false
}
