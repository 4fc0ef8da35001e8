//! TorchScript source (`code/**.py` of a `torch.jit.save` archive): what `torch.jit.load` runs
//! and what that code can reach. docs/torchscript.md describes the load semantics this relies on,
//! with the upstream source locations.
//!
//! Load time is: every `__setstate__` (the unpickler calls it for each object of a class that
//! defines `__getstate__`/`__setstate__`), every parameter default and class constant (torch
//! evaluates them while compiling the class), and every function of the archive those reach,
//! followed by name. Everything else runs only when the model is called.
//!
//! Grading (rule MG017):
//! - an operator that reads, writes or creates files, loads a model, reaches the network or
//!   reads memory out of bounds: **high** when load-time code reaches it, **medium** otherwise
//!   (the code runs once the user calls the model, which needs no further mistake; but models
//!   that legitimately read a path their caller passes exist, e.g. torchvision.io pipelines);
//! - an operator or TorchBind namespace the registry does not know (a native library we cannot
//!   see into): medium at load, low otherwise;
//! - `torch` or `ops` used as a value (aliases hide which operators are reached): medium at
//!   load, low otherwise;
//! - source too large to analyse within the budget: high (nothing could be vouched for);
//! - the presence of source (info) and unusual `import` lines (medium), as before.

pub mod lexer;
pub mod registry;
pub mod scan;

use crate::error::Location;
use crate::policy::findings::{Finding, Findings, Rule, Severity};
use registry::Kind;
use scan::{Archive, Hit, RootKind, Subject};
use std::collections::{HashMap, HashSet};

/// Total source bytes analysed per archive. Real archives hold well under a megabyte (the
/// silero-vad model: 46 KB); past this the archive is reported as not analysable. At this size
/// the worst inputs we know take about 2 s and 150 MiB (docs/torchscript.md).
pub const MAX_CODE_BYTES: usize = 16 << 20;

/// Collects an archive's source files, then grades them.
#[derive(Default)]
pub struct TorchScript {
    archive: Archive,
    bytes: usize,
}

/// Why a function runs during `torch.jit.load`.
#[derive(Debug, Clone)]
enum Why {
    SetState,
    Dunder,
    Forward,
    From(usize),
    Root(usize),
}

impl TorchScript {
    pub fn new() -> Self {
        Self::default()
    }

    /// One `code/` member: `module` is its qualifier (`__torch__.a.b` for `code/__torch__/a/b.py`).
    pub fn add_file(&mut self, member: &str, module: &str, text: &[u8]) {
        self.bytes = self.bytes.saturating_add(text.len());
        if self.bytes > MAX_CODE_BYTES {
            self.archive
                .truncate(format!("more than {} MiB of source", MAX_CODE_BYTES >> 20));
            return;
        }
        if self.archive.truncated.is_some() {
            return;
        }
        self.archive.add_file(member, module, text);
    }

