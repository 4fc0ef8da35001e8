//! Receiving `POST /v1/jobs`: multipart fields streamed straight to the job's private incoming
//! folder and hashed on the way; nothing is held in memory and nothing is parsed but the
//! transport (multipart, and tar for a folder sent as one archive).
//!
//! Fields: `file` (one model file, or several: the files of a Hugging Face folder),
//! `folder_tar` (a tar of such a folder), and the text fields `name`, `source`, `fail_on`,
//! `dedup`.

use super::problem::Problem;
use super::store::{JobOptions, Kind, NewJob};
use axum::extract::multipart::{Field, Multipart};
use sha2::{Digest, Sha256};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

pub struct Limits {
    pub max_bytes: u64,
    /// The longest wait for the next piece of the body (slow-upload defence).
    pub idle: Duration,
    pub max_files: usize,
}

const MAX_TEXT_FIELD: usize = 4096;

/// A name that can only ever mean one file inside one folder: no separators, no `.`/`..`,
/// no control characters (NUL included), no leading dot, at most 255 bytes.
pub fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && !s.starts_with('.')
        && !s.chars().any(|c| c == '/' || c == '\\' || c.is_control())
}

fn invalid_name(what: &str, name: &str) -> Problem {
    Problem::invalid_name(format!(
        "{what} {name:?} is not a plain file name (no folders, `..`, leading dots or control characters)"
    ))
}

