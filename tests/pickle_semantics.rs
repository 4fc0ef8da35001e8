//! Differential tests: the restricted pickle machine against CPython's unpickler.
//!
//! `tests/fixtures/pickles/generate.py` writes `<case>.pkl` and `<case>.json`; the JSON holds the
//! canonical form of what CPython's `pickle.loads` returns (or, for pickles with globals and
//! calls, a hand-written expectation, since those are never executed), the findings the machine
//! must report, or the error it must fail with. The canonical form is described at the top of
//! `generate.py`; `canon` below is its Rust half.
//!
//! Fixtures with a `"bug"` id record a known difference from CPython. They are excluded from the
//! main test and run, strictly, by the `#[ignore]`d `bug_*` tests below.

use modelguard::error::Error;
use modelguard::limits::Limits;
use modelguard::pickle::value::{AttrKey, CallKind, DictKind};
use modelguard::pickle::{Context, Graph, Input, Machine, Node, NodeId, Unpickled};
use modelguard::policy::findings::{Findings, Rule, Severity};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::io::BufRead;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

// ------------------------------------------------------------------------------------------------
// fixtures
// ------------------------------------------------------------------------------------------------

struct Fixture {
    name: String,
    pickle: Vec<u8>,
    spec: Value,
}

impl Fixture {
    fn bug(&self) -> Option<&str> {
        self.spec.get("bug").and_then(Value::as_str)
    }
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pickles")
}

fn read_spec(dir: &Path, name: &str) -> Value {
    let path = dir.join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match spec.get("same_as").and_then(Value::as_str) {
        Some(other) => read_spec(dir, other),
        None => spec,
    }
}

fn fixtures() -> Vec<Fixture> {
    let dir = fixture_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/pickles exists (run generate.py)")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            Some(name.strip_suffix(".pkl")?.to_string())
        })
        .collect();
    names.sort();
    let all: Vec<Fixture> = names
        .into_iter()
        .map(|name| Fixture {
            pickle: std::fs::read(dir.join(format!("{name}.pkl"))).unwrap(),
            spec: read_spec(&dir, &name),
            name,
        })
        .collect();
    assert!(all.len() > 400, "only {} fixtures found", all.len());
    all
}

// ------------------------------------------------------------------------------------------------
// running the machine
// ------------------------------------------------------------------------------------------------

struct Outcome {
    graph: Graph,
    findings: Findings,
    result: Result<Unpickled, Error>,
}

fn run_reader(reader: &mut dyn BufRead, len: u64) -> Outcome {
    let limits = Limits::default();
    let mut graph = Graph::new(&limits);
    let mut findings = Findings::default();
    let mut input = Input::new(reader, 0, len);
    let result =
        Machine::new(&mut graph, &mut findings, &limits, Context::default()).load(&mut input);
    Outcome {
        graph,
        findings,
        result,
    }
}

fn run(bytes: &[u8]) -> Outcome {
    run_reader(&mut std::io::Cursor::new(bytes), bytes.len() as u64)
}

/// Run, turning a panic into an error message naming the input.
fn run_no_panic(bytes: &[u8], what: &str) -> Result<Outcome, String> {
    catch_unwind(AssertUnwindSafe(|| run(bytes))).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        format!("PANIC on {what} ({}): {msg}", hex(bytes))
    })
}

fn findings_set(f: &Findings) -> Value {
    let set: BTreeSet<(String, String)> = f
        .items()
        .iter()
        .map(|f| (f.rule.id().to_string(), f.severity.to_string()))
        .collect();
    Value::Array(set.into_iter().map(|(r, s)| json!([r, s])).collect())
}

// ------------------------------------------------------------------------------------------------
// canonical form (the Rust half of generate.py's `canon`)
// ------------------------------------------------------------------------------------------------

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn float_hex(x: f64) -> String {
    hex(&x.to_le_bytes())
}

const LONG: usize = 1024;

fn blob(kind: &str, b: &[u8], text: Option<&str>) -> Value {
    let v = if b.len() > LONG {
        json!({"len": b.len(), "sha256": hex(&Sha256::digest(b))})
    } else {
        match text {
            Some(s) => Value::String(s.to_string()),
            None => Value::String(hex(b)),
        }
    };
    let mut m = Map::new();
    m.insert(kind.to_string(), v);
    Value::Object(m)
}

