//! Format-independent tensor digests: a `.pt`, its `.safetensors` conversion and an official
//! release hash the same when they hold the same tensors, because only what a tensor *is*
//! (name, dtype, shape, little-endian bytes) enters the digest, never the container.
//!
//! - tensor: `sha256("modelguard-tensor-v1\0" ‖ le64(len name) ‖ name ‖ le64(len dtype) ‖
//!   dtype ‖ le64(rank) ‖ le64(dim)… ‖ le64(len bytes) ‖ bytes)`, dtype as safetensors spells it;
//! - set: `sha256("modelguard-tensor-set-v1\0" ‖ (le64(len name) ‖ name ‖ tensor digest)…)`
//!   over the tensors sorted by name (bytewise).

use super::tensors::{Tensor, TensorTable};
use sha2::{Digest, Sha256};

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

pub fn tensor_digest(table: &TensorTable, t: &Tensor) -> std::io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    h.update(b"modelguard-tensor-v1\0");
    field(&mut h, t.name.as_bytes());
    field(&mut h, t.dtype.as_str().as_bytes());
    h.update((t.shape.len() as u64).to_le_bytes());
    for d in &t.shape {
        h.update(d.to_le_bytes());
    }
    h.update((t.end - t.begin).to_le_bytes());
    table.for_each_chunk(t, |chunk| h.update(chunk))?;
    Ok(h.finalize().into())
}

/// The digest of a whole set, from (name, tensor digest) pairs in any order.
pub fn set_digest(tensors: &[(String, [u8; 32])]) -> [u8; 32] {
    let mut sorted: Vec<&(String, [u8; 32])> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut h = Sha256::new();
    h.update(b"modelguard-tensor-set-v1\0");
    for (name, digest) in sorted {
        field(&mut h, name.as_bytes());
        h.update(digest);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_digest_ignores_order_but_not_names_or_contents() {
        let a = ("a".to_string(), [1u8; 32]);
        let b = ("b".to_string(), [2u8; 32]);
        assert_eq!(
            set_digest(&[a.clone(), b.clone()]),
            set_digest(&[b.clone(), a.clone()])
        );
        assert_ne!(
            set_digest(&[a.clone(), b.clone()]),
            set_digest(std::slice::from_ref(&a))
        );
        let renamed = ("c".to_string(), [2u8; 32]);
        assert_ne!(set_digest(&[a.clone(), b]), set_digest(&[a, renamed]));
    }
}
