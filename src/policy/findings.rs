//! Findings: what the allowlist machine saw that a real loader would have executed or trusted.
//! Rule ids are stable (documented in the README) so CI suppressions survive upgrades.

use crate::error::Location;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        })
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            other => return Err(format!("unknown severity `{other}`")),
        })
    }
}

/// The stable rule ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Rule {
    /// A known code-execution / file / network / import / nested-loader callable is invoked.
    #[serde(rename = "MG001")]
    DangerousCall,
    /// A known dangerous callable is referenced (GLOBAL) even if not invoked.
    #[serde(rename = "MG002")]
    DangerousGlobal,
    /// Any other non-allowlisted callable is invoked (REDUCE, INST, OBJ).
    #[serde(rename = "MG003")]
    UnknownCall,
    /// A non-allowlisted class is instantiated without calling it (NEWOBJ): `cls.__new__` + state.
    #[serde(rename = "MG004")]
    UnknownClass,
    /// A non-allowlisted global is referenced but never invoked.
    #[serde(rename = "MG005")]
    UnknownGlobal,
    /// BUILD on a module, function or class: overwrites attributes of live code.
    #[serde(rename = "MG006")]
    BuildOnGlobal,
    /// Dotted name in GLOBAL/STACK_GLOBAL: attribute traversal (`pathlib` + `os.system`).
    #[serde(rename = "MG007")]
    DottedGlobal,
    /// EXT1/EXT2/EXT4: the copyreg extension registry decides what runs.
    #[serde(rename = "MG008")]
    ExtensionOpcode,
    /// FRAME lengths that disagree with the opcodes inside (parser-differential evasion).
    #[serde(rename = "MG009")]
    FrameInconsistency,
    /// The stream breaks after calls ran: a real loader executed them before failing.
    #[serde(rename = "MG010")]
    BrokenAfterCalls,
    /// Bytes after the final STOP.
    #[serde(rename = "MG011")]
    TrailingBytes,
    /// A persistent id where no loader defines one (plain pickle).
    #[serde(rename = "MG012")]
    UnexpectedPersistentId,
    /// Container differential (duplicate member, name mismatch, CRC, junk...).
    #[serde(rename = "MG013")]
    ContainerAnomaly,
    /// A pickle nested in bytes (`_load_from_bytes`, object arrays) — its findings follow.
    #[serde(rename = "MG014")]
    NestedPickle,
    /// Whole-module pickle (`torch.save(model)`): class references that torch would import.
    #[serde(rename = "MG015")]
    ModulePickle,
    /// Content type disagrees with the file name (a pickle named `.safetensors`).
    #[serde(rename = "MG016")]
    ExtensionMismatch,
    /// TorchScript code present (`code/` members): runs if loaded with torch.jit.load.
    #[serde(rename = "MG017")]
    TorchScriptCode,
    /// Parsing the file made the jailed worker break its seccomp policy (SIGSYS).
    #[serde(rename = "MG018")]
    SandboxViolation,
    /// A safetensors file the strict validator rejects (hostile or broken header).
    #[serde(rename = "MG019")]
    MalformedSafetensors,
    #[serde(rename = "MG020")]
    LookalikeSource,
    /// An instance lookup the loader makes (`__setstate__` on BUILD, `extend`/`append` on
    /// APPENDS, `add` on ADDITEMS, joblib's `read`) may find a value the pickle planted.
    #[serde(rename = "MG021")]
    PlantedCall,
    /// The loader would change a tensor's storage, data, dtype or type after rebuilding it
    /// (BUILD on a tensor, `_set_obj_state` with a tensor attribute, an unmodelled subclass).
    #[serde(rename = "MG022")]
    TensorStateChange,
    /// The C unpickler (pickle.load, torch.load) and the pure-Python one (joblib) disagree: one
    /// raises where the other goes on. modelguard reads on, as the lenient one does.
    #[serde(rename = "MG023")]
    LoaderDifferential,
}

