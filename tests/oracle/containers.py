"""The container mutator: real checkpoints with their STRUCTURE rewritten (docs/oracle.md,
"Containers").

The bases are real files written by the real libraries (tests/fixtures/models: torch.save zip
checkpoints, a TorchScript archive, legacy streams, a legacy TAR, .npy and .npz files written by
numpy, plain and zlib-compressed joblib dumps, plain pickles). A mutant keeps the payload and
rewrites the container around it: duplicate and case-twin member names, local headers that
disagree with the central directory, data descriptors, ZIP64 fields that disagree with the
32-bit ones, extra end records and central directories, bytes before and after the archive,
byte-order records, storage keys of other Python types, storages re-typed, pickles appended,
.npy header dict variants, records torch requires (version, byteorder, .storage_alignment)
rewritten or removed.

Each mutant names the class of rule it probes (the fixture folder a counterexample goes to):

  lookup         which member a name selects (case, duplicates, roots, NUL, the TorchScript and
                 zip/legacy/TAR decisions, numpy's key -> member map)
  zip-reader     which zip implementation (miniz for torch, CPython zipfile for numpy): end
                 records, central directories, ZIP64, prefixes, descriptors, local headers
  storage-keys   storage keys and persistent ids of other Python types
  trailing-data  bytes and pickles after what the loader reads
  byte-order     byteorder records, re-typed storages, '>' descrs
  header-grammar .npy header dicts, version and other records torch parses
  compression    joblib's zlib/gzip wrappers

Everything is a pure function of (seed, index): `make(seed, i)` is reproducible. Nothing here
loads anything: the bytes go to the real loaders in the sandbox (worker.py) and to modelguard.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import struct
import tarfile
import zipfile
import zlib

import gen
import pk

REPO = gen.REPO
MODELS = os.path.join(REPO, "tests", "fixtures", "models")

BASES = {
    "torchzip": ["sd_sequential.pt", "tied.pt", "views.pt", "zip_proto4.pt", "zip_big_endian.pt",
                 "zip_deflated.pt", "all_dtypes.pt", "training_checkpoint.pth", "zip_no_crc.pt",
                 "zip_root_archive.pt", "numpy_in_torch_p2.pt"],
    "torchscript": ["scripted.pt"],
    "legacy": ["legacy_stream.pt"],
    "tar": ["legacy_tar.pt"],
    "npy": ["npy/f32_c.npy", "npy/be_i4.npy", "npy/f64_fortran.npy", "npy/u16.npy", "npy/v2_i8.npy",
            "npy/bool.npy", "npy/f16_scalar.npy"],
    "npz": ["npz/arrays.npz", "npz/arrays_compressed.npz"],
    "joblib": ["joblib/dict.joblib", "joblib/list_compress0.joblib"],
    "joblibz": ["joblib/dict_zlib.joblib"],
    "pickle": ["plain_pickle.pkl", "two_pickles.pkl"],
}

_CACHE: dict = {}


def base(rel: str) -> bytes:
    if rel not in _CACHE:
        with open(os.path.join(MODELS, rel), "rb") as f:
            _CACHE[rel] = f.read()
    return _CACHE[rel]


# --------------------------------------------------------------------------------------------
# a zip model: members with their local and central fields, written back with any disagreement
# --------------------------------------------------------------------------------------------

class Member:
    """One archive member. Central fields; `l*` overrides what the local header says."""

    def __init__(self, name: bytes, data: bytes, method: int = 0, flags: int = 0, crc: int | None = None,
                 usize: int | None = None, ext_attr: int = 0, vmade: int = 0, vneed: int = 0,
                 lextra: bytes = b"", cextra: bytes = b""):
        self.name = name
        self.data = data  # as stored (deflated when method 8)
        self.method = method
        self.flags = flags
        self.crc = zlib.crc32(data) if crc is None else crc
        self.usize = len(data) if usize is None else usize
        self.csize = len(data)
        self.ext_attr = ext_attr
        self.vmade, self.vneed = vmade, vneed
        self.lextra, self.cextra = lextra, cextra
        self.comment = b""
        self.lname = None
        self.lmethod = self.lflags = self.lcrc = self.lcsize = self.lusize = None
        self.coffset = None  # central local-header offset override
        self.descriptor = b""
        self.in_cd = True
        self.in_local = True

    def copy(self) -> "Member":
        m = Member(self.name, self.data)
        m.__dict__.update(self.__dict__)
        return m

    def payload(self) -> bytes:
        """The uncompressed bytes."""
        if self.method == 8:
            return zlib.decompressobj(-15).decompress(self.data)
        return self.data

    def set_payload(self, raw: bytes, method: int | None = None):
        method = self.method if method is None else method
        self.method = method
        if method == 8:
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            self.data = c.compress(raw) + c.flush()
        else:
            self.data = raw
        self.crc = zlib.crc32(raw)
        self.usize = len(raw)
        self.csize = len(self.data)


def read_zip(b: bytes) -> list:
    """The members of a (clean, real) archive in central-directory order."""
    out = []
    with zipfile.ZipFile(io.BytesIO(b)) as z:
        for i in z.infolist():
            lh = i.header_offset
            n, e = struct.unpack("<HH", b[lh + 26:lh + 30])
            start = lh + 30 + n + e
            m = Member(i.filename.encode("utf-8") if i.flag_bits & 0x800 else i.filename.encode("cp437"),
                       b[start:start + i.compress_size], i.compress_type, i.flag_bits & ~0x8, i.CRC,
                       i.file_size, i.external_attr, i.create_version | (i.create_system << 8),
                       i.extract_version, lextra=b[lh + 30 + n:start], cextra=i.extra)
            out.append(m)
    return out


class Layout:
    def __init__(self):
        self.local = []  # offset of each member's local header
        self.cd_start = 0
        self.cd_end = 0
        self.eocd = 0


def write_zip(members: list, *, prefix: bytes = b"", offset_base: int = 0, zip64: bool = False,
              comment: bytes = b"", eocd_over: dict | None = None, z64_over: dict | None = None,
              cd_order: list | None = None, suffix: bytes = b"", z64_locator_at: int | None = None,
              between: bytes = b"", cd_extra: bytes = b"") -> tuple:
    """Bytes of the archive and where its structures are. `offset_base` is added to every
    offset the archive records (0: offsets relative to the start of the archive proper, which
    is what a prepended `prefix` breaks; len(prefix): absolute offsets)."""
    lay = Layout()
    out = bytearray(prefix)
    for m in members:
        lay.local.append(len(out))
        if not m.in_local:
            continue
        name = m.name if m.lname is None else m.lname
        flags = m.flags if m.lflags is None else m.lflags
        method = m.method if m.lmethod is None else m.lmethod
        crc = m.crc if m.lcrc is None else m.lcrc
        cs = m.csize if m.lcsize is None else m.lcsize
        us = m.usize if m.lusize is None else m.lusize
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", max(m.vneed, 20 if method == 8 else 10), flags,
                           method, 0, 0x21, crc, cs & 0xFFFFFFFF, us & 0xFFFFFFFF, len(name), len(m.lextra))
        out += name + m.lextra + m.data + m.descriptor
    out += between
    lay.cd_start = len(out)
    order = cd_order if cd_order is not None else list(range(len(members)))
    n_cd = 0
    for idx in order:
        m = members[idx]
        if not m.in_cd:
            continue
        n_cd += 1
        off = (lay.local[idx] - len(prefix) + offset_base) if m.coffset is None else m.coffset
        cs, us, off32 = m.csize, m.usize, off
        if cs > 0xFFFFFFFF:
            cs = 0xFFFFFFFF
        if us > 0xFFFFFFFF:
            us = 0xFFFFFFFF
        if off32 > 0xFFFFFFFF:
            off32 = 0xFFFFFFFF
        out += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", m.vmade, max(m.vneed, 20 if m.method == 8 else 10),
                           m.flags, m.method, 0, 0x21, m.crc, cs, us, len(m.name), len(m.cextra), len(m.comment),
                           0, 0, m.ext_attr, off32)
        out += m.name + m.cextra + m.comment
    out += cd_extra
    lay.cd_end = len(out)
    cd_size = lay.cd_end - lay.cd_start
    cd_off = lay.cd_start - len(prefix) + offset_base
    eo = {"disk": 0, "cd_disk": 0, "on_disk": n_cd, "total": n_cd, "size": cd_size, "offset": cd_off}
    if zip64:
        z = {"size_rec": 44, "made": 0x1E, "need": 45, "disk": 0, "cd_disk": 0, "on_disk": n_cd, "total": n_cd,
             "size": cd_size, "offset": cd_off}
        z.update(z64_over or {})
        z64_pos = len(out)
        out += struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", z["size_rec"], z["made"], z["need"], z["disk"],
                           z["cd_disk"], z["on_disk"], z["total"], z["size"], z["offset"])
        loc = z64_pos - len(prefix) + offset_base if z64_locator_at is None else z64_locator_at
        out += struct.pack("<4sIQI", b"PK\x06\x07", 0, loc, 1)
        eo.update({"on_disk": min(n_cd, 0xFFFF), "total": min(n_cd, 0xFFFF)})
    eo.update(eocd_over or {})
    lay.eocd = len(out)
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", eo["disk"], eo["cd_disk"], eo["on_disk"] & 0xFFFF,
                       eo["total"] & 0xFFFF, eo["size"] & 0xFFFFFFFF, eo["offset"] & 0xFFFFFFFF,
                       eo.get("comment_len", len(comment)) & 0xFFFF)
    out += comment + suffix
    return bytes(out), lay


def root_of(members) -> bytes:
    n = members[0].name
    return n[:n.index(b"/") + 1] if b"/" in n else b""


def find(members, rel: bytes):
    r = root_of(members)
    for i, m in enumerate(members):
        if m.name == r + rel:
            return i
    return None


def xor_bytes(b: bytes, k: int = 0x5A) -> bytes:
    return bytes(x ^ k for x in b)


def case_flip(name: bytes, rng) -> bytes:
    """The same name with the case of some ASCII letters changed (at least one)."""
    letters = [i for i, c in enumerate(name) if chr(c).isalpha()]
    if not letters:
        return name
    b = bytearray(name)
    picks = rng.sample(letters, k=max(1, min(len(letters), rng.randint(1, 3))))
    for i in picks:
        b[i] ^= 0x20
    return bytes(b)


# --------------------------------------------------------------------------------------------
# pickle edits on a torch data.pkl: the persistent ids ('storage', type, key, location, numel)
# --------------------------------------------------------------------------------------------

STR_OPS = ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8", "BINSTRING", "SHORT_BINSTRING", "STRING")


def pids(ops):
    """[(mark index, [element op indices], tuple index)] of every 5-tuple before a BINPERSID."""
    out = []
    for i, (n, _) in enumerate(ops):
        if n != "BINPERSID":
            continue
        j = i - 1
        while j >= 0 and ops[j][0] in ("BINPUT", "LONG_BINPUT", "MEMOIZE", "PUT"):
            j -= 1
        if j < 0 or ops[j][0] != "TUPLE":
            continue
        k = j - 1
        elems = []
        while k >= 0 and ops[k][0] != "MARK":
            if ops[k][0] not in ("BINPUT", "LONG_BINPUT", "MEMOIZE", "PUT"):
                elems.append(k)
            k -= 1
        if k < 0 or len(elems) != 5:
            continue
        out.append((k, list(reversed(elems)), j))
    return out


def memo_values(ops):
    """What each memo slot holds when it is a plain string or global (for BINGET resolution)."""
    memo, last, count = {}, None, 0
    for n, a in ops:
        if n in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[a] = last
        elif n == "MEMOIZE":
            memo[count] = last
            count += 1
        if n in STR_OPS or n in ("GLOBAL",):
            last = (n, a)
        elif n not in ("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"):
            last = (n, a)
    return memo


def resolve(ops, i, memo):
    n, a = ops[i]
    if n in ("BINGET", "LONG_BINGET", "GET"):
        return memo.get(a)
    return (n, a)


SIZES = {"DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "LongStorage": 8,
         "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1,
         "ComplexFloatStorage": 8, "ComplexDoubleStorage": 16}


def key_as(kind: str, key: str):
    """The op that pushes `key` as another Python type."""
    if kind == "int" and key.isdigit():
        v = int(key)
        return ("BININT1", v) if v < 256 else ("BININT", v)
    if kind == "long" and key.isdigit():
        return ("LONG1", int(key))
    if kind == "float" and key.isdigit():
        return ("BINFLOAT", float(key))
    if kind == "bool" and key in ("0", "1"):
        return ("NEWTRUE", None) if key == "1" else ("NEWFALSE", None)
    if kind == "bytes":
        return ("SHORT_BINBYTES", key.encode())
    if kind == "zero-padded" and key.isdigit():
        return ("BINUNICODE", "0" + key)
    return ("BINUNICODE", key)


def storage_info(ops, elems, memo):
    typ = resolve(ops, elems[1], memo)
    key = resolve(ops, elems[2], memo)
    num = resolve(ops, elems[4], memo)
    tname = typ[1][1] if typ and typ[0] == "GLOBAL" else None
    k = key[1] if key and key[0] in STR_OPS else None
    numel = num[1] if num and num[0] in ("BININT1", "BININT2", "BININT", "LONG1") else None
    return tname, k, numel


# --------------------------------------------------------------------------------------------
# mutants
# --------------------------------------------------------------------------------------------

class Mutant:
    def __init__(self, data: bytes, cls: str, kind: str, note: str, container: str):
        self.data, self.cls, self.kind, self.note, self.container = data, cls, kind, note, container


def _zip_rewrite(rng, b, members, **kw):
    z64 = b"PK\x06\x06" in b[-200:]
    return write_zip(members, zip64=kw.pop("zip64", z64), **kw)[0]


def m_dup_record(rng, b, container):
    """A second member of an existing record's name, with other content, before or after it."""
    ms = read_zip(b)
    i = rng.randrange(len(ms))
    d = ms[i].copy()
    raw = d.payload()
    d.set_payload(xor_bytes(raw) if raw else b"\x00")
    if d.name.endswith((b"data.pkl", b"constants.pkl")) and rng.random() < 0.7:
        d.set_payload(raw.replace(b"weight", b"wEight", 1) if b"weight" in raw else raw + b"\x00")
    pos = rng.choice([i, i + 1, len(ms)])
    ms.insert(pos, d)
    if rng.random() < 0.3:
        # three of them
        e = d.copy()
        e.set_payload(xor_bytes(raw, 0x33) if raw else b"\x01")
        ms.insert(rng.randrange(len(ms) + 1), e)
    return Mutant(_zip_rewrite(rng, b, ms), "lookup", "dup-record",
                  f"duplicate of {ms[pos].name!r} at {pos}", container)


