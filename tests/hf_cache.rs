//! `convert --hf-cache org/name[@rev]` on a Hugging Face cache laid out as `huggingface_hub`
//! lays it out (blobs named by hash, relative snapshot symlinks, refs/main): the conversion
//! lands in `models--org--name/modelguard/<commit>/`, `blobs/` and `snapshots/` stay exactly as
//! they were, only weights and data files go into the output, and a refused model leaves
//! nothing behind.
#![cfg(target_os = "linux")]

mod common;
use common::{fixtures, read_safetensors};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

struct Cache {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    repo: PathBuf,
}

/// A cache holding `org/tiny` at COMMIT (refs/main): each file of `files` becomes a blob and
/// a relative symlink in the snapshot.
fn cache(files: &[(&str, &Path)]) -> Cache {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("hub");
    let repo = root.join("models--org--tiny");
    let snap = repo.join("snapshots").join(COMMIT);
    fs::create_dir_all(repo.join("blobs")).unwrap();
    fs::create_dir_all(repo.join("refs")).unwrap();
    fs::create_dir_all(&snap).unwrap();
    fs::write(repo.join("refs/main"), COMMIT).unwrap();
    for (i, (name, src)) in files.iter().enumerate() {
        let blob = format!("{i:040x}");
        fs::copy(src, repo.join("blobs").join(&blob)).unwrap();
        symlink(format!("../../blobs/{blob}"), snap.join(name)).unwrap();
    }
    Cache {
        _tmp: tmp,
        root,
        repo,
    }
}

/// Every entry under `dir` (symlinks not followed) with its kind, bytes or target, and mtime.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (String, Vec<u8>, i128)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = fs::symlink_metadata(&p).unwrap();
            let mtime = m
                .modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as i128;
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            if m.file_type().is_symlink() {
                let t = fs::read_link(&p).unwrap();
                out.insert(
                    rel,
                    (
                        "link".into(),
                        t.into_os_string().into_encoded_bytes(),
                        mtime,
                    ),
                );
            } else if m.is_dir() {
                out.insert(rel, ("dir".into(), Vec::new(), mtime));
                stack.push(p);
            } else {
                out.insert(rel, ("file".into(), fs::read(&p).unwrap(), mtime));
            }
        }
    }
    out
}