    /// Grades what was added and pushes the findings.
    pub fn finish(self, findings: &mut Findings) {
        let ar = &self.archive;
        let reached = reachable(ar);
        // The worst sighting of each subject per file; messages are only made for those (a
        // hostile archive can hold hundreds of thousands of sightings).
        let mut best: HashMap<(usize, &Subject), (Severity, Source)> = HashMap::new();
        let sightings = ar
            .defs
            .iter()
            .enumerate()
            .flat_map(|(i, d)| {
                let load = reached.contains_key(&i);
                d.body
                    .hits
                    .iter()
                    .enumerate()
                    .map(move |(k, h)| (d.file, h, severity(h, load), Source::Def(i, k)))
            })
            .chain(ar.roots.iter().enumerate().flat_map(|(i, r)| {
                r.region
                    .hits
                    .iter()
                    .enumerate()
                    .map(move |(k, h)| (r.file, h, severity(h, true), Source::Root(i, k)))
            }));
        for (file, h, sev, src) in sightings {
            let slot = best.entry((file, &h.subject)).or_insert((sev, src));
            if sev > slot.0 {
                *slot = (sev, src);
            }
        }
        let mut out: Vec<(Severity, Finding)> = Vec::new();
        let mut winners: Vec<_> = best.into_iter().collect();
        winners.sort_by_key(|((file, _), (sev, src))| (std::cmp::Reverse(*sev), *file, *src));
        for ((file, _), (sev, src)) in winners {
            let (h, place, why) = match src {
                Source::Def(i, k) => {
                    let d = &ar.defs[i];
                    let why = reached.contains_key(&i).then(|| explain(ar, &reached, i));
                    (&d.body.hits[k], ar.qualified(d.file, d.class, d.name), why)
                }
                Source::Root(i, k) => {
                    let r = &ar.roots[i];
                    let (place, why) = match &r.kind {
                        RootKind::Signature { class, name } => (
                            format!("the signature of {}", ar.qualified(r.file, *class, *name)),
                            "parameter defaults are evaluated when torch.jit.load compiles the \
                             function",
                        ),
                        RootKind::ClassBody { class } => (
                            format!(
                                "the class body of {}.{}",
                                ar.modules.get(r.file).map(String::as_str).unwrap_or("?"),
                                ar.name(*class)
                            ),
                            "class constants are evaluated when torch.jit.load compiles the class",
                        ),
                        RootKind::TopLevel => (
                            "the top level of the file".to_string(),
                            "statements outside classes are read by torch.jit.load",
                        ),
                    };
                    (&r.region.hits[k], place, Some(why.to_string()))
                }
            };
            let (_, msg) = grade(h, &place, why);
            out.push((sev, finding(ar, file, h, sev, msg)));
        }
        for (file, module) in &ar.imports {
            let root = module.split('.').next().unwrap_or(module);
            if !["__torch__", "torch", "typing", "math", "builtins"].contains(&root) {
                let sev = Severity::Medium;
                out.push((
                    sev,
                    Finding {
                        rule: Rule::TorchScriptCode,
                        severity: sev,
                        message: format!("TorchScript code imports the Python module `{module}`"),
                        global: Some(module.clone()),
                        location: Location {
                            member: ar.files.get(*file).cloned(),
                            ..Default::default()
                        },
                    },
                ));
            }
        }
        if let Some(t) = &ar.truncated {
            out.push((
                Severity::High,
                Finding {
                    rule: Rule::TorchScriptCode,
                    severity: Severity::High,
                    message: format!(
                        "TorchScript source not analysed past a limit ({}): what torch.jit.load \
                         would run cannot be vouched for",
                        t.0
                    ),
                    global: None,
                    location: Location::default(),
                },
            ));
        }
        // The worst sighting of a subject in a member first: findings merge repeats.
        out.sort_by_key(|f| std::cmp::Reverse(f.0));
        for (_, f) in out {
            findings.push(f);
        }
    }
}

/// Where a kept hit is: (function or load-time region, index of the hit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Def(usize, usize),
    Root(usize, usize),
}

fn severity(h: &Hit, load: bool) -> Severity {
    let capability = matches!(h.subject, Subject::Capability { .. });
    match (load, capability) {
        (true, true) => Severity::High,
        (false, true) | (true, false) => Severity::Medium,
        (false, false) => Severity::Low,
    }
}

fn finding(ar: &Archive, file: usize, h: &Hit, severity: Severity, message: String) -> Finding {
    let global = match &h.subject {
        Subject::Capability { qualified, .. } => (*qualified).to_string(),
        Subject::CustomOps(ns) => format!("ops.{ns}"),
        Subject::CustomClasses(ns) => format!("torch.classes.{ns}"),
        Subject::Indirect(which) => format!("{which} (as a value)"),
    };
    Finding {
        rule: Rule::TorchScriptCode,
        severity,
        message,
        global: Some(global),
        location: Location {
            member: ar.files.get(file).cloned(),
            offset: Some(h.offset as u64),
            opcode: None,
        },
    }
}

