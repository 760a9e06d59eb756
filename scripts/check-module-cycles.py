#!/usr/bin/env python3
"""Fails on any file-level import circle inside a crate's `src` (run by scripts/check-layering).

Cargo forbids circles between crates but not between the files of one crate, and a circle there
means neither file can be read, tested or moved without the other. For every crate under
`crates/` this builds the graph "file -> files it imports" from, in code outside comments and
`#[cfg(test)]` items:
  * `use` trees and paths starting with `crate::`, `super::` or `self::`;
  * paths starting with the name of a module the file declares (`mod x;` then `x::f()`).
Each path goes to the deepest module file it names (`crate::output::nifti::write_mask` ->
`output/nifti.rs`). An import of an enclosing module's file (a child's `super::Geometry`, or
`crate::volume::DType` from inside `volume/`) is not counted: a child may use the vocabulary of
the module it belongs to, and its parent naming it back is how a module is built from its files.
Every other import counts, `pub use` re-exports included, so siblings, cousins and modules far
apart may not import each other in a circle, directly or through others.

Every strongly connected group of more than one file is reported with the imports that close it;
the exit status is 1 when there is one.  Usage: check-module-cycles.py [REPO_ROOT], or
check-module-cycles.py --self-test to check the checker on a made-up crate.
"""
import re
import sys
from pathlib import Path

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_code(text):
    """The text with comments, string and char literals blanked (newlines kept for line numbers)."""
    out, i, n = [], 0, len(text)

    def blank(s):
        return re.sub(r"[^\n]", " ", s)

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(text[i:j]))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(text[i:j]))
            i = j
        elif re.match(r'(b?r#*")', text[i:i + 40]) and (i == 0 or not re.match(r"\w", text[i - 1])):
            m = re.match(r'b?r(#*)"', text[i:])
            end = text.find('"' + m.group(1), i + m.end())
            j = n if end < 0 else end + 1 + len(m.group(1))
            out.append(blank(text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(blank(text[i:j + 1]))
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{..}'), else a lifetime or label.
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:
                out.append(blank(m.group(0)))
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching_brace(code, open_at):
    depth = 0
    for j in range(open_at, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(code) - 1


def drop_test_items(code):
    """Blanks every item under `#[cfg(test)]` (test modules, test-only imports and helpers).
    Returns the code and the names of `mod x;` declarations that were test-only."""
    test_mods = set()
    while True:
        m = re.search(r"#\[cfg\(test\)\]", code)
        if not m:
            return code, test_mods
        j = m.end()
        # Further attributes on the same item.
        while True:
            a = re.match(r"\s*#\[", code[j:])
            if not a:
                break
            depth, k = 0, j + a.end() - 1
            while k < len(code):
                depth += {"[": 1, "]": -1}.get(code[k], 0)
                k += 1
                if depth == 0:
                    break
            j = k
        semi, brace = code.find(";", j), code.find("{", j)
        decl = re.match(r"\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", code[j:])
        if decl:
            test_mods.add(decl.group(1))
        if brace >= 0 and (semi < 0 or brace < semi):
            end = matching_brace(code, brace)
        else:
            end = semi if semi >= 0 else len(code) - 1
        code = code[:m.start()] + re.sub(r"[^\n]", " ", code[m.start():end + 1]) + code[end + 1:]


def expand_use_tree(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e'] (globs and `as` renames trimmed)."""
    tree = re.sub(r"\s+", "", re.sub(r"\s+as\s+" + IDENT, "", tree))
    brace = tree.find("{")
    if brace < 0:
        return [tree]
    prefix, inner = tree[:brace], tree[brace + 1:tree.rfind("}")]
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        if p:
            out += [prefix + q for q in expand_use_tree(p)]
    return out


class Crate:
    """The module tree of one crate root (lib.rs, main.rs or a bin), found through `mod` items."""

    def __init__(self, root_file):
        self.files = {}  # module path tuple -> file
        self.code = {}  # file -> stripped code
        self.test_mods = {}  # file -> names of test-only child modules
        self._walk((), root_file)

    def _walk(self, modpath, file):
        code, tests = drop_test_items(strip_code(file.read_text()))
        self.files[modpath] = file
        self.code[file] = code
        self.test_mods[file] = tests
        for m in re.finditer(r"(?:^|[;{}\s])(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", code):
            name = m.group(1)
            child = self._child_file(file, name)
            if child is not None:
                self._walk(modpath + (name,), child)

    @staticmethod
    def _child_file(file, name):
        base = file.parent if file.name in ("lib.rs", "main.rs", "mod.rs") else file.parent / file.stem
        if file.parent.name == "bin" and file.name not in ("mod.rs",):
            base = file.parent / file.stem
        for cand in (base / f"{name}.rs", base / name / "mod.rs"):
            if cand.is_file():
                return cand
        return None

    def resolve(self, segments):
        """The file of the deepest module that the absolute module path `segments` names."""
        mod = ()
        for s in segments:
            if mod + (s,) in self.files:
                mod = mod + (s,)
            else:
                break
        return self.files[mod], mod

    def modpath_of(self, file):
        return next(k for k, v in self.files.items() if v == file)


def imports(crate, file):
    """(line, target file, how) for every import of `file` inside its crate."""
    code = crate.code[file]
    here = crate.modpath_of(file)
    children = {k[-1] for k in crate.files if k[:-1] == here and len(k) == len(here) + 1}
    found = []

    def absolute(path):
        segs = [s for s in path.split("::") if s]
        if not segs:
            return None
        base = list(here)
        if segs[0] == "crate":
            base, segs = [], segs[1:]
        elif segs[0] in ("super", "self"):
            while segs and segs[0] in ("super", "self"):
                if segs[0] == "super":
                    base = base[:-1]
                segs = segs[1:]
        elif segs[0] in children:
            pass
        else:
            return None
        return tuple(base) + tuple(s for s in segs if s not in ("*", "self"))

    def add(pos, path, how):
        mod = absolute(path)
        if mod is None:
            return
        target, target_mod = crate.resolve(mod)
        # A child using what its enclosing module defines is not counted (see the top).
        if target_mod != here[:len(target_mod)]:
            found.append((code.count("\n", 0, pos) + 1, target, how))

    use_spans = []
    for m in re.finditer(r"\buse\s+([^;]+);", code):
        use_spans.append((m.start(), m.end()))
        for path in expand_use_tree(m.group(1)):
            add(m.start(), path, "use " + path)
    in_use = lambda p: any(a <= p < b for a, b in use_spans)
    heads = "|".join(["crate", "super", "self"] + sorted(children))
    for m in re.finditer(r"(?<![\w:])((?:" + heads + r")(?:\s*::\s*" + IDENT + r")+)", code):
        if not in_use(m.start()):
            add(m.start(), re.sub(r"\s+", "", m.group(1)), m.group(1))
    return found


def cycles(graph):
    """Strongly connected groups of more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


# Circles known and being removed elsewhere, each with who removes it. Listed circles are
# reported but do not fail; a listed circle that is gone fails, so that the list only shrinks.
KNOWN: dict = {
    # frozenset({file, ...}): "why it is allowed for now" -- none: every circle is gone.
}


def main():
    repo = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    failed, seen = False, set()
    for src in sorted(repo.glob("crates/*/src")):
        roots = [p for p in (src / "lib.rs", src / "main.rs") if p.is_file()]
        roots += sorted((src / "bin").glob("*.rs")) if (src / "bin").is_dir() else []
        for root in roots:
            for group, edges in crate_cycles(Crate(root)):
                names = frozenset(str(f.relative_to(repo)) for f in group)
                seen.add(names)
                known = KNOWN.get(names)
                failed |= known is None
                label = f"known import circle ({known})" if known else "import circle"
                print(f"check-module-cycles: {label} in {src.relative_to(repo)}: "
                      + " <-> ".join(str(f.relative_to(src)) for f in group), file=sys.stderr)
                for a, b, line, how in edges:
                    print(f"    {a.relative_to(repo)}:{line} imports {b.relative_to(src)} ({how})",
                          file=sys.stderr)
    for gone in set(KNOWN) - seen:
        failed = True
        print("check-module-cycles: the known circle " + " <-> ".join(sorted(gone))
              + " is gone: remove it from KNOWN in " + __file__, file=sys.stderr)
    if not failed:
        print("check-module-cycles: ok")
    return 1 if failed else 0


def crate_cycles(crate):
    """Each circle of `crate` as (files, [(file, imported file, line, how)] closing it)."""
    edges, graph = {}, {}
    for f in crate.code:
        for line, target, how in imports(crate, f):
            graph.setdefault(f, set()).add(target)
            edges.setdefault((f, target), (line, how.strip()))
    out = []
    for group in cycles(graph):
        members = set(group)
        inner = [(a, b) + edges[(a, b)] for (a, b) in sorted(edges)
                 if a in members and b in members]
        out.append((group, inner))
    return out


def self_test():
    """The checker finds a made-up crate's circles, and nothing in the patterns it allows."""
    import tempfile
    files = {
        "lib.rs": "pub mod a;\npub mod b;\npub mod c;\nmod d;\npub struct Root;\n",
        # a <-> b through a `use` tree and a path in code; c only uses its parent's vocabulary.
        "a.rs": "use crate::{b::{self, B}, c::C, Root};\npub struct A;\n",
        "b.rs": "// use crate::c::C; (a comment)\npub struct B;\n"
                "fn f() -> usize { let s = \"crate::c::x\"; super::a::A; s.len() }\n",
        "c/mod.rs": "mod inner;\npub use inner::C;\npub struct Shared;\n"
                    "#[cfg(test)]\nmod tests { use crate::d::D; }\n",
        # Comments, strings and test modules name a, d: no circle through c.
        "c/inner.rs": "use super::Shared;\nuse crate::Root;\n/// [`crate::a::A`]\npub struct C;\n"
                      "const S: &str = \"crate::a::A\"; /* crate::a */\n",
        "d.rs": "use crate::c::C;\npub struct D;\n",
    }
    with tempfile.TemporaryDirectory() as root:
        for name, text in files.items():
            path = Path(root, "crates/x/src", name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        crate = Crate(Path(root, "crates/x/src/lib.rs"))
        found = [sorted(str(f.relative_to(Path(root, "crates/x/src"))) for f in group)
                 for group, _ in crate_cycles(crate)]
    assert found == [["a.rs", "b.rs"]], found
    print("check-module-cycles: self-test ok")
    return 0


if __name__ == "__main__":
    sys.exit(self_test() if sys.argv[1:] == ["--self-test"] else main())
