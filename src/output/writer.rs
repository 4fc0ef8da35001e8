//! Streaming safetensors writer.
//!
//! The header is planned up front from names, dtypes and shapes only, written, and then the tensor
//! bytes are streamed in data order; no tensor needs to be held in memory. The bytes produced are
//! identical to the reference crate's `serialize` (0.8.0) for the same tensors and a metadata map
//! with the same (single-key, or key-sorted) entries.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;

use super::{HEADER_LIMIT, MAX_HEADER_SIZE, MAX_RANK};
use crate::error::{Error, Result};
use crate::tensors::dtype::Dtype;

/// A tensor in data order with its byte length.
pub type PlannedTensor = (OutTensor, u64);

/// (name, dtype, shape, (begin, end)) borrowed, for rendering a header.
pub(crate) type EntryRef<'a> = (&'a str, Dtype, &'a [u64], (u64, u64));

/// One tensor of the output file, described before its bytes are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutTensor {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<u64>,
}

impl OutTensor {
    /// Byte length of the tensor's data: `prod(shape) * bits / 8`, with checked arithmetic.
    /// Fails when the product overflows `u64` or the total bit count is not a multiple of 8
    /// (e.g. `F4` with an odd element count).
    pub fn nbytes(&self) -> Result<u64> {
        tensor_nbytes(&self.name, self.dtype, &self.shape)
    }
}

/// Shared by the writer and the validator so both apply the same rule.
pub(crate) fn tensor_nbytes(name: &str, dtype: Dtype, shape: &[u64]) -> Result<u64> {
    let nelements = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            Error::malformed(format!(
                "tensor `{name}`: element count of shape {shape:?} overflows u64"
            ))
        })?;
    let nbits = nelements.checked_mul(dtype.bits()).ok_or_else(|| {
        Error::malformed(format!(
            "tensor `{name}`: bit count of {nelements} x {} overflows u64",
            dtype.as_str()
        ))
    })?;
    if nbits % 8 != 0 {
        return Err(Error::malformed(format!(
            "tensor `{name}`: {nelements} elements of {} ({} bits each) do not fill whole bytes",
            dtype.as_str(),
            dtype.bits()
        )));
    }
    Ok(nbits / 8)
}

/// The reference crate's data order: dtype descending (enum order), then name ascending.
pub(crate) fn canonical_cmp(a: (&str, Dtype), b: (&str, Dtype)) -> std::cmp::Ordering {
    b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0))
}

fn json_str(s: &str) -> String {
    // serde_json's escaping is exactly what the reference writer uses.
    serde_json::to_string(s).expect("serialising a str cannot fail")
}

/// Renders the padded header JSON (without the 8-byte length) for tensors already in data order.
pub(crate) fn render_header(
    metadata: &BTreeMap<String, String>,
    tensors: &[EntryRef<'_>],
) -> Vec<u8> {
    let mut s = String::from("{\"__metadata__\":{");
    for (i, (k, v)) in metadata.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&json_str(k));
        s.push(':');
        s.push_str(&json_str(v));
    }
    s.push('}');
    for (name, dtype, shape, (b, e)) in tensors {
        s.push(',');
        s.push_str(&json_str(name));
        s.push_str(":{\"dtype\":\"");
        s.push_str(dtype.as_str());
        s.push_str("\",\"shape\":[");
        for (i, d) in shape.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&d.to_string());
        }
        s.push_str(&format!("],\"data_offsets\":[{b},{e}]}}"));
    }
    s.push('}');
    let mut bytes = s.into_bytes();
    let padded = bytes.len().next_multiple_of(8);
    bytes.resize(padded, b' ');
    bytes
}

