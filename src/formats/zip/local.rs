//! Local file headers (APPNOTE 4.3.7). Both readers take sizes, CRC, flags and method from the
//! central directory and use the local header only for its signature and for where the data
//! starts (`offset + 30 + name length + extra length`, which is where torch's `FB` alignment
//! padding lives). CPython also requires the local name to decode to the central one
//! (`ZipFile.open`), and refuses the patch and strong-encryption flags there.

use super::{le16, le32};

pub(super) const SIG_LOCAL: u32 = 0x0403_4b50;
pub(super) const LOCAL_HEADER_LEN: u64 = 30;

/// A local file header as stored (name and extra field follow it).
#[derive(Debug, Clone, Copy)]
pub(super) struct LocalHeader {
    pub flags: u16,
    pub method: u16,
    pub name_len: u16,
    pub extra_len: u16,
}

impl LocalHeader {
    pub fn parse(b: &[u8]) -> Option<LocalHeader> {
        (b.len() >= LOCAL_HEADER_LEN as usize && le32(b, 0) == SIG_LOCAL).then(|| LocalHeader {
            flags: le16(b, 6),
            method: le16(b, 8),
            name_len: le16(b, 26),
            extra_len: le16(b, 28),
        })
    }

    /// Where the member's bytes start, for a header at `at`.
    pub fn data_offset(&self, at: u64) -> u64 {
        at + LOCAL_HEADER_LEN + u64::from(self.name_len) + u64::from(self.extra_len)
    }
}
