//! TorchScript code: what torch.jit.load runs and what that code reaches.
//!
//! - The archives of tests/fixtures/torchscript/ (made by the real torch, ground truth recorded
//!   by make_torchscript.py --verify) are graded as their manifest says.
//! - The TorchScript cases of the malicious corpus (j01-j06, each verified to fire inside
//!   torch.jit.load) are refused by MG017 at high; tests/malicious_corpus.rs runs them like
//!   every corpus case too.
//! - Benign archives (the fixture generator's scripted model, a quantized model whose
//!   __setstate__ runs at load, string handling) have nothing above info.
//! - The operator registry covers every operator and TorchBind class of the installed torch
//!   that could touch files, processes or the network (needs a Python with torch: the test
//!   venv, else python3; skipped with a message when neither has torch).

mod common;

use common::*;
use modelguard::formats::torch_zip::torchscript::registry::{self, Kind, Origin, REGISTRY};
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn scan(path: &Path) -> Value {
    let r = run(&["scan", "--format", "json", path.to_str().unwrap()]);
    assert!(
        r.code == 0 || r.code == 1,
        "{}: {}{}",
        path.display(),
        r.stdout,
        r.stderr
    );
    let v: Value = serde_json::from_str(&r.stdout).expect("scan JSON");
    v["files"][0].clone()
}

