//! Pickles hidden in bytes: `torch.storage._load_from_bytes(b)` and `pickle.loads(b)`-style
//! trampolines. Every one is parsed with the same machine for its findings, whether or not a
//! tensor uses it, so a payload cannot hide one level down.

use super::{legacy, Options};
use crate::pickle::value::{Graph, Node, NodeId};
use crate::pickle::{Context, Input, Machine};
use crate::policy::findings::{Finding, Findings, Rule, Severity};

/// Callables whose bytes argument a loader would unpickle.
const LOADERS: &[&str] = &[
    "pickle.loads",
    "_pickle.loads",
    "dill.loads",
    "cloudpickle.loads",
    "pickle._loads",
    "joblib.numpy_pickle.loads",
];

pub fn scan(graph: &Graph, findings: &mut Findings, opts: &Options, nesting: usize) {
    // Every enclosing graph stays alive while a nested one is parsed, so they share one
    // `max_graph_bytes` budget: 64 levels must not hold 64 budgets' worth of memory.
    let mut inner = opts.clone();
    inner.limits.max_graph_bytes = opts
        .limits
        .max_graph_bytes
        .saturating_sub(graph.bytes_charged());
    let opts = &inner;
    // One bytes value referenced by many calls (through the memo) is parsed once.
    let mut seen = std::collections::HashSet::new();
    for id in 0..graph.len() as NodeId {
        match graph.get(id) {
            Node::LoadFromBytes(b) if seen.insert(*b) => {
                if let Err(e) = legacy::load_from_bytes(graph, *b, findings, opts, nesting) {
                    findings.push(nested_error(
                        "torch.storage._load_from_bytes",
                        &e.to_string(),
                    ));
                }
            }
            Node::Object(o) => {
                let Some(g) = graph.as_global(o.callable) else {
                    continue;
                };
                let dotted = g.dotted();
                if !LOADERS.contains(&dotted.as_str()) {
                    continue;
                }
                for &arg in &o.args {
                    if !seen.insert(arg) {
                        continue;
                    }
                    if let Node::Bytes(bytes) | Node::ByteArray(bytes) = graph.get(arg) {
                        scan_bytes(bytes, &dotted, findings, opts, nesting + 1);
                    }
                }
            }
            _ => {}
        }
    }
}

fn scan_bytes(bytes: &[u8], via: &str, findings: &mut Findings, opts: &Options, nesting: usize) {
    if nesting > opts.limits.max_nested_pickles {
        findings.push(nested_error(via, "nested too deeply"));
        return;
    }
    let mut inner = Graph::new(&opts.limits);
    let mut cursor = std::io::Cursor::new(bytes);
    let mut input = Input::new(&mut cursor, 0, bytes.len() as u64);
    let ctx = Context {
        member: Some(format!("pickle nested in {via} (depth {nesting})")),
        joblib: false,
        nesting,
    };
    match Machine::new(&mut inner, findings, &opts.limits, ctx).load(&mut input) {
        Ok(_) => scan(&inner, findings, opts, nesting),
        Err(e) => findings.push(nested_error(via, &e.to_string())),
    }
}

fn nested_error(via: &str, why: &str) -> Finding {
    Finding {
        rule: Rule::NestedPickle,
        severity: Severity::Medium,
        message: format!("bytes passed to {via} are not a readable pickle: {why}"),
        global: Some(via.to_string()),
        location: Default::default(),
    }
}
