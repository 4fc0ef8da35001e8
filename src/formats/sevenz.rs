//! 7z archives (the nullifAI vehicle: torch cannot load them, but picklescan-style pipelines
//! extract them and load the pickles inside). Decoded with sevenz-rust2 inside the jail like
//! every other format: LZMA, LZMA2, copy and the BCJ/delta filters. Every member that could be
//! model content is analysed as a standalone file ([`super::archive`]).
//!
//! The decoder is driven through `Archive` + `BlockDecoder` with one thread: `ArchiveReader`
//! would ask the OS for the CPU count (files under /proc and /sys, which the jail's seccomp
//! policy kills) and could start decoder threads. Dictionaries are capped at
//! `max_inflated_member`; a member is held only up to `max_inflated_member`; everything
//! decoded, drained members included, counts against `max_archive_inflated`.

use super::archive::{analyze_member, read_member, worth_reading};
use super::registry::{Kind, Unscanned};
use super::{Analysis, Format, Options};
use crate::error::{Error, Result};
use sevenz_rust2::{Archive, BlockDecoder, EncoderMethod, Error as SzError, Password};
use std::io::{Read, Seek, SeekFrom};

pub const MAGIC: &[u8] = b"7z\xbc\xaf\x27\x1c";

pub fn analyze<R: Read + Seek>(
    r: &mut R,
    _len: u64,
    opts: &Options,
    a: &mut Analysis,
) -> Result<()> {
    a.format = Format::SevenZip;
    let mem_kb = usize::try_from(opts.limits.max_inflated_member / 1024).unwrap_or(usize::MAX);
    let password = Password::empty();
    r.seek(SeekFrom::Start(0))?;
    let archive = match Archive::read_with_memory_limit(r, &password, mem_kb) {
        Ok(x) => x,
        Err(e) => return fail(e, None, opts, a),
    };
    if archive.files.len() > opts.limits.max_archive_members {
        return Err(Error::limit(
            "max_archive_members",
            format!("the 7z archive lists {} entries", archive.files.len()),
        ));
    }
    let encrypted: Vec<bool> = archive
        .blocks
        .iter()
        .map(|b| {
            b.coders
                .iter()
                .any(|c| c.encoder_method_id() == EncoderMethod::ID_AES256_SHA256)
        })
        .collect();
    for (i, f) in archive.files.iter().enumerate() {
        let block = archive
            .stream_map
            .file_block_index
            .get(i)
            .copied()
            .flatten();
        if f.has_stream() && block.is_some_and(|b| encrypted.get(b) == Some(&true)) {
            a.unscanned.push(undecodable(
                f.name(),
                "its block is encrypted (AES-256) and no password is known",
            ));
        }
    }
    let mut stop: Option<Error> = None;
    let mut first_error: Option<Error> = None;
    for (block, &skip) in encrypted.iter().enumerate() {
        if skip {
            continue;
        }
        let decoder = BlockDecoder::new_with_memory_limit(1, mem_kb, block, &archive, &password, r);
        let result = decoder.for_each_entries(&mut |entry, reader| {
            if entry.is_directory() || !entry.has_stream() || entry.size() == 0 {
                return Ok(true);
            }
            let name = entry.name().to_string();
            match member(reader, entry.size(), &name, opts, a) {
                Ok(None) => Ok(true),
                Ok(Some(e)) => {
                    first_error.get_or_insert(e);
                    Ok(true)
                }
                Err(e) => {
                    stop = Some(e);
                    // Skip the rest of this block without decoding it.
                    Ok(false)
                }
            }
        });
        if let Some(e) = stop {
            return Err(e);
        }
        if let Err(e) = result {
            fail(e, Some(block), opts, a)?;
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// One entry of `size` declared bytes: read and analysed when it could be model content. Errors
/// that end the archive (limits) are `Err`; a member's own error is returned for later.
fn member(
    reader: &mut dyn Read,
    size: u64,
    name: &str,
    opts: &Options,
    a: &mut Analysis,
) -> Result<Option<Error>> {
    if size > opts.limits.max_inflated_member {
        // Too large to hold: look at its start, and drain it (its decoding is charged) only
        // when it cannot be model content.
        let mut head = Vec::with_capacity(512);
        Read::take(&mut *reader, 512).read_to_end(&mut head)?;
        if worth_reading(&head, name) {
            return Err(Error::limit(
                "max_inflated_member",
                format!(
                    "member declares {size} bytes uncompressed, limit is {}",
                    opts.limits.max_inflated_member
                ),
            )
            .at_member(name));
        }
        super::archive::charge(opts, size, name)?;
        return Ok(None);
    }
    let bytes = read_member(reader, size, name, opts)?;
    if !worth_reading(&bytes[..bytes.len().min(512)], name) {
        return Ok(None);
    }
    Ok(analyze_member(
        &mut std::io::Cursor::new(&bytes[..]),
        size,
        name,
        opts,
        a,
    ))
}

fn undecodable(member: &str, why: &str) -> Unscanned {
    let mut u = Unscanned::of(Kind::SevenZipUndecodable, Some(member.to_string()));
    u.reason = format!("{why}: {}", u.reason);
    u
}

/// What a decoder error means for the scan: content we cannot decode is unscanned (the rest
/// of the archive is still read), a dictionary over the limit is a limit error, anything else
/// is a malformed archive.
fn fail(e: SzError, block: Option<usize>, opts: &Options, a: &mut Analysis) -> Result<()> {
    let what = match block {
        Some(b) => format!("block {b}"),
        None => "the archive header".to_string(),
    };
    match e {
        SzError::PasswordRequired | SzError::MaybeBadPassword(_) => {
            a.unscanned.push(undecodable(
                &what,
                "it is encrypted and no password is known",
            ));
            Ok(())
        }
        SzError::UnsupportedCompressionMethod(m) => {
            a.unscanned.push(undecodable(
                &what,
                &format!("it is compressed with {m}, which modelguard does not decode"),
            ));
            Ok(())
        }
        SzError::Unsupported(m) => {
            a.unscanned.push(undecodable(
                &what,
                &format!("the decoder does not support it ({m})"),
            ));
            Ok(())
        }
        SzError::ExternalUnsupported => {
            a.unscanned.push(undecodable(
                &what,
                "its header is stored in an external stream",
            ));
            Ok(())
        }
        SzError::MaxMemLimited { actaul_kb, .. } => Err(Error::limit(
            "max_inflated_member",
            format!(
                "7z {what} needs a {actaul_kb} KiB decoder dictionary, limit is {} KiB",
                opts.limits.max_inflated_member / 1024
            ),
        )),
        other => Err(Error::malformed(format!("7z {what}: {other}"))),
    }
}
