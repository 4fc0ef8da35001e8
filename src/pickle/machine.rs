//! The restricted pickle machine: every opcode of protocols 0–5 with CPython's `_pickle.c`
//! semantics for what gets built, and nothing ever called. Allowlisted calls are interpreted
//! by `policy::interpret` as pure functions on already-built values; everything else becomes an
//! inert [`Object`] plus a finding.

use super::compat::fix_import;
use super::input::Input;
use super::opcodes as op;
use super::text;
use super::value::{
    ArrayData, ArrayNode, CallKind, Dict, DictKind, Global, Graph, Node, NodeId, Object,
};
use crate::error::{Error, Location, Result};
use crate::limits::Limits;
use crate::policy::findings::{Finding, Findings, Rule, Severity};
use crate::policy::globals::{self, GlobalClass};
use crate::policy::interpret::{self, BuildOutcome};
use std::collections::HashMap;

/// Where the pickle comes from, for locations in findings and errors.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub member: Option<String>,
    /// Interpret joblib's NumpyArrayWrapper, whose array bytes follow BUILD in the stream.
    pub joblib: bool,
    /// How deep inside other pickles this one is (nested `pickle.loads` payloads).
    pub nesting: usize,
}

/// The result of one pickle: its root value and where its STOP opcode ended.
#[derive(Debug, Clone, Copy)]
pub struct Unpickled {
    pub root: NodeId,
    pub end: u64,
    pub proto: u8,
}

/// A text argument (GLOBAL lines, protocol-0 numbers) is never longer than this.
const MAX_NAME_LINE: u64 = 64 * 1024;

pub struct Machine<'g, 'f, 'l> {
    graph: &'g mut Graph,
    findings: &'f mut Findings,
    limits: &'l Limits,
    ctx: Context,
    stack: Vec<NodeId>,
    marks: Vec<usize>,
    memo: HashMap<u64, NodeId>,
    proto: u8,
    frame_end: Option<u64>,
    ops: u64,
    op_pos: u64,
    op_code: u8,
    calls_seen: bool,
    deadline: Option<std::time::Instant>,
}

impl<'g, 'f, 'l> Machine<'g, 'f, 'l> {
    pub fn new(
        graph: &'g mut Graph,
        findings: &'f mut Findings,
        limits: &'l Limits,
        ctx: Context,
    ) -> Self {
        let deadline = (limits.max_parse_millis > 0).then(|| {
            std::time::Instant::now() + std::time::Duration::from_millis(limits.max_parse_millis)
        });
        Machine {
            graph,
            findings,
            limits,
            ctx,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            proto: 0,
            frame_end: None,
            ops: 0,
            op_pos: 0,
            op_code: 0,
            calls_seen: false,
            deadline,
        }
    }

    /// Run one pickle (up to and including STOP) from `input`.
    pub fn load(&mut self, input: &mut Input<'_>) -> Result<Unpickled> {
        self.stack.clear();
        self.marks.clear();
        self.memo.clear();
        self.proto = 0;
        self.frame_end = None;
        match self.run(input) {
            Ok(root) => Ok(Unpickled {
                root,
                end: input.pos(),
                proto: self.proto,
            }),
            Err(e) => {
                let e = self.locate(e);
                if self.calls_seen {
                    // CPython executes opcodes as it reads them: what ran before the break still ran.
                    self.findings.push(Finding {
                        rule: Rule::BrokenAfterCalls,
                        severity: Severity::High,
                        message: format!("the pickle stream breaks after calls a real loader would already have executed: {e}"),
                        global: None,
                        location: self.here(),
                    });
                }
                Err(e)
            }
        }
    }

    fn here(&self) -> Location {
        Location {
            member: self.ctx.member.clone(),
            offset: Some(self.op_pos),
            opcode: op::name(self.op_code).map(str::to_string),
        }
    }

