"""Checks every hand-written mirror of the C header against it, so a header change cannot leave
a binding behind: the 3D Slicer ctypes binding (plugins/slicer/Slicewise/slicewise_ctypes.py),
the ctypes test host (tests/python/capi_ctypes.py) and the Rust host's declarations
(tests/integration/capi.rs).

For each mirror: every function it declares exists in the header with the same return and
argument types; every struct it declares is the header's struct its functions pass (field names,
order and types; for ctypes also size and every offset); every constant it declares is the
header's macro of that name with that value (and, in Rust, that type). The Slicer binding and the
Rust host must declare every function and struct, and the Slicer binding every value of each
enumeration it mirrors (status codes, devices, dtypes, spaces). Pointers to opaque handles may be
`void *`; const is ignored (it does not change the ABI). The header's struct layouts are also
compiled with CC and compared with those derived from the parsed header, which checks the parser.

    header_mirrors.py [--header SLICEWISE_H] [--cc CC]

Prints one JSON object: {"header": {counts}, "compiler": {"fields", "problems"},
"mirrors": {name: {"functions", "structs", "constants", "problems"}}}.
"""
import argparse
import ctypes as C
import os
import subprocess
import sys
import tempfile

import c_header
import mirror_ctypes
import mirror_rust
from common import emit

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SLICER = os.path.join(REPO, "plugins", "slicer", "Slicewise", "slicewise_ctypes.py")
RUST = os.path.join(REPO, "tests", "integration", "capi.rs")

_CTYPES = {"i8": C.c_int8, "u8": C.c_uint8, "i16": C.c_int16, "u16": C.c_uint16,
           "i32": C.c_int32, "u32": C.c_uint32, "i64": C.c_int64, "u64": C.c_uint64,
           "usize": C.c_size_t, "f32": C.c_float, "f64": C.c_double, "char": C.c_char}


def mirrors():
    """The three mirrors, read from the repository."""
    return [
        mirror_ctypes.read(mirror_ctypes.load_module(SLICER, "slicewise_ctypes"), "slicer", True),
        mirror_ctypes.read(mirror_ctypes.load_module(os.path.join(HERE, "capi_ctypes.py"),
                                                     "capi_ctypes"), "capi_ctypes", False),
        mirror_rust.read(RUST),
    ]


class Binding:
    """Which mirror struct stands for which header struct, learnt from where they are passed."""

    def __init__(self):
        self.pairs = {}  # header struct -> mirror struct

    def bind(self, header, mirror, where, out):
        have = self.pairs.get(header)
        other = [h for h, m in self.pairs.items() if m == mirror and h != header]
        if have not in (None, mirror) or other:
            out.append(f"{where}: {mirror} stands for struct {header} here, "
                       f"but for {have or other[0]} elsewhere")
        self.pairs.setdefault(header, mirror)


def same(m, ht, mt, binding, where, out):
    """Whether the mirror's type `mt` is the header's `ht` (struct names are learnt into
    `binding`; a struct standing for two things is appended to `out`)."""
    if isinstance(ht, str) or isinstance(mt, str):
        return isinstance(ht, str) and m.scalar(ht) == mt
    kind = ht[0]
    if kind == "ptr" and ht[1][0:1] == ("opaque",) and mt == ("ptr", "void"):
        return True  # handles are opaque: every mirror passes them as void *
    if kind != mt[0] or (kind == "array" and ht[2] != mt[2]):
        return False
    if kind in ("ptr", "array"):
        return same(m, ht[1], mt[1], binding, where, out)
    if kind == "struct":
        binding.bind(ht[1], mt[1], where, out)
        return True
    if kind == "fn":
        return len(ht[2]) == len(mt[2]) and all(
            same(m, a, b, binding, where, out) for a, b in zip((ht[1],) + ht[2], (mt[1],) + mt[2]))
    return False


def match(m, ht, mt, binding, where, out):
    """Appends to `out` that the mirror's type `mt` is not the header's `ht`."""
    if not same(m, ht, mt, binding, where, out):
        out.append(f"{where}: header {c_header.fmt(ht)}, mirror {c_header.fmt(mt)}")


def check_functions(h, m, binding, out):
    names = set(m.functions)
    for name in sorted(names - set(h.functions)):
        out.append(f"{name}: not in the header")
    if m.complete:
        for name in sorted(set(h.functions) - names):
            out.append(f"{name}: in the header, not in the mirror")
    for name in sorted(names & set(h.functions)):
        (hr, ha), (mr, ma) = h.functions[name], m.functions[name]
        match(m, hr, mr, binding, f"{name} return", out)
        if len(ha) != len(ma):
            out.append(f"{name}: header takes {len(ha)} arguments, mirror {len(ma)}")
        for i, (a, b) in enumerate(zip(ha, ma)):
            match(m, a, b, binding, f"{name} argument {i} ({h.params[name][i]})", out)


