//! Whether CPython's `tarfile` takes a file for a tar archive. `torch.load(path)` tries
//! `tarfile.open(fileobj=f, mode="r:")` before anything else (after the zip test), and falls back
//! to the legacy pickle stream only on `tarfile.TarError` (`torch/serialization.py`,
//! `_legacy_load`). `tarfile` does not look for a "ustar" magic: the first 512-byte block is a
//! header when its checksum field parses and matches (`TarInfo.frombuf`, `nti`,
//! `calc_chksums` in CPython 3.11 `Lib/tarfile.py`). The rules are written up in
//! `docs/containers.md` ("Which files torch.load reads as a tar").

/// Tar block size.
pub const BLOCK: usize = 512;

/// What `tarfile.open(mode="r:")` makes of the first block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstBlock {
    /// A header with a valid checksum: the file is a tar to torch.load(path).
    Header,
    /// All 512 bytes are NUL: tarfile opens an empty archive (no error), so torch.load fails
    /// looking for `storages` and never tries the pickle reading.
    EmptyArchive,
    /// Shorter than a block or a bad checksum: `ReadError`, torch goes on with the pickle.
    NotTar,
}

/// Classify the first block of a file (`head` is at most its first 512 bytes).
pub fn first_block(head: &[u8]) -> FirstBlock {
    if head.len() < BLOCK {
        return FirstBlock::NotTar; // EmptyHeaderError / TruncatedHeaderError at offset 0
    }
    let block = &head[..BLOCK];
    if block.iter().all(|&b| b == 0) {
        return FirstBlock::EmptyArchive; // EOFHeaderError at offset 0 is not re-raised
    }
    match parse(block) {
        Some(_) => FirstBlock::Header,
        None => FirstBlock::NotTar,
    }
}

/// A header block as `TarInfo.frombuf` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `nts(name)`, with `nts(prefix) + "/"` in front when the prefix is not empty and the type
    /// is not a GNU extension (as bytes: CPython decodes with surrogateescape, which is 1:1).
    pub name: Vec<u8>,
    pub size: i64,
    pub typeflag: u8,
}

/// `TarInfo.frombuf` for a non-empty 512-byte block: `None` where it raises
/// `InvalidHeaderError` (a bad checksum, or any numeric field `nti` cannot parse).
pub fn parse(block: &[u8]) -> Option<Header> {
    if block.len() != BLOCK {
        return None;
    }
    let chksum = number_field(&block[148..156])?;
    if !checksums(block).contains(&chksum) {
        return None;
    }
    // mode, uid, gid, size, mtime, devmajor, devminor are parsed too; any failure is invalid.
    for range in [100..108, 108..116, 116..124, 136..148, 329..337, 337..345] {
        number_field(&block[range])?;
    }
    let size = number_field(&block[124..136])?;
    let mut typeflag = block[156];
    let mut name = nts(&block[..100]).to_vec();
    if typeflag == 0 && name.ends_with(b"/") {
        typeflag = b'5'; // an old-style regular file named like a directory is a directory
    }
    let prefix = nts(&block[345..500]);
    let gnu = matches!(typeflag, b'L' | b'K' | b'S');
    if typeflag == b'5' {
        // isdir(): frombuf strips the trailing slashes before adding the prefix.
        while name.last() == Some(&b'/') {
            name.pop();
        }
    }
    if !prefix.is_empty() && !gnu {
        let mut full = prefix.to_vec();
        full.push(b'/');
        full.extend_from_slice(&name);
        name = full;
    }
    Some(Header {
        name,
        size,
        typeflag,
    })
}

/// `nts`: up to the first NUL.
fn nts(field: &[u8]) -> &[u8] {
    field.split(|&b| b == 0).next().unwrap_or_default()
}

/// `calc_chksums`: the sum of the block with the checksum field as eight spaces, over unsigned
/// and over signed bytes (some old tars sum signed chars).
fn checksums(block: &[u8]) -> [i64; 2] {
    let outside = block[..148].iter().chain(&block[156..]);
    let unsigned: i64 = outside.clone().map(|&b| i64::from(b)).sum();
    let signed: i64 = outside.map(|&b| i64::from(b as i8)).sum();
    [256 + unsigned, 256 + signed]
}

/// `nti(field)`: base-256 when the first byte is 0o200 or 0o377, otherwise
/// `int(nts(s).strip() or "0", 8)`. `None` where CPython raises (an invalid header), and for
/// values beyond `i64` (CPython parses them; they are refused here as no model file needs them).
fn number_field(s: &[u8]) -> Option<i64> {
    if s[0] == 0o200 || s[0] == 0o377 {
        let mut n: i128 = 0;
        for &b in &s[1..] {
            n = (n << 8) | i128::from(b);
        }
        if s[0] == 0o377 {
            n -= 1i128 << (8 * (s.len() - 1));
        }
        return i64::try_from(n).ok();
    }
    // nts: up to the first NUL, decoded as strict ASCII.
    let s = s.split(|&b| b == 0).next().unwrap_or_default();
    if !s.is_ascii() {
        return None;
    }
    let s = py_strip(s);
    if s.is_empty() {
        return Some(0);
    }
    py_int_base8(s)
}

/// `str.strip()` on ASCII text: Python's whitespace includes the four separators 0x1c..0x1f.
fn py_strip(s: &[u8]) -> &[u8] {
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0x1c..=0x1f);
    let start = s.iter().position(|b| !ws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !ws(b)).map_or(start, |e| e + 1);
    &s[start..end]
}