fn tracked(node: &Node, in_set: bool) -> bool {
    match node {
        Node::List(_) | Node::Dict(_) | Node::Set(_) | Node::ByteArray(_) | Node::Object(_) => true,
        Node::Tuple(v) | Node::FrozenSet(v) => !v.is_empty() && !in_set,
        _ => false,
    }
}

/// Children in canonical visiting order, and whether they are set elements.
fn children(node: &Node) -> (Vec<NodeId>, bool) {
    match node {
        Node::Tuple(v) | Node::List(v) => (v.clone(), false),
        Node::Set(v) | Node::FrozenSet(v) => (v.clone(), true),
        Node::Dict(d) => {
            let mut out: Vec<NodeId> = d.entries.iter().flat_map(|&(k, v)| [k, v]).collect();
            for (k, v) in d.attrs.entries() {
                if let AttrKey::Other(k) = k {
                    out.push(*k);
                }
                out.push(*v);
            }
            (out, false)
        }
        Node::PersistentId(p) => (vec![*p], false),
        Node::Object(o) => {
            let mut out = vec![o.callable];
            out.extend(&o.args);
            out.extend(o.kwargs);
            out.extend(&o.state);
            out.extend(&o.items);
            out.extend(o.dict_items.iter().flat_map(|&(k, v)| [k, v]));
            (out, false)
        }
        _ => (Vec::new(), false),
    }
}

struct Canon<'g> {
    g: &'g Graph,
    counts: HashMap<NodeId, usize>,
    ids: HashMap<NodeId, usize>,
}

fn canon(g: &Graph, root: NodeId) -> Value {
    let mut c = Canon {
        g,
        counts: HashMap::new(),
        ids: HashMap::new(),
    };
    c.count(root, false);
    normalize(c.emit(root, false))
}

impl Canon<'_> {
    fn count(&mut self, id: NodeId, in_set: bool) {
        let node = self.g.get(id);
        if tracked(node, in_set) {
            let n = self.counts.entry(id).or_insert(0);
            *n += 1;
            if *n > 1 {
                return;
            }
        }
        let (kids, into_set) = children(node);
        for k in kids {
            self.count(k, in_set || into_set);
        }
    }

    fn emit(&mut self, id: NodeId, in_set: bool) -> Value {
        let node = self.g.get(id);
        if tracked(node, in_set) && self.counts.get(&id).copied().unwrap_or(0) > 1 {
            if let Some(&k) = self.ids.get(&id) {
                return json!({ "ref": k });
            }
            let k = self.ids.len();
            self.ids.insert(id, k);
            let mut body = self.body(id, in_set);
            body.as_object_mut()
                .expect("tracked nodes are JSON objects")
                .insert("id".into(), json!(k));
            return body;
        }
        self.body(id, in_set)
    }

    fn seq(&mut self, items: &[NodeId], in_set: bool) -> Vec<Value> {
        items.iter().map(|&i| self.emit(i, in_set)).collect()
    }

    fn body(&mut self, id: NodeId, in_set: bool) -> Value {
        let g = self.g;
        match g.get(id) {
            Node::None => Value::Null,
            Node::Bool(b) => json!(b),
            Node::Int(i) => json!({ "int": i }),
            Node::BigInt(b) => json!({ "bigint_le": hex(b) }),
            Node::Float(f) => json!({ "float": float_hex(*f) }),
            Node::Complex(r, i) => json!({ "complex": [float_hex(*r), float_hex(*i)] }),
            Node::Str(s) => blob("str", s.as_bytes(), Some(s)),
            Node::Bytes(b) => blob("bytes", b, None),
            Node::ByteArray(b) => blob("bytearray", b, None),
            Node::Tuple(v) => json!({ "tuple": self.seq(v, in_set) }),
            Node::List(v) => json!({ "list": self.seq(v, in_set) }),
            Node::Set(v) => json!({ "set": self.seq(v, true) }),
            Node::FrozenSet(v) => json!({ "frozenset": self.seq(v, true) }),
            Node::Dict(d) => {
                let entries: Vec<Value> = d
                    .entries
                    .iter()
                    .map(|&(k, v)| json!([self.emit(k, in_set), self.emit(v, in_set)]))
                    .collect();
                let mut m = Map::new();
                m.insert("dict".into(), Value::Array(entries));
                let kind = match d.kind {
                    DictKind::Dict => None,
                    DictKind::OrderedDict => Some("OrderedDict"),
                    DictKind::Counter => Some("Counter"),
                    DictKind::DefaultDict => Some("defaultdict"),
                };
                if let Some(k) = kind {
                    m.insert("kind".into(), json!(k));
                }
                if !d.attrs.is_empty() {
                    // The instance __dict__ as `vars(x)` shows it: a dict reached once.
                    let entries: Vec<Value> = d
                        .attrs
                        .entries()
                        .iter()
                        .map(|(k, v)| {
                            let key = match k {
                                AttrKey::Name(n) => json!({ "str": &**n }),
                                AttrKey::Other(k) => self.emit(*k, in_set),
                            };
                            json!([key, self.emit(*v, in_set)])
                        })
                        .collect();
                    m.insert("attrs".into(), json!({ "dict": entries }));
                }
                Value::Object(m)
            }
            Node::Global(gl) => json!({ "global": gl.dotted() }),
            Node::PersistentId(p) => json!({ "persid": self.emit(*p, in_set) }),
            Node::Object(o) => {
                let mut m = Map::new();
                m.insert("callable".into(), self.emit(o.callable, in_set));
                m.insert("args".into(), Value::Array(self.seq(&o.args, in_set)));
                let how = match o.how {
                    CallKind::Reduce => "reduce",
                    CallKind::NewObj => "newobj",
                    CallKind::NewObjEx => "newobjex",
                    CallKind::Inst => "inst",
                    CallKind::Obj => "obj",
                };
                m.insert("how".into(), json!(how));
                if let Some(k) = o.kwargs {
                    m.insert("kwargs".into(), self.emit(k, in_set));
                }
                m.insert("state".into(), Value::Array(self.seq(&o.state, in_set)));
                if !o.items.is_empty() {
                    m.insert("items".into(), Value::Array(self.seq(&o.items, in_set)));
                }
                if !o.dict_items.is_empty() {
                    let pairs = o
                        .dict_items
                        .iter()
                        .map(|&(k, v)| json!([self.emit(k, in_set), self.emit(v, in_set)]))
                        .collect();
                    m.insert("dict_items".into(), Value::Array(pairs));
                }
                if o.placeholder.is_some() {
                    m.insert("placeholder".into(), json!(format!("{:?}", o.placeholder)));
                }
                json!({ "object": m })
            }
            // Tensors are opaque here: what they hold is the container tests' business.
            Node::Tensor(_) => json!({ "tensor": true }),
            other => json!({ "other": format!("{other:?}") }),
        }
    }
}

