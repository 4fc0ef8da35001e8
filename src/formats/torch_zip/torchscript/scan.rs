//! Reads TorchScript source into what the grading needs: the classes and functions it defines,
//! which names each function body mentions and calls, and where it reaches operators the
//! registry classifies. Nothing is evaluated; every decision errs towards "may run".
//!
//! Regions: a function body (owned by the outermost `def` of a class or of the file) or a
//! load-time region: every `def` header (parameter defaults are evaluated when torch compiles
//! the function, i.e. during `torch.jit.load`), every class-body statement that is not a `def`
//! (class constants such as `x : Final[int] = <expr>` are evaluated at compile time too) and
//! anything at the top level of a file.

use super::lexer::{decode_string, Lexer, Tok, Token};
use super::registry::{self, Capability, Effect, Kind};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// Longest string literal decoded (operator and attribute names are short).
const MAX_LITERAL: usize = 256;
/// Adjacent string literals joined into one.
const MAX_ADJACENT_STRINGS: usize = 64;
/// Tokens in one logical line; a longer line is analysed in pieces (see `Scanner::line`).
const MAX_LINE_TOKENS: usize = 1 << 16;
/// Distinct identifiers across the archive.
pub const MAX_NAMES: usize = 1_000_000;
/// Functions across the archive.
pub const MAX_DEFS: usize = 100_000;
/// Findings-worth hits kept per region (repeats of one subject are merged first).
const MAX_HITS_PER_REGION: usize = 256;

/// What a hit refers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A registry capability (`aten::save`, `c10d::*`, `class _nnapi::Compilation`).
    Capability {
        qualified: &'static str,
        kind: Kind,
        effect: Effect,
    },
    /// An operator namespace the registry does not know: a native library.
    CustomOps(String),
    /// A TorchBind class namespace the registry does not know.
    CustomClasses(String),
    /// `torch` or `ops` used as a value (assigned, passed, parenthesised): the operators it
    /// reaches cannot be named.
    Indirect(&'static str),
}

#[derive(Debug, Clone)]
pub struct Hit {
    pub subject: Subject,
    pub offset: usize,
    /// Whether the operator was named exactly (`torch.save`) or only matched by an attribute
    /// name that could be an alias of it (`t.save` with `t = torch`).
    pub exact: bool,
}

/// Where a load-time region is.
#[derive(Debug, Clone)]
pub enum RootKind {
    /// Defaults of function `name` (of `class`, if a method).
    Signature {
        class: Option<u32>,
        name: u32,
    },
    ClassBody {
        class: u32,
    },
    TopLevel,
}

/// A set of interned names kept as a vector: pushed unsorted, sorted and deduplicated when it
/// has doubled and when its file ends (4 bytes a name instead of a hash table's ~16).
#[derive(Debug, Default)]
pub struct IdSet {
    ids: Vec<u32>,
    sorted: usize,
}

impl IdSet {
    pub fn insert(&mut self, id: u32) {
        if self.ids.last() == Some(&id) {
            return;
        }
        self.ids.push(id);
        if self.ids.len() > 2 * self.sorted + 64 {
            self.compact();
        }
    }

    pub fn compact(&mut self) {
        self.ids.sort_unstable();
        self.ids.dedup();
        self.ids.shrink_to_fit();
        self.sorted = self.ids.len();
    }

    /// After `compact`.
    pub fn contains(&self, id: u32) -> bool {
        self.ids.binary_search(&id).is_ok()
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.ids.iter().copied()
    }
}

#[derive(Debug, Default)]
pub struct Region {
    pub refs: IdSet,
    /// Bare names called (`f(...)`), resolved against the archive's functions later.
    pub calls: IdSet,
    /// Attribute names called (`x.m(...)`).
    pub method_calls: IdSet,
    /// A call whose callee is an expression (`a[0](x)`, `getattr(...)(x)`).
    pub dynamic_call: bool,
    pub hits: Vec<Hit>,
}

impl Region {
    fn compact(&mut self) {
        self.refs.compact();
        self.calls.compact();
        self.method_calls.compact();
    }