/// `int(s, 8)` for an already stripped ASCII string (`PyLong_FromString`): an optional sign, an
/// optional `0o` prefix followed by at most one underscore, then octal digits with single
/// underscores between them.
fn py_int_base8(s: &[u8]) -> Option<i64> {
    let (negative, mut s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if s.len() >= 2 && s[0] == b'0' && matches!(s[1], b'o' | b'O') {
        s = &s[2..];
        if s.first() == Some(&b'_') {
            s = &s[1..];
        }
    }
    if s.is_empty() || s[0] == b'_' || s[s.len() - 1] == b'_' {
        return None;
    }
    let mut n: i64 = 0;
    let mut last_underscore = false;
    for &b in s {
        match b {
            b'_' if !last_underscore => last_underscore = true,
            b'0'..=b'7' => {
                last_underscore = false;
                // Beyond i64: refused (see number_field).
                n = n.checked_mul(8)?.checked_add(i64::from(b - b'0'))?;
            }
            _ => return None,
        }
    }
    Some(if negative { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(name: &[u8], field: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; BLOCK];
        b[..name.len()].copy_from_slice(name);
        b[148..148 + field.len()].copy_from_slice(field);
        b
    }

    fn with_sum(name: &[u8], render: impl Fn(i64) -> Vec<u8>) -> Vec<u8> {
        let b = block(name, b"");
        let sum = checksums(&b)[0];
        block(name, &render(sum))
    }

    #[test]
    fn checksum_spellings_cpython_accepts() {
        for render in [
            (|n| format!("{n:06o}\0 ").into_bytes()) as fn(i64) -> Vec<u8>,
            |n| format!("  {n:o}").into_bytes(),
            |n| format!("0o{n:o}").into_bytes(),
            |n| format!("+{n:o}\x1f").into_bytes(),
            |n| {
                let d = format!("{n:o}");
                format!("{}_{}", &d[..1], &d[1..]).into_bytes()
            },
        ] {
            let b = with_sum(b"\x80\x03Bstorages", render);
            assert_eq!(first_block(&b), FirstBlock::Header, "{:?}", &b[148..156]);
        }
        let mut b = with_sum(b"x", |_| vec![0o200]);
        let sum = checksums(&b)[0];
        b[148] = 0o200;
        b[152..156].copy_from_slice(&(sum as u32).to_be_bytes());
        assert_eq!(first_block(&b), FirstBlock::Header);
    }

    #[test]
    fn what_cpython_refuses() {
        let b = with_sum(b"name", |n| format!("{n:o}_").into_bytes());
        assert_eq!(first_block(&b), FirstBlock::NotTar);
        let b = with_sum(b"name", |n| format!("{:o}", n + 1).into_bytes());
        assert_eq!(first_block(&b), FirstBlock::NotTar);
        let b = with_sum(b"name", |n| format!("9{n:o}").into_bytes());
        assert_eq!(first_block(&b), FirstBlock::NotTar);
        assert_eq!(first_block(&[0u8; 511]), FirstBlock::NotTar);
        assert_eq!(first_block(&[0u8; 512]), FirstBlock::EmptyArchive);
        // An empty field is 0, which no non-empty block sums to.
        assert_eq!(first_block(&block(b"name", b"")), FirstBlock::NotTar);
    }

    /// CPython is the ground truth: every spelling above, and some hostile ones, classified
    /// by `tarfile.open(mode="r:")` itself.
    #[test]
    fn agrees_with_cpython_tarfile() {
        let ok = std::process::Command::new("python3")
            .args(["-c", "import tarfile"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!("skipped: no python3 with tarfile");
            return;
        }
        let mut blocks = Vec::new();
        let renders: [fn(i64) -> String; 9] = [
            |n| format!("{n:06o}\0 "),
            |n| format!("  {n:o}"),
            |n| format!("0o_{n:o}"),
            |n| format!("+{n:o}\x1f"),
            |n| format!("-{n:o}"),
            |n| format!("{n:o}_"),
            |n| format!("0x{n:x}"),
            |n| format!("{n:o}\x0b"),
            |n| format!("{:o}", n - 1),
        ];
        for render in renders {
            blocks.push(with_sum(b"\x80\x03Bpayload", |n| render(n).into_bytes()));
        }
        blocks.push(vec![0u8; BLOCK]);
        blocks.push(vec![0u8; 100]);
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for (i, b) in blocks.iter().enumerate() {
            let p = dir.path().join(format!("{i}"));
            let mut data = b.clone();
            if data.len() >= BLOCK {
                data.resize(BLOCK * 3, 0);
            }
            std::fs::write(&p, &data).unwrap();
            paths.push(p);
        }
        let script = "import sys, tarfile\n\
            for p in sys.argv[1:]:\n\
            \x20   try:\n\
            \x20       t = tarfile.open(p, mode='r:')\n\
            \x20       print('H' if t.getmembers() else 'E')\n\
            \x20   except tarfile.TarError:\n\
            \x20       print('N')\n";
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(&paths)
            .output()
            .unwrap();
        let cpython = String::from_utf8(out.stdout).unwrap();
        let ours: String = blocks
            .iter()
            .map(|b| match first_block(b) {
                FirstBlock::Header => "H\n",
                FirstBlock::EmptyArchive => "E\n",
                FirstBlock::NotTar => "N\n",
            })
            .collect();
        assert_eq!(ours, cpython);
    }
}
