//! Files and pickles hidden in bytes: `torch.storage._load_from_bytes(b)` runs
//! `torch.load(io.BytesIO(b), weights_only=False)`, which reads every format torch.load
//! accepts (a torch zip, a TorchScript archive, a legacy TAR, a legacy stream whose first pickle
//! is unpickled before its magic number is checked); `pickle.loads(b)`-style trampolines unpickle
//! them. Every such payload is analysed with the same engine and the same budget, whether or not
//! a tensor uses it, and one the engine cannot read is high: the loader runs it anyway.

use super::{Analysis, Options};
use crate::pickle::value::{Graph, Node, NodeId};
use crate::pickle::{Context, Input, Machine};
use crate::policy::findings::{Finding, Findings, Rule, Severity};

/// Callables whose bytes argument a loader would unpickle (already graded as dangerous calls;
/// their payloads are read for what they would run).
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
    inner.nesting = nesting + 1;
    let opts = &inner;
    // One bytes value referenced by many calls (through the memo) is read once.
    let mut seen = std::collections::HashSet::new();
    for id in 0..graph.len() as NodeId {
        match graph.get(id) {
            Node::LoadFromBytes(b) if seen.insert(*b) => {
                if let Node::Bytes(bytes) | Node::ByteArray(bytes) = graph.get(*b) {
                    torch_load_bytes(bytes, findings, opts);
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
                        pickle_loads_bytes(bytes, &dotted, findings, opts);
                    }
                }
            }
            _ => {}
        }
    }
}

const LOAD_FROM_BYTES: &str = "torch.storage._load_from_bytes";

/// `torch.load(io.BytesIO(bytes), weights_only=False)`, analysed as the file it is.
fn torch_load_bytes(bytes: &[u8], findings: &mut Findings, opts: &Options) {
    if opts.nesting > opts.limits.max_nested_pickles {
        findings.push(unreadable(
            LOAD_FROM_BYTES,
            "nested too deeply",
            opts.nesting,
        ));
        return;
    }
    let mut cursor = std::io::Cursor::new(bytes);
    // torch.load on a BytesIO: a zip when the first bytes are a local header, otherwise the
    // legacy stream (its first pickle is unpickled before the magic number is checked). The
    // TAR format is tried only for real files, never here.
    let nested: Analysis = if bytes.starts_with(b"PK\x03\x04") {
        super::analyze(&mut cursor, bytes.len() as u64, opts)
    } else {
        let mut a = Analysis::default();
        if let Err(e) = super::pickle_file::analyze(&mut cursor, bytes.len() as u64, opts, &mut a) {
            a.error = Some(e);
        }
        a
    };
    let member = format!("payload of {LOAD_FROM_BYTES} (depth {})", opts.nesting);
    for mut f in nested.findings.into_vec() {
        f.location.member = Some(match f.location.member.take() {
            Some(m) => format!("{member}: {m}"),
            None => member.clone(),
        });
        findings.push(f);
    }
    if let Some(e) = nested.error {
        findings.push(unreadable(LOAD_FROM_BYTES, &e.to_string(), opts.nesting));
    }
}

/// `pickle.loads(bytes)`: one plain pickle.
fn pickle_loads_bytes(bytes: &[u8], via: &str, findings: &mut Findings, opts: &Options) {
    if opts.nesting > opts.limits.max_nested_pickles {
        findings.push(unreadable(via, "nested too deeply", opts.nesting));
        return;
    }
    let mut inner = Graph::new(&opts.limits);
    let mut cursor = std::io::Cursor::new(bytes);
    let mut input = Input::new(&mut cursor, 0, bytes.len() as u64);
    let ctx = Context {
        member: Some(format!("pickle nested in {via} (depth {})", opts.nesting)),
        nesting: opts.nesting,
        ..Default::default()
    };
    match Machine::new(&mut inner, findings, &opts.limits, ctx).load(&mut input) {
        Ok(_) => scan(&inner, findings, opts, opts.nesting),
        Err(e) => findings.push(unreadable(via, &e.to_string(), opts.nesting)),
    }
}

/// Bytes a loader would read that the engine could not: the loader runs them anyway.
fn unreadable(via: &str, why: &str, depth: usize) -> Finding {
    Finding {
        rule: Rule::NestedPickle,
        severity: Severity::High,
        message: format!(
            "bytes passed to {via} (depth {depth}) cannot be read by modelguard, and the loader would run them: {why}"
        ),
        global: Some(via.to_string()),
        location: Default::default(),
    }
}