/// Sort the elements of every set/frozenset by their JSON text (both sides, so that the two
/// languages' JSON escaping never matters).
fn normalize(v: Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let v = normalize(v);
                let v = match (k.as_str(), v) {
                    ("set" | "frozenset", Value::Array(mut items)) => {
                        items.sort_by_cached_key(|i| serde_json::to_string(i).unwrap());
                        Value::Array(items)
                    }
                    (_, v) => v,
                };
                out.insert(k, v);
            }
            Value::Object(out)
        }
        other => other,
    }
}

/// Where two JSON values first differ, as a path plus both sides.
fn first_diff(want: &Value, got: &Value, path: &str) -> Option<String> {
    match (want, got) {
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                if let Some(d) = first_diff(x, y, &format!("{path}[{i}]")) {
                    return Some(d);
                }
            }
            (a.len() != b.len())
                .then(|| format!("{path}: length {} expected, got {}", a.len(), b.len()))
        }
        (Value::Object(a), Value::Object(b)) => {
            for (k, x) in a {
                match b.get(k) {
                    Some(y) => {
                        if let Some(d) = first_diff(x, y, &format!("{path}.{k}")) {
                            return Some(d);
                        }
                    }
                    None => return Some(format!("{path}: expected {want}, got {got}")),
                }
            }
            b.keys()
                .find(|k| !a.contains_key(*k))
                .map(|_| format!("{path}: expected {want}, got {got}"))
        }
        _ => (want != got).then(|| format!("{path}: expected {want}, got {got}")),
    }
}

fn short(s: String) -> String {
    if s.len() > 400 {
        let mut cut = 400;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}…", &s[..cut])
    } else {
        s
    }
}

// ------------------------------------------------------------------------------------------------
// checking one fixture
// ------------------------------------------------------------------------------------------------

