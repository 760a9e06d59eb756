"""Static checks of the Slicer extension in plugins/slicer: every .py compiles; the CMake files
carry what the Slicer extension index needs; the .ui is well-formed Qt Designer XML holding every
widget the Widget code looks up; the icon is a valid 128x128 PNG; the catalog entry satisfies
Slicer's catalog-entry schema v1.0.1; LICENSE and README say what they must.

    slicer_package.py PLUGIN_DIR CARGO_TOML

Prints one JSON object.
"""
import json
import os
import py_compile
import re
import struct
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib

from common import emit

# Slicer/Slicer Schemas/slicer-extension-catalog-entry-schema-v1.0.1.json: required keys,
# property types, enums; "additionalProperties": false.
SCHEMA_ID = ("https://raw.githubusercontent.com/Slicer/Slicer/main/Schemas/"
             "slicer-extension-catalog-entry-schema-v1.0.1.json")
SCHEMA_REQUIRED = ["$schema", "category", "scm_url"]
SCHEMA_TYPES = {"$schema": str, "category": str, "scm_url": str, "scm_revision": str,
                "scm_type": str, "build_dependencies": list, "build_subdirectory": str,
                "enabled": bool, "tier": int}
SCHEMA_ENUMS = {"scm_type": ["git", "local"], "tier": [1, 3, 5]}

EXTENSION_FIELDS = ["EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS",
                    "EXTENSION_DESCRIPTION", "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS",
                    "EXTENSION_DEPENDS"]


def cmake_sets(text):
    """set(NAME "value") / set(NAME value) pairs, comments removed."""
    text = re.sub(r"#[^\n]*", "", text)
    out = {}
    for name, quoted, bare in re.findall(r'set\(\s*(\w+)\s+(?:"([^"]*)"|([^)\s]+))', text):
        out[name] = quoted if quoted else bare
    return out


def check_cmake(plugin):
    top = open(os.path.join(plugin, "CMakeLists.txt")).read()
    sets = cmake_sets(top)
    fields = {f: sets.get(f) for f in EXTENSION_FIELDS}
    url = re.compile(r"^https?://\S+$")
    problems = [f"{f} missing or empty" for f, v in fields.items() if not v]
    for f in ("EXTENSION_HOMEPAGE", "EXTENSION_ICONURL"):
        if fields.get(f) and not url.match(fields[f]):
            problems.append(f"{f} is not a URL: {fields[f]}")
    for u in (fields.get("EXTENSION_SCREENSHOTURLS") or "").split():
        if not url.match(u):
            problems.append(f"EXTENSION_SCREENSHOTURLS entry is not a URL: {u}")
    stripped = re.sub(r"#[^\n]*", "", top)
    required = {
        "cmake_minimum_required": r"cmake_minimum_required\(",
        "project": r"project\(\s*Slicewise\s*\)",
        "find_package(Slicer)": r"find_package\(\s*Slicer\b",
        "include(Slicer_USE_FILE)": r"include\(\s*\$\{Slicer_USE_FILE\}\s*\)",
        "add_subdirectory(Slicewise)": r"add_subdirectory\(\s*Slicewise\s*\)",
        "GENERATE_CONFIG": r"include\(\s*\$\{Slicer_EXTENSION_GENERATE_CONFIG\}\s*\)",
        "CPACK": r"include\(\s*\$\{Slicer_EXTENSION_CPACK\}\s*\)",
    }
    problems += [f"top CMakeLists lacks {k}" for k, rx in required.items()
                 if not re.search(rx, stripped)]
    # EXTENSION_* must be set before find_package(Slicer) / the config generation reads them.
    fp = stripped.find("find_package(Slicer")
    for f in EXTENSION_FIELDS:
        at = stripped.find(f"set({f}")
        if at < 0 or (fp >= 0 and at > fp):
            problems.append(f"{f} is not set before find_package(Slicer)")

    mod_dir = os.path.join(plugin, "Slicewise")
    mod = re.sub(r"#[^\n]*", "", open(os.path.join(mod_dir, "CMakeLists.txt")).read())
    msets = cmake_sets(mod)
    name = msets.get("MODULE_NAME")
    if name != "Slicewise":
        problems.append(f"MODULE_NAME is {name}")
    if not re.search(r"slicerMacroBuildScriptedModule\(\s*NAME\s+\$\{MODULE_NAME\}", mod):
        problems.append("module CMakeLists lacks slicerMacroBuildScriptedModule(NAME ...)")

    def listed(var):
        m = re.search(r"set\(\s*" + var + r"\s+([^)]*)\)", mod)
        return [s.replace("${MODULE_NAME}", name or "") for s in (m.group(1).split() if m else [])]
    scripts, resources = listed("MODULE_PYTHON_SCRIPTS"), listed("MODULE_PYTHON_RESOURCES")
    for f in scripts + resources:
        if not os.path.isfile(os.path.join(mod_dir, f)):
            problems.append(f"module CMakeLists lists missing file {f}")
    for f in ("Slicewise.py", "slicewise_ctypes.py"):
        if f not in scripts:
            problems.append(f"{f} not in MODULE_PYTHON_SCRIPTS")
    for f in ("Resources/UI/Slicewise.ui", "Resources/Icons/Slicewise.png"):
        if f not in resources:
            problems.append(f"{f} not in MODULE_PYTHON_RESOURCES")
    return {"fields": fields, "scripts": scripts, "resources": resources, "problems": problems}


