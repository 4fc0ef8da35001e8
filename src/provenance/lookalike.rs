//! Flags Hugging Face sources (`hf://org/name[@rev]`) whose organisation or repository name
//! imitates a well-known one, as PoisonGPT did with `EleuterAI/gpt-j-6B` posing as
//! `EleutherAI/gpt-j-6B`.
//!
//! Every name is reduced to a *skeleton* with one character per visible character: ASCII is
//! lowercased, letters from other scripts that are drawn like Latin ones (Cyrillic `а`, Greek
//! `ο`, fullwidth `ｍ`, ...) become that Latin letter, and characters that are easy to misread
//! for each other in ASCII collapse onto one prototype (`0`→`o`, `1`/`I`/`i`→`l`, `3`→`e`,
//! `5`→`s`). Skeletons are compared with an optimal-string-alignment Damerau–Levenshtein
//! distance in which the multi-letter look-alikes `rn`/`m`, `vv`/`w` and `cl`/`d` cost nothing.
//! A name that differs from a well-known one but is within [`max_edits`] of it is reported,
//! together with the tricks that explain the difference.
//!
//! Repository names are only compared for look-alike characters (distance 0), because real
//! repositories differ from each other by single edits all the time.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::sync::OnceLock;

/// Hugging Face caps organisation and repository names at 96 characters.
pub const MAX_NAME_CHARS: usize = 96;
/// Git refuses longer reference names on common file systems; Hugging Face revisions are refs
/// or commit hashes.
pub const MAX_REVISION_BYTES: usize = 255;
/// Checked before anything else so a hostile source costs no more than this to reject.
pub const MAX_SOURCE_BYTES: usize = 2048;

/// The bundled list, also what [`LookalikeIndex::builtin`] parses.
pub const BUILTIN_LIST: &str = include_str!("well_known_orgs.txt");

/// Which half of `org/name` a finding or error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    Organisation,
    Repository,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Organisation => "organisation",
            Part::Repository => "repository name",
        })
    }
}

/// How a look-alike name differs from the name it imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Trick {
    /// A character from another script or a styled form (Cyrillic `а`, Greek `ο`, fullwidth
    /// `ｍ`, an added accent) in place of the Latin one.
    Homoglyph,
    /// An invisible character (zero-width space, variation selector, soft hyphen, ...).
    HiddenCharacter,
    /// A digit in place of the letter it resembles, or the reverse (`0`/`o`, `1`/`l`, `3`/`e`,
    /// `5`/`s`).
    DigitLetterSwap,
    /// ASCII letters that render alike: `I`/`l`/`i`, `rn`/`m`, `vv`/`w`, `cl`/`d`.
    LookalikeLetters,
    /// Two adjacent characters swapped.
    Transposition,
    /// A character (letter, digit or separator) of the real name is missing.
    DroppedLetter,
    /// A character the real name does not have.
    ExtraLetter,
    /// One character replaced by an unrelated one.
    Substitution,
}

impl Trick {
    /// A stable identifier for machine-readable output.
    pub fn as_str(self) -> &'static str {
        match self {
            Trick::Homoglyph => "homoglyph",
            Trick::HiddenCharacter => "hidden-character",
            Trick::DigitLetterSwap => "digit-letter-swap",
            Trick::LookalikeLetters => "lookalike-letters",
            Trick::Transposition => "transposition",
            Trick::DroppedLetter => "dropped-letter",
            Trick::ExtraLetter => "extra-letter",
            Trick::Substitution => "substitution",
        }
    }
}

impl fmt::Display for Trick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Trick::Homoglyph => "homoglyph",
            Trick::HiddenCharacter => "hidden character",
            Trick::DigitLetterSwap => "digit/letter swap",
            Trick::LookalikeLetters => "look-alike letters",
            Trick::Transposition => "transposed letters",
            Trick::DroppedLetter => "dropped letter",
            Trick::ExtraLetter => "extra letter",
            Trick::Substitution => "substituted letter",
        })
    }
}

/// A name that imitates a well-known one.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookalike {
    pub part: Part,
    /// The suspicious name exactly as given.
    pub found: String,
    /// The well-known name it resembles, spelled as in the list.
    pub imitates: String,
    /// Never empty; sorted and without repeats.
    pub tricks: Vec<Trick>,
    /// Edits between the skeletons; look-alike characters cost nothing, so a pure homoglyph or
    /// digit swap has distance 0.
    pub distance: usize,
    /// `distance` divided by the longer skeleton's length, in `0.0..=1.0`.
    pub normalized_distance: f64,
}

impl fmt::Display for Lookalike {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the {} {} looks like the well-known {} (",
            self.part,
            Escaped(&self.found),
            Escaped(&self.imitates)
        )?;
        for (n, trick) in self.tricks.iter().enumerate() {
            if n > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{trick}")?;
        }
        f.write_str(")")
    }
}

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

fn check_name(part: Part, name: &str) -> Result<(), SourceError> {
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

fn check_revision(rev: &str) -> Result<(), SourceError> {
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

fn is_name_ascii(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// A malformed line of the well-known list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "well-known name list, line {}: {}",
            self.line, self.message
        )
    }
}

impl std::error::Error for DataError {}

/// The well-known names, ready to compare against.
#[derive(Debug, Clone)]
pub struct LookalikeIndex {
    orgs: Vec<Known>,
    repos: Vec<Known>,
}

#[derive(Debug, Clone)]
struct Known {
    name: String,
    spelling: Spelling,
}

impl LookalikeIndex {
    /// Parses the list format of `well_known_orgs.txt`: `[orgs]` and `[repos]` sections, one
    /// name per line, `#` comments.
    pub fn parse(text: &str) -> Result<Self, DataError> {
        let mut index = LookalikeIndex {
            orgs: Vec::new(),
            repos: Vec::new(),
        };
        let mut section = None;
        let mut seen: [HashSet<String>; 2] = [HashSet::new(), HashSet::new()];
        for (n, line) in text.lines().enumerate() {
            let error = |message: String| DataError {
                line: n + 1,
                message,
            };
            let line = line.split_once('#').map_or(line, |(kept, _)| kept).trim();
            if line.is_empty() {
                continue;
            }
            if line.starts_with('[') {
                section = Some(match line {
                    "[orgs]" => Part::Organisation,
                    "[repos]" => Part::Repository,
                    _ => {
                        return Err(error(format!(
                            "unknown section {line} (expected [orgs] or [repos])"
                        )))
                    }
                });
                continue;
            }
            let Some(part) = section else {
                return Err(error("a name before the first [orgs] or [repos]".into()));
            };
            // A well-known name must be one Hugging Face can serve, or it would anchor
            // comparisons to something no attacker needs to imitate.
            if !line.is_ascii() {
                return Err(error(format!("{} is not ASCII", Escaped(line))));
            }
            check_name(part, line).map_err(|e| error(e.to_string()))?;
            let slot = match part {
                Part::Organisation => 0,
                Part::Repository => 1,
            };
            if !seen[slot].insert(line.to_ascii_lowercase()) {
                return Err(error(format!("{line} is listed twice")));
            }
            let known = Known {
                name: line.to_string(),
                spelling: Spelling::of(line),
            };
            match part {
                Part::Organisation => index.orgs.push(known),
                Part::Repository => index.repos.push(known),
            }
        }
        Ok(index)
    }

