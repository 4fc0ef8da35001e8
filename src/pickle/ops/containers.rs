//! Tuples, lists, dicts and sets, and the opcodes that fill containers: APPEND(S), SETITEM(S),
//! ADDITEMS. On the built-in types these are the types' own C methods; on anything else they
//! are lookups and calls on the instance (`_pickle.c` do_append, do_setitems, load_additems),
//! which the machine grades.

use crate::error::{Error, Result};
use crate::pickle::input::Input;
use crate::pickle::lookup::{lookup, Found};
use crate::pickle::machine::{Flow, Machine};
use crate::pickle::value::{CallKind, ClassKnowledge, Dict, DictKind, Node, NodeId};
use crate::policy::grade;

impl Machine<'_, '_, '_> {
    pub(crate) fn load_empty_tuple(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        self.push_new(Node::Tuple(Vec::new()))
    }

    pub(crate) fn load_tuple(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        let items = self.pop_mark()?;
        self.push_new(Node::Tuple(items))
    }

    fn tuple_n(&mut self, n: usize) -> Result<Flow> {
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.pop()?);
        }
        items.reverse();
        self.push_new(Node::Tuple(items))
    }

    pub(crate) fn load_tuple1(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        self.tuple_n(1)
    }

    pub(crate) fn load_tuple2(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        self.tuple_n(2)
    }

    pub(crate) fn load_tuple3(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        self.tuple_n(3)
    }

    pub(crate) fn load_empty_list(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        self.push_new(Node::List(Vec::new()))
    }

    pub(crate) fn load_list(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        let items = self.pop_mark()?;
        self.push_new(Node::List(items))
    }

    pub(crate) fn load_append(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        let v = self.pop()?;
        let target = self.top()?;
        self.append_items(target, vec![v], "APPEND")?;
        Ok(Flow::Continue)
    }

    pub(crate) fn load_appends(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        let items = self.pop_mark()?;
        let target = self.top()?;
        if !items.is_empty() {
            self.append_items(target, items, "APPENDS")?;
        } else if !matches!(self.graph.get(target), Node::List(_) | Node::Global(_)) {
            // _pickle.c returns before looking at the target; pickle.py (joblib) still looks up
            // and calls `extend([])`, so a planted `extend` runs there.
            self.empty_batch_lookup(target, &["extend", "append"], "APPENDS")?;
        }
        Ok(Flow::Continue)
    }

    pub(crate) fn load_empty_dict(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        self.push_new(Node::Dict(Box::new(Dict::new(DictKind::Dict))))
    }

    pub(crate) fn load_dict(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        let items = self.pop_mark()?;
        if items.len() % 2 != 0 {
            return Err(Error::malformed("odd number of items for DICT"));
        }
        let d = self.new_node(Node::Dict(Box::new(Dict::new(DictKind::Dict))))?;
        self.graph.charge_bytes(24 * items.len() as u64)?;
        for pair in items.chunks(2) {
            self.graph.dict_set(d, pair[0], pair[1])?;
        }
        self.push(d)?;
        Ok(Flow::Continue)
    }

    pub(crate) fn load_setitem(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        let v = self.pop()?;
        let k = self.pop()?;
        let target = self.top()?;
        self.set_items(target, vec![k, v], "SETITEM")?;
        Ok(Flow::Continue)
    }

    pub(crate) fn load_setitems(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        let items = self.pop_mark()?;
        if items.len() % 2 != 0 {
            return Err(Error::malformed("odd number of items for SETITEMS"));
        }
        if !items.is_empty() {
            let target = self.top()?;
            self.set_items(target, items, "SETITEMS")?;
        }
        Ok(Flow::Continue)
    }

    pub(crate) fn load_empty_set(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        self.push_new(Node::Set(Vec::new()))
    }

    pub(crate) fn load_additems(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        let items = self.pop_mark()?;
        let target = self.top()?;
        if items.is_empty() {
            // pickle.py calls `update([])` on a set subclass (an unregistered class may be one).
            if !matches!(self.graph.get(target), Node::Set(_) | Node::Global(_)) {
                self.empty_batch_lookup(target, &["update"], "ADDITEMS")?;
            }
            return Ok(Flow::Continue);
        }
        self.graph.charge_bytes(4 * items.len() as u64)?;
        match self.graph.get(target) {
            // PySet_Check / isinstance(obj, set): the set's own update.
            Node::Set(_) => self.graph.set_add(target, &items)?,
            Node::Global(gl) => {
                let g = grade::mutates_global(gl, "ADDITEMS");
                self.record(g);
            }
            // Anything else: `obj.add` per item (the pure-Python unpickler calls `update` on set
            // subclasses, which an unregistered class may be).
            _ => self.instance_method(target, &["add", "update"], items, "ADDITEMS")?,
        }
        Ok(Flow::Continue)
    }

    pub(crate) fn load_frozenset(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        let items = self.pop_mark()?;
        self.graph.charge_bytes(4 * items.len() as u64)?;
        let s = self.new_node(Node::FrozenSet(Vec::new()))?;
        self.graph.set_add(s, &items)?;
        self.push(s)?;
        Ok(Flow::Continue)
    }

    /// APPEND/APPENDS: `list.extend` on an exact list; otherwise the instance's `extend`, then
    /// its `append` (`_pickle.c` do_append; `pickle.py` looks up `append` for APPEND).
    fn append_items(&mut self, target: NodeId, items: Vec<NodeId>, op: &str) -> Result<()> {
        match self.graph.get(target) {
            Node::List(v) => {
                // Charge the capacity the list will really hold (growth doubles it).
                let (len, cap) = (v.len(), v.capacity());
                let need = len + items.len();
                let new_cap = if need > cap {
                    need.max(cap * 2).max(4)
                } else {
                    cap
                };
                self.graph.charge_bytes(4 * (new_cap - cap) as u64)?;
                if let Node::List(v) = self.graph.get_mut(target) {
                    v.reserve_exact(new_cap - len);
                    v.extend(items);
                }
                Ok(())
            }
            Node::Global(gl) => {
                let g = grade::mutates_global(gl, op);
                self.record(g);
                Ok(())
            }
            _ => self.instance_method(target, &["extend", "append"], items, op),
        }
    }

    /// SETITEM(S): `obj[key] = value` through the type's `__setitem__` (never an instance
    /// attribute).
    fn set_items(&mut self, target: NodeId, items: Vec<NodeId>, op: &str) -> Result<()> {
        // entry (8) + hash index slot and key copy, with the table's growth headroom
        self.graph.charge_bytes(24 * items.len() as u64)?;
        match self.graph.get(target) {
            Node::Dict(_) => {
                for pair in items.chunks(2) {
                    self.graph.dict_set(target, pair[0], pair[1])?;
                }
                Ok(())
            }
            Node::List(len) => {
                // list.__setitem__ with an int index replaces an item; anything else raises.
                let len = len.len() as i64;
                for pair in items.chunks(2) {
                    let Some(i) = self.graph.as_int(pair[0]) else {
                        return Err(Error::malformed(format!(
                            "{op} on a list with a key that is not an int"
                        )));
                    };
                    let at = if i < 0 { i + len } else { i };
                    if !(0..len).contains(&at) {
                        return Err(Error::malformed(format!(
                            "{op}: list assignment index out of range"
                        )));
                    }
                    if let Node::List(v) = self.graph.get_mut(target) {
                        v[at as usize] = pair[1];
                    }
                }
                Ok(())
            }
            Node::Tensor(_) | Node::Array(_) => {
                let g = grade::tensor_state(&format!(
                    "{op} assigns into a tensor or array, changing its data"
                ));
                self.record(g);
                Ok(())
            }
            Node::Global(gl) => {
                let g = grade::mutates_global(gl, op);
                self.record(g);
                Ok(())
            }
            Node::Object(o) if o.placeholder.is_none() && o.class == ClassKnowledge::Unknown => {
                if let Some(g) = self.restore_grade(target, &format!("{op}: its __setitem__")) {
                    self.record(g);
                    self.calls_seen = true;
                }
                if let Node::Object(o) = self.graph.get_mut(target) {
                    o.dict_items.extend(items.chunks(2).map(|p| (p[0], p[1])));
                }
                Ok(())
            }
            _ => Err(Error::malformed(format!(
                "{op} on an object that does not support item assignment"
            ))),
        }
    }

    /// A container opcode on anything but the built-in type: the loader looks up the first of
    /// `names` the instance has and calls it with the items.
    fn instance_method(
        &mut self,
        target: NodeId,
        names: &[&'static str],
        items: Vec<NodeId>,
        op: &str,
    ) -> Result<()> {
        let mut unknown = None;
        for &name in names {
            match lookup(self.graph, target, name) {
                Found::Planted(v) => {
                    let list = self.new_node(Node::List(items))?;
                    self.call_planted(v, name, target, vec![list])?;
                    return Ok(());
                }
                Found::Unknown { exposed } => {
                    unknown = Some((name, exposed || unknown.is_some_and(|(_, e)| e)));
                }
                Found::Class | Found::Absent => {}
            }
        }
        let Some((name, exposed)) = unknown else {
            return Err(Error::malformed(format!(
                "{op} on an object without `{}`",
                names.join("` or `")
            )));
        };
        let g = if exposed {
            Some(grade::planted(
                name,
                &format!("an instance of {}", self.describe_class(target)),
                "what the pickle wrote into it can answer that lookup through the class's __getattr__",
            ))
        } else {
            self.restore_grade(target, &format!("{op}: its {name}"))
        };
        if let Some(g) = g {
            self.record(g);
            self.calls_seen = true;
        }
        if let Node::Object(o) = self.graph.get_mut(target) {
            o.items.extend(items);
        }
        Ok(())
    }

    /// An empty APPENDS/ADDITEMS: only the pure-Python unpickler looks the method up and calls
    /// it with nothing; a missing method is no error for the C one, so nothing is required.
    fn empty_batch_lookup(
        &mut self,
        target: NodeId,
        names: &[&'static str],
        op: &str,
    ) -> Result<()> {
        for &name in names {
            match lookup(self.graph, target, name) {
                Found::Planted(v) => {
                    let list = self.new_node(Node::List(Vec::new()))?;
                    self.call_planted(v, name, target, vec![list])?;
                    return Ok(());
                }
                Found::Unknown { exposed: true } => {
                    let g = grade::planted(
                        name,
                        &format!("an instance of {}", self.describe_class(target)),
                        &format!("an empty {op} still makes the pure-Python unpickler call it, and what the pickle wrote into the instance can answer that lookup"),
                    );
                    self.record(g);
                    self.calls_seen = true;
                    return Ok(());
                }
                Found::Unknown { exposed: false } | Found::Class | Found::Absent => {}
            }
        }
        Ok(())
    }

    /// The loader calls a value the pickle planted on an instance: a call the file chose, so
    /// high whatever it calls (a modelled callable included), and graded as a call of that value
    /// too (critical for a known gadget).
    pub(super) fn call_planted(
        &mut self,
        value: NodeId,
        attr: &'static str,
        on: NodeId,
        args: Vec<NodeId>,
    ) -> Result<NodeId> {
        let target = self.graph.describe(value, 80);
        let g = grade::planted(
            attr,
            &format!("an instance of {}", self.describe_class(on)),
            &format!("finds `{target}`, a value the pickle wrote into the instance"),
        );
        self.record(g);
        self.calls_seen = true;
        self.invoke(value, args, None, CallKind::Reduce)
    }
}
