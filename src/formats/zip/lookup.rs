//! Which member a name selects.
//!
//! * **torch** (`PyTorchStreamReader::getRecordID` / `hasRecord` in
//!   `caffe2/serialize/inline_container.cc` → `mz_zip_reader_locate_file(name, NULL, 0)`):
//!   the record name is prefixed with the archive root (the first entry's name up to its first
//!   `/`) and passed as a C string (cut at its first NUL). miniz heap-sorts the directory by
//!   ASCII-lower-cased name once (`mz_zip_reader_sort_central_dir_offsets_by_filename`, not a
//!   stable sort) and binary-searches it comparing case-insensitively, so the lookup ignores
//!   ASCII case and, among duplicates, returns whichever entry the search lands on (the first
//!   or the last, depending on all the names).
//! * **torch's record list** (`getAllRecords`, used by `torch.serialization._is_torchscript_zip`):
//!   every entry's name as a C string (cut at NUL, at most 511 bytes), which must start with
//!   `<root>/` (else the call throws, and `torch.load` with it), the root removed, names ending
//!   in `.debug_pkl` left out. `torch.load` hands the file to `torch.jit.load` exactly when
//!   this list contains `constants.pkl`, compared byte for byte.
//! * **CPython** (`ZipFile.NameToInfo`, what `numpy.load` opens `.npz` members with): names
//!   decoded as UTF-8 when flag bit 11 is set (invalid UTF-8 is an error) and as cp437
//!   otherwise ([`cp437`]), cut at their first NUL; the LAST entry of a name wins; comparison
//!   is exact.

use crate::error::{Error, Result};

/// miniz's ASCII-only lower-casing (`MZ_TOLOWER`).
fn lower(c: u8) -> u8 {
    c.to_ascii_lowercase()
}

/// `mz_zip_reader_filename_less`.
pub(super) fn filename_less(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    for i in 0..n {
        let (l, r) = (lower(a[i]), lower(b[i]));
        if l != r {
            return l < r;
        }
    }
    a.len() < b.len()
}

/// `mz_zip_filename_compare`: <0, 0, >0.
fn filename_compare(entry: &[u8], key: &[u8]) -> i64 {
    let n = entry.len().min(key.len());
    for i in 0..n {
        let (l, r) = (lower(entry[i]), lower(key[i]));
        if l != r {
            return i64::from(l) - i64::from(r);
        }
    }
    entry.len() as i64 - key.len() as i64
}

/// `mz_zip_reader_sort_central_dir_offsets_by_filename`, step for step (heap sort: not stable,
/// so which duplicate ends up where depends on exactly these swaps).
pub(super) fn miniz_sort(names: &[&[u8]]) -> Vec<u32> {
    let size = names.len();
    let mut idx: Vec<u32> = (0..size as u32).collect();
    if size <= 1 {
        return idx;
    }
    let less = |idx: &Vec<u32>, a: usize, b: usize| {
        filename_less(names[idx[a] as usize], names[idx[b] as usize])
    };
    let sift = |idx: &mut Vec<u32>, mut root: usize, end: usize| loop {
        let mut child = (root << 1) + 1;
        if child >= end {
            break;
        }
        if child + 1 < end && less(idx, child, child + 1) {
            child += 1;
        }
        if !less(idx, root, child) {
            break;
        }
        idx.swap(root, child);
        root = child;
    };
    let mut start = (size - 2) >> 1;
    loop {
        sift(&mut idx, start, size);
        if start == 0 {
            break;
        }
        start -= 1;
    }
    let mut end = size - 1;
    while end > 0 {
        idx.swap(end, 0);
        sift(&mut idx, 0, end);
        end -= 1;
    }
    idx
}

