//! Which isolation layers a worker ran under, as the worker reports them and `doctor` prints.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "detail", rename_all = "kebab-case")]
pub enum LayerStatus {
    Enforced(String),
    /// Part of the layer (e.g. namespaces without a user namespace, an older Landlock ABI).
    Partial(String),
    /// The kernel does not offer it.
    Unavailable(String),
    #[default]
    NotAttempted,
}

impl LayerStatus {
    pub fn is_enforced(&self) -> bool {
        matches!(self, LayerStatus::Enforced(_))
    }

    pub fn label(&self) -> &'static str {
        match self {
            LayerStatus::Enforced(_) => "enforced",
            LayerStatus::Partial(_) => "partial",
            LayerStatus::Unavailable(_) => "unavailable",
            LayerStatus::NotAttempted => "not attempted",
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            LayerStatus::Enforced(d) | LayerStatus::Partial(d) | LayerStatus::Unavailable(d) => d,
            LayerStatus::NotAttempted => "",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layers {
    pub namespaces: LayerStatus,
    pub rlimits: LayerStatus,
    pub landlock: LayerStatus,
    pub seccomp: LayerStatus,
}

impl Layers {
    pub fn all(&self) -> [(&'static str, &LayerStatus); 4] {
        [
            ("namespaces", &self.namespaces),
            ("rlimits", &self.rlimits),
            ("landlock", &self.landlock),
            ("seccomp", &self.seccomp),
        ]
    }

    /// Layers that are not fully enforced, by name.
    pub fn missing(&self) -> Vec<&'static str> {
        self.all()
            .iter()
            .filter(|(_, s)| !s.is_enforced())
            .map(|(n, _)| *n)
            .collect()
    }
}