def check_structs(h, m, binding, out):
    done = set()
    while set(binding.pairs) - done:  # a struct's fields may bind further structs
        hs = min(set(binding.pairs) - done)
        done.add(hs)
        ms = binding.pairs[hs]
        hf, mf = h.structs[hs], m.structs.get(ms, [])
        if [f for f, _ in hf] != [f for f, _ in mf]:
            out.append(f"struct {hs} fields {[f for f, _ in hf]}, mirror {ms} {[f for f, _ in mf]}")
        for (f, ht), (_, mt) in zip(hf, mf):
            match(m, ht, mt, binding, f"{hs}.{f}", out)
        if ms in m.ctypes_structs:
            out += layout_differences(h, hs, m.ctypes_structs[ms])
    for s in sorted(set(m.structs) - set(binding.pairs.values())):
        out.append(f"struct {s}: no function passes it, so it mirrors no header struct")
    if m.complete:
        for s in sorted(set(h.structs) - set(binding.pairs)):
            out.append(f"struct {s}: in the header, not in the mirror")


def check_constants(h, m, out):
    seen = set()
    for where, define, value, ty in m.constants:
        seen.add(define)
        if define not in h.defines:
            out.append(f"{where}: {define} is not in the header")
            continue
        if h.defines[define] != value:
            out.append(f"{where}: {define} is {h.defines[define]} in the header, {value} here")
        group = h.define_type(define)
        want = h.typedefs[group] if group else None
        if ty is not None and ty != want:
            out.append(f"{where}: {define} is a {group} ({want}), declared {ty}")
    if m.all_values:
        groups = {h.define_type(d) for d in seen if d in h.defines} - {None}
        for d in sorted(d for d in h.defines if h.define_type(d) in groups and d not in seen):
            out.append(f"{d}: in the header, not in the mirror")


def compare(h, m):
    """Every way mirror `m` differs from header `h`, as sentences."""
    out = list(m.problems)
    binding = Binding()
    check_functions(h, m, binding, out)
    check_structs(h, m, binding, out)
    check_constants(h, m, out)
    return out, binding


def header_ctype(h, t, made):
    """The ctypes type of a canonical header type (pointers of any kind as void *)."""
    if isinstance(t, str):
        return _CTYPES[t]
    if t[0] in ("ptr", "fn"):
        return C.c_void_p
    if t[0] == "array":
        return header_ctype(h, t[1], made) * t[2]
    if t[1] not in made:
        made[t[1]] = type(t[1], (C.Structure,), {"_fields_": [
            (f, header_ctype(h, ft, made)) for f, ft in h.structs[t[1]]]})
    return made[t[1]]


def header_layout(h):
    """{struct: (size, {field: (offset, size)})} derived from the parsed header."""
    made, out = {}, {}
    for s in h.structs:
        cls = header_ctype(h, ("struct", s), made)
        out[s] = (C.sizeof(cls), {f: (getattr(cls, f).offset, getattr(cls, f).size)
                                  for f, _ in h.structs[s]})
    return out


def layout_differences(h, hs, cls):
    """How a ctypes struct's size and offsets differ from the header's struct `hs`."""
    size, fields = header_layout(h)[hs]
    out = [] if C.sizeof(cls) == size else [f"{cls.__name__}: {C.sizeof(cls)} bytes, header {size}"]
    for f, (off, n) in fields.items():
        got = getattr(cls, f, None)
        if got is not None and (got.offset, got.size) != (off, n):
            out.append(f"{cls.__name__}.{f}: offset {got.offset} size {got.size}, header {off} {n}")
    return out


def compiler_layout(header_path, h, cc):
    """The C compiler's size and offsets of every header struct and field, against
    header_layout: (number of fields compared, problems)."""
    lines = ["#include <stdio.h>", "#include <stddef.h>", '#include "slicewise.h"',
             "int main(void) {"]
    for s, fields in h.structs.items():
        lines.append(f'printf("{s} %zu\\n", sizeof({s}));')
        lines += [f'printf("{s}.{f} %zu %zu\\n", offsetof({s}, {f}), sizeof((({s} *)0)->{f}));'
                  for f, _ in fields]
    lines += ["return 0;", "}"]
    with tempfile.TemporaryDirectory() as d:
        src, exe = os.path.join(d, "layout.c"), os.path.join(d, "layout")
        with open(src, "w") as f:
            f.write("\n".join(lines) + "\n")
        subprocess.run([cc, "-std=c99", "-I", os.path.dirname(os.path.abspath(header_path)), src,
                        "-o", exe], check=True)
        got = subprocess.run([exe], capture_output=True, text=True, check=True).stdout.split()
    want = []
    for s, (size, fields) in header_layout(h).items():
        want += [s, str(size)]
        for f, (off, n) in fields.items():
            want += [f"{s}.{f}", str(off), str(n)]
    problems = [] if got == want else [f"compiler {' '.join(got)}; parsed header {' '.join(want)}"]
    return sum(len(f) for f in h.structs.values()), problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--header", default=os.path.join(REPO, "include", "slicewise.h"))
    ap.add_argument("--cc", default="cc")
    a = ap.parse_args()
    h = c_header.parse(open(a.header).read())
    fields, problems = compiler_layout(a.header, h, a.cc)
    result = {
        "header": {"functions": len(h.functions), "structs": len(h.structs),
                   "defines": len(h.defines)},
        "compiler": {"fields": fields, "problems": problems},
        "mirrors": {},
    }
    for m in mirrors():
        out, binding = compare(h, m)
        result["mirrors"][m.name] = {"functions": len(m.functions), "structs": binding.pairs,
                                     "constants": len(m.constants), "problems": out}
    emit(result)


if __name__ == "__main__":
    sys.exit(main())
