//! The same conversions through every sandbox: the native jail, the WASI guest and the
//! in-process debug path produce byte-identical safetensors files, refuse the same malicious
//! files and reject the same hostile ones.
#![cfg(feature = "wasi")]

mod common;

use common::*;

const SANDBOXES: [&str; 4] = ["native", "wasi", "both", "none"];
/// The native jail runs the whole conformance suite already (the other test files).
const GUEST_SANDBOXES: [&str; 2] = ["wasi", "both"];

/// Whether the WASI guest is embedded. CI must build it; a local run without the toolchain
/// skips these tests with the reason.
fn guest_built() -> bool {
    let doctor = run(&["doctor"]);
    // A binary that cannot even run `doctor` is a failure, not a reason to skip.
    assert!(
        doctor.stdout.contains("wasi guest:"),
        "doctor did not run ({}): {}",
        doctor.code,
        doctor.stderr
    );
    let built = doctor.stdout.contains("wasi guest: sha256");
    if !built {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must build the WASI guest before the tests (guest/build.sh)"
        );
        eprintln!("skipped: this modelguard was built without the WASI guest (run guest/build.sh)");
    }
    built
}

#[test]
fn every_fixture_is_byte_identical_across_sandboxes() {
    if !guest_built() {
        return;
    }
    let root = fixtures();
    let manifest = manifest("manifest.json");
    let tmp = tempfile::tempdir().unwrap();
    for case in &manifest {
        if case["format"] == "hf-folder" {
            continue;
        }
        let name = case["case"].as_str().unwrap();
        let input = root.join(case["input"].as_str().unwrap());
        let mut outputs = Vec::new();
        for sb in SANDBOXES {
            let out = tmp.path().join(format!("{name}.{sb}.safetensors"));
            let mut args = vec![
                "convert",
                input.to_str().unwrap(),
                out.to_str().unwrap(),
                "-q",
                "--sandbox",
                sb,
            ];
            let opts = case_options(case);
            args.extend(opts.iter().map(String::as_str));
            let r = run(&args);
            assert_eq!(r.code, 0, "{name} with --sandbox {sb}: {}", r.stderr);
            outputs.push(std::fs::read(&out).unwrap());
        }
        assert!(
            outputs.windows(2).all(|w| w[0] == w[1]),
            "{name}: outputs differ between sandboxes"
        );
    }
}

#[test]
fn malicious_files_are_refused_in_every_sandbox() {
    if !guest_built() {
        return;
    }
    let m = manifest("malicious/manifest.json");
    let tmp = tempfile::tempdir().unwrap();
    for case in &m {
        let input = fixtures()
            .join("malicious")
            .join(case["file"].as_str().unwrap());
        let out = tmp.path().join("o.safetensors");
        for sb in GUEST_SANDBOXES {
            let r = run(&[
                "convert",
                input.to_str().unwrap(),
                out.to_str().unwrap(),
                "-q",
                "--sandbox",
                sb,
            ]);
            assert_eq!(
                r.code, 1,
                "{} with --sandbox {sb}: {}",
                case["case"], r.stderr
            );
            assert!(!out.exists());
            assert!(!std::path::Path::new(case["marker"].as_str().unwrap()).exists());
        }
    }
}

#[test]
fn hostile_inputs_are_errors_in_the_guest_sandboxes() {
    if !guest_built() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"\x80\x02X\xf0\xff\xff\xff.".to_vec(), "exceeds"),
        (
            {
                let mut p = b"\x80\x02".to_vec();
                p.extend(std::iter::repeat_n(b']', 1_000_000));
                p.extend(std::iter::repeat_n(b'a', 999_999));
                p.push(b'.');
                p
            },
            "max_depth",
        ),
        (
            torch_zip(&state_dict_pickle(6, 0, &[4, 4], &[4, 1]), &[0u8; 24]),
            "view ends at byte",
        ),
    ];
    for (bytes, expect) in cases {
        let input = tmp.path().join("h.pt");
        std::fs::write(&input, &bytes).unwrap();
        let out = tmp.path().join("o.safetensors");
        for sb in GUEST_SANDBOXES {
            let r = run(&[
                "convert",
                input.to_str().unwrap(),
                out.to_str().unwrap(),
                "--sandbox",
                sb,
            ]);
            assert_eq!(r.code, 2, "{expect} with --sandbox {sb}: {}", r.stderr);
            assert!(
                r.stderr.contains(expect),
                "{expect} with --sandbox {sb}: {}",
                r.stderr
            );
            assert!(!out.exists());
        }
    }
}