/// `Err(description)` when the machine disagrees with the expectation.
fn check(f: &Fixture) -> Result<(), String> {
    let out = run_no_panic(&f.pickle, &f.name)?;
    let spec = &f.spec;
    match (
        spec.get("expect_error").and_then(Value::as_str),
        &out.result,
    ) {
        (Some(want), Err(e)) => {
            let msg = e.to_string();
            if !msg.contains(want) {
                return Err(format!("error {msg:?} does not mention {want:?}"));
            }
        }
        (Some(want), Ok(u)) => {
            return Err(format!(
                "expected an error ({want:?}), got {}",
                short(canon(&out.graph, u.root).to_string())
            ))
        }
        (None, Err(e)) => return Err(format!("unexpected error: {e}")),
        (None, Ok(u)) => {
            let want = normalize(spec.get("value").cloned().ok_or("spec has no value")?);
            let got = canon(&out.graph, u.root);
            if let Some(d) = first_diff(&want, &got, "$") {
                return Err(short(d));
            }
            if u.end != f.pickle.len() as u64 {
                return Err(format!("STOP at {} of {} bytes", u.end, f.pickle.len()));
            }
            // CPython's own pickles: PROTO is declared from protocol 2 on.
            if let Some(p) = f
                .name
                .rsplit_once("_p")
                .and_then(|(_, p)| p.parse::<u8>().ok())
            {
                if f.name.starts_with("cp_") && u.proto != if p >= 2 { p } else { 0 } {
                    return Err(format!(
                        "protocol {} reported for a protocol-{p} pickle",
                        u.proto
                    ));
                }
            }
        }
    }
    if let Some(want) = spec.get("findings") {
        let got = findings_set(&out.findings);
        if &got != want {
            let detail: Vec<String> = out
                .findings
                .items()
                .iter()
                .map(|x| format!("{} {}: {}", x.rule.id(), x.severity, x.message))
                .collect();
            return Err(format!(
                "findings: expected {want}, got {got} ({})",
                detail.join("; ")
            ));
        }
    }
    Ok(())
}

fn check_all<'a>(list: impl IntoIterator<Item = &'a Fixture>) -> (usize, Vec<String>) {
    let mut n = 0;
    let mut failures = Vec::new();
    for f in list {
        n += 1;
        if let Err(e) = check(f) {
            failures.push(format!(
                "{} [{}]: {e}",
                f.name,
                hex(&f.pickle[..f.pickle.len().min(48)])
            ));
        }
    }
    (n, failures)
}

// ------------------------------------------------------------------------------------------------
// tests
// ------------------------------------------------------------------------------------------------

