"""Settings come from defaults, then DWCP_INFERENCE_* environment variables, then flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import Settings, load_settings


def test_defaults() -> None:
    settings = load_settings([], environ={})
    assert settings == Settings()
    assert (settings.host, settings.grpc_port, settings.metrics_port) == ("127.0.0.1", 50051, 9102)
    assert (settings.model_dir, settings.max_batch_items, settings.latency_budget_s) == (Path("models"), 1024, 0.01)


def test_environment_then_flags() -> None:
    environ = {"DWCP_INFERENCE_GRPC_PORT": "6000", "DWCP_INFERENCE_MODEL_DIR": "/srv/models"}
    environ |= {"DWCP_INFERENCE_LATENCY_BUDGET_MS": "7.5", "DWCP_INFERENCE_READY_FILE": "/tmp/ready.json"}
    settings = load_settings(["--grpc-port", "0", "--metrics-port", "-1"], environ=environ)
    assert (settings.grpc_port, settings.metrics_port, settings.model_dir) == (0, -1, Path("/srv/models"))
    assert (settings.latency_budget_ms, settings.ready_file) == (7.5, Path("/tmp/ready.json"))


@pytest.mark.parametrize(
    "argv",
    [
        ["--grpc-threads", "0"],
        ["--max-batch-items", "0"],
        ["--metrics-port", "-2"],
        ["--log-level", "LOUD"],
        ["--max-pending-rpcs", "-1"],
    ],
)
def test_bad_values_are_refused(argv: list[str]) -> None:
    with pytest.raises(ValueError):
        load_settings(argv, environ={})


def test_a_non_number_is_a_usage_error() -> None:
    with pytest.raises(SystemExit):
        load_settings(["--grpc-port", "many"], environ={})


def test_the_pending_bound_reaches_grpc_core_only_when_set() -> None:
    from server.app import InferenceApp

    def options(argv: list[str]) -> dict[str, int]:
        return dict(InferenceApp(load_settings([*argv, "--model-dir", "/nonexistent"], environ={})).grpc_options())

    assert "grpc.server.max_pending_requests" not in options([])
    bounded = options(["--max-pending-rpcs", "3"])
    assert bounded["grpc.server.max_pending_requests"] == bounded["grpc.server.max_pending_requests_hard_limit"] == 3
