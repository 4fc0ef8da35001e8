//! Archives that are not checkpoints (zip and tar of arbitrary files, gzip, 7z), read the way
//! picklescan reads them for `scan`: every member that could be model content is analysed with
//! the same machinery as a standalone file, its findings located by member name
//! (`outer/inner` when nested), its unread formats reported as unscanned members.
//!
//! Bounds: `max_archive_members` members per archive, `max_inflated_member` bytes held per
//! member, `max_archive_inflated` bytes decompressed per file in all (nested archives share
//! their file's budget), and [`MAX_DEPTH`] archives inside archives. Each ends with a limit
//! error; a member beyond the depth is reported unscanned.

use super::registry::{self, Unscanned};
use super::{Analysis, Format, Options};
use crate::error::{Error, Result};
use std::io::{Read, Seek, SeekFrom};

/// Archives inside archives read before members are reported unscanned instead.
pub const MAX_DEPTH: u32 = 4;

/// Bytes of a member looked at to decide whether it could be model content.
const HEAD: usize = 512;

/// Where the analysis running on this thread sits: its archive depth and what is left of its
/// file's decompression budget. The engine reads one file per thread (the jailed worker, the
/// WASI guest, a scan thread with `--sandbox none`), so this is per file.
struct State {
    depth: u32,
    left: u64,
}

thread_local! {
    static NEST: std::cell::RefCell<Option<State>> = const { std::cell::RefCell::new(None) };
}

/// Held while a file (not a member) is analysed: a fresh budget, dropped when it ends.
pub struct Nest {
    top: bool,
}

impl Nest {
    pub fn enter(limits: &crate::limits::Limits) -> Nest {
        let top = NEST.with(|n| {
            let mut n = n.borrow_mut();
            let top = n.is_none();
            if top {
                *n = Some(State {
                    depth: 0,
                    left: limits.max_archive_inflated,
                });
            }
            top
        });
        Nest { top }
    }
}

impl Drop for Nest {
    fn drop(&mut self) {
        if self.top {
            NEST.with(|n| *n.borrow_mut() = None);
        }
    }
}

/// One level deeper for as long as it is held.
struct Deeper;

impl Deeper {
    fn enter() -> Deeper {
        NEST.with(|n| {
            if let Some(s) = n.borrow_mut().as_mut() {
                s.depth += 1;
            }
        });
        Deeper
    }
}

impl Drop for Deeper {
    fn drop(&mut self) {
        NEST.with(|n| {
            if let Some(s) = n.borrow_mut().as_mut() {
                s.depth = s.depth.saturating_sub(1);
            }
        });
    }
}

fn depth() -> u32 {
    NEST.with(|n| n.borrow().as_ref().map_or(0, |s| s.depth))
}

/// Take `n` decompressed bytes from the file's budget, or fail naming the limit.
pub(crate) fn charge(opts: &Options, n: u64, what: &str) -> Result<()> {
    let ok = NEST.with(|cell| match cell.borrow_mut().as_mut() {
        Some(s) => match s.left.checked_sub(n) {
            Some(left) => {
                s.left = left;
                true
            }
            None => false,
        },
        None => true,
    });
    if ok {
        return Ok(());
    }
    Err(Error::limit(
        "max_archive_inflated",
        format!(
            "{what}: more than {} bytes decompressed from this file in all",
            opts.limits.max_archive_inflated
        ),
    ))
}

/// Whether the first bytes of a member (and its name) could be model content: a format we read
/// or one we report unscanned. Everything else (text, images, JSON) cannot carry code.
pub fn worth_reading(head: &[u8], name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    super::compressed::detect(head).is_some()
        || head.starts_with(b"PK\x03\x04")
        || head.starts_with(b"\x93NUMPY")
        || super::tar_header::first_block(head) == super::tar_header::FirstBlock::Header
        || head.starts_with(super::sevenz::MAGIC)
        || registry::detect_head(head).is_some()
        || head.first().is_some_and(|&b| super::pickle_start(b))
        // Protobuf starting with field 1 as a varint (ONNX, SavedModel): checked in full.
        || head.first() == Some(&0x08)
        || registry::by_extension(base).is_some()
        || base.ends_with(".pkl")
        || base.ends_with(".pickle")
}

/// `outer/inner` for a location inside a member.
fn join(member: &str, inner: Option<&str>) -> String {
    match inner {
        Some(i) if !i.is_empty() => format!("{member}/{i}"),
        _ => member.to_string(),
    }
}

