//! Tokens of TorchScript source, split the way torch's own lexer splits them
//! (`torch/csrc/jit/frontend/lexer.h`, `SharedParserData::match` and `Lexer::lex`), so that
//! what torch compiles as code is code here too:
//!
//! - blanks are the C `isspace` characters except `\n`; `#` starts a comment to the end of the
//!   line, except `# type:`, which torch lexes as a token followed by ordinary tokens;
//! - a backslash directly before `\n` joins the lines; inside `()`, `[]`, `{}` newlines are not
//!   tokens; at the start of a logical line the number of blank characters is the indentation,
//!   turned into INDENT, NEWLINE and DEDENT against a stack of levels;
//! - strings are `'...'`, `"..."`, or the tripled forms; a backslash skips the next character;
//!   a one-quote string may not contain a raw newline (torch then rejects the quote);
//! - identifiers are ASCII `[A-Za-z_][A-Za-z0-9_]*`.
//!
//! Where torch would reject the input (an unterminated string, a byte that is no token, an
//! inconsistent dedent) the file cannot compile, so nothing in it runs; this lexer keeps going
//! and reports the rest as ordinary tokens, which can only add to what the scanner reports.
//! It never allocates per token and never panics.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    Ident,
    Str,
    Num,
    /// One punctuation byte, or `->`.
    Punct(u8),
    Arrow,
    Newline,
    Indent,
    Dedent,
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

pub struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    /// Open brackets, wrapping like torch's `size_t` (an extra closer makes it huge).
    nesting: usize,
    indents: Vec<usize>,
    /// Dedents still to emit.
    pending_dedents: usize,
    done: bool,
}