/// Builds the canonical header: `__metadata__` first (always present; `"format": "pt"` is added
/// when the map has no `format` key), then tensors in the reference crate's order (dtype
/// descending by enum order, ties by name ascending), offsets back to back, compact JSON, fields
/// in order dtype, shape, data_offsets, padded with b' ' to a multiple of 8.
///
/// Returns the full prefix bytes (8-byte LE length + header) and the tensors in data order with
/// their byte lengths.
pub fn plan_header(
    tensors: Vec<OutTensor>,
    metadata: &BTreeMap<String, String>,
) -> Result<(Vec<u8>, Vec<PlannedTensor>)> {
    let mut seen = HashSet::with_capacity(tensors.len());
    let mut planned = Vec::with_capacity(tensors.len());
    for t in tensors {
        if t.name.is_empty() {
            return Err(Error::malformed("output tensor with an empty name"));
        }
        if t.name == "__metadata__" {
            return Err(Error::malformed(
                "output tensor may not be named `__metadata__` (reserved by safetensors)",
            ));
        }
        if !seen.insert(t.name.clone()) {
            return Err(Error::malformed(format!(
                "duplicate output tensor name `{}`",
                t.name
            )));
        }
        if t.shape.len() > MAX_RANK {
            return Err(Error::limit(
                "max_rank",
                format!(
                    "tensor `{}` has rank {} (at most {MAX_RANK})",
                    t.name,
                    t.shape.len()
                ),
            ));
        }
        let n = t.nbytes()?;
        planned.push((t, n));
    }
    planned.sort_by(|(a, _), (b, _)| canonical_cmp((&a.name, a.dtype), (&b.name, b.dtype)));

    let mut metadata = metadata.clone();
    metadata
        .entry("format".to_string())
        .or_insert_with(|| "pt".to_string());

    let mut offset = 0u64;
    let mut entries = Vec::with_capacity(planned.len());
    for (t, n) in &planned {
        let end = offset.checked_add(*n).ok_or_else(|| {
            Error::malformed(format!(
                "tensor `{}`: data offset overflows u64 (total output too large)",
                t.name
            ))
        })?;
        entries.push((t.name.as_str(), t.dtype, t.shape.as_slice(), (offset, end)));
        offset = end;
    }
    let header = render_header(&metadata, &entries);
    let n = header.len() as u64;
    if n > MAX_HEADER_SIZE {
        return Err(Error::limit(
            HEADER_LIMIT,
            format!("safetensors header would be {n} bytes; the format allows at most {MAX_HEADER_SIZE}"),
        ));
    }
    let mut prefix = Vec::with_capacity(header.len() + 8);
    prefix.extend_from_slice(&n.to_le_bytes());
    prefix.extend_from_slice(&header);
    Ok((prefix, planned))
}

/// Writes a safetensors file to `sink`: the header at construction, then the tensor bytes as
/// they are supplied with [`write_data`](Self::write_data), in [`order`](Self::order).
pub struct SafetensorsWriter<W: Write> {
    sink: W,
    order: Vec<PlannedTensor>,
    /// Index of the tensor currently being filled (may point at a zero-byte tensor).
    idx: usize,
    /// Bytes still expected for `order[idx]`.
    in_current: u64,
    /// Bytes still expected in total.
    left: u64,
}

impl<W: Write> SafetensorsWriter<W> {
    /// Plans and writes the header. Fails on duplicate/empty/reserved names, bad shapes, or a
    /// header over 100,000,000 bytes, before anything is written.
    pub fn new(
        mut sink: W,
        tensors: Vec<OutTensor>,
        metadata: &BTreeMap<String, String>,
    ) -> Result<Self> {
        let (prefix, order) = plan_header(tensors, metadata)?;
        // plan_header proved the offsets do not overflow, so neither does the sum.
        let left = order.iter().map(|(_, n)| *n).sum();
        sink.write_all(&prefix)?;
        let in_current = order.first().map_or(0, |(_, n)| *n);
        let mut w = SafetensorsWriter {
            sink,
            order,
            idx: 0,
            in_current,
            left,
        };
        w.skip_filled();
        Ok(w)
    }