/// Read one member (`r`, `len` bytes, seekable) as a standalone file and fold what it held into
/// `a`. Returns the member's error when it is one the file must report (anything but "not a
/// model file"), for the caller to raise after the other members were read.
pub fn analyze_member(
    mut r: &mut dyn ReadSeek,
    len: u64,
    name: &str,
    opts: &Options,
    a: &mut Analysis,
) -> Option<Error> {
    let depth = depth();
    if depth >= MAX_DEPTH {
        a.unscanned.push(Unscanned {
            member: Some(name.to_string()),
            format: "archive".into(),
            reason: format!(
                "a member {} archives deep; modelguard opens at most {MAX_DEPTH} levels",
                depth + 1
            ),
        });
        return None;
    }
    let sub = {
        let _deeper = Deeper::enter();
        // Type-erased: a member's reader is not a new type for every nesting level.
        super::analyze(&mut r, len, opts)
    };
    let mut first = [0u8; 1];
    let first = (r.seek(SeekFrom::Start(0)).is_ok() && r.read_exact(&mut first).is_ok())
        .then_some(first[0]);
    absorb(sub, name, first, a)
}

fn absorb(sub: Analysis, name: &str, first: Option<u8>, a: &mut Analysis) -> Option<Error> {
    let not_a_model = super::is_text_not_pickle(&sub, first)
        || (matches!(sub.error, Some(Error::UnknownFormat(_))) && sub.findings.is_empty());
    for mut f in sub.findings.into_vec() {
        f.location.member = Some(join(name, f.location.member.as_deref()));
        a.findings.push(f);
    }
    a.warnings
        .extend(sub.warnings.into_iter().map(|w| format!("{name}: {w}")));
    for mut u in sub.unscanned {
        u.member = Some(join(name, u.member.as_deref()));
        a.unscanned.push(u);
    }
    if not_a_model {
        return None;
    }
    sub.error.map(|e| in_member(e, name))
}

/// The same error, saying which member it came from.
fn in_member(e: Error, name: &str) -> Error {
    match e {
        Error::Malformed { msg, mut loc } => {
            loc.member = Some(join(name, loc.member.as_deref()));
            Error::Malformed { msg, loc }
        }
        Error::Limit {
            limit,
            msg,
            mut loc,
        } => {
            loc.member = Some(join(name, loc.member.as_deref()));
            Error::Limit { limit, msg, loc }
        }
        Error::Unsupported { msg } => Error::Unsupported {
            msg: format!("{name}: {msg}"),
        },
        Error::UnknownFormat(msg) => Error::UnknownFormat(format!("{name}: {msg}")),
        Error::Io(e) => Error::Io(std::io::Error::new(e.kind(), format!("{name}: {e}"))),
    }
}

/// Read a member's bytes (`declared` long) into memory, within the per-member and per-file
/// limits.
pub fn read_member(
    reader: &mut dyn Read,
    declared: u64,
    name: &str,
    opts: &Options,
) -> Result<Vec<u8>> {
    let max = opts.limits.max_inflated_member;
    if declared > max {
        return Err(Error::limit(
            "max_inflated_member",
            format!("member declares {declared} bytes uncompressed, limit is {max}"),
        )
        .at_member(name));
    }
    charge(opts, declared, name)?;
    let mut out = Vec::new();
    out.try_reserve_exact(declared as usize).map_err(|_| {
        Error::limit(
            "max_inflated_member",
            format!("cannot hold {declared} bytes"),
        )
        .at_member(name)
    })?;
    Read::take(reader, declared.saturating_add(1)).read_to_end(&mut out)?;
    if out.len() as u64 != declared {
        return Err(Error::malformed(format!(
            "member produced {} bytes, declared {declared}",
            out.len()
        ))
        .at_member(name));
    }
    Ok(out)
}

