//! torch's dtypes as they appear in checkpoints: `torch.<name>` globals, legacy storage classes
//! (`torch.FloatStorage`), TorchScript's `torch.<ScalarType>Storage`, and numpy descr codes, with
//! the safetensors dtype each maps to (if any).

use super::dtype::Dtype;

#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TorchDtype {
    Float64,
    Float32,
    Float16,
    BFloat16,
    Int64,
    Int32,
    Int16,
    Int8,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Bool,
    Complex64,
    Complex128,
    Complex32,
    Float8_e4m3fn,
    Float8_e5m2,
    Float8_e4m3fnuz,
    Float8_e5m2fnuz,
    Float8_e8m0fnu,
    Float4_e2m1fn_x2,
    QInt8,
    QUInt8,
    QInt32,
    QUInt4x2,
    QUInt2x4,
    Bits8,
    Bits16,
    Bits1x8,
    Bits2x4,
    Bits4x2,
}

/// (dtype, `torch.<name>`, aliases, legacy storage class, TorchScript ScalarType name, bytes per element)
type Row = (
    TorchDtype,
    &'static str,
    &'static [&'static str],
    Option<&'static str>,
    &'static str,
    u64,
);
const TABLE: &[Row] = &[
    (
        TorchDtype::Float64,
        "float64",
        &["double"],
        Some("DoubleStorage"),
        "Double",
        8,
    ),
    (
        TorchDtype::Float32,
        "float32",
        &["float"],
        Some("FloatStorage"),
        "Float",
        4,
    ),
    (
        TorchDtype::Float16,
        "float16",
        &["half"],
        Some("HalfStorage"),
        "Half",
        2,
    ),
    (
        TorchDtype::BFloat16,
        "bfloat16",
        &[],
        Some("BFloat16Storage"),
        "BFloat16",
        2,
    ),
    (
        TorchDtype::Int64,
        "int64",
        &["long"],
        Some("LongStorage"),
        "Long",
        8,
    ),
    (
        TorchDtype::Int32,
        "int32",
        &["int"],
        Some("IntStorage"),
        "Int",
        4,
    ),
    (
        TorchDtype::Int16,
        "int16",
        &["short"],
        Some("ShortStorage"),
        "Short",
        2,
    ),
    (
        TorchDtype::Int8,
        "int8",
        &[],
        Some("CharStorage"),
        "Char",
        1,
    ),
    (
        TorchDtype::UInt8,
        "uint8",
        &[],
        Some("ByteStorage"),
        "Byte",
        1,
    ),
    (TorchDtype::UInt16, "uint16", &[], None, "UInt16", 2),
    (TorchDtype::UInt32, "uint32", &[], None, "UInt32", 4),
    (TorchDtype::UInt64, "uint64", &[], None, "UInt64", 8),
    (
        TorchDtype::Bool,
        "bool",
        &[],
        Some("BoolStorage"),
        "Bool",
        1,
    ),
    (
        TorchDtype::Complex64,
        "complex64",
        &["cfloat"],
        Some("ComplexFloatStorage"),
        "ComplexFloat",
        8,
    ),
    (
        TorchDtype::Complex128,
        "complex128",
        &["cdouble"],
        Some("ComplexDoubleStorage"),
        "ComplexDouble",
        16,
    ),
    (
        TorchDtype::Complex32,
        "complex32",
        &["chalf"],
        None,
        "ComplexHalf",
        4,
    ),
    (
        TorchDtype::Float8_e4m3fn,
        "float8_e4m3fn",
        &[],
        None,
        "Float8_e4m3fn",
        1,
    ),
    (
        TorchDtype::Float8_e5m2,
        "float8_e5m2",
        &[],
        None,
        "Float8_e5m2",
        1,
    ),
    (
        TorchDtype::Float8_e4m3fnuz,
        "float8_e4m3fnuz",
        &[],
        None,
        "Float8_e4m3fnuz",
        1,
    ),
    (
        TorchDtype::Float8_e5m2fnuz,
        "float8_e5m2fnuz",
        &[],
        None,
        "Float8_e5m2fnuz",
        1,
    ),
    (
        TorchDtype::Float8_e8m0fnu,
        "float8_e8m0fnu",
        &[],
        None,
        "Float8_e8m0fnu",
        1,
    ),
    (
        TorchDtype::Float4_e2m1fn_x2,
        "float4_e2m1fn_x2",
        &[],
        None,
        "Float4_e2m1fn_x2",
        1,
    ),
    (
        TorchDtype::QInt8,
        "qint8",
        &[],
        Some("QInt8Storage"),
        "QInt8",
        1,
    ),
    (
        TorchDtype::QUInt8,
        "quint8",
        &[],
        Some("QUInt8Storage"),
        "QUInt8",
        1,
    ),
    (
        TorchDtype::QInt32,
        "qint32",
        &[],
        Some("QInt32Storage"),
        "QInt32",
        4,
    ),
    (
        TorchDtype::QUInt4x2,
        "quint4x2",
        &[],
        Some("QUInt4x2Storage"),
        "QUInt4x2",
        1,
    ),
    (
        TorchDtype::QUInt2x4,
        "quint2x4",
        &[],
        Some("QUInt2x4Storage"),
        "QUInt2x4",
        1,
    ),
    (TorchDtype::Bits8, "bits8", &[], None, "Bits8", 1),
    (TorchDtype::Bits16, "bits16", &[], None, "Bits16", 2),
    (TorchDtype::Bits1x8, "bits1x8", &[], None, "Bits1x8", 1),
    (TorchDtype::Bits2x4, "bits2x4", &[], None, "Bits2x4", 1),
    (TorchDtype::Bits4x2, "bits4x2", &[], None, "Bits4x2", 1),
];

