//! Decoding of the protocol-0 text arguments and string encodings, matching CPython.

use super::value::Node;
use crate::error::{Error, Result};

/// CPython refuses int(str) beyond this many digits (`sys.get_int_max_str_digits()`).
const MAX_INT_DIGITS: usize = 4300;

/// GLOBAL lines: CPython decodes them as strict UTF-8.
pub fn ascii_name(line: &[u8]) -> Result<String> {
    String::from_utf8(line.to_vec()).map_err(|_| Error::malformed("GLOBAL name is not valid UTF-8"))
}

/// INST and PERSID lines: CPython decodes them as strict ASCII.
pub fn ascii_only(line: &[u8]) -> Result<String> {
    if !line.is_ascii() {
        return Err(Error::malformed("INST/PERSID argument is not ASCII"));
    }
    Ok(String::from_utf8_lossy(line).into_owned())
}

/// PUT/GET index: `int(line)` in base 10, as `_pickle.c` parses it (digit separators allowed).
pub fn parse_index_line(line: &[u8], what: &str) -> Result<u64> {
    let bad = || {
        Error::malformed(format!(
            "{what} argument {:?} is not an index",
            String::from_utf8_lossy(line)
        ))
    };
    match python_int(line, false).map_err(|_| bad())? {
        Node::Int(v) if v >= 0 => Ok(v as u64),
        Node::Int(_) => Err(Error::malformed(format!("negative {what} argument"))),
        _ => Err(bad()),
    }
}

/// INT: `_pickle.c` tries C `strtol(s, &end, 0)` first (so `010` is octal 8); a two-character
/// argument whose value is 0 or 1 is a protocol-0 bool; otherwise Python's `int(s, 0)`.
pub fn parse_int_line(line: &[u8]) -> Result<Node> {
    if let Some(v) = strtol_base0(line) {
        if line.len() == 2 && (v == 0 || v == 1) {
            return Ok(Node::Bool(v == 1));
        }
        return Ok(Node::Int(v));
    }
    python_int(line, true).map_err(|_| Error::malformed("could not convert string to int"))
}

/// LONG: `int(s, 0)` after dropping one trailing `L`.
pub fn parse_long_line(line: &[u8]) -> Result<Node> {
    let line = line.strip_suffix(b"L").unwrap_or(line);
    python_int(line, true)
}

/// C's `strtol(s, &end, 0)`, accepted only when it consumed the whole argument without overflow.
fn strtol_base0(s: &[u8]) -> Option<i64> {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let hex = s.get(i) == Some(&b'0')
        && matches!(s.get(i + 1), Some(b'x' | b'X'))
        && s.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
    let radix: u32 = if hex {
        i += 2;
        16
    } else if s.get(i) == Some(&b'0') {
        8
    } else {
        10
    };
    let digits = &s[i..];
    if digits.is_empty() {
        return None;
    }
    let mut mag: u128 = 0;
    for &c in digits {
        let d = (c as char).to_digit(radix)?;
        mag = mag * radix as u128 + d as u128;
        if mag > 1u128 << 64 {
            return None;
        }
    }
    let v = if neg { -(mag as i128) } else { mag as i128 };
    i64::try_from(v).ok()
}

