"""The package's layers, read from its imports.

Every module of ``ringmgr/`` is parsed with ``ast`` (imports inside functions count too:
deferring an import keeps ``--help`` fast, it does not change who depends on whom).  The
layers, from the bottom:

- core: ``ringmgr/rings/``, ``ringmgr/config*.py``, ``ringmgr/errors.py``,
  ``ringmgr/timespec.py`` — pure; they import neither ``cli``, ``exec`` nor ``ops``
  (and the ring core no config module: the config is parsed with the rings' rules);
- ``ringmgr/exec/`` — executors; never ``cli`` or ``ops``;
- ``ringmgr/ops/`` — host operations, and ``ringmgr/live/`` — what the running cluster
  says (recon); never ``cli``;
- ``ringmgr/cli/`` — the commands, on top.

No module may import one of a layer above its own, and no modules may import each other
in a circle (Tarjan's strongly connected components over the module graph; the
rehearsal lab ``sim/`` is held to the no-circle rule too).

Where code outside this change's reach still breaks a rule, it is named below, with why,
in an allow-list; the tests also fail when an allow-listed entry no longer breaks its
rule, so the lists can only shrink.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Imports that run up a layer and are still there: (module, imported module) pairs.
# None today; keep it empty.
ALLOWED_UPWARD: set[tuple[str, str]] = set()

# Import circles still there, each as the sorted tuple of its modules.
ALLOWED_CIRCLES: set[tuple[str, ...]] = set()   # none today; keep it empty

_CORE = "core"
_RANK = {_CORE: 0, "exec": 1, "ops": 2, "live": 2, "cli": 3}


def modules(package: str) -> dict[str, Path]:
    """Every module under ``package/``: dotted name -> path."""
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The known module ``name`` is, or the package module it lives in."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The known modules ``module`` imports, anywhere in its body."""
    is_pkg = path.name == "__init__.py"
    here = module.split(".") if is_pkg else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # ``from pkg import mod`` imports the module pkg.mod when there is one
            names = [f"{prefix}.{a.name}" for a in node.names] + [prefix]
        else:
            continue
        for name in names:
            target = _resolve(name, known)
            if target is not None and target != module:
                found.add(target)
    # ``from pkg import mod`` also names ``pkg`` itself; keep the package only when no
    # submodule of it was the target of that import
    return {t for t in found
            if not (known[t].name == "__init__.py"
                    and any(o.startswith(t + ".") for o in found))}


def graph(package: str) -> dict[str, set[str]]:
    known = modules(package)
    return {m: imports_of(m, p, known) for m, p in known.items()}


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("cli", "exec", "ops", "live"):
        return parts[1]
    return _CORE


def circles(g: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(tuple(sorted(comp)))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return sorted(out)


def upward(g: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(m, t) for m, targets in g.items() for t in targets
            if _RANK[layer(t)] > _RANK[layer(m)]}


# -- the rules ----------------------------------------------------------------------

def test_no_module_imports_from_a_layer_above_it():
    found = upward(graph("ringmgr"))
    new = sorted(found - ALLOWED_UPWARD)
    assert not new, "imports that run up a layer:\n" + "\n".join(
        f"  {m} ({layer(m)}) imports {t} ({layer(t)})" for m, t in new)


def test_the_ring_core_reads_no_config_module():
    """The config parses ring values with the ring core's rules, never the other way
    round: ``ringmgr/rings/`` takes a loaded Config as an argument, it imports no
    ``ringmgr.config*`` module."""
    found = sorted((m, t) for m, targets in graph("ringmgr").items() for t in targets
                   if m.startswith("ringmgr.rings.") and t.startswith("ringmgr.config"))
    assert not found, f"ring core modules importing the config: {found}"


def test_no_import_circles():
    found = set(circles(graph("ringmgr")) + circles(graph("sim")))
    new = sorted(found - ALLOWED_CIRCLES)
    assert not new, "import circles:\n" + "\n".join("  " + " <-> ".join(c) for c in new)


def test_allow_lists_are_not_stale():
    """An allowed breach that is gone must leave the list (it can only shrink)."""
    g = graph("ringmgr")
    stale_up = sorted(ALLOWED_UPWARD - upward(g))
    stale_circles = sorted(ALLOWED_CIRCLES - set(circles(g) + circles(graph("sim"))))
    assert not stale_up and not stale_circles, (
        "allow-listed but no longer found (remove from the list): "
        f"{stale_up + stale_circles}")


# -- the reader itself: each rule must be able to fail -------------------------------

def _write(tmp_path: Path, files: dict[str, str]) -> dict[str, set[str]]:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    known = {}
    for path in sorted((tmp_path / "ringmgr").rglob("*.py")):
        parts = list(path.relative_to(tmp_path).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        known[".".join(parts)] = path
    return {m: imports_of(m, p, known) for m, p in known.items()}


def test_reader_sees_deferred_relative_and_from_package_imports(tmp_path):
    g = _write(tmp_path, {
        "ringmgr/__init__.py": "",
        "ringmgr/errors.py": "",
        "ringmgr/rings/__init__.py": "",
        "ringmgr/rings/a.py": "def f():\n    from ringmgr.ops.push import x\n",
        "ringmgr/rings/b.py": "from . import a\nfrom .a import f\n",
        "ringmgr/ops/__init__.py": "",
        "ringmgr/ops/push.py": "import ringmgr.cli.main\n",
        "ringmgr/cli/__init__.py": "",
        "ringmgr/cli/main.py": "from ringmgr.rings import b\n",
    })
    assert g["ringmgr.rings.a"] == {"ringmgr.ops.push"}
    assert g["ringmgr.rings.b"] == {"ringmgr.rings.a"}
    assert upward(g) == {("ringmgr.rings.a", "ringmgr.ops.push"),
                         ("ringmgr.ops.push", "ringmgr.cli.main")}
    assert circles(g) == [("ringmgr.cli.main", "ringmgr.ops.push", "ringmgr.rings.a",
                           "ringmgr.rings.b")]


def test_exec_importing_ops_is_upward():
    g = {"ringmgr.exec.ssh": {"ringmgr.ops.facts"}, "ringmgr.ops.facts": set(),
         "ringmgr.config": {"ringmgr.exec.ssh"}}
    assert upward(g) == {("ringmgr.exec.ssh", "ringmgr.ops.facts"),
                         ("ringmgr.config", "ringmgr.exec.ssh")}


def test_tarjan_finds_two_separate_circles_and_ignores_a_chain():
    g = {"a": {"b"}, "b": {"a", "c"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert circles(g) == [("a", "b"), ("c", "d", "e")]