#[test]
fn machine_matches_cpython_on_every_fixture() {
    let all = fixtures();
    let (n, failures) = check_all(all.iter());
    assert!(
        failures.is_empty(),
        "{} of {n} fixtures disagree with CPython:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every difference from CPython this suite found was fixed in the machine; a fixture marked
/// as a known bug would mean a regression was papered over.
#[test]
fn no_fixture_is_marked_as_a_known_bug() {
    let marked: Vec<String> = fixtures()
        .iter()
        .filter(|f| f.bug().is_some())
        .map(|f| f.name.clone())
        .collect();
    assert!(
        marked.is_empty(),
        "fixtures marked as known bugs: {marked:?}"
    );
}

/// Every strict prefix of a valid pickle is an error, never a panic; prefixes of invalid pickles
/// never panic either.
#[test]
fn every_truncation_errors_without_panic() {
    let mut problems = Vec::new();
    let mut runs = 0usize;
    for f in fixtures() {
        let full = match run_no_panic(&f.pickle, &f.name) {
            Ok(o) => o.result.ok().map(|u| u.end as usize),
            Err(p) => {
                problems.push(p);
                continue;
            }
        };
        for cut in 0..f.pickle.len() {
            runs += 1;
            let what = format!("{} cut at {cut}", f.name);
            match run_no_panic(&f.pickle[..cut], &what) {
                Err(p) => problems.push(p),
                Ok(o) => match (&o.result, full) {
                    (Ok(_), Some(end)) if cut < end => {
                        problems.push(format!("{what}: a truncated pickle loaded"))
                    }
                    (Err(Error::Malformed { .. }), _) | (Err(Error::Limit { .. }), _) => {}
                    (Err(e), Some(_)) => {
                        problems.push(format!("{what}: unexpected error kind {e}"))
                    }
                    _ => {}
                },
            }
        }
    }
    assert!(runs > 100_000, "only {runs} truncations");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A reader that hands out one byte at a time gives the same result as one that has it all
/// (text arguments split across buffer refills).
#[test]
fn one_byte_reads_give_the_same_result() {
    let mut problems = Vec::new();
    for f in fixtures() {
        let a = run(&f.pickle);
        let mut slow = std::io::BufReader::with_capacity(1, std::io::Cursor::new(&f.pickle[..]));
        let b = run_reader(&mut slow, f.pickle.len() as u64);
        let ca = a
            .result
            .as_ref()
            .map(|u| canon(&a.graph, u.root))
            .map_err(|e| e.to_string());
        let cb = b
            .result
            .as_ref()
            .map(|u| canon(&b.graph, u.root))
            .map_err(|e| e.to_string());
        if ca != cb || findings_set(&a.findings) != findings_set(&b.findings) {
            problems.push(format!(
                "{}: {:?} vs {:?}",
                f.name,
                ca.map(short_v),
                cb.map(short_v)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn short_v(v: Value) -> String {
    short(v.to_string())
}

/// Every single-byte substitution in the smaller fixtures: the machine may accept or refuse,
/// but never panic.
#[test]
fn single_byte_mutations_never_panic() {
    const SUBSTITUTES: &[u8] = &[
        0x00, 0xff, 0x7f, 0x80, b'(', b')', b'.', b'0', b'1', b'2', b'a', b'b', b'e', b'h', b'q',
        b'R', b'u', b'\n', 0x85, 0x8c, 0x93, 0x94, 0x95,
    ];
    let mut problems = Vec::new();
    let mut runs = 0usize;
    for f in fixtures().iter().filter(|f| f.pickle.len() <= 600) {
        let mut buf = f.pickle.clone();
        for i in 0..buf.len() {
            let orig = buf[i];
            for &s in SUBSTITUTES
                .iter()
                .chain([orig.wrapping_add(1), orig.wrapping_sub(1)].iter())
            {
                if s == orig {
                    continue;
                }
                buf[i] = s;
                runs += 1;
                if let Err(p) = run_no_panic(&buf, &format!("{} byte {i} = {s:#04x}", f.name)) {
                    problems.push(p);
                }
            }
            buf[i] = orig;
        }
    }
    assert!(runs > 100_000, "only {runs} mutations");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn fixture(name: &str) -> Fixture {
    fixtures()
        .into_iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no fixture {name}"))
}

#[test]
fn reduce_on_os_system_is_critical() {
    let f = fixture("obj_reduce_os_system");
    let out = run(&f.pickle);
    assert!(out.result.is_ok());
    let call = out
        .findings
        .items()
        .iter()
        .find(|x| x.rule == Rule::DangerousCall)
        .expect("an MG001 finding");
    assert_eq!(call.rule.id(), "MG001");
    assert_eq!(call.severity, Severity::Critical);
    assert_eq!(call.global.as_deref(), Some("os.system"));
    assert_eq!(out.findings.max_severity(), Some(Severity::Critical));
    assert!(out.findings.any_call());
}

#[test]
fn plain_data_reports_nothing() {
    for f in fixtures()
        .iter()
        .filter(|f| f.name.starts_with("cp_") && f.bug().is_none())
    {
        let out = run(&f.pickle);
        assert!(
            out.findings.is_empty(),
            "{}: {:?}",
            f.name,
            out.findings.items()
        );
    }
}

#[test]
fn shared_and_recursive_values_keep_their_identity() {
    // l = []; l.append(l): the list contains itself (same node), at every protocol.
    for p in 0..=5 {
        let f = fixture(&format!("cp_recursive_list_p{p}"));
        let out = run(&f.pickle);
        let root = out.result.unwrap().root;
        match out.graph.get(root) {
            Node::List(v) => assert_eq!(v, &vec![root], "protocol {p}"),
            other => panic!("protocol {p}: {other:?}"),
        }
        // a = [1]; [a, a]: one node referenced twice.
        let f = fixture(&format!("cp_shared_list_p{p}"));
        let out = run(&f.pickle);
        let root = out.result.unwrap().root;
        match out.graph.get(root) {
            Node::List(v) => {
                assert_eq!(v.len(), 2);
                assert_eq!(v[0], v[1], "protocol {p}");
            }
            other => panic!("protocol {p}: {other:?}"),
        }
    }
}