    fn hit(&mut self, h: Hit) {
        let full = self.hits.len() >= MAX_HITS_PER_REGION;
        match self.hits.iter_mut().find(|o| o.subject == h.subject) {
            // Prefer the exact sighting of a subject for the message.
            Some(old) if h.exact && !old.exact => *old = h,
            Some(_) => {}
            None if !full => {
                // Most regions hold one hit or none: no room for four.
                self.hits.reserve_exact(1);
                self.hits.push(h)
            }
            None => {}
        }
    }
}

#[derive(Debug)]
pub struct Def {
    pub name: u32,
    pub class: Option<u32>,
    pub file: usize,
    pub offset: usize,
    pub body: Region,
}

#[derive(Debug)]
pub struct Root {
    pub kind: RootKind,
    pub file: usize,
    pub region: Region,
}

/// Distinct `import` lines kept per archive.
const MAX_IMPORTS: usize = 10_000;

/// Why analysis stopped early (the archive is then graded as not analysable).
#[derive(Debug, Clone)]
pub struct Truncated(pub String);

#[derive(Debug, Default)]
pub struct Archive {
    pub files: Vec<String>,
    /// The qualifier of each file (`__torch__.a.b`).
    pub modules: Vec<String>,
    names: Vec<Rc<str>>,
    ids: HashMap<Rc<str>, u32>,
    pub defs: Vec<Def>,
    pub roots: Vec<Root>,
    pub classes: HashSet<u32>,
    /// Attributes declared with a `__torch__` type in a class body (submodules): calling one
    /// runs its `forward`.
    pub module_attrs: HashSet<u32>,
    /// Method names listed in `__forward_hooks__` / `__forward_pre_hooks__`.
    pub hooks: HashSet<u32>,
    /// (file, module) of every distinct `import`/`from` line.
    pub imports: std::collections::BTreeSet<(usize, String)>,
    pub truncated: Option<Truncated>,
}

impl Archive {
    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map(|s| &**s).unwrap_or("?")
    }

    pub fn id(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        if self.names.len() >= MAX_NAMES {
            self.truncate(format!("more than {MAX_NAMES} distinct names"));
            // Everything past the cap shares one id: still sound for reachability (over-merged).
            return u32::MAX;
        }
        let i = self.names.len() as u32;
        let b: Rc<str> = s.into();
        self.names.push(b.clone());
        self.ids.insert(b, i);
        i
    }

    /// `module.Class.name` or `module.name`.
    pub fn qualified(&self, file: usize, class: Option<u32>, name: u32) -> String {
        let module = self.modules.get(file).map(String::as_str).unwrap_or("?");
        match class {
            Some(c) => format!("{module}.{}.{}", self.name(c), self.name(name)),
            None => format!("{module}.{}", self.name(name)),
        }
    }

    pub fn truncate(&mut self, why: String) {
        if self.truncated.is_none() {
            self.truncated = Some(Truncated(why));
        }
    }

    /// Reads one `code/**.py` member; `module` is its qualifier (`__torch__.a.b`).
    pub fn add_file(&mut self, member: &str, module: &str, text: &[u8]) {
        let file = self.files.len();
        self.files.push(member.to_string());
        self.modules.push(module.to_string());
        let (defs, roots) = (self.defs.len(), self.roots.len());
        let mut f = FileScanner::new(self, file, text);
        f.run();
        f.finish();
        for d in &mut self.defs[defs..] {
            d.body.compact();
        }
        for r in &mut self.roots[roots..] {
            r.region.compact();
        }
    }
}

/// A name of a chain and its offset (a `getattr` literal is decoded, so owned).
type Named<'a> = (Cow<'a, str>, usize);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Class(u32),
    /// A function body; `Some(index)` when it owns its region (not nested in another def).
    Def(Option<usize>),
}

/// Where the tokens of the current line go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Def(usize),
    Root(usize),
}

struct FileScanner<'a, 'b> {
    ar: &'b mut Archive,
    file: usize,
    src: &'a [u8],
    lexer: Lexer<'a>,
    /// Open frames and the indentation depth of their bodies.
    frames: Vec<(Frame, usize)>,
    depth: usize,
    /// The frame the next INDENT opens.
    opening: Option<Frame>,
    /// Load-time region of this file's class bodies and top level, by class (None = top).
    body_roots: HashMap<Option<u32>, usize>,
    /// Attribute names and getattr literals seen in this file.
    attrs_seen: HashSet<u32>,
    /// Name matches of capabilities whose namespace must be named in this file too.
    pending: HashMap<(&'static str, Target), (&'static Capability, usize)>,
}

