"""Pickle opcode lists: encode, decode, and a protocol-aware value emitter.

A candidate is a list of ops `(NAME, arg)` (arg None for argument-less opcodes); `encode`
turns it into bytes, `decode` reads bytes back into ops (pickletools.genops), so counterexamples
can be minimised op by op. Nothing here ever unpickles.
"""

from __future__ import annotations

import io
import pickletools
import struct

OPS = {o.name: o for o in pickletools.opcodes}
BY_CODE = {o.code: o for o in pickletools.opcodes}


def _long_bytes(x: int) -> bytes:
    if x == 0:
        return b""
    n = (x.bit_length() >> 3) + 1
    b = x.to_bytes(n, "little", signed=True)
    if x < 0 and n > 1 and b[-1] == 0xFF and (b[-2] & 0x80) != 0:
        b = b[:-1]
    return b


def encode_op(name: str, arg) -> bytes:
    op = OPS[name]
    code = op.code.encode("latin1")
    a = op.arg
    if a is None:
        return code
    t = a.name
    if t == "uint1":
        return code + struct.pack("<B", arg)
    if t == "uint2":
        return code + struct.pack("<H", arg)
    if t == "int4":
        return code + struct.pack("<i", arg)
    if t == "uint4":
        return code + struct.pack("<I", arg)
    if t == "uint8":
        return code + struct.pack("<Q", arg)
    if t == "decimalnl_short":
        if isinstance(arg, bool):
            return code + (b"01\n" if arg else b"00\n")
        return code + str(arg).encode() + b"\n"
    if t == "decimalnl_long":
        return code + str(arg).encode() + b"L\n"
    if t == "floatnl":
        return code + repr(float(arg)).encode() + b"\n"
    if t == "float8":
        return code + struct.pack(">d", arg)
    if t == "stringnl":
        return code + repr(arg if isinstance(arg, str) else arg.decode("latin1")).encode("latin1") + b"\n"
    if t == "stringnl_noescape":
        return code + (arg if isinstance(arg, bytes) else str(arg).encode()) + b"\n"
    if t == "stringnl_noescape_pair":
        m, n = arg
        return code + m.encode("utf-8", "surrogatepass") + b"\n" + n.encode("utf-8", "surrogatepass") + b"\n"
    if t == "string1":
        b = arg.encode("latin1") if isinstance(arg, str) else arg
        return code + struct.pack("<B", len(b)) + b
    if t == "string4":
        b = arg.encode("latin1") if isinstance(arg, str) else arg
        return code + struct.pack("<i", len(b)) + b
    if t == "bytes1":
        return code + struct.pack("<B", len(arg)) + arg
    if t == "bytes4":
        return code + struct.pack("<I", len(arg)) + arg
    if t in ("bytes8", "bytearray8"):
        return code + struct.pack("<Q", len(arg)) + bytes(arg)
    if t == "unicodestringnl":
        return code + arg.encode("raw-unicode-escape") + b"\n"
    if t == "unicodestring1":
        b = arg.encode("utf-8", "surrogatepass")
        return code + struct.pack("<B", len(b)) + b
    if t == "unicodestring4":
        b = arg.encode("utf-8", "surrogatepass")
        return code + struct.pack("<I", len(b)) + b
    if t == "unicodestring8":
        b = arg.encode("utf-8", "surrogatepass")
        return code + struct.pack("<Q", len(b)) + b
    if t == "long1":
        b = _long_bytes(arg)
        return code + struct.pack("<B", len(b)) + b
    if t == "long4":
        b = _long_bytes(arg)
        return code + struct.pack("<i", len(b)) + b
    raise ValueError(f"cannot encode {name} arg type {t}")


def encode(ops) -> bytes:
    return b"".join(encode_op(n, a) for n, a in ops)


def decode(data: bytes):
    """ops of the first pickle in data (FRAME ops are dropped: encode writes no frames)."""
    ops = []
    for op, arg, _pos in pickletools.genops(io.BytesIO(data)):
        if op.name == "FRAME":
            continue
        if op.name in ("GLOBAL", "INST"):
            m, _, n = arg.partition(" ")
            arg = (m, n)
        ops.append((op.name, arg))
        if op.name == "STOP":
            break
    return ops


def valid_ops(ops) -> bool:
    try:
        encode(ops)
        return True
    except Exception:  # noqa: BLE001
        return False


