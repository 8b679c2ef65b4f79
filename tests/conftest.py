"""One rule for the whole suite: under CI (the CI variable set, as .ci/run is run) a skipped test fails.

A skip in a test's setup (a skipif mark, a fixture) is reported as an error, in its body as a failure. A
test may skip on a developer's machine that lacks a tool `make test` installs (buf, ghz, kustomize,
prometheus); in CI that tool is part of the run, so its absence is a failure, never a quiet pass. The Go
live tests follow the same rule (clients/go/dwcpinference/harness_test.go, requireIntegration).
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

CI_VARIABLE = "CI"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if report.skipped and os.environ.get(CI_VARIABLE) and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"skipped with {CI_VARIABLE}={os.environ[CI_VARIABLE]!r}, where no test may skip: {reason}"
    return report
