//! The optimal-string-alignment distance between skeletons, and the tricks that explain it.

use super::*;

/// One step of an alignment of the probe (`i`) against the known name (`j`); indices are into
/// the skeletons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
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
pub(super) struct Table {
    pub(super) cols: usize,
    pub(super) cells: Vec<u16>,
}

impl Table {
    pub(super) fn at(&self, i: usize, j: usize) -> u16 {
        self.cells[i * self.cols + j]
    }

    /// Fills the matrix for `a` against `b` and returns their distance. Both are at most
    /// `MAX_NAME_CHARS` long, so a cell fits in `u16`.
    pub(super) fn fill(&mut self, a: &[char], b: &[char]) -> u16 {
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
    pub(super) fn ops(&self, a: &[char], b: &[char]) -> Vec<Op> {
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
pub(super) fn tricks(probe: &Spelling, known: &Spelling, ops: &[Op]) -> Vec<Trick> {
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

pub(super) fn swap_kind(probe: &[char], known: &[char]) -> Trick {
    if probe.iter().any(|c| !c.is_ascii()) {
        Trick::Homoglyph
    } else if probe.iter().chain(known).any(char::is_ascii_digit) {
        Trick::DigitLetterSwap
    } else {
        Trick::LookalikeLetters
    }
}
