//! Strict parsing of `hf://org/name[@rev]` sources, by Hugging Face's own naming rules.

use super::*;

/// Why a source string is not a usable `hf://org/name[@rev]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    Empty,
    TooLong {
        bytes: usize,
    },
    ControlCharacter {
        ch: char,
    },
    /// Bidirectional controls can make a name display as a different one, so they are refused
    /// outright instead of being compared.
    BidiControl {
        ch: char,
    },
    Whitespace {
        ch: char,
    },
    UnsupportedScheme {
        scheme: String,
    },
    MultipleAt,
    NotOrgAndName {
        segments: usize,
    },
    EmptyPart {
        part: Part,
    },
    PartTooLong {
        part: Part,
        chars: usize,
    },
    InvalidCharacter {
        part: Part,
        ch: char,
    },
    InvalidName {
        part: Part,
        reason: &'static str,
    },
    EmptyRevision,
    InvalidRevision {
        reason: String,
    },
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::Empty => f.write_str("the source is empty"),
            SourceError::TooLong { bytes } => {
                write!(
                    f,
                    "the source is {bytes} bytes long (at most {MAX_SOURCE_BYTES})"
                )
            }
            SourceError::ControlCharacter { ch } => {
                write!(
                    f,
                    "the source contains the control character {}",
                    CharName(*ch)
                )
            }
            SourceError::BidiControl { ch } => write!(
                f,
                "the source contains the bidirectional control {}, which can make it display as \
                 a different name",
                CharName(*ch)
            ),
            SourceError::Whitespace { ch } => {
                write!(f, "the source contains whitespace ({})", CharName(*ch))
            }
            SourceError::UnsupportedScheme { scheme } => write!(
                f,
                "unsupported scheme {}: expected hf://org/name[@revision] or org/name[@revision]",
                Escaped(scheme)
            ),
            SourceError::MultipleAt => {
                f.write_str("the source has more than one '@' (only org/name@revision is allowed)")
            }
            SourceError::NotOrgAndName { segments } => write!(
                f,
                "expected org/name, got {segments} '/'-separated part{} (a model id names its \
                 organisation or user, e.g. openai-community/gpt2)",
                if *segments == 1 { "" } else { "s" }
            ),
            SourceError::EmptyPart { part } => write!(f, "the {part} is empty"),
            SourceError::PartTooLong { part, chars } => write!(
                f,
                "the {part} is {chars} characters long (Hugging Face allows {MAX_NAME_CHARS})"
            ),
            SourceError::InvalidCharacter { part, ch } => write!(
                f,
                "the {part} contains {}; Hugging Face names use letters, digits, '-', '_' and '.'",
                CharName(*ch)
            ),
            SourceError::InvalidName { part, reason } => write!(f, "the {part} {reason}"),
            SourceError::EmptyRevision => f.write_str("the revision after '@' is empty"),
            SourceError::InvalidRevision { reason } => write!(f, "invalid revision: {reason}"),
        }
    }
}

impl std::error::Error for SourceError {}

/// A validated `org/name[@revision]`.
///
/// The fields are private so that every value went through [`SourceRef::parse`], which bounds
/// the work a check can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    org: String,
    name: String,
    revision: Option<String>,
}

