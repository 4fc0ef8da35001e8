#!/usr/bin/env python3
"""Resource bounds as numbers: run `modelguard convert` on one input of every hostile class and
record the wall time and peak memory until the clear error (issue 8). Every row must end with
exit 2 (exit 1, a refusal, for the one input that also calls `pickle.loads`), a message naming
the problem, no output file and nothing left beside it, within 5 s and 256 MiB; the script
exits 1 if one does not.

Classes: length bombs (length prefixes claiming GiBs), memo bombs, deep nesting, zip bombs,
huge shapes, out-of-bounds views, endless pickles, and 10 GiB sparse files that claim to be a
checkpoint. The inputs are built in a temporary folder with the same constructions as
tests/hostile_inputs.rs (python3 standard library only); sparse files cost no disk, but five
inputs are real files of 64 MiB to 1 GiB (written, converted, deleted one at a time). The
stride-0 view runs with `--timeout 4` so that it cannot write gigabytes of output.

What is measured, per run: the wall time from spawning `modelguard convert IN OUT` to reaping
it, and the peak resident memory of its process tree. With the native jail the host re-executes
itself as a worker and waits for it (src/jail/host.rs: `child.wait()` in a helper thread), so
the kernel folds the worker's peak into the host's rusage: wait4 on the host returns
ru_maxrss = max(host peak, worker peak), exact, but a maximum, not a sum. The script also
samples /proc/PID/status (VmHWM, VmRSS) of the host and every descendant every few
milliseconds, and reports as "peak RSS" the host's VmHWM + that ru_maxrss: an upper bound on
what the tree held at once (it over-counts by at most the host's own few MiB; a worker that
lives for a millisecond is never sampled, but ru_maxrss still covers it). With
`--sandbox wasi` the guest runs inside the host, so the peak is ru_maxrss itself.

The kernel also folds the RSS a process had *before* exec into ru_maxrss, so a child forked
from this Python process would start at Python's ~20 MiB. The host is therefore started
through GNU time (/usr/bin/time, Debian package `time`, ~2 MiB), which does the wait4 and
prints ru_maxrss (%M); without it the script calls os.wait4 itself and the figure includes
Python's own RSS (still an upper bound). `-v` prints every part.

Usage: python3 bench/hostile_bounds.py [--bin target/release/modelguard] [--sandbox native]
                                       [--also-wasi] [--only SUBSTRING] [--tmp DIR] [-v]
Results and method: docs/resource-bounds.md.
"""
import argparse
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
MAX_SECONDS = 5.0
MAX_MIB = 256.0
# A run still going after this long is killed (and fails).
HARD_TIMEOUT = 120.0


# ---------------------------------------------------------------------------------------------
# Byte constructions (same as tests/common/mod.rs)


def push_int(v):
    """LONG1 of any i64 (what pickle writes for ints beyond 32 bits)."""
    return b"\x8a\x08" + struct.pack("<q", v)


def state_dict_pickle(numel, offset, size, stride):
    """A protocol-2 data.pkl: {"w": _rebuild_tensor_v2(storage('0', FloatStorage, numel), ...)}."""
    p = b"\x80\x02}X" + struct.pack("<I", 1) + b"w"
    p += b"ctorch._utils\n_rebuild_tensor_v2\n("
    p += b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu"
    p += push_int(numel) + b"tQ" + push_int(offset)
    p += b"(" + b"".join(push_int(s) for s in size) + b"t"
    p += b"(" + b"".join(push_int(s) for s in stride) + b"t"
    p += b"\x89ccollections\nOrderedDict\n)R"
    p += b"tRs."
    return p


class ZipBuilder:
    """A minimal zip writer (stored or deflated members, classic 32-bit records)."""

    def __init__(self):
        self.data = bytearray()
        self.central = bytearray()
        self.count = 0

    def member(self, name, payload, method, crc, declared):
        """`payload` is written as is; `declared` is the uncompressed size claimed."""
        name = name.encode()
        off = len(self.data)
        self.data += b"PK\x03\x04" + struct.pack(
            "<HHHIIIIHH", 20, 0, method, 0, crc, len(payload), declared, len(name), 0
        )
        self.data += name + payload
        self.central += b"PK\x01\x02" + struct.pack(
            "<HHHHIIIIHHHHHII",
            20, 20, 0, method, 0, crc, len(payload), declared, len(name), 0, 0, 0, 0, 0, off,
        )
        self.central += name
        self.count += 1
        return self

    def stored(self, name, payload):
        return self.member(name, payload, 0, zlib.crc32(payload), len(payload))

    def finish(self, zip64=False):
        """The archive; `zip64` adds ZIP64 end records (needed beyond 65,535 members)."""
        out = bytes(self.data) + bytes(self.central)
        count, cd_size, cd_off = self.count, len(self.central), len(self.data)
        if zip64:
            z64_off = len(out)
            out += b"PK\x06\x06" + struct.pack(
                "<QHHIIQQQQ", 44, 45, 45, 0, 0, count, count, cd_size, cd_off
            )
            out += b"PK\x06\x07" + struct.pack("<IQI", 0, z64_off, 1)
            count = 0xFFFF
        out += b"PK\x05\x06" + struct.pack(
            "<HHHHIIH", 0, 0, count, count, cd_size, cd_off, 0
        )
        return out


