"""A small parser of include/slicewise.h (the C subset cbindgen writes), the source of truth the
header mirrors are checked against (header_mirrors.py).

It reads `#define SLICEWISE_* <int>`, opaque `typedef struct X X;`, struct typedefs, integer and
function-pointer typedefs and function prototypes, and refuses anything else it meets, so a header
construct it does not understand fails the check instead of being skipped.

Types are canonical values, comparable across C, ctypes and Rust:
    "i8" .. "u64", "usize", "f32", "f64", "char", "void"   scalars (C `int` is "i32")
    ("ptr", T)  ("array", T, n)  ("struct", name)  ("opaque", name)  ("fn", RET, (ARGS...))
const is dropped: it does not change the ABI. Typedefs are resolved to what they name.
"""
import re
from dataclasses import dataclass, field

SCALARS = {
    "int8_t": "i8", "uint8_t": "u8", "int16_t": "i16", "uint16_t": "u16",
    "int32_t": "i32", "uint32_t": "u32", "int64_t": "i64", "uint64_t": "u64",
    "size_t": "usize", "float": "f32", "double": "f64", "char": "char", "void": "void",
    "int": "i32",
}

_COMMENTS = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_DEFINE = re.compile(r"^#define\s+(SLICEWISE_\w+)\s+(-?\d+)\s*$", re.M)
# Each declaration starts a line; its return or base type is on that line (cbindgen's layout).
_OPAQUE = re.compile(r"^typedef\s+struct\s+(\w+)\s+(\w+)\s*;", re.M)
_STRUCT = re.compile(r"^typedef\s+struct\s+(\w+)\s*\{([^}]*)\}\s*(\w+)\s*;", re.M)
_FN_TYPEDEF = re.compile(r"^typedef\s+([\w \t\*]+?)\s*\(\s*\*\s*(\w+)\s*\)\s*\(([^)]*)\)\s*;", re.M)
_TYPEDEF = re.compile(r"^typedef\s+([\w \t\*]+?)\s+(\w+)\s*;", re.M)
_FUNCTION = re.compile(r"^([\w \t\*]+?)\s*\b(slicewise_\w+)\s*\(([^)]*)\)\s*;", re.M)
# What may remain once every declaration is taken out: include guards, includes, the version
# string, and the C++ linkage wrapper.
_FRAME = re.compile(r'^\s*(#ifndef \w+|#define SLICEWISE_H|#define SLICEWISE_VERSION_STRING "[^"]*"'
                    r'|#include <\w+\.h>|#ifdef __cplusplus|extern "C" \{|\}|#endif)\s*$')


class HeaderError(ValueError):
    """The header holds something this parser does not understand."""


@dataclass
class Header:
    """The declarations of the header, with canonical types."""

    defines: dict = field(default_factory=dict)     # "SLICEWISE_OK" -> 0
    typedefs: dict = field(default_factory=dict)    # "slicewise_status" -> "i32"
    opaque: set = field(default_factory=set)        # {"slicewise_mask", ...}
    structs: dict = field(default_factory=dict)     # name -> [(field, type), ...] in order
    functions: dict = field(default_factory=dict)   # name -> (ret, (arg types...))
    params: dict = field(default_factory=dict)      # name -> (param names...)

    def define_type(self, name):
        """The typedef a `#define` is a value of: `slicewise_dtype` for SLICEWISE_DTYPE_U8,
        `slicewise_status` for the status codes (the prefix-less ones), None for the version."""
        rest = name[len("SLICEWISE_"):]
        if rest.startswith("VERSION_"):
            return None
        groups = [t for t in self.typedefs if t != "slicewise_status"
                  and rest.startswith(t[len("slicewise_"):].upper() + "_")]
        return max(groups, key=len) if groups else "slicewise_status"


def parse(text):
    """The Header declared by `text`; HeaderError on anything not understood."""
    h = Header()
    text = _COMMENTS.sub("", text)
    for name, value in _DEFINE.findall(text):
        h.defines[name] = int(value)
    text = _DEFINE.sub("", text)
    for tag, name in _OPAQUE.findall(text):
        _same_name(tag, name)
        h.opaque.add(name)
    text = _OPAQUE.sub("", text)
    bodies = _STRUCT.findall(text)
    for tag, _, name in bodies:
        _same_name(tag, name)
        h.structs[name] = None  # known as a struct before its fields are typed (self-reference)
    text = _STRUCT.sub("", text)
    for ret, name, args in _FN_TYPEDEF.findall(text):
        h.typedefs[name] = ("fn", _type(h, ret), tuple(t for _, t in _params(h, args)))
    text = _FN_TYPEDEF.sub("", text)
    for base, name in _TYPEDEF.findall(text):
        h.typedefs[name] = _type(h, base)
    text = _TYPEDEF.sub("", text)
    for _, body, name in bodies:
        h.structs[name] = [_decl(h, d) for d in body.split(";") if d.strip()]
    for ret, name, args in _FUNCTION.findall(text):
        if name in h.functions:
            raise HeaderError(f"{name} is declared twice")
        params = _params(h, args)
        h.functions[name] = (_type(h, ret), tuple(t for _, t in params))
        h.params[name] = tuple(n for n, _ in params)
    text = _FUNCTION.sub("", text)
    left = [line for line in text.splitlines() if line.strip() and not _FRAME.match(line)]
    if left:
        raise HeaderError("unparsed header text: " + " | ".join(left[:5]))
    return h


def _same_name(tag, name):
    if tag != name:
        raise HeaderError(f"typedef struct {tag} {name}: tag and name differ")


def _params(h, args):
    """[(name, type)] of a parameter list; `void` is none."""
    args = args.strip()
    if args in ("", "void"):
        return []
    return [_decl(h, a) for a in args.split(",")]


def _decl(h, text):
    """(name, type) of `const struct x *name` or `type name[N]`."""
    m = re.fullmatch(r"\s*([\w\s\*]*?[\s\*])(\w+)\s*(?:\[(\d+)\])?\s*", text)
    if not m:
        raise HeaderError(f"cannot read declaration {text.strip()!r}")
    t = _type(h, m.group(1))
    return m.group(2), ("array", t, int(m.group(3))) if m.group(3) else t


def _type(h, text):
    """The canonical type of a C type name such as `const struct slicewise_mask *`."""
    words = [w for w in re.findall(r"\w+", text) if w not in ("const", "struct")]
    if len(words) != 1 or set(re.sub(r"[\w\s]", "", text)) - {"*"}:
        raise HeaderError(f"cannot read type {text.strip()!r}")
    base = words[0]
    if base in SCALARS:
        t = SCALARS[base]
    elif base in h.typedefs:
        t = h.typedefs[base]
    elif base in h.structs:
        t = ("struct", base)
    elif base in h.opaque:
        t = ("opaque", base)
    else:
        raise HeaderError(f"unknown type {base!r} in {text.strip()!r}")
    for _ in range(text.count("*")):
        t = ("ptr", t)
    return t


def fmt(t):
    """A canonical type as C-like text, for messages."""
    if isinstance(t, str):
        return t
    kind = t[0]
    if kind == "ptr":
        return fmt(t[1]) + "*"
    if kind == "array":
        return f"{fmt(t[1])}[{t[2]}]"
    if kind in ("struct", "opaque"):
        return f"{kind} {t[1]}"
    return f"{fmt(t[1])} (*)({', '.join(fmt(a) for a in t[2])})"
