"""Reads a ctypes binding of include/slicewise.h (a Python module) as a `Mirror`: its function
signatures, `Structure` classes and constants, by introspection, in c_header's canonical types.

A binding module declares `SIGNATURES = {"slicewise_x": (restype, [argtypes])}` at module level;
its constants are its upper-case int attributes, each named as the header's `SLICEWISE_*` macro
without the prefix (`ABI_MAJOR` is the header's `SLICEWISE_VERSION_MAJOR`). Optional tables are
read too: `ERRORS` (status code -> exception class whose docstring starts `SLICEWISE_NAME:`),
`DEVICES` (name -> code) and `DTYPES` (numpy dtype -> code).
"""
import ctypes as C
import importlib.util
import re
from dataclasses import dataclass, field

# ctypes' simple-type codes; the sized ones ("l", "L") get their width from sizeof.
_CODES = {"b": "i8", "B": "u8", "h": "i16", "H": "u16", "i": "i32", "I": "u32",
          "q": "i64", "Q": "u64", "f": "f32", "d": "f64", "c": "char"}
_RENAMED = {"ABI_MAJOR": "SLICEWISE_VERSION_MAJOR"}


@dataclass
class Mirror:
    """One binding's view of the header, in canonical types (see c_header)."""

    name: str
    functions: dict = field(default_factory=dict)   # "slicewise_x" -> (ret, (args...))
    structs: dict = field(default_factory=dict)     # mirror struct name -> [(field, type)]
    constants: list = field(default_factory=list)   # (where, "SLICEWISE_X", value, type or None)
    complete: bool = False     # must declare every function and struct
    all_values: bool = False   # must declare every value of each enumeration it mirrors
    problems: list = field(default_factory=list)    # found while reading the binding
    ctypes_structs: dict = field(default_factory=dict)  # mirror struct name -> class (layout)

    def scalar(self, t):
        """A header scalar as this binding can tell it apart (ctypes: size_t is c_ulong)."""
        return t


class CtypesMirror(Mirror):
    """A ctypes binding: size_t and uint64_t are one ctypes type, so usize compares as u64."""

    def scalar(self, t):
        return {"usize": f"u{8 * C.sizeof(C.c_size_t)}"}.get(t, t)


def load_module(path, name):
    """Imports the Python file at `path` as module `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read(module, name, complete):
    """The Mirror of a loaded binding module; `complete`: it must declare every function,
    struct and value of each enumeration it mirrors (a binding, not a test host)."""
    m = CtypesMirror(name, complete=complete, all_values=complete)
    sigs = getattr(module, "SIGNATURES", None)
    if not isinstance(sigs, dict):
        m.problems.append("no module-level SIGNATURES dict")
        return m
    for fn, (res, args) in sigs.items():
        m.functions[fn] = (canon(m, res), tuple(canon(m, a) for a in args))
    for cls in vars(module).values():
        if (isinstance(cls, type) and issubclass(cls, C.Structure)
                and cls.__module__ == module.__name__):
            m.ctypes_structs[cls.__name__] = cls
            m.structs[cls.__name__] = [_field(m, cls, f) for f in cls._fields_]
    _constants(m, module)
    return m


def canon(m, t):
    """The canonical type of a ctypes type (None is void)."""
    if t is None:
        return "void"
    if t is C.c_void_p:
        return ("ptr", "void")
    if t is C.c_char_p:
        return ("ptr", "char")
    if issubclass(t, C._Pointer):
        return ("ptr", canon(m, t._type_))
    if issubclass(t, C.Array):
        return ("array", canon(m, t._type_), t._length_)
    if issubclass(t, C.Structure):
        return ("struct", t.__name__)
    if issubclass(t, C._CFuncPtr):
        return ("fn", canon(m, t._restype_), tuple(canon(m, a) for a in t._argtypes_))
    code = getattr(t, "_type_", None)
    if code in ("l", "L"):
        return ("i" if code == "l" else "u") + str(8 * C.sizeof(t))
    if code in _CODES:
        return _CODES[code]
    m.problems.append(f"ctypes type {t!r} has no C equivalent here")
    return repr(t)


def _field(m, cls, f):
    if len(f) != 2:
        m.problems.append(f"{cls.__name__}.{f[0]}: bit field")
    return f[0], canon(m, f[1])


def _constants(m, module):
    for attr, value in vars(module).items():
        if re.fullmatch(r"[A-Z][A-Z0-9_]*", attr) and type(value) is int:
            m.constants.append((attr, _RENAMED.get(attr, "SLICEWISE_" + attr), value, None))
    for code, cls in getattr(module, "ERRORS", {}).items():
        doc = re.match(r"(SLICEWISE_\w+):", cls.__doc__ or "")
        if not doc:
            m.problems.append(f"ERRORS[{code}] = {cls.__name__}: its docstring names no code")
            continue
        m.constants.append((f"ERRORS[{code}]", doc.group(1), code, None))
        if cls.status != code:
            m.problems.append(f"{cls.__name__}.status is {cls.status}, ERRORS says {code}")
    for key, value in getattr(module, "DEVICES", {}).items():
        m.constants.append((f"DEVICES[{key!r}]", "SLICEWISE_DEVICE_" + key.upper(), value, None))
    for dtype, value in getattr(module, "DTYPES", {}).items():
        name = {"u": "U", "i": "I", "f": "F"}.get(dtype.kind, "?") + str(8 * dtype.itemsize)
        m.constants.append((f"DTYPES[{dtype}]", "SLICEWISE_DTYPE_" + name, value, None))
