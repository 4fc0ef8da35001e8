//! Test guest (never embedded in the host): tries to get out of the WASI sandbox the host
//! builds for the real guest, under the same host configuration. What it tries is the content
//! of its input file, so the host runs it through the unchanged conversion path:
//!
//! - `escape`: open paths other than its input, write into or beside its folder, read the
//!   environment, stdin and descriptors it was not given, open a socket. Each result is
//!   reported; the host test requires every one to be refused.
//! - `spin`: loop forever (the host must end it at its deadline).
//! - `alloc`: grow memory until the host's cap stops it.
//!
//! Results go to stderr as the engine's report would, in `error.message`, one line each.

use std::io::{Read, Write};

fn main() {
    let mut what = String::new();
    let opened = std::fs::File::open("/in/input").and_then(|mut f| f.read_to_string(&mut what));
    let message = match (opened, what.trim()) {
        (Err(e), _) => format!("input: cannot open: {e}"),
        (Ok(_), "escape") => escape().join("\n"),
        (Ok(_), "spin") => spin(),
        (Ok(_), "alloc") => alloc(),
        (Ok(_), other) => format!("unknown probe {other:?}"),
    };
    let report = serde_json::json!({
        "format": "probe", "findings": [], "warnings": [], "refused": false, "tensors": [],
        "metadata": {}, "written": false, "error": {"kind": "probe", "message": message},
    });
    let _ = std::io::stderr().write_all(report.to_string().as_bytes());
}

/// "refused: ..." when the attempt failed, "ESCAPED: ..." when it worked.
fn outcome<T>(name: &str, r: std::io::Result<T>) -> String {
    match r {
        Ok(_) => format!("{name}: ESCAPED"),
        Err(e) => format!("{name}: refused ({e})"),
    }
}

fn escape() -> Vec<String> {
    use std::fs::{self, OpenOptions};
    let mut results = vec![
        outcome("read /etc/passwd", fs::read("/etc/passwd")),
        outcome("read /in/../etc/passwd", fs::read("/in/../etc/passwd")),
        outcome("read ../ of the folder", fs::read_dir("/in/..").map(|_| ())),
        outcome("list /", fs::read_dir("/").map(|_| ())),
        outcome("read /proc/self/environ", fs::read("/proc/self/environ")),
        outcome("create /in/new", fs::File::create("/in/new")),
        outcome("create /tmp/x", fs::File::create("/tmp/x")),
        outcome(
            "open the input for writing",
            OpenOptions::new().write(true).open("/in/input"),
        ),
        outcome("remove the input", fs::remove_file("/in/input")),
        outcome("mkdir /in/d", fs::create_dir("/in/d")),
        outcome("hard-link the input", fs::hard_link("/in/input", "/in/l")),
        outcome("rename the input", fs::rename("/in/input", "/in/moved")),
        outcome(
            "connect 127.0.0.1:22",
            std::net::TcpStream::connect("127.0.0.1:22"),
        ),
    ];
    let env: Vec<(String, String)> = std::env::vars().collect();
    results.push(if env.is_empty() {
        "environment: refused (empty)".into()
    } else {
        format!("environment: ESCAPED ({} variables)", env.len())
    });
    let mut buf = [0u8; 16];
    results.push(match std::io::stdin().read(&mut buf) {
        Ok(0) | Err(_) => "stdin: refused (nothing to read)".into(),
        Ok(n) => format!("stdin: ESCAPED ({n} bytes)"),
    });
    // Descriptors beyond stdio and the preopen (3) were never given: writing to any fails.
    for fd in 3..16 {
        use std::os::fd::FromRawFd;
        // SAFETY: probing descriptor numbers is the point of this test guest; the File is never
        // dropped (ManuallyDrop), so nothing is closed behind anyone's back.
        let file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
        results.push(outcome(
            &format!("write to fd {fd}"),
            (&*file).write_all(b"x"),
        ));
    }
    results
}

fn spin() -> String {
    let mut x = 0u64;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

fn alloc() -> String {
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0u8; 64 << 20];
        block[0] = 1;
        held.push(std::hint::black_box(block));
    }
}
