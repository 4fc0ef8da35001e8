//! The worker's lock-down, in the order the design fixes: process hygiene, namespaces, rlimits,
//! Landlock, seccomp (last, right before the first untrusted byte is read). Every step fails
//! closed with its name, except the layers the kernel may not offer, which are reported.

use super::layers::{LayerStatus, Layers};
use nix::sched::CloneFlags;
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::signal::Signal;
use nix::unistd::{getppid, setsid, Pid};

/// What the host decided for this worker.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Budget {
    /// The host's pid: the worker exits if its parent is already gone.
    pub parent: i32,
    /// Address space, bytes.
    pub memory: u64,
    /// CPU seconds.
    pub cpu_seconds: u64,
    /// Largest output file, bytes (RLIMIT_FSIZE on the output the worker writes).
    pub output_bytes: u64,
}

pub struct LockdownError {
    pub step: &'static str,
    pub message: String,
}

impl std::fmt::Display for LockdownError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "lock-down step `{}` failed: {}", self.step, self.message)
    }
}

fn fail(step: &'static str, message: impl std::fmt::Display) -> LockdownError {
    LockdownError {
        step,
        message: message.to_string(),
    }
}

/// What the locked-down process must still be able to do.
#[derive(Debug, Clone, Copy)]
pub enum Profile<'a> {
    /// The engine itself: only the three fds it was handed.
    Parser,
    /// wasmtime running the WASI guest (`--sandbox both`): additionally, open the one input
    /// file inside `guest_dir` read-only, and what wasmtime's runtime needs (profile `both`).
    Stacked {
        guest_dir: &'a std::path::Path,
        /// The descriptor wasmtime-wasi holds for `guest_dir` ([`fd_of`]).
        guest_dir_fd: i32,
    },
}

/// Steps 2-5, after [`hygiene`] (and, for the stacked jail, after the guest was loaded and
/// instantiated); returns what the kernel enforced.
pub fn lock_down(budget: &Budget, profile: Profile) -> Result<Layers, LockdownError> {
    let guest_dir_fd = match profile {
        Profile::Parser => None,
        Profile::Stacked { guest_dir_fd, .. } => Some(guest_dir_fd),
    };
    let namespaces = namespaces();
    let rlimits = rlimits(budget)?;
    let landlock = landlock(profile);
    if let (Profile::Stacked { .. }, LayerStatus::Unavailable(why)) = (profile, &landlock) {
        // The stacked profile may open files; only Landlock confines that to the guest's folder.
        return Err(fail(
            "Landlock",
            format!("--sandbox both needs Landlock to confine the guest's folder: {why}"),
        ));
    }
    let seccomp = seccomp(guest_dir_fd)?;
    Ok(Layers {
        namespaces,
        rlimits,
        landlock,
        seccomp,
    })
}

