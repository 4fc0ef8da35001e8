//! The formats modelguard recognises but does not read, although they can carry code. A file
//! (or an archive member) in one of them is reported as *unscanned*, which fails `scan`'s gate:
//! a scanner used in CI must never pass what it did not read.
//!
//! [`TABLE`] is the one registry of these formats: detection, names, the extensions used when
//! the content cannot tell, and what code each can carry. The README's table is rendered from it
//! ([`readme_row`]) and a test keeps the two equal.
//!
//! Content decides wherever it can: magic bytes ([`detect_head`]), zip member names
//! ([`zip_kind`]), a protobuf walk for ONNX and SavedModel, and the HDF5 superblock behind a user
//! block ([`detect_late`]). The extension is used only for a file whose content matches no format
//! modelguard knows ([`by_extension`]): protobuf has no magic, and a file named like a
//! code-carrying format that we cannot identify was still not read.

use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, SeekFrom};

/// One row of [`TABLE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Hdf5,
    Keras,
    SavedModel,
    Onnx,
    Tflite,
    Gguf,
    TorchServe,
    SevenZipUndecodable,
    Rar,
    Bzip2,
    Xz,
    Lzma,
    Lz4,
    Zstd,
    JoblibZf,
    TorchPrerelease,
}

/// How a row is recognised by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detect {
    /// `bytes` at byte `offset` of the file.
    Magic { offset: usize, bytes: &'static [u8] },
    /// The HDF5 superblock signature `\x89HDF\r\n\x1a\n` at offset 0, or at 512 × 2^n (after a
    /// user block), as the HDF5 library looks for it.
    Hdf5,
    /// A zip archive holding every name of `all` and, when `any` is not empty, one of `any`.
    ZipMembers {
        all: &'static [&'static str],
        any: &'static [&'static str],
    },
    /// Protobuf `onnx.ModelProto`: the first field is `ir_version` (varint 1), every top-level
    /// field among the first 64 is a ModelProto field with its wire type, and `graph` (7) is one
    /// of them.
    OnnxProto,
    /// Protobuf `tensorflow.SavedModel`: the first field is `saved_model_schema_version`
    /// (varint 1), every top-level field among the first 64 is field 1 (varint) or
    /// `meta_graphs` (2, a message), and there is a `meta_graphs`.
    SavedModelProto,
    /// Found while reading a 7z archive: an encrypted block or a codec modelguard does not
    /// decode.
    SevenZipBlock,
}

#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub kind: Kind,
    /// The `format` reports name it by.
    pub id: &'static str,
    pub name: &'static str,
    pub detect: Detect,
    /// How the README says it is detected.
    pub detected_by: &'static str,
    /// Used only when the content matches no format modelguard knows (lower case, no dot).
    pub extensions: &'static [&'static str],
    /// What code it can carry (why it is not simply skipped).
    pub carries: &'static str,
}

const HDF5_SIGNATURE: &[u8] = b"\x89HDF\r\n\x1a\n";