/// `mz_zip_locate_file_binary_search` over `sorted` (entry indices; `name(i)` is entry i's
/// name); `key` is already a C string (no NUL).
pub(super) fn miniz_find<'a>(
    name: impl Fn(usize) -> &'a [u8],
    sorted: &[u32],
    key: &[u8],
) -> Option<usize> {
    let (mut l, mut h) = (0i64, sorted.len() as i64 - 1);
    while l <= h {
        let m = l + ((h - l) >> 1);
        let idx = sorted[m as usize] as usize;
        let c = filename_compare(name(idx), key);
        if c == 0 {
            return Some(idx);
        } else if c < 0 {
            l = m + 1;
        } else {
            h = m - 1;
        }
    }
    None
}

/// A name as the C code sees it: cut at its first NUL.
pub(super) fn c_string(b: &[u8]) -> &[u8] {
    b.split(|&c| c == 0).next().unwrap_or(b)
}

/// `MZ_ZIP_MAX_ARCHIVE_FILENAME_SIZE`: `getAllRecords` copies names into a buffer this large.
const RECORD_NAME_BUF: usize = 512;

/// torch's `getAllRecords()`: the record names (root removed), or the error it throws.
pub(super) fn torch_all_records(names: &[&[u8]]) -> Result<Vec<Vec<u8>>> {
    let Some(first) = names.first() else {
        return Ok(Vec::new());
    };
    let Some(slash) = first.iter().position(|&c| c == b'/') else {
        return Err(Error::malformed(
            "the first zip entry is not in a folder; torch refuses the archive",
        ));
    };
    let prefix = &first[..=slash];
    if prefix.contains(&0) {
        // strncmp against a root holding a NUL, then a copy from past the name's end:
        // torch would read bytes left over from earlier names
        return Err(Error::malformed(
            "the archive root taken from the first zip entry holds a NUL byte; torch's record \
             list reads past the name",
        ));
    }
    let mut out = Vec::new();
    for name in names {
        let buf = &name[..name.len().min(RECORD_NAME_BUF - 1)];
        let c = c_string(buf);
        if !c.starts_with(prefix) {
            return Err(Error::malformed(format!(
                "zip entry {:?} is not under {:?}, the root folder torch takes from the first \
                 entry; torch.load refuses the archive (getAllRecords throws)",
                String::from_utf8_lossy(c),
                String::from_utf8_lossy(prefix)
            )));
        }
        let rel = &c[prefix.len()..];
        if !rel.ends_with(b".debug_pkl") {
            out.push(rel.to_vec());
        }
    }
    Ok(out)
}

/// Code page 437's upper half (bytes 0x80..=0xFF), as Python's `cp437` codec maps it; the lower
/// half is ASCII.
const CP437_HIGH: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■ ";

/// Python's `bytes.decode("cp437")`: every byte maps to one character, so it never fails.
pub(super) fn cp437(raw: &[u8]) -> String {
    raw.iter()
        .map(|&b| {
            if b < 0x80 {
                char::from(b)
            } else {
                CP437_HIGH
                    .chars()
                    .nth(usize::from(b - 0x80))
                    .expect("128 characters")
            }
        })
        .collect()
}

/// A name as `ZipFile` decodes it (`_RealGetContents`, and `ZipFile.open` for the local name):
/// strict UTF-8 when flag bit 11 is set (a `UnicodeDecodeError` otherwise), else cp437.
pub(super) fn cpython_decode(raw: &[u8], flags: u16) -> Result<String> {
    if flags & 0x0800 == 0 {
        return Ok(cp437(raw));
    }
    std::str::from_utf8(raw).map(str::to_string).map_err(|_| {
        Error::malformed(format!(
            "zip entry name {:?} is flagged UTF-8 but is not: numpy's zip reader (Python zipfile) \
             raises UnicodeDecodeError",
            String::from_utf8_lossy(raw)
        ))
    })
}

/// A central-directory name as CPython decodes it: `(orig_filename, filename)`, the second cut
/// at its first NUL (`ZipInfo.__init__`).
pub(super) fn cpython_name(raw: &[u8], flags: u16) -> Result<(String, String)> {
    let orig = cpython_decode(raw, flags)?;
    let cut = orig.split('\0').next().unwrap_or("").to_string();
    Ok((orig, cut))
}
