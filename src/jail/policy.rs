//! The jail policy as data: the seccomp allowlist and the Landlock ruleset from
//! `sandbox-profiles/`, embedded at build time and compiled here.

use seccompiler::{BpfProgram, TargetArch};

pub const SECCOMP_X86_64: &str = include_str!("../../sandbox-profiles/seccomp-x86_64.json");
pub const SECCOMP_AARCH64: &str = include_str!("../../sandbox-profiles/seccomp-aarch64.json");
pub const LANDLOCK: &str = include_str!("../../sandbox-profiles/landlock.json");

/// The filter for the architecture this binary runs on.
pub fn seccomp_filter() -> Result<BpfProgram, String> {
    #[cfg(target_arch = "x86_64")]
    let (json, arch) = (SECCOMP_X86_64, TargetArch::x86_64);
    #[cfg(target_arch = "aarch64")]
    let (json, arch) = (SECCOMP_AARCH64, TargetArch::aarch64);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    return Err("no seccomp policy for this architecture".into());
    compile(json, arch)
}

pub fn compile(json: &str, arch: TargetArch) -> Result<BpfProgram, String> {
    let mut map =
        seccompiler::compile_from_json(json.as_bytes(), arch).map_err(|e| e.to_string())?;
    map.remove("worker")
        .ok_or_else(|| "the seccomp profile has no `worker` filter".to_string())
}

/// What the Landlock profile asks for (parsed to check it says what the code enforces).
#[derive(Debug, serde::Deserialize)]
pub struct LandlockProfile {
    pub filesystem: LandlockFs,
    pub network: LandlockNet,
    pub scopes: Vec<String>,
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
    }
}