def m_case_twin(rng, b, container):
    """A member whose name differs from a record's only in ASCII case (miniz's lookup ignores case;
    CPython's zipfile and numpy's key map do not)."""
    ms = read_zip(b)
    r = root_of(ms)
    choices = [m.name for m in ms]
    special = [r + n for n in (b"constants.pkl", b"byteorder", b"version", b".data/version", b"data.pkl",
                               b".storage_alignment")] if r else []
    target = rng.choice(choices + special)
    twin = case_flip(target, rng)
    src = next((m for m in ms if m.name == target), None)
    m = (src.copy() if src else Member(twin, b""))
    m.name = twin
    raw = src.payload() if src else b""
    tail = target.rsplit(b"/", 1)[-1]
    if tail == b"byteorder":
        raw = b"big" if raw != b"big" else b"little"
    elif tail == b"version":
        raw = rng.choice([b"3\n", b"99\n", b"0\n", b"2\n"])
    elif tail == b"constants.pkl":
        raw = b"\x80\x02).".replace(b")", b")") if rng.random() < 0.5 else pk_empty_tuple()
    elif tail == b".storage_alignment":
        raw = b"abc"
    elif raw:
        raw = xor_bytes(raw) if not tail.endswith(b".pkl") and not tail.endswith(b".npy") else raw
    m.set_payload(raw, src.method if src else 0)
    pos = rng.randrange(len(ms) + 1) if rng.random() < 0.8 else 0
    ms.insert(pos, m)
    return Mutant(_zip_rewrite(rng, b, ms), "lookup", "case-twin", f"{twin!r} beside {target!r} at {pos}",
                  container)


