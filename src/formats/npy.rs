//! `.npy` files (formats.md §6.1): magic, version, a Python-literal header, raw data. Object
//! arrays are pickles: we scan them for findings and refuse them, as numpy does by default.

use super::pystr::{self, Lit};
use super::{Analysis, Options};
use crate::error::{Error, Result};
use crate::pickle::value::Graph;
use crate::pickle::{Context, Input, Machine};
use crate::tensors::gather::ReadAt;
use crate::tensors::resolve::dense_array_spec;
use crate::tensors::spec::{DataSource, TensorSpec};
use std::io::{BufReader, Read, Seek, SeekFrom};

/// numpy's own cap on header size for untrusted files.
const MAX_HEADER: u64 = 10_000;

#[derive(Debug, Clone)]
pub struct NpyHeader {
    pub descr: String,
    pub byteorder: char,
    pub fortran: bool,
    pub shape: Vec<u64>,
    /// Offset of the data, relative to the start of the .npy bytes.
    pub data_offset: u64,
}

impl NpyHeader {
    /// Whether `numpy.load(allow_pickle=True)` may unpickle the data. numpy builds the dtype
    /// with `numpy.dtype(descr)` (`descr_to_dtype`, `numpy/lib/format.py`), which spells object
    /// many ways (`O`, `O8`, `object`, `object_`, ...). Only descrs this reader knows to hold
    /// plain bytes (the numeric ones it converts, and fixed-size strings and voids) are not:
    /// everything else is read as the pickle numpy may take it for.
    pub fn is_object(&self) -> bool {
        crate::tensors::numpy::torch_dtype(&self.descr).is_none() && !plain_bytes(&self.descr)
    }
}

/// `S<n>`, `U<n>`, `V<n>` with a decimal size (strings and raw bytes) and `M8`/`m8` with an
/// optional `[unit]` (datetimes): never objects.
fn plain_bytes(code: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = code.strip_prefix(['S', 'U', 'V']) {
        return digits(rest);
    }
    match code.strip_prefix("M8").or_else(|| code.strip_prefix("m8")) {
        Some("") => true,
        Some(unit) => unit
            .strip_prefix('[')
            .and_then(|u| u.strip_suffix(']'))
            .is_some_and(|u| !u.is_empty() && u.bytes().all(|b| b.is_ascii_alphanumeric())),
        None => false,
    }
}

/// Parse the header of a .npy that starts at `base` and is `len` bytes long.
pub fn parse_header(data: &mut dyn ReadAt, base: u64, len: u64) -> Result<NpyHeader> {
    let bad = |why: String| Error::malformed(format!("npy: {why}"));
    if len < 10 {
        return Err(bad("file too short".into()));
    }
    let mut pre = [0u8; 12];
    data.read_at(base, &mut pre[..10.min(len as usize)])?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err(bad("missing magic".into()));
    }
    let (hlen, start) = match pre[6] {
        1 => (u16::from_le_bytes([pre[8], pre[9]]) as u64, 10u64),
        2 | 3 => {
            if len < 12 {
                return Err(bad("file too short".into()));
            }
            data.read_at(base + 10, &mut pre[10..12])?;
            (
                u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]]) as u64,
                12u64,
            )
        }
        v => return Err(bad(format!("unsupported format version {v}"))),
    };
    // numpy's `_check_version`: only (1, 0), (2, 0) and (3, 0); the minor byte counts too.
    if pre[7] != 0 {
        return Err(bad(format!(
            "unsupported format version ({}, {}) (numpy reads only 1.0, 2.0 and 3.0)",
            pre[6], pre[7]
        )));
    }
    if hlen > MAX_HEADER {
        return Err(Error::limit(
            "npy header",
            format!("header of {hlen} bytes (numpy refuses > {MAX_HEADER})"),
        ));
    }
    if start + hlen > len {
        return Err(bad("header runs past the end".into()));
    }
    let mut h = vec![0u8; hlen as usize];
    data.read_at(base + start, &mut h)?;
    let text = if pre[6] == 3 {
        String::from_utf8(h).map_err(|_| bad("header is not UTF-8".into()))?
    } else {
        h.iter().map(|&b| b as char).collect()
    };
    // `_read_array_header` retries with Python 2 `L` suffixes filtered out for versions up to
    // 2.0 only; a 3.0 header holding one is a ValueError.
    let Lit::Dict(items) = pystr::parse(&text, pre[6] <= 2)? else {
        return Err(bad("header is not a dict".into()));
    };
    let get = |k: &str| {
        items
            .iter()
            .find(|(key, _)| *key == Lit::Str(k.into()))
            .map(|(_, v)| v.clone())
    };
    if items.len() != 3 {
        return Err(bad(
            "header must have exactly descr, fortran_order, shape".into()
        ));
    }
    let descr = match get("descr") {
        Some(Lit::Str(s)) => s,
        Some(_) => return Err(Error::unsupported("npy: structured dtypes are not tensors")),
        None => return Err(bad("header has no descr".into())),
    };
    let fortran = match get("fortran_order") {
        Some(Lit::Bool(b)) => b,
        _ => return Err(bad("fortran_order is not a bool".into())),
    };
    let shape = match get("shape") {
        Some(Lit::Tuple(v)) => v
            .into_iter()
            .map(|d| match d {
                Lit::Int(i) => u64::try_from(i).map_err(|_| bad("negative dimension".into())),
                _ => Err(bad("shape is not a tuple of ints".into())),
            })
            .collect::<Result<Vec<_>>>()?,
        // a list is "shape is not valid" to numpy, which checks `isinstance(shape, tuple)`
        _ => return Err(bad("shape is not a tuple".into())),
    };
    let (byteorder, code) = match descr.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, descr[1..].to_string()),
        _ => ('=', descr.clone()),
    };
    Ok(NpyHeader {
        descr: code,
        byteorder,
        fortran,
        shape,
        data_offset: start + hlen,
    })
}