/// Receive the multipart body of job `id` into `dir` (its incoming folder).
pub async fn receive(
    mut form: Multipart,
    dir: &Path,
    limits: &Limits,
    id: String,
    owner: String,
) -> Result<NewJob, Problem> {
    let mut files: Vec<(String, String)> = Vec::new(); // (name, sha256)
    let mut tar: Option<(String, String)> = None;
    let mut total = 0u64;
    let mut name = None;
    let mut source = None;
    let mut options = JobOptions::default();
    loop {
        let field = match tokio::time::timeout(limits.idle, form.next_field()).await {
            Err(_) => return Err(Problem::upload_timeout(limits.idle)),
            Ok(Err(e)) => return Err(Problem::from_multipart(e)),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(f))) => f,
        };
        let field_name = field.name().unwrap_or("").to_string();
        match field_name.as_str() {
            "file" | "folder_tar" => {
                let file_name = field.file_name().unwrap_or("").to_string();
                if !plain_name(&file_name) {
                    return Err(invalid_name("the file name", &file_name));
                }
                if files.len() + usize::from(tar.is_some()) >= limits.max_files {
                    return Err(Problem::invalid_upload(format!(
                        "more than {} files in one job",
                        limits.max_files
                    )));
                }
                if field_name == "folder_tar" {
                    if tar.is_some() || !files.is_empty() {
                        return Err(Problem::invalid_upload(
                            "send either `file` fields or one `folder_tar`, not both",
                        ));
                    }
                    let sha = stream_to(field, &dir.join("upload.tar"), &mut total, limits).await?;
                    tar = Some((file_name, sha));
                } else {
                    if tar.is_some() {
                        return Err(Problem::invalid_upload(
                            "send either `file` fields or one `folder_tar`, not both",
                        ));
                    }
                    if files.iter().any(|(n, _)| *n == file_name) {
                        return Err(Problem::invalid_upload(format!(
                            "the file name {file_name:?} appears twice"
                        )));
                    }
                    let staged = dir.join(format!("part-{}", files.len()));
                    let sha = stream_to(field, &staged, &mut total, limits).await?;
                    files.push((file_name, sha));
                }
            }
            "name" => name = Some(text(field, limits).await?),
            "source" => source = Some(text(field, limits).await?),
            "fail_on" => options.fail_on = Some(text(field, limits).await?),
            "dedup" => options.dedup = matches!(text(field, limits).await?.as_str(), "true" | "1" | "on"),
            other => {
                return Err(Problem::invalid_upload(format!(
                    "unknown form field {other:?} (expected file, folder_tar, name, source, fail_on, dedup)"
                )))
            }
        }
    }
    if let Some(level) = &options.fail_on {
        if crate::cli::parse_fail_on(level).is_err() {
            return Err(Problem::invalid_upload(format!(
                "fail_on must be low, medium, high, critical or none, not {level:?}"
            )));
        }
    }
    if let Some(n) = &name {
        if !plain_name(n) {
            return Err(invalid_name("the name", n));
        }
    }
    if let Some(s) = &source {
        if s.chars().any(char::is_control) {
            return Err(Problem::invalid_upload(
                "the source contains control characters",
            ));
        }
        if s.starts_with("hf://") {
            crate::provenance::lookalike::SourceRef::parse(s)
                .map_err(|e| Problem::invalid_upload(format!("source {s:?}: {e}")))?;
        }
    }
    let received = |kind, default_name: String, sha256, files| NewJob {
        id: id.clone(),
        owner: owner.clone(),
        kind,
        name: name.clone().unwrap_or(default_name),
        source: source.clone(),
        options: options.clone(),
        sha256,
        bytes: total,
        files,
        created_ms: super::runner::now_ms(),
    };
    if let Some((tar_name, sha)) = tar {
        let names = {
            let dir = dir.to_path_buf();
            let max_files = limits.max_files;
            tokio::task::spawn_blocking(move || unpack_folder(&dir, max_files))
                .await
                .map_err(|e| Problem::internal(e.to_string()))??
        };
        return Ok(received(Kind::Folder, tar_name, sha, names));
    }
    match files.len() {
        0 => Err(Problem::invalid_upload("no `file` or `folder_tar` field")),
        1 => {
            let (file_name, sha) = files.pop().expect("one file");
            rename(&dir.join("part-0"), &dir.join("model")).await?;
            Ok(received(Kind::File, file_name, sha, vec![]))
        }
        _ => {
            let folder = dir.join("folder");
            tokio::fs::create_dir(&folder)
                .await
                .map_err(|e| Problem::internal(e.to_string()))?;
            for (i, (n, _)) in files.iter().enumerate() {
                rename(&dir.join(format!("part-{i}")), &folder.join(n)).await?;
            }
            // One digest for the set, like `sha256sum` output of the folder sorted by name.
            files.sort();
            let mut h = Sha256::new();
            for (n, sha) in &files {
                h.update(format!("{sha}  {n}\n"));
            }
            let names = files.iter().map(|(n, _)| n.clone()).collect();
            Ok(received(
                Kind::Folder,
                "folder".into(),
                crate::cli::report::hex(&h.finalize()),
                names,
            ))
        }
    }
}

async fn rename(from: &Path, to: &Path) -> Result<(), Problem> {
    tokio::fs::rename(from, to)
        .await
        .map_err(|e| Problem::internal(e.to_string()))
}

async fn next_chunk(
    field: &mut Field<'_>,
    limits: &Limits,
) -> Result<Option<bytes::Bytes>, Problem> {
    match tokio::time::timeout(limits.idle, field.chunk()).await {
        Err(_) => Err(Problem::upload_timeout(limits.idle)),
        Ok(Err(e)) => Err(Problem::from_multipart(e)),
        Ok(Ok(c)) => Ok(c),
    }
}

async fn text(mut field: Field<'_>, limits: &Limits) -> Result<String, Problem> {
    let mut buf = Vec::new();
    while let Some(chunk) = next_chunk(&mut field, limits).await? {
        buf.extend_from_slice(&chunk);
        if buf.len() > MAX_TEXT_FIELD {
            return Err(Problem::invalid_upload(format!(
                "a text field is longer than {MAX_TEXT_FIELD} bytes"
            )));
        }
    }
    String::from_utf8(buf).map_err(|_| Problem::invalid_upload("a text field is not UTF-8"))
}

