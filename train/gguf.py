"""A small GGUF v3 reader (metadata only) and writer, the project's own, for exporting the
PyTorch model. Layout as documented in src/io/gguf.h."""
import struct

import numpy as np

U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
_SCALAR = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?",
           U64: "Q", I64: "q", F64: "d"}
GGML_F32, GGML_F16 = 0, 1


def read_metadata(path):
    """Returns {key: (type, value)} with arrays as (ARRAY, (elem_type, [values]))."""
    with open(path, "rb") as fh:
        b = fh.read()
    assert b[:4] == b"GGUF", f"{path}: not a GGUF file"
    _, _, n_kv = struct.unpack_from("<IQQ", b, 4)
    o = 24

    def s():
        nonlocal o
        (n,) = struct.unpack_from("<Q", b, o)
        o += 8
        v = b[o:o + n].decode("utf-8")
        o += n
        return v

    def val(t):
        nonlocal o
        if t == STRING:
            return s()
        if t == ARRAY:
            et, n = struct.unpack_from("<IQ", b, o)
            o += 12
            return (et, [val(et) for _ in range(n)])
        fmt = "<" + _SCALAR[t]
        (v,) = struct.unpack_from(fmt, b, o)
        o += struct.calcsize(fmt)
        return v

    kv = {}
    for _ in range(n_kv):
        k = s()
        (t,) = struct.unpack_from("<I", b, o)
        o += 4
        kv[k] = (t, val(t))
    return kv


class Writer:
    def __init__(self):
        self.kv = []
        self.tensors = []  # (name, ggml_type, ne, bytes)

    def add(self, key, t, value):
        self.kv.append((key, t, value))

    def tensor(self, name, array, f16=False):
        """array in PyTorch/NumPy order (outermost first); GGUF ne is the reverse."""
        a = np.ascontiguousarray(array, dtype=np.float16 if f16 else np.float32)
        self.tensors.append((name, GGML_F16 if f16 else GGML_F32, list(reversed(a.shape)), a.tobytes()))

    def write(self, path, align=32):
        out = bytearray(b"GGUF")
        out += struct.pack("<IQQ", 3, len(self.tensors), len(self.kv))

        def s(v):
            e = v.encode("utf-8")
            return struct.pack("<Q", len(e)) + e

        def val(t, v):
            if t == STRING:
                return s(v)
            if t == ARRAY:
                et, items = v
                return struct.pack("<IQ", et, len(items)) + b"".join(val(et, x) for x in items)
            return struct.pack("<" + _SCALAR[t], v)

        for k, t, v in self.kv:
            out += s(k) + struct.pack("<I", t) + val(t, v)
        offset = 0
        for name, gt, ne, data in self.tensors:
            out += s(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne)
            out += struct.pack("<IQ", gt, offset)
            offset += (len(data) + align - 1) // align * align
        out += b"\0" * (-len(out) % align)
        for _, _, _, data in self.tensors:
            out += data + b"\0" * (-len(data) % align)
        with open(path, "wb") as fh:
            fh.write(out)
