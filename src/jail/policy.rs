//! The jail policy as data: the seccomp allowlist and the Landlock ruleset from
//! `sandbox-profiles/`, embedded at build time and compiled here.

use seccompiler::{BpfProgram, TargetArch};

pub const SECCOMP_X86_64: &str = include_str!("../../sandbox-profiles/seccomp-x86_64.json");
pub const SECCOMP_AARCH64: &str = include_str!("../../sandbox-profiles/seccomp-aarch64.json");
pub const SECCOMP_BOTH_X86_64: &str =
    include_str!("../../sandbox-profiles/seccomp-both-x86_64.json");
pub const SECCOMP_BOTH_AARCH64: &str =
    include_str!("../../sandbox-profiles/seccomp-both-aarch64.json");
pub const LANDLOCK: &str = include_str!("../../sandbox-profiles/landlock.json");

/// The filter for the architecture this binary runs on: the parser's, or the parser's plus
/// the `both` additions for wasmtime running the guest.
pub fn seccomp_filter(stacked: Option<i32>) -> Result<BpfProgram, String> {
    #[cfg(target_arch = "x86_64")]
    let (json, both, arch) = (SECCOMP_X86_64, SECCOMP_BOTH_X86_64, TargetArch::x86_64);
    #[cfg(target_arch = "aarch64")]
    let (json, both, arch) = (SECCOMP_AARCH64, SECCOMP_BOTH_AARCH64, TargetArch::aarch64);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    return Err("no seccomp policy for this architecture".into());
    if let Some(guest_dir_fd) = stacked {
        compile(&merge(json, both, guest_dir_fd)?, arch)
    } else {
        compile(json, arch)
    }
}

pub fn compile(json: &str, arch: TargetArch) -> Result<BpfProgram, String> {
    let mut map =
        seccompiler::compile_from_json(json.as_bytes(), arch).map_err(|e| e.to_string())?;
    map.remove("worker")
        .ok_or_else(|| "the seccomp profile has no `worker` filter".to_string())
}

/// The `worker` filter with the rules of `additions`' `both` filter appended: the stacked
/// profile is the parser's plus exactly what the `both` file lists. Its argument value
/// `"GUEST_DIR_FD"` stands for the descriptor of the guest's folder, known only at run time.
pub fn merge(base: &str, additions: &str, guest_dir_fd: i32) -> Result<String, String> {
    let mut doc: serde_json::Value = serde_json::from_str(base).map_err(|e| e.to_string())?;
    let add: serde_json::Value = serde_json::from_str(additions).map_err(|e| e.to_string())?;
    let mut extra = add["both"]["filter"]
        .as_array()
        .ok_or("the `both` seccomp profile has no `both.filter` list")?
        .clone();
    for rule in &mut extra {
        for a in rule["args"].as_array_mut().into_iter().flatten() {
            if a["val"] == "GUEST_DIR_FD" {
                a["val"] = guest_dir_fd.into();
            }
        }
    }
    doc["worker"]["filter"]
        .as_array_mut()
        .ok_or("the seccomp profile has no `worker.filter` list")?
        .extend(extra);
    Ok(doc.to_string())
}

/// What the Landlock profile asks for (parsed to check it says what the code enforces).
#[derive(Debug, serde::Deserialize)]
pub struct LandlockProfile {
    pub filesystem: LandlockFs,
    pub network: LandlockNet,
    pub scopes: Vec<String>,
    /// The one rule `--sandbox both` adds.
    pub stacked: LandlockStacked,
}

#[derive(Debug, serde::Deserialize)]
pub struct LandlockStacked {
    pub allowed_paths: Vec<LandlockRule>,
}

#[derive(Debug, serde::Deserialize)]
pub struct LandlockRule {
    pub path: String,
    pub access: Vec<String>,
}

#[derive(Debug, serde::Deserialize)]
pub struct LandlockFs {
    pub handled: String,
    pub allowed_paths: Vec<String>,
}

#[derive(Debug, serde::Deserialize)]
pub struct LandlockNet {
    pub handled: Vec<String>,
    pub allowed_ports: Vec<u16>,
}

pub fn landlock_profile() -> Result<LandlockProfile, String> {
    serde_json::from_str(LANDLOCK).map_err(|e| format!("landlock profile: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_architectures_compile() {
        assert!(!compile(SECCOMP_X86_64, TargetArch::x86_64)
            .unwrap()
            .is_empty());
        assert!(!compile(SECCOMP_AARCH64, TargetArch::aarch64)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn profiles_forbid_what_the_issue_forbids() {
        for json in [SECCOMP_X86_64, SECCOMP_AARCH64] {
            let doc: serde_json::Value = serde_json::from_str(json).unwrap();
            let w = &doc["worker"];
            assert_eq!(w["mismatch_action"], "kill_process");
            for rule in w["filter"].as_array().unwrap() {
                let name = rule["syscall"].as_str().unwrap();
                assert!(rule["comment"].is_string(), "{name}: every rule says why");
                for banned in [
                    "open", "openat", "socket", "connect", "clone", "clone3", "fork", "vfork",
                    "execve", "execveat", "ptrace", "ioctl", "prctl", "unshare", "kill", "tgkill",
                ] {
                    assert_ne!(name, banned);
                }
            }
        }
        let ll = landlock_profile().unwrap();
        assert_eq!(ll.filesystem.handled, "all");
        assert!(ll.filesystem.allowed_paths.is_empty() && ll.network.allowed_ports.is_empty());
        let stacked = &ll.stacked.allowed_paths;
        assert_eq!(stacked.len(), 1);
        assert_eq!(stacked[0].access, ["read_file"]);
    }

    #[test]
    fn the_stacked_profile_adds_only_what_it_lists() {
        for (base, both, arch) in [
            (SECCOMP_X86_64, SECCOMP_BOTH_X86_64, TargetArch::x86_64),
            (SECCOMP_AARCH64, SECCOMP_BOTH_AARCH64, TargetArch::aarch64),
        ] {
            let merged: serde_json::Value =
                serde_json::from_str(&merge(base, both, 4).unwrap()).unwrap();
            let names: Vec<&str> = merged["worker"]["filter"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["syscall"].as_str().unwrap())
                .collect();
            let added = &names[names.len() - 3..];
            assert_eq!(added, ["openat2", "pread64", "statx"]);
            let extra: serde_json::Value = serde_json::from_str(both).unwrap();
            for rule in extra["both"]["filter"].as_array().unwrap() {
                assert!(rule["comment"].is_string());
                for banned in [
                    "mmap", "mprotect", "clone", "clone3", "openat", "socket", "execve",
                ] {
                    assert_ne!(
                        rule["syscall"], banned,
                        "the stacked profile must not add {banned}"
                    );
                }
            }
            assert!(merged.to_string().contains("\"val\":4"));
            assert!(!merged.to_string().contains("GUEST_DIR_FD"));
            assert!(compile(&merged.to_string(), arch).is_ok());
        }
    }
}
