"""The house rules that keep the tree readable: no import cycles in the engine, the engine
never imports Flask or the web package, and modules stay readable in one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 600


def _modules(package: str) -> dict[str, Path]:
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (function-level imports count too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_engine_has_no_import_cycles():
    modules = _modules("engine")
    graph = {
        name: {other for other in _imports(path) if other in modules and other != name}
        for name, path in modules.items()
    }
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        assert name not in visiting, "import cycle: " + " -> ".join([*visiting, name])
        visiting.append(name)
        for other in sorted(graph[name]):
            visit(other)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_the_engine_never_imports_flask_or_web():
    for name, path in _modules("engine").items():
        outside = {m for m in _imports(path) if m.split(".")[0] in ("flask", "web")}
        assert not outside, f"{name} imports {sorted(outside)}"


def test_modules_stay_small_enough_to_read_in_one_sitting():
    too_long = {
        name: lines
        for package in ("engine", "web")
        for name, path in _modules(package).items()
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert too_long == {}
