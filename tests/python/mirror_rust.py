"""Reads the Rust host's declarations of include/slicewise.h (tests/integration/capi.rs) as a
`Mirror`, from the text: the section that starts at `// ---- the ABI as a host sees it` and ends
at the next `// ----` line holds its `const`s, `#[repr(C)]` structs, `type` aliases and the
`api! { name: unsafe extern "C" fn(...) -> R; ... }` list of every export (names without the
`slicewise_` prefix). Only this subset of Rust is understood; anything else in a declaration is
reported, not skipped.
"""
import re

from mirror_ctypes import Mirror

_SCALARS = {
    "i8": "i8", "u8": "u8", "i16": "i16", "u16": "u16", "i32": "i32", "u32": "u32",
    "i64": "i64", "u64": "u64", "usize": "usize", "f32": "f32", "f64": "f64",
    "c_char": "char", "c_void": "void", "c_int": "i32", "c_uint": "u32", "()": "void",
}
_START = "// ---- the ABI as a host sees it"


def read(path, name="rust"):
    """The Mirror of the Rust declarations in `path`."""
    m = Mirror(name, complete=True)
    text = open(path).read()
    if _START not in text:
        m.problems.append(f"{path}: no '{_START}' section")
        return m
    section = text.split(_START, 1)[1].split("\n// ----", 1)[0]
    aliases = dict(re.findall(r"^type\s+(\w+)\s*=\s*([^;]+);", section, re.M))
    structs = re.findall(r"#\[repr\(C\)\]\s*(?:#\[[^\]]*\]\s*)*struct\s+(\w+)\s*\{([^}]*)\}",
                         section)
    names = {s for s, _ in structs}
    ty = lambda t: _type(m, t.strip(), aliases, names)  # noqa: E731
    for s, body in structs:
        m.structs[s] = [(f.strip(), ty(t)) for f, t in
                        (_split_field(m, s, d) for d in _split_top(body, ",") if d.strip())]
    for c, t, v in re.findall(r"^const\s+(\w+)\s*:\s*(\w+)\s*=\s*(-?\d+)\s*;", section, re.M):
        m.constants.append((c, "SLICEWISE_" + c, int(v), ty(t)))
    api = re.search(r"^api!\s*\{(.*?)^\}", section, re.M | re.S)
    if not api:
        m.problems.append(f"{path}: no api! {{ ... }} list")
        return m
    for entry in filter(str.strip, _split_top(api.group(1), ";")):
        fn, t = entry.split(":", 1)
        f = ty(t)
        if not (isinstance(f, tuple) and f[0] == "fn"):
            m.problems.append(f"api entry {fn.strip()}: not an extern \"C\" fn")
            continue
        m.functions["slicewise_" + fn.strip()] = (f[1], f[2])
    return m


def _split_field(m, struct, decl):
    if ":" not in decl:
        m.problems.append(f"{struct}: cannot read field {decl.strip()!r}")
        return decl, "()"
    name, t = decl.split(":", 1)
    return re.sub(r"^\s*(pub\s+)?", "", name), t


def _split_top(text, sep):
    """`text` split at `sep` outside (), [] and <>."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "([<":
            depth += 1
        elif ch in ")]>" and not (ch == ">" and cur.endswith("-")):
            depth -= 1
        if ch == sep and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return out + [cur]


def _type(m, t, aliases, structs):
    """The canonical type of a Rust type written as text."""
    t = " ".join(t.split())
    ty = lambda x: _type(m, x, aliases, structs)  # noqa: E731
    ptr = re.fullmatch(r"\*\s*(?:mut|const)\s+(.+)", t)
    if ptr:
        return ("ptr", ty(ptr.group(1)))
    arr = re.fullmatch(r"\[(.+);\s*(\d+)\s*\]", t)
    if arr:
        return ("array", ty(arr.group(1)), int(arr.group(2)))
    opt = re.fullmatch(r"Option\s*<(.+)>", t)
    if opt:  # a nullable function pointer: the same ABI as the pointer
        return ty(opt.group(1))
    fn = re.fullmatch(r"(?:unsafe\s+)?extern\s+\"C\"\s+fn\s*\((.*)\)\s*(?:->\s*(.+))?", t)
    if fn:
        args = [a for a in _split_top(fn.group(1), ",") if a.strip()]
        return ("fn", ty(fn.group(2) or "()"), tuple(ty(a) for a in args))
    if t in _SCALARS:
        return _SCALARS[t]
    if t in aliases:
        return ty(aliases[t])
    if t in structs:
        return ("struct", t)
    m.problems.append(f"Rust type {t!r} not understood (a struct without #[repr(C)]?)")
    return t