    /// The bundled list ([`BUILTIN_LIST`]), parsed once.
    pub fn builtin() -> &'static LookalikeIndex {
        static INDEX: OnceLock<LookalikeIndex> = OnceLock::new();
        INDEX.get_or_init(|| {
            LookalikeIndex::parse(BUILTIN_LIST).expect("the unit tests parse the bundled list")
        })
    }

    pub fn orgs(&self) -> impl Iterator<Item = &str> {
        self.orgs.iter().map(|k| k.name.as_str())
    }

    pub fn repos(&self) -> impl Iterator<Item = &str> {
        self.repos.iter().map(|k| k.name.as_str())
    }

    /// Parses `source` strictly and checks it; `Ok(None)` means nothing looks imitated.
    pub fn check_source(&self, source: &str) -> Result<Option<Lookalike>, SourceError> {
        Ok(self.check(&SourceRef::parse(source)?))
    }

    /// The organisation is checked first: once it is genuine, a look-alike repository name
    /// can only be a typo, but an imitated organisation is the attack itself.
    pub fn check(&self, source: &SourceRef) -> Option<Lookalike> {
        nearest(Part::Organisation, &source.org, &self.orgs)
            .or_else(|| nearest(Part::Repository, &source.name, &self.repos))
    }
}

/// How many edits (beyond free look-alike characters) a name may be from a well-known name of
/// `len` characters and still count as imitating it.
///
/// Up to 4 characters, any edit lands on other real names (`Qwen` → `Owen`), so there only a
/// swap of two adjacent characters is tolerated on top of this. Up to 8, one edit. Longer names
/// have few real neighbours, and two edits still read as the same word.
pub fn max_edits(len: usize) -> usize {
    match len {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    }
}

fn accepts(part: Part, known_len: usize, distance: usize, ops: impl FnOnce() -> Vec<Op>) -> bool {
    match part {
        // Repository families differ by single edits (`-chat`, `-cased`/`-uncased`), so only
        // look-alike characters are evidence of imitation there.
        Part::Repository => distance == 0,
        Part::Organisation => {
            distance <= max_edits(known_len)
                || (known_len <= 4
                    && distance == 1
                    && ops()
                        .iter()
                        .filter(|op| {
                            !matches!(op, Op::Same { .. } | Op::Merge { .. } | Op::Split { .. })
                        })
                        .all(|op| matches!(op, Op::Swap { .. })))
        }
    }
}

fn nearest(part: Part, name: &str, list: &[Known]) -> Option<Lookalike> {
    // Hugging Face resolves names ASCII case-insensitively, so `eleutherai` is EleutherAI.
    if list.iter().any(|k| k.name.eq_ignore_ascii_case(name)) {
        return None;
    }
    // Names that went through `SourceRef::parse` are short; this only guards direct callers.
    if name.chars().count() > MAX_NAME_CHARS {
        return None;
    }
    let probe = Spelling::of(name);
    let mut table = Table::default();
    let mut best: Option<(usize, usize)> = None;
    for (idx, known) in list.iter().enumerate() {
        let Some(d) = compare(part, &probe, known, &mut table) else {
            continue;
        };
        if best.is_none_or(|(best_d, _)| d < best_d) {
            best = Some((d, idx));
        }
    }
    let (distance, idx) = best?;
    let known = &list[idx];
    table.fill(&probe.skel, &known.spelling.skel);
    let tricks = tricks(
        &probe,
        &known.spelling,
        &table.ops(&probe.skel, &known.spelling.skel),
    );
    if tricks.is_empty() {
        return None;
    }
    let longest = probe.skel.len().max(known.spelling.skel.len()).max(1);
    Some(Lookalike {
        part,
        found: name.to_string(),
        imitates: known.name.clone(),
        tricks,
        distance,
        normalized_distance: distance as f64 / longest as f64,
    })
}

/// The distance from `probe` to `known` if it is close enough to count as an imitation.
fn compare(part: Part, probe: &Spelling, known: &Known, table: &mut Table) -> Option<usize> {
    let (n, m) = (probe.skel.len(), known.spelling.skel.len());
    let limit = match part {
        Part::Repository => 0,
        // Short names still admit one swap, which `accepts` checks against the alignment.
        Part::Organisation => max_edits(known.spelling.raw.len()).max(1),
    };
    // A free look-alike pair turns at most two characters into one, so lengths further apart
    // than this cannot be within `limit`.
    if n > 2 * m + limit || m > 2 * n + limit {
        return None;
    }
    let d = usize::from(table.fill(&probe.skel, &known.spelling.skel));
    let known_len = known.spelling.raw.len();
    accepts(part, known_len, d, || {
        table.ops(&probe.skel, &known.spelling.skel)
    })
    .then_some(d)
}

// ---- spelling and skeleton -------------------------------------------------------------------

/// A name's visible characters, their ASCII-lowercase form and their skeleton, index-aligned.
#[derive(Debug, Clone, Default)]
struct Spelling {
    raw: Vec<char>,
    fold: Vec<char>,
    skel: Vec<char>,
    hidden: bool,
    diacritic: bool,
}

impl Spelling {
    fn of(name: &str) -> Self {
        let mut s = Spelling::default();
        for c in name.chars() {
            match glyph(c) {
                Glyph::Visible(k) => {
                    s.raw.push(c);
                    s.fold.push(c.to_ascii_lowercase());
                    s.skel.push(k);
                }
                Glyph::Hidden => s.hidden = true,
                Glyph::Diacritic => s.diacritic = true,
            }
        }
        s
    }
}

enum Glyph {
    Visible(char),
    Hidden,
    /// A combining mark: visible, but it only decorates the letter before it.
    Diacritic,
}

