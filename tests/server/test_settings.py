"""Settings come from defaults, then DWCP_INFERENCE_* environment variables, then flags."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest

from server.settings import Settings, SettingsError, build_parser, load_settings


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
    ("argv", "named"),
    [
        (["--grpc-threads", "0"], "--grpc-threads='0': must be at least 1"),
        (["--max-batch-items", "0"], "--max-batch-items='0': must be at least 1"),
        (["--metrics-port", "-2"], "--metrics-port='-2': must be -1 to 65535"),
        (["--grpc-port", "70000"], "--grpc-port='70000': must be 0 to 65535"),
        (["--log-level", "LOUD"], "--log-level='LOUD': must be one of DEBUG, INFO, WARNING, ERROR"),
        (["--max-pending-rpcs", "-1"], "--max-pending-rpcs='-1': must be at least 0"),
        (["--max-receive-message-bytes", "10"], "--max-receive-message-bytes='10': must be at least 1024"),
        (["--request-window-bytes", "-1"], "--request-window-bytes='-1': must be at least 0"),
        (
            ["--request-window-bytes", "512"],
            "--request-window-bytes='512': must be 0 (gRPC's own windows) or at least 1024",
        ),
    ],
)
def test_a_value_out_of_range_is_refused_naming_the_flag_and_value(argv: list[str], named: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(argv, environ={})
    assert str(error.value) == named


def test_a_value_out_of_range_in_the_environment_names_the_variable() -> None:
    with pytest.raises(SettingsError) as error:
        load_settings([], environ={"DWCP_INFERENCE_MAX_IN_FLIGHT": "0"})
    assert str(error.value) == "DWCP_INFERENCE_MAX_IN_FLIGHT='0': must be at least 1"


@pytest.mark.parametrize(
    ("argv", "environ", "named"),
    [
        (["--grpc-port", "many"], {}, "--grpc-port='many': not a whole number"),
        ([], {"DWCP_INFERENCE_GRPC_PORT": "abc"}, "DWCP_INFERENCE_GRPC_PORT='abc': not a whole number"),
        ([], {"DWCP_INFERENCE_GRPC_PORT": "1.5"}, "DWCP_INFERENCE_GRPC_PORT='1.5': not a whole number"),
        (["--latency-budget-ms", "fast"], {}, "--latency-budget-ms='fast': not a number"),
        ([], {"DWCP_INFERENCE_MIN_DEADLINE_MS": "nan"}, "DWCP_INFERENCE_MIN_DEADLINE_MS='nan': not a finite number"),
        (["--insecure", "maybe"], {}, "--insecure='maybe': not a yes/no value (true/false, yes/no or 1/0)"),
        ([], {"DWCP_INFERENCE_REUSE_PORT": "2"}, "DWCP_INFERENCE_REUSE_PORT='2': not a yes/no value"),
    ],
)
def test_a_value_that_does_not_convert_names_its_flag_or_variable(
    argv: list[str], environ: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(argv, environ=environ)
    assert str(error.value).startswith(named)


def test_a_flag_wins_even_over_a_broken_variable_of_another_kind() -> None:
    environ = {"DWCP_INFERENCE_GRPC_PORT": "abc"}
    assert load_settings(["--grpc-port", "7000"], environ=environ).grpc_port == 7000


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("TRUE", True), ("yes", True), ("1", True), ("false", False), ("No", False), ("0", False)],
)
def test_yes_no_settings_are_booleans_from_flags_and_environment(text: str, value: bool) -> None:
    from_flag = load_settings(["--insecure", text, "--reuse-port", text], environ={})
    from_env = load_settings([], environ={"DWCP_INFERENCE_INSECURE": text, "DWCP_INFERENCE_REUSE_PORT": text})
    for settings in (from_flag, from_env):
        assert settings.insecure is value and settings.reuse_port is value


def test_a_yes_no_flag_alone_means_true_and_the_default_is_false() -> None:
    assert load_settings(["--insecure", "--grpc-port", "0"], environ={}).insecure is True
    assert load_settings([], environ={}).insecure is False
    assert load_settings(["--insecure=1"], environ={"DWCP_INFERENCE_INSECURE": "no"}).insecure is True


def test_fields_refuse_values_of_the_wrong_type_naming_the_field() -> None:
    with pytest.raises(SettingsError, match=r"^insecure=1: must be bool"):
        Settings(insecure=1)  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match=r"^grpc_port=True: must be int"):
        Settings(grpc_port=True)
    with pytest.raises(SettingsError, match=r"^max_batch_items=0: must be at least 1"):
        Settings(max_batch_items=0)
    assert Settings(latency_budget_ms=5).latency_budget_s == 0.005  # an int is a fine float


def test_the_command_reports_a_bad_variable_as_a_usage_error_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    from server.__main__ import main

    with mock.patch.dict(os.environ, {"DWCP_INFERENCE_GRPC_PORT": "abc"}), pytest.raises(SystemExit) as done:
        main([])
    assert done.value.code == 2
    assert "DWCP_INFERENCE_GRPC_PORT='abc': not a whole number" in capsys.readouterr().err


def test_help_shows_each_variable_and_yes_no_defaults_as_words(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "[env DWCP_INFERENCE_INSECURE; default false]" in out
    assert "[env DWCP_INFERENCE_GRPC_PORT; default 50051]" in out


def test_worker_environment_reads_back_as_the_same_settings(tmp_path: Path) -> None:
    from server.workers import _worker_env

    settings = load_settings(["--insecure", "yes", "--latency-budget-ms", "2.5", "--workers", "3"], environ={})
    env = _worker_env(settings, 0, 6000, tmp_path / "ready.json")
    child = load_settings([], environ=env)
    assert (child.insecure, child.reuse_port, child.workers, child.grpc_port) == (True, True, 1, 6000)
    assert (child.latency_budget_ms, child.tls_cert_file) == (2.5, None)


def test_the_pending_bound_reaches_grpc_core_only_when_set() -> None:
    from server.app import InferenceApp

    def options(argv: list[str]) -> dict[str, int]:
        return dict(InferenceApp(load_settings([*argv, "--model-dir", "/nonexistent"], environ={})).grpc_options())

    assert "grpc.server.max_pending_requests" not in options([])
    bounded = options(["--max-pending-rpcs", "3"])
    assert bounded["grpc.server.max_pending_requests"] == bounded["grpc.server.max_pending_requests_hard_limit"] == 3


def test_the_request_window_reaches_grpc_core_and_0_leaves_grpcs_own() -> None:
    from server.app import InferenceApp

    def options(argv: list[str]) -> dict[str, int]:
        return dict(InferenceApp(load_settings([*argv, "--model-dir", "/nonexistent"], environ={})).grpc_options())

    assert options([])["grpc.http2.lookahead_bytes"] == 16384 and options([])["grpc.http2.bdp_probe"] == 0
    assert "grpc.http2.bdp_probe" not in options(["--request-window-bytes", "0"])