    fn locate(&self, e: Error) -> Error {
        match e {
            Error::Malformed { msg, loc } if loc == Location::default() => Error::Malformed {
                msg,
                loc: self.here(),
            },
            Error::Limit { limit, msg, loc } if loc == Location::default() => Error::Limit {
                limit,
                msg,
                loc: self.here(),
            },
            other => other,
        }
    }

    fn finding(&mut self, rule: Rule, severity: Severity, message: String, global: Option<String>) {
        let location = self.here();
        self.findings.push(Finding {
            rule,
            severity,
            message,
            global,
            location,
        });
    }

    fn push(&mut self, id: NodeId) -> Result<()> {
        if self.stack.len() >= self.limits.max_stack {
            return Err(Error::limit(
                "max_stack",
                format!(
                    "more than {} values on the pickle stack",
                    self.limits.max_stack
                ),
            ));
        }
        self.stack.push(id);
        Ok(())
    }

    fn new_node(&mut self, node: Node) -> Result<NodeId> {
        self.graph.add(node)
    }

    fn push_new(&mut self, node: Node) -> Result<()> {
        let id = self.new_node(node)?;
        self.push(id)
    }

    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<NodeId> {
        if self.stack.len() <= self.fence() {
            return Err(Error::malformed("unpickling stack underflow"));
        }
        Ok(self.stack.pop().expect("checked above"))
    }

    fn top(&self) -> Result<NodeId> {
        if self.stack.len() <= self.fence() {
            return Err(Error::malformed("unpickling stack underflow"));
        }
        Ok(*self.stack.last().expect("checked above"))
    }

