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

mod distance;
mod glyphs;
mod source;
#[cfg(test)]
mod tests;

pub use source::{SourceError, SourceRef};

use distance::*;
use glyphs::*;
use source::*;
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
pub const BUILTIN_LIST: &str = include_str!("../well_known_orgs.txt");

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
        nearest(Part::Organisation, source.org(), &self.orgs)
            .or_else(|| nearest(Part::Repository, source.name(), &self.repos))
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
