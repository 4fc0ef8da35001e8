//! Test-only attacks run inside a locked-down worker (feature `jail-probe`, never in release
//! builds users run). Each returns what happened if the process survives it; most are meant
//! to kill the worker with SIGSYS, which the test then sees from outside.

use std::io::Write;

pub fn attack(name: &str) -> String {
    match name {
        "none" => "ok".into(),
        "idle" => {
            // Stay alive (clock only) so the test can inspect /proc/<pid> from outside.
            let start = std::time::Instant::now();
            while start.elapsed() < std::time::Duration::from_secs(3) {
                std::hint::spin_loop();
            }
            "idle done".into()
        }
        "open-passwd" => format!("{:?}", std::fs::File::open("/etc/passwd").map(|_| ())),
        "create-tmp" => format!(
            "{:?}",
            std::fs::File::create("/tmp/modelguard-jail-escape").map(|_| ())
        ),
        p if p.starts_with("connect-loopback:") => {
            let port = &p["connect-loopback:".len()..];
            format!(
                "{:?}",
                std::net::TcpStream::connect(format!("127.0.0.1:{port}")).map(|_| ())
            )
        }
        "socket-unix" => format!(
            "{:?}",
            nix::sys::socket::socket(
                nix::sys::socket::AddressFamily::Unix,
                nix::sys::socket::SockType::Stream,
                nix::sys::socket::SockFlag::empty(),
                None
            )
            .map(|_| ())
        ),
        "exec-shell" => format!(
            "{:?}",
            std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg("true")
                .status()
        ),
        // SAFETY: fork in a single-threaded process; the child only exits.
        "fork" => match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => std::process::exit(0),
            other => format!("{:?}", other.map(|_| ())),
        },
        "ptrace" => format!("{:?}", nix::sys::ptrace::attach(nix::unistd::getppid())),
        "kill-parent" => format!(
            "{:?}",
            nix::sys::signal::kill(nix::unistd::getppid(), nix::sys::signal::Signal::SIGTERM)
        ),
        "mmap-exec" => {
            use nix::sys::mman::{mmap_anonymous, MapFlags, ProtFlags};
            // SAFETY: an anonymous mapping nobody else refers to.
            let r = unsafe {
                mmap_anonymous(
                    None,
                    std::num::NonZeroUsize::new(4096).expect("non-zero"),
                    ProtFlags::PROT_READ | ProtFlags::PROT_EXEC,
                    MapFlags::MAP_PRIVATE,
                )
            };
            format!("{:?}", r.map(|_| ()))
        }
        "write-other-fd" => {
            // SAFETY: fd 5 was never handed over; writing through it is the attack. Never
            // dropped: closing a descriptor we do not own would break IO safety.
            let mut f = std::mem::ManuallyDrop::new(unsafe {
                <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(5)
            });
            format!("{:?}", f.write_all(b"x"))
        }
        "seek-output" => {
            use std::io::Seek;
            // SAFETY: fd 1 is the output; rewinding it is the attack (the output is append-only).
            let mut f = std::mem::ManuallyDrop::new(unsafe {
                <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(1)
            });
            format!("{:?}", f.seek(std::io::SeekFrom::Start(0)))
        }
        "unshare" => format!(
            "{:?}",
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        ),
        "alloc" => {
            let mut v: Vec<u8> = Vec::new();
            // black_box: the optimiser may otherwise drop an allocation nobody uses.
            match std::hint::black_box(&mut v).try_reserve_exact(std::hint::black_box(16 << 30)) {
                Ok(()) => {
                    v.push(1);
                    std::hint::black_box(&v);
                    "allocated 16 GiB".into()
                }
                Err(e) => format!("Err({e})"),
            }
        }
        "spin" => loop {
            std::hint::spin_loop();
        },
        other => format!("unknown probe {other}"),
    }
}

/// openat2 read-only without RESOLVE_BENEATH: only the kernel's own checks (Landlock) apply.
fn openat2(dirfd: i32, path: &str) -> nix::Result<std::os::fd::OwnedFd> {
    // SAFETY: the probe names descriptor numbers on purpose; the borrow lasts for one call.
    let dir = unsafe { std::os::fd::BorrowedFd::borrow_raw(dirfd) };
    nix::fcntl::openat2(
        dir,
        path,
        nix::fcntl::OpenHow::new()
            .flags(nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC),
    )
}

/// Attacks under the stacked profile (`--sandbox both`), which may open files relative to the
/// guest's folder `dir_fd`; the others as in [`attack`].
pub fn attack_stacked(name: &str, dir_fd: i32) -> String {
    match name {
        "stacked-open-input" => format!("{:?}", openat2(dir_fd, "input").map(|_| ())),
        "stacked-open-outside" => format!(
            "{:?}",
            openat2(dir_fd, "../../../../../../etc/passwd").map(|_| ())
        ),
        "stacked-open-cwd" => format!(
            "{:?}",
            openat2(nix::libc::AT_FDCWD, "/etc/passwd").map(|_| ())
        ),
        other => attack(other),
    }
}
