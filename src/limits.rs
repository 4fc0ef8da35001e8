//! Resource limits for parsing hostile input. Every one is checked *before* the allocation or
//! work it guards, and an error names the field so a user knows which option to raise.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Limits {
    /// Values on the pickle stack at once.
    pub max_stack: usize,
    /// Entries in one pickle's memo.
    pub max_memo: usize,
    /// Nodes in one pickle's value graph (every list, dict, string... counts one).
    pub max_nodes: usize,
    /// Nesting depth of the value graph when walking it (naming, findings).
    pub max_depth: usize,
    /// Bytes held by one pickle's value graph: strings, bytes and the nodes themselves. Raise it
    /// for checkpoints that embed large numpy arrays inside the pickle.
    pub max_graph_bytes: u64,
    /// Opcodes executed by one pickle.
    pub max_ops: u64,
    /// Pickles nested inside pickles (`_load_from_bytes`, numpy object arrays).
    pub max_nested_pickles: usize,
    /// Wall-clock budget for parsing, in milliseconds (0 = none).
    pub max_parse_millis: u64,
    /// Tensors in one file.
    pub max_tensors: usize,
    /// Dimensions of one tensor.
    pub max_rank: usize,
    /// Bytes one zip member may inflate to when it has to be held in memory.
    pub max_inflated_member: u64,
    /// Members in one archive.
    pub max_archive_members: usize,
    /// Bytes decompressed from one file in all (archive members, nested archives, compressed
    /// files): a 7z or gzip bomb ends here, not in memory.
    #[serde(default = "default_archive_inflated")]
    pub max_archive_inflated: u64,
    /// Total bytes of tensor data written.
    pub max_output_bytes: u64,
    /// Output bytes per distinct stored byte, beyond a 256 MiB allowance: aliases and stride-0
    /// views repeat stored bytes, so a tiny file could otherwise demand terabytes.
    pub max_view_expansion: u64,
}

fn default_archive_inflated() -> u64 {
    1 << 30
}

/// Output any file may produce beyond `max_view_expansion` times its stored bytes.
pub const VIEW_EXPANSION_ALLOWANCE: u64 = 256 << 20;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stack: 1 << 20,
            max_memo: 1 << 20,
            max_nodes: 2_000_000,
            max_depth: 10_000,
            max_graph_bytes: 96 << 20,
            // 2^25 opcodes take about 0.6 s in the jail and 2 s in the WASI guest; a real
            // checkpoint needs tens per tensor, and max_nodes caps the values anyway.
            max_ops: 1 << 25,
            max_nested_pickles: 64,
            max_parse_millis: 120_000,
            // Each tensor costs about 1 KiB through naming, planning and the output header:
            // 131,072 keep a worker well under 256 MiB (sharded models hold far fewer per file).
            max_tensors: 1 << 17,
            max_rank: 64,
            max_inflated_member: 256 << 20,
            max_archive_members: 1 << 16,
            max_archive_inflated: default_archive_inflated(),
            max_output_bytes: 1 << 44,
            max_view_expansion: 4,
        }
    }
}

impl Limits {
    /// Apply `name=value` (the CLI's `--limit`), e.g. `max_graph_bytes=1073741824`.
    pub fn set(&mut self, assignment: &str) -> Result<(), String> {
        let (name, value) = assignment
            .split_once('=')
            .ok_or_else(|| format!("`{assignment}` is not NAME=VALUE"))?;
        let value: u64 = value
            .trim()
            .parse()
            .map_err(|_| format!("limit `{name}` needs a whole number, got `{value}`"))?;
        let mut map = match serde_json::to_value(&*self) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => return Err("limits are not serialisable".into()),
        };
        if !map.contains_key(name) {
            let names: Vec<&String> = map.keys().collect();
            return Err(format!("unknown limit `{name}`; known: {names:?}"));
        }
        map.insert(name.to_string(), serde_json::Value::from(value));
        *self =
            serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| e.to_string())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_by_name() {
        let mut l = Limits::default();
        l.set("max_nodes=12").unwrap();
        assert_eq!(l.max_nodes, 12);
        assert!(l.set("max_bogus=1").is_err());
        assert!(l.set("max_nodes=-1").is_err());
        assert!(l.set("max_nodes").is_err());
    }
}
