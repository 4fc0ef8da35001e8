"""Write the container-parity fixtures that no generator template draws (docs/containers.md §8):
the data file and a stub JSON per case. Their ground truth is then recorded from the real loaders
with `run.py --refresh --only parity-`; nothing here decides what a loader does.

    target/venv-python/bin/python tests/oracle/parity_fixtures.py
    target/venv-python/bin/python tests/oracle/run.py --refresh --only parity-
"""
import io
import json
import os
import struct
import zipfile
import zlib

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "oracle")

LOADERS = {"npz": ["numpy", "numpy_trace"], "npy": ["numpy", "numpy_trace"],
           "torchzip": ["torch", "torch_trace"], "joblib": ["joblib", "pickle"]}


def npz_bytes(**arrays) -> bytes:
    b = io.BytesIO()
    np.savez(b, **arrays)
    return b.getvalue()


def npy_bytes(header: bytes, data: bytes, version=(1, 0)) -> bytes:
    size = struct.pack("<H", len(header)) if version[0] == 1 else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes(version) + size + header + data


def torch_zip(obj, extra=()) -> bytes:
    b = io.BytesIO()
    torch.save(obj, b)
    zin = zipfile.ZipFile(io.BytesIO(b.getvalue()))
    out = io.BytesIO()
    z = zipfile.ZipFile(out, "w", zipfile.ZIP_STORED)
    for i in zin.infolist():
        z.writestr(i.filename, zin.read(i))
    for name, data in extra:
        z.writestr(name, data)
    z.close()
    return out.getvalue()


def overlapped_npz() -> bytes:
    """Two central entries named `a.npy` naming the same local header (the second is what
    `NameToInfo` keeps)."""
    raw = npz_bytes(a=np.arange(3, dtype="<f4"))
    z = zipfile.ZipFile(io.BytesIO(raw))
    (info,) = z.infolist()
    eocd = raw.rindex(b"PK\x05\x06")
    cd_off = struct.unpack("<I", raw[eocd + 16:eocd + 20])[0]
    cd = raw[cd_off:eocd]
    twin = cd
    end = bytearray(raw[eocd:])
    struct.pack_into("<HHI", end, 8, 2, 2, len(cd) * 2)
    return raw[:cd_off] + cd + twin + bytes(end)


def gzip_joblib(bad_crc: bool) -> bytes:
    import joblib
    b = io.BytesIO()
    joblib.dump({"w": np.arange(4, dtype="<f4")}, b)
    raw = b.getvalue()
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = c.compress(raw) + c.flush()
    crc = zlib.crc32(raw) ^ (1 if bad_crc else 0)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + body + struct.pack("<II", crc, len(raw))


def storage_alignment_bad() -> bytes:
    b = io.BytesIO()
    torch.save({"w": torch.arange(3.0)}, b)
    zin = zipfile.ZipFile(io.BytesIO(b.getvalue()))
    out = io.BytesIO()
    z = zipfile.ZipFile(out, "w", zipfile.ZIP_STORED)
    for i in zin.infolist():
        data = zin.read(i)
        if i.filename.endswith("/.storage_alignment"):
            data = b"sixty-four"
        z.writestr(i.filename, data)
    z.close()
    return out.getvalue()


CASES = [
    # (class, name, container, extension, bytes, note)
    ("format-sniffing", "parity-pk0506-npz", "npz", "npz",
     lambda: b"PK\x05\x06" + bytes(18) + npz_bytes(w=np.arange(6, dtype="<f4").reshape(2, 3)),
     "an npz behind an empty end record: the file starts with PK\\x05\\x06, which numpy.load takes for a zip"),
    ("lookup", "parity-constants-case", "torchzip", "pt",
     lambda: torch_zip({"w": torch.arange(3.0)}, [("archive/constants.PKL", b"\x80\x02).")]),
     "a torch.save archive with `constants.PKL`: torch.load decides TorchScript by the exact record name"),
    ("header-grammar", "parity-npy-minor", "npy", "npy",
     lambda: npy_bytes(b"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", bytes(8), (1, 1)),
     "npy version (1, 1): numpy reads only 1.0, 2.0 and 3.0"),
    ("header-grammar", "parity-npy-list-shape", "npy", "npy",
     lambda: npy_bytes(b"{'descr': '<f4', 'fortran_order': False, 'shape': [2], }\n", bytes(8)),
     "npy shape written as a list: numpy requires a tuple"),
    ("header-grammar", "parity-npy-paren-shape", "npy", "npy",
     lambda: npy_bytes(b"{'descr': '<f4', 'fortran_order': False, 'shape': (2), }\n", bytes(8)),
     "npy shape `(2)`, which Python reads as the int 2, not a tuple"),
    ("header-grammar", "parity-npy-v2-long", "npy", "npy",
     lambda: npy_bytes(b"{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }\n", bytes(8), (2, 0)),
     "npy 2.0 header with a Python 2 `2L`: numpy filters `L` for versions up to 2.0"),
    ("zip-reader", "parity-npz-overlap", "npz", "npz", overlapped_npz,
     "two central entries `a.npy` share one local header: zipfile 3.12+ (and patched 3.11s) raise \"Overlapped entries\" for the second, the one numpy opens; the oracle's 3.11.7 reads it"),
    ("zip-reader", "parity-storage-alignment", "torchzip", "pt", storage_alignment_bad,
     "`.storage_alignment` is not an int: torch.load's int() raises"),
    ("compression", "parity-gzip-bad-crc", "joblib", "joblib", lambda: gzip_joblib(True),
     "a gzip joblib dump whose CRC-32 trailer is wrong: zlib raises"),
    ("compression", "parity-gzip-ok", "joblib", "joblib", lambda: gzip_joblib(False),
     "a gzip joblib dump written by hand (header without flags, right trailer)"),
]


def main():
    for cls, name, container, ext, make, note in CASES:
        d = os.path.join(FIXTURES, cls)
        os.makedirs(d, exist_ok=True)
        fname = f"{name}.{ext}"
        with open(os.path.join(d, fname), "wb") as f:
            f.write(make())
        j = os.path.join(d, f"{name}.json")
        stub = {"class": cls, "name": name, "file": fname, "container": container,
                "template": "container:parity", "protocol": 0, "note": note, "status": "fixed",
                "signatures": [], "primary_loader": LOADERS[container][0],
                "loaders": {k: None for k in LOADERS[container]}}
        if os.path.exists(j):
            with open(j) as f:
                old = json.load(f)
            old.update({k: stub[k] for k in ("file", "container", "note")})
            stub = old
        with open(j, "w") as f:
            json.dump(stub, f, indent=1, sort_keys=True)
            f.write("\n")
        print("wrote", os.path.relpath(j))


if __name__ == "__main__":
    main()
