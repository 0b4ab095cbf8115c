"""The package's layers: no import cycle between modules, and no module importing from a layer above its own.

Every ``kdq_lab`` import counts: at module level, inside functions, and under ``if TYPE_CHECKING:``. The checker
is tested on small fake packages, so it is shown to fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"

#: Each layer may import from the layers before it, and from itself; never from one after it. Modules are placed
#: by their longest matching prefix; a layer listed together with others (same rank) may not import them.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("kdq_lab",),  # the core: the package's top-level modules
    ("kdq_lab.data",),
    ("kdq_lab.evaluation",),
    ("kdq_lab.models",),
    ("kdq_lab.runs", "kdq_lab.curate", "kdq_lab.explore"),
    ("kdq_lab.tuning",),
    ("kdq_lab.experiment",),
    ("kdq_lab.report",),
    ("kdq_lab.execution",),
    ("kdq_lab.app",),
    ("kdq_lab.bench",),
    ("kdq_lab.cli",),
)


def modules(source: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` under ``source``, by dotted name (a package by its own name)."""
    found = {}
    for path in sorted((source / package).rglob("*.py")):
        parts = path.relative_to(source).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, name: str, known: set[str], package: str) -> set[str]:
    """The modules of ``package`` that the module ``name`` (at ``path``) imports, wherever the import stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package, one level up per extra dot
                anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from a import b``: the module a.b if it is one, else a
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # ``import a.b.c`` of a name inside a module: its module
                target = target.rpartition(".")[0]
            if target.split(".")[0] == package and target != name:
                found.add(target)
    return found


def graph(source: Path, package: str) -> dict[str, set[str]]:
    """Module → the package's modules it imports."""
    found = modules(source, package)
    return {name: imports(path, name, set(found), package) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``a → b → … → a``) per strongly connected group of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [_cycle_through(sorted(group)[0], set(group), edges) for group in groups]


def _cycle_through(start: str, group: set[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest path from ``start`` back to itself inside ``group`` (breadth first)."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for other in sorted(edges[node] & group):
                if other == start:
                    return [*paths[node], start]
                if other not in paths:
                    paths[other] = [*paths[node], other]
                    following.append(other)
        frontier = following
    raise AssertionError(f"no cycle through {start}")


def layer_of(module: str, layers: tuple[tuple[str, ...], ...]) -> tuple[int, str]:
    """The rank and the name of the layer ``module`` belongs to (its longest matching prefix)."""
    matches = [
        (len(prefix), rank, prefix)
        for rank, names in enumerate(layers)
        for prefix in names
        if module == prefix or module.startswith(prefix + ".")
    ]
    if not matches:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    _, rank, prefix = max(matches)
    return rank, prefix


def upward(edges: dict[str, set[str]], layers: tuple[tuple[str, ...], ...]) -> list[str]:
    """Every import of a layer above the importer's own, or of another layer of the same rank."""
    bad = []
    for module, targets in sorted(edges.items()):
        rank, name = layer_of(module, layers)
        for target in sorted(targets):
            other_rank, other = layer_of(target, layers)
            if other_rank > rank or (other_rank == rank and other != name):
                bad.append(f"{module} ({name}) imports {target} ({other})")
    return bad


def test_no_module_of_the_lab_is_part_of_an_import_cycle():
    found = cycles(graph(SOURCE, "kdq_lab"))
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


def test_no_module_imports_from_a_layer_above_its_own():
    bad = upward(graph(SOURCE, "kdq_lab"), LAYERS)
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_the_graph_sees_the_lab_s_known_imports():
    edges = graph(SOURCE, "kdq_lab")
    assert "kdq_lab.execution.notebooks" in edges["kdq_lab.execution.runner"]
    assert "kdq_lab.tuning.study" in edges["kdq_lab.app.tune"]
    assert not any(target.startswith("kdq_lab.app") for target in edges["kdq_lab.tuning.study"])


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("files", "cycle"),
    [
        ({"a.py": "from fake import b\n", "b.py": "import fake.a\n"}, ["fake.a", "fake.b", "fake.a"]),
        (  # through a function-level import, over three modules
            {
                "a.py": "def f():\n    from fake.b import x\n",
                "b.py": "from fake.c import y\nx = 1\n",
                "c.py": "from fake.a import f\ny = 2\n",
            },
            ["fake.a", "fake.b", "fake.c", "fake.a"],
        ),
        (  # only for type checking, and relative
            {
                "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import x\n",
                "b.py": "from . import a\nx = 1\n",
            },
            ["fake.a", "fake.b", "fake.a"],
        ),
        (  # a package and its own submodule
            {"p/__init__.py": "from fake.p.m import x\n", "p/m.py": "from fake.p import y\nx = 1\n"},
            ["fake.p", "fake.p.m", "fake.p"],
        ),
    ],
)
def test_the_cycle_checker_finds_a_cycle(tmp_path, files, cycle):
    _package(tmp_path / "fake", {"__init__.py": "", **files})
    assert cycles(graph(tmp_path, "fake")) == [cycle]


def test_the_cycle_checker_passes_a_package_without_cycles(tmp_path):
    _package(
        tmp_path / "fake",
        {
            "__init__.py": "",
            "a.py": "from fake import b\n",
            "b.py": "import os\nx = 1\n",
            "c.py": "from fake.a import *\nfrom fake.b import x\n",
        },
    )
    assert cycles(graph(tmp_path, "fake")) == []


UP = "fake.low.x (fake.low) imports fake.high.y (fake.high)"
BESIDE = "fake.low.x (fake.low) imports fake.side (fake.side)"


@pytest.mark.parametrize(
    ("files", "edge"),
    [
        ({"low/x.py": "from fake.high.y import z\n", "high/y.py": "z = 1\n"}, UP),
        ({"low/x.py": "def f():\n    import fake.high.y\n", "high/y.py": ""}, UP),
        ({"low/x.py": "from fake.side import z\n", "side.py": "z = 1\n"}, BESIDE),
    ],
)
def test_the_layer_checker_names_an_import_from_above_or_beside(tmp_path, files, edge):
    _package(tmp_path / "fake", {"__init__.py": "", "low/__init__.py": "", "high/__init__.py": "", **files})
    layers = (("fake",), ("fake.low", "fake.side"), ("fake.high",))
    assert upward(graph(tmp_path, "fake"), layers) == [edge]


def test_the_layer_checker_allows_imports_downwards_and_within_a_layer(tmp_path):
    files = {
        "__init__.py": "",
        "core.py": "",
        "low/__init__.py": "",
        "low/a.py": "from fake.low import b\n",
        "low/b.py": "from fake import core\n",
        "high/__init__.py": "",
        "high/y.py": "from fake.low.a import *\n",
    }
    _package(tmp_path / "fake", files)
    assert upward(graph(tmp_path, "fake"), (("fake",), ("fake.low",), ("fake.high",))) == []