    /// Tensors in data order with their byte lengths; data must be supplied in this order.
    pub fn order(&self) -> &[PlannedTensor] {
        &self.order
    }

    /// The tensor whose bytes are expected next (zero-byte tensors are skipped), or `None` when
    /// all data has been written.
    pub fn current(&self) -> Option<&OutTensor> {
        self.order.get(self.idx).map(|(t, _)| t)
    }

    /// Bytes still expected before [`finish`](Self::finish).
    pub fn remaining(&self) -> u64 {
        self.left
    }

    /// Advance past tensors that need no more bytes.
    fn skip_filled(&mut self) {
        while self.in_current == 0 && self.idx < self.order.len() {
            self.idx += 1;
            self.in_current = self.order.get(self.idx).map_or(0, |(_, n)| *n);
        }
    }

    /// Appends tensor bytes; a call may span tensor boundaries. Fails, writing nothing, when
    /// `bytes` is longer than what remains to be written.
    pub fn write_data(&mut self, mut bytes: &[u8]) -> Result<()> {
        if bytes.len() as u64 > self.left {
            let who = self.current().map_or_else(
                || "after the last tensor".to_string(),
                |t| format!("at tensor `{}`", t.name),
            );
            return Err(Error::malformed(format!(
                "{} bytes of tensor data supplied but only {} remain ({who})",
                bytes.len(),
                self.left
            )));
        }
        while !bytes.is_empty() {
            // self.left > 0 here, so skip_filled put idx on a tensor with in_current > 0.
            let take = usize::try_from(self.in_current).map_or(bytes.len(), |r| r.min(bytes.len()));
            self.sink.write_all(&bytes[..take])?;
            bytes = &bytes[take..];
            self.in_current -= take as u64;
            self.left -= take as u64;
            self.skip_filled();
        }
        Ok(())
    }

    /// Let `copy` put the next `n` bytes straight into the sink (an in-kernel file-to-file copy),
    /// with the same bookkeeping as [`write_data`](Self::write_data). `n` must not run past the
    /// current tensor. `copy` returns `false` when it could not start (nothing was written);
    /// then this returns `false` too and the caller supplies the bytes itself.
    pub fn write_direct(
        &mut self,
        n: u64,
        copy: impl FnOnce(&mut W) -> Result<bool>,
    ) -> Result<bool> {
        if n > self.in_current {
            return Err(Error::malformed(format!(
                "{n} bytes copied but the current tensor needs {}",
                self.in_current
            )));
        }
        if n == 0 {
            return Ok(true);
        }
        self.sink.flush()?;
        if !copy(&mut self.sink)? {
            return Ok(false);
        }
        self.in_current -= n;
        self.left -= n;
        self.skip_filled();
        Ok(true)
    }

    /// Checks every tensor got all its bytes, flushes, and returns the sink.
    pub fn finish(mut self) -> Result<W> {
        if let Some(t) = self.current() {
            let short = self.in_current;
            return Err(Error::malformed(format!(
                "tensor `{}` is short by {short} bytes ({} bytes missing in total)",
                t.name, self.left
            )));
        }
        self.sink.flush()?;
        Ok(self.sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::SafeTensors;
    use std::collections::HashMap;

    pub(crate) fn st_dtype(d: Dtype) -> safetensors::Dtype {
        serde_json::from_str(&format!("\"{}\"", d.as_str())).unwrap()
    }

    fn t(name: &str, dtype: Dtype, shape: &[u64]) -> OutTensor {
        OutTensor {
            name: name.into(),
            dtype,
            shape: shape.to_vec(),
        }
    }

    /// Deterministic, distinct-per-tensor content.
    fn content(seed: usize, n: u64) -> Vec<u8> {
        (0..n)
            .map(|i| (i as usize * 31 + seed * 7 + 1) as u8)
            .collect()
    }

    fn pt_meta() -> BTreeMap<String, String> {
        BTreeMap::from([("format".to_string(), "pt".to_string())])
    }

    /// Every dtype, plus a zero-size tensor, a 0-d tensor, an F4 with an even count, F6 in whole
    /// bytes, and names that need JSON escaping / are non-ASCII.
    fn sample() -> Vec<OutTensor> {
        let mut v: Vec<OutTensor> = Dtype::ALL
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                let shape = match d {
                    Dtype::F4 => vec![3, 2],
                    Dtype::F6_E2M3 | Dtype::F6_E3M2 => vec![4],
                    _ => vec![(i as u64 % 3) + 1, 2],
                };
                t(
                    &format!("layer.{i}.{}", d.as_str().to_lowercase()),
                    d,
                    &shape,
                )
            })
            .collect();
        v.push(t("empty", Dtype::F32, &[0, 4]));
        v.push(t("empty.f16", Dtype::F16, &[5, 0]));
        v.push(t("scalar", Dtype::F32, &[]));
        v.push(t("scalar.i64", Dtype::I64, &[]));
        v.push(t("quote\"back\\slash\ttab\u{1}ctl/é✓", Dtype::U8, &[3]));
        v.push(t("a", Dtype::F32, &[2]));
        v.push(t("B", Dtype::F32, &[1]));
        v
    }