def pk_empty_tuple():
    return b"\x80\x02)."


def m_torchscript_decision(rng, b, container):
    """constants.pkl added to a checkpoint, or renamed/removed in a TorchScript archive: torch.load
    re-dispatches to torch.jit.load exactly when a record is named `constants.pkl`."""
    ms = read_zip(b)
    r = root_of(ms)
    i = find(ms, b"constants.pkl")
    if i is None:
        name = rng.choice([b"constants.pkl", b"Constants.pkl", b"CONSTANTS.PKL", b"constants.pkl\x00x",
                           b"constants.pkl/", b"code/constants.pkl"])
        m = Member(r + name, b"")
        m.set_payload(pk_empty_tuple())
        ms.insert(rng.randrange(len(ms) + 1), m)
        note = f"added {name!r}"
    else:
        how = rng.choice(["rename", "remove", "nul", "dir"])
        if how == "remove":
            del ms[i]
        elif how == "rename":
            ms[i].name = r + rng.choice([b"Constants.pkl", b"constants.PKL", b"constants.pk"])
        elif how == "nul":
            ms[i].name = r + b"constants.pkl\x00"
        else:
            ms[i].ext_attr |= 0x10
        note = f"constants.pkl: {how}"
    return Mutant(_zip_rewrite(rng, b, ms), "lookup", "torchscript-decision", note, container)