/// torch's `isblank`: `isspace` without the newline.
fn is_blank(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | 0x0b | 0x0c)
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a [u8]) -> Self {
        let mut lx = Lexer {
            src,
            pos: 0,
            nesting: 0,
            indents: Vec::new(),
            pending_dedents: 0,
            done: false,
        };
        // torch: the first whitespace token fixes the base indentation.
        let (width, _) = lx.skip_space(true);
        lx.indents.push(width.unwrap_or(0));
        lx
    }

    /// Skips blanks, comments, joined lines and (with `ws`) newlines, as torch's `match` does
    /// before a token. Returns the width of the indentation when a whitespace token ends there
    /// (`ws` true at the start or after a newline outside brackets), and whether the input ended.
    fn skip_space(&mut self, mut ws: bool) -> (Option<usize>, bool) {
        let src = self.src;
        let n = src.len();
        let continuation = self.nesting > 0;
        let mut pos = self.pos;
        loop {
            let line_start = pos;
            while pos < n && is_blank(src[pos]) {
                pos += 1;
            }
            if pos < n {
                if src[pos] == b'#' && !src[pos..].starts_with(b"# type:") {
                    while pos < n && src[pos] != b'\n' {
                        pos += 1;
                    }
                    continue;
                }
                if src[pos] == b'\\' && pos + 1 < n && src[pos + 1] == b'\n' && !ws {
                    pos += 2;
                    continue;
                }
                if src[pos] == b'\n' {
                    pos += 1;
                    ws = !continuation;
                    continue;
                }
            }
            self.pos = pos;
            return if ws {
                (Some(pos - line_start), pos == n)
            } else {
                (None, pos == n)
            };
        }
    }

    /// Length of a string literal at `start`, or `None` where torch's `isString` says no.
    fn string_len(&self, start: usize) -> Option<usize> {
        let src = self.src;
        let quote = src[start];
        let triple = src.len() >= start + 3 && src[start..start + 3].iter().all(|&c| c == quote);
        let ql = if triple { 3 } else { 1 };
        let closes =
            |at: usize| at + ql <= src.len() && src[at..at + ql].iter().all(|&c| c == quote);
        let mut end = start + ql;
        while end < src.len() && !closes(end) {
            if src[end] == b'\n' && ql != 3 {
                return None;
            }
            if src[end] == b'\\' {
                end += 1;
            }
            end += 1;
        }
        (end < src.len()).then_some(end - start + ql)
    }

    /// Length of a number at `start` (never longer than what C's strtod accepts), or 0.
    fn number_len(&self, start: usize) -> usize {
        let s = self.src;
        let digit = |i: usize| i < s.len() && s[i].is_ascii_digit();
        let hex = |i: usize| i < s.len() && s[i].is_ascii_hexdigit();
        let mut i = start;
        if s[i] == b'0' && i + 1 < s.len() && (s[i + 1] | 0x20) == b'x' && hex(i + 2) {
            i += 2;
            while hex(i) {
                i += 1;
            }
            if i < s.len() && s[i] == b'.' {
                i += 1;
                while hex(i) {
                    i += 1;
                }
            }
            if i < s.len() && (s[i] | 0x20) == b'p' {
                let mut j = i + 1;
                if j < s.len() && (s[j] == b'+' || s[j] == b'-') {
                    j += 1;
                }
                if digit(j) {
                    while digit(j) {
                        j += 1;
                    }
                    i = j;
                }
            }
        } else {
            let int_start = i;
            while digit(i) {
                i += 1;
            }
            let had_int = i > int_start;
            let mut had_frac = false;
            if i < s.len() && s[i] == b'.' && (had_int || digit(i + 1)) {
                i += 1;
                while digit(i) {
                    i += 1;
                    had_frac = true;
                }
            }
            if !had_int && !had_frac {
                return 0;
            }
            if i < s.len() && (s[i] | 0x20) == b'e' {
                let mut j = i + 1;
                if j < s.len() && (s[j] == b'+' || s[j] == b'-') {
                    j += 1;
                }
                if digit(j) {
                    while digit(j) {
                        j += 1;
                    }
                    i = j;
                }
            }
        }
        if i < s.len() && s[i] == b'j' {
            i += 1;
        }
        i - start
    }

    pub fn next_token(&mut self) -> Token {
        if self.pending_dedents > 0 {
            self.pending_dedents -= 1;
            return Token {
                kind: Tok::Dedent,
                start: self.pos,
                end: self.pos,
            };
        }
        if self.done {
            return Token {
                kind: Tok::Eof,
                start: self.src.len(),
                end: self.src.len(),
            };
        }
        let (width, at_end) = self.skip_space(false);
        if width.is_some() || at_end {
            // A whitespace token (after a newline outside brackets) or the end: torch compares
            // the indentation with its stack; the end closes every block.
            let depth = match width {
                Some(w) if !at_end => w,
                _ => self.indents.first().copied().unwrap_or(0),
            };
            self.done = at_end;
            let top = self.indents.last().copied().unwrap_or(0);
            if depth > top {
                self.indents.push(depth);
                return Token {
                    kind: Tok::Indent,
                    start: self.pos,
                    end: self.pos,
                };
            }
            while self.indents.len() > 1 && self.indents.last().copied().unwrap_or(0) > depth {
                self.indents.pop();
                self.pending_dedents += 1;
            }
            // An inconsistent dedent (torch: "invalid indent level") becomes a level here.
            if self.indents.last().copied().unwrap_or(0) < depth {
                self.indents.push(depth);
            }
            return Token {
                kind: Tok::Newline,
                start: self.pos,
                end: self.pos,
            };
        }
        let start = self.pos;
        let c = self.src[start];
        if c.is_ascii_digit()
            || (c == b'.' && start + 1 < self.src.len() && self.src[start + 1].is_ascii_digit())
        {
            let l = self.number_len(start);
            if l > 0 {
                self.pos = start + l;
                return Token {
                    kind: Tok::Num,
                    start,
                    end: self.pos,
                };
            }
        }
        if c == b'"' || c == b'\'' {
            if let Some(l) = self.string_len(start) {
                self.pos = start + l;
                return Token {
                    kind: Tok::Str,
                    start,
                    end: self.pos,
                };
            }
        }
        if is_ident_start(c) {
            let mut i = start + 1;
            while i < self.src.len() && is_ident_char(self.src[i]) {
                i += 1;
            }
            self.pos = i;
            return Token {
                kind: Tok::Ident,
                start,
                end: i,
            };
        }
        if self.src[start..].starts_with(b"->") {
            self.pos = start + 2;
            return Token {
                kind: Tok::Arrow,
                start,
                end: self.pos,
            };
        }
        match c {
            b'(' | b'[' | b'{' => self.nesting = self.nesting.wrapping_add(1),
            b')' | b']' | b'}' => self.nesting = self.nesting.wrapping_sub(1),
            _ => {}
        }
        self.pos = start + 1;
        Token {
            kind: Tok::Punct(c),
            start,
            end: self.pos,
        }
    }
}

