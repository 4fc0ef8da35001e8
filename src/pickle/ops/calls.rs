//! REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ, and every other call the loader makes (a planted
//! attribute, copyreg's helpers, `_rebuild_from_type*`'s inner call).
//!
//! Two ways in, as in CPython:
//! - `invoke`: `callable(*args)` (REDUCE; INST/OBJ with arguments or of a non-class);
//! - `instantiate`: `cls.__new__(cls, *args, **kwargs)` (NEWOBJ, NEWOBJ_EX; INST/OBJ of a class
//!   without arguments; `copyreg.__newobj__`; `copyreg._reconstructor(cls, object, None)`).
//!
//! A registered callable is interpreted (policy::interpret) when its arguments have a shape
//! the interpreter models; everything else becomes an inert object and a graded finding.

use crate::error::{Error, Result};
use crate::pickle::input::Input;
use crate::pickle::machine::{Flow, Machine, MAX_NAME_LINE};
use crate::pickle::text;
use crate::pickle::value::{
    CallKind, ClassKnowledge, Dict, DictKind, Global, Node, NodeId, Object,
};
use crate::policy::grade::{self, Callee, Grade};
use crate::policy::interpret::{self, torch as torch_interp, Interp};
use crate::policy::registry::{self, Entry, Kind, Usage};

/// How deep `_rebuild_from_type*` and copyreg helpers may nest calls of each other.
const MAX_CALL_NESTING: usize = 8;