/// Severity and message of one hit; `load` says why the code runs during torch.jit.load.
fn grade(h: &Hit, place: &str, load: Option<String>) -> (Severity, String) {
    let (what, capability) = match &h.subject {
        Subject::Capability {
            qualified,
            kind,
            effect,
        } => {
            let name = match kind {
                Kind::Class => format!("the TorchBind class {qualified}"),
                _ if qualified.ends_with("::*") => format!("operators of {qualified}"),
                _ => (*qualified).to_string(),
            };
            let how = if h.exact { "" } else { " (by name, through an alias)" };
            (format!("{name}{how}, which {}", effect.describe()), true)
        }
        Subject::CustomOps(ns) => (
            format!("operators of the namespace `{ns}`, which needs a native library torch does not ship (its code cannot be analysed)"),
            false,
        ),
        Subject::CustomClasses(ns) => (
            format!("TorchBind classes of the namespace `{ns}`, which need a native library torch does not ship (their code, including __setstate__, cannot be analysed)"),
            false,
        ),
        Subject::Indirect(which) => (
            format!("`{which}` as a value (an alias hides which operators it reaches)"),
            false,
        ),
    };
    match (load, capability) {
        (Some(why), true) => (
            Severity::High,
            format!("{place} reaches {what}; this runs during torch.jit.load: {why}"),
        ),
        (None, true) => (
            Severity::Medium,
            format!("{place} reaches {what}; it runs when the model is called, not during torch.jit.load"),
        ),
        (Some(why), false) => (
            Severity::Medium,
            format!("{place} reaches {what}; this runs during torch.jit.load: {why}"),
        ),
        (None, false) => (
            Severity::Low,
            format!("{place} reaches {what}; it runs when the model is called"),
        ),
    }
}

fn explain(ar: &Archive, reached: &HashMap<usize, Why>, def: usize) -> String {
    let q = |d: usize| ar.qualified(ar.defs[d].file, ar.defs[d].class, ar.defs[d].name);
    let mut chain = vec![q(def)];
    let mut cur = def;
    for _ in 0..8 {
        match reached.get(&cur) {
            Some(Why::SetState) => {
                return format!(
                    "{} is __setstate__, called while unpickling objects of its class",
                    chain.join(" <- ")
                )
            }
            Some(Why::Dunder) => {
                return format!(
                    "{} is a special method that load-time code can call implicitly \
                     (operators, len, with)",
                    chain.join(" <- ")
                )
            }
            Some(Why::Forward) => {
                return format!(
                    "{} runs when load-time code calls a submodule or an unresolved callable",
                    chain.join(" <- ")
                )
            }
            Some(Why::Root(r)) => {
                let place = match &ar.roots[*r].kind {
                    RootKind::Signature { class, name } => format!(
                        "a parameter default of {}",
                        ar.qualified(ar.roots[*r].file, *class, *name)
                    ),
                    RootKind::ClassBody { class } => format!(
                        "a class constant of {}.{}",
                        ar.modules
                            .get(ar.roots[*r].file)
                            .map(String::as_str)
                            .unwrap_or("?"),
                        ar.name(*class)
                    ),
                    RootKind::TopLevel => "the top level of a file".to_string(),
                };
                return format!("{} is called from {place}", chain.join(" <- "));
            }
            Some(Why::From(d)) => {
                chain.push(q(*d));
                cur = *d;
            }
            None => break,
        }
    }
    format!("{} (call chain shortened)", chain.join(" <- "))
}