fn is_keyword(s: &str) -> bool {
    matches!(
        s,
        "def"
            | "class"
            | "return"
            | "if"
            | "else"
            | "elif"
            | "for"
            | "while"
            | "in"
            | "not"
            | "and"
            | "or"
            | "is"
            | "pass"
            | "break"
            | "continue"
            | "with"
            | "as"
            | "assert"
            | "raise"
            | "del"
            | "global"
            | "lambda"
            | "True"
            | "False"
            | "None"
            | "import"
            | "from"
    )
}

/// Names that, called bare, are TorchScript builtins rather than functions of the archive.
fn is_builtin_callable(s: &str) -> bool {
    registry::is_builtin(s)
        || matches!(
            s,
            "print"
                | "len"
                | "int"
                | "float"
                | "str"
                | "bool"
                | "list"
                | "dict"
                | "tuple"
                | "range"
                | "isinstance"
                | "getattr"
                | "hasattr"
                | "min"
                | "max"
                | "abs"
                | "round"
                | "sum"
                | "any"
                | "all"
                | "zip"
                | "enumerate"
                | "divmod"
                | "ord"
                | "chr"
                | "hex"
                | "oct"
                | "bin"
                | "sorted"
                | "hash"
                | "id"
                | "complex"
                | "rangelist"
                | "_unwrap_optional"
                | "iter"
                | "next"
                | "reversed"
                | "Tensor"
                | "Optional"
                | "List"
                | "Dict"
                | "Tuple"
                | "Union"
                | "Any"
                | "Final"
                | "Future"
                | "Await"
                | "RRef"
                | "NamedTuple"
                | "Enum"
                | "Module"
                | "Interface"
                | "ModuleInterface"
        )
}

impl<'a, 'b> FileScanner<'a, 'b> {
    fn new(ar: &'b mut Archive, file: usize, src: &'a [u8]) -> Self {
        FileScanner {
            ar,
            file,
            src,
            lexer: Lexer::new(src),
            frames: Vec::new(),
            depth: 0,
            opening: None,
            body_roots: HashMap::new(),
            attrs_seen: HashSet::new(),
            pending: HashMap::new(),
        }
    }

