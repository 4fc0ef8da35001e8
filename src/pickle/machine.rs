//! The restricted pickle machine: CPython's unpickler (`Modules/_pickle.c`, `Lib/pickle.py`)
//! re-implemented over an inert value graph. One `load_*` method per opcode, dispatched through
//! the table in [`super::opcodes`], as `_pickle.c` does; the methods live in [`super::ops`] by
//! opcode group. Nothing is ever called: where CPython would call or look something up, the
//! machine either models the exact effect (registered globals, built-in containers) or records
//! an inert object and a finding graded by [`crate::policy::grade`].
//!
//! docs/unpickling-model.md is the specification this follows, opcode by opcode.

use super::input::Input;
use super::opcodes;
use super::value::{Graph, Node, NodeId};
use crate::error::{Error, Location, Result};
use crate::limits::Limits;
use crate::policy::findings::{Finding, Findings, Rule, Severity};
use std::collections::HashMap;

/// Where the pickle comes from and which loader reads it: the loaders differ in what they
/// accept, so the machine must know whose semantics it follows.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub member: Option<String>,
    /// joblib's `NumpyUnpickler` (the pure-Python unpickler): a NumpyArrayWrapper's BUILD is
    /// followed by its array bytes in the stream.
    pub joblib: bool,
    /// A TorchScript archive: `__torch__.*` classes are the archive's own compiled code (graded
    /// by the TorchScript analysis), not Python imports.
    pub torchscript: bool,
    /// How deep inside other pickles this one is (nested `pickle.loads` payloads).
    pub nesting: usize,
    /// torch.load's UnpicklerWrapper: names in torch's storage-type table are storage types
    /// whatever the module (nothing is imported).
    pub torch: bool,
    /// The protocol `find_class` sees, when it is not this stream's own (joblib's nested
    /// object-array unpickler borrows the outer unpickler's bound find_class).
    pub names_proto: Option<u8>,
}

/// The result of one pickle: its root value and where its STOP opcode ended.
#[derive(Debug, Clone, Copy)]
pub struct Unpickled {
    pub root: NodeId,
    pub end: u64,
    pub proto: u8,
}

/// What an opcode handler tells the dispatch loop.
pub enum Flow {
    Continue,
    Stop(NodeId),
}

/// A text argument (GLOBAL lines, protocol-0 numbers) is never longer than this.
pub(super) const MAX_NAME_LINE: u64 = 64 * 1024;

pub struct Machine<'g, 'f, 'l> {
    pub(super) graph: &'g mut Graph,
    pub(super) findings: &'f mut Findings,
    pub(super) limits: &'l Limits,
    pub(super) ctx: Context,
    pub(super) stack: Vec<NodeId>,
    pub(super) marks: Vec<usize>,
    pub(super) memo: HashMap<u64, NodeId>,
    pub(super) proto: u8,
    pub(super) frame_end: Option<u64>,
    ops: u64,
    op_pos: u64,
    op_code: u8,
    /// A call the machine did not model ran (a loader that breaks afterwards already ran it).
    pub(super) calls_seen: bool,
    /// How deep calls made inside modelled calls nest (`_rebuild_from_type_v2(func, ...)`).
    pub(super) call_depth: usize,
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
            call_depth: 0,
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
                if self.calls_seen && self.findings.max_severity() >= Some(Severity::High) {
                    // CPython executes opcodes as it reads them: what ran before the break still
                    // ran. Breaking after a call of the file's choosing is the nullifAI evasion.
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
            let Some(op) = opcodes::op(code) else {
                return Err(Error::malformed(format!(
                    "invalid load key, {:?} (0x{code:02x})",
                    code as char
                )));
            };
            if let Flow::Stop(root) = (op.load)(self, input)? {
                return Ok(root);
            }
            if let Some(end) = self.frame_end {
                if input.pos() > end && self.op_pos < end {
                    self.finding(
                        Rule::FrameInconsistency,
                        Severity::High,
                        format!("opcode {} crosses the end of its FRAME (frame ends at {end}, opcode ends at {}): parsers that honour frames read a different program", op.name, input.pos()),
                        None,
                    );
                    self.frame_end = None;
                }
            }
        }
    }

    pub(super) fn here(&self) -> Location {
        Location {
            member: self.ctx.member.clone(),
            offset: Some(self.op_pos),
            opcode: opcodes::op(self.op_code).map(|o| o.name.to_string()),
        }
    }

    pub(super) fn op_pos(&self) -> u64 {
        self.op_pos
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

    pub(super) fn finding(
        &mut self,
        rule: Rule,
        severity: Severity,
        message: String,
        global: Option<String>,
    ) {
        let location = self.here();
        self.findings.push(Finding {
            rule,
            severity,
            message,
            global,
            location,
        });
    }

    pub(super) fn push(&mut self, id: NodeId) -> Result<()> {
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

    pub(super) fn new_node(&mut self, node: Node) -> Result<NodeId> {
        self.graph.add(node)
    }

    pub(super) fn push_new(&mut self, node: Node) -> Result<Flow> {
        let id = self.new_node(node)?;
        self.push(id)?;
        Ok(Flow::Continue)
    }

    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    pub(super) fn pop(&mut self) -> Result<NodeId> {
        if self.stack.len() <= self.fence() {
            return Err(Error::malformed("unpickling stack underflow"));
        }
        Ok(self.stack.pop().expect("checked above"))
    }

    pub(super) fn top(&self) -> Result<NodeId> {
        if self.stack.len() <= self.fence() {
            return Err(Error::malformed("unpickling stack underflow"));
        }
        Ok(*self.stack.last().expect("checked above"))
    }

    pub(super) fn pop_mark(&mut self) -> Result<Vec<NodeId>> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| Error::malformed("could not find MARK"))?;
        Ok(self.stack.split_off(mark))
    }

    /// Bytes of a length-prefixed argument, charged to the graph before they are read.
    pub(super) fn read_bytes(
        &mut self,
        input: &mut Input<'_>,
        n: u64,
        what: &str,
    ) -> Result<Vec<u8>> {
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
    pub(super) fn read_text_value(&mut self, input: &mut Input<'_>) -> Result<Vec<u8>> {
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
}