def torch_zip(data_pkl, storage):
    """A torch zip archive with the given data.pkl and one storage record `data/0`."""
    z = ZipBuilder()
    z.stored("archive/data.pkl", data_pkl).stored("archive/version", b"3\n")
    z.stored("archive/data/0", storage)
    return z.finish()


def raw_deflate_repeat(unit, total, level=1):
    """Raw deflate (zip method 8) of `unit` repeated to `total` bytes, without holding it."""
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    chunk = unit * ((4 * MiB) // len(unit))
    out = []
    done = 0
    while done < total:
        n = min(len(chunk), total - done)
        out.append(c.compress(chunk[:n]))
        done += n
    out.append(c.flush())
    return b"".join(out)


# ---------------------------------------------------------------------------------------------
# Input writers: each returns a function that writes the file at a path.


def content(data):
    def make(path):
        with open(path, "wb") as f:
            f.write(data)

    return make


def sparse(head, size, tail=b""):
    """`head`, then holes up to `size - len(tail)`, then `tail`: costs only a few KiB of disk."""

    def make(path):
        with open(path, "wb") as f:
            f.write(head)
            f.truncate(size - len(tail))
            if tail:
                f.seek(size - len(tail))
                f.write(tail)

    return make


def repeated(head, unit, total):
    """A real file: `head` then `unit` repeated up to `total` bytes (written in 4 MiB chunks)."""

    def make(path):
        chunk = unit * ((4 * MiB) // len(unit))
        with open(path, "wb") as f:
            f.write(head)
            left = total - len(head)
            while left > 0:
                n = min(len(chunk), left) // len(unit) * len(unit)
                if n == 0:
                    break
                f.write(chunk[:n])
                left -= n

    return make


def lazy(build):
    """Build the bytes only when the case runs (some take a second or a few MiB)."""

    def make(path):
        content(build())(path)

    return make


def memo_doubling():
    # x = []; then 48 times x = (x, x): 2^48 paths through 50 nodes.
    return b"\x80\x02]q\x00" + b"h\x00h\x00\x86q\x00" * 48 + b"."


def memo_dict_doubling():
    # x = {}; then 40 times x = {'a': x, 'b': x}: 2^40 paths, every one a dict key path.
    p = b"\x80\x02}q\x00"
    for _ in range(40):
        p += b"}(X\x01\x00\x00\x00ah\x00X\x01\x00\x00\x00bh\x00uq\x00"
    return p + b"."


def memo_many_entries():
    # 1,100,000 distinct LONG_BINPUT indexes of one None: more than max_memo entries.
    return b"\x80\x02N" + b"".join(b"r" + struct.pack("<I", i) for i in range(1_100_000)) + b"."


def memo_far_index():
    # LONG_BINPUT at 2^32-1 (a memo indexed by position would allocate 2^32 slots), then
    # LONG_BINGET of the empty slot below it.
    return b"\x80\x02Nr\xff\xff\xff\xff0j\xfe\xff\xff\xff."


def pickle_loads_chain(depth, payload):
    """`pickle.loads(pickle.loads(...(bytes)))`: each level's bytes hold the next pickle, the
    innermost a `payload`-byte bytes value. Every level is parsed (for findings) by the same
    machine, with its own graph."""
    p = b"\x80\x04\x8e" + struct.pack("<Q", payload) + bytes(payload) + b"."
    for _ in range(depth):
        p = b"\x80\x04cpickle\nloads\n\x8e" + struct.pack("<Q", len(p)) + p + b"\x85R."
    return p


def nested_lists(n):
    return b"\x80\x02" + b"]" * n + b"a" * (n - 1) + b"."


def nested_tuples(n):
    return b"\x80\x02N" + b"\x85" * n + b"."


def many_tensors(n):
    # One tensor, then a list holding it n times (through the memo): n names, one storage.
    head = state_dict_pickle(6, 0, [6], [1])
    # {"w": t} -> memoize the tensor with BINPUT after REDUCE, then a list of BINGETs.
    body = head[:-2]  # without "s." : stack is {dict, "w", tensor}
    p = body + b"q\x07s"  # memo 7 = tensor; dict["w"] = tensor
    p += b"X\x04\x00\x00\x00many]" + b"h\x07a" * n + b"s."
    return torch_zip(p, bytes(24))


def storage_bomb():
    # A storage record that inflates to 1 GiB (declared honestly).
    numel = GiB // 4
    bomb = raw_deflate_repeat(b"\0", GiB)
    z = ZipBuilder()
    z.stored("archive/data.pkl", state_dict_pickle(numel, 0, [numel], [1]))
    z.stored("archive/version", b"3\n")
    z.member("archive/data/0", bomb, 8, 0, GiB)
    return z.finish()


def lying_member():
    # A deflated storage that declares 24 bytes but inflates to 1 MiB.
    lie = raw_deflate_repeat(b"\0", MiB)
    z = ZipBuilder()
    z.stored("archive/data.pkl", state_dict_pickle(6, 0, [6], [1]))
    z.stored("archive/version", b"3\n")
    z.member("archive/data/0", lie, 8, 0, 24)
    return z.finish()


def data_pkl_bomb(unit, total):
    bomb = raw_deflate_repeat(unit, total)
    crc = 0
    z = ZipBuilder()
    z.member("archive/data.pkl", bomb, 8, crc, total & 0xFFFFFFFF)
    z.stored("archive/version", b"3\n")
    return z.finish()


def overlapping_members(n):
    """n central entries (archive/data.pkl first) all pointing at one deflated member: 60 MiB of
    NONE/POP without STOP, so every reader of any of them fails; the CRC check and the pickle
    scan must not multiply the work by n."""
    payload = raw_deflate_repeat(b"N0", 60 * MiB)
    z = ZipBuilder()
    z.stored("archive/version", b"3\n")
    off = len(z.data)
    z.member("archive/data.pkl", payload, 8, 0, 60 * MiB)
    for i in range(1, n):
        name = f"archive/extra{i}.pkl".encode()
        z.central += b"PK\x01\x02" + struct.pack(
            "<HHHHIIIIHHHHHII",
            20, 20, 0, 8, 0, 0, len(payload), 60 * MiB, len(name), 0, 0, 0, 0, 0, off,
        )
        z.central += name
        z.count += 1
    return z.finish()


def many_members(n):
    z = ZipBuilder()
    z.stored("archive/data.pkl", state_dict_pickle(6, 0, [6], [1]))
    z.stored("archive/version", b"3\n")
    for i in range(n):
        z.stored(f"archive/x/{i}", b"")
    return z.finish(zip64=True)


def npy(header_dict, data=b"", version=1):
    h = header_dict.encode("latin1")
    pad = 64 - (len(b"\x93NUMPY") + 2 + (2 if version == 1 else 4) + len(h) + 1) % 64
    h = h + b" " * pad + b"\n"
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(h)) + h + data


def zip64_sparse(total):
    """A torch zip of about `total` bytes: `archive/version`, then `archive/data.pkl` stored as a
    ZIP64 member whose bytes are PROTO 2 and then holes, then a valid ZIP64 central directory."""
    ver_name, ver, pkl_name = b"archive/version", b"3\n", b"archive/data.pkl"
    ver_crc = zlib.crc32(ver)
    head = b"PK\x03\x04" + struct.pack(
        "<HHHIIIIHH", 20, 0, 0, 0, ver_crc, len(ver), len(ver), len(ver_name), 0
    ) + ver_name + ver
    pkl_off = len(head)
    data_start = pkl_off + 30 + len(pkl_name) + 20
    cd_off = total - 4096
    member = cd_off - data_start
    head += b"PK\x03\x04" + struct.pack(
        "<HHHIIIIHH", 45, 0, 0, 0, 0, 0xFFFFFFFF, 0xFFFFFFFF, len(pkl_name), 20
    ) + pkl_name + struct.pack("<HHQQ", 1, 16, member, member)
    head += b"\x80\x02"
    cd = b"PK\x01\x02" + struct.pack(
        "<HHHHIIIIHHHHHII", 20, 20, 0, 0, 0, ver_crc, len(ver), len(ver), len(ver_name),
        0, 0, 0, 0, 0, 0,
    ) + ver_name
    cd += b"PK\x01\x02" + struct.pack(
        "<HHHHIIIIHHHHHII", 45, 45, 0, 0, 0, 0, 0xFFFFFFFF, 0xFFFFFFFF, len(pkl_name),
        20, 0, 0, 0, 0, pkl_off,
    ) + pkl_name + struct.pack("<HHQQ", 1, 16, member, member)
    z64_off = cd_off + len(cd)
    tail = cd + b"PK\x06\x06" + struct.pack(
        "<QHHIIQQQQ", 44, 45, 45, 0, 0, 2, 2, len(cd), cd_off
    )
    tail += b"PK\x06\x07" + struct.pack("<IQI", 0, z64_off, 1)
    tail += b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 2, 2, len(cd), 0xFFFFFFFF, 0)
    return sparse(head, cd_off + len(tail), tail)


