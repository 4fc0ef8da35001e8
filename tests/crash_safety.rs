//! Crash safety of `convert`'s output: `kill -9` of the host or the jailed worker at random
//! points, a full disk, a read-only destination, and eight converts racing for one path. The
//! destination name only ever holds a complete, valid file (or nothing), and the temporary files
//! a killed run leaves are removed by the next run.
//!
//! The inputs are torch zip checkpoints built byte by byte, so the ground truth of every tensor is
//! the storage this test wrote, not anything modelguard computed.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A float32 checkpoint `{"w": tensor}` of `numel` elements whose bytes depend on `seed`; returns
/// the file and the tensor's bytes.
fn checkpoint(numel: u64, seed: u8) -> (Vec<u8>, Vec<u8>) {
    let storage: Vec<u8> = (0..numel * 4)
        .map(|i| ((i % 251) as u8).wrapping_add(seed))
        .collect();
    let file = torch_zip(
        &state_dict_pickle(numel, 0, &[numel as i64], &[1]),
        &storage,
    );
    (file, storage)
}

/// The destination holds exactly the expected tensor, read by the official safetensors crate.
fn assert_complete(out: &Path, storage: &[u8], numel: u64) {
    let (tensors, _) = read_safetensors(out);
    assert_eq!(tensors.len(), 1, "{}", out.display());
    let (dtype, shape, bytes) = &tensors["w"];
    assert_eq!(dtype, "F32");
    assert_eq!(shape, &vec![numel as usize]);
    assert!(bytes == storage, "{} holds other bytes", out.display());
}

/// Names in `dir` other than `keep`.
fn leftovers(dir: &Path, keep: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect();
    names.sort();
    names
}