class Emitter:
    """Emits values as ops for one protocol. Memo indices are allocated in order."""

    def __init__(self, proto: int, rng):
        self.proto = proto
        self.rng = rng
        self.ops: list = []
        self.memo_n = 0
        if proto >= 2:
            self.ops.append(("PROTO", proto))

    def op(self, name, arg=None):
        self.ops.append((name, arg))

    # ---- memo
    def put(self) -> int:
        i = self.memo_n
        self.memo_n += 1
        if self.proto >= 4 and self.rng.random() < 0.7:
            self.op("MEMOIZE")
        elif self.proto >= 1:
            self.op("BINPUT" if i < 256 else "LONG_BINPUT", i)
        else:
            self.op("PUT", i)
        return i

    def get(self, i: int):
        if self.proto >= 1:
            self.op("BINGET" if i < 256 else "LONG_BINGET", i)
        else:
            self.op("GET", i)

    # ---- literals
    def lit(self, v):
        p = self.proto
        if v is None:
            self.op("NONE")
        elif isinstance(v, bool):
            if p >= 2:
                self.op("NEWTRUE" if v else "NEWFALSE")
            else:
                self.op("INT", v)
        elif isinstance(v, int):
            if p >= 1 and 0 <= v < 256:
                self.op("BININT1", v)
            elif p >= 1 and 0 <= v < 65536:
                self.op("BININT2", v)
            elif p >= 1 and -(2 ** 31) <= v < 2 ** 31:
                self.op("BININT", v)
            elif p >= 2:
                self.op("LONG1", v)
            else:
                self.op("LONG", v)
        elif isinstance(v, float):
            self.op("BINFLOAT" if p >= 1 else "FLOAT", v)
        elif isinstance(v, str):
            if p >= 4 and len(v.encode("utf-8", "surrogatepass")) < 256:
                self.op("SHORT_BINUNICODE", v)
            elif p >= 1:
                self.op("BINUNICODE", v)
            else:
                self.op("UNICODE", v)
        elif isinstance(v, (bytes, bytearray)):
            v = bytes(v)
            if p >= 3:
                self.op("SHORT_BINBYTES" if len(v) < 256 else "BINBYTES", v)
            else:
                # what Python writes for bytes at protocols 0-2: _codecs.encode(latin1 str, 'latin1')
                self.glob("_codecs", "encode")
                self.mark()
                self.lit(v.decode("latin1"))
                self.lit("latin1")
                self.op("TUPLE")
                self.op("REDUCE")
        elif isinstance(v, tuple):
            self.tuple_of([lambda x=x: self.lit(x) for x in v])
        elif isinstance(v, list):
            self.list_of([lambda x=x: self.lit(x) for x in v])
        elif isinstance(v, dict):
            self.dict_of([(lambda k=k: self.lit(k), lambda x=x: self.lit(x)) for k, x in v.items()])
        else:
            raise TypeError(type(v))

    def mark(self):
        self.op("MARK")

    def tuple_of(self, emitters):
        p = self.proto
        n = len(emitters)
        if p >= 2 and n == 0:
            self.op("EMPTY_TUPLE")
        elif p >= 2 and n <= 3:
            for e in emitters:
                e()
            self.op(("TUPLE1", "TUPLE2", "TUPLE3")[n - 1])
        elif p >= 1 and n == 0:
            self.op("EMPTY_TUPLE")
        else:
            self.mark()
            for e in emitters:
                e()
            self.op("TUPLE")

    def list_of(self, emitters):
        if self.proto >= 1:
            self.op("EMPTY_LIST")
            if emitters:
                self.mark()
                for e in emitters:
                    e()
                self.op("APPENDS")
        else:
            self.mark()
            for e in emitters:
                e()
            self.op("LIST")

    def dict_of(self, pairs):
        if self.proto >= 1:
            self.op("EMPTY_DICT")
            if pairs:
                self.mark()
                for k, v in pairs:
                    k()
                    v()
                self.op("SETITEMS")
        else:
            self.mark()
            for k, v in pairs:
                k()
                v()
            self.op("DICT")

    def glob(self, module: str, name: str):
        if self.proto >= 4 and self.rng.random() < 0.8:
            self.lit(module)
            self.lit(name)
            self.op("STACK_GLOBAL")
        else:
            self.op("GLOBAL", (module, name))

    def stop(self) -> list:
        self.op("STOP")
        return self.ops
