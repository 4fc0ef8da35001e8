//! The guest's only directory: a fresh folder holding the very file the host opened, under the
//! name `input` (a hard link made through the open fd, or a private copy across filesystems), so
//! nothing else of the host's filesystem is visible and no path can be swapped in between.

use std::fs::File;
use std::path::Path;

pub struct GuestDir {
    dir: crate::staging::StagedDir,
}

impl GuestDir {
    /// Made in `near` (the destination folder, so the hard link stays on one filesystem) or,
    /// failing that, in the system temporary folder.
    pub fn new(input: &File, near: &Path) -> Result<GuestDir, String> {
        const LABEL: &str = "modelguard-wasi-input";
        let dir = crate::staging::StagedDir::new(near, LABEL)
            .or_else(|_| crate::staging::StagedDir::new(&std::env::temp_dir(), LABEL))
            .map_err(|e| format!("cannot create the guest's directory: {e}"))?;
        let link = dir.path().join("input");
        if !link_open_file(input, &link) {
            copy_open_file(input, &link)
                .map_err(|e| format!("cannot give the input to the guest: {e}"))?;
        }
        Ok(GuestDir { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// `linkat(/proc/self/fd/N, AT_SYMLINK_FOLLOW)`: a name for exactly the open file.
fn link_open_file(file: &File, to: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let from = format!("/proc/self/fd/{}", file.as_raw_fd());
    nix::unistd::linkat(
        nix::fcntl::AT_FDCWD,
        from.as_str(),
        nix::fcntl::AT_FDCWD,
        to,
        nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
    )
    .is_ok()
}

fn copy_open_file(file: &File, to: &Path) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut src = file.try_clone()?;
    src.seek(SeekFrom::Start(0))?;
    let mut dst = File::create(to)?;
    std::io::copy(&mut src, &mut dst)?;
    Ok(())
}
