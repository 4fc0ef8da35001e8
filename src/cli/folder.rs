//! Hugging Face checkpoint folders: `pytorch_model.bin`, or shards listed by
//! `pytorch_model.bin.index.json`. The output folder follows Hugging Face's converter:
//! `model.safetensors`, or `model-0000X-of-0000N.safetensors` + `model.safetensors.index.json`.
//! It is built in a temporary folder beside the destination and renamed into place at the end.

use super::convert::{convert_file, parent_dir, Sandbox};
use super::report::{FileReport, Report};
use crate::convert::{ConvertOptions, EXIT_ERROR, EXIT_OK, EXIT_REFUSED};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

const INDEX: &str = "pytorch_model.bin.index.json";
const SINGLE: &str = "pytorch_model.bin";
const MAX_INDEX_BYTES: u64 = 64 << 20;

fn error_report(input: &Path, msg: String) -> (Report, i32) {
    let r = FileReport {
        input: input.display().to_string(),
        format: "hf-folder".into(),
        error: Some(msg),
        verdict: Some(crate::convert::Verdict::Error),
        ..Default::default()
    };
    (Report::new(r, EXIT_ERROR, Vec::new()), EXIT_ERROR)
}

/// The output name Hugging Face's converter gives a shard: `pytorch_model` → `model`, `.bin` → `.safetensors`.
pub fn safetensors_name(bin: &str) -> String {
    let stem = bin.strip_suffix(".bin").unwrap_or(bin);
    let stem = match stem.strip_prefix("pytorch_model") {
        Some(rest) => format!("model{rest}"),
        None => stem.to_string(),
    };
    format!("{stem}.safetensors")
}

fn plain_file_name(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', '\0'])
}

/// Convert the folder's weights into `output`. With `replace`, an existing `output` folder is
/// swapped out once the new one is complete; otherwise it must be absent or empty.
pub fn convert_folder(
    input: &Path,
    output: &Path,
    opts: &ConvertOptions,
    sandbox: &Sandbox,
    hashes: bool,
    replace: bool,
) -> (Report, i32) {
    let index_path = input.join(INDEX);
    let (shards, index): (Vec<String>, Option<IndexParts>) = if index_path.is_file() {
        match read_index(&index_path) {
            Ok((meta, map)) => {
                let files: BTreeSet<String> = map.values().cloned().collect();
                (files.into_iter().collect(), Some((meta, map)))
            }
            Err(e) => return error_report(input, e),
        }
    } else if input.join(SINGLE).is_file() {
        (vec![SINGLE.to_string()], None)
    } else {
        return error_report(input, format!("folder holds neither {SINGLE} nor {INDEX}"));
    };
    if !replace
        && output.exists()
        && fs::read_dir(output)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return error_report(
            input,
            format!("output folder {} exists and is not empty", output.display()),
        );
    }
    let parent = parent_dir(output);
    let label = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".to_string());
    let tmp = match crate::staging::StagedDir::new(&parent, &label) {
        Ok(t) => t,
        Err(e) => return error_report(input, format!("cannot create a temporary folder: {e}")),
    };
    let mut files = Vec::new();
    let mut code = EXIT_OK;
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    let mut dropped: BTreeMap<String, String> = BTreeMap::new();
    for shard in &shards {
        let out_name = safetensors_name(shard);
        let (rep, c) = convert_file(
            &input.join(shard),
            &tmp.path().join(&out_name),
            opts,
            sandbox,
            hashes,
        );
        code = code.max(c);
        for t in &rep.tensors {
            found.insert(t.name.clone(), out_name.clone());
        }
        files.push(rep);
        if c != EXIT_OK {
            break;
        }
    }
    if opts.dedup && code == EXIT_OK {
        // Names --dedup dropped are recorded as `dropped -> kept` in each shard's metadata.
        for f in &files {
            if let Some(out) = &f.output {
                if let Ok(meta) = shard_metadata(Path::new(out)) {
                    dropped.extend(meta.into_iter().filter(|(k, _)| k != "format"));
                }
            }
        }
    }
    if code == EXIT_OK {
        if let Some((meta, map)) = &index {
            let expected: BTreeSet<&String> =
                map.keys().filter(|k| !dropped.contains_key(*k)).collect();
            let got: BTreeSet<&String> = found.keys().collect();
            if expected != got {
                let missing: Vec<_> = expected.difference(&got).take(5).collect();
                let extra: Vec<_> = got.difference(&expected).take(5).collect();
                let mut summary = summarize(input, None, &files);
                summary.error = Some(format!(
                    "the shards do not hold what {INDEX} lists (missing {missing:?}, unlisted {extra:?})"
                ));
                return (Report::new(summary, EXIT_ERROR, files), EXIT_ERROR);
            }
            let mut new_meta = meta.clone();
            for (k, v) in &dropped {
                new_meta.insert(k.clone(), Value::String(v.clone()));
            }
            let weight_map: Map<String, Value> = map
                .iter()
                .filter(|(k, _)| !dropped.contains_key(*k))
                .map(|(k, v)| (k.clone(), Value::String(safetensors_name(v))))
                .collect();
            let doc = serde_json::json!({ "metadata": new_meta, "weight_map": weight_map });
            let text = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
            if let Err(e) = fs::write(tmp.path().join("model.safetensors.index.json"), text) {
                return error_report(input, format!("cannot write the index: {e}"));
            }
        }
        let copied = match copy_companions(input, tmp.path()) {
            Ok(c) => c,
            Err(e) => return error_report(input, e),
        };
        // The previous conversion moves into a locked staging folder of its own, which its
        // drop (or a later sweep, if this run dies) removes.
        let previous = match replace && output.is_dir() {
            true => match crate::staging::StagedDir::new(&parent, "previous")
                .and_then(|old| fs::rename(output, old.path()).map(|()| old))
            {
                Ok(old) => Some(old),
                Err(e) => {
                    return error_report(
                        input,
                        format!("cannot move the previous output folder aside: {e}"),
                    )
                }
            },
            false => None,
        };
        let tmp_path = tmp.keep();
        let _ = fs::remove_dir(output);
        if let Err(e) = fs::rename(&tmp_path, output) {
            if let Some(old) = &previous {
                let _ = fs::rename(old.path(), output);
            }
            let _ = fs::remove_dir_all(&tmp_path);
            return error_report(
                input,
                format!("cannot move the output folder into place: {e}"),
            );
        }
        for f in &mut files {
            if let Some(o) = &f.output {
                let name = Path::new(o).file_name().unwrap_or_default();
                f.output = Some(output.join(name).display().to_string());
            }
        }
        drop(previous);
        let mut summary = summarize(input, Some(output), &files);
        summary.copied = copied;
        return (Report::new(summary, code, files), code);
    }
    let mut summary = summarize(input, Some(output), &files);
    if code == EXIT_REFUSED {
        summary.output = None;
    }
    (Report::new(summary, code, files), code)
}