    fn text(&self, t: &Token) -> &'a str {
        std::str::from_utf8(&self.src[t.start..t.end]).unwrap_or("")
    }

    fn run(&mut self) {
        let mut line: Vec<Token> = Vec::new();
        loop {
            let t = self.lexer.next_token();
            match t.kind {
                Tok::Newline | Tok::Indent | Tok::Dedent | Tok::Eof => {
                    if !line.is_empty() {
                        self.line(&line);
                        line.clear();
                    }
                    match t.kind {
                        Tok::Indent => {
                            self.depth += 1;
                            if let Some(f) = self.opening.take() {
                                self.frames.push((f, self.depth));
                            }
                        }
                        Tok::Dedent => {
                            self.depth = self.depth.saturating_sub(1);
                            while self.frames.last().is_some_and(|&(_, d)| d > self.depth) {
                                self.frames.pop();
                            }
                            self.opening = None;
                        }
                        Tok::Newline => self.opening = None,
                        _ => {}
                    }
                    if t.kind == Tok::Eof {
                        break;
                    }
                }
                _ => {
                    if self.ar.truncated.is_some() {
                        // Past a limit the archive is graded as not analysable: stop here.
                        return;
                    }
                    if line.len() >= MAX_LINE_TOKENS {
                        // A pathological line: analyse what we have as a statement of its own.
                        // Splitting can only separate a name from the call after it, which
                        // `dynamic_call` below makes up for.
                        self.line(&line);
                        line.clear();
                        if let Some(r) = self.current_region() {
                            r.dynamic_call = true;
                        }
                    }
                    line.push(t);
                }
            }
        }
    }

    /// The outermost function of the current frames, or the innermost class.
    fn owner(&self) -> (Option<usize>, Option<u32>) {
        let def = self.frames.iter().find_map(|(f, _)| match f {
            Frame::Def(Some(i)) => Some(*i),
            _ => None,
        });
        let class = self.frames.iter().rev().find_map(|(f, _)| match f {
            Frame::Class(c) => Some(*c),
            _ => None,
        });
        (def, class)
    }

    fn in_def(&self) -> bool {
        self.frames.iter().any(|(f, _)| matches!(f, Frame::Def(_)))
    }

    fn body_target(&mut self) -> Target {
        match self.owner() {
            (Some(d), _) => Target::Def(d),
            (None, class) => {
                if let Some(&r) = self.body_roots.get(&class) {
                    return Target::Root(r);
                }
                let kind = match class {
                    Some(c) => RootKind::ClassBody { class: c },
                    None => RootKind::TopLevel,
                };
                let r = self.new_root(kind);
                self.body_roots.insert(class, r);
                Target::Root(r)
            }
        }
    }

    fn new_root(&mut self, kind: RootKind) -> usize {
        self.ar.roots.push(Root {
            kind,
            file: self.file,
            region: Region::default(),
        });
        self.ar.roots.len() - 1
    }

    fn region(&mut self, t: Target) -> &mut Region {
        match t {
            Target::Def(i) => &mut self.ar.defs[i].body,
            Target::Root(i) => &mut self.ar.roots[i].region,
        }
    }

    fn current_region(&mut self) -> Option<&mut Region> {
        let t = self.body_target();
        Some(self.region(t))
    }

    fn line(&mut self, toks: &[Token]) {
        let first = self.text(&toks[0]);
        match first {
            "def" if toks.len() >= 2 && toks[1].kind == Tok::Ident => self.def_line(toks),
            "class" if toks.len() >= 2 && toks[1].kind == Tok::Ident && !self.in_def() => {
                let name = self.text(&toks[1]).to_string();
                let id = self.ar.intern(&name);
                self.ar.classes.insert(id);
                self.opening = Some(Frame::Class(id));
                // The superclass list is a type, never run; anything after `:` is body.
                if let Some(colon) = header_end(toks, 2) {
                    let t = self.body_target();
                    if colon + 1 < toks.len() {
                        self.expressions(&toks[colon + 1..], t);
                    }
                }
            }
            "import" | "from" => {
                // torch skips `import` lines (SourceImporterImpl::parseImports); they name
                // modules the loader never imports, but an unusual one is still worth a note.
                if let Some(m) = toks.get(1).filter(|t| t.kind == Tok::Ident) {
                    let mut module = self.text(m).to_string();
                    let mut i = 2;
                    while i + 1 < toks.len()
                        && toks[i].kind == Tok::Punct(b'.')
                        && toks[i + 1].kind == Tok::Ident
                    {
                        module.push('.');
                        module.push_str(self.text(&toks[i + 1]));
                        i += 2;
                    }
                    if self.ar.imports.len() < MAX_IMPORTS {
                        self.ar.imports.insert((self.file, module));
                    }
                }
            }
            _ => {
                let t = self.body_target();
                match t {
                    Target::Root(_) if self.owner().1.is_some() => {
                        self.class_body_statement(toks, t)
                    }
                    _ => self.expressions(toks, t),
                }
            }
        }
    }

    /// A statement of a class body: `name : Type`, `name : Type = value`, `name = value`,
    /// `__annotations__["0"] = Type`, hook lists. Types are parsed by torch, never run, so
    /// they only matter for the TorchBind classes they name (objects of those classes come
    /// out of the pickle through their native `__setstate__`); values are evaluated when
    /// torch compiles the class.
    fn class_body_statement(&mut self, toks: &[Token], target: Target) {
        let lhs = if toks[0].kind == Tok::Ident {
            self.text(&toks[0])
        } else {
            ""
        };
        if (lhs == "__forward_hooks__" || lhs == "__forward_pre_hooks__")
            && toks.get(1).is_some_and(|t| t.kind == Tok::Punct(b'='))
        {
            for t in &toks[2..] {
                if t.kind == Tok::Str {
                    if let Some(v) = decode_string(&self.src[t.start..t.end], MAX_LITERAL) {
                        let id = self.ar.intern(&String::from_utf8_lossy(&v));
                        self.ar.hooks.insert(id);
                    }
                }
            }
        }
        if lhs == "__annotations__"
            && toks.get(1).is_some_and(|t| t.kind == Tok::Punct(b'['))
            && toks.get(2).is_some_and(|t| t.kind == Tok::Str)
        {
            // `__annotations__["0"] = __torch__.X` declares submodule "0" (Sequential).
            if let Some(v) = decode_string(&self.src[toks[2].start..toks[2].end], MAX_LITERAL) {
                let id = self.ar.intern(&String::from_utf8_lossy(&v));
                self.ar.module_attrs.insert(id);
            }
            if let Some(eq) = toks.iter().position(|t| t.kind == Tok::Punct(b'=')) {
                self.types(&toks[eq + 1..], target);
                return;
            }
        }
        if !lhs.is_empty() && toks.get(1).is_some_and(|t| t.kind == Tok::Punct(b':')) {
            let eq = top_level_eq(toks, 2).unwrap_or(toks.len());
            let ty = &toks[2..eq];
            if ty.iter().any(|t| self.text(t) == "__torch__") {
                let id = self.ar.intern(lhs);
                self.ar.module_attrs.insert(id);
            }
            self.types(ty, target);
            if eq + 1 < toks.len() {
                self.expressions(&toks[eq + 1..], target);
            }
            return;
        }
        if lhs == "__parameters__" || lhs == "__buffers__" {
            return;
        }
        self.expressions(toks, target);
    }

    /// A type expression: only the TorchBind classes it names are of interest.
    fn types(&mut self, toks: &[Token], target: Target) {
        let mut i = 0;
        while i < toks.len() {
            if toks[i].kind == Tok::Ident
                && self.text(&toks[i]) == "__torch__"
                && (i == 0 || toks[i - 1].kind != Tok::Punct(b'.'))
            {
                if let Some((names, end)) = self.chain(toks, i, 0) {
                    self.resolve_chain(&names, toks.get(end).map(|n| n.kind), target);
                    i = end.max(i + 1);
                    continue;
                }
            }
            i += 1;
        }
    }

    /// A `def` header after the name: `(params) -> Ret`. Parameter defaults are evaluated
    /// when torch compiles the function (load time); annotations are types.
    fn def_header(&mut self, toks: &[Token], signature: RootKind, types: Target) {
        // The load-time region of the defaults, made on the first default.
        let mut root: Option<usize> = None;
        let mut defaults = |me: &mut Self, part: &[Token]| {
            let r = *root.get_or_insert_with(|| me.new_root(signature.clone()));
            me.expressions(part, Target::Root(r));
        };
        let mut depth = 0i64;
        let mut default_start: Option<usize> = None;
        let mut type_start = 0usize;
        for (i, t) in toks.iter().enumerate() {
            match t.kind {
                Tok::Punct(b'(' | b'[' | b'{') => depth += 1,
                Tok::Punct(b')' | b']' | b'}') => {
                    if depth == 1 {
                        if let Some(s) = default_start.take() {
                            defaults(self, &toks[s..i]);
                            type_start = i;
                        }
                    }
                    depth -= 1;
                }
                Tok::Punct(b',') if depth == 1 => {
                    if let Some(s) = default_start.take() {
                        defaults(self, &toks[s..i]);
                    } else {
                        self.types(&toks[type_start..i], types);
                    }
                    type_start = i + 1;
                }
                Tok::Punct(b'=') if depth == 1 && default_start.is_none() => {
                    self.types(&toks[type_start..i], types);
                    default_start = Some(i + 1);
                }
                _ => {}
            }
        }
        match default_start {
            // An unclosed parameter list: whatever follows the `=` may be code.
            Some(s) => defaults(self, &toks[s..]),
            None => self.types(&toks[type_start.min(toks.len())..], types),
        }
    }

    fn def_line(&mut self, toks: &[Token]) {
        let name = self.text(&toks[1]).to_string();
        let name_id = self.ar.intern(&name);
        let (owner, class) = self.owner();
        let end = header_end(toks, 2).unwrap_or(toks.len() - 1);
        let signature = RootKind::Signature {
            class,
            name: name_id,
        };
        let target = if owner.is_some() || self.in_def() {
            // Nested function: its body belongs to the enclosing function.
            self.opening = Some(Frame::Def(None));
            self.body_target()
        } else if self.ar.defs.len() >= MAX_DEFS {
            self.ar.truncate(format!("more than {MAX_DEFS} functions"));
            self.opening = Some(Frame::Def(None));
            // Counted as load time: bodies cannot be told apart any more.
            Target::Root(self.new_root(signature.clone()))
        } else {
            self.ar.defs.push(Def {
                name: name_id,
                class,
                file: self.file,
                offset: toks[0].start,
                body: Region::default(),
            });
            let i = self.ar.defs.len() - 1;
            self.opening = Some(Frame::Def(Some(i)));
            Target::Def(i)
        };
        let header_stop = if end < toks.len() && toks[end].kind == Tok::Punct(b':') {
            end
        } else {
            toks.len()
        };
        // Annotations are types: a TorchBind class they name matters when the function runs.
        // Parameter defaults are evaluated when torch compiles the function: load time.
        self.def_header(&toks[2..header_stop.max(2)], signature, target);
        if end + 1 < toks.len() {
            self.expressions(&toks[end + 1..], target);
        }
    }

    fn literal(&self, toks: &[Token], i: usize) -> Option<(String, usize)> {
        // Adjacent string literals concatenate, as in Python and torch's parser.
        let mut j = i;
        let mut out = Vec::new();
        while j < toks.len() && toks[j].kind == Tok::Str {
            if j - i >= MAX_ADJACENT_STRINGS {
                return None;
            }
            let v = decode_string(&self.src[toks[j].start..toks[j].end], MAX_LITERAL)?;
            out.extend_from_slice(&v);
            if out.len() > MAX_LITERAL {
                return None;
            }
            j += 1;
        }
        (j > i).then(|| (String::from_utf8_lossy(&out).into_owned(), j))
    }

    /// A chain `root(.name)*` where root is an identifier or `getattr(<chain>, "lit")`.
    /// Returns its first names (enough to resolve it) with their offsets, and the index after
    /// the whole chain.
    fn chain(&self, toks: &[Token], i: usize, depth: usize) -> Option<(Vec<Named<'a>>, usize)> {
        const KEEP: usize = 8;
        if depth > 16 || i >= toks.len() || toks[i].kind != Tok::Ident {
            return None;
        }
        let head = self.text(&toks[i]);
        let (mut names, mut j) =
            if head == "getattr" && toks.get(i + 1).is_some_and(|t| t.kind == Tok::Punct(b'(')) {
                let (mut inner, k) = self.chain(toks, i + 2, depth + 1)?;
                if toks.get(k)?.kind != Tok::Punct(b',') {
                    return None;
                }
                let (lit, k2) = self.literal(toks, k + 1)?;
                if toks.get(k2)?.kind != Tok::Punct(b')') {
                    return None;
                }
                if inner.len() < KEEP {
                    inner.push((Cow::Owned(lit), toks[k + 1].start));
                }
                (inner, k2 + 1)
            } else {
                (vec![(Cow::Borrowed(head), toks[i].start)], i + 1)
            };
        while j + 1 < toks.len()
            && toks[j].kind == Tok::Punct(b'.')
            && toks[j + 1].kind == Tok::Ident
        {
            if names.len() < KEEP {
                names.push((Cow::Borrowed(self.text(&toks[j + 1])), toks[j + 1].start));
            }
            j += 2;
        }
        Some((names, j))
    }

    /// Names, calls and operator references of one statement (or header, or piece of one).
    fn expressions(&mut self, toks: &[Token], target: Target) {
        let close = matching_parens(toks);
        let mut consumed_until = 0usize;
        for i in 0..toks.len() {
            let t = toks[i];
            let prev = i.checked_sub(1).map(|p| toks[p].kind);
            let next = toks.get(i + 1).map(|n| n.kind);
            match t.kind {
                Tok::Ident => {
                    let s = self.text(&t);
                    if is_keyword(s) && prev != Some(Tok::Punct(b'.')) {
                        continue;
                    }
                    let id = self.ar.intern(s);
                    let is_attr = prev == Some(Tok::Punct(b'.'));
                    self.region(target).refs.insert(id);
                    if is_attr {
                        self.trigger(s, t.start, target);
                    }
                    if next == Some(Tok::Punct(b'(')) {
                        let r = self.region(target);
                        if is_attr {
                            r.method_calls.insert(id);
                        } else if !is_builtin_callable(s) {
                            r.calls.insert(id);
                        }
                    }
                    if s == "getattr" && !is_attr && next == Some(Tok::Punct(b'(')) {
                        // getattr(x, "name") is x.name: the literal (the strings just before
                        // the closing parenthesis, after a comma) is an attribute name,
                        // however long `x` is.
                        let close = close.get(i + 1).copied().unwrap_or(usize::MAX);
                        if close < toks.len() {
                            let mut k = close;
                            while k > i + 2
                                && toks[k - 1].kind == Tok::Str
                                && close - k < MAX_ADJACENT_STRINGS
                            {
                                k -= 1;
                            }
                            if k < close && toks[k - 1].kind == Tok::Punct(b',') {
                                if let Some((lit, _)) = self.literal(&toks[..close], k) {
                                    let lid = self.ar.intern(&lit);
                                    self.region(target).refs.insert(lid);
                                    self.trigger(&lit, toks[k].start, target);
                                }
                            }
                        }
                    }
                    // Chains rooted at the importer's globals.
                    if !is_attr && i >= consumed_until {
                        if let Some((names, end)) = self.chain(toks, i, 0) {
                            consumed_until = end;
                            self.resolve_chain(&names, toks.get(end).map(|n| n.kind), target);
                        }
                    }
                    if (s == "torch" || s == "ops") && !is_attr {
                        let used_as_root = next == Some(Tok::Punct(b'.'))
                            || (prev == Some(Tok::Punct(b'('))
                                && i >= 2
                                && self.text(&toks[i - 2]) == "getattr"
                                && next == Some(Tok::Punct(b',')));
                        if !used_as_root {
                            let which = if s == "torch" { "torch" } else { "ops" };
                            self.region(target).hit(Hit {
                                subject: Subject::Indirect(which),
                                offset: t.start,
                                exact: true,
                            });
                        }
                    }
                }
                Tok::Punct(b'(') => {
                    if matches!(prev, Some(Tok::Punct(b')')) | Some(Tok::Punct(b']'))) {
                        self.region(target).dynamic_call = true;
                    }
                }
                _ => {}
            }
        }
    }

    /// `torch.X`, `torch.autograd.X`, `ops.NS.X`, `__torch__.torch.classes.NS.C`.
    fn resolve_chain(&mut self, names: &[Named<'a>], after: Option<Tok>, target: Target) {
        let root: &str = &names[0].0;
        let called = after == Some(Tok::Punct(b'('));
        match root {
            "torch" => {
                let mut k = 1;
                while names.get(k).is_some_and(|(n, _)| n == "autograd") {
                    k += 1;
                }
                if let Some((op, at)) = names.get(k) {
                    if let Some(l) = registry::lookup_op("aten", op) {
                        if l.entry.effect.is_capability() {
                            self.capability_hit(l.entry, &format!("aten::{op}"), *at, true, target);
                        }
                    }
                }
            }
            "ops" => {
                let Some((ns, at)) = names.get(1) else { return };
                let op = names.get(2);
                if !registry::known_op_namespace(ns) {
                    self.region(target).hit(Hit {
                        subject: Subject::CustomOps(ns.to_string()),
                        offset: *at,
                        exact: true,
                    });
                } else if let Some((op, at)) = op {
                    if let Some(l) = registry::lookup_op(ns, op) {
                        if l.entry.effect.is_capability() {
                            self.capability_hit(l.entry, &format!("{ns}::{op}"), *at, true, target);
                        }
                    }
                } else if !called {
                    // `x = ops.NS`: the operators it reaches later cannot be named.
                    self.region(target).hit(Hit {
                        subject: Subject::Indirect("ops"),
                        offset: *at,
                        exact: true,
                    });
                }
            }
            "__torch__" if names.len() >= 4 && names[1].0 == "torch" && names[2].0 == "classes" => {
                let (ns, at) = &names[3];
                match names.get(4) {
                    Some((cls, cat)) => match registry::lookup_class(ns, cls) {
                        Some(l) if l.entry.effect.is_capability() => self.capability_hit(
                            l.entry,
                            &format!("{ns}::{cls}"),
                            *cat,
                            true,
                            target,
                        ),
                        Some(_) => {}
                        None => self.region(target).hit(Hit {
                            subject: Subject::CustomClasses(ns.to_string()),
                            offset: *at,
                            exact: true,
                        }),
                    },
                    None if !registry::known_class_namespace(ns) => self.region(target).hit(Hit {
                        subject: Subject::CustomClasses(ns.to_string()),
                        offset: *at,
                        exact: true,
                    }),
                    None => {}
                }
            }
            _ => {}
        }
    }

    fn capability_hit(
        &mut self,
        entry: &'static registry::Entry,
        qualified: &str,
        offset: usize,
        exact: bool,
        target: Target,
    ) {
        // Name the registry's own string (a namespace entry for a namespace match).
        let q = entry
            .names
            .iter()
            .copied()
            .find(|n| *n == qualified)
            .or_else(|| {
                let ns = qualified.split("::").next().unwrap_or("");
                entry
                    .names
                    .iter()
                    .copied()
                    .find(|n| n.strip_suffix("::*") == Some(ns))
            })
            .unwrap_or(entry.names[0]);
        self.region(target).hit(Hit {
            subject: Subject::Capability {
                qualified: q,
                kind: entry.kind,
                effect: entry.effect,
            },
            offset,
            exact,
        });
    }

    /// An attribute name (or getattr literal) that names a capability however it was reached,
    /// since `torch`, `ops` and namespaces can be aliased (`t = torch; t.save(...)`):
    /// - a namespace entry (`c10d::*`) matches its namespace's name;
    /// - an `aten` operator matches its own name (every alias of `torch` reaches `aten`);
    /// - any other operator or class matches its name when its namespace is named anywhere in
    ///   the same file too (checked when the file ends: a namespace is no value that could come
    ///   from another file).
    fn trigger(&mut self, name: &str, offset: usize, target: Target) {
        let id = self.ar.intern(name);
        self.attrs_seen.insert(id);
        for t in registry::triggered_by(name) {
            let c = t.capability;
            if t.namespace_needed {
                self.pending
                    .entry((c.qualified, target))
                    .or_insert((c, offset));
                continue;
            }
            self.region(target).hit(Hit {
                subject: Subject::Capability {
                    qualified: c.qualified,
                    kind: c.kind,
                    effect: c.entry.effect,
                },
                offset,
                exact: false,
            });
        }
    }

    fn finish(&mut self) {
        let mut pending: Vec<_> = std::mem::take(&mut self.pending).into_iter().collect();
        // Deterministic order (the map's is not).
        pending.sort_by_key(|((q, t), (_, off))| (*off, *q, format!("{t:?}")));
        for ((_, target), (c, offset)) in pending {
            let named = self
                .ar
                .id(c.namespace)
                .is_some_and(|ns| self.attrs_seen.contains(&ns));
            if named {
                self.region(target).hit(Hit {
                    subject: Subject::Capability {
                        qualified: c.qualified,
                        kind: c.kind,
                        effect: c.entry.effect,
                    },
                    offset,
                    exact: false,
                });
            }
        }
    }
}

