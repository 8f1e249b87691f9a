"""The house rules of docs/architecture.md that a reader of the code relies on: no module over 500
lines and no function over 60 (a module that is data says so in its docstring), and docstrings cite
documents in the repository, not ones outside it."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
DATA_MARK = "This module is data"


def _sources() -> list[Path]:
    return sorted(p for pkg in ("engine", "app") for p in (REPO / pkg).rglob("*.py"))


def test_modules_and_functions_stay_small() -> None:
    too_long = []
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        is_data = DATA_MARK in (ast.get_docstring(tree) or "")
        if text.count("\n") > MAX_MODULE_LINES and not is_data:
            too_long.append(f"{path.relative_to(REPO)}: {text.count(chr(10))} lines")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not is_data:
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}(): {n} lines")
    assert not too_long, "split these (or mark a data module in its docstring):\n" + "\n".join(too_long)


def test_docstrings_cite_documents_in_the_repository() -> None:
    outside = [f"{p.relative_to(REPO)}:{i}" for p in _sources()
               for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if "ARCHITECTURE §" in line]
    assert not outside, f"cite docs/architecture.md instead: {outside}"
    assert (REPO / "docs" / "architecture.md").is_file()