/// The files besides the weights that `from_pretrained` needs (configs, tokenizers), copied
/// byte for byte into the output folder so that it loads on its own. An allowlist by name:
/// never code (`*.py`, which `trust_remote_code` would import), never another pickle.
pub fn is_companion(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let data_ext = [".json", ".txt", ".model", ".tiktoken", ".jinja"]
        .iter()
        .any(|e| lower.ends_with(e));
    data_ext && !lower.ends_with(".index.json") && plain_file_name(name) && !name.starts_with('.')
}

const MAX_COMPANION_BYTES: u64 = 256 << 20;

fn copy_companions(input: &Path, dest: &Path) -> Result<Vec<String>, String> {
    let mut copied = Vec::new();
    let entries =
        fs::read_dir(input).map_err(|e| format!("cannot list {}: {e}", input.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_companion(&name) {
            continue;
        }
        // Hugging Face snapshots are symlinks into blobs/: follow them, but only to a file.
        let meta = match fs::metadata(entry.path()) {
            Ok(m) if m.is_file() => m,
            _ => continue,
        };
        if meta.len() > MAX_COMPANION_BYTES {
            return Err(format!(
                "{name} is larger than {MAX_COMPANION_BYTES} bytes; not copied"
            ));
        }
        fs::copy(entry.path(), dest.join(&name)).map_err(|e| format!("cannot copy {name}: {e}"))?;
        copied.push(name);
    }
    copied.sort();
    Ok(copied)
}

fn summarize(input: &Path, output: Option<&Path>, files: &[FileReport]) -> FileReport {
    let findings: Vec<_> = files
        .iter()
        .flat_map(|f| f.findings.iter().cloned())
        .collect();
    let error = files.iter().find_map(|f| f.error.clone());
    FileReport {
        input: input.display().to_string(),
        format: "hf-folder".into(),
        output: output.map(|o| o.display().to_string()),
        tensor_count: files.iter().map(|f| f.tensor_count).sum(),
        total_bytes: files.iter().map(|f| f.total_bytes).sum(),
        verdict: Some(crate::convert::verdict(&findings, error.is_some())),
        error,
        warnings: files
            .iter()
            .flat_map(|f| f.warnings.iter().cloned())
            .collect(),
        findings,
        ..Default::default()
    }
}

type IndexParts = (Map<String, Value>, BTreeMap<String, String>);

fn read_index(path: &Path) -> Result<IndexParts, String> {
    let meta = fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_INDEX_BYTES {
        return Err(format!("{INDEX} is larger than {MAX_INDEX_BYTES} bytes"));
    }
    let text = fs::read_to_string(path).map_err(|e| format!("{INDEX}: {e}"))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("{INDEX}: {e}"))?;
    let meta = doc
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let map = doc
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| format!("{INDEX} has no weight_map"))?;
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let file = v
            .as_str()
            .ok_or_else(|| format!("{INDEX}: weight_map value for {k} is not a string"))?;
        if !plain_file_name(file) {
            return Err(format!(
                "{INDEX}: shard name {file:?} is not a plain file name"
            ));
        }
        out.insert(k.clone(), file.to_string());
    }
    Ok((meta, out))
}

fn shard_metadata(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let mut f = fs::File::open(path).map_err(|e| e.to_string())?;
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    let h = crate::output::validate_header(&mut f, len, crate::output::Strictness::Canonical)
        .map_err(|e| e.to_string())?;
    Ok(h.metadata)
}