    fn write_all(
        tensors: Vec<OutTensor>,
        meta: &BTreeMap<String, String>,
    ) -> (Vec<u8>, HashMap<String, Vec<u8>>) {
        let mut w = SafetensorsWriter::new(Vec::new(), tensors, meta).unwrap();
        let order = w.order().to_vec();
        let mut data = HashMap::new();
        // Feed in odd-sized chunks that straddle tensor boundaries.
        let mut all = Vec::new();
        for (i, (t, n)) in order.iter().enumerate() {
            let c = content(i, *n);
            all.extend_from_slice(&c);
            data.insert(t.name.clone(), c);
        }
        for chunk in all.chunks(7) {
            w.write_data(chunk).unwrap();
        }
        assert!(w.current().is_none());
        (w.finish().unwrap(), data)
    }

    #[test]
    fn nbytes_rules() {
        assert_eq!(t("x", Dtype::F32, &[2, 3]).nbytes().unwrap(), 24);
        assert_eq!(t("x", Dtype::F32, &[]).nbytes().unwrap(), 4);
        assert_eq!(t("x", Dtype::F32, &[0, 7]).nbytes().unwrap(), 0);
        assert_eq!(t("x", Dtype::F4, &[6]).nbytes().unwrap(), 3);
        assert_eq!(t("x", Dtype::F6_E2M3, &[4]).nbytes().unwrap(), 3);
        let e = t("x", Dtype::F4, &[3]).nbytes().unwrap_err().to_string();
        assert!(e.contains("whole bytes") && e.contains("`x`"), "{e}");
        let e = t("x", Dtype::F6_E3M2, &[2])
            .nbytes()
            .unwrap_err()
            .to_string();
        assert!(e.contains("whole bytes"), "{e}");
        let e = t("x", Dtype::U8, &[1 << 32, 1 << 32])
            .nbytes()
            .unwrap_err()
            .to_string();
        assert!(e.contains("overflows"), "{e}");
        // Element count fits but the bit count does not.
        let e = t("x", Dtype::U64, &[1 << 60])
            .nbytes()
            .unwrap_err()
            .to_string();
        assert!(e.contains("bit count"), "{e}");
    }