/// The tensor of a .npy at `base` (file offset or inline bytes).
pub fn tensor(
    header: &NpyHeader,
    name: &str,
    source: DataSource,
    opts: &Options,
) -> Result<TensorSpec> {
    dense_array_spec(
        name,
        &header.descr,
        header.byteorder,
        &header.shape,
        header.fortran,
        source,
        format!("npy:{name}"),
        opts.limits.max_rank,
    )?
    .ok_or_else(|| {
        Error::unsupported(format!(
            "array `{name}` has dtype `{}`, which is not a tensor",
            header.descr
        ))
    })
}

pub fn analyze<R: Read + Seek>(
    r: &mut R,
    len: u64,
    opts: &Options,
    a: &mut Analysis,
) -> Result<()> {
    let header = parse_header(&mut crate::tensors::gather::SeekReader(&mut *r), 0, len)?;
    if header.is_object() {
        // numpy.load(allow_pickle=True) unpickles the array: its findings, and the numeric
        // arrays its objects hold (a 0-d object array is its one element).
        return object_array(r, header.data_offset, len, opts, a, None);
    }
    let data_len = len - header.data_offset;
    let spec = tensor(
        &header,
        "tensor",
        DataSource::File {
            offset: header.data_offset,
            len: data_len,
        },
        opts,
    )?;
    a.tensors.push(("tensor".into(), spec));
    Ok(())
}

/// The pickle of an object array (`numpy.load(allow_pickle=True)` runs `pickle.load` on it):
/// its findings, and the numeric arrays and tensors its objects hold, named by the naming
/// contract under `prefix` (an npz member name).
pub fn object_array<R: Read + Seek>(
    r: &mut R,
    start: u64,
    end: u64,
    opts: &Options,
    a: &mut Analysis,
    prefix: Option<&str>,
) -> Result<()> {
    r.seek(SeekFrom::Start(start))?;
    let mut graph = Graph::new(&opts.limits);
    let root = {
        let mut buf = BufReader::new(&mut *r);
        let mut input = Input::new(&mut buf, start, end);
        let ctx = Context {
            member: prefix.map(str::to_string),
            nesting: opts.nesting + 1,
            ..Default::default()
        };
        let res = Machine::new(&mut graph, &mut a.findings, &opts.limits, ctx).load(&mut input);
        super::nested::scan(&graph, &mut a.findings, opts, opts.nesting + 1);
        let u = res?;
        if u.end < end {
            a.findings.push(crate::policy::findings::Finding {
                rule: crate::policy::findings::Rule::TrailingBytes,
                severity: crate::policy::findings::Severity::Low,
                message: format!("{} bytes after the object array's pickle", end - u.end),
                global: None,
                location: crate::error::Location {
                    member: prefix.map(str::to_string),
                    offset: Some(u.end),
                    opcode: None,
                },
            });
        }
        u.root
    };
    let mut resolver = super::pickle_file::Nested {
        inner: None,
        findings: crate::policy::findings::Findings::default(),
        opts,
        cache: std::collections::HashMap::new(),
    };
    let before = a.tensors.len();
    let result = super::collect_tensors(&graph, root, None, &mut resolver, opts, a);
    a.findings.extend(resolver.findings.into_vec());
    result?;
    if let Some(p) = prefix {
        for (name, _) in &mut a.tensors[before..] {
            *name = if name == "tensor" {
                p.to_string()
            } else {
                format!("{p}.{name}")
            };
        }
    }
    Ok(())
}