fn glyph(c: char) -> Glyph {
    if c.is_ascii() {
        return Glyph::Visible(fold_ascii(c));
    }
    if is_hidden(c) {
        return Glyph::Hidden;
    }
    if is_combining(c) {
        return Glyph::Diacritic;
    }
    if let Some(p) = prototype(c) {
        return Glyph::Visible(fold_ascii(p));
    }
    // Uppercase forms the table leaves out usually look like their lowercase, which it has.
    let mut lower = c.to_lowercase();
    if let (Some(l), None) = (lower.next(), lower.next()) {
        if l.is_ascii() {
            return Glyph::Visible(fold_ascii(l));
        }
        if let Some(p) = prototype(l) {
            return Glyph::Visible(fold_ascii(p));
        }
        return Glyph::Visible(l);
    }
    Glyph::Visible(c)
}

/// Collapses ASCII characters that are easy to misread for each other onto one prototype.
fn fold_ascii(c: char) -> char {
    match c.to_ascii_lowercase() {
        '0' => 'o',
        '1' | 'i' => 'l',
        '3' => 'e',
        '5' => 's',
        other => other,
    }
}

/// Multi-letter look-alikes, in skeleton form (so `cI` and `c1` also read as `d`). A `match`
/// rather than a table because it runs in every cell of the distance matrix.
fn is_pair(first: char, second: char, single: char) -> bool {
    matches!(
        (first, second, single),
        ('r', 'n', 'm') | ('v', 'v', 'w') | ('c', 'l', 'd')
    )
}

/// Bidirectional formatting characters: they reorder what is displayed.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Characters that render as nothing (or as blank space that is not `White_Space`).
fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200D}'
            | '\u{2060}'..='\u{2064}'
            | '\u{206A}'..='\u{206F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E007F}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

fn is_combining(c: char) -> bool {
    matches!(
        c,
        '\u{0300}'..='\u{036F}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{FE20}'..='\u{FE2F}'
    )
}

/// The ASCII character a non-ASCII one is drawn to look like (a letter, digit, `-`, `_` or
/// `.`), for the confusables worth catching in a model id. Only visual likeness matters: the
/// result feeds [`fold_ascii`], never a transliteration.
fn prototype(c: char) -> Option<char> {
    let cp = u32::from(c);
    // Fullwidth forms are ASCII shifted by a constant.
    if (0xFF01..=0xFF5E).contains(&cp) {
        let ascii = char::from_u32(cp - 0xFEE0)?;
        return is_name_ascii(ascii).then_some(ascii);
    }
    // Mathematical alphanumerics: 13 styles of A–Z a–z back to back (reserved holes included).
    if (0x1D400..=0x1D6A3).contains(&cp) {
        return Some(ascii_letter((cp - 0x1D400) % 52));
    }
    if (0x1D7CE..=0x1D7FF).contains(&cp) {
        return char::from_digit((cp - 0x1D7CE) % 10, 10);
    }
    // Circled letters and digits.
    if (0x24B6..=0x24E9).contains(&cp) {
        return Some(ascii_letter(cp - 0x24B6));
    }
    if (0x2460..=0x2468).contains(&cp) {
        return char::from_digit(cp - 0x2460 + 1, 10);
    }
    Some(match c {
        // Cyrillic
        'а' => 'a',
        'в' | 'ь' => 'b',
        'е' | 'ё' | 'є' => 'e',
        'з' => '3',
        'і' | 'ї' => 'i',
        'ј' => 'j',
        'к' => 'k',
        'м' => 'm',
        'н' => 'h',
        'о' => 'o',
        'п' => 'n',
        'р' => 'p',
        'с' => 'c',
        'т' => 't',
        'у' | 'ү' => 'y',
        'х' => 'x',
        'г' => 'r',
        'ѕ' => 's',
        'һ' => 'h',
        'ԁ' => 'd',
        'ԛ' => 'q',
        'ԝ' | 'ѡ' => 'w',
        'ӏ' | 'Ӏ' => 'l',
        'А' => 'A',
        'В' => 'B',
        'Е' | 'Ё' => 'E',
        'З' => '3',
        'І' | 'Ї' => 'I',
        'Ј' => 'J',
        'К' => 'K',
        'М' => 'M',
        'Н' => 'H',
        'О' => 'O',
        'Р' => 'P',
        'С' => 'C',
        'Т' => 'T',
        'У' | 'Ү' => 'Y',
        'Х' => 'X',
        'Ѕ' => 'S',
        'Ԛ' => 'Q',
        'Ԝ' => 'W',
        // Greek
        'α' | 'ά' => 'a',
        'β' => 'b',
        'γ' => 'y',
        'ε' | 'έ' => 'e',
        'η' | 'ή' => 'n',
        'ι' | 'ί' | 'ϊ' | 'ΐ' => 'i',
        'κ' => 'k',
        'ν' => 'v',
        'ο' | 'ό' => 'o',
        'ρ' => 'p',
        'τ' => 't',
        'υ' | 'ύ' | 'ϋ' => 'u',
        'χ' => 'x',
        'ω' | 'ώ' => 'w',
        'ϲ' => 'c',
        'ϳ' => 'j',
        'Α' | 'Ά' => 'A',
        'Β' => 'B',
        'Ε' | 'Έ' => 'E',
        'Ζ' => 'Z',
        'Η' | 'Ή' => 'H',
        'Ι' | 'Ί' | 'Ϊ' => 'I',
        'Κ' => 'K',
        'Μ' => 'M',
        'Ν' => 'N',
        'Ο' | 'Ό' => 'O',
        'Ρ' => 'P',
        'Τ' => 'T',
        'Υ' | 'Ύ' | 'Ϋ' => 'Y',
        'Χ' => 'X',
        'Ϲ' => 'C',
        'Ϳ' => 'J',
        // Armenian
        'օ' => 'o',
        'ս' => 'u',
        'ո' => 'n',
        'հ' => 'h',
        'զ' => 'q',
        // Latin letters from IPA, small capitals and other blocks
        'ı' | 'ɩ' | 'ɪ' | 'ⁱ' => 'i',
        'ǀ' | 'ℓ' | 'ʟ' | 'ł' | 'ŀ' => 'l',
        'ɑ' | 'ᴀ' => 'a',
        'ʙ' => 'b',
        'ᴄ' => 'c',
        'ᴅ' | 'đ' | 'ď' => 'd',
        'ᴇ' => 'e',
        'ſ' => 'f',
        'ɡ' | 'ɢ' => 'g',
        'ʜ' | 'ħ' => 'h',
        'ᴊ' => 'j',
        'ᴋ' => 'k',
        'ᴍ' => 'm',
        'ɴ' | 'ⁿ' => 'n',
        'ᴏ' | 'ø' => 'o',
        'ᴘ' => 'p',
        'ʀ' => 'r',
        'ꜱ' => 's',
        'ᴛ' => 't',
        'ᴜ' => 'u',
        'ᴠ' => 'v',
        'ᴡ' => 'w',
        'ʏ' => 'y',
        'ᴢ' => 'z',
        'İ' => 'I',
        // Letters with diacritics (uppercase ones reach these through `to_lowercase`)
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => 'c',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => 'e',
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => 'g',
        'ĥ' => 'h',
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' => 'i',
        'ĵ' => 'j',
        'ķ' => 'k',
        'ĺ' | 'ļ' | 'ľ' => 'l',
        'ñ' | 'ń' | 'ņ' | 'ň' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ō' | 'ŏ' | 'ő' => 'o',
        'ŕ' | 'ŗ' | 'ř' => 'r',
        'ś' | 'ŝ' | 'ş' | 'š' => 's',
        'ţ' | 'ť' | 'ŧ' => 't',
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => 'u',
        'ŵ' => 'w',
        'ý' | 'ÿ' | 'ŷ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        // Letterlike symbols and Roman numerals
        'ℎ' => 'h',
        'ℊ' => 'g',
        'ℯ' => 'e',
        'ℴ' => 'o',
        'ℹ' => 'i',
        'ℂ' | 'ℭ' => 'C',
        'ℍ' | 'ℋ' | 'ℌ' => 'H',
        'ℕ' => 'N',
        'ℙ' => 'P',
        'ℚ' => 'Q',
        'ℝ' | 'ℛ' | 'ℜ' => 'R',
        'ℤ' | 'ℨ' => 'Z',
        'ℬ' => 'B',
        'ℰ' => 'E',
        'ℱ' => 'F',
        'ℐ' | 'ℑ' => 'I',
        'ℒ' => 'L',
        'ℳ' => 'M',
        '\u{212A}' => 'K',
        '\u{212B}' => 'A',
        'Ⅰ' => 'I',
        'Ⅴ' => 'V',
        'Ⅹ' => 'X',
        'Ⅼ' => 'L',
        'Ⅽ' => 'C',
        'Ⅾ' => 'D',
        'Ⅿ' => 'M',
        'ⅰ' => 'i',
        'ⅴ' => 'v',
        'ⅹ' => 'x',
        'ⅼ' => 'l',
        'ⅽ' => 'c',
        'ⅾ' => 'd',
        'ⅿ' => 'm',
        // Superscript and subscript digits
        '⁰' | '₀' => '0',
        '¹' | '₁' => '1',
        '²' | '₂' => '2',
        '³' | '₃' => '3',
        '⁴' | '₄' => '4',
        '⁵' | '₅' => '5',
        '⁶' | '₆' => '6',
        '⁷' | '₇' => '7',
        '⁸' | '₈' => '8',
        '⁹' | '₉' => '9',
        // Dashes, dots and low lines
        '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' | '﹣' | '˗' | '⁃' | 'ー' | '一' => {
            '-'
        }
        '․' | '·' => '.',
        'ˍ' => '_',
        _ => return None,
    })
}