/// The value of a string literal token the way torch's `parseStringLiteral` decodes it, or
/// `None` where torch rejects it (`\x`, `\u`, a malformed octal escape) or it is longer than
/// `cap` bytes (operator and attribute names are short).
pub fn decode_string(raw: &[u8], cap: usize) -> Option<Vec<u8>> {
    let quote = *raw.first()?;
    let ql = if raw.len() >= 6 && raw[..3].iter().all(|&c| c == quote) {
        3
    } else {
        1
    };
    if raw.len() < 2 * ql {
        return None;
    }
    let body = &raw[ql..raw.len() - ql];
    if body.len() > cap.saturating_mul(4) {
        return None;
    }
    let mut out = Vec::with_capacity(body.len().min(cap));
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
        } else {
            let e = *body.get(i + 1)?;
            let (v, used) = match e {
                b'\\' | b'\'' | b'"' | b'\n' => (e, 2),
                b'a' => (0x07, 2),
                b'b' => (0x08, 2),
                b'f' => (0x0c, 2),
                b'n' => (b'\n', 2),
                b'v' => (0x0b, 2),
                b't' => (b'\t', 2),
                b'x' | b'u' | b'U' => return None,
                _ => {
                    // \ooo: exactly three octal digits, value below 256.
                    let d = body.get(i + 1..i + 4)?;
                    if !d.iter().all(|c| (b'0'..=b'7').contains(c)) {
                        return None;
                    }
                    let v = d.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
                    (u8::try_from(v).ok()?, 4)
                }
            };
            out.push(v);
            i += used;
        }
        if out.len() > cap {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(Tok, String)> {
        let mut lx = Lexer::new(src.as_bytes());
        let mut out = Vec::new();
        for _ in 0..10_000 {
            let t = lx.next_token();
            out.push((
                t.kind,
                String::from_utf8_lossy(&src.as_bytes()[t.start..t.end]).into_owned(),
            ));
            if t.kind == Tok::Eof {
                break;
            }
        }
        out
    }

    fn idents(src: &str) -> Vec<String> {
        kinds(src)
            .into_iter()
            .filter(|(k, _)| *k == Tok::Ident)
            .map(|(_, s)| s)
            .collect()
    }

    #[test]
    fn blocks_comments_and_strings() {
        let src = "class A:\n  def f(self):\n    # torch.save(x)\n    s = \"torch.save # no\"\n    return 1\nclass B:\n  x : int\n";
        let k: Vec<Tok> = kinds(src).into_iter().map(|(k, _)| k).collect();
        assert_eq!(k.iter().filter(|t| **t == Tok::Indent).count(), 3);
        assert_eq!(k.iter().filter(|t| **t == Tok::Dedent).count(), 3);
        assert_eq!(
            idents(src),
            ["class", "A", "def", "f", "self", "s", "return", "class", "B", "x", "int"]
        );
    }

    #[test]
    fn type_comments_are_code_and_continuations_join() {
        // torch lexes `# type:` as a token and the rest of the line as code.
        assert_eq!(
            idents("x = 1 # type: torch.save\n"),
            ["x", "type", "torch", "save"]
        );
        let k = kinds("y = torch.\\\n  from_file(p)\n");
        assert!(!k[..6]
            .iter()
            .any(|(t, _)| *t == Tok::Newline || *t == Tok::Indent));
        assert_eq!(
            idents("y = torch.\\\n  from_file(p)\n"),
            ["y", "torch", "from_file", "p"]
        );
    }

    #[test]
    fn newlines_inside_brackets_are_not_tokens() {
        let k = kinds("f(a,\n      b)\n");
        assert_eq!(k.iter().filter(|(t, _)| *t == Tok::Indent).count(), 0);
    }

    #[test]
    fn unterminated_and_odd_input_keeps_going() {
        let src = "x = 'abc\ntorch.save(1, \"p\")\n\u{1}\u{ff}))))\n  \n\tz\n";
        let ids = idents(src);
        assert!(ids.contains(&"save".to_string()), "{ids:?}");
        assert!(ids.contains(&"z".to_string()));
        for s in [
            "",
            "\n",
            "'",
            "\"\"\"",
            "\\",
            "\\\n",
            "0x",
            "1e",
            ".5j",
            "((((",
            "))))\n  a\n b\n",
        ] {
            let _ = kinds(s);
        }
    }

    #[test]
    fn numbers_never_swallow_identifiers() {
        assert_eq!(
            idents("1.from_file 0x1Fp3x 2e5e 3j"),
            ["from_file", "x", "e"]
        );
    }

    #[test]
    fn string_decoding_matches_torch() {
        assert_eq!(
            decode_string(b"\"from_\\146ile\"", 64).unwrap(),
            b"from_file"
        );
        assert_eq!(decode_string(b"'a\\'b'", 64).unwrap(), b"a'b");
        assert_eq!(decode_string(b"\"\"\"x\ny\"\"\"", 64).unwrap(), b"x\ny");
        assert!(decode_string(b"\"\\x66\"", 64).is_none());
        assert!(decode_string(b"\"\\u0066\"", 64).is_none());
        assert!(decode_string(b"\"\\9\"", 64).is_none());
        assert!(decode_string(b"\"aaaa\"", 2).is_none());
        assert!(decode_string(b"\"", 8).is_none());
        assert_eq!(decode_string(b"\"\"", 8).unwrap(), b"");
    }
}
