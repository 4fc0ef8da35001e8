//! numpy dtype descr strings (`<f4`, `|b1`, `O8`...) as far as tensors need them.

use super::torch_dtype::TorchDtype;

/// Bytes per element for a descr without byte order (`f4`, `i8`, `b1`, `c16`, `U10`, `S5`, `V8`).
pub fn itemsize(code: &str) -> Option<u64> {
    let code = code.trim_start_matches(['<', '>', '|', '=']);
    let (kind, size) = code.split_at(code.find(|c: char| c.is_ascii_digit())?);
    let n: u64 = size.parse().ok()?;
    match kind {
        "U" => n.checked_mul(4),
        "b" | "i" | "u" | "f" | "c" | "S" | "V" | "O" | "M" | "m" => Some(n),
        _ => None,
    }
}

/// The tensor dtype of a numeric descr, or None for strings, records, objects, datetimes.
pub fn torch_dtype(code: &str) -> Option<TorchDtype> {
    TorchDtype::from_numpy_descr(code.trim_start_matches(['<', '>', '|', '=']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descrs() {
        assert_eq!(itemsize("<f4"), Some(4));
        assert_eq!(itemsize("c16"), Some(16));
        assert_eq!(itemsize("U3"), Some(12));
        assert_eq!(itemsize("O8"), Some(8));
        assert_eq!(itemsize("f"), None);
        assert_eq!(torch_dtype("|b1"), Some(TorchDtype::Bool));
        assert_eq!(torch_dtype("O8"), None);
    }
}