fn ascii_letter(k: u32) -> char {
    // `k < 52` at every call site, so the narrowing cannot truncate.
    let k = (k % 52) as u8;
    if k < 26 {
        char::from(b'A' + k)
    } else {
        char::from(b'a' + k - 26)
    }
}

// ---- edit distance ---------------------------------------------------------------------------

/// One step of an alignment of the probe (`i`) against the known name (`j`); indices are into
/// the skeletons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Same {
        i: usize,
        j: usize,
    },
    Sub {
        i: usize,
        j: usize,
    },
    /// The probe has `i`, the known name has nothing there.
    Extra {
        i: usize,
    },
    /// The probe lacks the known name's `j`.
    Dropped {
        j: usize,
    },
    /// Probe `i, i+1` are known `j+1, j`.
    Swap {
        i: usize,
        j: usize,
    },
    /// Probe `i, i+1` read as known `j` (`rn` for `m`).
    Merge {
        i: usize,
        j: usize,
    },
    /// Probe `i` reads as known `j, j+1` (`m` for `rn`).
    Split {
        i: usize,
        j: usize,
    },
}

/// Optimal-string-alignment DP matrix, kept between comparisons to reuse its allocation.
#[derive(Default)]
struct Table {
    cols: usize,
    cells: Vec<u16>,
}

impl Table {
    fn at(&self, i: usize, j: usize) -> u16 {
        self.cells[i * self.cols + j]
    }

    /// Fills the matrix for `a` against `b` and returns their distance. Both are at most
    /// `MAX_NAME_CHARS` long, so a cell fits in `u16`.
    fn fill(&mut self, a: &[char], b: &[char]) -> u16 {
        self.cols = b.len() + 1;
        self.cells.clear();
        self.cells.resize((a.len() + 1) * self.cols, 0);
        for i in 0..=a.len() {
            for j in 0..=b.len() {
                let v = if i == 0 || j == 0 {
                    // Saturating: only reached for lengths far below `u16::MAX`.
                    u16::try_from(i + j).unwrap_or(u16::MAX)
                } else {
                    let mut v = self.at(i - 1, j).saturating_add(1);
                    v = v.min(self.at(i, j - 1).saturating_add(1));
                    v = v.min(self.at(i - 1, j - 1) + u16::from(a[i - 1] != b[j - 1]));
                    if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                        v = v.min(self.at(i - 2, j - 2) + 1);
                    }
                    if i > 1 && is_pair(a[i - 2], a[i - 1], b[j - 1]) {
                        v = v.min(self.at(i - 2, j - 1));
                    }
                    if j > 1 && is_pair(b[j - 2], b[j - 1], a[i - 1]) {
                        v = v.min(self.at(i - 1, j - 2));
                    }
                    v
                };
                self.cells[i * self.cols + j] = v;
            }
        }
        self.at(a.len(), b.len())
    }

    /// One optimal alignment of the last filled pair, preferring the explanation a reader
    /// would give: look-alikes over edits, a swap over two substitutions.
    fn ops(&self, a: &[char], b: &[char]) -> Vec<Op> {
        let mut ops = Vec::new();
        let (mut i, mut j) = (a.len(), b.len());
        while i > 0 || j > 0 {
            let here = self.at(i, j);
            if i > 0 && j > 0 && a[i - 1] == b[j - 1] && self.at(i - 1, j - 1) == here {
                ops.push(Op::Same { i: i - 1, j: j - 1 });
                (i, j) = (i - 1, j - 1);
            } else if i > 1
                && j > 0
                && is_pair(a[i - 2], a[i - 1], b[j - 1])
                && self.at(i - 2, j - 1) == here
            {
                ops.push(Op::Merge { i: i - 2, j: j - 1 });
                (i, j) = (i - 2, j - 1);
            } else if i > 0
                && j > 1
                && is_pair(b[j - 2], b[j - 1], a[i - 1])
                && self.at(i - 1, j - 2) == here
            {
                ops.push(Op::Split { i: i - 1, j: j - 2 });
                (i, j) = (i - 1, j - 2);
            } else if i > 1
                && j > 1
                && a[i - 1] == b[j - 2]
                && a[i - 2] == b[j - 1]
                && self.at(i - 2, j - 2) + 1 == here
            {
                ops.push(Op::Swap { i: i - 2, j: j - 2 });
                (i, j) = (i - 2, j - 2);
            } else if i > 0 && j > 0 && self.at(i - 1, j - 1) + 1 == here {
                ops.push(Op::Sub { i: i - 1, j: j - 1 });
                (i, j) = (i - 1, j - 1);
            } else if j > 0 && self.at(i, j - 1) + 1 == here {
                ops.push(Op::Dropped { j: j - 1 });
                j -= 1;
            } else {
                // The only transition left; `i > 0` here because (0, j) is always reached
                // from (0, j - 1).
                ops.push(Op::Extra { i: i - 1 });
                i -= 1;
            }
        }
        ops.reverse();
        ops
    }
}