# ---------------------------------------------------------------------------------------------
# The cases


class Case:
    def __init__(self, cls, label, make, expect, args=(), code=2, limit=None):
        self.cls = cls
        self.label = label
        self.make = make
        self.expect = expect  # substring the message must contain (case-insensitive)
        self.args = list(args)
        self.code = code
        self.limit = limit  # the limit (src/limits.rs field or other check) that ends it


def cases():
    c = []
    # --- length bombs
    c.append(Case("length bomb", "BINUNICODE claiming 4 GiB in an 8-byte file",
                  content(b"\x80\x02X\xf0\xff\xff\xff."), "exceeds",
                  limit="input bounds (pickle/input.rs)"))
    c.append(Case("length bomb", "BINBYTES8 claiming 2^62 bytes",
                  content(b"\x80\x04\x8e" + struct.pack("<Q", 1 << 62) + b"."), "exceeds",
                  limit="input bounds"))
    c.append(Case("length bomb", "BINUNICODE8 claiming 2^64-1 bytes",
                  content(b"\x80\x04\x8d" + b"\xff" * 8 + b"."), "exceeds",
                  limit="input bounds"))
    c.append(Case("length bomb", "LONG4 claiming 2 GiB of digits",
                  content(b"\x80\x02\x8b\xff\xff\xff\x7f."), "exceeds",
                  limit="input bounds"))
    c.append(Case("length bomb", "FRAME claiming 2^60 bytes",
                  content(b"\x80\x04\x95" + struct.pack("<Q", 1 << 60) + b"N."), "exceeds",
                  limit="input bounds"))
    c.append(Case("length bomb", "BINBYTES8 of 3 GiB that exist (sparse file)",
                  sparse(b"\x80\x04\x8e" + struct.pack("<Q", 3 * GiB), 3 * GiB + 11),
                  "max_graph_bytes", limit="max_graph_bytes"))
    c.append(Case("length bomb", "UNICODE (text) argument with no newline in 1 GiB (sparse)",
                  sparse(b"\x80\x02V", GiB), "max_graph_bytes",
                  limit="max_graph_bytes (the line read stops at the remaining budget)"))
    c.append(Case("length bomb", ".npy v2 header length of 4 GiB",
                  content(b"\x93NUMPY\x02\x00\xff\xff\xff\xff" + b"{}" * 8), "npy header",
                  limit="npy header (10,000 bytes, as numpy)"))
    # --- memo bombs
    c.append(Case("memo bomb", "memo doubling: x = (x, x) 48 times (2^48 paths)",
                  content(memo_doubling()), "max_nodes", limit="max_nodes"))
    c.append(Case("memo bomb", "memo doubling of dicts: x = {a: x, b: x} 40 times",
                  content(memo_dict_doubling()), "max_nodes", limit="max_nodes"))
    c.append(Case("memo bomb", "1,100,000 distinct memo entries",
                  lazy(memo_many_entries), "max_memo", limit="max_memo"))
    c.append(Case("memo bomb", "LONG_BINPUT at 2^32-1, LONG_BINGET of 2^32-2",
                  content(memo_far_index()), "memo value not found",
                  limit="memo is a map (no allocation)"))
    # --- deep nesting
    c.append(Case("deep nesting", "1,000,000 nested lists",
                  lazy(lambda: nested_lists(1_000_000)), "max_depth", limit="max_depth"))
    c.append(Case("deep nesting", "1,000,000 nested 1-tuples",
                  lazy(lambda: nested_tuples(1_000_000)), "max_depth", limit="max_depth"))
    c.append(Case("deep nesting", "2,000,000 open MARKs",
                  content(b"\x80\x02" + b"(" * 2_000_000 + b"."), "max_stack",
                  limit="max_stack"))
    c.append(Case("deep nesting", "pickle.loads nested 64 deep around 16 MiB of bytes",
                  lazy(lambda: pickle_loads_chain(64, 16 * MiB)), "MG001", code=1,
                  limit="one max_graph_bytes shared by all levels; refused as malicious"))
    # --- zip bombs
    c.append(Case("zip bomb", "storage record deflating to 1 GiB (declared)",
                  lazy(storage_bomb), "max_inflated_member", limit="max_inflated_member"))
    c.append(Case("zip bomb", "storage record declaring 24 bytes, inflating to 1 MiB",
                  lazy(lying_member), "error", limit="declared size checked while inflating"))
    c.append(Case("zip bomb", "data.pkl deflating to 512 MiB of NONE",
                  lazy(lambda: data_pkl_bomb(b"N", 512 * MiB)), "max_stack",
                  limit="max_stack"))
    c.append(Case("zip bomb", "data.pkl deflating to 1 GiB of NONE/POP (no STOP)",
                  lazy(lambda: data_pkl_bomb(b"N0", GiB)), "max_ops", limit="max_ops"))
    c.append(Case("zip bomb", "1,000 central entries sharing data.pkl's 60 MiB deflated bytes",
                  lazy(lambda: overlapping_members(1000)), "max_ops",
                  limit="members sharing bytes scanned once; CRC budget (256 MiB); max_ops"))
    c.append(Case("zip bomb", "70,000 members",
                  lazy(lambda: many_members(70_000)), "max_archive_members",
                  limit="max_archive_members"))
    # --- huge shapes
    c.append(Case("huge shape", "torch zip tensor [2^40, 2^40] on 6 floats",
                  content(torch_zip(state_dict_pickle(6, 0, [1 << 40, 1 << 40],
                                                      [1 << 40, 1]), bytes(24))),
                  "overflows", limit="checked arithmetic (tensors/spec.rs)"))
    c.append(Case("huge shape", "tensor [2^40, 2^40, 2^40], strides 0 (numel overflows)",
                  content(torch_zip(state_dict_pickle(6, 0, [1 << 40] * 3, [0, 0, 0]),
                                    bytes(24))),
                  "element count overflows", limit="checked arithmetic"))
    c.append(Case("huge shape", "tensor [2^31, 2^31], strides 0 (numel*itemsize overflows)",
                  content(torch_zip(state_dict_pickle(6, 0, [1 << 31, 1 << 31], [0, 0]),
                                    bytes(24))),
                  "byte size overflows", limit="checked arithmetic"))
    c.append(Case("huge shape", "tensor [2^62] on 6 floats (extent*itemsize overflows)",
                  content(torch_zip(state_dict_pickle(6, 0, [1 << 62], [1]), bytes(24))),
                  "overflows", limit="checked arithmetic"))
    c.append(Case("huge shape", "tensor of rank 100",
                  content(torch_zip(state_dict_pickle(6, 0, [1] * 100, [1] * 100),
                                    bytes(24))),
                  "max_rank", limit="max_rank"))
    c.append(Case("huge shape", ".npy header shape (2^40, 2^40)",
                  content(npy("{'descr': '<f4', 'fortran_order': False, "
                              "'shape': (1099511627776, 1099511627776), }", bytes(16))),
                  "overflows", limit="checked arithmetic (tensors/resolve.rs)"))
    c.append(Case("huge shape", ".npy header shape (2^30, 2^30) over 16 bytes",
                  content(npy("{'descr': '<f4', 'fortran_order': False, "
                              "'shape': (1073741824, 1073741824), }", bytes(16))),
                  "shape needs", limit="data length must match the shape"))
    # A tiny file that asks for 10 GiB of output: one 4-byte element broadcast (stride 0) to
    # 2.5 G elements. `--timeout 4` only guards the bench against a regression that would
    # write gigabytes.
    c.append(Case("huge shape", "4-byte storage viewed as [2684354560] (10 GiB), stride 0",
                  content(torch_zip(state_dict_pickle(1, 0, [10 * GiB // 4], [0]), bytes(4))),
                  "max_view_expansion", args=["--timeout", "4"],
                  limit="max_view_expansion (4x the stored bytes + 256 MiB)"))
    c.append(Case("huge shape", "1,100,000 names for one tensor",
                  lazy(lambda: many_tensors(1_100_000)), "limit `max_",
                  limit="max_graph_bytes of the naming walk's queue, before max_tensors"))
    # --- out-of-bounds views
    c.append(Case("out-of-bounds view", "size 4x4 over a 6-element storage",
                  content(torch_zip(state_dict_pickle(6, 0, [4, 4], [4, 1]), bytes(24))),
                  "view ends at byte", limit="view bounds (tensors/spec.rs)"))
    c.append(Case("out-of-bounds view", "storage_offset 100 on a 6-element storage",
                  content(torch_zip(state_dict_pickle(6, 100, [2], [1]), bytes(24))),
                  "view ends at byte", limit="view bounds"))
    c.append(Case("out-of-bounds view", "storage_offset 2^62",
                  content(torch_zip(state_dict_pickle(6, 1 << 62, [2], [1]), bytes(24))),
                  "overflows", limit="checked arithmetic"))
    c.append(Case("out-of-bounds view", "stride 2^40 on a 6-element storage",
                  content(torch_zip(state_dict_pickle(6, 0, [2], [1 << 40]), bytes(24))),
                  "view ends at byte", limit="view bounds"))
    c.append(Case("out-of-bounds view", "negative stride",
                  content(torch_zip(state_dict_pickle(6, 0, [2], [-1]), bytes(24))),
                  "negative stride", limit="view bounds"))
    c.append(Case("out-of-bounds view", "storage claiming 600 elements in a 24-byte record",
                  content(torch_zip(state_dict_pickle(600, 0, [2], [1]), bytes(24))),
                  "storage needs", limit="storage record size"))
    # --- endless pickles
    c.append(Case("endless pickle", "64 MiB of NONE/POP, no STOP",
                  repeated(b"\x80\x02", b"N0", 64 * MiB), "max_ops",
                  limit="max_ops (33,554,432)"))
    c.append(Case("endless pickle", "8 MiB of NONE/POP, no STOP",
                  repeated(b"\x80\x02", b"N0", 8 * MiB), "without STOP",
                  limit="end of input"))
    c.append(Case("endless pickle", "1 GiB of PROTO 2 (a no-op opcode), no STOP",
                  repeated(b"\x80\x02", b"\x80\x02", GiB), "max_ops", limit="max_ops"))
    c.append(Case("endless pickle", "1 GiB of NONE/POP, no STOP",
                  repeated(b"\x80\x02", b"N0", GiB), "max_ops", limit="max_ops"))
    c.append(Case("endless pickle", "64 MiB of BININT1/POP (a new value each)",
                  repeated(b"\x80\x02", b"K\x070", 2 + 3 * (24 * MiB)), "max_nodes",
                  limit="max_nodes"))
    c.append(Case("endless pickle", "one list appended to 64 million times",
                  repeated(b"\x80\x02]", b"Na", 3 + 2 * (64 * MiB)), "max_ops",
                  limit="max_ops (4 bytes a slot stay under max_graph_bytes)"))
    # --- 10 GiB sparse files
    c.append(Case("10 GiB sparse", "PK local header, then 10 GiB of holes",
                  sparse(b"PK\x03\x04\x14\x00\x00\x00\x00\x00" + bytes(20)
                         + b"archive/data.pkl", 10 * GiB),
                  "end-of-central-directory", limit="zip end-record search window"))
    c.append(Case("10 GiB sparse", "PROTO 2, then 10 GiB of holes",
                  sparse(b"\x80\x02", 10 * GiB), "invalid load key", limit="opcode table"))
    c.append(Case("10 GiB sparse", "ZIP64 torch zip: data.pkl = PROTO 2 + 10 GiB of holes",
                  zip64_sparse(10 * GiB), "invalid load key", limit="opcode table"))
    c.append(Case("10 GiB sparse", "tar header (ustar), then 10 GiB of holes",
                  sparse(bytes(257) + b"ustar\x0000", 10 * GiB), "tar:",
                  limit="tar end-of-archive"))
    return c


# ---------------------------------------------------------------------------------------------
# Running and measuring


def read_proc(pid, name):
    """/proc/PID/NAME, or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/{name}") as f:
            return f.read()
    except OSError:
        return None


def proc_status(pid):
    """(VmHWM, VmRSS) in KiB, or None once the process is gone or is a zombie."""
    text = read_proc(pid, "status")
    if text is None:
        return None
    hwm = rss = None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
        elif line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    if hwm is None:
        return None
    return hwm, rss


def children_of(pids):
    """Descendants of `pids` (no /proc/PID/task/TID/children on every kernel: scan /proc)."""
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            ppid = parent_of(int(name))
            if ppid is not None:
                parents[int(name)] = ppid
    found = set()
    frontier = set(pids)
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier and p not in found}
        found |= frontier
    return found


class Result:
    pass


GNU_TIME = "/usr/bin/time"


def run_case(binary, case, sandbox, workdir, verbose):
    d = tempfile.mkdtemp(prefix="case-", dir=workdir)
    inp = os.path.join(d, "hostile.pt")
    out = os.path.join(d, "out.safetensors")
    r = Result()
    try:
        case.make(inp)
        st = os.stat(inp)
        r.size, r.allocated = st.st_size, st.st_blocks * 512
        cmd = [binary, "convert", inp, out, "--sandbox", sandbox] + case.args
        use_time = os.access(GNU_TIME, os.X_OK)
        with tempfile.NamedTemporaryFile(dir=workdir) as tfile, \
                tempfile.TemporaryFile() as err:
            if use_time:
                cmd = [GNU_TIME, "-q", "-f", "%U %S %M", "-o", tfile.name] + cmd
            t0 = time.perf_counter()
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=err, start_new_session=True)
            host = None if use_time else p.pid
            host_hwm = 0
            child_hwm = {}
            tree_rss = 0
            killed = False
            while True:
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    break
                tree = children_of([p.pid])
                if host is None:
                    # the host is the child of GNU time (the first one seen)
                    host = next((c for c in sorted(tree) if parent_of(c) == p.pid), None)
                total = 0
                for c in tree | ({host} if host else set()):
                    cs = proc_status(c)
                    if not cs:
                        continue
                    if c == host:
                        host_hwm = max(host_hwm, cs[0])
                    else:
                        child_hwm[c] = max(child_hwm.get(c, 0), cs[0])
                    total += cs[1]
                tree_rss = max(tree_rss, total)
                if time.perf_counter() - t0 > HARD_TIMEOUT and not killed:
                    os.killpg(p.pid, signal.SIGKILL)
                    killed = True
                time.sleep(0.003)
            r.seconds = time.perf_counter() - t0
            p.returncode = os.waitstatus_to_exitcode(status)
            r.code = p.returncode
            err.seek(0)
            r.stderr = err.read().decode("utf-8", "replace")
            if use_time:
                tfile.seek(0)
                lines = tfile.read().decode().split()
                # GNU time's child is the host: its ru_maxrss covers the host and the worker
                r.maxrss = int(lines[-1]) if lines else ru.ru_maxrss
                r.cpu = float(lines[-3]) + float(lines[-2]) if lines else None
            else:
                # includes this Python process's RSS at fork time (see the docstring)
                r.maxrss = ru.ru_maxrss
                r.cpu = ru.ru_utime + ru.ru_stime
        r.host_hwm = host_hwm
        r.child_hwm = max(child_hwm.values(), default=0)
        r.tree_rss = tree_rss
        if sandbox in ("native", "both"):
            # a host never sampled (a run of a few ms) is counted as large as ru_maxrss
            r.peak_kib = max((r.host_hwm or r.maxrss) + r.maxrss, r.tree_rss)
        else:
            r.peak_kib = max(r.maxrss, r.host_hwm, r.tree_rss)
        r.leftover = sorted(set(os.listdir(d)) - {"hostile.pt"})
        r.output_exists = os.path.exists(out)
    finally:
        for name in os.listdir(d):
            path = os.path.join(d, name)
            if os.path.isdir(path):
                subprocess.run(["rm", "-rf", path])
            else:
                os.unlink(path)
        os.rmdir(d)
    r.message = first_message_line(r.stderr, inp)
    problems = []
    if r.code != case.code:
        problems.append(f"exit {r.code}, expected {case.code}")
    if case.expect.lower() not in r.stderr.lower():
        problems.append(f"message does not mention {case.expect!r}")
    if "panick" in r.stderr:
        problems.append("panic")
    if r.output_exists:
        problems.append("output file exists")
    if r.leftover:
        problems.append(f"left behind: {r.leftover}")
    if r.seconds > MAX_SECONDS:
        problems.append(f"{r.seconds:.1f} s > {MAX_SECONDS:.0f} s")
    if r.peak_kib / KiB > MAX_MIB:
        problems.append(f"{r.peak_kib / KiB:.0f} MiB > {MAX_MIB:.0f} MiB")
    r.problems = problems
    if verbose:
        cpu = f"{r.cpu:.2f}" if r.cpu is not None else "?"
        print(f"  [{sandbox}] {case.cls}: {case.label} (ended by: {case.limit}): "
              f"{r.seconds:.2f} s ({cpu} CPU s), host VmHWM "
              f"{host_hwm / KiB:.1f} MiB, worker VmHWM (sampled) {r.child_hwm / KiB:.1f} MiB, "
              f"ru_maxrss {r.maxrss / KiB:.1f} MiB, sampled tree RSS "
              f"{r.tree_rss / KiB:.1f} MiB", file=sys.stderr)
        if problems:
            print(f"    stderr: {r.stderr.strip()}", file=sys.stderr)
    return r


def parent_of(pid):
    stat = read_proc(pid, "stat")
    if stat is None:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[1])


def first_message_line(stderr, inp):
    """The first line of the error (findings and warnings come before it), without the
    `modelguard: error: PATH: ` prefix."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("modelguard: error:")]
    for line in errors or lines:
        if line:
            line = line.replace("modelguard: error: ", "", 1)
            return line.replace(inp + ": ", "", 1).replace(inp, "IN")
    return ""


def human(n):
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def size_cell(r):
    if r.allocated < r.size // 2:
        return f"{human(r.size)} (sparse, {human(r.allocated)} on disk)"
    return human(r.size)


def esc(text):
    return text.replace("|", "\\|")


def supports_wasi(binary, workdir):
    """Probe `--sandbox wasi` once (this also warms the compiled-module cache)."""
    d = tempfile.mkdtemp(prefix="probe-", dir=workdir)
    inp = os.path.join(d, "p.pt")
    with open(inp, "wb") as f:
        f.write(b"\x80\x02X\xf0\xff\xff\xff.")
    r = subprocess.run([binary, "convert", inp, os.path.join(d, "o.safetensors"),
                        "--sandbox", "wasi"], capture_output=True, text=True)
    subprocess.run(["rm", "-rf", d])
    return r.returncode == 2 and "exceeds" in r.stderr


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default="target/release/modelguard")
    ap.add_argument("--sandbox", default="native", choices=["native", "wasi", "both", "none"])
    ap.add_argument("--also-wasi", action="store_true",
                    help="run every case a second time with --sandbox wasi (second column set)")
    ap.add_argument("--only", help="run only the cases whose class or input contains this")
    ap.add_argument("--tmp", help="folder for the inputs (default: the system temp folder)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    workdir = tempfile.mkdtemp(prefix="hostile-bounds-", dir=args.tmp)
    sandboxes = [args.sandbox]
    if args.also_wasi and args.sandbox != "wasi":
        if supports_wasi(binary, workdir):
            sandboxes.append("wasi")
        else:
            print("note: this binary cannot run --sandbox wasi; native only", file=sys.stderr)
    elif args.sandbox in ("wasi", "both"):
        supports_wasi(binary, workdir)  # warm the module cache
    selected = [c for c in cases()
                if not args.only or args.only.lower() in (c.cls + " " + c.label).lower()]
    rows = []
    failed = 0
    try:
        for case in selected:
            results = []
            for sb in sandboxes:
                r = run_case(binary, case, sb, workdir, args.verbose)
                results.append(r)
                if r.problems:
                    failed += 1
                    print(f"FAIL [{sb}] {case.cls}: {case.label}: {'; '.join(r.problems)}",
                          file=sys.stderr)
            rows.append((case, results))
    finally:
        os.rmdir(workdir)
    head = "| class | input | size on disk |"
    rule = "|---|---|---|"
    for sb in sandboxes:
        tag = "" if len(sandboxes) == 1 else f" ({sb})"
        head += f" exit{tag} | time (s){tag} | peak RSS (MiB){tag} |"
        rule += "---:|---:|---:|"
    head += " message |"
    rule += "---|"
    print(head)
    print(rule)
    for case, results in rows:
        line = f"| {case.cls} | {esc(case.label)} | {size_cell(results[0])} |"
        for r in results:
            mark = " ✗" if r.problems else ""
            line += f" {r.code}{mark} | {r.seconds:.2f} | {r.peak_kib / KiB:.1f} |"
        line += f" {esc(results[0].message)} |"
        print(line)
    print()
    n = len(rows) * len(sandboxes)
    if failed:
        print(f"{failed} of {n} runs broke a bound or misbehaved (✗; details on stderr)")
        sys.exit(1)
    print(f"all {n} runs: the expected exit, a message naming the problem, nothing left behind, "
          f"under {MAX_SECONDS:.0f} s and {MAX_MIB:.0f} MiB")


if __name__ == "__main__":
    main()