/// Step 1: no inherited fds beyond 0-2, die with the host, own session.
pub fn hygiene(budget: &Budget) -> Result<(), LockdownError> {
    // SAFETY: close_range only closes descriptors; fds 0-2 (input, output, report) stay, and no
    // Rust object owns any descriptor above 2 at this point of the worker's start.
    let rc = unsafe { nix::libc::syscall(nix::libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if rc != 0 {
        return Err(fail("close_range", std::io::Error::last_os_error()));
    }
    nix::sys::prctl::set_pdeathsig(Some(Signal::SIGKILL))
        .map_err(|e| fail("PR_SET_PDEATHSIG", e))?;
    // The parent may have died before PDEATHSIG was armed.
    if getppid() != Pid::from_raw(budget.parent) {
        return Err(fail(
            "PR_SET_PDEATHSIG",
            "the host exited before the worker started",
        ));
    }
    setsid().map_err(|e| fail("setsid", e))?;
    Ok(())
}

/// Step 2: new user, network, IPC and UTS namespaces: no network interface exists at all.
fn namespaces() -> LayerStatus {
    let all = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    match nix::sched::unshare(all) {
        Ok(()) => LayerStatus::Enforced("user, network, IPC and UTS namespaces".into()),
        Err(user_err) => {
            // Without user namespaces (e.g. an AppArmor restriction), root can still unshare the rest.
            let rest =
                CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS;
            match nix::sched::unshare(rest) {
                Ok(()) => LayerStatus::Partial(format!(
                    "network, IPC and UTS namespaces; no user namespace ({user_err})"
                )),
                Err(e) => LayerStatus::Unavailable(format!("unshare refused: {user_err}; {e}")),
            }
        }
    }
}

/// Step 3: hard limits, never above what the host already had.
fn rlimits(budget: &Budget) -> Result<LayerStatus, LockdownError> {
    let set = |res: Resource, want: u64, name: &'static str| -> Result<(), LockdownError> {
        let (_, hard) = getrlimit(res).map_err(|e| fail(name, e))?;
        let v = want.min(hard);
        setrlimit(res, v, v).map_err(|e| fail(name, e))
    };
    set(Resource::RLIMIT_AS, budget.memory, "RLIMIT_AS")?;
    // The soft CPU limit sends SIGXCPU; the hard one a second later SIGKILL.
    let (_, hard) = getrlimit(Resource::RLIMIT_CPU).map_err(|e| fail("RLIMIT_CPU", e))?;
    let soft = budget.cpu_seconds.min(hard);
    setrlimit(Resource::RLIMIT_CPU, soft, (soft + 1).min(hard))
        .map_err(|e| fail("RLIMIT_CPU", e))?;
    // The worker writes only to the output it was handed; it cannot create files (no open in
    // the seccomp policy), so the file-size limit is the output cap.
    set(Resource::RLIMIT_FSIZE, budget.output_bytes, "RLIMIT_FSIZE")?;
    set(Resource::RLIMIT_CORE, 0, "RLIMIT_CORE")?;
    set(Resource::RLIMIT_NOFILE, 8, "RLIMIT_NOFILE")?;
    set(Resource::RLIMIT_NPROC, 0, "RLIMIT_NPROC")?;
    set(Resource::RLIMIT_MEMLOCK, 0, "RLIMIT_MEMLOCK")?;
    Ok(LayerStatus::Enforced(format!(
        "address space {} MiB, {} CPU s, output {} bytes, no core, 8 fds, no processes",
        budget.memory >> 20,
        soft,
        budget.output_bytes
    )))
}

/// Step 4: Landlock denies all filesystem access (but reading files in the guest's folder for
/// the stacked profile), TCP bind/connect and the IPC scopes, at the highest ABI the kernel
/// offers.
fn landlock(profile: Profile) -> LayerStatus {
    use landlock::{
        Access, AccessFs, AccessNet, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr,
        RulesetStatus, Scope, ABI,
    };
    if let Err(e) = super::policy::landlock_profile() {
        return LayerStatus::Unavailable(e);
    }
    // SAFETY: LANDLOCK_CREATE_RULESET_VERSION with a null attribute only queries the ABI version.
    let version = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    if version < 1 {
        return LayerStatus::Unavailable(format!(
            "the kernel has no Landlock ({})",
            std::io::Error::last_os_error()
        ));
    }
    let abi = ABI::from(version.min(i32::MAX as i64) as i32);
    let guest_dir = match profile {
        Profile::Parser => None,
        Profile::Stacked { guest_dir, .. } => match PathFd::new(guest_dir) {
            Ok(fd) => Some(fd),
            Err(e) => return LayerStatus::Unavailable(format!("the guest's folder: {e}")),
        },
    };
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| r.handle_access(AccessNet::from_all(abi)))
        .and_then(|r| r.scope(Scope::from_all(abi)))
        .and_then(|r| r.create())
        .and_then(|r| match guest_dir {
            None => Ok(r),
            Some(fd) => r.add_rule(PathBeneath::new(fd, AccessFs::ReadFile)),
        })
        .and_then(|r| r.restrict_self());
    // TCP rights arrived with ABI 4, the IPC scopes with ABI 6.
    let missing: Vec<&str> = [(4, "TCP bind/connect"), (6, "IPC scopes")]
        .iter()
        .filter(|(v, _)| version < *v)
        .map(|(_, what)| *what)
        .collect();
    match status {
        Ok(s) if s.ruleset == RulesetStatus::NotEnforced => {
            LayerStatus::Unavailable(format!("not enforced ({:?})", s.landlock))
        }
        Ok(_) if !missing.is_empty() => LayerStatus::Partial(format!(
            "ABI {version}: filesystem denied; this kernel cannot deny {}",
            missing.join(" or ")
        )),
        Ok(_) => LayerStatus::Enforced(format!(
            "ABI {version}: {}, TCP bind/connect and IPC scopes denied",
            match profile {
                Profile::Parser => "all filesystem rights",
                Profile::Stacked { .. } =>
                    "all filesystem rights but reading files in the guest's folder",
            }
        )),
        Err(e) => LayerStatus::Unavailable(e.to_string()),
    }
}

/// Step 5: the seccomp allowlist, mandatory.
/// `guest_dir_fd` selects the stacked profile.
fn seccomp(guest_dir_fd: Option<i32>) -> Result<LayerStatus, LockdownError> {
    let filter = super::policy::seccomp_filter(guest_dir_fd).map_err(|e| fail("seccomp", e))?;
    seccompiler::apply_filter(&filter).map_err(|e| fail("seccomp", e))?;
    Ok(LayerStatus::Enforced(format!(
        "allowlist of {} BPF instructions, default kill-process",
        filter.len()
    )))
}

/// The descriptor wasmtime-wasi holds for the folder at `path` (same device and inode), so the
/// stacked profile can allow opening files relative to that folder only.
/// Read through /proc, so it runs before Landlock.
pub fn fd_of(path: &std::path::Path) -> Option<i32> {
    use nix::sys::stat::stat;
    let want = stat(path).ok()?;
    (3..64).find(|fd| {
        stat(format!("/proc/self/fd/{fd}").as_str())
            .is_ok_and(|st| st.st_dev == want.st_dev && st.st_ino == want.st_ino)
    })
}
