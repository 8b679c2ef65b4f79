"""Small helpers shared by the load test and the benchmark: model-directory checks and Markdown tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.payloads import MODEL_OF_RPC


def check_model_dir(model_dir: Path) -> None:
    """Exit with a clear message when `model_dir` lacks one of the four models."""
    missing = [name for name in MODEL_OF_RPC.values() if not (model_dir / name).is_dir()]
    if missing:
        raise SystemExit(
            f"model directory {model_dir} lacks {', '.join(missing)}: run `make train-export`, or build the tiny "
            "test set with `.venv/bin/python -m bench.tiny_models DIR` and pass MODEL_DIR=DIR"
        )


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub Markdown table; floats with two decimals."""

    def cell(value: object) -> str:
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
