//! Where originals and artifacts live, behind a trait: a local data folder here, S3-compatible
//! object storage when the service scales out (docs/scale-out.md).
//!
//! Layout under `--data-dir`:
//! - `quarantine/.incoming/<id>/`: an upload being received (removed at start-up);
//! - `quarantine/<id>/model` or `quarantine/<id>/folder/<name>`: an accepted original, 0600;
//! - `artifacts/.staging-<id>/`: a run's outputs being written (removed at start-up);
//! - `artifacts/<id>/`: published outputs, renamed into place whole, so never half-written.

use super::store::Kind;
use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub trait BlobStore: Send + Sync + 'static {
    /// A fresh private folder to receive upload `id` into.
    fn incoming(&self, id: &str) -> io::Result<PathBuf>;
    /// Make a received upload durable as the job's original (before the job is accepted).
    fn commit_original(&self, id: &str) -> io::Result<()>;
    /// Forget a received upload that will not become a job.
    fn discard_incoming(&self, id: &str);
    /// A local path the jail can open: the model file, or the folder of a folder job.
    fn original(&self, id: &str, kind: Kind) -> PathBuf;
    /// A fresh, empty folder for a run's outputs.
    fn staging(&self, id: &str) -> io::Result<PathBuf>;
    /// Make every output of a run visible at once (and durable).
    fn publish(&self, id: &str) -> io::Result<()>;
    /// A published artifact, if it exists.
    fn artifact(&self, id: &str, name: &str) -> io::Result<fs::File>;
    fn delete_original(&self, id: &str) -> io::Result<()>;
    fn delete_artifacts(&self, id: &str) -> io::Result<()>;
    /// Start-up: drop partial uploads and runs, originals of jobs that were never accepted, and
    /// the published outputs of jobs about to re-run (`rerun`).
    fn recover(&self, known: &HashSet<String>, rerun: &[String]) -> io::Result<()>;
    /// Whether the store can take writes (`/readyz`).
    fn writable(&self) -> bool;
}

pub struct LocalBlobs {
    quarantine: PathBuf,
    artifacts: PathBuf,
}

fn private_dir(p: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)?;
    fs::set_permissions(p, fs::Permissions::from_mode(0o700))
}

fn fsync_dir(p: &Path) -> io::Result<()> {
    fs::File::open(p)?.sync_all()
}

fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Ids are ours (hex), but never let one name anything outside its folder.
fn checked(id: &str) -> io::Result<&str> {
    if !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        Ok(id)
    } else {
        Err(io::Error::new(io::ErrorKind::InvalidInput, "not a job id"))
    }
}

impl LocalBlobs {
    pub fn open(data_dir: &Path) -> io::Result<LocalBlobs> {
        let blobs = LocalBlobs {
            quarantine: data_dir.join("quarantine"),
            artifacts: data_dir.join("artifacts"),
        };
        private_dir(&blobs.quarantine.join(".incoming"))?;
        private_dir(&blobs.artifacts)?;
        Ok(blobs)
    }

    fn incoming_dir(&self, id: &str) -> io::Result<PathBuf> {
        Ok(self.quarantine.join(".incoming").join(checked(id)?))
    }

    fn staging_dir(&self, id: &str) -> io::Result<PathBuf> {
        Ok(self.artifacts.join(format!(".staging-{}", checked(id)?)))
    }
}

impl BlobStore for LocalBlobs {
    fn incoming(&self, id: &str) -> io::Result<PathBuf> {
        let dir = self.incoming_dir(id)?;
        fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(dir)
    }

    fn commit_original(&self, id: &str) -> io::Result<()> {
        let from = self.incoming_dir(id)?;
        for entry in walk_files(&from)? {
            let f = fs::File::open(&entry)?;
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
            f.sync_all()?;
        }
        for dir in [from.join("folder"), from.clone()] {
            if dir.is_dir() {
                fsync_dir(&dir)?;
            }
        }
        fs::rename(&from, self.quarantine.join(id))?;
        fsync_dir(&self.quarantine)?;
        fsync_dir(&self.quarantine.join(".incoming"))
    }

    fn discard_incoming(&self, id: &str) {
        if let Ok(dir) = self.incoming_dir(id) {
            let _ = remove_any(&dir);
        }
    }

    fn original(&self, id: &str, kind: Kind) -> PathBuf {
        let dir = self.quarantine.join(id);
        match kind {
            Kind::File => dir.join("model"),
            Kind::Folder => dir.join("folder"),
        }
    }

    fn staging(&self, id: &str) -> io::Result<PathBuf> {
        let dir = self.staging_dir(id)?;
        remove_any(&dir)?;
        fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(dir)
    }

    fn publish(&self, id: &str) -> io::Result<()> {
        let from = self.staging_dir(id)?;
        for entry in walk_files(&from)? {
            fs::File::open(&entry)?.sync_all()?;
        }
        fsync_dir(&from)?;
        let to = self.artifacts.join(checked(id)?);
        remove_any(&to)?;
        fs::rename(&from, &to)?;
        fsync_dir(&self.artifacts)
    }

    fn artifact(&self, id: &str, name: &str) -> io::Result<fs::File> {
        if !super::upload::plain_name(name) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such artifact"));
        }
        let path = self.artifacts.join(checked(id)?).join(name);
        let f = fs::File::open(path)?;
        if !f.metadata()?.is_file() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such artifact"));
        }
        Ok(f)
    }

    fn delete_original(&self, id: &str) -> io::Result<()> {
        remove_any(&self.quarantine.join(checked(id)?))
    }

    fn delete_artifacts(&self, id: &str) -> io::Result<()> {
        remove_any(&self.artifacts.join(checked(id)?))?;
        remove_any(&self.staging_dir(id)?)
    }

    fn recover(&self, known: &HashSet<String>, rerun: &[String]) -> io::Result<()> {
        let incoming = self.quarantine.join(".incoming");
        for entry in fs::read_dir(&incoming)? {
            remove_any(&entry?.path())?;
        }
        for entry in fs::read_dir(&self.quarantine)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != ".incoming" && !known.contains(&name) {
                remove_any(&entry.path())?;
            }
        }
        for entry in fs::read_dir(&self.artifacts)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".staging-") || !known.contains(&name) {
                remove_any(&entry.path())?;
            }
        }
        for id in rerun {
            self.delete_artifacts(id)?;
        }
        Ok(())
    }

    fn writable(&self) -> bool {
        let probe = self.quarantine.join(".incoming").join(".ready-probe");
        let ok = fs::write(&probe, b"").is_ok();
        let _ = fs::remove_file(&probe);
        ok
    }
}

/// Regular files directly in `dir` and in its `folder/` (the only shapes we create).
fn walk_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for d in [dir.to_path_buf(), dir.join("folder")] {
        if !d.is_dir() {
            continue;
        }
        for entry in fs::read_dir(&d)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                out.push(entry.path());
            }
        }
    }
    Ok(out)
}
