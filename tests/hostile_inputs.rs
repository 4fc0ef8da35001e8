//! Hostile inputs: each ends with exit 2 and a clear message naming the problem, within seconds
//! and with the address space capped at 256 MiB (so an OOM-by-design input fails the test).

mod common;

use common::*;
use std::path::Path;

const MEM_MIB: u64 = 256;

fn convert_hostile(bytes: &[u8], expect: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("hostile.pt");
    std::fs::write(&input, bytes).unwrap();
    let out = tmp.path().join("out.safetensors");
    let r = run_limited(
        &["convert", input.to_str().unwrap(), out.to_str().unwrap()],
        MEM_MIB,
    );
    assert_eq!(
        r.code, 2,
        "expected exit 2 for `{expect}`, got {}: {}",
        r.code, r.stderr
    );
    assert!(
        r.stderr.to_lowercase().contains(&expect.to_lowercase()),
        "message should mention {expect:?}: {}",
        r.stderr
    );
    assert!(r.elapsed.as_secs() < 20, "took {:?}", r.elapsed);
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "nothing left behind"
    );
}

#[test]
fn truncated_zip_at_every_cut_point() {
    let full = std::fs::read(fixtures().join("models/sd_sequential.pt")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let step = (full.len() / 40).max(1);
    for cut in (0..full.len()).step_by(step) {
        let input = tmp.path().join("cut.pt");
        std::fs::write(&input, &full[..cut]).unwrap();
        let out = tmp.path().join("out.safetensors");
        let r = run_limited(
            &["convert", input.to_str().unwrap(), out.to_str().unwrap()],
            MEM_MIB,
        );
        assert_eq!(r.code, 2, "cut at {cut}: {}", r.stderr);
        assert!(r.stderr.contains("error"), "cut at {cut}: {}", r.stderr);
        assert!(!out.exists());
    }
}

#[test]
fn length_prefix_larger_than_the_input() {
    // BINUNICODE claiming 4 GiB in a 10-byte file; BINBYTES8 claiming 2^62.
    convert_hostile(b"\x80\x02X\xf0\xff\xff\xff.", "exceeds");
    let mut p = b"\x80\x04\x8e".to_vec();
    p.extend_from_slice(&(1u64 << 62).to_le_bytes());
    p.push(b'.');
    convert_hostile(&p, "exceeds");
}

#[test]
fn memo_doubling_bomb() {
    // x = []; then 48 times x = (x, x): 2^48 paths through 50 nodes.
    let mut p = b"\x80\x02]q\x00".to_vec();
    for _ in 0..48 {
        p.extend_from_slice(b"h\x00h\x00\x86q\x00");
    }
    p.push(b'.');
    convert_hostile(&p, "max_nodes");
}

#[test]
fn million_deep_nesting() {
    // 1,000,000 nested lists: EMPTY_LIST × n, then APPEND × (n-1).
    let n = 1_000_000;
    let mut p = b"\x80\x02".to_vec();
    p.extend(std::iter::repeat_n(b']', n));
    p.extend(std::iter::repeat_n(b'a', n - 1));
    p.push(b'.');
    convert_hostile(&p, "max_depth");
    // A million open MARKs.
    let mut p = b"\x80\x02".to_vec();
    p.extend(std::iter::repeat_n(b'(', 2_000_000));
    p.push(b'.');
    convert_hostile(&p, "max_stack");
}

#[test]
fn endless_pickle_without_stop() {
    // 64 MiB of NONE/POP pairs and no STOP.
    let p: Vec<u8> = b"\x80\x02"
        .iter()
        .copied()
        .chain(std::iter::repeat_n([b'N', b'0'], 32 << 20).flatten())
        .collect();
    convert_hostile(&p, "without STOP");
    // 64 MiB of BININT1/POP pairs: every int is a new value, so the node budget ends it.
    let p: Vec<u8> = b"\x80\x02"
        .iter()
        .copied()
        .chain(std::iter::repeat_n([b'K', 7, b'0'], 24 << 20).flatten())
        .collect();
    convert_hostile(&p, "max_nodes");
    // One list appended to 64 million times: the graph byte budget ends it.
    let p: Vec<u8> = b"\x80\x02]"
        .iter()
        .copied()
        .chain(std::iter::repeat_n([b'N', b'a'], 64 << 20).flatten())
        .collect();
    convert_hostile(&p, "max_graph_bytes");
}

#[test]
fn out_of_bounds_and_overflowing_views() {
    // size 4x4 over a 6-element storage
    let z = torch_zip(&state_dict_pickle(6, 0, &[4, 4], &[4, 1]), &[0u8; 24]);
    convert_hostile(&z, "view ends at byte");
    // storage offset past the end
    let z = torch_zip(&state_dict_pickle(6, 100, &[2], &[1]), &[0u8; 24]);
    convert_hostile(&z, "view ends at byte");
    // size * stride overflows u64
    let z = torch_zip(
        &state_dict_pickle(6, 0, &[1 << 62, 4], &[1 << 62, 1]),
        &[0u8; 24],
    );
    convert_hostile(&z, "overflows");
    // huge shape: numel overflows
    let z = torch_zip(
        &state_dict_pickle(6, 0, &[1 << 40, 1 << 40, 1 << 40], &[0, 0, 0]),
        &[0u8; 24],
    );
    convert_hostile(&z, "overflows");
    // negative stride
    let z = torch_zip(&state_dict_pickle(6, 0, &[2], &[-1]), &[0u8; 24]);
    convert_hostile(&z, "negative stride");
    // storage record smaller than its declared numel
    let z = torch_zip(&state_dict_pickle(600, 0, &[2], &[1]), &[0u8; 24]);
    convert_hostile(&z, "storage needs");
}

#[test]
fn zip_bombs() {
    // A storage record that inflates to 1 GiB (declared honestly): refused by the inflate limit.
    let numel: u64 = (1 << 30) / 4;
    let zeros = vec![0u8; 1 << 30];
    let bomb = miniz_oxide::deflate::compress_to_vec(&zeros, 1);
    drop(zeros);
    let mut z = ZipBuilder::new();
    z.stored(
        "archive/data.pkl",
        &state_dict_pickle(numel, 0, &[numel as i64], &[1]),
    )
    .stored("archive/version", b"3\n")
    .member("archive/data/0", &bomb, 8, 0, 1 << 30);
    convert_hostile(&z.finish(), "max_inflated_member");
    // A deflated member that lies: declares 24 bytes but inflates to 1 MiB.
    let lie = miniz_oxide::deflate::compress_to_vec(&vec![0u8; 1 << 20], 1);
    let mut z = ZipBuilder::new();
    z.stored("archive/data.pkl", &state_dict_pickle(6, 0, &[6], &[1]))
        .stored("archive/version", b"3\n")
        .member("archive/data/0", &lie, 8, 0, 24);
    convert_hostile(&z.finish(), "error");
    // A deflated data.pkl bomb: 512 MiB of one opcode byte that builds nothing.
    let pkl: Vec<u8> = std::iter::repeat_n(b'N', 512 << 20).collect();
    let bomb = miniz_oxide::deflate::compress_to_vec(&pkl, 1);
    drop(pkl);
    let mut z = ZipBuilder::new();
    z.member("archive/data.pkl", &bomb, 8, 0, 512 << 20)
        .stored("archive/version", b"3\n");
    convert_hostile(&z.finish(), "max_stack");
}

#[test]
fn not_a_model() {
    convert_hostile(b"hello world, not a model", "unrecognised");
    convert_hostile(b"", "unrecognised");
    let _ = Path::new("");
}