/// Names the tricks an alignment of `probe` against `known` uses.
fn tricks(probe: &Spelling, known: &Spelling, ops: &[Op]) -> Vec<Trick> {
    let mut out = BTreeSet::new();
    if probe.hidden {
        out.insert(Trick::HiddenCharacter);
    }
    if probe.diacritic {
        out.insert(Trick::Homoglyph);
    }
    for &op in ops {
        match op {
            Op::Same { i, j } => {
                if probe.fold[i] != known.fold[j] {
                    out.insert(swap_kind(&probe.raw[i..=i], &known.raw[j..=j]));
                }
            }
            Op::Merge { i, j } => {
                out.insert(swap_kind(&probe.raw[i..i + 2], &known.raw[j..=j]));
            }
            Op::Split { i, j } => {
                out.insert(swap_kind(&probe.raw[i..=i], &known.raw[j..j + 2]));
            }
            // A character from another script that the table does not know is still standing
            // in for a Latin one.
            Op::Sub { i, .. } if !probe.raw[i].is_ascii() => {
                out.insert(Trick::Homoglyph);
            }
            Op::Sub { .. } => {
                out.insert(Trick::Substitution);
            }
            Op::Swap { .. } => {
                out.insert(Trick::Transposition);
            }
            Op::Dropped { .. } => {
                out.insert(Trick::DroppedLetter);
            }
            Op::Extra { .. } => {
                out.insert(Trick::ExtraLetter);
            }
        }
    }
    out.into_iter().collect()
}

fn swap_kind(probe: &[char], known: &[char]) -> Trick {
    if probe.iter().any(|c| !c.is_ascii()) {
        Trick::Homoglyph
    } else if probe.iter().chain(known).any(char::is_ascii_digit) {
        Trick::DigitLetterSwap
    } else {
        Trick::LookalikeLetters
    }
}

// ---- display helpers -------------------------------------------------------------------------

/// Quotes a name with everything outside printable ASCII as `\u{...}`, so that a homoglyph or
/// hidden character shows up in the message that reports it.
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", Unquoted(self.0))
    }
}

/// [`Escaped`] without the quotes, for names inside a larger string such as a source.
struct Unquoted<'a>(&'a str);

impl fmt::Display for Unquoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '"' | '\\' => write!(f, "\\{c}")?,
                ' '..='~' => write!(f, "{c}")?,
                _ => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            }
        }
        Ok(())
    }
}

struct CharName(char);