/// Every format modelguard does not read but which can carry code. Keep the README's table in
/// step (`tests/unscanned.rs` compares them).
pub const TABLE: &[Entry] = &[
    Entry {
        kind: Kind::Hdf5,
        id: "hdf5",
        name: "Keras HDF5 / HDF5",
        detect: Detect::Hdf5,
        detected_by: "`\\x89HDF\\r\\n\\x1a\\n` at offset 0, or at 512 × 2^n after a user block (also checked behind every format we read: a polyglot is both)",
        extensions: &["h5", "hdf5"],
        carries: "Keras `Lambda` layers hold marshalled Python bytecode in `model_config`; custom objects name any module",
    },
    Entry {
        kind: Kind::Keras,
        id: "keras",
        name: "Keras v3 `.keras`",
        detect: Detect::ZipMembers {
            all: &["config.json"],
            any: &["metadata.json", "model.weights.h5", "model.weights.npz"],
        },
        detected_by: "zip holding `config.json` and one of `metadata.json`, `model.weights.h5`, `model.weights.npz`",
        extensions: &["keras"],
        carries: "`Lambda` layers (base64 marshalled bytecode in `config.json`), custom objects naming any module",
    },
    Entry {
        kind: Kind::SavedModel,
        id: "tf-savedmodel",
        name: "TensorFlow SavedModel / protobuf graph",
        detect: Detect::SavedModelProto,
        detected_by: "protobuf whose first field is varint 1 and whose top-level fields are only 1 (varint) and `meta_graphs` (2); `saved_model.pb`, `keras_metadata.pb`, frozen graphs and `.pbtxt` by extension",
        extensions: &["pb", "pbtxt"],
        carries: "graph ops that read and write files or run Python (`PyFunc`); Keras metadata with `Lambda` bytecode",
    },
    Entry {
        kind: Kind::Onnx,
        id: "onnx",
        name: "ONNX",
        detect: Detect::OnnxProto,
        detected_by: "protobuf `ModelProto`: first field `ir_version` (varint 1), top-level fields only ModelProto's, `graph` (7) present",
        extensions: &["onnx"],
        carries: "custom operator domains (native libraries the runtime loads), external data paths outside the model folder",
    },
    Entry {
        kind: Kind::Tflite,
        id: "tflite",
        name: "TensorFlow Lite",
        detect: Detect::Magic {
            offset: 4,
            bytes: b"TFL3",
        },
        detected_by: "FlatBuffer identifier `TFL3` at offset 4",
        extensions: &["tflite"],
        carries: "custom ops and TensorFlow (Flex) ops such as file reads and writes",
    },
    Entry {
        kind: Kind::Gguf,
        id: "gguf",
        name: "GGUF",
        detect: Detect::Magic {
            offset: 0,
            bytes: b"GGUF",
        },
        detected_by: "`GGUF` at offset 0",
        extensions: &["gguf"],
        carries: "Jinja chat templates that template engines run (CVE-2024-34359)",
    },
    Entry {
        kind: Kind::TorchServe,
        id: "torchserve-mar",
        name: "TorchServe model archive",
        detect: Detect::ZipMembers {
            all: &["MAR-INF/MANIFEST.json"],
            any: &[],
        },
        detected_by: "zip holding `MAR-INF/MANIFEST.json`",
        extensions: &["mar"],
        carries: "Python handler code that TorchServe imports",
    },
    Entry {
        kind: Kind::SevenZipUndecodable,
        id: "7z-undecodable",
        name: "7z content modelguard cannot decode",
        detect: Detect::SevenZipBlock,
        detected_by: "7z archive (`7z\\xbc\\xaf\\x27\\x1c`) whose header or block is encrypted or uses a codec other than LZMA, LZMA2, copy and the BCJ/delta filters",
        extensions: &[],
        carries: "pickles inside, which picklescan-style loaders extract and load",
    },
    Entry {
        kind: Kind::Rar,
        id: "rar",
        name: "RAR archive",
        detect: Detect::Magic {
            offset: 0,
            bytes: b"Rar!\x1a\x07",
        },
        detected_by: "`Rar!\\x1a\\x07` at offset 0",
        extensions: &["rar"],
        carries: "pickles inside (not opened)",
    },
    Entry {
        kind: Kind::Bzip2,
        id: "bzip2",
        name: "bzip2-compressed file",
        detect: Detect::Magic {
            offset: 0,
            bytes: b"BZh",
        },
        detected_by: "`BZh` at offset 0",
        extensions: &["bz2"],
        carries: "a pickle: `joblib.load` reads bz2-compressed dumps; tar archives of pickles",
    },
    Entry {
        kind: Kind::Xz,
        id: "xz",
        name: "xz-compressed file",
        detect: Detect::Magic {
            offset: 0,
            bytes: b"\xfd7zXZ\x00",
        },
        detected_by: "`\\xfd7zXZ\\x00` at offset 0",
        extensions: &["xz"],
        carries: "a pickle: `joblib.load` reads xz-compressed dumps; tar archives of pickles",
    },
    Entry {
        kind: Kind::Lzma,
        id: "lzma",
        name: "LZMA-alone compressed file",
        detect: Detect::Magic {
            offset: 0,
            bytes: b"\x5d\x00",
        },
        detected_by: "`\\x5d\\x00` at offset 0 (joblib's test; no pickle starts so)",
        extensions: &["lzma"],
        carries: "a pickle: `joblib.load` reads lzma-compressed dumps",
    },
    Entry {
        kind: Kind::Lz4,
        id: "lz4",
        name: "LZ4 frame",
        detect: Detect::Magic {
            offset: 0,
            bytes: b"\x04\x22\x4d\x18",
        },
        detected_by: "`\\x04\\x22\\x4d\\x18` at offset 0",
        extensions: &["lz4"],
        carries: "a pickle: `joblib.load` reads lz4-compressed dumps",
    },
    Entry {
        kind: Kind::Zstd,
        id: "zstd",
        name: "Zstandard frame",
        detect: Detect::Magic {
            offset: 0,
            bytes: b"\x28\xb5\x2f\xfd",
        },
        detected_by: "`\\x28\\xb5\\x2f\\xfd` at offset 0",
        extensions: &["zst", "zstd"],
        carries: "tar archives of pickles (`.tar.zst`)",
    },
    Entry {
        kind: Kind::JoblibZf,
        id: "joblib-zf",
        name: "legacy joblib zlib file",
        detect: Detect::Magic {
            offset: 0,
            bytes: b"ZF",
        },
        detected_by: "`ZF` at offset 0",
        extensions: &[],
        carries: "a pickle: joblib still loads these pre-0.10 dumps",
    },
    Entry {
        kind: Kind::TorchPrerelease,
        id: "torch-prerelease",
        name: "pre-release torch file",
        detect: Detect::Magic {
            offset: 0,
            bytes: b"PYTORCH1",
        },
        detected_by: "`PYTORCH1` at offset 0",
        extensions: &[],
        carries: "pickles (the pre-1.0 serialisation)",
    },
];

