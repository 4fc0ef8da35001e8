//! Temporary files and folders that modelguard makes beside a destination, and the clean-up of
//! the ones a killed run left behind.
//!
//! Every such entry is named `.{label}.{pid}.{random}.modelguard-tmp` and carries an exclusive
//! `flock` for as long as its maker (or the jailed worker that shares the descriptor) lives, so a
//! later run can tell a stale entry from a live one without guessing from timestamps. A sweep
//! removes an entry only when both say it is dead: its lock can be taken and its pid is gone.
//! The pid covers the instant between creating an entry and locking it; the lock covers pid
//! reuse. Entries that do not match the pattern are never touched.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

pub const SUFFIX: &str = ".modelguard-tmp";

/// A file being written before it is renamed into place; the lock goes with the descriptor.
pub fn file_beside(dir: &Path, label: &str) -> io::Result<tempfile::NamedTempFile> {
    let prefix = prefix(label);
    let tmp = builder(&prefix).tempfile_in(dir)?;
    lock(tmp.as_file())?;
    Ok(tmp)
}

/// A folder being filled before it is renamed into place.
pub struct StagedDir {
    dir: tempfile::TempDir,
    _lock: File,
}

impl StagedDir {
    pub fn new(parent: &Path, label: &str) -> io::Result<StagedDir> {
        let prefix = prefix(label);
        let dir = builder(&prefix).tempdir_in(parent)?;
        let handle = File::open(dir.path())?;
        lock(&handle)?;
        Ok(StagedDir { dir, _lock: handle })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Stop removing the folder on drop (it is about to be renamed); the lock is released.
    pub fn keep(self) -> PathBuf {
        self.dir.keep()
    }
}

fn prefix(label: &str) -> String {
    format!(".{label}.{}.", std::process::id())
}

fn builder(prefix: &str) -> tempfile::Builder<'_, 'static> {
    let mut b = tempfile::Builder::new();
    b.prefix(prefix).suffix(SUFFIX).rand_bytes(8);
    b
}

fn lock(f: &File) -> io::Result<()> {
    f.try_lock().map_err(|e| match e {
        fs::TryLockError::Error(e) => e,
        fs::TryLockError::WouldBlock => io::Error::other("a fresh temporary file is locked"),
    })
}

/// Remove the stale entries of ours in `dir`; returns how many went. Errors are ignored: a
/// sweep is tidying, and a run must not fail because an old leftover cannot be removed.
pub fn sweep(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        if pid == std::process::id() || process_alive(pid) {
            continue;
        }
        // Never follow a link: only files and folders we could have made qualify.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        let Ok(handle) = File::open(&path) else {
            continue;
        };
        if handle.try_lock().is_err() {
            continue;
        }
        let gone = if kind.is_dir() {
            fs::remove_dir_all(&path)
        } else if kind.is_file() {
            fs::remove_file(&path)
        } else {
            continue;
        };
        if gone.is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The pid in `.{label}.{pid}.{random}.modelguard-tmp`, or `None` for any other name.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(SUFFIX)?;
    let (rest, random) = rest.rsplit_once('.')?;
    let (label, pid) = rest.rsplit_once('.')?;
    if label.is_empty() || random.is_empty() || !random.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

#[cfg(target_os = "linux")]
fn process_alive(pid: u32) -> bool {
    use nix::errno::Errno;
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    // Signal 0 checks existence only; EPERM means it exists under another user.
    !matches!(kill(Pid::from_raw(raw), None), Err(Errno::ESRCH))
}

/// Without a reliable liveness check, every entry is treated as live: never sweep.
#[cfg(not(target_os = "linux"))]
fn process_alive(_pid: u32) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_reads_only_our_names() {
        assert_eq!(
            owner_pid(".out.safetensors.123.Ab3dE9fG.modelguard-tmp"),
            Some(123)
        );
        assert_eq!(owner_pid(".a.b.c.7.x1.modelguard-tmp"), Some(7));
        for other in [
            "out.safetensors",
            ".out.safetensors.abc.Ab3dE9.modelguard-tmp",
            ".out.12.modelguard-tmp",
            "..12.Ab3d.modelguard-tmp",
            ".out.12..modelguard-tmp",
            ".out.12.Ab/3d.modelguard-tmp",
            ".out.safetensors.XXXXXX.modelguard-tmp", // the old naming, without a pid
            ".out.12.Ab3dE9.modelguard-tmp.bak",
        ] {
            assert_eq!(owner_pid(other), None, "{other}");
        }
    }

    #[test]
    fn sweep_removes_only_dead_unlocked_entries_of_ours() {
        let dir = tempfile::tempdir().unwrap();
        // A pid that cannot exist (above the kernel's pid_max limit of 2^22).
        let dead = 4_194_305u32;
        let stale_file = dir.path().join(format!(".m.pt.{dead}.AAAAAAAA{SUFFIX}"));
        let stale_dir = dir.path().join(format!(".shards.{dead}.BBBBBBBB{SUFFIX}"));
        fs::write(&stale_file, b"partial").unwrap();
        fs::create_dir(&stale_dir).unwrap();
        fs::write(stale_dir.join("model.safetensors"), b"partial").unwrap();
        // Dead pid but locked (a worker that outlived its host still holds the descriptor).
        let held = dir.path().join(format!(".held.{dead}.CCCCCCCC{SUFFIX}"));
        fs::write(&held, b"x").unwrap();
        let holder = File::open(&held).unwrap();
        holder.try_lock().unwrap();
        // Live: ours, and one of a live process (pid 1) that has not locked yet.
        let live = file_beside(dir.path(), "mine").unwrap();
        let unlocked_live = dir.path().join(format!(".init.1.DDDDDDDD{SUFFIX}"));
        fs::write(&unlocked_live, b"x").unwrap();
        // Not ours at all.
        let user = dir.path().join("model.modelguard-tmp");
        fs::write(&user, b"user data").unwrap();

        assert_eq!(sweep(dir.path()), 2);
        assert!(!stale_file.exists() && !stale_dir.exists());
        assert!(held.exists() && live.path().exists() && unlocked_live.exists() && user.exists());
        drop(holder);
        assert_eq!(sweep(dir.path()), 1);
        assert!(!held.exists());
    }

    #[test]
    fn staged_dir_is_locked_until_kept() {
        let parent = tempfile::tempdir().unwrap();
        let staged = StagedDir::new(parent.path(), "out").unwrap();
        let other = File::open(staged.path()).unwrap();
        assert!(other.try_lock().is_err());
        let kept = staged.keep();
        assert!(other.try_lock().is_ok());
        assert!(kept.is_dir());
    }
}
