"""No public function or method of the lab takes more than eight parameters: options travel as frozen dataclasses."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "kdq_lab"
MOST = 8


def parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    """The parameters of ``function`` (``*args`` and ``**kwargs`` included), without ``self`` or ``cls``."""
    args = function.args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    names += [f"*{a.arg}" for a in (args.vararg,) if a] + [f"**{a.arg}" for a in (args.kwarg,) if a]
    return names[1:] if names[:1] in (["self"], ["cls"]) else names


def too_long(source: str, where: str, most: int = MOST) -> list[str]:
    """Every public function or method in ``source`` with more than ``most`` parameters."""
    return [
        f"{where}:{node.lineno} {node.name}: {len(parameters(node))} parameters ({', '.join(parameters(node))})"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and not node.name.startswith("_")
        and len(parameters(node)) > most
    ]


def test_no_public_function_takes_more_than_eight_parameters():
    found = [
        problem
        for path in sorted(PACKAGE.rglob("*.py"))
        for problem in too_long(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE)))
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("def f(a, b, c, d, e, f, g, h, i): ...", "f"),
        ("def f(a, *, b, c, d, e, f, g, h, i=1): ...", "f"),
        ("def f(a, b, c, d, e, f, g, h, *args): ...", "f"),
        ("class C:\n    def m(self, a, b, c, d, e, f, g, h, **kw): ...", "m"),
        ("def outer():\n    def inner(a, b, c, d, e, f, g, h, i): ...", "inner"),
        ("async def f(a, b, c, d, e, f, g, h, i): ...", "f"),
    ],
)
def test_the_check_finds_a_long_signature(source, name):
    (problem,) = too_long(source, "x.py")
    assert f" {name}: 9 parameters" in problem


@pytest.mark.parametrize(
    "source",
    [
        "def f(a, b, c, d, e, f, g, h): ...",
        "class C:\n    def m(self, a, b, c, d, e, f, g, h): ...",
        "class C:\n    @classmethod\n    def k(cls, a, b, c, d, e, f, g, h): ...",
        "def _private(a, b, c, d, e, f, g, h, i): ...",
    ],
)
def test_the_check_passes_eight_parameters_and_private_functions(source):
    assert too_long(source, "x.py") == []