def check_ui(plugin):
    path = os.path.join(plugin, "Slicewise", "Resources", "UI", "Slicewise.ui")
    root = ET.parse(path).getroot()
    widgets = {w.get("name"): w.get("class") for w in root.iter("widget")}
    source = open(os.path.join(plugin, "Slicewise", "Slicewise.py")).read()
    used = sorted(set(re.findall(r"self\.ui\.(\w+)", source)))
    custom = sorted(c.findtext("class") for c in root.iter("customwidget"))
    return {
        "root_tag": root.tag,
        "version": root.get("version"),
        "top_class": root.find("widget").get("class"),
        "widgets": widgets,
        "used_by_widget_code": used,
        "missing": [u for u in used if u not in widgets],
        "custom_widgets": custom,
        "custom_undeclared": sorted({c for c in widgets.values() if c and not c.startswith("Q")}
                                    - set(custom)),
    }


def check_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return {"ok": False, "why": "signature"}
    pos, idat, info, crc_ok = 8, b"", None, True
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc, = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        crc_ok &= crc == zlib.crc32(kind + body)
        if kind == b"IHDR":
            info = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype = info[:4]
    channels = {2: 3, 6: 4, 0: 1, 4: 2}[ctype]
    raw = zlib.decompress(idat)
    return {"ok": crc_ok and len(raw) == h * (1 + w * channels * depth // 8),
            "width": w, "height": h, "color_type": ctype, "bytes": len(data)}


def check_catalog(plugin, category):
    entry = json.load(open(os.path.join(plugin, "Slicewise.json")))
    problems = [f"missing required {k}" for k in SCHEMA_REQUIRED if k not in entry]
    problems += [f"{k} not allowed by the schema" for k in entry if k not in SCHEMA_TYPES]
    for k, v in entry.items():
        t = SCHEMA_TYPES.get(k)
        if t is not None and (not isinstance(v, t) or (t is int and isinstance(v, bool))):
            problems.append(f"{k} has type {type(v).__name__}")
        if k in SCHEMA_ENUMS and v not in SCHEMA_ENUMS[k]:
            problems.append(f"{k}={v!r} not in {SCHEMA_ENUMS[k]}")
    if not all(isinstance(x, str) for x in entry.get("build_dependencies", [])):
        problems.append("build_dependencies must be strings")
    if entry.get("$schema", "").rstrip("#") != SCHEMA_ID:
        problems.append(f"$schema is {entry.get('$schema')}")
    if entry.get("category") != category:
        problems.append(f"category {entry.get('category')} != EXTENSION_CATEGORY {category}")
    return {"entry": entry, "problems": problems}


def main():
    plugin, cargo = sys.argv[1:3]
    compiled, failed = [], []
    tmp = tempfile.mkdtemp(prefix="slicer-pyc-")  # keeps __pycache__ out of the source tree
    for d, _, files in os.walk(plugin):
        for f in sorted(files):
            if f.endswith(".py"):
                p = os.path.join(d, f)
                try:
                    py_compile.compile(p, cfile=os.path.join(tmp, f + "c"), doraise=True)
                    compiled.append(os.path.relpath(p, plugin))
                except py_compile.PyCompileError as e:
                    failed.append(str(e))
    cm = check_cmake(plugin)
    licence = open(os.path.join(plugin, "LICENSE")).read()
    cargo_licence = re.search(r'^license\s*=\s*"([^"]+)"', open(cargo).read(), re.M).group(1)
    readme = open(os.path.join(plugin, "README.md")).read()
    emit({
        "py_compiled": sorted(compiled),
        "py_failed": failed,
        "cmake": cm,
        "ui": check_ui(plugin),
        "icon": check_png(os.path.join(plugin, "Slicewise", "Resources", "Icons",
                                       "Slicewise.png")),
        "catalog": check_catalog(plugin, cm["fields"]["EXTENSION_CATEGORY"]),
        "cargo_licence": cargo_licence,
        "licence_matches": cargo_licence == "Apache-2.0"
        and "Apache License, Version 2.0" in licence and "Apache-2.0" in licence,
        "readme_mentions": {k: k in readme for k in (
            "SLICEWISE_LIBRARY", "lib/", "pip_install", "slicewise_runtime_init", "capi",
            "Reload and Test", "SlicewiseTest")},
    })


if __name__ == "__main__":
    main()