    fn pop_mark(&mut self) -> Result<Vec<NodeId>> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| Error::malformed("could not find MARK"))?;
        Ok(self.stack.split_off(mark))
    }

    fn memo_put(&mut self, idx: u64, value: NodeId) -> Result<()> {
        if !self.memo.contains_key(&idx) && self.memo.len() >= self.limits.max_memo {
            return Err(Error::limit(
                "max_memo",
                format!("more than {} memo entries", self.limits.max_memo),
            ));
        }
        self.memo.insert(idx, value);
        Ok(())
    }

    fn memo_get(&mut self, idx: u64) -> Result<()> {
        let v = *self
            .memo
            .get(&idx)
            .ok_or_else(|| Error::malformed(format!("memo value not found at index {idx}")))?;
        self.push(v)
    }

    fn read_bytes(&mut self, input: &mut Input<'_>, n: u64, what: &str) -> Result<Vec<u8>> {
        if n > input.remaining() {
            return Err(Error::malformed(format!(
                "{what} length {n} exceeds the {} bytes left in the input",
                input.remaining()
            )));
        }
        self.graph.charge_bytes(n)?;
        input.read_vec(n, what)
    }

    /// A STRING/UNICODE argument. Its length is only known at the newline, so the read itself
    /// stops at the graph's remaining budget: a text argument without a newline in a 1 GiB file
    /// cannot grow the process past `max_graph_bytes`. Half the budget, because a growing
    /// buffer briefly holds its old and new copies (the WASI guest's allocator copies).
    fn read_text_value(&mut self, input: &mut Input<'_>) -> Result<Vec<u8>> {
        let max = self.limits.max_graph_bytes;
        let cap = input.remaining().min(self.graph.remaining_bytes() / 2);
        let line = input.read_line_or(cap, |_| {
            Error::limit(
                "max_graph_bytes",
                format!("the pickle's values need more than {max} bytes (a text argument)"),
            )
        })?;
        self.graph.charge_bytes(line.len() as u64)?;
        Ok(line)
    }

    fn check_budget(&mut self) -> Result<()> {
        self.ops += 1;
        if self.ops > self.limits.max_ops {
            return Err(Error::limit(
                "max_ops",
                format!("more than {} pickle opcodes", self.limits.max_ops),
            ));
        }
        if self.ops.is_multiple_of(65536) {
            if let Some(d) = self.deadline {
                if std::time::Instant::now() > d {
                    return Err(Error::limit(
                        "max_parse_millis",
                        format!(
                            "parsing took longer than {} ms",
                            self.limits.max_parse_millis
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn run(&mut self, input: &mut Input<'_>) -> Result<NodeId> {
        loop {
            self.check_budget()?;
            self.op_pos = input.pos();
            if let Some(end) = self.frame_end {
                if self.op_pos >= end {
                    self.frame_end = None;
                }
            }
            let code = input
                .read_u8()
                .map_err(|_| Error::malformed("pickle ends without STOP"))?;
            self.op_code = code;
            if let Some(root) = self.step(code, input)? {
                return Ok(root);
            }
            if let Some(end) = self.frame_end {
                if input.pos() > end && self.op_pos < end {
                    let name = op::name(code).unwrap_or("?");
                    self.finding(
                        Rule::FrameInconsistency,
                        Severity::High,
                        format!("opcode {name} crosses the end of its FRAME (frame ends at {end}, opcode ends at {}): parsers that honour frames read a different program", input.pos()),
                        None,
                    );
                    self.frame_end = None;
                }
            }
        }
    }

    /// Execute one opcode; returns the root value at STOP.
    fn step(&mut self, code: u8, input: &mut Input<'_>) -> Result<Option<NodeId>> {
        match code {
            op::PROTO => {
                let v = input.read_u8()?;
                if v > 5 {
                    return Err(Error::malformed(format!(
                        "unsupported pickle protocol: {v}"
                    )));
                }
                self.proto = v;
            }
            op::FRAME => {
                let len = u64::from_le_bytes(input.read_array()?);
                if len > input.remaining() {
                    return Err(Error::malformed(format!(
                        "FRAME of {len} bytes exceeds the {} bytes left",
                        input.remaining()
                    )));
                }
                if let Some(end) = self.frame_end {
                    if self.op_pos < end {
                        self.finding(
                            Rule::FrameInconsistency,
                            Severity::High,
                            "a new FRAME starts before the current frame ends".into(),
                            None,
                        );
                    }
                }
                self.frame_end = Some(input.pos() + len);
            }
            op::STOP => {
                let root = self.pop()?;
                return Ok(Some(root));
            }
            op::MARK => {
                if self.marks.len() >= self.limits.max_stack {
                    return Err(Error::limit(
                        "max_stack",
                        format!("more than {} open MARKs", self.limits.max_stack),
                    ));
                }
                self.marks.push(self.stack.len())
            }
            op::POP => {
                if self.marks.last() == Some(&self.stack.len()) {
                    self.marks.pop();
                } else {
                    self.pop()?;
                }
            }
            op::POP_MARK => {
                self.pop_mark()?;
            }
            op::DUP => {
                let t = self.top()?;
                self.push(t)?;
            }
            // --- plain data ---
            op::NONE => self.push_new(Node::None)?,
            op::NEWTRUE => self.push_new(Node::Bool(true))?,
            op::NEWFALSE => self.push_new(Node::Bool(false))?,
            op::BININT => {
                let v = i32::from_le_bytes(input.read_array()?);
                self.push_new(Node::Int(v as i64))?
            }
            op::BININT1 => {
                let v = input.read_u8()?;
                self.push_new(Node::Int(v as i64))?
            }
            op::BININT2 => {
                let v = u16::from_le_bytes(input.read_array()?);
                self.push_new(Node::Int(v as i64))?
            }
            op::INT => {
                let line = input.read_line(MAX_NAME_LINE)?;
                let node = text::parse_int_line(&line)?;
                self.push_new(node)?
            }
            op::LONG => {
                let line = input.read_line(MAX_NAME_LINE)?;
                let node = text::parse_long_line(&line)?;
                self.push_new(node)?
            }
            op::LONG1 => {
                let n = input.read_u8()? as u64;
                let bytes = self.read_bytes(input, n, "LONG1")?;
                self.push_new(text::long_from_le(&bytes))?
            }
            op::LONG4 => {
                let n = i32::from_le_bytes(input.read_array()?);
                if n < 0 {
                    return Err(Error::malformed("LONG pickle has negative byte count"));
                }
                let bytes = self.read_bytes(input, n as u64, "LONG4")?;
                self.push_new(text::long_from_le(&bytes))?
            }
            op::BINFLOAT => {
                let v = f64::from_be_bytes(input.read_array()?);
                self.push_new(Node::Float(v))?
            }
            op::FLOAT => {
                let line = input.read_line(MAX_NAME_LINE)?;
                let node = text::parse_float_line(&line)?;
                self.push_new(node)?
            }
            op::STRING => {
                let line = self.read_text_value(input)?;
                let raw = text::unquote_string(&line)?;
                self.push_new(text::py2_string(raw))?
            }
            op::BINSTRING => {
                let n = i32::from_le_bytes(input.read_array()?);
                if n < 0 {
                    return Err(Error::malformed("BINSTRING pickle has negative byte count"));
                }
                let raw = self.read_bytes(input, n as u64, "BINSTRING")?;
                self.push_new(text::py2_string(raw))?
            }
            op::SHORT_BINSTRING => {
                let n = input.read_u8()? as u64;
                let raw = self.read_bytes(input, n, "SHORT_BINSTRING")?;
                self.push_new(text::py2_string(raw))?
            }
            op::BINBYTES => {
                let n = u32::from_le_bytes(input.read_array()?) as u64;
                let raw = self.read_bytes(input, n, "BINBYTES")?;
                self.push_new(Node::Bytes(raw.into()))?
            }
            op::SHORT_BINBYTES => {
                let n = input.read_u8()? as u64;
                let raw = self.read_bytes(input, n, "SHORT_BINBYTES")?;
                self.push_new(Node::Bytes(raw.into()))?
            }
            op::BINBYTES8 => {
                let n = u64::from_le_bytes(input.read_array()?);
                let raw = self.read_bytes(input, n, "BINBYTES8")?;
                self.push_new(Node::Bytes(raw.into()))?
            }
            op::BYTEARRAY8 => {
                let n = u64::from_le_bytes(input.read_array()?);
                let raw = self.read_bytes(input, n, "BYTEARRAY8")?;
                self.push_new(Node::ByteArray(raw.into()))?
            }
            op::UNICODE => {
                let line = self.read_text_value(input)?;
                let (s, wtf8) = text::raw_unicode_escape(&line)?;
                let id = self.new_node(Node::Str(s.into()))?;
                if let Some(raw) = wtf8 {
                    self.graph.mark_wtf8(id, raw);
                }
                self.push(id)?
            }
            op::BINUNICODE => {
                let n = u32::from_le_bytes(input.read_array()?) as u64;
                let raw = self.read_bytes(input, n, "BINUNICODE")?;
                self.push_str_surrogatepass(raw)?
            }
            op::SHORT_BINUNICODE => {
                let n = input.read_u8()? as u64;
                let raw = self.read_bytes(input, n, "SHORT_BINUNICODE")?;
                self.push_str_surrogatepass(raw)?
            }
            op::BINUNICODE8 => {
                let n = u64::from_le_bytes(input.read_array()?);
                let raw = self.read_bytes(input, n, "BINUNICODE8")?;
                self.push_str_surrogatepass(raw)?
            }
            op::NEXT_BUFFER => {
                return Err(Error::malformed(
                    "pickle stream refers to out-of-band data, which a file cannot provide",
                ))
            }
            op::READONLY_BUFFER => {
                let t = self.top()?;
                if !matches!(self.graph.get(t), Node::Bytes(_) | Node::ByteArray(_)) {
                    return Err(Error::malformed(
                        "READONLY_BUFFER on an object without the buffer protocol",
                    ));
                }
            }
            // --- containers ---
            op::EMPTY_TUPLE => self.push_new(Node::Tuple(Vec::new()))?,
            op::TUPLE => {
                let items = self.pop_mark()?;
                self.push_new(Node::Tuple(items))?
            }
            op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                let n = (code - op::TUPLE1 + 1) as usize;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop()?);
                }
                items.reverse();
                self.push_new(Node::Tuple(items))?
            }
            op::EMPTY_LIST => self.push_new(Node::List(Vec::new()))?,
            op::LIST => {
                let items = self.pop_mark()?;
                self.push_new(Node::List(items))?
            }
            op::APPEND => {
                let v = self.pop()?;
                let list = self.top()?;
                self.append(list, vec![v])?;
            }
            op::APPENDS => {
                let items = self.pop_mark()?;
                // CPython returns before looking at the target when the batch is empty.
                if !items.is_empty() {
                    let list = self.top()?;
                    self.append(list, items)?;
                }
            }
            op::EMPTY_DICT => self.push_new(Node::Dict(Box::new(Dict::new(DictKind::Dict))))?,
            op::DICT => {
                let items = self.pop_mark()?;
                if items.len() % 2 != 0 {
                    return Err(Error::malformed("odd number of items for DICT"));
                }
                let d = self.new_node(Node::Dict(Box::new(Dict::new(DictKind::Dict))))?;
                self.graph.charge_bytes(24 * items.len() as u64)?;
                for pair in items.chunks(2) {
                    self.graph.dict_set(d, pair[0], pair[1])?;
                }
                self.push(d)?
            }
            op::SETITEM => {
                let v = self.pop()?;
                let k = self.pop()?;
                let d = self.top()?;
                self.set_items(d, vec![k, v])?;
            }
            op::SETITEMS => {
                let items = self.pop_mark()?;
                if items.len() % 2 != 0 {
                    return Err(Error::malformed("odd number of items for SETITEMS"));
                }
                if !items.is_empty() {
                    let d = self.top()?;
                    self.set_items(d, items)?;
                }
            }
            op::EMPTY_SET => self.push_new(Node::Set(Vec::new()))?,
            op::ADDITEMS => {
                let items = self.pop_mark()?;
                if !items.is_empty() {
                    let s = self.top()?;
                    self.graph.charge_bytes(4 * items.len() as u64)?;
                    if let Node::Object(o) = self.graph.get_mut(s) {
                        o.items.extend(items);
                    } else {
                        self.graph.set_add(s, &items)?;
                    }
                }
            }
            op::FROZENSET => {
                let items = self.pop_mark()?;
                self.graph.charge_bytes(4 * items.len() as u64)?;
                let s = self.new_node(Node::FrozenSet(Vec::new()))?;
                self.graph.set_add(s, &items)?;
                self.push(s)?
            }
            // --- memo ---
            op::PUT => {
                let idx = text::parse_index_line(&input.read_line(MAX_NAME_LINE)?, "PUT")?;
                let t = self.top()?;
                self.memo_put(idx, t)?
            }
            op::BINPUT => {
                let idx = input.read_u8()? as u64;
                let t = self.top()?;
                self.memo_put(idx, t)?
            }
            op::LONG_BINPUT => {
                let idx = u32::from_le_bytes(input.read_array()?) as u64;
                let t = self.top()?;
                self.memo_put(idx, t)?
            }
            op::MEMOIZE => {
                let t = self.top()?;
                let idx = self.memo.len() as u64;
                self.memo_put(idx, t)?
            }
            op::GET => {
                let idx = text::parse_index_line(&input.read_line(MAX_NAME_LINE)?, "GET")?;
                self.memo_get(idx)?
            }
            op::BINGET => {
                let idx = input.read_u8()? as u64;
                self.memo_get(idx)?
            }
            op::LONG_BINGET => {
                let idx = u32::from_le_bytes(input.read_array()?) as u64;
                self.memo_get(idx)?
            }
            // --- globals and calls ---
            op::GLOBAL => {
                let module = input.read_line(MAX_NAME_LINE)?;
                let name = input.read_line(MAX_NAME_LINE)?;
                let (m, n) = (text::ascii_name(&module)?, text::ascii_name(&name)?);
                let g = self.global(m, n)?;
                self.push(g)?
            }
            op::STACK_GLOBAL => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Some(m), Some(n)) = (self.graph.as_str(module), self.graph.as_str(name))
                else {
                    return Err(Error::malformed("STACK_GLOBAL requires str operands"));
                };
                let (m, n) = (m.to_string(), n.to_string());
                let g = self.global(m, n)?;
                self.push(g)?
            }
            op::EXT1 | op::EXT2 | op::EXT4 => {
                let code_val: i64 = match code {
                    op::EXT1 => input.read_u8()? as i64,
                    op::EXT2 => u16::from_le_bytes(input.read_array()?) as i64,
                    _ => i32::from_le_bytes(input.read_array()?) as i64,
                };
                if code_val <= 0 {
                    return Err(Error::malformed("EXT specifies code <= 0"));
                }
                self.finding(
                    Rule::ExtensionOpcode,
                    Severity::High,
                    format!("extension code {code_val}: the loading process's copyreg registry decides which global this is"),
                    None,
                );
                self.calls_seen = true;
                let g = self.new_node(Node::Global(Box::new(Global {
                    module: "<copyreg extension>".into(),
                    name: code_val.to_string().into(),
                })))?;
                self.push(g)?
            }
            op::REDUCE => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let args = self.tuple_items(args, "REDUCE argument is not a tuple")?;
                let r = self.call(callable, args, None, CallKind::Reduce)?;
                self.push(r)?
            }
            op::NEWOBJ => {
                let args = self.pop()?;
                let cls = self.pop()?;
                let args = self.tuple_items(args, "NEWOBJ expected an arg tuple")?;
                let r = self.call(cls, args, None, CallKind::NewObj)?;
                self.push(r)?
            }
            op::NEWOBJ_EX => {
                let kwargs = self.pop()?;
                let args = self.pop()?;
                let cls = self.pop()?;
                let args = self.tuple_items(args, "NEWOBJ_EX args argument must be a tuple")?;
                if !matches!(self.graph.get(kwargs), Node::Dict(_)) {
                    return Err(Error::malformed("NEWOBJ_EX kwargs argument must be a dict"));
                }
                let r = self.call(cls, args, Some(kwargs), CallKind::NewObjEx)?;
                self.push(r)?
            }
            op::INST => {
                let module = input.read_line(MAX_NAME_LINE)?;
                let name = input.read_line(MAX_NAME_LINE)?;
                let (m, n) = (text::ascii_only(&module)?, text::ascii_only(&name)?);
                let args = self.pop_mark()?;
                let cls = self.global(m, n)?;
                let r = self.call(cls, args, None, CallKind::Inst)?;
                self.push(r)?
            }
            op::OBJ => {
                let mut args = self.pop_mark()?;
                if args.is_empty() {
                    return Err(Error::malformed("OBJ without a class"));
                }
                let cls = args.remove(0);
                let r = self.call(cls, args, None, CallKind::Obj)?;
                self.push(r)?
            }
            op::BUILD => {
                let state = self.pop()?;
                let target = self.top()?;
                self.build(target, state, input)?;
            }
            op::PERSID => {
                let line = input.read_line(MAX_NAME_LINE)?;
                let s = text::ascii_only(&line)?;
                let pid = self.new_node(Node::Str(s.into()))?;
                self.push_new(Node::PersistentId(pid))?
            }
            op::BINPERSID => {
                let pid = self.pop()?;
                self.push_new(Node::PersistentId(pid))?
            }
            other => {
                return Err(Error::malformed(format!(
                    "invalid load key, {:?} (0x{other:02x})",
                    other as char
                )));
            }
        }
        Ok(None)
    }

    /// BINUNICODE payloads: UTF-8 with `surrogatepass`. Lone surrogates show as U+FFFD but the
    /// string keeps its code points for key equality, so distinct keys stay distinct.
    fn push_str_surrogatepass(&mut self, raw: Vec<u8>) -> Result<()> {
        let (s, wtf8) = text::utf8_surrogatepass(raw)?;
        let id = self.new_node(Node::Str(s.into()))?;
        if let Some(raw) = wtf8 {
            self.graph.mark_wtf8(id, raw);
        }
        self.push(id)
    }

    /// GLOBAL / STACK_GLOBAL / INST name resolution: Python 2 renames, then classification.
    fn global(&mut self, module: String, name: String) -> Result<NodeId> {
        if module.is_empty() || name.is_empty() {
            return Err(Error::malformed(
                "empty module or name in a global reference",
            ));
        }
        let (module, name) = if self.proto < 3 {
            fix_import(&module, &name)
        } else {
            (module, name)
        };
        let g = Global {
            module: module.into(),
            name: name.into(),
        };
        let dotted = g.dotted();
        let class = globals::classify(&g);
        if g.name.contains('.') && !matches!(class, GlobalClass::Allowed(_)) {
            self.finding(
                Rule::DottedGlobal,
                Severity::High,
                format!("dotted name `{}` in module `{}`: the loader walks attributes to reach another object", g.name, g.module),
                Some(dotted.clone()),
            );
        }
        match &class {
            GlobalClass::Dangerous(why) => self.finding(
                Rule::DangerousGlobal,
                Severity::High,
                format!("reference to `{dotted}` ({why})"),
                Some(dotted.clone()),
            ),
            GlobalClass::Unknown => self.finding(
                Rule::UnknownGlobal,
                Severity::Low,
                format!("reference to non-allowlisted global `{dotted}`"),
                Some(dotted.clone()),
            ),
            _ => {}
        }
        interpret::global_value(self.graph, g, &class)
    }

    fn call(
        &mut self,
        callable: NodeId,
        args: Vec<NodeId>,
        kwargs: Option<NodeId>,
        how: CallKind,
    ) -> Result<NodeId> {
        let callable = self.unwrap_module_pid(callable);
        if let Some(v) = interpret::call(self.graph, callable, &args, kwargs, how)? {
            return Ok(v);
        }
        self.report_call(callable, &args, how);
        let placeholder = None;
        self.new_node(Node::Object(Box::new(Object {
            callable,
            args,
            kwargs,
            how,
            state: Vec::new(),
            items: Vec::new(),
            dict_items: Vec::new(),
            placeholder,
        })))
    }

    /// The items of an argument tuple (REDUCE/NEWOBJ need a real tuple, as in CPython).
    fn tuple_items(&self, args: NodeId, what: &str) -> Result<Vec<NodeId>> {
        match self.graph.get(args) {
            Node::Tuple(items) => Ok(items.clone()),
            _ => Err(Error::malformed(what.to_string())),
        }
    }

    /// Legacy whole-module pickles persist classes as `('module', cls, source_file, source)`;
    /// the loader's persistent_load returns `cls`, so that is what gets instantiated.
    fn unwrap_module_pid(&self, callable: NodeId) -> NodeId {
        if let Node::PersistentId(pid) = self.graph.get(callable) {
            if let Some(items) = self.graph.as_seq(*pid) {
                if items.len() == 4
                    && self.graph.as_str(items[0]) == Some("module")
                    && self.graph.as_global(items[1]).is_some()
                {
                    return items[1];
                }
            }
        }
        callable
    }

    fn report_call(&mut self, callable: NodeId, args: &[NodeId], how: CallKind) {
        let verb = match how {
            CallKind::NewObj | CallKind::NewObjEx => "instantiates",
            _ => "calls",
        };
        let arg_text = self.graph.describe_items(args, 160);
        match self.graph.get(callable).clone() {
            Node::Global(g) => {
                let g = *g;
                let class = globals::classify(&g);
                let Some((rule, severity)) = globals::call_severity(&g, &class, how) else {
                    return;
                };
                if severity >= Severity::Medium || rule == Rule::UnknownClass {
                    self.calls_seen = true;
                }
                let dotted = g.dotted();
                self.finding(
                    rule,
                    severity,
                    format!("the pickle {verb} `{dotted}` with {arg_text}"),
                    Some(dotted),
                );
            }
            _ => {
                self.calls_seen = true;
                let what = self.graph.describe(callable, 120);
                self.finding(
                    Rule::UnknownCall,
                    Severity::High,
                    format!("the pickle {verb} a computed callable `{what}` with {arg_text}"),
                    None,
                );
            }
        }
    }

    fn append(&mut self, target: NodeId, items: Vec<NodeId>) -> Result<()> {
        // Charge the capacity the list will really hold (growth doubles it), before growing.
        let (len, cap) = match self.graph.get(target) {
            Node::List(v) => (v.len(), v.capacity()),
            Node::Object(o) => (o.items.len(), o.items.capacity()),
            _ => {
                return Err(Error::malformed(
                    "APPEND(S) on something that is not a list",
                ))
            }
        };
        let need = len + items.len();
        let new_cap = if need > cap {
            need.max(cap * 2).max(4)
        } else {
            cap
        };
        self.graph.charge_bytes(4 * (new_cap - cap) as u64)?;
        let v = match self.graph.get_mut(target) {
            Node::List(v) => v,
            Node::Object(o) => &mut o.items,
            _ => unreachable!("checked above"),
        };
        v.reserve_exact(new_cap - len);
        v.extend(items);
        Ok(())
    }

    fn set_items(&mut self, target: NodeId, items: Vec<NodeId>) -> Result<()> {
        // entry (8) + hash index slot and key copy, with the table's growth headroom
        self.graph.charge_bytes(24 * items.len() as u64)?;
        match self.graph.get_mut(target) {
            Node::Dict(_) => {
                for pair in items.chunks(2) {
                    self.graph.dict_set(target, pair[0], pair[1])?;
                }
                Ok(())
            }
            Node::Object(o) => {
                o.dict_items.extend(items.chunks(2).map(|p| (p[0], p[1])));
                Ok(())
            }
            _ => Err(Error::malformed(
                "SETITEM(S) on something that is not a dict",
            )),
        }
    }

    fn build(&mut self, target: NodeId, state: NodeId, input: &mut Input<'_>) -> Result<()> {
        match interpret::build(self.graph, target, state)? {
            BuildOutcome::Done => Ok(()),
            BuildOutcome::OnGlobal(g) => {
                self.calls_seen = true;
                self.finding(
                    Rule::BuildOnGlobal,
                    Severity::High,
                    format!("BUILD sets attributes on `{}` itself (a module, function or class), changing live code for later lookups", g.dotted()),
                    Some(g.dotted()),
                );
                Ok(())
            }
            BuildOutcome::Joblib(req) => {
                if !self.ctx.joblib {
                    return Err(Error::malformed(
                        "joblib NumpyArrayWrapper inside a non-joblib pickle",
                    ));
                }
                // joblib ends the frame before the raw bytes; they belong to no frame.
                self.frame_end = None;
                if let Some(align) = req.alignment {
                    let pad = input.read_u8()? as u64;
                    if pad == 0 || pad > align {
                        return Err(Error::malformed(format!(
                            "joblib padding byte {pad} outside 1..={align}"
                        )));
                    }
                    input.skip(pad, "joblib array padding")?;
                }
                let data = if req.object_dtype {
                    // joblib pickles object arrays with a fresh pickle.load on the same stream.
                    if self.ctx.nesting + 1 > self.limits.max_nested_pickles {
                        return Err(Error::limit(
                            "max_nested_pickles",
                            "joblib object array nesting too deep",
                        ));
                    }
                    let ctx = Context {
                        nesting: self.ctx.nesting + 1,
                        ..self.ctx.clone()
                    };
                    let mut inner = Machine::new(self.graph, self.findings, self.limits, ctx);
                    let res = inner.load(input)?;
                    ArrayData::Objects(res.root)
                } else {
                    let offset = input.pos();
                    input.skip(req.nbytes, "joblib array data")?;
                    ArrayData::Stream {
                        offset,
                        len: req.nbytes,
                    }
                };
                let arr = Node::Array(Box::new(ArrayNode {
                    dtype: req.dtype,
                    shape: req.shape,
                    fortran: req.fortran,
                    data,
                }));
                *self.graph.get_mut(target) = arr;
                Ok(())
            }
        }
    }
}
