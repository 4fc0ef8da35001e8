//! Hostile inputs: each ends with exit 2 and a clear message naming the problem, within seconds
//! and with the address space capped at 256 MiB (so an OOM-by-design input fails the test).

mod common;

use common::*;
use std::path::Path;

const MEM_MIB: u64 = 256;

fn convert_hostile(bytes: &[u8], expect: &str) {
    convert_hostile_file(|input| std::fs::write(input, bytes).unwrap(), expect);
}

/// Convert `input` to `out.safetensors` beside it under the memory cap; returns the run and
/// the output path.
fn convert_capped(input: &Path) -> (Run, std::path::PathBuf) {
    let out = input.with_file_name("out.safetensors");
    let r = run_limited(
        &["convert", input.to_str().unwrap(), out.to_str().unwrap()],
        MEM_MIB,
    );
    (r, out)
}

/// [`convert_hostile`] for an input that `make` writes (sparse files of many GiB).
fn convert_hostile_file(make: impl FnOnce(&Path), expect: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("hostile.pt");
    make(&input);
    let (r, out) = convert_capped(&input);
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

/// A file of `len` bytes: `head`, then holes (`File::set_len` costs no disk), then `tail`.
fn sparse(path: &Path, head: &[u8], len: u64, tail: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(head).unwrap();
    f.set_len(len - tail.len() as u64).unwrap();
    f.seek(SeekFrom::Start(len - tail.len() as u64)).unwrap();
    f.write_all(tail).unwrap();
}

/// Append little-endian fields given as (value, width in bytes).
fn le(v: &mut Vec<u8>, fields: &[(u64, usize)]) {
    for &(value, width) in fields {
        v.extend_from_slice(&value.to_le_bytes()[..width]);
    }
}

/// A ZIP64 torch archive of about `len` bytes: `archive/version`, then `archive/data.pkl`
/// stored with ZIP64 sizes, holding PROTO 2 and then holes, then a valid ZIP64 directory.
fn zip64_data_pkl_of_holes(path: &Path, len: u64) {
    let (ver, ver_name, pkl_name) = (b"3\n", b"archive/version", b"archive/data.pkl");
    let ver_crc = crc32fast::hash(ver) as u64;
    let mut head = b"PK\x03\x04".to_vec();
    le(&mut head, &[(20, 2), (0, 2), (0, 2), (0, 4)]);
    le(&mut head, &[(ver_crc, 4), (2, 4), (2, 4)]);
    le(&mut head, &[(ver_name.len() as u64, 2), (0, 2)]);
    head.extend_from_slice(ver_name);
    head.extend_from_slice(ver);
    let pkl_off = head.len() as u64;
    let data_start = pkl_off + 30 + pkl_name.len() as u64 + 20;
    let cd_off = len - 4096;
    let member = cd_off - data_start;
    head.extend_from_slice(b"PK\x03\x04");
    le(&mut head, &[(45, 2), (0, 2), (0, 2), (0, 4), (0, 4)]);
    le(&mut head, &[(0xFFFF_FFFF, 4), (0xFFFF_FFFF, 4)]);
    le(&mut head, &[(pkl_name.len() as u64, 2), (20, 2)]);
    head.extend_from_slice(pkl_name);
    le(&mut head, &[(1, 2), (16, 2), (member, 8), (member, 8)]);
    head.extend_from_slice(b"\x80\x02");
    let mut cd = b"PK\x01\x02".to_vec();
    le(&mut cd, &[(20, 2), (20, 2), (0, 2), (0, 2), (0, 4)]);
    le(&mut cd, &[(ver_crc, 4), (2, 4), (2, 4)]);
    le(&mut cd, &[(ver_name.len() as u64, 2), (0, 2)]);
    le(&mut cd, &[(0, 2), (0, 2), (0, 2), (0, 4), (0, 4)]);
    cd.extend_from_slice(ver_name);
    cd.extend_from_slice(b"PK\x01\x02");
    le(&mut cd, &[(45, 2), (45, 2), (0, 2), (0, 2), (0, 4), (0, 4)]);
    le(&mut cd, &[(0xFFFF_FFFF, 4), (0xFFFF_FFFF, 4)]);
    le(&mut cd, &[(pkl_name.len() as u64, 2), (20, 2)]);
    le(&mut cd, &[(0, 2), (0, 2), (0, 2), (0, 4), (pkl_off, 4)]);
    cd.extend_from_slice(pkl_name);
    le(&mut cd, &[(1, 2), (16, 2), (member, 8), (member, 8)]);
    let mut tail = cd.clone();
    let z64_off = cd_off + cd.len() as u64;
    tail.extend_from_slice(b"PK\x06\x06");
    le(
        &mut tail,
        &[(44, 8), (45, 2), (45, 2), (0, 4), (0, 4), (2, 8), (2, 8)],
    );
    le(&mut tail, &[(cd.len() as u64, 8), (cd_off, 8)]);
    tail.extend_from_slice(b"PK\x06\x07");
    le(&mut tail, &[(0, 4), (z64_off, 8), (1, 4)]);
    tail.extend_from_slice(b"PK\x05\x06");
    le(
        &mut tail,
        &[(0, 2), (0, 2), (2, 2), (2, 2), (cd.len() as u64, 4)],
    );
    le(&mut tail, &[(0xFFFF_FFFF, 4), (0, 2)]);
    sparse(path, &head, cd_off + tail.len() as u64, &tail);
}

/// A version-1 `.npy` with the given header dict and data.
fn npy(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.as_bytes().to_vec();
    let pad = 64 - (10 + h.len() + 1) % 64;
    h.extend(std::iter::repeat_n(b' ', pad));
    h.push(b'\n');
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend_from_slice(&(h.len() as u16).to_le_bytes());
    v.extend_from_slice(&h);
    v.extend_from_slice(data);
    v
}

#[test]
fn truncated_zip_at_every_cut_point() {
    let full = std::fs::read(fixtures().join("models/sd_sequential.pt")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let step = (full.len() / 40).max(1);
    for cut in (0..full.len()).step_by(step) {
        let input = tmp.path().join("cut.pt");
        std::fs::write(&input, &full[..cut]).unwrap();
        let (r, out) = convert_capped(&input);
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
fn length_bombs_backed_by_real_bytes() {
    // BINBYTES8 claiming 3 GiB in a sparse 3 GiB file: the length is honest, the graph budget
    // refuses it before reading.
    let mut head = b"\x80\x04\x8e".to_vec();
    head.extend_from_slice(&(3u64 << 30).to_le_bytes());
    convert_hostile_file(
        |p| sparse(p, &head, (3 << 30) + 11, b"."),
        "max_graph_bytes",
    );
    // FRAME claiming 2^60 bytes.
    let mut p = b"\x80\x04\x95".to_vec();
    p.extend_from_slice(&(1u64 << 60).to_le_bytes());
    p.extend_from_slice(b"N.");
    convert_hostile(&p, "exceeds");
    // A version-2 .npy header claiming 4 GiB.
    convert_hostile(b"\x93NUMPY\x02\x00\xff\xff\xff\xff{}{}{}{}", "npy header");
}

#[test]
fn text_argument_without_newline() {
    // UNICODE and STRING (protocol 0 text), then 1 GiB of holes without a newline: the read
    // stops at the graph's budget instead of growing the worker to its address-space limit.
    convert_hostile_file(|p| sparse(p, b"\x80\x02V", 1 << 30, b""), "max_graph_bytes");
    convert_hostile_file(
        |p| sparse(p, b"\x80\x02S'", 1 << 30, b""),
        "max_graph_bytes",
    );
}

#[test]
fn stride_zero_views_cannot_amplify_a_tiny_file() {
    // One stored float viewed as 2,684,354,560 elements (10 GiB of output) with stride 0.
    let n = 2_684_354_560i64;
    convert_hostile(
        &torch_zip(&state_dict_pickle(1, 0, &[n], &[0]), &[0u8; 4]),
        "max_view_expansion",
    );
}

#[test]
fn a_million_names_for_one_tensor() {
    // {"k0": t, "k1": t, ...}: every key an alias of one memoised tensor.
    let one = state_dict_pickle(6, 0, &[6], &[1]);
    // `}X\x01\x00\x00\x00w` + tensor + `s.`: reuse the tensor's bytes, memoise it once.
    let tensor = &one[9..one.len() - 2];
    let mut p = vec![0x80, 2, b'}', b'('];
    p.extend_from_slice(b"X\x02\x00\x00\x00k0");
    p.extend_from_slice(tensor);
    p.extend_from_slice(b"r\x00\x00\x00\x00");
    for i in 1..1_000_000u32 {
        let key = format!("k{i}");
        p.push(b'X');
        p.extend_from_slice(&(key.len() as u32).to_le_bytes());
        p.extend_from_slice(key.as_bytes());
        p.extend_from_slice(b"j\x00\x00\x00\x00");
    }
    p.extend_from_slice(b"u.");
    convert_hostile(&torch_zip(&p, &[0u8; 24]), "max_");
}

#[test]
fn nested_pickle_loads_share_one_memory_budget() {
    // pickle.loads(pickle.loads(...(16 MiB of bytes))) 64 deep: each level is refused for the
    // critical call it makes, and the levels' graphs share one `max_graph_bytes`, so the file is
    // refused (exit 1) instead of the worker dying at its address-space limit.
    let mut inner = b"\x80\x02\x8e".to_vec();
    inner.extend_from_slice(&(16u64 << 20).to_le_bytes());
    inner.resize(inner.len() + (16 << 20), 0x41);
    inner.push(b'.');
    for _ in 0..64 {
        let mut outer = b"\x80\x02cpickle\nloads\n\x8e".to_vec();
        outer.extend_from_slice(&(inner.len() as u64).to_le_bytes());
        outer.extend_from_slice(&inner);
        outer.extend_from_slice(b"\x85R.");
        inner = outer;
    }
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("nested.pkl");
    std::fs::write(&input, &inner).unwrap();
    let (r, out) = convert_capped(&input);
    assert_eq!(r.code, 1, "refused, not a crash: {}", r.stderr);
    assert!(r.stderr.contains("pickle.loads"), "{}", r.stderr);
    assert!(!out.exists());
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
fn memo_entries_and_far_indexes() {
    // 1,100,000 distinct memo slots for one value.
    let mut p = b"\x80\x02N".to_vec();
    for i in 0..1_100_000u32 {
        p.push(b'r');
        p.extend_from_slice(&i.to_le_bytes());
    }
    p.push(b'.');
    convert_hostile(&p, "max_memo");
    // LONG_BINPUT at 2^32-1 allocates nothing; LONG_BINGET of the empty slot below is an error.
    convert_hostile(
        b"\x80\x02Nr\xff\xff\xff\xff0j\xfe\xff\xff\xff.",
        "memo value not found",
    );
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
    // 64 MiB of NONE/POP pairs and no STOP: the opcode budget (2^25) ends it first.
    let p: Vec<u8> = b"\x80\x02"
        .iter()
        .copied()
        .chain(std::iter::repeat_n([b'N', b'0'], 32 << 20).flatten())
        .collect();
    convert_hostile(&p, "max_ops");
    // 8 MiB of them: the end of the input comes first.
    let p: Vec<u8> = b"\x80\x02"
        .iter()
        .copied()
        .chain(std::iter::repeat_n([b'N', b'0'], 4 << 20).flatten())
        .collect();
    convert_hostile(&p, "without STOP");
    // 64 MiB of BININT1/POP pairs: every int is a new value, so the node budget ends it.
    let p: Vec<u8> = b"\x80\x02"
        .iter()
        .copied()
        .chain(std::iter::repeat_n([b'K', 7, b'0'], 24 << 20).flatten())
        .collect();
    convert_hostile(&p, "max_nodes");
    // One list appended to 64 million times: 4 bytes a slot stay under the graph's byte budget
    // until the opcode budget ends it.
    let p: Vec<u8> = b"\x80\x02]"
        .iter()
        .copied()
        .chain(std::iter::repeat_n([b'N', b'a'], 64 << 20).flatten())
        .collect();
    convert_hostile(&p, "max_ops");
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
fn huge_shapes() {
    // [2^40, 2^40] over a 6-element storage.
    let z = torch_zip(
        &state_dict_pickle(6, 0, &[1 << 40, 1 << 40], &[1 << 40, 1]),
        &[0u8; 24],
    );
    convert_hostile(&z, "overflows");
    // The element count fits in u64 (2^62) but its size in bytes does not.
    let z = torch_zip(
        &state_dict_pickle(6, 0, &[1 << 31, 1 << 31], &[0, 0]),
        &[0u8; 24],
    );
    convert_hostile(&z, "byte size overflows");
    // More dimensions than max_rank.
    let z = torch_zip(&state_dict_pickle(6, 0, &[1; 100], &[1; 100]), &[0u8; 24]);
    convert_hostile(&z, "max_rank");
    // .npy headers: a shape whose size overflows, and one far larger than the data.
    let header =
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }";
    convert_hostile(&npy(header, &[0u8; 16]), "overflows");
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1073741824, 1073741824), }";
    convert_hostile(&npy(header, &[0u8; 16]), "shape needs");
}

#[test]
fn ten_gib_sparse_files() {
    const LEN: u64 = 10 << 30;
    // A zip local header, then holes: no end record where readers look for one.
    let mut head = b"PK\x03\x04\x14\x00".to_vec();
    head.extend_from_slice(&[0u8; 24]);
    head.extend_from_slice(b"archive/data.pkl");
    convert_hostile_file(|p| sparse(p, &head, LEN, b""), "end-of-central-directory");
    // PROTO 2, then holes.
    convert_hostile_file(|p| sparse(p, b"\x80\x02", LEN, b""), "invalid load key");
    // A valid ZIP64 torch archive whose data.pkl is PROTO 2 and then 10 GiB of holes.
    convert_hostile_file(|p| zip64_data_pkl_of_holes(p, LEN), "invalid load key");
    // A tar header magic, then holes.
    let mut tar = vec![0u8; 257];
    tar.extend_from_slice(b"ustar\x0000");
    convert_hostile_file(|p| sparse(p, &tar, LEN, b""), "tar");
}

#[test]
fn not_a_model() {
    convert_hostile(b"hello world, not a model", "unrecognised");
    convert_hostile(b"", "unrecognised");
    let _ = Path::new("");
}