def m_roots(rng, b, container):
    """Entries outside the root folder taken from the first entry, a new first entry, NUL bytes."""
    ms = read_zip(b)
    r = root_of(ms)
    how = rng.choice(["foreign-first", "foreign-last", "no-slash-first", "rename-all", "nul-twin", "long-name",
                      "reorder"])
    if how == "foreign-first":
        ms.insert(0, Member(b"other/data.pkl", ms[find(ms, b"data.pkl") or 0].data))
    elif how == "foreign-last":
        ms.append(Member(b"other/x", b"x"))
    elif how == "no-slash-first":
        ms.insert(0, Member(b"README", b"hello"))
    elif how == "rename-all":
        new = rng.choice([b"archive/", b"A/", b"x y/", b"\xc3\xa9/"])
        for m in ms:
            if m.name.startswith(r):
                m.name = new + m.name[len(r):]
    elif how == "nul-twin":
        i = rng.randrange(len(ms))
        t = ms[i].copy()
        t.name = ms[i].name + b"\x00junk"
        raw = t.payload()
        t.set_payload(xor_bytes(raw) if raw else b"x")
        ms.insert(rng.choice([i, i + 1]), t)
    elif how == "long-name":
        t = Member(r + b"z" * rng.choice([300, 520, 70000 // 2]), b"x")
        ms.insert(rng.randrange(len(ms) + 1), t)
    else:
        rng.shuffle(ms)
    return Mutant(_zip_rewrite(rng, b, ms), "lookup", "roots", how, container)


def m_local_central(rng, b, container):
    """The local header says something else than the central directory."""
    ms = read_zip(b)
    i = rng.randrange(len(ms))
    m = ms[i]
    how = rng.choice(["name", "name-case", "method", "flags", "sizes", "crc", "extra-grow", "extra-shrink"])
    if how == "name":
        m.lname = m.name[:-1] + bytes([(m.name[-1] + 1) % 256])
    elif how == "name-case":
        m.lname = case_flip(m.name, rng)
    elif how == "method":
        m.lmethod = 8 if m.method == 0 else 0
    elif how == "flags":
        m.lflags = m.flags ^ rng.choice([0x8, 0x800, 0x1, 0x2])
    elif how == "sizes":
        m.lcsize = m.csize + rng.choice([-1, 1, 7])
        m.lusize = m.usize + rng.choice([-1, 1, 7])
    elif how == "crc":
        m.lcrc = m.crc ^ 0xDEADBEEF
    elif how == "extra-grow":
        m.lextra = m.lextra + struct.pack("<HH", 0xCAFE, 4) + b"ABCD"
    else:
        m.lextra = b""
    return Mutant(_zip_rewrite(rng, b, ms), "zip-reader", "local-central", f"{how} of {m.name!r}", container)


def m_descriptor(rng, b, container):
    """Data descriptors: flag bit 3, zero local sizes, a descriptor after the data (honest or not)."""
    ms = read_zip(b)
    picks = rng.sample(range(len(ms)), k=rng.randint(1, len(ms)))
    lie = rng.random() < 0.4
    for i in picks:
        m = ms[i]
        m.flags |= 0x8
        m.lcrc, m.lcsize, m.lusize = 0, 0, 0
        crc, cs, us = m.crc, m.csize, m.usize
        if lie:
            cs, us, crc = cs + 3, us + 3, crc ^ 1
        sig = b"PK\x07\x08" if rng.random() < 0.7 else b""
        m.descriptor = sig + (struct.pack("<IQQ", crc, cs, us) if rng.random() < 0.2 else struct.pack("<III", crc, cs, us))
    return Mutant(_zip_rewrite(rng, b, ms), "zip-reader", "descriptor",
                  f"{len(picks)} members with descriptors{' (lying)' if lie else ''}", container)


def m_zip64_extra(rng, b, container):
    """ZIP64 extended information in the central directory, agreeing or not with the data."""
    ms = read_zip(b)
    i = rng.randrange(len(ms))
    m = ms[i]
    fields = rng.choice([("u",), ("c",), ("o",), ("u", "c"), ("u", "c", "o")])
    lay_guess = None
    vals = []
    how = rng.choice(["true", "wrong-size", "wrong-offset", "short", "not-saturated", "two-fields"])
    # the 64-bit values (the offset is filled in after layout)
    if "u" in fields:
        vals.append(("u", m.usize + (5 if how == "wrong-size" else 0)))
    if "c" in fields:
        vals.append(("c", m.csize + (5 if how == "wrong-size" else 0)))
    ms_layout = write_zip(ms)[1]
    if "o" in fields:
        off = ms_layout.local[i]
        if how == "wrong-offset":
            j = rng.randrange(len(ms))
            off = ms_layout.local[j]
            lay_guess = j
        vals.append(("o", off))
    payload = b"".join(struct.pack("<Q", v) for _, v in vals)
    if how == "short":
        payload = payload[:-4]
    extra = struct.pack("<HH", 1, len(payload)) + payload
    if how == "two-fields":
        extra += struct.pack("<HH", 1, 8) + struct.pack("<Q", 0)
    m.cextra = extra + m.cextra
    data, _ = write_zip_saturated(ms, i, fields if how != "not-saturated" else ())
    return Mutant(data, "zip-reader", "zip64-extra", f"{how} {fields} on {m.name!r}"
                  + (f" (offset of #{lay_guess})" if lay_guess is not None else ""), container)


def write_zip_saturated(ms, i, fields):
    """write_zip, then set member i's central 32-bit fields in `fields` to 0xFFFFFFFF."""
    data, lay = write_zip(ms, zip64=True)
    b = bytearray(data)
    # walk the central directory to member i
    pos = lay.cd_start
    k = 0
    order = [j for j in range(len(ms)) if ms[j].in_cd]
    for j in order:
        n, e, c = struct.unpack("<HHH", b[pos + 28:pos + 34])
        if j == i:
            if "c" in fields:
                b[pos + 20:pos + 24] = b"\xff\xff\xff\xff"
            if "u" in fields:
                b[pos + 24:pos + 28] = b"\xff\xff\xff\xff"
            if "o" in fields:
                b[pos + 42:pos + 46] = b"\xff\xff\xff\xff"
        pos += 46 + n + e + c
        k += 1
    return bytes(b), lay


def m_end_records(rng, b, container):
    """ZIP64 end records that disagree with the 32-bit one, a second central directory, end
    records in the comment or after the archive, counts that disagree."""
    ms = read_zip(b)
    alt = [m.copy() for m in ms]
    # the alternative directory: another member's bytes under a data member's name
    k = rng.randrange(len(alt))
    j = rng.randrange(len(alt))
    how = rng.choice(["z64-offset", "z64-locator-elsewhere", "second-cd-comment", "second-cd-after",
                      "eocd-tail-short", "count-low", "count-high", "size-big", "size-small",
                      "z64-count", "no-z64-sig", "comment-len-long", "comment-len-short", "cd-hidden-entry"])
    if how in ("z64-offset", "z64-locator-elsewhere", "second-cd-comment", "second-cd-after"):
        data, lay = write_zip(ms, zip64=False)
        # a second central directory, where entry k points at member j's local header
        cd2 = bytearray()
        for idx, m in enumerate(ms):
            off = lay.local[j] if idx == k else lay.local[idx]
            cd2 += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", m.vmade, 20, m.flags, ms[j if idx == k else idx].method,
                               0, 0x21, ms[j if idx == k else idx].crc, ms[j if idx == k else idx].csize,
                               ms[j if idx == k else idx].usize, len(m.name), 0, 0, 0, 0, m.ext_attr, off)
            cd2 += m.name
        base_len = lay.eocd
        if how == "z64-offset":
            # 32-bit end record -> first directory; ZIP64 end record -> second directory
            out = bytearray(data[:lay.cd_end])
            cd2_off = len(out)
            out += cd2
            z64 = len(out)
            out += struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 0x1E, 45, 0, 0, len(ms), len(ms), len(cd2), cd2_off)
            out += struct.pack("<4sIQI", b"PK\x06\x07", 0, z64, 1)
            out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(ms), len(ms), lay.cd_end - lay.cd_start,
                               lay.cd_start, 0)
            return Mutant(bytes(out), "zip-reader", "end-records", f"{how}: #{k} -> #{j}", container)
        if how == "z64-locator-elsewhere":
            # the locator points at a ZIP64 record for directory 2; the adjacent one is for directory 1
            out = bytearray(data[:lay.cd_end])
            cd2_off = len(out)
            out += cd2
            far = len(out)
            out += struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 0x1E, 45, 0, 0, len(ms), len(ms), len(cd2), cd2_off)
            near = len(out)
            out += struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 0x1E, 45, 0, 0, len(ms), len(ms),
                               lay.cd_end - lay.cd_start, lay.cd_start)
            out += struct.pack("<4sIQI", b"PK\x06\x07", 0, far, 1)
            out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
            _ = near
            return Mutant(bytes(out), "zip-reader", "end-records", f"{how}: #{k} -> #{j}", container)
        # second directory + end record after (or inside the comment of) the first end record
        out = bytearray(data[:base_len])
        eocd1 = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(ms), len(ms), lay.cd_end - lay.cd_start,
                            lay.cd_start, 0)
        cd2_off = len(out) + 22
        tail = bytes(cd2) + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(ms), len(ms), len(cd2), cd2_off, 0)
        if how == "second-cd-comment":
            eocd1 = eocd1[:-2] + struct.pack("<H", len(tail))
        out += eocd1 + tail
        return Mutant(bytes(out), "zip-reader", "end-records", f"{how}: #{k} -> #{j}", container)
    if how == "eocd-tail-short":
        data, _ = write_zip(ms, zip64=rng.random() < 0.5)
        return Mutant(data + b"PK\x05\x06" + b"\x00" * rng.randint(0, 17), "zip-reader", "end-records", how, container)
    if how in ("count-low", "count-high", "size-big", "size-small", "comment-len-long", "comment-len-short"):
        over = {"count-low": {"total": len(ms) - 1, "on_disk": len(ms) - 1},
                "count-high": {"total": len(ms) + 1, "on_disk": len(ms) + 1},
                "comment-len-long": {"comment_len": 9},
                "comment-len-short": {"comment_len": 0}}.get(how, {})
        comment = b"abc" if how == "comment-len-short" else b""
        data, lay = write_zip(ms, zip64=False, comment=comment)
        if how in ("size-big", "size-small"):
            d = bytearray(data)
            cur = struct.unpack("<I", d[lay.eocd + 12:lay.eocd + 16])[0]
            d[lay.eocd + 12:lay.eocd + 16] = struct.pack("<I", cur + (46 if how == "size-big" else -1))
            return Mutant(bytes(d), "zip-reader", "end-records", how, container)
        data, lay = write_zip(ms, zip64=False, comment=comment, eocd_over=over)
        return Mutant(data, "zip-reader", "end-records", how, container)
    if how == "z64-count":
        data, _ = write_zip(ms, zip64=True, z64_over={"total": len(ms) - 1, "on_disk": len(ms) - 1})
        return Mutant(data, "zip-reader", "end-records", how, container)
    if how == "no-z64-sig":
        data, _ = write_zip(ms, zip64=True, z64_locator_at=0)
        return Mutant(data, "zip-reader", "end-records", how, container)
    # an entry in the directory beyond the count the end record declares
    extra = ms[k].copy()
    extra.name = ms[j].name
    data, lay = write_zip(ms + [extra], zip64=False, eocd_over={"total": len(ms), "on_disk": len(ms)})
    return Mutant(data, "zip-reader", "end-records", f"{how}: hidden twin of {ms[j].name!r}", container)