    #[test]
    fn round_trip_through_reference_reader() {
        let meta = BTreeMap::from([
            ("format".to_string(), "pt".to_string()),
            ("source".to_string(), "unit \"test\"\n".to_string()),
        ]);
        let (file, data) = write_all(sample(), &meta);
        let st = SafeTensors::deserialize(&file).expect("reference reader accepts our file");
        let (_, md) = SafeTensors::read_metadata(&file).unwrap();
        let got_meta: BTreeMap<_, _> = md.metadata().clone().unwrap().into_iter().collect();
        assert_eq!(got_meta, meta);
        let want = sample();
        assert_eq!(st.len(), want.len());
        for w in &want {
            let v = st.tensor(&w.name).unwrap();
            assert_eq!(v.dtype(), st_dtype(w.dtype), "{}", w.name);
            let shape: Vec<u64> = v.shape().iter().map(|&d| d as u64).collect();
            assert_eq!(shape, w.shape, "{}", w.name);
            assert_eq!(v.data(), &data[&w.name][..], "{}", w.name);
        }
        // And our own strict validator accepts it in canonical mode.
        let mut cur = std::io::Cursor::new(&file);
        let vh = crate::output::validate_header(
            &mut cur,
            file.len() as u64,
            crate::output::Strictness::Canonical,
        )
        .unwrap();
        assert_eq!(vh.tensors.len(), want.len());
        assert_eq!(vh.metadata, meta);
    }

    #[test]
    fn header_identical_to_reference_writer() {
        let tensors = sample();
        let (ours, data) = write_all(tensors.clone(), &pt_meta());
        let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
            .iter()
            .map(|t| {
                let shape = t.shape.iter().map(|&d| d as usize).collect();
                let v =
                    safetensors::tensor::TensorView::new(st_dtype(t.dtype), shape, &data[&t.name])
                        .unwrap();
                (t.name.clone(), v)
            })
            .collect();
        let meta: HashMap<String, String> = pt_meta().into_iter().collect();
        let reference = safetensors::serialize(views, Some(meta)).unwrap();
        let n = u64::from_le_bytes(reference[..8].try_into().unwrap()) as usize;
        assert_eq!(
            String::from_utf8_lossy(&ours[..8 + n]),
            String::from_utf8_lossy(&reference[..8 + n])
        );
        // Whole files, data order included, are byte-identical.
        assert_eq!(ours, reference);
    }

    #[test]
    fn empty_file_and_default_metadata() {
        let (prefix, order) = plan_header(vec![], &BTreeMap::new()).unwrap();
        assert!(order.is_empty());
        assert_eq!(&prefix[8..], b"{\"__metadata__\":{\"format\":\"pt\"}}");
        assert_eq!(u64::from_le_bytes(prefix[..8].try_into().unwrap()), 32);
        // Padding: one more metadata byte needs 7 spaces.
        let meta = BTreeMap::from([
            ("format".to_string(), "pt".to_string()),
            ("k".to_string(), String::new()),
        ]);
        let (prefix, _) = plan_header(vec![], &meta).unwrap();
        assert_eq!(
            &prefix[8..],
            b"{\"__metadata__\":{\"format\":\"pt\",\"k\":\"\"}} "
        );
        let w = SafetensorsWriter::new(Vec::new(), vec![], &BTreeMap::new()).unwrap();
        assert!(w.current().is_none());
        let file = w.finish().unwrap();
        assert!(SafeTensors::deserialize(&file).unwrap().is_empty());
        // A caller-provided format is kept.
        let meta = BTreeMap::from([("format".to_string(), "np".to_string())]);
        let (prefix, _) = plan_header(vec![], &meta).unwrap();
        assert!(String::from_utf8_lossy(&prefix).contains("\"format\":\"np\""));
    }

    #[test]
    fn current_skips_zero_byte_tensors() {
        let ts = vec![
            t("z0", Dtype::F64, &[0]),
            t("x", Dtype::F32, &[1]),
            t("z1", Dtype::F32, &[0, 2]),
        ];
        let mut w = SafetensorsWriter::new(Vec::new(), ts, &pt_meta()).unwrap();
        let names: Vec<_> = w.order().iter().map(|(t, _)| t.name.as_str()).collect();
        assert_eq!(names, ["z0", "x", "z1"]);
        assert_eq!(w.current().unwrap().name, "x");
        w.write_data(&[1, 2]).unwrap();
        assert_eq!(w.current().unwrap().name, "x");
        w.write_data(&[]).unwrap();
        w.write_data(&[3, 4]).unwrap();
        assert!(w.current().is_none());
        assert_eq!(w.remaining(), 0);
        let file = w.finish().unwrap();
        assert_eq!(&file[file.len() - 4..], &[1, 2, 3, 4]);
        SafeTensors::deserialize(&file).unwrap();
    }

