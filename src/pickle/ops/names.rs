//! GLOBAL, STACK_GLOBAL (find_class), EXT1/2/4 (the copyreg extension registry), PERSID and
//! BINPERSID (persistent ids the container's loader resolves).

use crate::error::{Error, Result};
use crate::pickle::compat::fix_import;
use crate::pickle::input::Input;
use crate::pickle::machine::{Flow, Machine, MAX_NAME_LINE};
use crate::pickle::text;
use crate::pickle::value::{Global, Node, NodeId};
use crate::policy::grade;
use crate::policy::interpret;
use crate::policy::registry::{self, Kind};

impl Machine<'_, '_, '_> {
    pub(crate) fn load_global(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let module = input.read_line(MAX_NAME_LINE)?;
        let name = input.read_line(MAX_NAME_LINE)?;
        let (m, n) = (text::ascii_name(&module)?, text::ascii_name(&name)?);
        let g = self.resolve_global(m, n)?;
        self.push(g)?;
        Ok(Flow::Continue)
    }

    pub(crate) fn load_stack_global(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        let name = self.pop()?;
        let module = self.pop()?;
        let (Some(m), Some(n)) = (self.graph.as_str(module), self.graph.as_str(name)) else {
            return Err(Error::malformed("STACK_GLOBAL requires str operands"));
        };
        let (m, n) = (m.to_string(), n.to_string());
        let g = self.resolve_global(m, n)?;
        self.push(g)?;
        Ok(Flow::Continue)
    }

    /// find_class: the protocol < 3 renames of `_compat_pickle`, then the name as the registry
    /// and the grades see it. Importing the module runs its top level, so every name outside
    /// the registry is at least a medium finding.
    pub(super) fn resolve_global(&mut self, module: String, name: String) -> Result<NodeId> {
        if module.is_empty() || name.is_empty() {
            return Err(Error::malformed(
                "empty module or name in a global reference",
            ));
        }
        if self.ctx.torch {
            // torch's find_class: a name from its storage-type table is a StorageType before
            // anything is imported, whatever the module.
            if let Some(e) =
                registry::lookup("torch", &name).filter(|e| e.kind == Kind::TypedStorage)
            {
                let g = Global {
                    module: e.module.into(),
                    name: e.name.into(),
                };
                return interpret::global_value(self.graph, g, Some(e));
            }
        }
        let proto = self.ctx.names_proto.unwrap_or(self.proto);
        let (module, name) = if proto < 3 {
            fix_import(&module, &name)
        } else {
            (module, name)
        };
        let g = Global {
            module: module.into(),
            name: name.into(),
        };
        for grade in grade::reference(&g, self.ctx.torchscript) {
            self.record(grade);
        }
        let entry = registry::lookup_in(&g.module, &g.name, self.ctx.torchscript);
        interpret::global_value(self.graph, g, entry)
    }

    fn load_ext(&mut self, code: i64) -> Result<Flow> {
        if code <= 0 {
            return Err(Error::malformed("EXT specifies code <= 0"));
        }
        let g = grade::extension(code);
        self.record(g);
        self.calls_seen = true;
        let g = self.new_node(Node::Global(Box::new(Global {
            module: "<copyreg extension>".into(),
            name: code.to_string().into(),
        })))?;
        self.push(g)?;
        Ok(Flow::Continue)
    }

    pub(crate) fn load_ext1(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let code = input.read_u8()? as i64;
        self.load_ext(code)
    }

    pub(crate) fn load_ext2(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let code = u16::from_le_bytes(input.read_array()?) as i64;
        self.load_ext(code)
    }

    pub(crate) fn load_ext4(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let code = i32::from_le_bytes(input.read_array()?) as i64;
        self.load_ext(code)
    }

    pub(crate) fn load_persid(&mut self, input: &mut Input<'_>) -> Result<Flow> {
        let line = input.read_line(MAX_NAME_LINE)?;
        let s = text::ascii_only(&line)?;
        let pid = self.new_node(Node::Str(s.into()))?;
        self.push_new(Node::PersistentId(pid))
    }

    pub(crate) fn load_binpersid(&mut self, _: &mut Input<'_>) -> Result<Flow> {
        let pid = self.pop()?;
        self.push_new(Node::PersistentId(pid))
    }
}