impl SourceRef {
    /// Parses `hf://org/name[@revision]` or `org/name[@revision]`.
    ///
    /// ASCII is held to Hugging Face's naming rules. Other characters are let through on
    /// purpose: Hugging Face would never serve them, so their only use is to make a name look
    /// like another, and [`LookalikeIndex::check`] is what reports that.
    pub fn parse(source: &str) -> Result<Self, SourceError> {
        if source.is_empty() {
            return Err(SourceError::Empty);
        }
        if source.len() > MAX_SOURCE_BYTES {
            return Err(SourceError::TooLong {
                bytes: source.len(),
            });
        }
        for ch in source.chars() {
            if ch.is_control() {
                return Err(SourceError::ControlCharacter { ch });
            }
            if is_bidi_control(ch) {
                return Err(SourceError::BidiControl { ch });
            }
            if ch.is_whitespace() {
                return Err(SourceError::Whitespace { ch });
            }
        }
        // Only a URI-scheme-shaped prefix counts, so a `://` inside the revision is reported as
        // a bad revision rather than as an odd scheme.
        let scheme_at = source.find("://").filter(|&at| {
            at > 0
                && source[..at]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        });
        let rest = match scheme_at {
            Some(at) if source[..at].eq_ignore_ascii_case("hf") => &source[at + 3..],
            Some(at) => {
                return Err(SourceError::UnsupportedScheme {
                    scheme: source[..at].to_string(),
                })
            }
            None => source,
        };
        let (repo, revision) = match rest.split_once('@') {
            None => (rest, None),
            Some((_, rev)) if rev.contains('@') => return Err(SourceError::MultipleAt),
            Some((repo, rev)) => (repo, Some(rev)),
        };
        let (org, name) = match repo.split_once('/') {
            Some((org, name)) if !name.contains('/') => (org, name),
            _ => {
                return Err(SourceError::NotOrgAndName {
                    segments: repo.split('/').count(),
                })
            }
        };
        check_name(Part::Organisation, org)?;
        check_name(Part::Repository, name)?;
        if let Some(rev) = revision {
            check_revision(rev)?;
        }
        Ok(SourceRef {
            org: org.to_string(),
            name: name.to_string(),
            revision: revision.map(str::to_string),
        })
    }

    pub fn org(&self) -> &str {
        &self.org
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn revision(&self) -> Option<&str> {
        self.revision.as_deref()
    }
}

impl fmt::Display for SourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hf://{}/{}", Unquoted(&self.org), Unquoted(&self.name))?;
        if let Some(rev) = &self.revision {
            write!(f, "@{rev}")?;
        }
        Ok(())
    }
}

pub(super) fn check_name(part: Part, name: &str) -> Result<(), SourceError> {
    if !name.chars().any(|c| matches!(glyph(c), Glyph::Visible(_))) {
        return Err(SourceError::EmptyPart { part });
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(SourceError::PartTooLong { part, chars });
    }
    if let Some(ch) = name.chars().find(|&c| c.is_ascii() && !is_name_ascii(c)) {
        return Err(SourceError::InvalidCharacter { part, ch });
    }
    // Hugging Face's repo-id rules for the ASCII separators; a name breaking them cannot exist.
    let edge = |c: Option<char>| matches!(c, Some('-' | '.'));
    if edge(name.chars().next()) || edge(name.chars().next_back()) {
        return Err(SourceError::InvalidName {
            part,
            reason: "starts or ends with '-' or '.'",
        });
    }
    if name.contains("--") || name.contains("..") {
        return Err(SourceError::InvalidName {
            part,
            reason: "contains '--' or '..'",
        });
    }
    // Bytes, not `str` slicing: the last four bytes may split a multi-byte character.
    if name.len() >= 4 && name.as_bytes()[name.len() - 4..].eq_ignore_ascii_case(b".git") {
        return Err(SourceError::InvalidName {
            part,
            reason: "ends with '.git'",
        });
    }
    Ok(())
}

pub(super) fn check_revision(rev: &str) -> Result<(), SourceError> {
    if rev.is_empty() {
        return Err(SourceError::EmptyRevision);
    }
    if rev.len() > MAX_REVISION_BYTES {
        return Err(SourceError::InvalidRevision {
            reason: format!("{} bytes long (at most {MAX_REVISION_BYTES})", rev.len()),
        });
    }
    if let Some(ch) = rev
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '+')))
    {
        return Err(SourceError::InvalidRevision {
            reason: format!(
                "{} is not allowed (use a branch, tag or commit hash)",
                CharName(ch)
            ),
        });
    }
    // The subset of git's ref-name rules that keeps a revision from escaping a path or
    // reaching a different ref.
    if rev.starts_with(['/', '.'])
        || rev.ends_with(['/', '.'])
        || rev.contains("//")
        || rev.contains("..")
        || rev.contains("/.")
        || rev.ends_with(".lock")
    {
        return Err(SourceError::InvalidRevision {
            reason: format!("{} is not a valid git reference", Escaped(rev)),
        });
    }
    Ok(())
}

pub(super) fn is_name_ascii(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}