pub fn entry(kind: Kind) -> &'static Entry {
    TABLE
        .iter()
        .find(|e| e.kind == kind)
        .expect("every kind has a row")
}

impl Kind {
    pub fn id(self) -> &'static str {
        entry(self).id
    }
}

/// A file, or a member of an archive, that was not read although it can carry code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unscanned {
    /// The archive member (`outer/inner` when nested); none for the file itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// A [`TABLE`] id, or the archive format of a member nested too deep.
    pub format: String,
    pub reason: String,
}

impl Unscanned {
    pub fn of(kind: Kind, member: Option<String>) -> Unscanned {
        let e = entry(kind);
        Unscanned {
            member,
            format: e.id.into(),
            reason: format!(
                "{} is not read by modelguard and can carry code: {}",
                e.name, e.carries
            ),
        }
    }
}

/// The row whose content signature starts the file (`head` is its first bytes, up to 512).
pub fn detect_head(head: &[u8]) -> Option<Kind> {
    if head.starts_with(HDF5_SIGNATURE) {
        return Some(Kind::Hdf5);
    }
    TABLE.iter().find_map(|e| match e.detect {
        Detect::Magic { offset, bytes } => head
            .get(offset..offset + bytes.len())
            .is_some_and(|b| b == bytes)
            .then_some(e.kind),
        _ => None,
    })
}

/// Content checks that need more than the first bytes, for a file nothing else recognised:
/// ONNX and SavedModel protobufs, and HDF5 behind a user block.
pub fn detect_late<R: Read + Seek>(r: &mut R, len: u64) -> Option<Kind> {
    if let Some(fields) = proto_fields(r, len) {
        if is_onnx(&fields) {
            return Some(Kind::Onnx);
        }
        if is_saved_model(&fields) {
            return Some(Kind::SavedModel);
        }
    }
    hdf5_superblock(r, len).map(|_| Kind::Hdf5)
}

/// The offset of an HDF5 superblock signature behind a user block (512 × 2^n), if any. h5py
/// opens such a file whatever its first bytes are.
pub fn hdf5_superblock<R: Read + Seek>(r: &mut R, len: u64) -> Option<u64> {
    let mut offset = 512u64;
    let mut sig = [0u8; 8];
    while offset.checked_add(8).is_some_and(|end| end <= len) {
        if r.seek(SeekFrom::Start(offset)).is_ok()
            && r.read_exact(&mut sig).is_ok()
            && sig == HDF5_SIGNATURE
        {
            return Some(offset);
        }
        offset = offset.checked_mul(2)?;
    }
    None
}

/// The row whose member names a zip archive matches (`names`: full member names).
pub fn zip_kind<'a>(names: impl Iterator<Item = &'a str> + Clone) -> Option<Kind> {
    TABLE.iter().find_map(|e| match e.detect {
        Detect::ZipMembers { all, any } => {
            let has = |n: &str| names.clone().any(|m| m == n);
            (all.iter().all(|n| has(n)) && (any.is_empty() || any.iter().any(|n| has(n))))
                .then_some(e.kind)
        }
        _ => None,
    })
}

/// The row a file name's extension names (used only when the content matched nothing).
pub fn by_extension(file_name: &str) -> Option<Kind> {
    let (_, ext) = file_name.rsplit_once('.')?;
    let ext = ext.to_ascii_lowercase();
    TABLE
        .iter()
        .find(|e| e.extensions.contains(&ext.as_str()))
        .map(|e| e.kind)
}

/// Whether `format` is what the extension `ext` names (no MG016 content/extension mismatch).
pub fn extension_names(ext: &str, format: &str) -> bool {
    TABLE
        .iter()
        .any(|e| e.id == format && e.extensions.contains(&ext))
}

