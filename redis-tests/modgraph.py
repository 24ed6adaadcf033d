#!/usr/bin/env python3
"""Draws redlog's module graph from the code's own imports and checks it.

    python3 redis-tests/modgraph.py [--dot] [--strict]

Every `use crate::...`, `use super::...` / `use self::...` statement (brace
groups expanded) and every `crate::a::b` path written inline in src/ is an
edge from the file's module to the module the path names (its longest
prefix that is a module of the crate; `pub use` re-exports count too).
Lines inside `#[cfg(test)]` modules are skipped: tests may reach anywhere.
Comments and strings are stripped first.

Two graphs are checked:

- the top-level modules (`crate::db`, `crate::stream`, ...): cycles
  between them, and imports from a lower layer to a higher one, by
  LAYERS below (main -> server -> commands -> node -> db/stream/logparse ->
  storage/protocol);
- inside each top-level module, its direct children (`storage::log`,
  `storage::wal`, ...): cycles between siblings. The module's own
  `mod.rs` is its facade (it declares and re-exports its children, and
  children use the types it defines), so edges to and from it are not
  counted here.

Output: the cycles (each as a strongly connected component, with one edge
per pair and the file and line it comes from), then the upward imports.
Exit status 1 under --strict when anything is reported other than the
known exceptions in ALLOWED_* (to be fixed later; marked in the output).
--dot prints the top-level graph in Graphviz form instead.
"""
import os
import re
import sys
from collections import defaultdict

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")

# Higher number = higher layer. An import must go to the same or a lower
# layer (inside one layer, the cycle check keeps one direction). Modules
# not listed (config, glob, fuzz, ...) are checked for cycles only.
LAYERS = {
    "main": 8,
    "server": 7,
    "commands": 6,
    "node": 5,
    "rdb": 4,
    "acl": 3,
    "db": 3,
    "catalog": 2,
    "stream": 2,
    "logparse": 2,
    "storage": 1,
    "protocol": 1,
}

# Known exceptions, reported with "(known, left for later)" and not
# failed by --strict. A cycle is known when its modules are a subset of a
# set below. None are left: the graph has no cycle and no upward import.
ALLOWED_CYCLES = []
ALLOWED_UP = set()
ALLOWED_SUB_CYCLES = []


