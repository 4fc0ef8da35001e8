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
    /// Bytes of strings/bytes held by one pickle's value graph.
    pub max_value_bytes: u64,
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
    /// Total bytes of tensor data written.
    pub max_output_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stack: 1 << 20,
            max_memo: 1 << 22,
            max_nodes: 1 << 23,
            max_depth: 10_000,
            max_value_bytes: 2 << 30,
            max_ops: 1 << 28,
            max_nested_pickles: 64,
            max_parse_millis: 120_000,
            max_tensors: 1 << 20,
            max_rank: 64,
            max_inflated_member: 256 << 20,
            max_archive_members: 1 << 16,
            max_output_bytes: 1 << 44,
        }
    }
}