impl Rule {
    pub fn id(self) -> &'static str {
        match self {
            Rule::DangerousCall => "MG001",
            Rule::DangerousGlobal => "MG002",
            Rule::UnknownCall => "MG003",
            Rule::UnknownClass => "MG004",
            Rule::UnknownGlobal => "MG005",
            Rule::BuildOnGlobal => "MG006",
            Rule::DottedGlobal => "MG007",
            Rule::ExtensionOpcode => "MG008",
            Rule::FrameInconsistency => "MG009",
            Rule::BrokenAfterCalls => "MG010",
            Rule::TrailingBytes => "MG011",
            Rule::UnexpectedPersistentId => "MG012",
            Rule::ContainerAnomaly => "MG013",
            Rule::NestedPickle => "MG014",
            Rule::ModulePickle => "MG015",
            Rule::ExtensionMismatch => "MG016",
            Rule::TorchScriptCode => "MG017",
            Rule::SandboxViolation => "MG018",
            Rule::MalformedSafetensors => "MG019",
            Rule::LookalikeSource => "MG020",
            Rule::PlantedCall => "MG021",
            Rule::TensorStateChange => "MG022",
            Rule::LoaderDifferential => "MG023",
        }
    }

    pub const ALL: [Rule; 23] = [
        Rule::DangerousCall,
        Rule::DangerousGlobal,
        Rule::UnknownCall,
        Rule::UnknownClass,
        Rule::UnknownGlobal,
        Rule::BuildOnGlobal,
        Rule::DottedGlobal,
        Rule::ExtensionOpcode,
        Rule::FrameInconsistency,
        Rule::BrokenAfterCalls,
        Rule::TrailingBytes,
        Rule::UnexpectedPersistentId,
        Rule::ContainerAnomaly,
        Rule::NestedPickle,
        Rule::ModulePickle,
        Rule::ExtensionMismatch,
        Rule::TorchScriptCode,
        Rule::SandboxViolation,
        Rule::MalformedSafetensors,
        Rule::LookalikeSource,
        Rule::PlantedCall,
        Rule::TensorStateChange,
        Rule::LoaderDifferential,
    ];

    /// The severity this rule's findings usually carry (SARIF's rule-level rank, the README's
    /// rules table); a finding's own severity is what its grade says.
    pub fn typical_severity(self) -> Severity {
        match self {
            Rule::DangerousCall | Rule::SandboxViolation => Severity::Critical,
            Rule::DangerousGlobal
            | Rule::UnknownCall
            | Rule::BuildOnGlobal
            | Rule::DottedGlobal
            | Rule::ExtensionOpcode
            | Rule::FrameInconsistency
            | Rule::BrokenAfterCalls
            | Rule::MalformedSafetensors
            | Rule::LookalikeSource
            | Rule::PlantedCall
            | Rule::TensorStateChange
            | Rule::NestedPickle => Severity::High,
            Rule::UnknownClass
            | Rule::UnknownGlobal
            | Rule::UnexpectedPersistentId
            | Rule::ContainerAnomaly
            | Rule::ModulePickle
            | Rule::LoaderDifferential
            | Rule::ExtensionMismatch => Severity::Medium,
            Rule::TrailingBytes => Severity::Low,
            Rule::TorchScriptCode => Severity::Info,
        }
    }

    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.iter().copied().find(|r| r.id() == id)
    }

    /// A short name and a one-sentence description (SARIF rule metadata, `--help` tables).
    pub fn describe(self) -> (&'static str, &'static str) {
        match self {
            Rule::DangerousCall => ("dangerous-call", "The pickle calls a known code-execution, file, network, import or nested-loader callable when loaded."),
            Rule::DangerousGlobal => ("dangerous-global", "The pickle references a known dangerous callable, even if it does not call it."),
            Rule::UnknownCall => ("unknown-call", "The pickle calls something of its choosing that the registry does not model for these arguments (REDUCE, INST, OBJ, NEWOBJ with arguments, a computed callable)."),
            Rule::UnknownClass => ("unknown-class", "The pickle instantiates a class outside the registry without arguments and restores it: the class's own __new__, __setstate__ and container methods run with the pickle's data."),
            Rule::UnknownGlobal => ("unknown-global", "The pickle references a name outside the registry: importing its module runs the module's top level."),
            Rule::BuildOnGlobal => ("build-on-global", "BUILD sets state on a global object (a module or class) instead of a fresh instance."),
            Rule::DottedGlobal => ("dotted-global", "A global name with dots walks attributes at load time (getattr gadget)."),
            Rule::ExtensionOpcode => ("extension-opcode", "EXT opcodes resolve globals through the copyreg registry, invisible to name-based scanners."),
            Rule::FrameInconsistency => ("frame-inconsistency", "FRAME lengths disagree with the opcodes they contain (a parser differential)."),
            Rule::BrokenAfterCalls => ("broken-after-calls", "The stream breaks after calls already ran: a loader executes them before it fails."),
            Rule::TrailingBytes => ("trailing-bytes", "Bytes follow the STOP opcode (another loader or a second pickle may read them)."),
            Rule::UnexpectedPersistentId => ("unexpected-persistent-id", "A persistent id torch's loader would not produce or accept."),
            Rule::ContainerAnomaly => ("container-anomaly", "The archive holds a differential: duplicate members, header mismatches, CRC errors, data outside the records, mixed roots."),
            Rule::NestedPickle => ("nested-pickle", "Bytes a loader reads as another file or pickle (torch.storage._load_from_bytes runs torch.load on them, pickle.loads): read with the same engine; high when they cannot be read."),
            Rule::ModulePickle => ("module-pickle", "A whole torch.nn.Module is pickled: loading it imports and runs its class code."),
            Rule::ExtensionMismatch => ("extension-mismatch", "The content is not what the file extension says (e.g. a pickle named .safetensors)."),
            Rule::TorchScriptCode => ("torchscript-code", "TorchScript source is present (info); operators that touch files, other models, the network or memory out of bounds are high when torch.jit.load runs them (__setstate__, parameter defaults, class constants) and medium when only calling the model does."),
            Rule::SandboxViolation => ("sandbox-violation", "Parsing the file made the jailed worker attempt a forbidden system call."),
            Rule::MalformedSafetensors => ("malformed-safetensors", "A safetensors file whose header the strict validator rejects (hostile lengths, offsets, shapes, dtypes, keys)."),
            Rule::PlantedCall => ("planted-call", "The loader looks up a method on an instance (BUILD's __setstate__, APPENDS' extend, ADDITEMS' add) where the pickle may have planted a callable of its choosing, or BUILD's slot state runs setattr, so an unregistered class's own __setattr__ and descriptors run with the pickle's values."),
            Rule::LoaderDifferential => ("loader-differential", "The C unpickler (pickle.load, torch.load) and the pure-Python one (joblib) disagree on this stream: one raises where the other goes on."),
            Rule::TensorStateChange => ("tensor-state-change", "The loader would change a tensor's data, dtype, storage or type after rebuilding it; modelguard refuses rather than write different weights."),
            Rule::LookalikeSource => ("lookalike-source", "The model's source names an organisation or repository that imitates a well-known one (homoglyphs, digit/letter swaps, dropped or swapped letters), as in PoisonGPT."),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    pub message: String,
    /// The global involved, `module.name`, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<String>,
    pub location: Location,
}

/// Collects findings, merging repeats of the same rule on the same subject (a pickle that
/// instantiates one class 10,000 times is one finding, located at its first occurrence).
#[derive(Debug, Default, Clone)]
pub struct Findings {
    items: Vec<Finding>,
    /// (rule, member, global or message) of every kept finding: a pickle with a million
    /// distinct globals must not make each push scan all earlier findings.
    seen: std::collections::HashSet<(Rule, Option<String>, String)>,
}

impl Findings {
    pub fn push(&mut self, f: Finding) {
        let subject = match &f.global {
            Some(g) => format!("g:{g}"),
            None => format!("m:{}", f.message),
        };
        if self
            .seen
            .insert((f.rule, f.location.member.clone(), subject))
        {
            self.items.push(f);
        }
    }

    pub fn extend(&mut self, other: impl IntoIterator<Item = Finding>) {
        for f in other {
            self.push(f);
        }
    }

    pub fn max_severity(&self) -> Option<Severity> {
        self.items.iter().map(|f| f.severity).max()
    }

    pub fn items(&self) -> &[Finding] {
        &self.items
    }

    pub fn into_vec(self) -> Vec<Finding> {
        self.items
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether any call that is not an interpreted allowlisted one was seen (a real loader ran it).
    pub fn any_call(&self) -> bool {
        self.items.iter().any(|f| {
            matches!(
                f.rule,
                Rule::DangerousCall
                    | Rule::UnknownCall
                    | Rule::UnknownClass
                    | Rule::BuildOnGlobal
                    | Rule::PlantedCall
            )
        })
    }
}
