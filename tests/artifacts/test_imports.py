"""The contract package sits between training and the server: it imports neither, and serving needs no `onnx`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "artifacts"
MODULES = sorted(PACKAGE.glob("*.py"))


def _imports(tree: ast.AST) -> list[tuple[str, ast.AST]]:
    """(top-level module name, node) of every import in `tree`."""
    found: list[tuple[str, ast.AST]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], node) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module.split(".")[0], node))
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_the_contract_imports_neither_side_and_loads_onnx_only_when_writing(path: Path) -> None:
    tree = ast.parse(path.read_text())
    names = {name for name, _ in _imports(tree)}
    assert not names & {"server", "training", "bench", "tests", "tensorflow", "keras", "sklearn", "pandas"}
    top_level = {name for name, node in _imports(tree) if node in tree.body}
    assert "onnx" not in top_level, "onnx is the train extra: import it inside the function that writes"