def m_prefix_suffix(rng, b, container):
    """Bytes before or after the archive (torch requires PK\\x03\\x04 at offset 0 and reads offsets
    as absolute; CPython's zipfile shifts them by the prefix it finds)."""
    ms = read_zip(b)
    how = rng.choice(["prefix-junk", "prefix-local-header", "prefix-absolute", "suffix-junk", "suffix-big",
                      "suffix-zip", "prefix-eocd"])
    z64 = b"PK\x06\x06" in b[-200:]
    if how.startswith("prefix"):
        if how == "prefix-junk":
            pre = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        elif how == "prefix-eocd":
            pre = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0, 0, 0, 0, 0)
        else:
            junk = Member(b"junk.bin", b"J" * rng.randint(0, 40))
            pre = write_zip([junk])[0]
            pre = pre[:pre.index(b"PK\x01\x02")]
        base_off = len(pre) if how == "prefix-absolute" else 0
        data, _ = write_zip(ms, prefix=pre, offset_base=base_off, zip64=z64)
        return Mutant(data, "zip-reader", "prefix-suffix", f"{how} ({len(pre)} bytes)", container)
    data, lay = write_zip(ms, zip64=z64)
    if how == "suffix-junk":
        return Mutant(data + bytes(rng.randrange(256) for _ in range(rng.randint(1, 100))), "zip-reader",
                      "prefix-suffix", how, container)
    if how == "suffix-big":
        return Mutant(data + b"\x00" * rng.choice([65536, 70000]), "zip-reader", "prefix-suffix", how, container)
    # a whole second archive appended, its offsets absolute in the combined file
    alt = [m.copy() for m in ms]
    i = rng.randrange(len(alt))
    raw = alt[i].payload()
    alt[i].set_payload(xor_bytes(raw) if raw else b"\x00")
    data2, _ = write_zip(alt, prefix=data, offset_base=len(data), zip64=z64)
    return Mutant(data2, "zip-reader", "prefix-suffix", f"{how}: member {alt[i].name!r} differs", container)


def m_crc_attr(rng, b, container):
    """Wrong CRC-32, the DOS directory attribute, recompression, a name ending in '/'."""
    ms = read_zip(b)
    i = rng.randrange(len(ms))
    m = ms[i]
    how = rng.choice(["crc", "crc", "dir-attr", "recompress", "store", "deflate-junk", "slash"])
    if how == "crc":
        m.crc ^= 0x1
    elif how == "dir-attr":
        m.ext_attr |= 0x10
    elif how == "recompress":
        m.set_payload(m.payload(), 8)
    elif how == "store":
        m.set_payload(m.payload(), 0)
    elif how == "deflate-junk":
        raw = m.payload()
        m.set_payload(raw, 8)
        m.data += b"\x00junk"
        m.csize = len(m.data)
    else:
        m.name = m.name + b"/"
    return Mutant(_zip_rewrite(rng, b, ms), "zip-reader", "crc-attr", f"{how} on {m.name!r}", container)


# ---- torch records ----

def m_records(rng, b, container):
    """The records torch reads besides data.pkl: version, .data/version, byteorder,
    .storage_alignment, .format_version, .data/serialization_id."""
    ms = read_zip(b)
    r = root_of(ms)
    rec = rng.choice(["version", "version", ".data/version", "byteorder", ".storage_alignment", ".format_version",
                      ".data/serialization_id"])
    values = {
        "version": [b"3", b"3\n", b" 3", b"\t3\n", b"+3", b"03", b"3abc", b"3 4", b"0", b"1", b"10", b"11", b"99",
                    b"-1", b"", b"abc", b"\n", b"3.0", b"18446744073709551617", b"0x3", None],
        ".data/version": [b"3\n", b"99\n", b"x", b"1", None],
        "byteorder": [b"little", b"big", b"Little", b"little\n", b"", b"BIG", None],
        ".storage_alignment": [b"64", b" 64\n", b"abc", b"6_4", b"-1", b"0", b"", None, b"\xff"],
        ".format_version": [b"1", b"0", b"x", b"", None],
        ".data/serialization_id": [b"", None, b"\xff" * 40],
    }[rec]
    v = rng.choice(values)
    i = find(ms, rec.encode())
    if v is None:
        if i is not None:
            del ms[i]
        note = f"{rec} removed"
    else:
        if i is None:
            m = Member(r + rec.encode(), b"")
            ms.insert(rng.randrange(1, len(ms) + 1), m)
            i = ms.index(m)
        ms[i].set_payload(v)
        note = f"{rec} = {v!r}"
    return Mutant(_zip_rewrite(rng, b, ms), "header-grammar", "records", note, container)


def _data_pkl(ms):
    i = find(ms, b"data.pkl")
    return i, ms[i].payload()


def m_storage_keys(rng, b, container):
    """Storage keys of other Python types (int, float, bool, bytes, padded strings), and two
    references to one record through keys that are equal or not in Python."""
    ms = read_zip(b)
    i, raw = _data_pkl(ms)
    ops = pk.decode(raw)
    ps = pids(ops)
    memo = memo_values(ops)
    if not ps:
        return None
    how = rng.choice(["retype-one", "retype-all", "alias-int", "alias-str", "alias-float"])
    kind = rng.choice(["int", "long", "float", "bool", "bytes", "zero-padded"])
    note = how
    if how in ("retype-one", "retype-all"):
        for (mark, el, _) in (ps if how == "retype-all" else [rng.choice(ps)]):
            _, key, _ = storage_info(ops, el, memo)
            if key is not None:
                ops[el[2]] = key_as(kind, key)
        note += f" -> {kind}"
    else:
        # the second tensor reads the first one's record, under a key of another type
        if len(ps) < 2:
            return None
        a, c = rng.sample(ps, 2)
        t1, k1, n1 = storage_info(ops, a[1], memo)
        t2, k2, n2 = storage_info(ops, c[1], memo)
        if k1 is None:
            return None
        ops[c[1][2]] = key_as({"alias-int": "int", "alias-str": "str", "alias-float": "float"}[how], k1)
        # same storage type and numel as the first reference
        ops[c[1][1]] = ("GLOBAL", ("torch", t1)) if t1 else ops[c[1][1]]
        if n1 is not None:
            ops[c[1][4]] = ("BININT", n1)
        if how == "alias-str":
            ops[a[1][2]] = key_as("int", k1)
        note += f": key {k1!r}"
    ms[i].set_payload(pk.encode(ops))
    return Mutant(_zip_rewrite(rng, b, ms), "storage-keys", "storage-keys", note, container)


