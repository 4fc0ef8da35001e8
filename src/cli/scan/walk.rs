//! Which files a scan reads: the paths given, folders recursively (symlinks followed, loops
//! detected), each file once. Hugging Face cache folders (`models--org--name/` with `blobs/`,
//! `snapshots/<rev>/`) are read through their snapshot symlinks, so findings name the snapshot
//! path; a blob reached again directly is listed as a duplicate of it.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One path found under a scan root (`path` as the user reaches it, through symlinks).
pub struct Target {
    pub path: PathBuf,
    pub root: PathBuf,
    /// From the walk's own stat (0 when the path could not be read).
    pub size: u64,
    pub kind: TargetKind,
}

pub enum TargetKind {
    Scan,
    /// Not scanned, with the reason.
    Skip(String),
    /// The path could not be read.
    Error(String),
}

/// Version-control metadata is not model content, and a model repository clone has thousands
/// of object files in it.
const SKIPPED_DIRS: [&str; 3] = [".git", ".hg", ".svn"];

pub fn collect(paths: &[PathBuf]) -> Vec<Target> {
    let mut seen: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut out = Vec::new();
    for root in paths {
        let walker = walkdir::WalkDir::new(root)
            .follow_links(true)
            // Snapshots before blobs: a cache blob is reported under its snapshot name.
            .sort_by(|a, b| {
                let key =
                    |e: &walkdir::DirEntry| (e.file_name() == "blobs", e.file_name().to_owned());
                key(a).cmp(&key(b))
            })
            .into_iter()
            .filter_entry(|e| {
                !(e.file_type().is_dir() && SKIPPED_DIRS.iter().any(|d| e.file_name() == *d))
            });
        for entry in walker {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let path = e
                        .path()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| root.clone());
                    out.push(target(path, root, 0, TargetKind::Error(e.to_string())));
                    continue;
                }
            };
            if entry.file_type().is_dir() {
                continue;
            }
            let path = entry.path().to_path_buf();
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) => {
                    out.push(target(path, root, 0, TargetKind::Error(e.to_string())));
                    continue;
                }
            };
            let kind = if !meta.is_file() {
                TargetKind::Skip("not a regular file".into())
            } else if let Some(first) = seen.get(&(meta.dev(), meta.ino())) {
                TargetKind::Skip(format!("same file as {}", first.display()))
            } else {
                seen.insert((meta.dev(), meta.ino()), path.clone());
                TargetKind::Scan
            };
            out.push(target(path, root, meta.len(), kind));
        }
    }
    out
}

fn target(path: PathBuf, root: &Path, size: u64, kind: TargetKind) -> Target {
    Target {
        path,
        root: root.to_path_buf(),
        size,
        kind,
    }
}
