//! `convert --hf-cache org/name[@rev]`: find a snapshot in the local Hugging Face cache and name
//! the folder its conversion goes to.
//!
//! The cache is `<root>/models--org--name/{blobs,refs,snapshots}`; snapshot files are relative
//! symlinks into `blobs/`. The conversion goes to `models--org--name/modelguard/<commit>/`:
//! beside the snapshot, deleted with the repo, and invisible to `huggingface_hub`'s cache scan
//! (which reads only `refs/` and `snapshots/`). Never inside `snapshots/<commit>/`, where
//! `hf_hub_download` would later serve our file as upstream's, and never under `blobs/`.

use std::path::{Path, PathBuf};

/// A resolved snapshot and where its conversion goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedSnapshot {
    pub repo_id: String,
    pub commit: String,
    /// `<root>/models--org--name`
    pub repo_dir: PathBuf,
    /// `<repo_dir>/snapshots/<commit>`
    pub snapshot: PathBuf,
    /// `<repo_dir>/modelguard/<commit>`
    pub output: PathBuf,
}

impl CachedSnapshot {
    /// The `--source` URI the conversion records (and checks for look-alike names).
    pub fn source_uri(&self) -> String {
        format!("hf://{}@{}", self.repo_id, self.commit)
    }
}

/// The hub cache folder, in `huggingface_hub`'s order: `HF_HUB_CACHE`, the legacy
/// `HUGGINGFACE_HUB_CACHE`, `$HF_HOME/hub`, `$XDG_CACHE_HOME/huggingface/hub`,
/// `~/.cache/huggingface/hub`.
pub fn cache_root(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, String> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    let home = || set("HOME").ok_or("HOME is not set, so there is no default Hugging Face cache");
    let expand = |v: String| -> Result<PathBuf, String> {
        match v.strip_prefix("~/") {
            Some(rest) => Ok(PathBuf::from(home()?).join(rest)),
            None if v == "~" => Ok(PathBuf::from(home()?)),
            None => Ok(PathBuf::from(v)),
        }
    };
    if let Some(v) = set("HF_HUB_CACHE").or_else(|| set("HUGGINGFACE_HUB_CACHE")) {
        return expand(v);
    }
    if let Some(v) = set("HF_HOME") {
        return Ok(expand(v)?.join("hub"));
    }
    if let Some(v) = set("XDG_CACHE_HOME") {
        return Ok(expand(v)?.join("huggingface").join("hub"));
    }
    Ok(PathBuf::from(home()?).join(".cache/huggingface/hub"))
}

/// `org/name[@rev]` (or `name[@rev]`), `rev` a branch, tag, `refs/pr/N` or a full commit.
pub fn resolve(spec: &str, root: &Path) -> Result<CachedSnapshot, String> {
    let (repo_id, rev) = spec.split_once('@').unwrap_or((spec, "main"));
    let parts: Vec<&str> = repo_id.split('/').collect();
    if parts.is_empty() || parts.len() > 2 || !parts.iter().all(|p| repo_part(p)) {
        return Err(format!(
            "{repo_id:?} is not a Hugging Face repo id (org/name, letters, digits, '-', '_', '.')"
        ));
    }
    if rev.is_empty() || rev.starts_with('/') || rev.split('/').any(|s| !repo_part(s)) {
        return Err(format!("{rev:?} is not a revision name"));
    }
    let repo_dir = root.join(format!("models--{}", parts.join("--")));
    if !repo_dir.is_dir() {
        return Err(format!(
            "{repo_id} is not in the Hugging Face cache ({} does not exist; the cache is \
             $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)",
            repo_dir.display()
        ));
    }
    let commit = match std::fs::read_to_string(repo_dir.join("refs").join(rev)) {
        Ok(text) => text.trim().to_string(),
        Err(_) if is_commit(rev) => rev.to_string(),
        Err(_) => {
            return Err(format!(
                "{repo_id} has no revision {rev:?} in the cache (no refs/{rev})"
            ))
        }
    };
    if !is_commit(&commit) {
        return Err(format!(
            "refs/{rev} of {repo_id} does not hold a commit hash"
        ));
    }
    let snapshot = repo_dir.join("snapshots").join(&commit);
    if !snapshot.is_dir() {
        return Err(format!(
            "{repo_id}@{rev}: snapshot {commit} is not in the cache"
        ));
    }
    let output = repo_dir.join("modelguard").join(&commit);
    Ok(CachedSnapshot {
        repo_id: repo_id.to_string(),
        commit,
        repo_dir,
        snapshot,
        output,
    })
}

/// Create `<repo_dir>/modelguard/` as a real folder: a symlink planted there (into `blobs/` or
/// anywhere else) is refused rather than followed.
pub fn prepare_output_parent(s: &CachedSnapshot) -> Result<(), String> {
    let parent = s.repo_dir.join("modelguard");
    match std::fs::symlink_metadata(&parent) {
        Ok(m) if m.file_type().is_dir() => {}
        Ok(_) => {
            return Err(format!(
                "{} exists and is not a folder (a symlink is not followed)",
                parent.display()
            ))
        }
        Err(_) => std::fs::create_dir(&parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?,
    }
    if let Ok(m) = std::fs::symlink_metadata(&s.output) {
        if !m.file_type().is_dir() {
            return Err(format!(
                "{} exists and is not a folder (a symlink is not followed)",
                s.output.display()
            ));
        }
    }
    Ok(())
}

fn repo_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 96
        && s != "."
        && s != ".."
        && !s.contains("--")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_commit(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn cache_root_follows_huggingface_hub_precedence() {
        let all = [
            ("HF_HUB_CACHE", "/a"),
            ("HUGGINGFACE_HUB_CACHE", "/b"),
            ("HF_HOME", "/c"),
            ("XDG_CACHE_HOME", "/d"),
            ("HOME", "/home/u"),
        ];
        let expect = ["/a", "/b", "/c/hub", "/d/huggingface/hub"];
        for (i, want) in expect.iter().enumerate() {
            assert_eq!(cache_root(&env(&all[i..])).unwrap(), PathBuf::from(want));
        }
        assert_eq!(
            cache_root(&env(&[("HOME", "/home/u")])).unwrap(),
            PathBuf::from("/home/u/.cache/huggingface/hub")
        );
        assert_eq!(
            cache_root(&env(&[("HF_HOME", "~/hf"), ("HOME", "/home/u")])).unwrap(),
            PathBuf::from("/home/u/hf/hub")
        );
        // Empty values count as unset, as in huggingface_hub.
        assert_eq!(
            cache_root(&env(&[("HF_HUB_CACHE", ""), ("HF_HOME", "/c")])).unwrap(),
            PathBuf::from("/c/hub")
        );
        assert!(cache_root(&env(&[])).is_err());
    }

    #[test]
    fn repo_ids_and_revisions_cannot_leave_the_cache() {
        let root = Path::new("/nonexistent-cache");
        for bad in [
            "../x",
            "a/b/c",
            "a/..",
            "/abs",
            "a--b/c",
            "a/b@../../x",
            "a/b@",
            "a/b@/etc",
            "",
        ] {
            let e = resolve(bad, root).unwrap_err();
            assert!(!e.contains("not in the Hugging Face cache"), "{bad}: {e}");
        }
        assert!(resolve("org/name@refs/pr/1", root)
            .unwrap_err()
            .contains("not in the Hugging Face cache"));
    }
}