impl fmt::Display for CharName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "'{}'", self.0)
        } else {
            write!(f, "U+{:04X}", u32::from(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> &'static LookalikeIndex {
        LookalikeIndex::builtin()
    }

    fn flag(source: &str) -> Lookalike {
        match index().check_source(source) {
            Ok(Some(found)) => found,
            other => panic!("{source:?} should be flagged, got {other:?}"),
        }
    }

    fn clean(source: &str) {
        match index().check_source(source) {
            Ok(None) => {}
            other => panic!("{source:?} should pass, got {other:?}"),
        }
    }

    fn reject(source: &str) -> SourceError {
        match SourceRef::parse(source) {
            Err(e) => e,
            Ok(ok) => panic!("{source:?} should be rejected, parsed as {ok:?}"),
        }
    }

    /// Every pair of list entries that would count as imitating each other, had one of them
    /// not been on the list. Exact matches come first, so these never produce findings.
    #[test]
    fn collisions() {
        let mut table = Table::default();
        let mut pairs = BTreeSet::new();
        for (list, part) in [
            (&index().orgs, Part::Organisation),
            (&index().repos, Part::Repository),
        ] {
            for a in list.iter() {
                for b in list.iter() {
                    if a.name != b.name && compare(part, &a.spelling, b, &mut table).is_some() {
                        let (x, y) = if a.name < b.name { (a, b) } else { (b, a) };
                        pairs.insert(format!("{} {}", x.name, y.name));
                    }
                }
            }
        }
        let pairs: Vec<_> = pairs.into_iter().collect();
        assert_eq!(pairs, KNOWN_COLLISIONS, "{pairs:#?}");
    }

    const KNOWN_COLLISIONS: &[&str] = &[
        "FacebookAI facebook",
        "HuggingFaceFW HuggingFaceH4",
        "HuggingFaceFW HuggingFaceM4",
        "HuggingFaceFW HuggingFaceTB",
        "HuggingFaceFW huggingface",
        "HuggingFaceH4 HuggingFaceM4",
        "HuggingFaceH4 HuggingFaceTB",
        "HuggingFaceH4 huggingface",
        "HuggingFaceM4 HuggingFaceTB",
        "HuggingFaceM4 huggingface",
        "HuggingFaceTB huggingface",
        "flax-community mlx-community",
        "xai-org zai-org",
    ];

    #[test]
    fn bundled_list_parses_and_is_a_sensible_size() {
        let idx = LookalikeIndex::parse(BUILTIN_LIST).unwrap();
        let orgs = idx.orgs().count();
        assert!((150..=300).contains(&orgs), "{orgs} organisations");
        assert!((20..=80).contains(&idx.repos().count()));
    }

    #[test]
    fn every_listed_name_matches_itself_in_any_case() {
        for org in index().orgs() {
            for spelled in [
                org.to_string(),
                org.to_ascii_lowercase(),
                org.to_ascii_uppercase(),
            ] {
                clean(&format!("hf://{spelled}/some-model"));
                clean(&format!("{spelled}/some-model@main"));
            }
        }
        for repo in index().repos() {
            clean(&format!("hf://someone/{repo}"));
            clean(&format!("hf://someone/{}", repo.to_ascii_lowercase()));
        }
    }

    #[test]
    fn poisongpt() {
        let found = flag("hf://EleuterAI/gpt-j-6B@main");
        assert_eq!(found.part, Part::Organisation);
        assert_eq!(found.found, "EleuterAI");
        assert_eq!(found.imitates, "EleutherAI");
        assert_eq!(found.tricks, [Trick::DroppedLetter]);
        assert_eq!(found.distance, 1);
        assert!((found.normalized_distance - 0.1).abs() < 1e-9);
        assert_eq!(
            found.to_string(),
            "the organisation \"EleuterAI\" looks like the well-known \"EleutherAI\" \
             (dropped letter)"
        );
    }

    #[test]
    fn must_flag() {
        let cases: &[(&str, &str, &[Trick], usize)] = &[
            ("meta-1lama", "meta-llama", &[Trick::DigitLetterSwap], 0),
            ("rnicrosoft", "microsoft", &[Trick::LookalikeLetters], 0),
            ("googIe", "google", &[Trick::LookalikeLetters], 0),
            ("openal", "openai", &[Trick::LookalikeLetters], 0),
            // `l` for `i` again, not an extra syllable: reads as "mistralai" at a glance.
            ("mistralal", "mistralai", &[Trick::LookalikeLetters], 0),
            ("m\u{435}ta-llama", "meta-llama", &[Trick::Homoglyph], 0),
            ("g\u{3bf}\u{3bf}gle", "google", &[Trick::Homoglyph], 0),
            (
                "\u{ff4d}\u{ff45}\u{ff54}\u{ff41}-llama",
                "meta-llama",
                &[Trick::Homoglyph],
                0,
            ),
            ("0penai", "openai", &[Trick::DigitLetterSwap], 0),
            ("micr0s0ft", "microsoft", &[Trick::DigitLetterSwap], 0),
            ("Qvven", "Qwen", &[Trick::LookalikeLetters], 0),
            ("nvidla", "nvidia", &[Trick::LookalikeLetters], 0),
            ("EleutherIA", "EleutherAI", &[Trick::Transposition], 1),
            ("huggingfcae", "huggingface", &[Trick::Transposition], 1),
            ("Qewn", "Qwen", &[Trick::Transposition], 1),
            ("microsofft", "microsoft", &[Trick::ExtraLetter], 1),
            ("deepseek_ai", "deepseek-ai", &[Trick::Substitution], 1),
            ("metallama", "meta-llama", &[Trick::DroppedLetter], 1),
            ("stabilltyai", "stabilityai", &[Trick::LookalikeLetters], 0),
            // Read as "mistr[al]ai": two dropped letters, no look-alike needed.
            ("mistrai", "mistralai", &[Trick::DroppedLetter], 2),
            (
                "mikrosoftt",
                "microsoft",
                &[Trick::ExtraLetter, Trick::Substitution],
                2,
            ),
            (
                "meta-\u{200b}llama",
                "meta-llama",
                &[Trick::HiddenCharacter],
                0,
            ),
            ("meta-llam\u{0301}a", "meta-llama", &[Trick::Homoglyph], 0),
            (
                "m\u{435}ta-lama",
                "meta-llama",
                &[Trick::Homoglyph, Trick::DroppedLetter],
                1,
            ),
            // A Cyrillic letter the table does not map still stands in for a Latin one.
            ("nvid\u{44f}a", "nvidia", &[Trick::Homoglyph], 1),
            ("5alesforce", "Salesforce", &[Trick::DigitLetterSwap], 0),
            ("fac3book", "facebook", &[Trick::DigitLetterSwap], 0),
            ("bigsclence", "bigscience", &[Trick::LookalikeLetters], 0),
            ("vvizardlm", "WizardLM", &[Trick::LookalikeLetters], 0),
            ("cleepseek-ai", "deepseek-ai", &[Trick::LookalikeLetters], 0),
            ("o1-ai", "01-ai", &[Trick::DigitLetterSwap], 0),
        ];
        for &(org, imitates, tricks, distance) in cases {
            let found = flag(&format!("hf://{org}/model"));
            assert_eq!(found.part, Part::Organisation, "{org}");
            assert_eq!(found.found, org);
            assert_eq!(found.imitates, imitates, "{org}");
            assert_eq!(found.tricks, tricks, "{org}");
            assert_eq!(found.distance, distance, "{org}");
            assert!((0.0..=1.0).contains(&found.normalized_distance));
        }
    }

    #[test]
    fn styled_alphabets() {
        // Mathematical sans-serif bold lowercase starts at U+1D5EE.
        let styled: String = "microsoft"
            .bytes()
            .map(|b| char::from_u32(0x1D5EE + u32::from(b - b'a')).unwrap())
            .collect();
        let found = flag(&format!("hf://{styled}/model"));
        assert_eq!(
            (
                found.imitates.as_str(),
                found.tricks.as_slice(),
                found.distance
            ),
            ("microsoft", &[Trick::Homoglyph][..], 0)
        );
    }

    #[test]
    fn unrelated_names_pass() {
        for org in [
            "my-lab",
            "acme-research",
            "username123",
            "jdoe",
            "team-alpha",
            "deep-learning-lab",
            "vision-research",
            "nlp-group",
            "johnsmith",
            "data-science-club",
            "stanford-oval",
            "mit-han-lab",
            "julien-c",
            "osanseviero",
            "lvwerra",
            "ybelkada",
            "merve",
            "abidlabs",
            "nielsr",
            "sayakpaul",
            "thomwolf",
            "lysandre",
            "ArthurZ",
            "Narsil",
            "clem",
            "openai-community-fan-club",
            "meta-llama-research-group",
            "x",
            "a_b.c-d",
            // Short well-known names tolerate no plain edit: these are real words and names.
            "Owen",
            "gwen",
            "ibn",
            "and",
            "bart",
        ] {
            clean(&format!("hf://{org}/model"));
        }
        // A different script is fine when it imitates nothing.
        clean("hf://\u{43c}\u{43e}\u{44f}-\u{43b}\u{430}\u{431}\u{43e}\u{440}\u{430}\u{442}\u{43e}\u{440}\u{438}\u{44f}/model");
    }

    #[test]
    fn thresholds_scale_with_length() {
        assert_eq!(
            (max_edits(4), max_edits(5), max_edits(8), max_edits(9)),
            (0, 1, 1, 2)
        );
        // 6 letters: one edit is an imitation, two are a different name.
        flag("nvidiax/m");
        clean("nvidiaxy/m");
        // 9 letters: two edits still imitate, three do not.
        flag("mikrosoftt/m");
        clean("mikrosofttt/m");
        // Look-alike characters are free at any length.
        flag("1bm/m");
        flag("BAAl/m");
        flag("arnd/m");
        // Lookup is case-insensitive, so whoever owns `baal` can display it as `BAAl`.
        assert_eq!(flag("baal/m").imitates, "BAAI");
        // A swap next to a free look-alike pair is still a single swap on a short name:
        // `eDd` is `Deci` (skeleton `decl`) with `de` swapped and `d` for `cl`.
        let found = flag("eDd/m");
        assert_eq!(found.imitates, "Deci");
        assert_eq!(
            found.tricks,
            [Trick::LookalikeLetters, Trick::Transposition]
        );
    }

    #[test]
    fn closest_and_first_listed_wins() {
        // One edit from zai-org and from xai-org; the list order decides.
        assert_eq!(flag("yai-org/m").imitates, "zai-org");
        // Exact beats everything, even when another entry is close.
        clean("HuggingFaceH4/m");
        clean("huggingface/m");
        assert_eq!(flag("HuggingFaceH5/m").imitates, "HuggingFaceH4");
    }

    #[test]
    fn repository_names_only_flag_lookalike_characters() {
        clean("meta-llama/Llama-2-7b-hf");
        clean("openai-community/gpt2");
        clean("someone/gpt2");
        clean("google-bert/bert-base-uncased");
        // Plain edits are other real repositories or fine-tunes.
        clean("someone/Llama-2-7b");
        clean("someone/bert-base-uncase");
        clean("someone/gpt2-finetuned");
        let found = flag("meta-llama/L1ama-2-7b-hf");
        assert_eq!(found.part, Part::Repository);
        assert_eq!(found.imitates, "Llama-2-7b-hf");
        assert_eq!(found.tricks, [Trick::DigitLetterSwap]);
        let found = flag("hf://someone/bert-base-uncas\u{435}d@main");
        assert_eq!(found.part, Part::Repository);
        assert_eq!(found.tricks, [Trick::Homoglyph]);
        // The organisation is reported first.
        let found = flag("EleuterAI/g\u{440}t2");
        assert_eq!(found.part, Part::Organisation);
    }

    #[test]
    fn display_escapes_what_you_cannot_see() {
        let found = flag("hf://m\u{435}ta-llama/x");
        assert_eq!(
            found.to_string(),
            "the organisation \"m\\u{435}ta-llama\" looks like the well-known \"meta-llama\" \
             (homoglyph)"
        );
        let found = flag("hf://meta-\u{200b}llama/x");
        assert!(found.to_string().contains("meta-\\u{200b}llama"));
        assert!(found.to_string().ends_with("(hidden character)"));
    }

    #[test]
    fn accepted_source_forms() {
        let s = SourceRef::parse("hf://EleutherAI/gpt-j-6b@refs/pr/12").unwrap();
        assert_eq!(
            (s.org(), s.name(), s.revision()),
            ("EleutherAI", "gpt-j-6b", Some("refs/pr/12"))
        );
        let s = SourceRef::parse("HF://org/name").unwrap();
        assert_eq!((s.org(), s.name(), s.revision()), ("org", "name", None));
        let s = SourceRef::parse("org_1/Name.v2@0123456789abcdef0123456789abcdef01234567").unwrap();
        assert_eq!(
            s.to_string(),
            "hf://org_1/Name.v2@0123456789abcdef0123456789abcdef01234567"
        );
        let long = "a".repeat(MAX_NAME_CHARS);
        SourceRef::parse(&format!("{long}/{long}@v1.0+build")).unwrap();
        clean("hf://meta-llama/Llama-2-7b-hf@main");
        clean("META-LLAMA/llama-2-7b-hf");
        let s = SourceRef::parse("m\u{435}ta/x.git2").unwrap();
        assert_eq!(s.to_string(), "hf://m\\u{435}ta/x.git2");
        // A multi-byte character in the last four bytes must not trip the `.git` check.
        SourceRef::parse("org/name\u{430}\u{430}").unwrap();
    }

    #[test]
    fn rejected_sources() {
        use SourceError as E;
        let org = Part::Organisation;
        let repo = Part::Repository;
        assert_eq!(reject(""), E::Empty);
        assert_eq!(reject("hf://"), E::NotOrgAndName { segments: 1 });
        assert_eq!(reject("gpt2"), E::NotOrgAndName { segments: 1 });
        assert_eq!(reject("hf://a/b/c"), E::NotOrgAndName { segments: 3 });
        assert_eq!(reject("hf://a/b/"), E::NotOrgAndName { segments: 3 });
        assert_eq!(reject("hf:///name"), E::EmptyPart { part: org });
        assert_eq!(reject("hf://org/"), E::EmptyPart { part: repo });
        assert_eq!(reject("org/\u{200b}\u{fe0f}"), E::EmptyPart { part: repo });
        assert_eq!(reject("org/name@"), E::EmptyRevision);
        assert_eq!(reject("org/name@a@b"), E::MultipleAt);
        assert_eq!(reject("@org/name@main"), E::MultipleAt);
        assert_eq!(reject("org/na me"), E::Whitespace { ch: ' ' });
        assert_eq!(reject("org/name\u{a0}"), E::Whitespace { ch: '\u{a0}' });
        assert_eq!(reject("org/name\n"), E::ControlCharacter { ch: '\n' });
        assert_eq!(
            reject("org/\u{7f}name"),
            E::ControlCharacter { ch: '\u{7f}' }
        );
        assert_eq!(
            reject("org/\u{202e}emaN"),
            E::BidiControl { ch: '\u{202e}' }
        );
        assert_eq!(
            reject("https://huggingface.co/org/name"),
            E::UnsupportedScheme {
                scheme: "https".into()
            }
        );
        assert_eq!(
            reject("hf:org/name"),
            E::InvalidCharacter { part: org, ch: ':' }
        );
        assert_eq!(
            reject("org/na%2fme"),
            E::InvalidCharacter {
                part: repo,
                ch: '%'
            }
        );
        assert_eq!(
            reject("org\\x/name"),
            E::InvalidCharacter {
                part: org,
                ch: '\\'
            }
        );
        for bad in [
            "-org/name",
            "org./name",
            "org/..",
            "org/.",
            "org/a--b",
            "org/a..b",
            "org/x.GIT",
        ] {
            assert!(matches!(reject(bad), E::InvalidName { .. }), "{bad}");
        }
        let long = "a".repeat(MAX_NAME_CHARS + 1);
        assert_eq!(
            reject(&format!("{long}/name")),
            E::PartTooLong {
                part: org,
                chars: MAX_NAME_CHARS + 1
            }
        );
        assert_eq!(
            reject(&format!("org/{}", "\u{430}".repeat(MAX_NAME_CHARS + 1))),
            E::PartTooLong {
                part: repo,
                chars: MAX_NAME_CHARS + 1
            }
        );
        assert!(matches!(
            reject("org/name@http://x"),
            E::InvalidRevision { .. }
        ));
        assert_eq!(reject("://org/name"), E::NotOrgAndName { segments: 4 });
        assert_eq!(
            reject("x\u{442}tp://org/name"),
            E::NotOrgAndName { segments: 4 }
        );
        let huge = "a".repeat(MAX_SOURCE_BYTES + 1);
        assert_eq!(
            reject(&huge),
            E::TooLong {
                bytes: MAX_SOURCE_BYTES + 1
            }
        );
        for rev in [
            "a..b", "/main", "main/", "a//b", "v1.lock", "a:b", "a~1", "\u{430}", ".hidden", "a/.b",
        ] {
            assert!(
                matches!(
                    reject(&format!("org/name@{rev}")),
                    E::InvalidRevision { .. }
                ),
                "{rev}"
            );
        }
        assert!(matches!(
            reject(&format!("org/name@{}", "a".repeat(MAX_REVISION_BYTES + 1))),
            E::InvalidRevision { .. }
        ));
        // check_source surfaces the same errors.
        assert_eq!(
            index().check_source("gpt2"),
            Err(E::NotOrgAndName { segments: 1 })
        );
    }

    #[test]
    fn error_messages_are_readable() {
        assert_eq!(
            reject("gpt2").to_string(),
            "expected org/name, got 1 '/'-separated part (a model id names its organisation or \
             user, e.g. openai-community/gpt2)"
        );
        assert_eq!(
            reject("org/\u{202e}x").to_string(),
            "the source contains the bidirectional control U+202E, which can make it display as \
             a different name"
        );
        assert_eq!(
            reject("org/a:b").to_string(),
            "the repository name contains ':'; Hugging Face names use letters, digits, '-', '_' \
             and '.'"
        );
        assert_eq!(
            reject("ftp://org/name").to_string(),
            "unsupported scheme \"ftp\": expected hf://org/name[@revision] or org/name[@revision]"
        );
    }

    #[test]
    fn data_file_errors() {
        let err = |text: &str| LookalikeIndex::parse(text).unwrap_err();
        assert_eq!(err("google\n").line, 1);
        assert!(err("[orgs]\n[people]\n")
            .message
            .contains("unknown section"));
        let dup = err("[orgs]\n# c\ngoogle\n\nGoogle # again\n");
        assert_eq!(
            (dup.line, dup.message.as_str()),
            (5, "Google is listed twice")
        );
        assert!(err("[orgs]\nm\u{435}ta\n").message.contains("not ASCII"));
        assert!(err("[orgs]\nbad name\n").message.contains("U+0020"));
        assert!(err("[orgs]\n-lead\n").message.contains("starts or ends"));
        // The same name may be both an organisation and a repository.
        let idx =
            LookalikeIndex::parse("[orgs]\nbloom # trailing comment\n[repos]\nbloom\n").unwrap();
        assert_eq!(idx.orgs().collect::<Vec<_>>(), ["bloom"]);
        assert_eq!(idx.repos().collect::<Vec<_>>(), ["bloom"]);
        assert_eq!(
            idx.check_source("bl00m/x").unwrap().map(|f| f.imitates),
            Some("bloom".into())
        );
    }

    #[test]
    fn confusables_map_to_name_characters() {
        // Every table entry must land on something a Hugging Face name can contain, or the
        // comparison could never line up with a real name.
        for cp in 0x80..=0x10FFFFu32 {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            if let Some(p) = prototype(c) {
                assert!(is_name_ascii(p), "U+{cp:04X} -> {p:?}");
            }
        }
        let skel = |s: &str| Spelling::of(s).skel.into_iter().collect::<String>();
        assert_eq!(
            skel("\u{430}\u{435}\u{43e}\u{440}\u{441}\u{445}\u{443}"),
            "aeopcxy"
        );
        assert_eq!(skel("\u{3b1}\u{3bf}\u{3bd}\u{3c1}\u{3b9}"), "aovpl");
        assert_eq!(
            skel("\u{391}\u{392}\u{395}\u{397}\u{39a}\u{39c}\u{39d}"),
            "abehkmn"
        );
        assert_eq!(
            skel("\u{410}\u{412}\u{415}\u{41d}\u{41a}\u{41c}\u{422}"),
            "abehkmt"
        );
        assert_eq!(
            skel("\u{ff27}\u{ff4f}\u{ff10}\u{ff47}\u{ff4c}\u{ff45}\u{ff0d}\u{ff3f}"),
            "google-_"
        );
        assert_eq!(skel("\u{1d400}\u{1d41a}\u{1d7ce}\u{1d7cf}"), "aaol");
        assert_eq!(skel("\u{24b6}\u{24e9}\u{2460}"), "azl");
        assert_eq!(skel("I1il|"), "llll|");
        assert_eq!(skel("\u{212a}\u{130}\u{c9}\u{2010}"), "kle-");
        assert_eq!(skel("a\u{200b}b\u{301}"), "ab");
    }

    #[test]
    fn longest_inputs_stay_cheap() {
        // Worst case: 96 characters against every entry, with look-alike pairs on every
        // position so no length filter helps.
        let name = "rn".repeat(MAX_NAME_CHARS / 2);
        let started = std::time::Instant::now();
        for _ in 0..10 {
            index().check_source(&format!("{name}/{name}")).unwrap();
        }
        // Generous even for an unoptimised build on a busy machine.
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}
