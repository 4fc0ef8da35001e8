//! Two models compared tensor by tensor: what is only in one, what changed type or shape, and
//! for changed values how many elements differ, the largest absolute difference and the
//! relative L2 change, largest first, so that a localised edit (a ROME-style rank-one update
//! of one layer) stands at the top.

use super::tensors::{Tensor, TensorTable};
use crate::tensors::dtype::Dtype;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Retyped {
    pub name: String,
    pub a: Side,
    pub b: Side,
}

#[derive(Debug, Clone, Serialize)]
pub struct Changed {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    pub elements: u64,
    /// Elements whose bytes differ.
    pub differing: u64,
    /// Absent for dtypes compared byte by byte (8-bit floats, sub-byte types, complex).
    pub max_abs_diff: Option<f64>,
    /// ‖B − A‖₂ / ‖A‖₂ over the whole tensor (infinite when A is all zeros).
    pub relative_l2: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Diff {
    pub common: usize,
    pub identical: usize,
    /// Largest relative change first.
    pub changed: Vec<Changed>,
    pub retyped: Vec<Retyped>,
    pub only_in_a: Vec<Side>,
    pub only_in_b: Vec<Side>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty()
            && self.retyped.is_empty()
            && self.only_in_a.is_empty()
            && self.only_in_b.is_empty()
    }
}

fn side(t: &Tensor) -> Side {
    Side {
        name: t.name.clone(),
        dtype: t.dtype.as_str().into(),
        shape: t.shape.clone(),
    }
}

pub fn diff(a: &TensorTable, b: &TensorTable) -> std::io::Result<Diff> {
    let mut out = Diff::default();
    let bs: BTreeMap<&str, &Tensor> = b.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    for ta in &a.tensors {
        let Some(tb) = bs.get(ta.name.as_str()) else {
            out.only_in_a.push(side(ta));
            continue;
        };
        out.common += 1;
        if ta.dtype != tb.dtype || ta.shape != tb.shape {
            out.retyped.push(Retyped {
                name: ta.name.clone(),
                a: side(ta),
                b: side(tb),
            });
            continue;
        }
        match compare(a, ta, b, tb)? {
            None => out.identical += 1,
            Some(c) => out.changed.push(c),
        }
    }
    let names_a: std::collections::BTreeSet<&str> =
        a.tensors.iter().map(|t| t.name.as_str()).collect();
    out.only_in_b = b
        .tensors
        .iter()
        .filter(|t| !names_a.contains(t.name.as_str()))
        .map(side)
        .collect();
    out.changed.sort_by(|x, y| {
        let key = |c: &Changed| c.relative_l2.unwrap_or(-1.0);
        key(y).total_cmp(&key(x)).then_with(|| x.name.cmp(&y.name))
    });
    Ok(out)
}

/// Element decoding for the dtypes with a numeric value; others are compared as raw items.
fn value(dtype: Dtype, b: &[u8]) -> Option<f64> {
    Some(match dtype {
        Dtype::F64 => f64::from_le_bytes(b.try_into().ok()?),
        Dtype::F32 => f32::from_le_bytes(b.try_into().ok()?) as f64,
        Dtype::F16 => f16_to_f64(u16::from_le_bytes(b.try_into().ok()?)),
        Dtype::BF16 => f32::from_bits((u16::from_le_bytes(b.try_into().ok()?) as u32) << 16) as f64,
        Dtype::I64 => i64::from_le_bytes(b.try_into().ok()?) as f64,
        Dtype::U64 => u64::from_le_bytes(b.try_into().ok()?) as f64,
        Dtype::I32 => i32::from_le_bytes(b.try_into().ok()?) as f64,
        Dtype::U32 => u32::from_le_bytes(b.try_into().ok()?) as f64,
        Dtype::I16 => i16::from_le_bytes(b.try_into().ok()?) as f64,
        Dtype::U16 => u16::from_le_bytes(b.try_into().ok()?) as f64,
        Dtype::I8 => b[0] as i8 as f64,
        Dtype::U8 | Dtype::BOOL => b[0] as f64,
        _ => return None,
    })
}

fn f16_to_f64(h: u16) -> f64 {
    let sign = if h >> 15 == 1 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let man = (h & 0x3ff) as f64;
    sign * match exp {
        0 => man * 2f64.powi(-24),
        31 if man == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + man / 1024.0) * 2f64.powi(e - 15),
    }
}

fn compare(
    a: &TensorTable,
    ta: &Tensor,
    b: &TensorTable,
    tb: &Tensor,
) -> std::io::Result<Option<Changed>> {
    let bits = ta.dtype.bits();
    // Sub-byte types are compared byte by byte; everything else item by item.
    let item = if bits.is_multiple_of(8) {
        (bits / 8) as usize
    } else {
        1
    };
    let numeric = bits.is_multiple_of(8) && value(ta.dtype, &vec![0u8; item]).is_some();
    let len = ta.end - ta.begin;
    let chunk = (1usize << 20) / item * item;
    let (mut ba, mut bb) = (vec![0u8; chunk], vec![0u8; chunk]);
    let (mut differing, mut max_abs, mut diff_sq, mut a_sq) = (0u64, 0f64, 0f64, 0f64);
    let mut at = 0u64;
    while at < len {
        let n = chunk.min((len - at) as usize);
        a.read_at(&mut ba[..n], ta.begin + at)?;
        b.read_at(&mut bb[..n], tb.begin + at)?;
        for (xa, xb) in ba[..n].chunks_exact(item).zip(bb[..n].chunks_exact(item)) {
            let same = xa == xb;
            if !same {
                differing += 1;
            }
            if numeric {
                let (va, vb) = (
                    value(ta.dtype, xa).unwrap_or(0.0),
                    value(ta.dtype, xb).unwrap_or(0.0),
                );
                a_sq += va * va;
                if !same {
                    let d = vb - va;
                    if d.is_finite() {
                        diff_sq += d * d;
                        max_abs = max_abs.max(d.abs());
                    }
                }
            }
        }
        at += n as u64;
    }
    if differing == 0 {
        return Ok(None);
    }
    let relative = if a_sq > 0.0 {
        (diff_sq / a_sq).sqrt()
    } else {
        f64::INFINITY
    };
    Ok(Some(Changed {
        name: ta.name.clone(),
        dtype: ta.dtype.as_str().into(),
        shape: ta.shape.clone(),
        elements: len / item as u64,
        differing,
        max_abs_diff: numeric.then_some(max_abs),
        relative_l2: numeric.then_some(relative),
    }))
}

#[cfg(test)]
mod tests {
    use super::f16_to_f64;

    #[test]
    fn half_floats_decode_like_ieee_binary16() {
        assert_eq!(f16_to_f64(0x3c00), 1.0);
        assert_eq!(f16_to_f64(0xc000), -2.0);
        assert_eq!(f16_to_f64(0x0001), 2f64.powi(-24));
        assert!(f16_to_f64(0x7e00).is_nan());
        assert_eq!(f16_to_f64(0x7c00), f64::INFINITY);
    }
}
