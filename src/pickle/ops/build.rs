//! BUILD: `_pickle.c` load_build / `pickle.py` load_build, and joblib's override of it.
//!
//! 1. `setstate = getattr(inst, "__setstate__", None)`: looked up on the instance, so a value an
//!    earlier BUILD wrote into the instance `__dict__` wins; if found it is called with the state.
//! 2. Otherwise a 2-tuple state is split into dict state (written into `inst.__dict__` item by
//!    item) and slot state (`setattr` per key, so descriptors and `__setattr__` run).
//! 3. joblib's NumpyUnpickler then calls `wrapper.read(...)` on its array wrapper, which reads
//!    the array bytes that follow in the stream.

use crate::error::{Error, Result};
use crate::pickle::input::Input;
use crate::pickle::lookup::{lookup, Found};
use crate::pickle::machine::{Context, Flow, Machine};
use crate::pickle::value::{
    ArrayData, ArrayNode, AttrKey, ClassKnowledge, Node, NodeId, Placeholder,
};
use crate::policy::grade;
use crate::policy::interpret::{self, numpy, torch as torch_interp, values, Interp, WrapperRead};
use crate::policy::registry::Kind;

impl Machine<'_, '_, '_> {
    pub(crate) fn load_build(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let state = self.pop()?;
        let target = self.top()?;
        if let Node::Global(gl) = self.graph.get(target) {
            let g = grade::mutates_global(gl, "BUILD");
            self.record(g);
            self.calls_seen = true;
            return Ok(Flow::Continue);
        }
        match lookup(self.graph, target, "__setstate__") {
            Found::Planted(v) => {
                self.call_planted(v, "__setstate__", target, vec![state])?;
            }
            Found::Class => self.class_setstate(target, state)?,
            Found::Unknown { exposed } => {
                let g = if exposed {
                    Some(grade::planted(
                        "__setstate__",
                        &format!("an instance of {}", self.describe_class(target)),
                        "what the pickle already wrote into it can answer that lookup (an instance attribute or the class's __getattr__)",
                    ))
                } else if self.graph.dict_get(state, "_parameters").is_some()
                    && self.graph.dict_get(state, "_modules").is_some()
                {
                    Some(grade::module_restore(self.class_global(target).as_ref()))
                } else {
                    self.restore_grade(target, "BUILD: its __setstate__ or __dict__ update")
                };
                // TorchScript classes restore through the archive's own code: no finding here.
                let torchscript = matches!(self.graph.get(target), Node::Object(o) if o.class == ClassKnowledge::TorchScript);
                if let Some(g) = g.filter(|_| !torchscript) {
                    self.record(g);
                    self.calls_seen = true;
                }
                self.default_build(target, state, true)?;
            }
            Found::Absent => self.default_build(target, state, false)?,
        }
        if self.ctx.joblib && self.is_joblib_wrapper(target) {
            self.joblib_read(target, input)?;
        }
        Ok(Flow::Continue)
    }

    /// The class's own `__setstate__`, for the classes whose effect the machine models.
    fn class_setstate(&mut self, target: NodeId, state: NodeId) -> Result<()> {
        let node = self.graph.get(target).clone();
        match node {
            Node::Object(o) => match o.placeholder {
                Some(Placeholder::NumpyArray) => match numpy::array_setstate(self.graph, state)? {
                    Ok(arr) => *self.graph.get_mut(target) = Node::Array(Box::new(arr)),
                    Err(why) => self.unmodelled_state(target, &why),
                },
                Some(Placeholder::LegacyTensor(dtype)) => {
                    match torch_interp::legacy_tensor_setstate(self.graph, state, dtype)? {
                        Some(t) => *self.graph.get_mut(target) = t,
                        None => {
                            // Tensor.__setstate__'s other forms assign .data / requires_grad /
                            // hooks on the fresh tensor.
                            let g = grade::tensor_state("BUILD gives a legacy tensor a state other than (storage, offset, size, stride)");
                            self.record(g);
                            self.calls_seen = true;
                        }
                    }
                }
                None => {
                    if let ClassKnowledge::Registered(kind) = o.class {
                        // RandomState / partial: their own __setstate__ stores plain data.
                        if !values::setstate_is_plain(self.graph, kind, state) {
                            self.unmodelled_state(target, "a state that is not plain data");
                        }
                        // partial.__setstate__((func, args, kwds, dict)) makes `dict` the
                        // instance __dict__, which later lookups (the next BUILD's
                        // __setstate__) find first.
                        if kind == Kind::FunctoolsPartial {
                            if let Some(&d) = self.graph.as_seq(state).and_then(|s| s.get(3)) {
                                if let Node::Dict(dd) = self.graph.get(d) {
                                    let writes: Vec<(AttrKey, NodeId)> = dd
                                        .entries
                                        .iter()
                                        .map(|&(k, v)| match self.graph.as_str(k) {
                                            Some(s) => (AttrKey::Name(s.into()), v),
                                            None => (AttrKey::Other(k), v),
                                        })
                                        .collect();
                                    self.write_attrs(target, writes);
                                }
                            }
                        }
                    }
                    // A TorchScript object's __setstate__ is archive code (graded by the
                    // TorchScript analysis); the state is kept for naming either way.
                    if let Node::Object(o) = self.graph.get_mut(target) {
                        o.state.push(state);
                    }
                }
            },
            // Tensor.__setstate__ on a tensor that already has data: `set_` onto another
            // storage, `.data = ...`, requires_grad and hooks. torch never writes this.
            Node::Tensor(_) => {
                let g = grade::tensor_state("BUILD calls Tensor.__setstate__ on a rebuilt tensor, replacing its storage or data");
                self.record(g);
                self.calls_seen = true;
            }
            // ndarray.__setstate__ on an array a tensor already shares: the tensor's buffer is
            // freed and the loaded weights are whatever memory it then holds.
            Node::Array(a) if a.lent => {
                let g = grade::tensor_state(
                    "BUILD calls ndarray.__setstate__ on an array torch.from_numpy already shares, \
                     freeing the tensor's buffer",
                );
                self.record(g);
                self.calls_seen = true;
            }
            // ndarray.__setstate__ again: the array takes the new shape, dtype and data.
            Node::Array(_) => match numpy::array_setstate(self.graph, state)? {
                Ok(arr) => *self.graph.get_mut(target) = Node::Array(Box::new(arr)),
                Err(why) => self.unmodelled_state(target, &why),
            },
            Node::NumpyDtype(_) => {
                if let Interp::Unmodelled(why) = numpy::dtype_setstate(self.graph, target, state)? {
                    self.unmodelled_state(target, &why);
                }
            }
            _ => return Err(Error::malformed("BUILD on a value without __setstate__")),
        }
        Ok(())
    }

    fn unmodelled_state(&mut self, target: NodeId, why: &str) {
        let what = self.describe_class(target);
        let g = grade::call(
            grade::Callee::Computed(&format!("{what}.__setstate__")),
            "calls",
            "its BUILD state",
            Some(why),
        );
        self.record(g);
        self.calls_seen = true;
    }

    /// No `__setstate__`: dict state into `inst.__dict__`, slot state through `setattr`.
    /// `unknown_class`: the instance's class is not registered (its `__setattr__` and
    /// descriptors are its own); the restore is already graded.
    fn default_build(&mut self, target: NodeId, state: NodeId, unknown_class: bool) -> Result<()> {
        let (dict_state, slot_state) = match self.graph.get(state) {
            Node::Tuple(t) if t.len() == 2 => (t[0], Some(t[1])),
            _ => (state, None),
        };
        if let Node::Object(o) = self.graph.get_mut(target) {
            o.state.push(state);
        }
        if unknown_class && !self.is_dict_state(dict_state, slot_state) {
            // The class's own __setstate__ may take any state; the restore is graded already.
            // Without one, a truthy slot part is still setattr per key whatever the dict part
            // is: _pickle.c takes a dict subclass there, and pickle.py skips a falsy non-dict
            // (False, 0, ()) where _pickle.c raises.
            if slot_state.is_some_and(|s| !torch_interp::is_falsy(self.graph.get(s))) {
                self.slot_setattr(target);
            }
            return Ok(());
        }
        // `if state:` (pickle.py) / `state != None` (_pickle.c): the pure-Python reading skips
        // more, so the machine follows it and keeps reading what a loader may run next.
        if !torch_interp::is_falsy(self.graph.get(dict_state)) {
            let entries = match self.graph.get(dict_state) {
                Node::Dict(d) => d.entries.clone(),
                Node::Object(_) => {
                    // pickle.py calls `state.items()` on whatever it is.
                    self.unmodelled_state(target, "a BUILD state that is an object: the pure-Python unpickler calls its items()");
                    return Ok(());
                }
                _ => return Err(Error::malformed("BUILD state is not a dictionary")),
            };
            if !self.has_instance_dict(target) {
                return Err(Error::malformed(
                    "BUILD with dict state on an object without __dict__",
                ));
            }
            let writes: Vec<(AttrKey, NodeId)> = entries
                .into_iter()
                .map(|(k, v)| match self.graph.as_str(k) {
                    Some(s) => (AttrKey::Name(s.into()), v),
                    None => (AttrKey::Other(k), v),
                })
                .collect();
            self.write_attrs(target, writes);
        } else if !matches!(self.graph.get(dict_state), Node::None)
            && !self.has_instance_dict(target)
        {
            // `{}` or another falsy state on an object without __dict__: _pickle.c looks the
            // __dict__ up (it skips only None), pickle.py skips every falsy state.
            let g = grade::differential("BUILD with an empty state on an object without __dict__");
            self.record(g);
        }
        let Some(slots) = slot_state else {
            return Ok(());
        };
        if torch_interp::is_falsy(self.graph.get(slots)) {
            return Ok(());
        }
        let entries = match self.graph.get(slots) {
            Node::Dict(d) => d.entries.clone(),
            Node::Object(_) => {
                self.unmodelled_state(
                    target,
                    "a slot state that is an object: the pure-Python unpickler calls its items()",
                );
                return Ok(());
            }
            _ => return Err(Error::malformed("slot state is not a dictionary")),
        };
        let mut writes = Vec::new();
        for (k, v) in entries {
            let Some(name) = self.graph.as_str(k).map(str::to_string) else {
                return Err(Error::malformed("slot state attribute name is not a str"));
            };
            if name.starts_with("__") && name.ends_with("__") {
                // setattr of `__class__`, `__dict__`, ... changes what the instance is.
                let g = grade::planted(
                    &name,
                    &format!("an instance of {}", self.describe_class(target)),
                    "BUILD's slot state sets it with setattr, changing the instance's class or dict",
                );
                self.record(g);
                self.calls_seen = true;
                continue;
            }
            writes.push((AttrKey::Name(name.into()), v));
        }
        if !unknown_class && !self.has_instance_dict(target) {
            return Err(Error::malformed(
                "slot state on an object without that attribute",
            ));
        }
        if unknown_class && !writes.is_empty() {
            self.slot_setattr(target);
        }
        self.write_attrs(target, writes);
        Ok(())
    }

    /// Slot state on an unregistered class: without a __setstate__ of its own, the class's
    /// __setattr__ and data descriptors run once per key with values the pickle chose.
    fn slot_setattr(&mut self, target: NodeId) {
        let g = grade::slot_setattr(&self.describe_class(target));
        self.record(g);
        self.calls_seen = true;
    }

    /// A state the default BUILD path can apply: a dict (or nothing) and an optional slot dict.
    fn is_dict_state(&self, dict_state: NodeId, slot_state: Option<NodeId>) -> bool {
        let ok = |id: NodeId| matches!(self.graph.get(id), Node::Dict(_) | Node::None);
        ok(dict_state) && slot_state.is_none_or(ok)
    }

    fn has_instance_dict(&self, target: NodeId) -> bool {
        match self.graph.get(target) {
            Node::Object(o) => {
                o.placeholder.is_none() && o.class != ClassKnowledge::Registered(Kind::BuiltinType)
            }
            // OrderedDict, Counter and defaultdict instances have a __dict__; plain dicts not.
            Node::Dict(d) => d.kind != crate::pickle::value::DictKind::Dict,
            Node::Tensor(_) => true,
            _ => false,
        }
    }

    fn write_attrs(&mut self, target: NodeId, writes: Vec<(AttrKey, NodeId)>) {
        let attrs = match self.graph.get_mut(target) {
            Node::Object(o) => &mut o.attrs,
            Node::Dict(d) => &mut d.attrs,
            Node::Tensor(t) => &mut t.attrs,
            _ => return,
        };
        for (k, v) in writes {
            attrs.set(k, v);
        }
    }

    fn is_joblib_wrapper(&self, target: NodeId) -> bool {
        matches!(self.graph.get(target), Node::Object(o) if o.class == ClassKnowledge::Registered(Kind::JoblibArrayWrapper))
    }

    /// joblib's `load_build` after the BUILD: `array_wrapper = stack.pop()`,
    /// `stack.append(array_wrapper.read(self, ...))`. The wrapper itself stays what the memo
    /// holds.
    fn joblib_read(&mut self, wrapper: NodeId, input: &mut Input<'_>) -> Result<()> {
        let req = match interpret::wrapper_read(self.graph, wrapper)? {
            WrapperRead::Request(r) => r,
            WrapperRead::Planted(attr, v) => {
                let r = self.call_planted(v, attr, wrapper, Vec::new())?;
                self.replace_top(r)?;
                return Ok(());
            }
            WrapperRead::Unmodelled(why) => {
                self.unmodelled_state(wrapper, &why);
                return Err(Error::malformed(format!(
                    "joblib array wrapper: {why}; the bytes that follow cannot be located"
                )));
            }
        };
        // joblib ends the frame before the raw bytes; they belong to no frame. A wrapper BUILD
        // in the middle of a frame makes joblib read the array from after the frame and then
        // run the rest of the frame: a different program from the one a linear reading sees.
        if let Some(end) = self.frame_end {
            if input.pos() < end {
                self.finding(
                    crate::policy::findings::Rule::FrameInconsistency,
                    crate::policy::findings::Severity::High,
                    "a joblib array wrapper is built inside a FRAME: joblib reads its bytes after the frame and runs the rest of the frame afterwards".into(),
                    None,
                );
            }
        }
        self.frame_end = None;
        // read_array reads the padding only on the bytes path (not for object arrays).
        if req.padded && !req.object_dtype {
            let pad = input.read_u8()? as u64;
            input.skip(pad, "joblib array padding")?;
        }
        let data = if req.object_dtype {
            // A fresh pure-Python unpickler on the same stream: no joblib wrapper semantics.
            if self.ctx.nesting + 1 > self.limits.max_nested_pickles {
                return Err(Error::limit(
                    "max_nested_pickles",
                    "joblib object array nesting too deep",
                ));
            }
            // joblib's nested unpickler uses the outer one's find_class, bound to the outer
            // stream: names resolve with the outer protocol, whatever PROTO the inner writes.
            let ctx = Context {
                joblib: false,
                nesting: self.ctx.nesting + 1,
                names_proto: Some(self.ctx.names_proto.unwrap_or(self.proto)),
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
        let arr = self.new_node(Node::Array(Box::new(ArrayNode {
            dtype: req.dtype,
            shape: req.shape,
            fortran: req.fortran,
            data,
            lent: false,
        })))?;
        self.replace_top(arr)
    }

    fn replace_top(&mut self, value: NodeId) -> Result<()> {
        self.pop()?;
        self.push(value)
    }
}
