//! One error type for the engine. Every hostile-input failure maps to a variant that says
//! *what* was wrong and *where*, so the CLI can print it and exit 2 without guessing.

use std::fmt;

/// Where in the input an error or finding happened.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Location {
    /// Container member (zip record name, tar member, "pickle #4" of a legacy stream), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// Byte offset inside the member (or file, when there is no member).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Pickle opcode name, when the location is inside a pickle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opcode: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(m) = &self.member {
            parts.push(format!("member {m}"));
        }
        if let Some(o) = self.offset {
            parts.push(format!("offset {o}"));
        }
        if let Some(op) = &self.opcode {
            parts.push(format!("opcode {op}"));
        }
        write!(f, "{}", parts.join(", "))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not well formed (truncated, inconsistent, bad opcode, bad view...).
    #[error("malformed input: {msg}{}", at(.loc))]
    Malformed { msg: String, loc: Location },
    /// A configured resource limit was reached; `limit` is the option name that raises it.
    #[error("limit `{limit}` exceeded: {msg}{}", at(.loc))]
    Limit {
        limit: &'static str,
        msg: String,
        loc: Location,
    },
    /// Well-formed, but holds something safetensors cannot represent (quantized, sparse...).
    #[error("unsupported: {msg}")]
    Unsupported { msg: String },
    /// The input is not any format we know.
    #[error("unrecognised input: {0}")]
    UnknownFormat(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

fn at(loc: &Location) -> String {
    let s = loc.to_string();
    if s.is_empty() {
        s
    } else {
        format!(" (at {s})")
    }
}

impl Error {
    pub fn malformed(msg: impl Into<String>) -> Self {
        Error::Malformed {
            msg: msg.into(),
            loc: Location::default(),
        }
    }
    pub fn limit(limit: &'static str, msg: impl Into<String>) -> Self {
        Error::Limit {
            limit,
            msg: msg.into(),
            loc: Location::default(),
        }
    }
    pub fn unsupported(msg: impl Into<String>) -> Self {
        Error::Unsupported { msg: msg.into() }
    }
    /// Attach a location to an error that has none yet (inner layers know less than outer ones).
    pub fn at_member(mut self, member: &str) -> Self {
        if let Error::Malformed { loc, .. } | Error::Limit { loc, .. } = &mut self {
            if loc.member.is_none() {
                loc.member = Some(member.to_string());
            }
        }
        self
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