fn row(d: TorchDtype) -> &'static Row {
    TABLE
        .iter()
        .find(|r| r.0 == d)
        .expect("every dtype has a row")
}

impl TorchDtype {
    pub fn name(self) -> &'static str {
        row(self).1
    }

    /// Bytes per element as torch stores it (float4_e2m1fn_x2 packs two values in one byte).
    pub fn itemsize(self) -> u64 {
        row(self).5
    }

    /// `torch.<name>` global → dtype.
    pub fn from_torch_name(name: &str) -> Option<TorchDtype> {
        TABLE
            .iter()
            .find(|r| r.1 == name || r.2.contains(&name))
            .map(|r| r.0)
    }

    /// Storage class name (legacy `FloatStorage` or TorchScript `Float8_e4m3fnStorage`) → dtype.
    pub fn from_storage_name(name: &str) -> Option<TorchDtype> {
        let base = name.strip_suffix("Storage")?;
        TABLE
            .iter()
            .find(|r| r.3 == Some(name) || r.4 == base)
            .map(|r| r.0)
    }

    /// The safetensors dtype, or None for what safetensors cannot represent.
    pub fn to_safetensors(self) -> Option<Dtype> {
        Some(match self {
            TorchDtype::Float64 => Dtype::F64,
            TorchDtype::Float32 => Dtype::F32,
            TorchDtype::Float16 => Dtype::F16,
            TorchDtype::BFloat16 => Dtype::BF16,
            TorchDtype::Int64 => Dtype::I64,
            TorchDtype::Int32 => Dtype::I32,
            TorchDtype::Int16 => Dtype::I16,
            TorchDtype::Int8 => Dtype::I8,
            TorchDtype::UInt8 => Dtype::U8,
            TorchDtype::UInt16 => Dtype::U16,
            TorchDtype::UInt32 => Dtype::U32,
            TorchDtype::UInt64 => Dtype::U64,
            TorchDtype::Bool => Dtype::BOOL,
            TorchDtype::Complex64 => Dtype::C64,
            TorchDtype::Float8_e4m3fn => Dtype::F8_E4M3,
            TorchDtype::Float8_e5m2 => Dtype::F8_E5M2,
            TorchDtype::Float8_e4m3fnuz => Dtype::F8_E4M3FNUZ,
            TorchDtype::Float8_e5m2fnuz => Dtype::F8_E5M2FNUZ,
            TorchDtype::Float8_e8m0fnu => Dtype::F8_E8M0,
            TorchDtype::Float4_e2m1fn_x2 => Dtype::F4,
            _ => return None,
        })
    }

    /// Size of the unit that byte order applies to (complex numbers swap each half).
    pub fn swap_unit(self) -> u64 {
        match self {
            TorchDtype::Complex64 => 4,
            TorchDtype::Complex128 => 8,
            TorchDtype::Complex32 => 2,
            d => d.itemsize(),
        }
    }

    pub fn is_complex(self) -> bool {
        matches!(
            self,
            TorchDtype::Complex64 | TorchDtype::Complex128 | TorchDtype::Complex32
        )
    }

    pub fn is_quantized(self) -> bool {
        matches!(
            self,
            TorchDtype::QInt8
                | TorchDtype::QUInt8
                | TorchDtype::QInt32
                | TorchDtype::QUInt4x2
                | TorchDtype::QUInt2x4
        )
    }

    /// numpy descr without byte order (`f4`, `i8`, `b1`...) → dtype.
    pub fn from_numpy_descr(code: &str) -> Option<TorchDtype> {
        Some(match code {
            "f8" => TorchDtype::Float64,
            "f4" => TorchDtype::Float32,
            "f2" => TorchDtype::Float16,
            "i8" => TorchDtype::Int64,
            "i4" => TorchDtype::Int32,
            "i2" => TorchDtype::Int16,
            "i1" => TorchDtype::Int8,
            "u1" => TorchDtype::UInt8,
            "u2" => TorchDtype::UInt16,
            "u4" => TorchDtype::UInt32,
            "u8" => TorchDtype::UInt64,
            "b1" => TorchDtype::Bool,
            "c8" => TorchDtype::Complex64,
            "c16" => TorchDtype::Complex128,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_names_resolve_both_spellings() {
        assert_eq!(
            TorchDtype::from_storage_name("FloatStorage"),
            Some(TorchDtype::Float32)
        );
        assert_eq!(
            TorchDtype::from_storage_name("Float8_e4m3fnStorage"),
            Some(TorchDtype::Float8_e4m3fn)
        );
        assert_eq!(
            TorchDtype::from_storage_name("UInt16Storage"),
            Some(TorchDtype::UInt16)
        );
        assert_eq!(
            TorchDtype::from_storage_name("ByteStorage"),
            Some(TorchDtype::UInt8)
        );
        assert_eq!(TorchDtype::from_storage_name("Byte"), None);
        assert_eq!(
            TorchDtype::from_torch_name("half"),
            Some(TorchDtype::Float16)
        );
    }
}