impl Machine<'_, '_, '_> {
    pub(crate) fn load_reduce(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        let args = self.pop()?;
        let callable = self.pop()?;
        let r = match self.iterable_args(args, "REDUCE")? {
            Some(args) => self.invoke(callable, args, None, CallKind::Reduce)?,
            None => self.unpacked_call(callable, args, CallKind::Reduce)?,
        };
        self.push(r)?;
        Ok(Flow::Continue)
    }

    pub(crate) fn load_newobj(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        let args = self.pop()?;
        let cls = self.pop()?;
        let r = match self.iterable_args(args, "NEWOBJ")? {
            Some(args) => self.instantiate(cls, args, None, CallKind::NewObj)?,
            None => self.unpacked_call(cls, args, CallKind::NewObj)?,
        };
        self.push(r)?;
        Ok(Flow::Continue)
    }

    pub(crate) fn load_newobj_ex(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        let kwargs = self.pop()?;
        let args = self.pop()?;
        let cls = self.pop()?;
        let args = self.arg_items(args, "NEWOBJ_EX")?;
        if !matches!(self.graph.get(kwargs), Node::Dict(_)) {
            return Err(Error::malformed("NEWOBJ_EX kwargs argument must be a dict"));
        }
        let r = self.instantiate(cls, args, Some(kwargs), CallKind::NewObjEx)?;
        self.push(r)?;
        Ok(Flow::Continue)
    }

    pub(crate) fn load_inst(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let module = input.read_line(MAX_NAME_LINE)?;
        let name = input.read_line(MAX_NAME_LINE)?;
        let (m, n) = (text::ascii_only(&module)?, text::ascii_only(&name)?);
        let args = self.pop_mark()?;
        let cls = self.resolve_global(m, n)?;
        let r = self.instantiate_or_call(cls, args, CallKind::Inst)?;
        self.push(r)?;
        Ok(Flow::Continue)
    }

    pub(crate) fn load_obj(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        let mut args = self.pop_mark()?;
        if args.is_empty() {
            return Err(Error::malformed("OBJ without a class"));
        }
        let cls = args.remove(0);
        let r = self.instantiate_or_call(cls, args, CallKind::Obj)?;
        self.push(r)?;
        Ok(Flow::Continue)
    }

    /// REDUCE/NEWOBJ arguments: a tuple, a list (unpacked by pickle.py only), or None for any
    /// other value, which pickle.py (joblib) unpacks with `*args` as well (a dict's keys, a
    /// str's characters, an object's `__iter__`) while _pickle.c raises.
    fn iterable_args(&mut self, args: NodeId, op: &str) -> Result<Option<Vec<NodeId>>> {
        match self.graph.get(args) {
            Node::Tuple(_) | Node::List(_) => self.arg_items(args, op).map(Some),
            Node::Dict(_)
            | Node::Set(_)
            | Node::FrozenSet(_)
            | Node::Str(_)
            | Node::Bytes(_)
            | Node::ByteArray(_)
            | Node::Object(_) => {
                let g = grade::differential(&format!("{op} with arguments that are not a tuple"));
                self.record(g);
                Ok(None)
            }
            _ => Err(Error::malformed(format!("{op} arguments are not a tuple"))),
        }
    }

    /// `callable(*iterable)` where the machine does not unpack the iterable: a call of the
    /// file's choosing on arguments it chose, graded without interpreting it.
    fn unpacked_call(
        &mut self,
        callable: NodeId,
        iterable: NodeId,
        how: CallKind,
    ) -> Result<NodeId> {
        let callable = self.unwrap_module_pid(callable);
        self.unmodelled(
            callable,
            vec![iterable],
            None,
            how,
            Some("arguments unpacked from a value that is not a tuple (pickle.py only)".into()),
        )
    }

    /// The items of an argument tuple. The C unpickler requires a tuple; the pure-Python one
    /// (joblib) unpacks any sequence, so a list is read as the arguments it becomes there.
    fn arg_items(&mut self, args: NodeId, op: &str) -> Result<Vec<NodeId>> {
        match self.graph.get(args) {
            Node::Tuple(items) => Ok(items.clone()),
            Node::List(items) => {
                let items = items.clone();
                let g = grade::differential(&format!("{op} with a list of arguments"));
                self.record(g);
                Ok(items)
            }
            _ => Err(Error::malformed(format!("{op} arguments are not a tuple"))),
        }
    }

    /// `_instantiate(klass, args)` of INST/OBJ: `klass.__new__(klass)` for a class without
    /// arguments (and without `__getinitargs__`), `klass(*args)` otherwise.
    fn instantiate_or_call(
        &mut self,
        cls: NodeId,
        args: Vec<NodeId>,
        how: CallKind,
    ) -> Result<NodeId> {
        let cls = self.unwrap_module_pid(cls);
        let known_class = match self.graph.get(cls) {
            Node::Global(g) => {
                grade::is_torchscript_class(g, self.ctx.torchscript)
                    || registry::lookup(&g.module, &g.name).is_some_and(|e| e.class)
            }
            _ => false,
        };
        if args.is_empty() && known_class {
            self.instantiate(cls, args, None, how)
        } else {
            // An unregistered name may be a function: without knowing, it is a call.
            self.invoke(cls, args, None, how)
        }
    }

    /// `callable(*args, **kwargs)`.
    pub(super) fn invoke(
        &mut self,
        callable: NodeId,
        args: Vec<NodeId>,
        kwargs: Option<NodeId>,
        how: CallKind,
    ) -> Result<NodeId> {
        let callable = self.unwrap_module_pid(callable);
        let entry = match self.graph.get(callable) {
            Node::Global(g) if grade::is_torchscript_class(g, self.ctx.torchscript) => {
                return self.new_object(callable, args, kwargs, how, ClassKnowledge::TorchScript);
            }
            Node::Global(g) => registry::lookup(&g.module, &g.name),
            _ => None,
        };
        let why = match entry {
            Some(e) if e.usage == Usage::Call => {
                match self.call_registered(e, callable, &args, kwargs)? {
                    Interp::Value(v) => return Ok(v),
                    Interp::Unmodelled(why) => Some(why),
                }
            }
            Some(e) => Some(format!(
                "`{}.{}` is registered as a {} only",
                e.module,
                e.name,
                e.usage.as_str()
            )),
            None => {
                if let Some(obj) = self.construct(callable, &args, kwargs)? {
                    return Ok(obj);
                }
                None
            }
        };
        self.unmodelled(callable, args, kwargs, how, why)
    }

    /// A registered callable: the machine's own kinds (calls of other callables) or the
    /// interpreter.
    fn call_registered(
        &mut self,
        e: &'static Entry,
        callable: NodeId,
        args: &[NodeId],
        kwargs: Option<NodeId>,
    ) -> Result<Interp> {
        let has_kwargs = kwargs
            .is_some_and(|k| !matches!(self.graph.get(k), Node::Dict(d) if d.entries.is_empty()));
        match e.kind {
            Kind::CopyregReconstructor if !has_kwargs => self.reconstructor(args),
            Kind::CopyregNewobj if !has_kwargs => match args {
                [cls, rest @ ..] => Ok(Interp::Value(self.instantiate(
                    *cls,
                    rest.to_vec(),
                    None,
                    CallKind::NewObj,
                )?)),
                [] => Err(Error::malformed("copyreg.__newobj__ without a class")),
            },
            Kind::CopyregNewobjEx if !has_kwargs => match args {
                [cls, a, k] => {
                    let a = self.arg_items(*a, "copyreg.__newobj_ex__")?;
                    Ok(Interp::Value(self.instantiate(
                        *cls,
                        a,
                        Some(*k),
                        CallKind::NewObjEx,
                    )?))
                }
                _ => Err(Error::malformed(
                    "copyreg.__newobj_ex__ expects (cls, args, kwargs)",
                )),
            },
            Kind::RebuildFromTypeV2 | Kind::RebuildFromType if !has_kwargs => {
                self.rebuild_from_type(e.kind, args)
            }
            Kind::RebuildParameterWithState if !has_kwargs => {
                match interpret::call(self.graph, e, callable, args, kwargs)? {
                    Interp::Value(param) => self.apply_tensor_state(param, callable, args[3]),
                    other => Ok(other),
                }
            }
            Kind::RebuildWrapperSubclass if !has_kwargs => {
                // `_make_wrapper_subclass(cls, ...)`: a data-less tensor of the file's class.
                if let Some(&cls) = args.first() {
                    match self.graph.get(cls).clone() {
                        Node::Global(g) => {
                            if registry::lookup(&g.module, &g.name).is_none() {
                                let grade = grade::instantiation(&g);
                                self.record(grade);
                            }
                        }
                        _ => {
                            return interpret::unmodelled(
                                "a wrapper subclass that is not a named class",
                            )
                        }
                    }
                }
                interpret::call(self.graph, e, callable, args, kwargs)
            }
            _ => interpret::call(self.graph, e, callable, args, kwargs),
        }
    }

    /// `cls.__new__(cls, *args, **kwargs)`.
    pub(super) fn instantiate(
        &mut self,
        cls: NodeId,
        args: Vec<NodeId>,
        kwargs: Option<NodeId>,
        how: CallKind,
    ) -> Result<NodeId> {
        let cls = self.unwrap_module_pid(cls);
        let with_args = !args.is_empty()
            || kwargs.is_some_and(
                |k| !matches!(self.graph.get(k), Node::Dict(d) if d.entries.is_empty()),
            );
        let g = match self.graph.get(cls) {
            Node::Global(g) => (**g).clone(),
            // The C unpickler requires a type; the pure-Python one looks `__new__` up on the
            // value, where a planted attribute answers.
            _ => {
                return self.unmodelled(
                    cls,
                    args,
                    kwargs,
                    how,
                    Some("the class is a computed value".into()),
                )
            }
        };
        if grade::is_torchscript_class(&g, self.ctx.torchscript) {
            return self.new_object(cls, args, kwargs, how, ClassKnowledge::TorchScript);
        }
        let Some(e) = registry::lookup(&g.module, &g.name) else {
            if let Some(obj) = self.construct(cls, &args, kwargs)? {
                return Ok(obj);
            }
            if with_args {
                return self.unmodelled(
                    cls,
                    args,
                    kwargs,
                    how,
                    Some("cls.__new__(cls, *args) with the pickle's arguments".into()),
                );
            }
            let grade = grade::instantiation(&g);
            self.record(grade);
            self.calls_seen = true;
            return self.new_object(cls, args, kwargs, how, ClassKnowledge::Unknown);
        };
        if !e.class {
            return Err(Error::malformed(format!(
                "{}.{} is not a class, so it cannot be instantiated",
                e.module, e.name
            )));
        }
        // The built-in mappings' and lists' __new__ ignores its arguments (their __init__,
        // which NEWOBJ does not call, would read them).
        let empty = |m: &mut Self, node: Node| m.new_node(node);
        match e.kind {
            Kind::OrderedDict | Kind::Counter | Kind::DefaultDict => {
                let kind = match e.kind {
                    Kind::OrderedDict => DictKind::OrderedDict,
                    Kind::Counter => DictKind::Counter,
                    _ => DictKind::DefaultDict,
                };
                empty(self, Node::Dict(Box::new(Dict::new(kind))))
            }
            Kind::Set => empty(self, Node::Set(Vec::new())),
            Kind::BuiltinType if matches!(e.name, "dict" | "list") => empty(
                self,
                if e.name == "dict" {
                    Node::Dict(Box::new(Dict::new(DictKind::Dict)))
                } else {
                    Node::List(Vec::new())
                },
            ),
            Kind::StrSubclass => match args.as_slice() {
                [a] if matches!(self.graph.get(*a), Node::Str(_)) && kwargs.is_none() => {
                    let text = self.graph.get(*a).clone();
                    self.new_node(text)
                }
                _ => self.unmodelled(
                    cls,
                    args,
                    kwargs,
                    how,
                    Some("a str subclass instantiated with something other than one str".into()),
                ),
            },
            _ if with_args => self.unmodelled(
                cls,
                args,
                kwargs,
                how,
                Some(format!(
                    "`{}.{}` is modelled only when instantiated without arguments",
                    e.module, e.name
                )),
            ),
            Kind::PlainClass | Kind::JoblibArrayWrapper => {
                self.new_object(cls, args, kwargs, how, ClassKnowledge::Registered(e.kind))
            }
            Kind::BuiltinType => match e.name {
                "tuple" => empty(self, Node::Tuple(Vec::new())),
                "int" => empty(self, Node::Int(0)),
                "bool" => empty(self, Node::Bool(false)),
                "float" => empty(self, Node::Float(0.0)),
                "str" => empty(self, Node::Str("".into())),
                // object.__new__(object): an instance without a __dict__.
                _ => self.new_object(
                    cls,
                    args,
                    kwargs,
                    how,
                    ClassKnowledge::Registered(Kind::BuiltinType),
                ),
            },
            Kind::Frozenset => empty(self, Node::FrozenSet(Vec::new())),
            Kind::Bytes => empty(self, Node::Bytes(Box::new([]))),
            Kind::Bytearray => empty(self, Node::ByteArray(Box::new([]))),
            Kind::Complex => empty(self, Node::Complex(0.0, 0.0)),
            Kind::TorchSize => empty(self, Node::Tuple(Vec::new())),
            Kind::LegacyTensorClass => {
                let dtype = e
                    .name
                    .strip_suffix("Tensor")
                    .filter(|b| !b.is_empty())
                    .and_then(|b| {
                        crate::tensors::torch_dtype::TorchDtype::from_storage_name(&format!(
                            "{b}Storage"
                        ))
                    });
                torch_interp::legacy_tensor_placeholder(self.graph, cls, dtype)
            }
            // Registered classes whose bare __new__ the machine does not model: graded as an
            // instantiation (their own __new__ runs), never trusted.
            _ => {
                let grade = grade::instantiation(&g);
                self.record(grade);
                self.calls_seen = true;
                self.new_object(cls, args, kwargs, how, ClassKnowledge::Unknown)
            }
        }
    }

    /// A `[[construct]]` class built from plain arguments: its own constructor (or enum lookup)
    /// runs on plain data, graded like an instantiation without arguments.
    fn construct(
        &mut self,
        cls: NodeId,
        args: &[NodeId],
        kwargs: Option<NodeId>,
    ) -> Result<Option<NodeId>> {
        let Node::Global(g) = self.graph.get(cls) else {
            return Ok(None);
        };
        let g = (**g).clone();
        if registry::construct(&g.module, &g.name).is_none() {
            return Ok(None);
        }
        let plain = args.iter().all(|&a| interpret::is_plain(self.graph, a))
            && kwargs
                .is_none_or(|k| matches!(self.graph.get(k), Node::Dict(d) if d.entries.is_empty()));
        if !plain {
            return Ok(None);
        }
        let grade = grade::instantiation(&g);
        self.record(grade);
        self.calls_seen = true;
        // Graded and restored like NEWOBJ without arguments (its own methods run next).
        self.new_object(
            cls,
            args.to_vec(),
            kwargs,
            CallKind::NewObj,
            ClassKnowledge::Unknown,
        )
        .map(Some)
    }

    /// `copyreg._reconstructor(cls, base, state)`: `object.__new__(cls)` when `base` is
    /// object, else `base.__new__(cls, state)` and `base.__init__(obj, state)`.
    fn reconstructor(&mut self, args: &[NodeId]) -> Result<Interp> {
        let [cls, base, state] = args else {
            return Err(Error::malformed(
                "copyreg._reconstructor expects (cls, base, state)",
            ));
        };
        let base_name = match self.graph.get(*base) {
            Node::Global(b) => registry::lookup(&b.module, &b.name)
                .filter(|e| e.kind == Kind::BuiltinType)
                .map(|e| e.name),
            _ => None,
        };
        match base_name {
            Some("object") if matches!(self.graph.get(*state), Node::None) => {
                Ok(Interp::Value(self.instantiate(*cls, Vec::new(), None, CallKind::NewObj)?))
            }
            // A built-in base's own C __new__ and __init__ copy plain state into the instance;
            // no code of `cls` runs (only its import), as with NEWOBJ without arguments.
            // dict/list only: their __new__ ignores the state and their C __init__ copies a
            // state of their own type; other bases' __new__ would be given the state.
            Some(base)
                if matches!(
                    (base, self.graph.get(*state)),
                    ("dict", Node::Dict(_)) | ("list", Node::List(_))
                ) && interpret::is_plain(self.graph, *state)
                    && matches!(self.graph.get(*cls), Node::Global(g) if registry::lookup(&g.module, &g.name).is_none()) =>
            {
                let obj = self.instantiate(*cls, Vec::new(), None, CallKind::NewObj)?;
                let state_node = self.graph.get(*state).clone();
                if let Node::Object(o) = self.graph.get_mut(obj) {
                    match state_node {
                        Node::Dict(d) => o.dict_items.extend(d.entries.iter().copied()),
                        Node::List(v) => o.items.extend(v),
                        _ => unreachable!("matched above"),
                    }
                }
                Ok(Interp::Value(obj))
            }
            _ => interpret::unmodelled(
                "copyreg._reconstructor with a base other than a built-in type calls base.__new__(cls, state)",
            ),
        }
    }

    /// `_rebuild_from_type_v2(func, new_type, args, state)` and `_rebuild_from_type(func, type,
    /// args, dict)`: `func(*args)` (a call graded on its own), made an instance of `new_type`,
    /// then the state applied. Modelled for `torch.Tensor` and `torch.nn.Parameter`; another
    /// tensor subclass could change the tensor, so its result is never a tensor the machine
    /// writes.
    fn rebuild_from_type(&mut self, kind: Kind, args: &[NodeId]) -> Result<Interp> {
        let name = if kind == Kind::RebuildFromTypeV2 {
            "_rebuild_from_type_v2"
        } else {
            "_rebuild_from_type"
        };
        let [func, new_type, fargs, state] = args else {
            return Err(Error::malformed(format!("{name}: expected 4 arguments")));
        };
        let fargs = self.arg_items(*fargs, name)?;
        if self.call_depth >= MAX_CALL_NESTING {
            return Err(Error::malformed(format!(
                "{name}: rebuild calls nested too deeply"
            )));
        }
        self.call_depth += 1;
        let ret = self.invoke(*func, fargs, None, CallKind::Reduce);
        self.call_depth -= 1;
        let ret = ret?;
        let tensor_type = match self.graph.get(*new_type) {
            Node::Global(g) => match registry::lookup(&g.module, &g.name).map(|e| e.kind) {
                Some(Kind::LegacyTensorClass) if &*g.name == "Tensor" => Some(false),
                Some(Kind::Parameter) => Some(true),
                _ => None,
            },
            _ => None,
        };
        if !matches!(self.graph.get(ret), Node::Tensor(_)) {
            // func was not a modelled tensor rebuilder: its call is already graded, and
            // `ret.as_subclass(...)` runs on the unmodelled result.
            return interpret::unmodelled(format!(
                "{name} on a value that is not a modelled tensor"
            ));
        }
        let Some(parameter) = tensor_type else {
            let what = format!(
                "{name} makes the tensor an instance of `{}`, a subclass whose restore code the machine does not model",
                self.graph.describe(*new_type, 80)
            );
            return self.refuse_tensor(*new_type, &what);
        };
        if parameter {
            if let Node::Tensor(t) = self.graph.get_mut(ret) {
                t.parameter = Some(t.requires_grad);
            }
        }
        if kind == Kind::RebuildFromTypeV2 {
            // Neither Tensor nor Parameter defines another __setstate__: `_set_obj_state`.
            return self.apply_tensor_state(ret, *new_type, *state);
        } else if parameter {
            // `ret.__dict__ = dict`: plain attributes, no setattr.
            let entries = match self.graph.get(*state) {
                Node::Dict(d) => d.entries.clone(),
                _ => {
                    return interpret::unmodelled(format!(
                        "{name} assigns a __dict__ that is not a dict"
                    ))
                }
            };
            let attrs: Vec<_> = entries
                .into_iter()
                .map(|(k, v)| match self.graph.as_str(k) {
                    Some(s) => (crate::pickle::value::AttrKey::Name(s.into()), v),
                    None => (crate::pickle::value::AttrKey::Other(k), v),
                })
                .collect();
            if let Node::Tensor(t) = self.graph.get_mut(ret) {
                for (k, v) in attrs {
                    t.attrs.set(k, v);
                }
            }
        }
        Ok(Interp::Value(ret))
    }

    /// `_set_obj_state(tensor, state)`, or a refusal when it would change the tensor.
    fn apply_tensor_state(&mut self, tensor: NodeId, by: NodeId, state: NodeId) -> Result<Interp> {
        match torch_interp::apply_obj_state(self.graph, tensor, state)? {
            None => Ok(Interp::Value(tensor)),
            Some(Interp::Unmodelled(why)) => self.refuse_tensor(by, &why),
            Some(v) => Ok(v),
        }
    }

    /// A tensor the loader would change after rebuilding it: a high finding, and an inert
    /// object in its place, so that no tensor other than torch's is ever written.
    fn refuse_tensor(&mut self, by: NodeId, what: &str) -> Result<Interp> {
        let g = grade::tensor_state(what);
        self.record(g);
        self.calls_seen = true;
        let o = self.new_object(
            by,
            Vec::new(),
            None,
            CallKind::Reduce,
            ClassKnowledge::Unknown,
        )?;
        Ok(Interp::Value(o))
    }

    /// A call the machine does not model: graded, and an inert object in its place.
    fn unmodelled(
        &mut self,
        callable: NodeId,
        args: Vec<NodeId>,
        kwargs: Option<NodeId>,
        how: CallKind,
        why: Option<String>,
    ) -> Result<NodeId> {
        let verb = match how {
            CallKind::NewObj | CallKind::NewObjEx => "instantiates with arguments",
            _ => "calls",
        };
        let arg_text = self.graph.describe_items(&args, 160);
        let callee_text;
        let callee = match self.graph.get(callable) {
            Node::Global(g) => Callee::Global(g),
            _ => {
                callee_text = self.graph.describe(callable, 120);
                Callee::Computed(&callee_text)
            }
        };
        let g = grade::call(callee, verb, &arg_text, why.as_deref());
        self.record(g);
        self.calls_seen = true;
        self.new_object(callable, args, kwargs, how, ClassKnowledge::Unknown)
    }

    pub(super) fn new_object(
        &mut self,
        callable: NodeId,
        args: Vec<NodeId>,
        kwargs: Option<NodeId>,
        how: CallKind,
        class: ClassKnowledge,
    ) -> Result<NodeId> {
        self.new_node(Node::Object(Box::new(Object::new(
            callable, args, kwargs, how, class,
        ))))
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

    /// The grade for restoring an instance of an unregistered class (its own methods run), or
    /// None for the result of a call the machine did not model: that call is graded already.
    pub(super) fn restore_grade(&self, target: NodeId, what: &str) -> Option<Grade> {
        match self.graph.get(target) {
            Node::Object(o) if matches!(o.how, CallKind::NewObj | CallKind::NewObjEx) => {
                let class = self.class_global(target);
                Some(grade::restore(class.as_ref(), what))
            }
            Node::Object(_) => None,
            _ => Some(grade::restore(None, what)),
        }
    }

    pub(super) fn record(&mut self, g: Grade) {
        self.finding(g.rule, g.severity, g.message, g.global);
    }

    /// The class of an object, when it is a named global.
    pub(super) fn class_global(&self, obj: NodeId) -> Option<Global> {
        match self.graph.get(obj) {
            Node::Object(o) => self.graph.as_global(o.callable).cloned(),
            _ => None,
        }
    }

    pub(super) fn describe_class(&self, obj: NodeId) -> String {
        match self.class_global(obj) {
            Some(g) => format!("`{}`", g.dotted()),
            None => match self.graph.get(obj) {
                Node::Object(_) => "the result of an unmodelled call".into(),
                Node::Tensor(_) => "a tensor".into(),
                Node::Dict(_) => "a dict".into(),
                _ => "a value".into(),
            },
        }
    }
}