fn convert(
    root: &Path,
    spec: &str,
    extra_env: &[(&str, &str)],
) -> (i32, serde_json::Value, String) {
    let mut cmd = Command::new(common::bin());
    cmd.args(["convert", "-q", "--hf-cache", spec, "--report", "-"])
        .env_remove("HF_HOME")
        .env_remove("HUGGINGFACE_HUB_CACHE")
        .env("HF_HUB_CACHE", root);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        report,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn hf_single() -> PathBuf {
    fixtures().join("models/hf_single")
}

#[test]
fn converts_a_cached_snapshot_beside_it_and_leaves_the_cache_untouched() {
    let evil = fixtures().join("malicious/files/t01_os_system_proto4.pkl");
    let code_file = fixtures().join("models/hf_single/config.json");
    let c = cache(&[
        ("pytorch_model.bin", &hf_single().join("pytorch_model.bin")),
        ("config.json", &hf_single().join("config.json")),
        // A pickled TrainingArguments would be flagged; it is not weights and is never read.
        ("training_args.bin", &evil),
        // Remote code is never copied into the output.
        ("modeling_tiny.py", &code_file),
    ]);
    let blobs_before = tree(&c.repo.join("blobs"));
    let snaps_before = tree(&c.repo.join("snapshots"));
    let refs_before = tree(&c.repo.join("refs"));

    let (code, report, stderr) = convert(&c.root, "org/tiny", &[]);
    assert_eq!(code, 0, "{stderr}");
    let out = c.repo.join("modelguard").join(COMMIT);
    assert_eq!(report["output"], out.display().to_string());
    assert_eq!(report["copied"], serde_json::json!(["config.json"]));
    let mut names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["config.json", "model.safetensors"]);
    assert_eq!(
        read_safetensors(&out.join("model.safetensors")).0,
        read_safetensors(&fixtures().join("expected/hf_single/model.safetensors")).0
    );
    let config = fs::symlink_metadata(out.join("config.json")).unwrap();
    assert!(
        config.is_file(),
        "config.json is a copy, not a link into blobs/"
    );
    assert_eq!(
        fs::read(out.join("config.json")).unwrap(),
        fs::read(hf_single().join("config.json")).unwrap()
    );
    assert_eq!(tree(&c.repo.join("blobs")), blobs_before, "blobs/ changed");
    assert_eq!(
        tree(&c.repo.join("snapshots")),
        snaps_before,
        "snapshots/ changed"
    );
    assert_eq!(tree(&c.repo.join("refs")), refs_before, "refs/ changed");

    // Again: the earlier conversion is replaced, and no temporary is left in modelguard/.
    let (code, _, stderr) = convert(&c.root, &format!("org/tiny@{COMMIT}"), &[]);
    assert_eq!(code, 0, "{stderr}");
    let left: Vec<_> = fs::read_dir(c.repo.join("modelguard"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [std::ffi::OsString::from(COMMIT)]);
    assert_eq!(tree(&c.repo.join("blobs")), blobs_before, "blobs/ changed");
}

#[test]
fn the_cache_is_found_through_hf_home_too() {
    let c = cache(&[("pytorch_model.bin", &hf_single().join("pytorch_model.bin"))]);
    let home = c.root.parent().unwrap();
    fs::rename(&c.root, home.join("hub-via-home")).unwrap();
    fs::create_dir(home.join("hfhome")).unwrap();
    symlink(home.join("hub-via-home"), home.join("hfhome/hub")).unwrap();
    let out = Command::new(common::bin())
        .args(["convert", "-q", "--hf-cache", "org/tiny"])
        .env_remove("HF_HUB_CACHE")
        .env_remove("HUGGINGFACE_HUB_CACHE")
        .env("HF_HOME", home.join("hfhome"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(home
        .join("hub-via-home/models--org--tiny/modelguard")
        .join(COMMIT)
        .join("model.safetensors")
        .is_file());
}

#[test]
fn a_malicious_snapshot_is_refused_and_nothing_is_written() {
    let evil = fixtures().join("malicious/files/pytorch_model.bin");
    let c = cache(&[("pytorch_model.bin", &evil)]);
    let (code, report, stderr) = convert(&c.root, "org/tiny", &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(!report["findings"].as_array().unwrap().is_empty());
    assert!(!c.repo.join("modelguard").join(COMMIT).exists());
    let left: Vec<_> = fs::read_dir(c.repo.join("modelguard")).unwrap().collect();
    assert!(left.is_empty(), "leftovers: {left:?}");
}

#[test]
fn bad_revisions_and_planted_symlinks_are_errors() {
    let c = cache(&[("pytorch_model.bin", &hf_single().join("pytorch_model.bin"))]);
    let blobs_before = tree(&c.repo.join("blobs"));
    for (spec, want) in [
        ("org/tiny@v2", "no revision \"v2\""),
        ("org/other", "not in the Hugging Face cache"),
        ("org/../tiny", "not a Hugging Face repo id"),
        (
            "org/tiny@ffffffffffffffffffffffffffffffffffffffff",
            "is not in the cache",
        ),
    ] {
        let (code, _, stderr) = convert(&c.root, spec, &[]);
        assert_eq!(code, 2, "{spec}: {stderr}");
        assert!(stderr.contains(want), "{spec}: {stderr}");
    }
    // Someone with write access to the cache points modelguard/ into blobs/: refused.
    symlink("blobs", c.repo.join("modelguard")).unwrap();
    let (code, _, stderr) = convert(&c.root, "org/tiny", &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("symlink is not followed"), "{stderr}");
    assert_eq!(tree(&c.repo.join("blobs")), blobs_before, "blobs/ changed");
}