def m_byte_order(rng, b, container):
    """A byteorder record and storages re-typed: torch swaps each storage by the element size of
    the dtype it is first loaded as, then views it with whatever dtype a tensor asks for."""
    ms = read_zip(b)
    i, raw = _data_pkl(ms)
    ops = pk.decode(raw)
    ps = pids(ops)
    memo = memo_values(ops)
    if not ps:
        return None
    how = rng.choice(["retype", "retype", "share-bytes", "flip-order"])
    order = rng.choice([b"big", b"big", b"little", None])
    note = how
    if how == "retype":
        mark, el, _ = rng.choice(ps)
        t, k, n = storage_info(ops, el, memo)
        if t in SIZES and n is not None:
            new = rng.choice([s for s in SIZES if s != t])
            nbytes = n * SIZES[t]
            if nbytes % SIZES[new] == 0 and rng.random() < 0.8:
                ops[el[4]] = ("BININT", nbytes // SIZES[new])
            ops[el[1]] = ("GLOBAL", ("torch", new))
            note += f" {k}: {t} -> {new}"
    elif how == "share-bytes":
        if len(ps) < 2:
            return None
        a, c = rng.sample(ps, 2)
        t1, k1, n1 = storage_info(ops, a[1], memo)
        t2, _, _ = storage_info(ops, c[1], memo)
        if k1 is None or t1 not in SIZES or n1 is None:
            return None
        new = rng.choice(list(SIZES))
        nbytes = n1 * SIZES[t1]
        if nbytes % SIZES[new]:
            return None
        ops[c[1][2]] = ("BINUNICODE", k1)
        ops[c[1][1]] = ("GLOBAL", ("torch", new))
        ops[c[1][4]] = ("BININT", nbytes // SIZES[new])
        note += f": record {k1} as {t1} and {new}"
    ms[i].set_payload(pk.encode(ops))
    j = find(ms, b"byteorder")
    if order is None:
        if j is not None:
            del ms[j]
    else:
        if j is None:
            ms.insert(1, Member(root_of(ms) + b"byteorder", order))
        else:
            ms[j].set_payload(order)
    note += f", byteorder {order!r}"
    return Mutant(_zip_rewrite(rng, b, ms), "byte-order", "byte-order", note, container)


def m_trailing_pickle(rng, b, container):
    """Bytes after data.pkl's STOP (torch reads one pickle and ignores them)."""
    ms = read_zip(b)
    i, raw = _data_pkl(ms)
    other = read_zip(base("zip_proto4.pt"))
    extra = rng.choice([b"junk", other[find(other, b"data.pkl")].payload(), raw])
    ms[i].set_payload(raw + extra)
    return Mutant(_zip_rewrite(rng, b, ms), "trailing-data", "trailing-pickle", f"{len(extra)} bytes after STOP",
                  container)


# ---- npz ----

def m_npz_names(rng, b, container):
    """numpy's key -> member map: full names win over names without `.npy`, the last of two
    members of one name wins (NameToInfo), names are cut at NUL and decoded as cp437 without
    the UTF-8 flag."""
    ms = read_zip(b)
    i = rng.randrange(len(ms))
    m = ms[i]
    other = ms[(i + 1) % len(ms)]
    how = rng.choice(["bare-name", "dup", "case", "nul", "cp437", "utf8-flag", "bad-utf8", "dir", "not-npy",
                      "dot-npy-npy"])
    t = other.copy()
    if how == "bare-name":
        t.name = m.name[:-4]
    elif how == "dup":
        t.name = m.name
    elif how == "case":
        t.name = case_flip(m.name, rng)
    elif how == "nul":
        t.name = m.name + b"\x00x"
    elif how == "cp437":
        t.name = b"w\x82ight.npy"
        t.flags &= ~0x800
    elif how == "utf8-flag":
        t.name = "wéight.npy".encode()
        t.flags |= 0x800 if rng.random() < 0.5 else 0
    elif how == "bad-utf8":
        t.name = b"w\xffight.npy"
        t.flags |= 0x800
    elif how == "dir":
        t = Member(b"d/", b"")
        t.ext_attr = 0x10
    elif how == "not-npy":
        t.name = b"notes.txt"
        t.set_payload(b"hello", t.method)
    else:
        t.name = m.name + b".npy"
    ms.insert(rng.choice([i, i + 1, len(ms)]), t)
    return Mutant(write_zip(ms)[0], "lookup", "npz-names", f"{how}: {t.name!r}", container)


def npy_header(d: str, version=(1, 0), pad_to=64, newline=True) -> bytes:
    h = d
    enc = "utf8" if version == (3, 0) else "latin1"
    hb = h.encode(enc)
    pre = 10 if version == (1, 0) else 12
    total = pre + len(hb) + (1 if newline else 0)
    pad = (-total) % pad_to if pad_to else 0
    hb = hb + b" " * pad + (b"\n" if newline else b"")
    ln = struct.pack("<H", len(hb)) if version == (1, 0) else struct.pack("<I", len(hb))
    return b"\x93NUMPY" + bytes(version) + ln + hb


def parse_npy(b: bytes):
    ver = (b[6], b[7])
    if ver == (1, 0):
        hl = struct.unpack("<H", b[8:10])[0]
        start = 10
    else:
        hl = struct.unpack("<I", b[8:12])[0]
        start = 12
    h = b[start:start + hl].decode("latin1")
    import ast
    d = ast.literal_eval(h)
    return ver, d, b[start + hl:]


HEADER_VARIANTS = [
    "{{'descr': {descr!r}, 'fortran_order': {fo}, 'shape': {shape}, }}",
    "{{'shape': {shape}, 'descr': {descr!r}, 'fortran_order': {fo}}}",
    "{{\"descr\": \"{descr}\", \"fortran_order\": {fo}, \"shape\": {shape}}}",
    "{{'descr':{descr!r},'fortran_order':{fo},'shape':{shape}}}",
    "{{'descr': {descr!r}, 'fortran_order': {fo}, 'shape': {shapelist}, }}",
    "{{'descr': {descr!r}, 'fortran_order': {fo}, 'shape': {shapeL}, }}",
    "{{'descr': {descr!r}, 'fortran_order': {foint}, 'shape': {shape}, }}",
    "{{'descr': {descr!r}, 'fortran_order': {fo}, 'shape': {shapeparen}, }}",
    "{{'descr': {descr!r}, 'fortran_order': {fo}, 'shape': {shape}, 'extra': 1}}",
    "{{'descr': {descr!r}, 'descr': '<i1', 'fortran_order': {fo}, 'shape': {shape}}}",
    "{{'descr': {descr!r}, 'fortran_order': {fo}, 'shape': {shape}, }} # comment",
    "{{'descr': {descr!r} , 'fortran_order' : {fo} , 'shape' : {shape} , }}",
    "{{'descr': {descr!r},\n 'fortran_order': {fo},\n 'shape': {shape}}}",
    "\n{{'descr': {descr!r}, 'fortran_order': {fo}, 'shape': {shape}}}",
    " \t{{'descr': {descr!r}, 'fortran_order': {fo}, 'shape': {shape}}}",
    "{{'descr': {descr!r}, 'fortran_order': {fo}, 'shape': {shapehex}, }}",
    "{{'descr': {descr!r}, 'fortran_order': {fo}, 'shape': {shapeunder}, }}",
    "{{'descr': {descr!r}, 'fortran_order': {fo}, 'shape': {shapeplus}, }}",
    "{{'descr': u{descr!r}, 'fortran_order': {fo}, 'shape': {shape}, }}",
    "{{'descr': {descrsplit}, 'fortran_order': {fo}, 'shape': {shape}, }}",
    "{{'descr': {descresc}, 'fortran_order': {fo}, 'shape': {shape}, }}",
    "{{'descr': {descr!r}, 'fortran_order': {fo}, 'shape': {shapebool}, }}",
    "{{'descr': {descr!r}, 'fortran_order': {fo}, 'shape': {shape}, }}\x0c",
    "{{'descr': {descr!r}, 'fortran_order': {fo}, 'shape': {shape}, }}\r\n",
    "({{'descr': {descr!r}, 'fortran_order': {fo}, 'shape': {shape}, }})",
    "dict(descr={descr!r}, fortran_order={fo}, shape={shape})",
]

DESCR_VARIANTS = ["{o}{k}{n}", "{k}{n}", "={k}{n}", "|{k}{n}", "{name}", "{o}{code}", "{code}", ">{k}{n}",
                  "<{k}{n}", "{o}{k}{n} ", " {o}{k}{n}", "{o}{K}{n}", "{o}{k}{n}{n}", "{o}{k}"]


def mutate_npy(rng, raw: bytes):
    """-> (new npy bytes, note)."""
    ver, d, data = parse_npy(raw)
    descr, fo, shape = d["descr"], d["fortran_order"], d["shape"]
    how = rng.choice(["header", "header", "descr", "version", "trailing", "truncated", "hlen", "shape"])
    if how == "descr":
        o, k, n = (descr[0], descr[1], descr[2:]) if descr[0] in "<>|=" else ("", descr[0], descr[1:])
        import numpy as _np  # only to name the dtype: never loads anything
        dt = _np.dtype(descr)
        fmt = rng.choice(DESCR_VARIANTS)
        new = fmt.format(o=o, k=k, n=n, K=k.upper(), name=dt.name, code=dt.char)
        h = f"{{'descr': {new!r}, 'fortran_order': {fo}, 'shape': {shape!r}, }}"
        return npy_header(h, ver) + data, f"descr {new!r}"
    if how == "version":
        v = rng.choice([(1, 0), (2, 0), (3, 0), (0, 0), (4, 0), (1, 1), (2, 1)])
        h = f"{{'descr': {descr!r}, 'fortran_order': {fo}, 'shape': {shape!r}, }}"
        hb = npy_header(h, v if v in ((1, 0), (2, 0), (3, 0)) else (1, 0))
        hb = hb[:6] + bytes(v) + hb[8:]
        return hb + data, f"version {v}"
    if how == "trailing":
        return raw + bytes(rng.randrange(256) for _ in range(rng.randint(1, 70))), "trailing bytes"
    if how == "truncated":
        return raw[:len(raw) - rng.randint(1, max(1, len(data)))], "truncated data"
    if how == "hlen":
        # the length field says more or less than the header it describes
        hl = struct.unpack("<H", raw[8:10])[0] if ver == (1, 0) else struct.unpack("<I", raw[8:12])[0]
        delta = rng.choice([-1, 1, -4, 4, 16])
        if ver == (1, 0):
            return raw[:8] + struct.pack("<H", max(0, hl + delta)) + raw[10:], f"header length {delta:+}"
        return raw[:8] + struct.pack("<I", max(0, hl + delta)) + raw[12:], f"header length {delta:+}"
    if how == "shape":
        s = list(shape)
        alt = rng.choice(["reverse", "flat", "extra1", "zero", "neg"])
        if alt == "reverse":
            s = s[::-1]
        elif alt == "flat":
            p = 1
            for x in s:
                p *= x
            s = [p]
        elif alt == "extra1":
            s = s + [1]
        elif alt == "zero":
            s = [0] + s
        else:
            s = [-1] + s
        h = f"{{'descr': {descr!r}, 'fortran_order': {fo}, 'shape': {tuple(s)!r}, }}"
        return npy_header(h, ver) + data, f"shape {alt} {tuple(s)}"
    fmt = rng.choice(HEADER_VARIANTS)
    sh = tuple(shape)
    h = fmt.format(descr=descr, fo=fo, shape=repr(sh), shapelist=repr(list(sh)),
                   shapeL="(" + "".join(f"{x}L, " for x in sh) + ")",
                   foint=int(fo), shapeparen=f"({sh[0]})" if len(sh) == 1 else repr(sh),
                   shapehex="(" + "".join(f"{hex(x)}, " for x in sh) + ")",
                   shapeunder="(" + "".join(f"{x:_}, " if x < 1000 else f"{x:_}, " for x in sh) + ")",
                   shapeplus="(" + "".join(f"+{x}, " for x in sh) + ")",
                   shapebool="(" + "".join("True, " if x == 1 else f"{x}, " for x in sh) + ")",
                   descrsplit=f"{descr[:1]!r} {descr[1:]!r}", descresc=repr(descr).replace("<", "\\x3c"))
    v = rng.choice([ver, ver, (2, 0), (3, 0)])
    pad = rng.choice([64, 64, 16, 0, 1])
    return npy_header(h, v, pad_to=pad, newline=rng.random() < 0.9) + data, f"header {fmt[:50]!r} v{v} pad {pad}"


def m_npy(rng, b, container):
    new, note = mutate_npy(rng, b)
    cls = "trailing-data" if "trailing" in note else ("byte-order" if note.startswith("descr '>") else "header-grammar")
    return Mutant(new, cls, "npy-header", note, container)


def m_npz_member_header(rng, b, container):
    ms = read_zip(b)
    i = rng.randrange(len(ms))
    new, note = mutate_npy(rng, ms[i].payload())
    ms[i].set_payload(new)
    cls = "trailing-data" if "trailing" in note else "header-grammar"
    return Mutant(write_zip(ms)[0], cls, "npy-header", f"{ms[i].name!r}: {note}", container)


# ---- legacy stream, TAR, joblib, pickles ----

def legacy_parts(b: bytes):
    """The five pickles of a legacy stream and the storage bytes after them."""
    parts = []
    pos = 0
    f = io.BytesIO(b)
    for _ in range(5):
        ops = list(_genops_at(b, pos))
        end = ops[-1][2] + 1
        parts.append(b[pos:end])
        pos = end
    return parts, b[pos:]


def _genops_at(b, pos):
    import pickletools
    f = io.BytesIO(b)
    f.seek(pos)
    for op, arg, p in pickletools.genops(f):
        yield op, arg, p
        if op.name == "STOP":
            break


def m_legacy(rng, b, container):
    parts, rest = legacy_parts(b)
    magic, proto, sysinfo, main, keys = parts
    how = rng.choice(["keys-int", "keys-dup", "keys-missing", "trailing", "trailing-pickle", "sysinfo-be",
                      "proto-float", "count", "pid-int-key", "sysinfo-list"])
    cls = {"keys-int": "storage-keys", "keys-dup": "storage-keys", "keys-missing": "storage-keys",
           "pid-int-key": "storage-keys", "trailing": "trailing-data", "trailing-pickle": "trailing-data",
           "sysinfo-be": "byte-order", "proto-float": "header-grammar", "count": "header-grammar",
           "sysinfo-list": "header-grammar"}[how]
    import pickle
    klist = pickle.loads(keys)
    if how == "keys-int":
        keys = pickle.dumps([int(k) if str(k).isdigit() else k for k in klist], 2)
    elif how == "keys-dup" and klist:
        k = rng.choice(klist)
        keys = pickle.dumps(klist + [k], 2)
        # the re-read storage: its count and other bytes
        rest = rest + rest[:8] + xor_bytes(rest[8:8 + 64])
    elif how == "keys-missing" and len(klist) > 1:
        keys = pickle.dumps(klist[:-1], 2)
    elif how == "trailing":
        rest = rest + b"\x00junk"
    elif how == "trailing-pickle":
        rest = rest + pickle.dumps({"x": 1}, 2)
    elif how == "sysinfo-be":
        sysinfo = pickle.dumps({"protocol_version": 1001, "little_endian": False,
                                "type_sizes": {"short": 2, "int": 4, "long": 4}}, 2)
    elif how == "sysinfo-list":
        sysinfo = pickle.dumps([1, 2], 2)
    elif how == "proto-float":
        proto = pickle.dumps(1001.0, 2)
    elif how == "count":
        rest = struct.pack("<q", struct.unpack("<q", rest[:8])[0] + 1) + rest[8:]
    elif how == "pid-int-key":
        ops = pk.decode(main)
        ps = pids(ops) or pids5(ops)
        memo = memo_values(ops)
        for (_, el, _) in ps:
            _, key, _ = storage_info(ops, el, memo)
            if key is not None and key.isdigit():
                ops[el[2]] = ("BININT", int(key))
        main = pk.encode(ops)
    return Mutant(magic + proto + sysinfo + main + keys + rest, cls, "legacy", how, container)


def pids5(ops):
    return []


def tar_members(b: bytes):
    out = []
    with tarfile.open(fileobj=io.BytesIO(b), mode="r:") as t:
        for m in t.getmembers():
            f = t.extractfile(m)
            out.append((m.name, f.read() if f else b""))
    return out


def tar_build(members, fmt=tarfile.USTAR_FORMAT, suffix=b""):
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=fmt) as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 0
            t.addfile(ti, io.BytesIO(data))
    return bio.getvalue() + suffix


def m_tar(rng, b, container):
    ms = tar_members(b)
    how = rng.choice(["dup-last", "dup-first", "case-twin", "dot-slash", "pax", "gnu", "v7", "trailing",
                      "reorder"])
    names = [n for n, _ in ms]
    i = rng.randrange(len(ms))
    name, data = ms[i]
    alt = xor_bytes(data[-16:])
    changed = data[:-16] + alt if len(data) > 16 else data
    fmt = tarfile.USTAR_FORMAT
    suffix = b""
    if how == "dup-last":
        ms.append((name, changed))
    elif how == "dup-first":
        ms.insert(0, (name, changed))
    elif how == "case-twin":
        ms.append((name.capitalize(), changed))
    elif how == "dot-slash":
        ms[i] = ("./" + name, data)
    elif how == "pax":
        fmt = tarfile.PAX_FORMAT
    elif how == "gnu":
        fmt = tarfile.GNU_FORMAT
    elif how == "trailing":
        suffix = b"\x00" * 1024 + b"junk"
    elif how == "reorder":
        rng.shuffle(ms)
    out = tar_build(ms, fmt, suffix)
    if how == "v7":
        # no ustar magic: Python's tarfile still reads the headers (a V7 archive)
        ob = bytearray(out)
        pos = 0
        while pos + 512 <= len(ob) and ob[pos:pos + 512] != b"\x00" * 512:
            hdr = ob[pos:pos + 512]
            size = int(hdr[124:136].rstrip(b"\x00 ") or b"0", 8)
            hdr[257:265] = b"\x00" * 8
            hdr[148:156] = b" " * 8
            ck = sum(hdr)
            hdr[148:156] = b"%06o\x00 " % ck
            ob[pos:pos + 512] = hdr
            pos += 512 + ((size + 511) // 512) * 512
        out = bytes(ob)
    cls = "lookup" if how in ("dup-last", "dup-first", "case-twin", "dot-slash", "v7", "reorder") else "zip-reader"
    return Mutant(out, cls, "tar", f"{how} ({name})", container)


def m_pickle_stream(rng, b, container):
    """Pickles appended to a pickle stream: pickle.load and joblib.load read the first one."""
    other = rng.choice([base("plain_pickle.pkl"), base("two_pickles.pkl"), base("joblib/dict.joblib"), b])
    how = rng.choice(["append", "append", "junk", "prepend-pickle"])
    if how == "append":
        out = b + other
    elif how == "junk":
        out = b + b"\x00\x01junk"
    else:
        out = other + b
    return Mutant(out, "trailing-data", "pickle-stream", how, container)


def m_compressed(rng, b, container):
    """joblib's zlib and gzip wrappers: trailing bytes, gzip header fields, bad trailers."""
    raw = zlib.decompress(b)
    how = rng.choice(["zlib-trailing", "zlib-level", "gzip", "gzip-fname", "gzip-fextra", "gzip-fhcrc",
                      "gzip-bad-crc", "gzip-bad-size", "gzip-two-members", "zlib-bad-adler", "gzip-reserved",
                      "zlib-append-pickle"])
    if how == "zlib-trailing":
        out = b + b"junk"
    elif how == "zlib-level":
        out = zlib.compress(raw, rng.randint(0, 9))
    elif how == "zlib-bad-adler":
        out = b[:-1] + bytes([b[-1] ^ 1])
    elif how == "zlib-append-pickle":
        out = zlib.compress(raw + base("plain_pickle.pkl"))
    else:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = c.compress(raw) + c.flush()
        flags = 0
        extra = b""
        if how == "gzip-fname":
            flags |= 8
            extra += b"model.pkl\x00"
        if how == "gzip-fextra":
            flags |= 4
            extra = struct.pack("<H", 6) + b"AB\x02\x00hi" + extra
        if how == "gzip-reserved":
            flags |= 0x20
        hdr = b"\x1f\x8b\x08" + bytes([flags]) + b"\x00\x00\x00\x00\x00\x03" + extra
        if how == "gzip-fhcrc":
            hdr = b"\x1f\x8b\x08" + bytes([2]) + b"\x00\x00\x00\x00\x00\x03"
            hdr += struct.pack("<H", (zlib.crc32(hdr) & 0xFFFF) ^ (1 if rng.random() < 0.5 else 0))
        crc, size = zlib.crc32(raw), len(raw)
        if how == "gzip-bad-crc":
            crc ^= 1
        if how == "gzip-bad-size":
            size += 1
        out = hdr + body + struct.pack("<II", crc, size & 0xFFFFFFFF)
        if how == "gzip-two-members":
            out += hdr + body + struct.pack("<II", crc, size)
    return Mutant(out, "compression", "compressed", how, container)


# --------------------------------------------------------------------------------------------
# the draw
# --------------------------------------------------------------------------------------------

ZIP_MUTATORS = [(m_dup_record, 3), (m_case_twin, 3), (m_roots, 2), (m_local_central, 2), (m_descriptor, 2),
                (m_zip64_extra, 2), (m_end_records, 3), (m_prefix_suffix, 2), (m_crc_attr, 2)]
TORCH_MUTATORS = ZIP_MUTATORS + [(m_torchscript_decision, 2), (m_records, 3), (m_storage_keys, 3),
                                 (m_byte_order, 3), (m_trailing_pickle, 1)]
NPZ_MUTATORS = ZIP_MUTATORS + [(m_npz_names, 4), (m_npz_member_header, 3)]

PLAN = [  # (base kind, container for the loaders, mutators, weight)
    ("torchzip", "torchzip", TORCH_MUTATORS, 10),
    ("torchscript", "torchzip", ZIP_MUTATORS + [(m_torchscript_decision, 4), (m_records, 2)], 2),
    ("npz", "npz", NPZ_MUTATORS, 5),
    ("npy", "npy", [(m_npy, 1)], 4),
    ("legacy", "legacy", [(m_legacy, 1)], 2),
    ("tar", "tar", [(m_tar, 1)], 2),
    ("joblib", "joblib", [(m_pickle_stream, 1)], 1),
    ("joblibz", "joblib", [(m_compressed, 1)], 2),
    ("pickle", "pickle", [(m_pickle_stream, 1)], 1),
]

# loaders per container for container mutants: the primary loader and its traced twin
LOADERS = {"torchzip": ["torch", "torch_trace"], "legacy": ["torch", "torch_trace"], "tar": ["torch", "torch_trace"],
           "npy": ["numpy", "numpy_trace"], "npz": ["numpy", "numpy_trace"], "joblib": ["joblib", "pickle"],
           "pickle": ["pickle", "pickle_py"]}

KINDS = sorted({f.__name__[2:] for _, _, ms, _ in PLAN for f, _ in ms})


def _weighted(rng, items):
    total = sum(w for *_, w in items)
    x = rng.uniform(0, total)
    for it in items:
        x -= it[-1]
        if x <= 0:
            return it
    return items[-1]


def make(seed: int, index: int):
    """Candidate `index` of `seed`: a gen.Candidate whose ops are the mutant's bytes (RAW)."""
    rng = random.Random(hashlib.sha256(f"containers:{seed}:{index}".encode()).digest())
    for _attempt in range(20):
        kind, container, mutators, _ = _weighted(rng, PLAN)
        rel = rng.choice(BASES[kind])
        fn, _ = _weighted(rng, mutators)
        try:
            m = fn(rng, base(rel), container)
        except (ValueError, KeyError, IndexError, struct.error, zipfile.BadZipFile, tarfile.TarError,
                zlib.error) as e:  # a mutation that does not apply to this base: draw again
            m = None
            _ = e
        if m is None:
            continue
        name = f"c{seed}-{index:06d}-{m.kind}"
        c = gen.Candidate(name=name, cls=m.cls, template="container:" + m.kind, container=m.container,
                          ops=[("RAW", m.data)], proto=0, note=f"{rel}: {m.note}"[:300])
        c.loader_set = LOADERS[m.container]
        return c
    raise RuntimeError(f"no mutant for {seed}:{index}")