/// The functions that run during torch.jit.load, each with the reason it was reached.
fn reachable(ar: &Archive) -> HashMap<usize, Why> {
    let mut by_name: HashMap<u32, Vec<usize>> = HashMap::new();
    let mut inits: HashMap<u32, Vec<usize>> = HashMap::new();
    let init = ar.id("__init__");
    for (i, d) in ar.defs.iter().enumerate() {
        by_name.entry(d.name).or_default().push(i);
        if Some(d.name) == init {
            if let Some(c) = d.class {
                inits.entry(c).or_default().push(i);
            }
        }
    }
    let known_callee = |id: u32| by_name.contains_key(&id) || ar.classes.contains(&id);
    let mut reached: HashMap<usize, Why> = HashMap::new();
    let mut work: Vec<usize> = Vec::new();
    let mut seen_names: HashSet<u32> = HashSet::new();
    let mut forward_done = false;
    let forward = ar.id("forward");

    for (i, d) in ar.defs.iter().enumerate() {
        let name = ar.name(d.name);
        let why = if name == "__setstate__" {
            Some(Why::SetState)
        } else if name.len() > 4
            && name.starts_with("__")
            && name.ends_with("__")
            && name != "__getstate__"
            && name != "__init__"
        {
            Some(Why::Dunder)
        } else {
            None
        };
        if let Some(w) = why {
            reached.insert(i, w);
            work.push(i);
        }
    }
    // Regions that run: load-time roots first, then the functions found.
    let mut pending_regions: Vec<usize> = (0..ar.roots.len()).collect();
    loop {
        let (from, region) = if let Some(r) = pending_regions.pop() {
            (Why::Root(r), &ar.roots[r].region)
        } else if let Some(d) = work.pop() {
            (Why::From(d), &ar.defs[d].body)
        } else {
            break;
        };
        let mut wake_forward = region.dynamic_call
            || region.calls.iter().any(|c| !known_callee(c))
            || region
                .method_calls
                .iter()
                .any(|c| ar.module_attrs.contains(&c));
        for name in region.refs.iter() {
            if !seen_names.insert(name) {
                continue;
            }
            if let Some(ds) = by_name.get(&name) {
                for &d in ds {
                    if let std::collections::hash_map::Entry::Vacant(e) = reached.entry(d) {
                        e.insert(from.clone());
                        work.push(d);
                    }
                }
            }
            if let Some(ds) = inits.get(&name) {
                for &d in ds {
                    if let std::collections::hash_map::Entry::Vacant(e) = reached.entry(d) {
                        e.insert(from.clone());
                        work.push(d);
                    }
                }
            }
            if ar.module_attrs.contains(&name) && region.calls.contains(name) {
                wake_forward = true;
            }
        }
        if wake_forward && !forward_done {
            forward_done = true;
            for (i, d) in ar.defs.iter().enumerate() {
                if Some(d.name) == forward || ar.hooks.contains(&d.name) {
                    if let std::collections::hash_map::Entry::Vacant(e) = reached.entry(i) {
                        e.insert(Why::Forward);
                        work.push(i);
                    }
                }
            }
        }
    }
    reached
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (severity, global) of every finding for the given files.
    fn grade_files(files: &[(&str, &str)]) -> Vec<(Severity, String)> {
        let mut ts = TorchScript::new();
        for (module, text) in files {
            let member = format!("a/code/{}.py", module.replace('.', "/"));
            ts.add_file(&member, module, text.as_bytes());
        }
        let mut f = Findings::default();
        ts.finish(&mut f);
        let mut out: Vec<(Severity, String)> = f
            .into_vec()
            .into_iter()
            .map(|x| (x.severity, x.global.unwrap_or_default()))
            .collect();
        out.sort();
        out
    }

    fn grade_one(text: &str) -> Vec<(Severity, String)> {
        grade_files(&[("__torch__", text)])
    }

    const HOLDER: &str = "class Holder:\n  path : str\n  def __getstate__(self: __torch__.Holder) -> Tuple[str, int]:\n    return (self.path, 0)\n  def __setstate__(self: __torch__.Holder,\n    state: Tuple[str, int]) -> NoneType:\n    self.path = (state)[0]\n    t = torch.from_file(self.path, True, 4, dtype=0)\n    return None\n";

    #[test]
    fn setstate_file_op_is_high() {
        assert_eq!(
            grade_one(HOLDER),
            [(Severity::High, "aten::from_file".into())]
        );
    }

    #[test]
    fn forward_file_op_is_medium() {
        let src = "class M(Module):\n  __parameters__ = []\n  training : bool\n  def forward(self: __torch__.M,\n    x: Tensor) -> Tensor:\n    torch.save(x, \"/tmp/out\")\n    return x\n";
        assert_eq!(grade_one(src), [(Severity::Medium, "aten::save".into())]);
    }

    #[test]
    fn transitive_calls_from_setstate_are_load_time() {
        let helper = "def helper(p: str) -> Tensor:\n  return torch.from_file(p, True, 1)\n";
        let cls = "class C:\n  def __getstate__(self) -> int:\n    return 1\n  def __setstate__(self, s: int) -> None:\n    t = __torch__.util.helper(\"/x\")\n    return None\n";
        assert_eq!(
            grade_files(&[("__torch__.util", helper), ("__torch__", cls)]),
            [(Severity::High, "aten::from_file".into())]
        );
        // Without the call the helper only runs when called: medium.
        assert_eq!(
            grade_files(&[("__torch__.util", helper)]),
            [(Severity::Medium, "aten::from_file".into())]
        );
    }

    #[test]
    fn defaults_and_class_constants_are_load_time() {
        let default = "class M(Module):\n  def forward(self: __torch__.M,\n    x: Tensor, n: int=torch.numel(torch.from_file(\"/p\", True, 4, dtype=0))) -> Tensor:\n    return x\n";
        assert_eq!(
            grade_one(default),
            [(Severity::High, "aten::from_file".into())]
        );
        let constant = "class M(Module):\n  training : bool\n  k : Final[int] = torch.numel(torch.from_file(\"/p\", True, 4, dtype=0))\n  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n    return x\n";
        assert_eq!(
            grade_one(constant),
            [(Severity::High, "aten::from_file".into())]
        );
        // A default that calls a function of the archive makes that function load-time.
        let via = "def f() -> int:\n  torch.save(1, \"/p\")\n  return 1\nclass M(Module):\n  def forward(self: __torch__.M, n: int=__torch__.f()) -> int:\n    return n\n";
        assert_eq!(grade_one(via), [(Severity::High, "aten::save".into())]);
    }

    #[test]
    fn aliases_escapes_and_layout_tricks_are_seen() {
        for body in [
            "t = torch\n    f = getattr(t, \"from_\\146ile\")\n    y = f(\"/p\", True, 4)",
            "f = torch.from_file\n    y = f(\"/p\", True, 4)",
            "y = getattr(getattr(ops, \"aten\"), \"from_file\")(\"/p\", True, 4)",
            "y = (torch).from_file(\"/p\", True, 4)",
            "y = torch.\\\n      from_file(\"/p\", True, 4)",
            "y = (torch\n      .from_file)(\"/p\", True, 4)",
            "y = torch . from_file(\"/p\", True, 4)",
            "y = torch.from_file(\"/tmp/\" \"p\", True, 4)",
            "m = getattr(torch, \"autograd\")\n    y = m.save(3, \"/p\")",
            "o = ops\n    y = o.aten.save(3, \"/p\")",
            "y = ops.aten.save(3, \"/p\") # type: int",
            "y = getattr((((torch))), \"from_file\")(\"/p\", True, 4)",
            "y = getattr(torch if True else torch, \"sa\" \"ve\")(3, \"/p\")",
        ] {
            let src = format!(
                "class C:\n  def __getstate__(self) -> int:\n    return 1\n  def __setstate__(self, s: int) -> None:\n    {body}\n    return None\n"
            );
            let g = grade_one(&src);
            assert!(
                g.iter()
                    .any(|(s, n)| *s == Severity::High && n.starts_with("aten::")),
                "{body}: {g:?}"
            );
        }
    }

    #[test]
    fn comments_strings_and_unrelated_names_are_not_calls() {
        let src = "class M(Module):\n  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n    # torch.save(x, \"/p\")\n    s = \"torch.from_file('/p')\"\n    t = \"\"\"\n    torch.save(1, '/q')\n    \"\"\"\n    y = self.read_file\n    return x\n";
        assert_eq!(grade_one(src), []);
    }

    #[test]
    fn custom_namespaces_and_third_party_ops() {
        let fwd = "class M(Module):\n  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n    return ops.mylib.double(x)\n";
        assert_eq!(grade_one(fwd), [(Severity::Low, "ops.mylib".into())]);
        let load = "class C:\n  def __getstate__(self) -> int:\n    return 1\n  def __setstate__(self, s: int) -> None:\n    ops.mylib.touch(\"/p\")\n    return None\n";
        assert_eq!(grade_one(load), [(Severity::Medium, "ops.mylib".into())]);
        let image = "class M(Module):\n  def forward(self: __torch__.M, p: str) -> Tensor:\n    return ops.image.decode_jpeg(ops.image.read_file(p), 0)\n";
        assert_eq!(
            grade_one(image),
            [(Severity::Medium, "image::read_file".into())]
        );
        let benign = "class M(Module):\n  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n    _0 = ops.prim.device(x)\n    b = ops.torchvision.nms(x, x, 0.5)\n    return ops.quantized.linear(x, self._packed_params, 1.0, 0)\n";
        assert_eq!(grade_one(benign), []);
        let c10d = "class M(Module):\n  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n    return ops._c10d_functional.all_reduce(x, \"sum\", \"0\")\n";
        assert_eq!(
            grade_one(c10d),
            [(Severity::Medium, "_c10d_functional::*".into())]
        );
        let cls = "class M(Module):\n  v : __torch__.torch.classes.myns.Thing\n  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n    return x\n";
        assert_eq!(
            grade_one(cls),
            [(Severity::Medium, "torch.classes.myns".into())]
        );
        let nnapi = "class M(Module):\n  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n    c = __torch__.torch.classes._nnapi.Compilation()\n    return x\n";
        assert_eq!(
            grade_one(nnapi),
            [(Severity::Medium, "_nnapi::Compilation".into())]
        );
    }

    #[test]
    fn memory_primitives_are_graded() {
        let src = "class C:\n  def __getstate__(self) -> int:\n    return 1\n  def __setstate__(self, s: int) -> None:\n    v = torch._reshape_alias(torch.zeros([2]), [64], [1])\n    return None\n";
        assert_eq!(
            grade_one(src),
            [(Severity::High, "aten::_reshape_alias".into())]
        );
    }

    #[test]
    fn load_time_submodule_calls_reach_forward() {
        let src = "class M(Module):\n  sub : __torch__.Sub\n  def __getstate__(self) -> int:\n    return 1\n  def __setstate__(self, s: int) -> None:\n    y = self.sub(torch.zeros([1]))\n    return None\nclass Sub(Module):\n  def forward(self: __torch__.Sub, x: Tensor) -> Tensor:\n    torch.save(x, \"/p\")\n    return x\n";
        assert_eq!(grade_one(src), [(Severity::High, "aten::save".into())]);
    }

    #[test]
    fn benign_quantized_setstate_has_no_findings() {
        let src = "class LinearPackedParams(Module):\n  __parameters__ = []\n  __buffers__ = []\n  _packed_params : __torch__.torch.classes.quantized.LinearPackedParamsBase\n  def forward(self: __torch__.LinearPackedParams, x: Tensor) -> Tensor:\n    return x\n  def __getstate__(self: __torch__.LinearPackedParams) -> Tuple[Tensor, Optional[Tensor], bool, int]:\n    _0 = (self)._weight_bias()\n    return (_0[0], _0[1], self.training, self.dtype)\n  def __setstate__(self: __torch__.LinearPackedParams, state: Tuple[Tensor, Optional[Tensor], bool, int]) -> NoneType:\n    self.dtype = (state)[3]\n    _1 = (self).set_weight_bias((state)[0], (state)[1], )\n    self.training = (state)[2]\n    return None\n  def set_weight_bias(self: __torch__.LinearPackedParams, weight: Tensor, bias: Optional[Tensor]) -> NoneType:\n    self._packed_params = ops.quantized.linear_prepack(weight, bias)\n    return None\n  def _weight_bias(self: __torch__.LinearPackedParams) -> Tuple[Tensor, Optional[Tensor]]:\n    _2, _3, = ops.quantized.linear_unpack(self._packed_params)\n    return (_2, _3)\n";
        assert_eq!(grade_one(src), []);
    }

    #[test]
    fn types_are_not_code() {
        // A class named only in annotations is not constructed: its __init__ stays call-time.
        let src = "class Vocab:\n  def __init__(self: __torch__.Vocab, p: str) -> NoneType:\n    t = torch.from_file(p, True, 1)\n    return None\nclass M(Module):\n  v : __torch__.Vocab\n  def forward(self: __torch__.M, x: Tensor, y: Optional[__torch__.Vocab]=None) -> __torch__.Vocab:\n    return self.v\n";
        assert_eq!(
            grade_one(src),
            [(Severity::Medium, "aten::from_file".into())]
        );
        // A TorchBind class of an unknown library in a signature is only a type; as an
        // attribute its objects come out of the pickle through native __setstate__.
        let sig = "def f(x: __torch__.torch.classes.myns.Thing) -> int:\n  return 1\n";
        assert_eq!(
            grade_one(sig),
            [(Severity::Low, "torch.classes.myns".into())]
        );
    }

    #[test]
    fn token_soup_never_panics() {
        let words = [
            "def",
            "class",
            "f",
            "(",
            ")",
            ":",
            "=",
            ",",
            "\n",
            "  ",
            "\t",
            "torch",
            "ops",
            ".",
            "save",
            "getattr",
            "\"x\"",
            "'",
            "#",
            "\\\n",
            "[",
            "]",
            "__setstate__",
            "->",
            "import",
            "__torch__",
            "classes",
            "1.5",
            "\"\"\"",
            "__annotations__",
            "__forward_hooks__",
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..300 {
            let mut src = String::new();
            for _ in 0..200 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                src.push_str(words[(x % words.len() as u64) as usize]);
                if x & 3 == 0 {
                    src.push(' ');
                }
            }
            let mut ts = TorchScript::new();
            ts.add_file("a/code/s.py", "s", src.as_bytes());
            ts.finish(&mut Findings::default());
        }
    }

    #[test]
    fn hostile_input_is_bounded_and_never_panics() {
        let mut ts = TorchScript::new();
        let deep = format!(
            "def f():\n  x = {}1{}\n",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        ts.add_file("a/code/d.py", "d", deep.as_bytes());
        let wide = "x.".repeat(300_000) + "save\n";
        ts.add_file("a/code/w.py", "w", wide.as_bytes());
        let getattrs = "y = ".to_string() + &"getattr(".repeat(60_000) + "\n";
        ts.add_file("a/code/g.py", "g", getattrs.as_bytes());
        let strings = "y = getattr(x, ".to_string() + &"\"\" ".repeat(60_000) + ")\n";
        ts.add_file("a/code/s.py", "s", strings.as_bytes());
        let junk: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        ts.add_file("a/code/j.py", "j", &junk);
        let indents: String = (0..50_000)
            .map(|i| format!("{}def f{i}():\n", " ".repeat(i % 97)))
            .collect();
        ts.add_file("a/code/i.py", "i", indents.as_bytes());
        let mut f = Findings::default();
        ts.finish(&mut f);
        // More source than the budget is graded high without being read.
        let mut big = TorchScript::new();
        let chunk = vec![b'#'; 1 << 20];
        for i in 0..=(MAX_CODE_BYTES >> 20) {
            big.add_file(&format!("a/code/{i}.py"), "m", &chunk);
        }
        let mut f = Findings::default();
        big.finish(&mut f);
        assert_eq!(f.max_severity(), Some(Severity::High));
    }
}