/// Python's `int(s)` (base 10) or `int(s, 0)`: surrounding whitespace, a sign, `0x`/`0o`/`0b`
/// prefixes in base 0, single `_` between digits, no leading zeros on a non-zero decimal.
pub fn python_int(raw: &[u8], base0: bool) -> Result<Node> {
    let bad = || {
        Error::malformed(format!(
            "invalid literal for int(): {:?}",
            String::from_utf8_lossy(raw)
        ))
    };
    let s = std::str::from_utf8(raw).map_err(|_| bad())?.trim();
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = rest.to_ascii_lowercase();
    let (radix, body, prefixed) = if base0 && lower.starts_with("0x") {
        (16u32, &rest[2..], true)
    } else if base0 && lower.starts_with("0o") {
        (8, &rest[2..], true)
    } else if base0 && lower.starts_with("0b") {
        (2, &rest[2..], true)
    } else {
        (10, rest, false)
    };
    // An underscore may follow the prefix, and otherwise only sit between two digits.
    let body = if prefixed {
        body.strip_prefix('_').unwrap_or(body)
    } else {
        body
    };
    if body.is_empty() || body.starts_with('_') || body.ends_with('_') || body.contains("__") {
        return Err(bad());
    }
    let digits: Vec<u32> = body
        .chars()
        .filter(|&c| c != '_')
        .map(|c| c.to_digit(radix))
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    if base0 && radix == 10 && digits.len() > 1 && digits[0] == 0 && digits.iter().any(|&d| d != 0)
    {
        return Err(bad());
    }
    if digits.len() > MAX_INT_DIGITS {
        return Err(Error::limit(
            "int digits",
            "integer literal longer than 4300 digits",
        ));
    }
    // Magnitude as little-endian bytes, by repeated multiply-add (bounded by the digit cap).
    let mut mag: Vec<u8> = vec![0];
    for d in digits {
        let mut carry = d;
        for byte in mag.iter_mut() {
            let v = *byte as u32 * radix + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            mag.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    mag.push(0); // room for the sign bit
    if neg {
        let mut carry = 1u16;
        for b in mag.iter_mut() {
            let v = (!*b) as u16 + carry;
            *b = (v & 0xff) as u8;
            carry = v >> 8;
        }
    }
    Ok(long_from_le(&mag))
}

/// FLOAT: `PyOS_string_to_double` on the whole argument: no surrounding whitespace, and an
/// overflow (`1e500`) is an error rather than infinity.
pub fn parse_float_line(line: &[u8]) -> Result<Node> {
    let bad = || {
        Error::malformed(format!(
            "could not convert string to float: {:?}",
            String::from_utf8_lossy(line)
        ))
    };
    let s = std::str::from_utf8(line).map_err(|_| bad())?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return Err(bad());
    }
    let v: f64 = s.parse().map_err(|_| bad())?;
    let word = s.trim_start_matches(['+', '-']).to_ascii_lowercase();
    if v.is_infinite() && word != "inf" && word != "infinity" {
        return Err(Error::malformed(format!(
            "FLOAT argument {s:?} overflows a double"
        )));
    }
    Ok(Node::Float(v))
}

/// LONG1/LONG4 payload: little-endian two's complement of any length.
pub fn long_from_le(bytes: &[u8]) -> Node {
    if bytes.is_empty() {
        return Node::Int(0);
    }
    let neg = bytes[bytes.len() - 1] & 0x80 != 0;
    let fill = if neg { 0xff } else { 0x00 };
    // Drop redundant sign-extension bytes, then see whether it fits i64.
    let mut n = bytes.len();
    while n > 1 && bytes[n - 1] == fill && (bytes[n - 2] & 0x80 != 0) == neg {
        n -= 1;
    }
    if n <= 8 {
        let mut buf = [fill; 8];
        buf[..n].copy_from_slice(&bytes[..n]);
        return Node::Int(i64::from_le_bytes(buf));
    }
    Node::BigInt(bytes[..n].to_vec().into_boxed_slice())
}

/// Python 2 `str` (STRING/BINSTRING/SHORT_BINSTRING): torch loads with encoding='utf-8'; bytes
/// that are not UTF-8 stay bytes (what `encoding='bytes'` would give) rather than guessing.
pub fn py2_string(raw: Vec<u8>) -> Node {
    match String::from_utf8(raw) {
        Ok(s) => Node::Str(s.into()),
        Err(e) => Node::Bytes(e.into_bytes().into()),
    }
}

/// STRING argument: a quoted repr, decoded with `codecs.escape_decode`.
pub fn unquote_string(line: &[u8]) -> Result<Vec<u8>> {
    if line.len() < 2 || line[0] != line[line.len() - 1] || !(line[0] == b'\'' || line[0] == b'"') {
        return Err(Error::malformed(
            "the STRING opcode argument must be quoted",
        ));
    }
    escape_decode(&line[1..line.len() - 1])
}

fn escape_decode(s: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = s.get(i) else {
            return Err(Error::malformed("trailing \\ in string"));
        };
        i += 1;
        match e {
            b'\n' => {}
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = (e - b'0') as u32;
                for _ in 0..2 {
                    match s.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + (d - b'0') as u32;
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'x' => {
                let hex = s
                    .get(i..i + 2)
                    .ok_or_else(|| Error::malformed("invalid \\x escape"))?;
                let v = std::str::from_utf8(hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| Error::malformed("invalid \\x escape"))?;
                out.push(v);
                i += 2;
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Ok(out)
}

/// UNICODE argument: `raw-unicode-escape` (latin-1 bytes, plus `\uXXXX` and `\UXXXXXXXX`).
/// Lone surrogates show as U+FFFD; the second value then holds the exact code points (WTF-8)
/// so that distinct keys stay distinct.
pub fn raw_unicode_escape(s: &[u8]) -> Result<(String, Option<Vec<u8>>)> {
    let mut cps: Vec<u32> = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'\\' && i + 1 < s.len() && (s[i + 1] == b'u' || s[i + 1] == b'U') {
            // An escape only when preceded by an even number of backslashes.
            let mut backslashes = 0;
            let mut j = i;
            while j > 0 && s[j - 1] == b'\\' {
                backslashes += 1;
                j -= 1;
            }
            if backslashes % 2 == 0 {
                let n = if s[i + 1] == b'u' { 4 } else { 8 };
                let hex = s
                    .get(i + 2..i + 2 + n)
                    .ok_or_else(|| Error::malformed("truncated \\uXXXX escape"))?;
                let v = std::str::from_utf8(hex)
                    .ok()
                    .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .ok_or_else(|| Error::malformed("invalid \\u escape"))?;
                if v > 0x10ffff {
                    return Err(Error::malformed("\\U escape out of range"));
                }
                cps.push(v);
                i += 2 + n;
                continue;
            }
        }
        cps.push(c as u32);
        i += 1;
    }
    let text: String = cps
        .iter()
        .map(|&v| char::from_u32(v).unwrap_or('\u{FFFD}'))
        .collect();
    let has_surrogates = cps.iter().any(|&v| (0xd800..=0xdfff).contains(&v));
    let wtf8 = has_surrogates.then(|| cps.iter().flat_map(|&v| encode_wtf8(v)).collect());
    Ok((text, wtf8))
}

fn encode_wtf8(v: u32) -> Vec<u8> {
    match v {
        0..=0x7f => vec![v as u8],
        0x80..=0x7ff => vec![0xc0 | (v >> 6) as u8, 0x80 | (v & 0x3f) as u8],
        0x800..=0xffff => vec![
            0xe0 | (v >> 12) as u8,
            0x80 | ((v >> 6) & 0x3f) as u8,
            0x80 | (v & 0x3f) as u8,
        ],
        _ => vec![
            0xf0 | (v >> 18) as u8,
            0x80 | ((v >> 12) & 0x3f) as u8,
            0x80 | ((v >> 6) & 0x3f) as u8,
            0x80 | (v & 0x3f) as u8,
        ],
    }
}

/// BINUNICODE payloads are UTF-8 with `surrogatepass`: lone surrogates are legal in Python.
/// They show as one U+FFFD each; the raw bytes come back too, for key equality.
pub fn utf8_surrogatepass(raw: Vec<u8>) -> Result<(String, Option<Vec<u8>>)> {
    match String::from_utf8(raw) {
        Ok(s) => Ok((s, None)),
        Err(e) => {
            let bytes = e.into_bytes();
            let text = decode_with_surrogates(&bytes)
                .ok_or_else(|| Error::malformed("BINUNICODE payload is not valid UTF-8"))?;
            Ok((text, Some(bytes)))
        }
    }
}

/// UTF-8 where encoded surrogates (ED A0..BF xx) are allowed; each becomes one U+FFFD.
fn decode_with_surrogates(b: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let (n, min) = match c {
            0x00..=0x7f => (0, 0),
            0xc2..=0xdf => (1, 0x80),
            0xe0..=0xef => (2, 0x800),
            0xf0..=0xf4 => (3, 0x10000),
            _ => return None,
        };
        let mut v = if n == 0 {
            c as u32
        } else {
            (c as u32) & (0x3f >> n)
        };
        for k in 1..=n {
            match b.get(i + k) {
                Some(&cc) if cc & 0xc0 == 0x80 => v = (v << 6) | (cc as u32 & 0x3f),
                _ => return None,
            }
        }
        if v < min || v > 0x10ffff {
            return None;
        }
        out.push(char::from_u32(v).unwrap_or('\u{FFFD}'));
        i += n + 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_and_longs() {
        assert!(matches!(parse_int_line(b"01").unwrap(), Node::Bool(true)));
        assert!(matches!(parse_int_line(b"-17").unwrap(), Node::Int(-17)));
        assert!(matches!(parse_long_line(b"123L").unwrap(), Node::Int(123)));
        // The legacy torch magic number, as protocol 0 would write it.
        let Node::BigInt(b) = parse_long_line(b"119547037146038801333356L").unwrap() else {
            panic!()
        };
        assert_eq!(
            &b[..],
            &[0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]
        );
        let Node::BigInt(n) = parse_long_line(b"-119547037146038801333356").unwrap() else {
            panic!()
        };
        assert_eq!(n.len(), 10);
        assert!(matches!(long_from_le(&[0xff]), Node::Int(-1)));
        assert!(matches!(long_from_le(&[0x80, 0x00]), Node::Int(128)));
        assert!(matches!(
            long_from_le(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Node::Int(-1)
        ));
        assert!(parse_long_line(&vec![b'9'; 5000]).is_err());
    }

    #[test]
    fn strings() {
        assert_eq!(unquote_string(b"'a\\'b\\x41\\n\\101'").unwrap(), b"a'bA\nA");
        assert!(unquote_string(b"abc").is_err());
        assert_eq!(
            raw_unicode_escape(b"caf\\u00e9 \\\\u0041").unwrap().0,
            "caf\u{e9} \\\\u0041"
        );
        assert_eq!(
            utf8_surrogatepass(vec![0xed, 0xa0, 0x80]).unwrap().0,
            "\u{FFFD}"
        );
        assert!(utf8_surrogatepass(vec![0xff]).is_err());
    }
}