/// A zip archive that is not a torch checkpoint or an npz: Keras v3 and TorchServe archives
/// are unscanned as a whole; otherwise every member that could be model content is read.
/// Pickle members were already scanned by the caller.
pub fn zip_members<R: Read + Seek>(
    zip: &super::zip::ZipArchive,
    r: &mut R,
    opts: &Options,
    a: &mut Analysis,
) -> Result<()> {
    if let Some(kind) = registry::zip_kind(zip.entries.iter().map(|e| e.name.as_str())) {
        a.format = Format::Unread(kind);
        a.unscanned.push(Unscanned::of(kind, None));
        return Ok(());
    }
    a.format = Format::Zip;
    let mut first_error = None;
    for (i, e) in zip.entries.iter().enumerate() {
        if e.is_directory() || e.uncompressed_size == 0 {
            continue;
        }
        // Pickle members were scanned by the torch-zip reader already.
        let pickle_named = e.name.ends_with(".pkl") && !e.name.ends_with(".debug_pkl");
        let mut head = Vec::with_capacity(HEAD);
        match zip.open_member(r, i) {
            Ok(m) => {
                if m.take(HEAD as u64).read_to_end(&mut head).is_err() {
                    first_error.get_or_insert(
                        Error::malformed("member cannot be read").at_member(&e.name),
                    );
                    continue;
                }
            }
            Err(err) => {
                first_error.get_or_insert(err);
                continue;
            }
        }
        if pickle_named || head.first() == Some(&0x80) || !worth_reading(&head, &e.name) {
            continue;
        }
        let bytes = match zip
            .open_member(r, i)
            .and_then(|mut m| read_member(&mut m, e.uncompressed_size, &e.name, opts))
        {
            Ok(b) => b,
            Err(err @ Error::Limit { .. }) => return Err(err),
            Err(err) => {
                first_error.get_or_insert(err);
                continue;
            }
        };
        let len = bytes.len() as u64;
        if let Some(err) = analyze_member(&mut std::io::Cursor::new(bytes), len, &e.name, opts, a) {
            if matches!(err, Error::Limit { .. }) {
                return Err(err);
            }
            first_error.get_or_insert(err);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// A tar archive that is not a legacy torch checkpoint: every member that could be model
/// content is read in place (tar members are stored, nothing is decompressed).
pub fn tar_members<R: Read + Seek>(
    members: &[(String, u64, u64)],
    r: &mut R,
    len: u64,
    opts: &Options,
    a: &mut Analysis,
) -> Result<()> {
    if a.format != Format::Gzip {
        a.format = Format::Tar;
    }
    let mut first_error = None;
    for (name, offset, size) in members {
        if *size == 0 || offset.checked_add(*size).is_none_or(|end| end > len) {
            continue;
        }
        let mut w = Window {
            inner: &mut *r,
            start: *offset,
            len: *size,
            pos: 0,
        };
        let mut head = Vec::with_capacity(HEAD);
        (&mut w).take(HEAD as u64).read_to_end(&mut head)?;
        if !worth_reading(&head, name) {
            continue;
        }
        if let Some(err) = analyze_member(&mut w, *size, name, opts, a) {
            if matches!(err, Error::Limit { .. }) {
                return Err(err);
            }
            first_error.get_or_insert(err);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// A member's bytes, whatever holds them.
pub trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

/// `len` bytes of `inner` from `start`, as a file of their own.
pub struct Window<'a, R> {
    inner: &'a mut R,
    start: u64,
    len: u64,
    pos: u64,
}

impl<R: Read + Seek> Read for Window<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        self.inner.seek(SeekFrom::Start(self.start + self.pos))?;
        let got = self.inner.read(&mut buf[..n])?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl<R: Read + Seek> Seek for Window<'_, R> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start of a member",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_reads_only_its_bytes() {
        let data: Vec<u8> = (0u8..100).collect();
        let mut c = std::io::Cursor::new(&data);
        let mut w = Window {
            inner: &mut c,
            start: 10,
            len: 5,
            pos: 0,
        };
        let mut out = Vec::new();
        w.read_to_end(&mut out).unwrap();
        assert_eq!(out, [10, 11, 12, 13, 14]);
        assert_eq!(w.seek(SeekFrom::End(-2)).unwrap(), 3);
        let mut b = [0u8; 8];
        assert_eq!(w.read(&mut b).unwrap(), 2);
        assert!(w.seek(SeekFrom::Current(-10)).is_err());
    }

    #[test]
    fn the_budget_is_per_file_and_named() {
        let mut opts = Options::default();
        opts.limits.max_archive_inflated = 100;
        {
            let _file = Nest::enter(&opts.limits);
            charge(&opts, 60, "a").unwrap();
            let _member = Deeper::enter();
            assert_eq!(depth(), 1);
            let e = charge(&opts, 50, "b").unwrap_err().to_string();
            assert!(e.contains("max_archive_inflated"), "{e}");
            charge(&opts, 40, "c").unwrap();
        }
        let _next = Nest::enter(&opts.limits);
        charge(&opts, 100, "a fresh file has its own budget").unwrap();
    }
}
