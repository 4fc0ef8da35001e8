//! Which files a scan reads: the paths given, folders recursively (symlinks followed, loops
//! detected), each file once. Hugging Face cache folders (`models--org--name/` with `blobs/`,
//! `snapshots/<rev>/`) are read through their snapshot symlinks, so findings name the snapshot
//! path; a blob reached again directly is listed as a duplicate of it.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub enum Target {
    /// Scan this file; `path` is how the user reaches it (through symlinks).
    Scan { path: PathBuf, root: PathBuf },
    /// Not scanned, with the reason.
    Skip {
        path: PathBuf,
        root: PathBuf,
        reason: String,
    },
    /// The path could not be read.
    Error {
        path: PathBuf,
        root: PathBuf,
        message: String,
    },
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
                    out.push(Target::Error {
                        path,
                        root: root.clone(),
                        message: e.to_string(),
                    });
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
                    out.push(Target::Error {
                        path,
                        root: root.clone(),
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            if !meta.is_file() {
                out.push(Target::Skip {
                    path,
                    root: root.clone(),
                    reason: "not a regular file".into(),
                });
                continue;
            }
            match seen.get(&(meta.dev(), meta.ino())) {
                Some(first) => out.push(Target::Skip {
                    reason: format!("same file as {}", first.display()),
                    path,
                    root: root.clone(),
                }),
                None => {
                    seen.insert((meta.dev(), meta.ino()), path.clone());
                    out.push(Target::Scan {
                        path,
                        root: root.clone(),
                    });
                }
            }
        }
    }
    out
}
