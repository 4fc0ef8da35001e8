//! The compiled guest, cached per guest hash and wasmtime version, so that a file's start-up
//! is an mmap of native code instead of a compilation. Only files this binary wrote are
//! loaded: the cache folder is ours alone (0700), entries are 0600 and owned by us.

use super::WASMTIME_VERSION;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use wasmtime::{Engine, Module};

fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("modelguard"))
}

/// Owned by us and writable by nobody else.
fn private(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| {
        m.uid() == nix::unistd::geteuid().as_raw()
            && m.mode() & 0o022 == 0
            && !m.file_type().is_symlink()
    })
}

/// The guest compiled for `engine`, and the cache file holding it when there is one.
pub fn load_or_compile(engine: &Engine, guest: &[u8]) -> Result<(Module, Option<PathBuf>), String> {
    let hash = super::guest_sha256().unwrap_or_default();
    let entry = cache_dir().map(|d| {
        (
            d.join(format!("guest-{hash}-wasmtime-{WASMTIME_VERSION}.cwasm")),
            d,
        )
    });
    if let Some((path, dir)) = &entry {
        if private(dir) {
            if let Ok(m) = load_file(engine, path) {
                return Ok((m, Some(path.clone())));
            }
        }
    }
    let module =
        Module::new(engine, guest).map_err(|e| format!("cannot compile the WASI guest: {e}"))?;
    let stored = entry.and_then(|(path, dir)| store(&module, &path, &dir).ok().map(|()| path));
    Ok((module, stored))
}

/// Load a module this binary serialised (the cache, or the file the host names for the
/// stacked worker).
pub fn load_file(engine: &Engine, path: &Path) -> Result<Module, String> {
    if !private(path) {
        return Err(format!(
            "{}: not a private file of this user; refusing to load native code from it",
            path.display()
        ));
    }
    // SAFETY: deserialising runs native code from the file. It is loaded only when it is ours and
    // private (not group/world-writable, not a symlink), in a folder only we can write: a file
    // that this binary serialised for this exact guest hash and wasmtime version. wasmtime also
    // checks the engine configuration and version recorded in it.
    unsafe { Module::deserialize_file(engine, path) }
        .map_err(|e| format!("{}: {e}", path.display()))
}

pub fn store(module: &Module, path: &Path, dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    let bytes = module.serialize().map_err(std::io::Error::other)?;
    crate::staging::sweep(dir);
    let mut tmp = crate::staging::file_beside(dir, "guest.cwasm")?;
    std::io::Write::write_all(&mut tmp, &bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