/// Index of the `:` that ends a `def`/`class` header (outside brackets), from `from`.
fn header_end(toks: &[Token], from: usize) -> Option<usize> {
    top_level_punct(toks, from, b':')
}

/// Index of the first `=` outside brackets, from `from`.
fn top_level_eq(toks: &[Token], from: usize) -> Option<usize> {
    top_level_punct(toks, from, b'=')
}

/// Index of the first `punct` outside brackets, from `from`.
fn top_level_punct(toks: &[Token], from: usize, punct: u8) -> Option<usize> {
    let mut depth = 0i64;
    for (i, t) in toks.iter().enumerate().skip(from) {
        match t.kind {
            Tok::Punct(b'(' | b'[' | b'{') => depth += 1,
            Tok::Punct(b')' | b']' | b'}') => depth -= 1,
            Tok::Punct(p) if p == punct && depth <= 0 => return Some(i),
            _ => {}
        }
    }
    None
}

/// For each `(`, the index of its matching `)` (`usize::MAX` when unmatched); one pass.
fn matching_parens(toks: &[Token]) -> Vec<usize> {
    let mut close = vec![usize::MAX; toks.len()];
    let mut open: Vec<usize> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        match t.kind {
            Tok::Punct(b'(') => open.push(i),
            Tok::Punct(b')') => {
                if let Some(o) = open.pop() {
                    close[o] = i;
                }
            }
            _ => {}
        }
    }
    close
}
