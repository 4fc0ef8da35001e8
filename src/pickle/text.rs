//! Decoding of the protocol-0 text arguments and string encodings, matching CPython.

use super::value::Node;
use crate::error::{Error, Result};

/// CPython refuses int(str) beyond this many digits (`sys.get_int_max_str_digits()`).
const MAX_INT_DIGITS: usize = 4300;

/// GLOBAL/INST/PERSID lines: CPython decodes them as strict UTF-8.
pub fn ascii_name(line: &[u8]) -> Result<String> {
    String::from_utf8(line.to_vec()).map_err(|_| Error::malformed("GLOBAL name is not valid UTF-8"))
}

/// PUT/GET index.
pub fn parse_index_line(line: &[u8], what: &str) -> Result<u64> {
    let s = std::str::from_utf8(line)
        .map_err(|_| Error::malformed(format!("{what} argument is not text")))?;
    let v: i64 = s
        .trim()
        .parse()
        .map_err(|_| Error::malformed(format!("{what} argument {s:?} is not an integer")))?;
    if v < 0 {
        return Err(Error::malformed(format!("negative {what} argument")));
    }
    Ok(v as u64)
}

/// INT: `I01\n` is True and `I00\n` False (protocol-0 booleans), otherwise a decimal integer.
pub fn parse_int_line(line: &[u8]) -> Result<Node> {
    match line {
        b"01" => return Ok(Node::Bool(true)),
        b"00" => return Ok(Node::Bool(false)),
        _ => {}
    }
    parse_decimal(line)
}

/// LONG: decimal with an optional trailing `L`.
pub fn parse_long_line(line: &[u8]) -> Result<Node> {
    let line = line.strip_suffix(b"L").unwrap_or(line);
    parse_decimal(line)
}

fn parse_decimal(line: &[u8]) -> Result<Node> {
    let s =
        std::str::from_utf8(line).map_err(|_| Error::malformed("integer argument is not text"))?;
    let t = s.trim();
    if let Ok(v) = t.parse::<i64>() {
        return Ok(Node::Int(v));
    }
    let (neg, digits) = match t.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        rest => (false, rest),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Error::malformed(format!(
            "invalid literal for int(): {s:?}"
        )));
    }
    if digits.len() > MAX_INT_DIGITS {
        return Err(Error::limit(
            "int digits",
            "integer literal longer than 4300 digits",
        ));
    }
    // Magnitude as little-endian bytes, by repeated multiply-add (bounded by the digit cap).
    let mut mag: Vec<u8> = vec![0];
    for &d in digits {
        let mut carry = (d - b'0') as u32;
        for byte in mag.iter_mut() {
            let v = *byte as u32 * 10 + carry;
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
        // two's complement
        let mut carry = 1u16;
        for b in mag.iter_mut() {
            let v = (!*b) as u16 + carry;
            *b = (v & 0xff) as u8;
            carry = v >> 8;
        }
    }
    Ok(long_from_le(&mag))
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
    let line = trim_trailing_ws(line);
    if line.len() < 2 || line[0] != line[line.len() - 1] || !(line[0] == b'\'' || line[0] == b'"') {
        return Err(Error::malformed(
            "the STRING opcode argument must be quoted",
        ));
    }
    escape_decode(&line[1..line.len() - 1])
}

fn trim_trailing_ws(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
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
pub fn raw_unicode_escape(s: &[u8]) -> Result<String> {
    let mut out = String::with_capacity(s.len());
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
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .ok_or_else(|| Error::malformed("invalid \\u escape"))?;
                out.push(char::from_u32(v).unwrap_or('\u{FFFD}'));
                i += 2 + n;
                continue;
            }
        }
        out.push(c as char);
        i += 1;
    }
    Ok(out)
}

/// BINUNICODE payloads are UTF-8 with `surrogatepass`: lone surrogates are legal in Python.
/// We keep them as U+FFFD (they cannot be tensor names anyway) instead of refusing the file.
pub fn utf8_surrogatepass(raw: Vec<u8>) -> Result<String> {
    match String::from_utf8(raw) {
        Ok(s) => Ok(s),
        Err(e) => {
            let bytes = e.into_bytes();
            // Reject what Python rejects too: anything that is not UTF-8 even with surrogates.
            let lossy = String::from_utf8_lossy(&bytes);
            if is_utf8_with_surrogates(&bytes) {
                Ok(lossy.into_owned())
            } else {
                Err(Error::malformed("BINUNICODE payload is not valid UTF-8"))
            }
        }
    }
}

/// Valid UTF-8 if encoded surrogates (ED A0..BF xx) were allowed.
fn is_utf8_with_surrogates(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let (n, min) = match c {
            0x00..=0x7f => (0, 0),
            0xc2..=0xdf => (1, 0x80),
            0xe0..=0xef => (2, 0x800),
            0xf0..=0xf4 => (3, 0x10000),
            _ => return false,
        };
        let mut v = if n == 0 {
            c as u32
        } else {
            (c as u32) & (0x3f >> n)
        };
        for k in 1..=n {
            match b.get(i + k) {
                Some(&cc) if cc & 0xc0 == 0x80 => v = (v << 6) | (cc as u32 & 0x3f),
                _ => return false,
            }
        }
        if v < min || v > 0x10ffff {
            return false;
        }
        i += n + 1;
    }
    true
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
            raw_unicode_escape(b"caf\\u00e9 \\\\u0041").unwrap(),
            "caf\u{e9} \\\\u0041"
        );
        assert!(utf8_surrogatepass(vec![0xed, 0xa0, 0x80]).is_ok());
        assert!(utf8_surrogatepass(vec![0xff]).is_err());
    }
}