/// (global, severity) of every finding above info.
fn graded(file: &Value) -> BTreeSet<(String, String)> {
    file["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "info")
        .map(|f| {
            (
                f["global"].as_str().unwrap_or("").to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn fixture_archives_are_graded_as_their_ground_truth_says() {
    let cases = manifest("torchscript/manifest.json");
    assert!(cases.len() >= 5);
    for case in &cases {
        let name = case["case"].as_str().unwrap();
        // The ground truth was recorded and agrees with what the case claims.
        let obs = &case["observed"]["without_library"];
        let lib = &case["observed"]["with_library"];
        match case["fires"].as_str().unwrap() {
            "forward" => assert!(obs["load"] == "ok" && obs["forward"] == "fired", "{name}"),
            "load-with-library" => assert!(
                obs["load"].as_str().unwrap().starts_with("raised") && lib["load"] == "fired",
                "{name}"
            ),
            "never" if case["custom_ops"] == true => {
                assert!(
                    obs["load"].as_str().unwrap().starts_with("raised"),
                    "{name}"
                );
                assert!(lib["load"] == "ok" && lib["forward"] == "ok", "{name}");
            }
            "never" => assert!(obs["load"] == "ok" && obs["forward"] == "ok", "{name}"),
            other => panic!("{name}: unknown `fires` {other}"),
        }
        let path = fixtures()
            .join("torchscript")
            .join(case["file"].as_str().unwrap());
        let file = scan(&path);
        assert_eq!(file["format"], "torchscript", "{name}");
        let expected: BTreeSet<(String, String)> = case["expected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["global"].as_str().unwrap().to_string(),
                    e["severity"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(graded(&file), expected, "{name}: {file}");
        for f in file["findings"].as_array().unwrap() {
            assert_eq!(f["rule_id"], "MG017", "{name}: {f}");
        }
    }
}

#[test]
fn corpus_cases_that_run_during_torch_jit_load_are_high() {
    let cases: Vec<Value> = manifest("malicious/manifest.json")
        .into_iter()
        .filter(|c| c["loader"] == "torch.jit.load")
        .collect();
    assert_eq!(cases.len(), 6);
    for case in &cases {
        let name = case["case"].as_str().unwrap();
        assert_eq!(case["verified_fires"], true, "{name}");
        let path = fixtures()
            .join("malicious")
            .join(case["file"].as_str().unwrap());
        let file = scan(&path);
        let high: Vec<&Value> = file["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] == "high")
            .collect();
        assert!(!high.is_empty(), "{name}: {file}");
        for f in high {
            assert_eq!(f["rule_id"], "MG017", "{name}");
            let g = f["global"].as_str().unwrap();
            assert!(g == "aten::from_file" || g == "aten::save", "{name}: {f}");
            assert!(
                f["message"]
                    .as_str()
                    .unwrap()
                    .contains("during torch.jit.load"),
                "{name}: {f}"
            );
        }
        assert_eq!(file["verdict"], "malicious", "{name}");
    }
}

#[test]
fn benign_archives_have_nothing_above_info() {
    for p in [
        fixtures().join("models/scripted.pt"),
        fixtures().join("torchscript/benign_quantized.pt"),
        fixtures().join("torchscript/benign_text.pt"),
    ] {
        let file = scan(&p);
        assert!(graded(&file).is_empty(), "{}: {file}", p.display());
    }
}

/// A Python that imports torch: the test venv (tests/run.sh), else python3.
fn python_with_torch() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv-python/bin/python");
    let candidates = [venv, PathBuf::from("python3")];
    candidates.into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import torch"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

const RISKY_NAME_PARTS: &[&str] = &[
    "file", "path", "load", "save", "read", "write", "open", "exec", "spawn", "system", "popen",
    "process", "socket", "connect", "url", "http", "download", "upload", "rpc", "remote", "send",
    "recv", "store", "mmap", "dlopen", "library", "import", "pickle", "serializ", "shell",
    "python", "environ", "getenv", "dump", "mkdir", "unlink", "remove", "rename",
];

const FILE_ARG_NAMES: &[&str] = &[
    "f",
    "fd",
    "file",
    "filename",
    "file_name",
    "fname",
    "path",
    "paths",
    "filepath",
    "dirname",
    "directory",
    "url",
    "uri",
    "host",
    "hostname",
    "port",
    "address",
    "addr",
    "command",
    "cmd",
    "program",
    "env",
    "module",
    "library",
    "lib",
];

/// Type names that can carry strings, arbitrary values, storages or remote state.
const RISKY_TYPE_WORDS: &[&str] = &[
    "str", "Any", "Storage", "Future", "RRef", "Await", "Capsule",
];

fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
}

fn risky_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    RISKY_NAME_PARTS.iter().any(|p| n.contains(p))
}

#[test]
fn registry_covers_every_risky_operator_of_the_installed_torch() {
    let Some(py) = python_with_torch() else {
        eprintln!(
            "skipped: no Python with torch (run tests/run.sh once to create target/venv-python)"
        );
        return;
    };
    let script = fixtures().join("torchscript/schemas.py");
    let out = Command::new(&py)
        .arg(&script)
        .output()
        .expect("run schemas.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump: Value = serde_json::from_slice(&out.stdout).expect("schemas JSON");
    eprintln!("checking the registry against torch {}", dump["torch"]);

    let mut unclassified: BTreeSet<String> = BTreeSet::new();
    let mut present_ops: HashSet<String> = HashSet::new();
    let mut classes: BTreeSet<String> = BTreeSet::new();
    let mut strict_classes: HashSet<String> = HashSet::new();
    for op in dump["ops"].as_array().unwrap() {
        let name = op["name"].as_str().unwrap();
        present_ops.insert(name.to_string());
        let (ns, base) = name.split_once("::").unwrap();
        let types: Vec<&str> = op["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a[1].as_str().unwrap())
            .chain(
                op["returns"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap()),
            )
            .collect();
        for t in &types {
            for w in t.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')) {
                if let Some(c) = w.strip_prefix("__torch__.torch.classes.") {
                    classes.insert(c.to_string());
                }
            }
        }
        let file_arg = op["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| FILE_ARG_NAMES.contains(&a[0].as_str().unwrap()));
        let risky_types = op["vararg"] == true
            || op["varret"] == true
            || types.iter().any(|t| {
                t.contains("__torch__") || words(t).any(|w| RISKY_TYPE_WORDS.contains(&w))
            });
        let strict =
            file_arg || risky_name(base) || types.iter().any(|t| words(t).any(|w| w == "RRef"));
        let needs = !(ns == "aten" || ns == "prims") || risky_types || strict;
        if !needs {
            continue;
        }
        match registry::lookup_op(ns, base) {
            None => {
                unclassified.insert(format!("operator {name}"));
            }
            Some(l) if strict && !l.exact && !l.entry.effect.is_capability() => {
                unclassified.insert(format!(
                    "operator {name} (only its namespace is reviewed, and its name or arguments \
                     suggest files, processes or the network)"
                ));
            }
            Some(l)
                if !l.exact
                    && (ns == "aten" || ns == "prims")
                    && !l.entry.effect.is_capability() =>
            {
                unclassified.insert(format!(
                    "operator {name} (string, untyped, storage or future arguments: list it)"
                ));
            }
            Some(_) => {}
        }
    }
    for m in dump["classes"].as_array().unwrap() {
        let cls = m["class"].as_str().unwrap();
        if let Some(c) = cls.strip_prefix("__torch__.torch.classes.") {
            classes.insert(c.to_string());
            let method = m["method"].as_str().unwrap();
            let file_arg = m["args"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| FILE_ARG_NAMES.contains(&a[0].as_str().unwrap()));
            if file_arg || risky_name(method) {
                strict_classes.insert(c.to_string());
            }
        }
    }
    for c in &classes {
        let Some((ns, name)) = c.split_once('.') else {
            unclassified.insert(format!("class {c} (not NS.Name)"));
            continue;
        };
        match registry::lookup_class(ns, name) {
            None => {
                unclassified.insert(format!("TorchBind class {ns}::{name}"));
            }
            Some(l)
                if strict_classes.contains(c) && !l.exact && !l.entry.effect.is_capability() =>
            {
                unclassified.insert(format!(
                    "TorchBind class {ns}::{name} (a method name or argument suggests files, \
                     processes or the network)"
                ));
            }
            Some(_) => {}
        }
    }
    assert!(
        unclassified.is_empty(),
        "classify these in src/formats/torch_zip/torchscript/registry.rs:\n  {}",
        unclassified.into_iter().collect::<Vec<_>>().join("\n  ")
    );

    // No stale exact entries: each one torch itself registers must still exist.
    let present_classes: HashSet<String> =
        classes.iter().map(|c| c.replacen('.', "::", 1)).collect();
    let mut stale = Vec::new();
    for e in REGISTRY.iter().filter(|e| e.origin == Origin::Torch) {
        for n in e.names.iter().filter(|n| !n.ends_with("::*")) {
            let present = match e.kind {
                Kind::Op => present_ops.contains(*n),
                Kind::Class => present_classes.contains(*n),
                Kind::Builtin => true,
            };
            if !present {
                stale.push(*n);
            }
        }
    }
    assert!(
        stale.is_empty(),
        "registry entries this torch does not have: {stale:?}"
    );
}

/// A TorchScript-shaped archive (data.pkl, constants.pkl, one storage) with one code member.
fn script_archive(code: &[u8]) -> Vec<u8> {
    let mut z = ZipBuilder::new();
    z.stored("archive/data.pkl", &state_dict_pickle(1, 0, &[1], &[1]))
        .stored("archive/constants.pkl", b"\x80\x02).")
        .stored("archive/version", b"3\n")
        .stored("archive/data/0", &[0u8; 4])
        .stored("archive/code/__torch__/h.py", code);
    z.finish()
}

#[test]
fn hostile_source_is_bounded_in_time_and_memory() {
    const BUDGET: usize = 16 << 20;
    let fill = |unit: &dyn Fn(usize) -> String, prefix: &str, limit: usize| {
        let mut s = String::from(prefix);
        let mut i = 0;
        while s.len() < limit {
            s.push_str(&unit(i));
            i += 1;
        }
        s.truncate(limit);
        s
    };
    let near = BUDGET - 4096;
    let cases: Vec<(&str, String)> = vec![
        (
            "functions with defaults",
            fill(
                &|i| {
                    format!("def f{i}(a: int=torch.numel(torch.from_file(\"p\", True, 1))) -> int:\n  return g{i}(a) + self.save(a)\n")
                },
                "",
                near,
            ),
        ),
        (
            "short functions",
            fill(
                &|i| format!("def f{i}(a: int=g{i}()):\n  return h{i}(a)\n"),
                "",
                near,
            ),
        ),
        (
            "distinct names",
            fill(&|i| format!("n{i}, "), "def f():\n  x = [", near),
        ),
        (
            "attribute chains",
            fill(&|_| ".save".to_string(), "def f():\n  y = x", near),
        ),
        (
            "getattr calls",
            fill(
                &|i| format!("  x{i} = getattr(ops, \"n{}\").save(1)\n", i % 5000),
                "def f():\n",
                near,
            ),
        ),
        (
            "open brackets",
            fill(&|_| "(".to_string(), "def f():\n  x = ", near),
        ),
        (
            "indentation",
            fill(
                &|i| format!("{}def f{i}():\n", " ".repeat(i % 3000)),
                "",
                near,
            ),
        ),
        (
            "over the budget",
            fill(&|_| "# comment\n".to_string(), "", BUDGET + 1),
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (name, code) in cases {
        let path = tmp.path().join("h.pt");
        std::fs::write(&path, script_archive(code.as_bytes())).unwrap();
        let r = run_limited(&["scan", "--format", "json", path.to_str().unwrap()], 256);
        assert!(
            r.code == 0 || r.code == 1,
            "{name}: {}{}",
            r.stdout,
            r.stderr
        );
        assert!(r.elapsed.as_secs() < 20, "{name}: {:?}", r.elapsed);
        let v: Value = serde_json::from_str(&r.stdout).expect("scan JSON");
        let file = &v["files"][0];
        assert_eq!(file["format"], "torchscript", "{name}: {file}");
        if name == "over the budget" {
            assert_eq!(file["verdict"], "malicious", "{name}: {file}");
        }
        eprintln!("{name}: {:?}, verdict {}", r.elapsed, file["verdict"]);
    }
}