    #[test]
    fn misuse_too_many_bytes() {
        let ts = vec![t("a", Dtype::U8, &[2]), t("b", Dtype::U8, &[1])];
        let mut w = SafetensorsWriter::new(Vec::new(), ts, &pt_meta()).unwrap();
        let e = w.write_data(&[0; 4]).unwrap_err().to_string();
        assert!(
            e.contains("4 bytes") && e.contains("only 3 remain") && e.contains("`a`"),
            "{e}"
        );
        // Nothing was consumed by the failed call.
        assert_eq!(w.remaining(), 3);
        w.write_data(&[0; 3]).unwrap();
        let e = w.write_data(&[0]).unwrap_err().to_string();
        assert!(e.contains("after the last tensor"), "{e}");
        w.finish().unwrap();
    }

    #[test]
    fn misuse_short_data() {
        let ts = vec![t("a", Dtype::U8, &[2]), t("b", Dtype::F32, &[1])];
        let mut w = SafetensorsWriter::new(Vec::new(), ts, &pt_meta()).unwrap();
        w.write_data(&[0; 5]).unwrap();
        assert_eq!(w.current().unwrap().name, "a");
        let e = w.finish().unwrap_err().to_string();
        assert!(e.contains("tensor `a` is short by 1 bytes"), "{e}");
        let w = SafetensorsWriter::new(Vec::new(), vec![t("only", Dtype::F32, &[2])], &pt_meta())
            .unwrap();
        let e = w.finish().unwrap_err().to_string();
        assert!(e.contains("`only` is short by 8"), "{e}");
    }

    #[test]
    fn misuse_bad_names_and_shapes() {
        let dup = vec![t("a", Dtype::U8, &[1]), t("a", Dtype::F32, &[1])];
        let e = SafetensorsWriter::new(Vec::new(), dup, &pt_meta())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("duplicate output tensor name `a`"), "{e}");
        let e = plan_header(vec![t("", Dtype::U8, &[1])], &pt_meta())
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty name"), "{e}");
        let e = plan_header(vec![t("__metadata__", Dtype::U8, &[1])], &pt_meta())
            .unwrap_err()
            .to_string();
        assert!(e.contains("reserved"), "{e}");
        let e = plan_header(vec![t("odd", Dtype::F4, &[5])], &pt_meta())
            .unwrap_err()
            .to_string();
        assert!(e.contains("`odd`") && e.contains("whole bytes"), "{e}");
        let e = plan_header(vec![t("deep", Dtype::U8, &[1; 65])], &pt_meta()).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Limit {
                    limit: "max_rank",
                    ..
                }
            ),
            "{e}"
        );
        // Offsets that overflow u64 across tensors.
        let big: Vec<_> = (0..9)
            .map(|i| t(&format!("x{i}"), Dtype::U8, &[(1 << 61) - 1]))
            .collect();
        let e = plan_header(big, &pt_meta()).unwrap_err().to_string();
        assert!(e.contains("offset overflows"), "{e}");
        // Nothing is written when planning fails.
        let mut sink = Vec::new();
        assert!(
            SafetensorsWriter::new(&mut sink, vec![t("", Dtype::U8, &[1])], &pt_meta()).is_err()
        );
        assert!(sink.is_empty());
    }

    #[test]
    fn header_too_large() {
        // ~100 MB of metadata pushes the header over the format's limit.
        let meta = BTreeMap::from([("big".to_string(), "x".repeat(100_000_000))]);
        let e = plan_header(vec![], &meta).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Limit {
                    limit: HEADER_LIMIT,
                    ..
                }
            ),
            "{e}"
        );
    }
}
