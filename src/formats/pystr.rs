//! A tiny parser for the Python literal in a `.npy` header (`{'descr': '<f4', 'fortran_order':
//! False, 'shape': (2, 3), }`). Never `eval`: strings, ints, bools, None, tuples, lists, dicts.
//! Tuples and lists stay apart, and `(x)` is `x` as in Python (numpy requires a tuple `shape`).

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    Int(i128),
    Bool(bool),
    None,
    Tuple(Vec<Lit>),
    List(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

const MAX_DEPTH: usize = 32;

/// Parse `s` as `ast.literal_eval` would. `long_suffix`: also accept a Python 2 `L` right after
/// an integer, as numpy's `_filter_header` does for format versions 1.0 and 2.0 only.
pub fn parse(s: &str, long_suffix: bool) -> Result<Lit> {
    let mut p = Parser {
        s: s.as_bytes(),
        i: 0,
        long_suffix,
    };
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(bad("trailing characters"));
    }
    Ok(v)
}

fn bad(why: &str) -> Error {
    Error::malformed(format!("npy header: {why}"))
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    long_suffix: bool,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn value(&mut self, depth: usize) -> Result<Lit> {
        if depth > MAX_DEPTH {
            return Err(bad("nested too deeply"));
        }
        match self.peek().ok_or_else(|| bad("unexpected end"))? {
            b'{' => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                        return Ok(Lit::Dict(items));
                    }
                    let k = self.value(depth + 1)?;
                    if self.peek() != Some(b':') {
                        return Err(bad("expected ':'"));
                    }
                    self.i += 1;
                    let v = self.value(depth + 1)?;
                    items.push((k, v));
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {}
                        _ => return Err(bad("expected ',' or '}'")),
                    }
                }
            }
            open @ (b'(' | b'[') => {
                let tuple = open == b'(';
                let close = if tuple { b')' } else { b']' };
                self.i += 1;
                let mut items = Vec::new();
                // `(x)` is x itself; a comma (or nothing at all) makes a tuple.
                let mut comma = false;
                loop {
                    if self.peek() == Some(close) {
                        self.i += 1;
                        return Ok(match (tuple, items.len(), comma) {
                            (true, 1, false) => items.pop().expect("one item"),
                            (true, _, _) => Lit::Tuple(items),
                            (false, _, _) => Lit::List(items),
                        });
                    }
                    items.push(self.value(depth + 1)?);
                    match self.peek() {
                        Some(b',') => {
                            self.i += 1;
                            comma = true;
                        }
                        Some(c) if c == close => {}
                        _ => return Err(bad("expected ',' or a closing bracket")),
                    }
                }
            }
            q @ (b'\'' | b'"') => {
                self.i += 1;
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i] != q {
                    if self.s[self.i] == b'\\' {
                        return Err(bad("escapes in strings are not supported"));
                    }
                    self.i += 1;
                }
                if self.i >= self.s.len() {
                    return Err(bad("unterminated string"));
                }
                let v = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                self.i += 1;
                Ok(Lit::Str(v))
            }
            c if c == b'-' || c.is_ascii_digit() => {
                let start = self.i;
                self.i += 1;
                while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                    self.i += 1;
                }
                let t =
                    std::str::from_utf8(&self.s[start..self.i]).map_err(|_| bad("bad number"))?;
                if self.long_suffix && self.s.get(self.i) == Some(&b'L') {
                    self.i += 1;
                }
                t.parse()
                    .map(Lit::Int)
                    .map_err(|_| bad("integer out of range"))
            }
            _ => {
                for (word, lit) in [
                    ("True", Lit::Bool(true)),
                    ("False", Lit::Bool(false)),
                    ("None", Lit::None),
                ] {
                    if self.s[self.i..].starts_with(word.as_bytes()) {
                        self.i += word.len();
                        return Ok(lit);
                    }
                }
                Err(bad("unexpected token"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header() {
        let v = parse(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }        ",
            false,
        )
        .unwrap();
        let Lit::Dict(items) = v else { panic!() };
        assert_eq!(items[2].1, Lit::Tuple(vec![Lit::Int(2), Lit::Int(3)]));
        assert!(parse(&"[".repeat(100), false).is_err());
        assert!(parse("{'a': __import__('os')}", false).is_err());
    }

    #[test]
    fn tuples_lists_and_parentheses_as_python() {
        assert_eq!(parse("(4)", false).unwrap(), Lit::Int(4));
        assert_eq!(parse("(4,)", false).unwrap(), Lit::Tuple(vec![Lit::Int(4)]));
        assert_eq!(parse("()", false).unwrap(), Lit::Tuple(vec![]));
        assert_eq!(parse("[4]", false).unwrap(), Lit::List(vec![Lit::Int(4)]));
        assert!(parse("(,)", false).is_err());
        // the Python 2 long suffix only where numpy filters it (versions 1.0 and 2.0)
        assert!(parse("(4L,)", false).is_err());
        assert_eq!(parse("(4L,)", true).unwrap(), Lit::Tuple(vec![Lit::Int(4)]));
    }
}