/// Every process below `root` (the jailed worker and anything it started), from /proc.
fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if let Some(ppid) = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok())
        {
            parent_of.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

/// xorshift64*: reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn from_env_or_clock() -> Rng {
        let seed = std::env::var("MODELGUARD_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("crash safety: MODELGUARD_CRASH_SEED={seed}");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn convert_cmd(input: &Path, output: &Path) -> Command {
    let mut c = Command::new(bin());
    c.args(["convert", "-q"])
        .arg(input)
        .arg(output)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

#[test]
fn kill_9_of_host_or_worker_never_leaves_a_partial_output() {
    const NUMEL: u64 = 16 << 20; // 64 MiB of float32
    const ROUNDS: usize = 30;
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("big.pt");
    let (file, storage) = checkpoint(NUMEL, 7);
    fs::write(&input, file).unwrap();
    let dest = tmp.path().join("out");
    fs::create_dir(&dest).unwrap();
    let out = dest.join("model.safetensors");
    let mut rng = Rng::from_env_or_clock();

    // The stacked jail also stages the guest's input folder beside the output.
    let mut sandboxes = vec!["native"];
    if convert_cmd(&input, &out)
        .args(["--sandbox", "both"])
        .status()
        .unwrap()
        .success()
    {
        sandboxes.push("both");
    } else {
        eprintln!("crash safety: --sandbox both is unavailable here (no guest built); native only");
    }
    for sandbox in sandboxes {
        // How long an undisturbed run takes, so that the kill points cover all of it.
        let _ = fs::remove_file(&out);
        let start = Instant::now();
        let ok = convert_cmd(&input, &out)
            .args(["--sandbox", sandbox])
            .status()
            .unwrap();
        let full = start.elapsed();
        assert!(ok.success());
        assert_complete(&out, &storage, NUMEL);
        fs::remove_file(&out).unwrap();

        let (mut host_kills, mut worker_kills, mut finished, mut left_output) = (0, 0, 0, 0);
        for round in 0..ROUNDS {
            let mut child = convert_cmd(&input, &out)
                .args(["--sandbox", sandbox])
                .spawn()
                .unwrap();
            let host = child.id();
            let delay = Duration::from_micros(rng.below(full.as_micros() as u64 * 11 / 10));
            let kill_worker = rng.below(2) == 1;
            std::thread::sleep(delay);
            let workers = descendants(host);
            if kill_worker && !workers.is_empty() {
                for w in &workers {
                    let _ = Command::new("kill").args(["-9", &w.to_string()]).status();
                }
                worker_kills += 1;
            } else {
                let _ = child.kill();
                host_kills += 1;
            }
            if child.wait().unwrap().success() {
                finished += 1;
            }
            if out.exists() {
                left_output += 1;
                assert_complete(&out, &storage, NUMEL);
                if round % 2 == 0 {
                    fs::remove_file(&out).unwrap();
                }
            }
        }
        let stale = leftovers(&dest, &["model.safetensors"]);
        eprintln!(
            "crash safety ({sandbox}): {ROUNDS} rounds over {full:?}: {host_kills} host kills, \
             {worker_kills} worker kills, {finished} runs finished first, {left_output} times a \
             complete output, {} temporary entries left",
            stale.len()
        );
        assert!(host_kills > 0 && worker_kills > 0, "both sides were hit");
        assert!(
            stale.iter().all(|n| n.ends_with(".modelguard-tmp")),
            "{stale:?}"
        );

        // Whatever the kills left is swept by the next run, which then succeeds.
        let r = run(&[
            "convert",
            "-q",
            "--sandbox",
            sandbox,
            input.to_str().unwrap(),
            out.to_str().unwrap(),
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_complete(&out, &storage, NUMEL);
        assert_eq!(
            leftovers(&dest, &["model.safetensors"]),
            Vec::<String>::new()
        );
    }
}

#[test]
fn a_killed_folder_conversion_is_swept_by_the_next_run() {
    let src = fixtures().join("models/hf_sharded");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("converted");
    // A staging folder and a staged file as a killed run (pid far above pid_max) leaves them.
    let dead = 4_194_305;
    let stale_dir = tmp
        .path()
        .join(format!(".converted.{dead}.k1ll3dAa.modelguard-tmp"));
    fs::create_dir(&stale_dir).unwrap();
    fs::write(stale_dir.join("model-00001-of-00002.safetensors"), b"half").unwrap();
    let stale_file = tmp
        .path()
        .join(format!(".model.safetensors.{dead}.k1ll3dBb.modelguard-tmp"));
    fs::write(&stale_file, b"half").unwrap();
    // Not ours: a user's file that merely ends like ours, and one of a live process.
    let users = tmp.path().join("notes.modelguard-tmp");
    fs::write(&users, b"keep me").unwrap();
    let live = tmp.path().join(".x.1.AbCdEfGh.modelguard-tmp");
    fs::write(&live, b"pid 1 is alive").unwrap();

    let r = run(&[
        "convert",
        "-q",
        src.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        leftovers(tmp.path(), &["converted"]),
        vec![
            ".x.1.AbCdEfGh.modelguard-tmp".to_string(),
            "notes.modelguard-tmp".to_string()
        ]
    );
}

/// A tmpfs mounted for one test, unmounted on drop; `None` (with the reason printed) when this
/// process may not mount.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(options: &str) -> Option<Tmpfs> {
        let uid = Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            eprintln!(
                "skipped: mounting a small tmpfs needs root (run the suite as root or in CI)"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .status();
        if !matches!(st, Ok(s) if s.success()) {
            eprintln!("skipped: `mount -t tmpfs` failed here (no CAP_SYS_ADMIN in this container)");
            return None;
        }
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, options: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(self.path())
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.path()).status();
    }
}

#[test]
fn disk_full_is_a_clean_error_with_nothing_left() {
    let Some(fs2m) = Tmpfs::mount("size=2m,mode=0755") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("four_mib.pt");
    fs::write(&input, checkpoint(1 << 20, 3).0).unwrap();
    // One output that fits, so "full" is not "unwritable".
    let small = fixtures().join("models/all_dtypes.pt");
    let fits = fs2m.path().join("small.safetensors");
    let r = run(&[
        "convert",
        "-q",
        small.to_str().unwrap(),
        fits.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    let out = fs2m.path().join("model.safetensors");
    let r = run(&["convert", input.to_str().unwrap(), out.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("No space left on device"),
        "names the cause: {}",
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert_eq!(
        leftovers(fs2m.path(), &["small.safetensors"]),
        Vec::<String>::new()
    );
}

#[test]
fn read_only_destination_is_a_clean_error_and_keeps_the_old_output() {
    let Some(mnt) = Tmpfs::mount("size=8m,mode=0755") else {
        return;
    };
    let first = fixtures().join("models/all_dtypes.pt");
    let second = fixtures().join("models/sd_sequential.pt");
    let out = mnt.path().join("model.safetensors");
    let r = run(&[
        "convert",
        "-q",
        first.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let before = fs::read(&out).unwrap();
    mnt.remount("ro");

    for dest in [out.clone(), mnt.path().join("new.safetensors")] {
        let r = run(&["convert", second.to_str().unwrap(), dest.to_str().unwrap()]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(
            r.stderr.contains("Read-only file system"),
            "names the cause: {}",
            r.stderr
        );
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
    assert_eq!(
        fs::read(&out).unwrap(),
        before,
        "the old output is untouched"
    );
    assert_eq!(
        leftovers(mnt.path(), &["model.safetensors"]),
        Vec::<String>::new()
    );
    mnt.remount("rw");
}

#[test]
fn eight_concurrent_converts_each_output_whole_and_one_path_last_writer_wins() {
    const NUMEL: u64 = 2 << 20; // 8 MiB each
    let tmp = tempfile::tempdir().unwrap();
    let inputs: Vec<(PathBuf, Vec<u8>)> = (0..8u8)
        .map(|i| {
            let (file, storage) = checkpoint(NUMEL, i * 29 + 1);
            let p = tmp.path().join(format!("in{i}.pt"));
            fs::write(&p, file).unwrap();
            (p, storage)
        })
        .collect();

    // Different files, different outputs: each holds its own input's tensor.
    let outs = tmp.path().join("many");
    fs::create_dir(&outs).unwrap();
    let children: Vec<_> = inputs
        .iter()
        .enumerate()
        .map(|(i, (p, _))| {
            convert_cmd(p, &outs.join(format!("out{i}.safetensors")))
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    for (i, (_, storage)) in inputs.iter().enumerate() {
        assert_complete(&outs.join(format!("out{i}.safetensors")), storage, NUMEL);
    }
    assert_eq!(leftovers(&outs, &[]).len(), 8);

    // One path, eight writers, several rounds: every rename replaces the whole file, so the path
    // always holds exactly one input's tensor and no writer's temporary file survives.
    let one = tmp.path().join("one");
    fs::create_dir(&one).unwrap();
    let out = one.join("model.safetensors");
    for _ in 0..3 {
        let children: Vec<_> = inputs
            .iter()
            .map(|(p, _)| convert_cmd(p, &out).spawn().unwrap())
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
        let (tensors, _) = read_safetensors(&out);
        let bytes = &tensors["w"].2;
        let winners = inputs.iter().filter(|(_, s)| s == bytes).count();
        assert_eq!(winners, 1, "the output is one input's tensor, whole");
        assert_eq!(
            leftovers(&one, &["model.safetensors"]),
            Vec::<String>::new()
        );
    }
}