def module_of(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    if rel == ["lib"]:
        return []
    return rel


def strip(src):
    """Removes comments, string and char literals (keeps line breaks)."""
    out = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if src.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif src.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    if src[i] == "\n":
                        out.append("\n")
                    i += 1
        elif c == "r" and re.match(r'r#*"', src[i:i + 10]) and not (
            i and (src[i - 1].isalnum() or src[i - 1] == "_")
        ):
            m = re.match(r'r(#*)"', src[i:])
            end = '"' + m.group(1)
            j = src.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append("\n" * src.count("\n", i, j))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            out.append("\n" * src.count("\n", i, j))
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'|'\\u\{[0-9a-fA-F]+\}'|'\\x..'", src[i:i + 12]):
            m = re.match(r"'(\\.|[^\\'])'|'\\u\{[0-9a-fA-F]+\}'|'\\x..'", src[i:i + 12])
            i += m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def drop_test_modules(src):
    """Blanks `#[cfg(test)] mod x { ... }` bodies (keeps line breaks)."""
    out = src
    for m in list(re.finditer(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", src)):
        start = m.end()
        depth, j = 1, start
        while j < len(src) and depth:
            if src[j] == "{":
                depth += 1
            elif src[j] == "}":
                depth -= 1
            j += 1
        body = src[start:j]
        out = out[:start] + re.sub(r"[^\n]", " ", body) + out[j:]
    return out


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e]."""
    tree = re.sub(r"\s+", "", tree)
    m = re.match(r"^(.*?)\{(.*)\}$", tree)
    if not m:
        return [re.sub(r"as\w+$", "", tree)] if tree else []
    prefix, inner = m.group(1), m.group(2)
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    res = []
    for p in parts:
        for e in expand_use(p):
            res.append(prefix + e)
    return res


def resolve(path, here, modules):
    """A path (list of segments) used in module `here` -> target module."""
    segs = path
    if segs[0] == "crate":
        base = []
        segs = segs[1:]
    elif segs[0] in ("super", "self"):
        base = list(here)
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                base = base[:-1]
            segs = segs[1:]
    else:
        return None
    full = base + segs
    best = None
    for k in range(len(full), 0, -1):
        if tuple(full[:k]) in modules:
            best = full[:k]
            break
    return best


def collect():
    files = []
    for d, _, fs in os.walk(ROOT):
        for f in fs:
            if f.endswith(".rs"):
                files.append(os.path.join(d, f))
    modules = {tuple(module_of(f)) for f in files}
    # Inline modules (`mod tests {` excepted) are not separate files; paths
    # into them resolve to their file's module, which is what we want.
    edges = []  # (from_module, to_module, file, line)
    for f in sorted(files):
        here = module_of(f)
        raw = open(f, encoding="utf-8").read()
        src = drop_test_modules(strip(raw))
        if os.path.basename(f) == "main.rs":
            here = ["main"]
            src = src.replace("redlog::", "crate::")
        seen = set()
        for m in re.finditer(r"\buse\s+((?:crate|super|self)\b[^;]*);", src):
            line = src.count("\n", 0, m.start()) + 1
            for p in expand_use(m.group(1)):
                segs = [s for s in p.split("::") if s and s != "*"]
                t = resolve(segs, here, modules)
                if t is not None and (tuple(t), line) not in seen:
                    seen.add((tuple(t), line))
                    edges.append((tuple(here), tuple(t), f, line))
        for m in re.finditer(r"(?<![\w:])((?:crate|super)(?:::\w+)+)", src):
            line = src.count("\n", 0, m.start()) + 1
            segs = m.group(1).split("::")
            t = resolve(segs, here, modules)
            if t is not None and (tuple(t), line) not in seen:
                seen.add((tuple(t), line))
                edges.append((tuple(here), tuple(t), f, line))
    return edges


def sccs(nodes, adj):
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in adj.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def rel(f):
    return os.path.relpath(f, os.path.join(ROOT, ".."))


def main():
    dot = "--dot" in sys.argv
    strict = "--strict" in sys.argv
    edges = collect()

    # Top level.
    top = defaultdict(list)
    for a, b, f, line in edges:
        ta = a[0] if a else "lib"
        tb = b[0] if b else "lib"
        if ta != tb and tb != "lib":
            top[(ta, tb)].append((f, line))
    if dot:
        print("digraph redlog {")
        for (a, b), where in sorted(top.items()):
            print(f'  "{a}" -> "{b}" [label="{len(where)}"];')
        print("}")
        return 0
    adj = defaultdict(set)
    nodes = set()
    for a, b in top:
        adj[a].add(b)
        nodes.update((a, b))
    failures = 0
    print("== top-level modules: cycles")
    found = False
    for comp in sccs(nodes, adj):
        found = True
        known = any(comp <= a for a in ALLOWED_CYCLES)
        failures += not known
        print(f"cycle {{{', '.join(sorted(comp))}}}{' (known, left for later)' if known else ''}")
        for (a, b), where in sorted(top.items()):
            if a in comp and b in comp:
                f, line = where[0]
                print(f"  {a} -> {b}: {len(where)} import(s), e.g. {rel(f)}:{line}")
    if not found:
        print("none")

    print("== top-level modules: upward imports")
    found = False
    for (a, b), where in sorted(top.items()):
        if a in LAYERS and b in LAYERS and LAYERS[b] > LAYERS[a]:
            found = True
            known = (a, b) in ALLOWED_UP
            failures += not known
            f, line = where[0]
            print(
                f"  {a} (layer {LAYERS[a]}) -> {b} (layer {LAYERS[b]}): {len(where)} import(s), "
                f"e.g. {rel(f)}:{line}{' (known, left for later)' if known else ''}"
            )
    if not found:
        print("none")

    print("== inside each module: cycles between its direct children")
    sub = defaultdict(list)
    for a, b, f, line in edges:
        if len(a) >= 2 and len(b) >= 2 and a[0] == b[0] and a[1] != b[1]:
            sub[((a[0], a[1]), (b[0], b[1]))].append((f, line))
    sadj = defaultdict(set)
    snodes = set()
    for a, b in sub:
        sadj[a].add(b)
        snodes.update((a, b))
    found = False
    for comp in sccs(snodes, sadj):
        found = True
        names = sorted("::".join(c) for c in comp)
        known = any(set(names) <= a for a in ALLOWED_SUB_CYCLES)
        failures += not known
        print(f"cycle {{{', '.join(names)}}}{' (known, left for later)' if known else ''}")
        for (a, b), where in sorted(sub.items()):
            if a in comp and b in comp:
                f, line = where[0]
                print(f"  {'::'.join(a)} -> {'::'.join(b)}: {len(where)} import(s), e.g. {rel(f)}:{line}")
    if not found:
        print("none")
    return 1 if strict and failures else 0


if __name__ == "__main__":
    sys.exit(main())
