"""The latency gate's rate and process count are stated in the Makefile and the README, and they agree."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _make_variable(name: str) -> int:
    match = re.search(rf"^{name} :?= *(\d+)\s*$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, f"{name} is not set in the Makefile"
    return int(match.group(1))


def test_readme_states_the_gate_rate_and_processes_the_makefile_uses() -> None:
    readme = (ROOT / "README.md").read_text()
    rate, processes = _make_variable("LOADTEST_RPS"), _make_variable("LOADTEST_PROCESSES")
    assert f"**{rate:,} requests per second per RPC**" in readme
    assert f"**{processes} processes sharing the port**" in readme


def test_the_loadtest_target_passes_both_to_the_gate() -> None:
    recipe = re.search(r"^loadtest:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert recipe, "no loadtest target"
    assert "--rate $(LOADTEST_RPS)" in recipe.group(1)
    assert "--processes $(LOADTEST_PROCESSES)" in recipe.group(1)
