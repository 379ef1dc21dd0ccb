"""The import rules of docs/architecture.md, read from the source (every import, also inside functions)
and checked at run time where a rule is about what gets loaded."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "nntui"
TORCH = ("torch", "torchvision")
UI = ("textual", "textual_plotext", "plotext", "typer", "rich")
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """Every module name an import statement in this file names (absolute and relative)."""
    tree = ast.parse(path.read_text(), str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return found


def _internal_edges() -> dict[str, set[str]]:
    edges = {}
    for name, path in MODULES.items():
        targets = {t for t in _imports(path) if t in MODULES and t != name}
        # importing a.b.c also runs a and a.b: the package's own __init__ is not an edge back to itself
        edges[name] = {t for t in targets if not name.startswith(t + ".")}
    return edges


def _reachable(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in edges[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _external(prefixes: tuple[str, ...], modules: set[str]) -> dict[str, list[str]]:
    bad = {}
    for name in modules:
        hits = sorted(t for t in _imports(MODULES[name]) if t.split(".")[0] in prefixes)
        if hits:
            bad[name] = hits
    return bad


def _in(package: str) -> set[str]:
    return {m for m in MODULES if m == package or m.startswith(package + ".")}


def test_no_import_circles():
    edges = _internal_edges()
    circles = sorted(name for name in MODULES if name in _reachable(name, edges))
    assert not circles, f"modules on an import circle: {circles}"


@pytest.mark.parametrize("package", ["nntui.record", "nntui.verdicts", "nntui.tui", "nntui.presets", "nntui.report"])
def test_torch_free_layers_import_no_torch(package):
    edges = _internal_edges()
    closure = set().union(*({m} | _reachable(m, edges) for m in _in(package)))
    assert not _external(TORCH, closure), f"{package} reaches torch through {_external(TORCH, closure)}"


@pytest.mark.parametrize("package", ["nntui.engine", "nntui.record", "nntui.verdicts", "nntui.presets"])
def test_core_layers_import_no_ui_library(package):
    edges = _internal_edges()
    closure = set().union(*({m} | _reachable(m, edges) for m in _in(package)))
    assert not _external(UI, closure), f"{package} reaches a UI library through {_external(UI, closure)}"


def test_preset_schema_imports_no_verdicts():
    edges = _internal_edges()
    assert not {m for m in _reachable("nntui.presets", edges) if m.startswith("nntui.verdicts")}


def test_no_module_over_the_line_limit():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_no_import_error_guards_around_nntui_modules():
    guarded = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Try):
                continue
            catches_import_error = any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError") for h in node.handlers
            )
            own = any(t.startswith("nntui") for stmt in node.body for t in _imports_of_node(stmt))
            if catches_import_error and own:
                guarded.append(name)
    assert not guarded, f"ImportError guards around nntui's own modules in {guarded}"


def _imports_of_node(node: ast.AST) -> set[str]:
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Import):
            found.update(a.name for a in sub.names)
        elif isinstance(sub, ast.ImportFrom) and sub.module:
            found.add(sub.module)
    return found


def test_expect_schema_names_the_kinds_the_verdicts_implement():
    from nntui.presets import EXPECT_KINDS, EXPECT_METRICS
    from nntui.verdicts import KINDS
    from nntui.verdicts.lecture import METRICS

    assert set(EXPECT_KINDS) == set(KINDS)
    assert set(EXPECT_METRICS) == set(METRICS)


@pytest.mark.parametrize(("modules", "forbidden"), [
    (["nntui.record.state", "nntui.record.runlog", "nntui.verdicts", "nntui.presets", "nntui.tui.app", "nntui.report"], TORCH),
    (["nntui.engine.train", "nntui.engine.lr_finder", "nntui.engine.probes", "nntui.runner", "nntui.verdicts"], ("textual", "typer", "plotext", "rich")),
])
def test_at_run_time_a_layer_loads_nothing_it_must_not(modules, forbidden):
    code = (
        "import sys, importlib\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r})\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT.parent)
    assert result.returncode == 0, result.stdout + result.stderr