/// The README table row of an entry, exactly.
pub fn readme_row(e: &Entry) -> String {
    let ext = if e.extensions.is_empty() {
        "—".to_string()
    } else {
        e.extensions
            .iter()
            .map(|x| format!("`.{x}`"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "| `{}` | {} | {} | {} | {} |",
        e.id, e.name, e.detected_by, ext, e.carries
    )
}

/// Top-level protobuf fields (number, wire type) of the first 64, or None when the bytes are
/// not a well-formed protobuf message up to there.
fn proto_fields<R: Read + Seek>(r: &mut R, len: u64) -> Option<Vec<(u64, u8)>> {
    const MAX_FIELDS: usize = 64;
    let mut fields = Vec::new();
    let mut pos = 0u64;
    let mut buf = [0u8; 20];
    while pos < len && fields.len() < MAX_FIELDS {
        r.seek(SeekFrom::Start(pos)).ok()?;
        let want = (len - pos).min(buf.len() as u64) as usize;
        r.read_exact(&mut buf[..want]).ok()?;
        let mut b = &buf[..want];
        let start = b.len();
        let tag = varint(&mut b)?;
        let (number, wire) = (tag >> 3, (tag & 7) as u8);
        if number == 0 {
            return None;
        }
        let skip = match wire {
            0 => {
                varint(&mut b)?;
                0
            }
            1 => 8,
            2 => varint(&mut b)?,
            5 => 4,
            _ => return None,
        };
        pos = pos
            .checked_add((start - b.len()) as u64)?
            .checked_add(skip)?;
        if pos > len {
            return None;
        }
        fields.push((number, wire));
    }
    (!fields.is_empty()).then_some(fields)
}

fn varint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn is_onnx(fields: &[(u64, u8)]) -> bool {
    const MODEL_PROTO: &[(u64, u8)] = &[
        (1, 0),  // ir_version
        (2, 2),  // producer_name
        (3, 2),  // producer_version
        (4, 2),  // domain
        (5, 0),  // model_version
        (6, 2),  // doc_string
        (7, 2),  // graph
        (8, 2),  // opset_import
        (14, 2), // metadata_props
        (20, 2), // training_info
        (25, 2), // functions
        (26, 2), // configuration
    ];
    fields.first() == Some(&(1, 0))
        && fields.iter().all(|f| MODEL_PROTO.contains(f))
        && fields.contains(&(7, 2))
}

fn is_saved_model(fields: &[(u64, u8)]) -> bool {
    fields.first() == Some(&(1, 0))
        && fields.iter().all(|f| *f == (1, 0) || *f == (2, 2))
        && fields.contains(&(2, 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn every_kind_has_one_row_and_ids_are_unique() {
        let mut ids = std::collections::HashSet::new();
        for e in TABLE {
            assert!(ids.insert(e.id), "{} twice", e.id);
            assert_eq!(entry(e.kind).id, e.id);
        }
    }

    #[test]
    fn magic_and_protobuf_detection() {
        assert_eq!(detect_head(b"GGUF\x03\x00\x00\x00"), Some(Kind::Gguf));
        assert_eq!(detect_head(b"\x1c\x00\x00\x00TFL3...."), Some(Kind::Tflite));
        assert_eq!(detect_head(b"\x89HDF\r\n\x1a\n\x00"), Some(Kind::Hdf5));
        assert_eq!(detect_head(b"\x80\x02}q\x00."), None);
        // ir_version 8, producer_name "x", graph of 2 bytes.
        let onnx = b"\x08\x08\x12\x01x\x3a\x02\x0a\x00";
        assert_eq!(
            detect_late(&mut Cursor::new(&onnx[..]), onnx.len() as u64),
            Some(Kind::Onnx)
        );
        let saved = b"\x08\x01\x12\x03\x0a\x01\x00";
        assert_eq!(
            detect_late(&mut Cursor::new(&saved[..]), saved.len() as u64),
            Some(Kind::SavedModel)
        );
        // A length past the end is not a protobuf; neither is text.
        let cut = b"\x08\x08\x3a\x7f\x0a";
        assert_eq!(detect_late(&mut Cursor::new(&cut[..]), 5), None);
        let text = b"hello world, not a model";
        assert_eq!(detect_late(&mut Cursor::new(&text[..]), 24), None);
        let mut blocked = vec![0u8; 2048];
        blocked[1024..1032].copy_from_slice(HDF5_SIGNATURE);
        assert_eq!(
            hdf5_superblock(&mut Cursor::new(&blocked), 2048),
            Some(1024)
        );
    }

    #[test]
    fn zip_members_and_extensions() {
        let keras = ["metadata.json", "config.json", "model.weights.h5"];
        assert_eq!(zip_kind(keras.iter().copied()), Some(Kind::Keras));
        let mar = ["MAR-INF/MANIFEST.json", "handler.py"];
        assert_eq!(zip_kind(mar.iter().copied()), Some(Kind::TorchServe));
        assert_eq!(zip_kind(["config.json", "data.txt"].iter().copied()), None);
        assert_eq!(by_extension("saved_model.pb"), Some(Kind::SavedModel));
        assert_eq!(by_extension("Model.ONNX"), Some(Kind::Onnx));
        assert_eq!(by_extension("notes.txt"), None);
        assert!(extension_names("gguf", "gguf") && !extension_names("gguf", "onnx"));
    }
}
