//! Every severity the pickle machine assigns, in one place, following the verdicts the README
//! defines:
//! - clean: the loader imports only registered names and runs only code the machine models;
//! - suspicious (medium): it also imports unregistered modules, or runs an unregistered
//!   class's own `__new__`/`__setstate__`/`__getattr__`/container methods on an instance made
//!   without arguments and restored with plain data;
//! - malicious (high, critical): it calls anything else the file chose: a call with arguments
//!   outside the modelled set, a planted attribute, a mutation of live code or of a tensor.
//!
//! The dangerous lists of the registry only raise a grade (critical instead of high, high
//! instead of medium); they never lower one.

use super::findings::{Rule, Severity};
use super::registry;
use crate::pickle::value::Global;

/// A finding the machine is about to record.
#[derive(Debug, Clone)]
pub struct Grade {
    pub rule: Rule,
    pub severity: Severity,
    pub message: String,
    pub global: Option<String>,
}

/// What is being called: a named global, or a value the pickle computed (described).
pub enum Callee<'a> {
    Global(&'a Global),
    Computed(&'a str),
}

/// GLOBAL / STACK_GLOBAL / INST resolve `module.name`: `find_class` imports the module (running
/// its top level) and walks the name. `torchscript`: inside a TorchScript archive, `__torch__.*`
/// names are the archive's own classes (the TorchScript analysis grades their code).
pub fn reference(g: &Global, torchscript: bool) -> Vec<Grade> {
    if is_torchscript_class(g, torchscript)
        || registry::lookup_in(&g.module, &g.name, torchscript).is_some()
    {
        return Vec::new();
    }
    let dotted = g.dotted();
    let mut out = Vec::new();
    if g.name.contains('.') {
        out.push(Grade {
            rule: Rule::DottedGlobal,
            severity: Severity::High,
            message: format!(
                "dotted name `{}` in module `{}`: the loader walks attributes to reach another object",
                g.name, g.module
            ),
            global: Some(dotted.clone()),
        });
    }
    out.push(match registry::dangerous(&g.module, &g.name) {
        Some(why) => Grade {
            rule: Rule::DangerousGlobal,
            severity: Severity::High,
            message: format!("reference to `{dotted}` ({why})"),
            global: Some(dotted),
        },
        None => Grade {
            rule: Rule::UnknownGlobal,
            severity: Severity::Medium,
            message: format!(
                "reference to `{dotted}`, which is not in the registry: importing `{}` runs its top level",
                g.module
            ),
            global: Some(dotted),
        },
    });
    out
}

/// `__torch__.*` inside a TorchScript archive.
pub fn is_torchscript_class(g: &Global, torchscript: bool) -> bool {
    torchscript && (&*g.module == "__torch__" || g.module.starts_with("__torch__."))
}

/// A call the machine does not model (REDUCE, INST/OBJ that call, NEWOBJ with arguments, a
/// registered callable with an argument shape it does not model): the file chose what runs.
pub fn call(callee: Callee<'_>, verb: &str, args: &str, why: Option<&str>) -> Grade {
    let why = why.map(|w| format!(" ({w})")).unwrap_or_default();
    match callee {
        Callee::Global(g) => {
            let dotted = g.dotted();
            match registry::dangerous(&g.module, &g.name) {
                Some(danger) => Grade {
                    rule: Rule::DangerousCall,
                    severity: Severity::Critical,
                    message: format!("the pickle {verb} `{dotted}` ({danger}) with {args}{why}"),
                    global: Some(dotted),
                },
                None => Grade {
                    rule: Rule::UnknownCall,
                    severity: Severity::High,
                    message: format!("the pickle {verb} `{dotted}` with {args}{why}"),
                    global: Some(dotted),
                },
            }
        }
        Callee::Computed(what) => Grade {
            rule: Rule::UnknownCall,
            severity: Severity::High,
            message: format!("the pickle {verb} a computed callable `{what}` with {args}{why}"),
            global: None,
        },
    }
}

/// `cls.__new__(cls)` of a class that is not registered as `new`: its own `__new__` (and later
/// its own restore methods) run with plain data. Medium, or high for a known gadget module.
pub fn instantiation(g: &Global) -> Grade {
    let dotted = g.dotted();
    match registry::dangerous(&g.module, &g.name) {
        Some(danger) => Grade {
            rule: Rule::DangerousCall,
            severity: Severity::High,
            message: format!("the pickle instantiates `{dotted}` ({danger})"),
            global: Some(dotted),
        },
        None => Grade {
            rule: Rule::UnknownClass,
            severity: Severity::Medium,
            message: format!(
                "the pickle instantiates `{dotted}` without arguments; its own __new__ and restore methods (__setstate__, __setitem__, append/extend/add) run with the pickle's data"
            ),
            global: Some(dotted),
        },
    }
}

/// An instance of an unregistered class is restored (BUILD, SETITEM(S), APPEND(S), ADDITEMS):
/// the class's own method runs. Graded with the instantiation it belongs to (same rule and
/// subject, so the two merge into one finding).
pub fn restore(class: Option<&Global>, what: &str) -> Grade {
    match class {
        Some(g) => {
            let mut grade = instantiation(g);
            if grade.severity < Severity::High {
                grade.message = format!(
                    "the pickle restores an instance of `{}` ({what}): the class's own code runs with the pickle's data",
                    g.dotted()
                );
            }
            grade
        }
        None => Grade {
            rule: Rule::UnknownCall,
            severity: Severity::High,
            message: format!("the pickle restores the result of a call it did not model ({what})"),
            global: None,
        },
    }
}

/// A whole `torch.nn.Module` restored from its `__dict__` (`_parameters`, `_modules`, ...):
/// `Module.__setstate__` and the class's own code run, and `Module.__getattr__` serves whatever
/// the pickle put in those tables to later lookups.
pub fn module_restore(class: Option<&Global>) -> Grade {
    let name = class.map_or_else(
        || "a computed class".to_string(),
        |g| format!("`{}`", g.dotted()),
    );
    Grade {
        rule: Rule::ModulePickle,
        severity: Severity::Medium,
        message: format!(
            "a whole torch.nn.Module ({name}) is pickled: loading it imports and runs its class code"
        ),
        global: class.map(Global::dotted),
    }
}

/// An instance lookup (`__setstate__`, `extend`, `add`, ...) that may find a value the pickle
/// wrote: the loader would call it.
pub fn planted(attr: &str, on: &str, detail: &str) -> Grade {
    Grade {
        rule: Rule::PlantedCall,
        severity: Severity::High,
        message: format!(
            "the loader looks up `{attr}` on {on} and calls it, and {detail}: the pickle chooses what runs"
        ),
        global: None,
    }
}

/// BUILD's slot state on an instance of an unregistered class: `setattr(inst, k, v)` per key
/// runs the class's own `__setattr__` and data descriptors (property setters, ...) with the
/// pickle's values. The machine cannot show they are `object.__setattr__` and plain slots.
pub fn slot_setattr(class: &str) -> Grade {
    Grade {
        rule: Rule::PlantedCall,
        severity: Severity::High,
        message: format!(
            "BUILD's slot state calls setattr on an instance of {class}: unless the class has its own __setstate__, its __setattr__ and descriptors run with values the pickle chose"
        ),
        global: None,
    }
}

/// BUILD, SETITEM(S), APPEND(S) or ADDITEMS on a module, class or function itself.
pub fn mutates_global(g: &Global, what: &str) -> Grade {
    Grade {
        rule: Rule::BuildOnGlobal,
        severity: Severity::High,
        message: format!(
            "{what} on `{}` itself (a module, function or class) changes live code for later lookups",
            g.dotted()
        ),
        global: Some(g.dotted()),
    }
}

/// The loader would change a tensor after rebuilding it.
pub fn tensor_state(what: &str) -> Grade {
    Grade {
        rule: Rule::TensorStateChange,
        severity: Severity::High,
        message: format!(
            "{what}: the loaded tensor would differ from the rebuilt one, so modelguard refuses"
        ),
        global: None,
    }
}

/// The C and pure-Python unpicklers disagree here: one raises, the other goes on (and so does
/// the machine, to see what the lenient loader would run next).
pub fn differential(what: &str) -> Grade {
    Grade {
        rule: Rule::LoaderDifferential,
        severity: Severity::Medium,
        message: format!("{what}: the C unpickler (pickle.load, torch.load) raises here, the pure-Python one (joblib) goes on"),
        global: None,
    }
}

/// The EXT opcodes resolve a global through the loading process's copyreg registry.
pub fn extension(code: i64) -> Grade {
    Grade {
        rule: Rule::ExtensionOpcode,
        severity: Severity::High,
        message: format!(
            "extension code {code}: the loading process's copyreg registry decides which global this is"
        ),
        global: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(m: &str, n: &str) -> Global {
        Global {
            module: m.into(),
            name: n.into(),
        }
    }

    #[test]
    fn references() {
        assert!(reference(&g("torch._utils", "_rebuild_tensor_v2"), false).is_empty());
        let r = |m, n| {
            reference(&g(m, n), false)
                .into_iter()
                .map(|x| (x.rule, x.severity))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            r("posix", "system"),
            [(Rule::DangerousGlobal, Severity::High)]
        );
        assert_eq!(
            r("pathlib", "os.system"),
            [
                (Rule::DottedGlobal, Severity::High),
                (Rule::DangerousGlobal, Severity::High)
            ]
        );
        assert_eq!(
            r("mypkg", "a.b"),
            [
                (Rule::DottedGlobal, Severity::High),
                (Rule::UnknownGlobal, Severity::Medium)
            ]
        );
        // No trust by prefix: a torch.nn name is an import like any other.
        assert_eq!(
            r("torch.nn.modules.linear", "Linear"),
            [(Rule::UnknownGlobal, Severity::Medium)]
        );
        assert_eq!(
            r("__torch__.m", "C"),
            [(Rule::UnknownGlobal, Severity::Medium)]
        );
        assert!(reference(&g("__torch__.m", "C"), true).is_empty());
    }

    #[test]
    fn calls_are_high_or_critical() {
        let c = call(Callee::Global(&g("mypkg", "f")), "calls", "()", None);
        assert_eq!((c.rule, c.severity), (Rule::UnknownCall, Severity::High));
        let c = call(Callee::Global(&g("builtins", "eval")), "calls", "()", None);
        assert_eq!(
            (c.rule, c.severity),
            (Rule::DangerousCall, Severity::Critical)
        );
        let c = call(Callee::Computed("x"), "calls", "()", None);
        assert_eq!(c.severity, Severity::High);
    }

    #[test]
    fn instantiation_is_medium_unless_dangerous() {
        assert_eq!(instantiation(&g("mypkg", "C")).severity, Severity::Medium);
        assert_eq!(instantiation(&g("os", "C")).severity, Severity::High);
        assert_eq!(restore(None, "BUILD").severity, Severity::High);
    }
}