/// Write one file field to `path` (0600), hashing it; `total` counts every upload byte.
async fn stream_to(
    mut field: Field<'_>,
    path: &Path,
    total: &mut u64,
    limits: &Limits,
) -> Result<String, Problem> {
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .await
        .map_err(|e| Problem::internal(e.to_string()))?;
    let mut h = Sha256::new();
    while let Some(chunk) = next_chunk(&mut field, limits).await? {
        *total += chunk.len() as u64;
        if *total > limits.max_bytes {
            return Err(Problem::too_large(limits.max_bytes));
        }
        h.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(|e| Problem::internal(e.to_string()))?;
    }
    file.flush()
        .await
        .map_err(|e| Problem::internal(e.to_string()))?;
    Ok(crate::cli::report::hex(&h.finalize()))
}

/// Unpack `dir/upload.tar` into `dir/folder/`: regular files only, each a plain name after an
/// optional `./` and one common top folder. Links, devices and nested paths are refused, so
/// nothing can land outside the folder.
fn unpack_folder(dir: &Path, max_files: usize) -> Result<Vec<String>, Problem> {
    let bad = |m: String| Problem::invalid_upload(format!("folder_tar: {m}"));
    let tar_path = dir.join("upload.tar");
    let folder = dir.join("folder");
    std::fs::create_dir(&folder).map_err(|e| Problem::internal(e.to_string()))?;
    let open = || std::fs::File::open(&tar_path).map_err(|e| Problem::internal(e.to_string()));
    // First pass: names and types only, to find the common top folder.
    let mut entries: Vec<(Vec<String>, tar::EntryType)> = Vec::new();
    let mut archive = tar::Archive::new(open()?);
    for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
        let entry = entry.map_err(|e| bad(e.to_string()))?;
        let path = entry.path_bytes();
        let path = std::str::from_utf8(&path).map_err(|_| bad("a name is not UTF-8".into()))?;
        let parts: Vec<String> = path
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .map(str::to_string)
            .collect();
        entries.push((parts, entry.header().entry_type()));
        if entries.len() > 4 * max_files {
            return Err(bad(format!("more than {max_files} files")));
        }
    }
    let top: Option<String> = match entries.first() {
        Some((p, _)) if !p.is_empty() => {
            let first = p[0].clone();
            let shared = entries
                .iter()
                .all(|(q, t)| q.first() == Some(&first) && (q.len() >= 2 || t.is_dir()));
            shared.then_some(first)
        }
        _ => None,
    };
    let mut wanted: Vec<Option<String>> = Vec::new();
    for (parts, kind) in &entries {
        let rest: &[String] = match &top {
            Some(t) if parts.first() == Some(t) => &parts[1..],
            _ => parts,
        };
        if kind.is_dir() && rest.is_empty() {
            wanted.push(None);
            continue;
        }
        let shown = parts.join("/");
        if !kind.is_file() {
            return Err(bad(format!(
                "{shown:?} is not a regular file (links and devices are refused)"
            )));
        }
        if rest.len() != 1 || !plain_name(&rest[0]) {
            return Err(invalid_name("the folder entry", &shown));
        }
        wanted.push(Some(rest[0].clone()));
    }
    let names: Vec<String> = wanted.iter().flatten().cloned().collect();
    if names.is_empty() {
        return Err(bad("no files".into()));
    }
    if names.len() > max_files {
        return Err(bad(format!("more than {max_files} files")));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = names.iter().find(|n| !seen.insert(*n)) {
        return Err(bad(format!("{dup:?} appears twice")));
    }
    let mut archive = tar::Archive::new(open()?);
    for (entry, name) in archive
        .entries()
        .map_err(|e| bad(e.to_string()))?
        .zip(&wanted)
    {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let Some(name) = name else { continue };
        let target: PathBuf = folder.join(name);
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&target)
            .map_err(|e| Problem::internal(e.to_string()))?;
        std::io::copy(&mut entry, &mut out).map_err(|e| bad(e.to_string()))?;
    }
    std::fs::remove_file(&tar_path).map_err(|e| Problem::internal(e.to_string()))?;
    Ok(names)
}
