"""The server's one typed settings object, read from flags and DWCP_INFERENCE_* environment variables."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

ENV_PREFIX = "DWCP_INFERENCE_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")
MIN_REQUEST_WINDOW_BYTES = 1024  # a single-item request always fits the window


def _setting(default: Any, help: str, minimum: float | None = None, maximum: float | None = None) -> Any:
    """A settings field: its default, its one-line description, and the bounds a number must keep."""
    return field(default=default, metadata={"help": help, "minimum": minimum, "maximum": maximum})


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the flag, variable or field and the value."""

    def __init__(self, where: str, value: object, reason: str, field_name: str | None = None) -> None:
        super().__init__(f"{where}={value!r}: {reason}")
        self.reason = reason
        self.field_name = field_name


@dataclass(frozen=True)
class Settings:
    """Everything the server can be told; each field is a flag `--field-name` and env `DWCP_INFERENCE_FIELD_NAME`."""

    host: str = _setting("127.0.0.1", "Address the gRPC and metrics servers bind to.")
    grpc_port: int = _setting(50051, "gRPC port; 0 picks a free port.", 0, 65535)
    metrics_port: int = _setting(9102, "Prometheus HTTP port; 0 picks a free port, -1 disables.", -1, 65535)
    model_dir: Path = _setting(Path("models"), "Model directory: <name>/<version>/manifest.json.")
    max_batch_items: int = _setting(1024, "Largest batch (items per request) accepted.", 1)
    latency_budget_ms: float = _setting(10.0, "Per-RPC latency budget; slower RPCs are counted.")
    grace_period_s: float = _setting(5.0, "On SIGTERM, time in-flight RPCs get to finish.")
    reload_interval_s: float = _setting(
        5.0, "Poll the model directory for new versions this often; 0 polls only on SIGHUP."
    )
    ort_intra_op_threads: int = _setting(1, "onnxruntime intra-op threads per session.", 1)
    grpc_threads: int = _setting(4, "Worker threads of the gRPC server's thread pool.", 1)
    workers: int = _setting(1, "Server processes sharing --grpc-port (SO_REUSEPORT); each has its own metrics port.", 1)
    reuse_port: bool = _setting(
        False, "true lets several server processes share --grpc-port (SO_REUSEPORT); false refuses."
    )
    ready_file: Path | None = _setting(
        None, 'Once listening and models are loaded, write {"grpc_port", "metrics_port", "pid"} JSON here.'
    )
    log_level: str = _setting("INFO", "Logging level: DEBUG, INFO, WARNING or ERROR.")
    tls_cert_file: Path | None = _setting(None, "PEM certificate chain of the server; with --tls-key-file serves TLS.")
    tls_key_file: Path | None = _setting(None, "PEM private key of --tls-cert-file.")
    tls_client_ca_file: Path | None = _setting(
        None, "PEM CA bundle; when set, clients must present a certificate it signed (mutual TLS)."
    )
    insecure: bool = _setting(
        False,
        "true chooses plaintext explicitly. Without TLS files plaintext is served only on a loopback --host "
        "unless this is true.",
    )
    max_receive_message_bytes: int = _setting(
        4 * 1024 * 1024, "Largest request message accepted; larger ones get RESOURCE_EXHAUSTED before decoding.", 1024
    )
    max_in_flight: int = _setting(
        16, "Inference RPCs queued or running at most; past it, RESOURCE_EXHAUSTED at once.", 1
    )
    max_items_in_flight: int = _setting(
        2048,
        "Items (links, nodes, windows) of inference RPCs running at once, at most; a call that would pass it "
        "gets RESOURCE_EXHAUSTED (admission by cost, not only by calls).",
        1,
    )
    reserved_items: int = _setting(
        64,
        "The last this many items of --max-items-in-flight are kept for calls of at most this many items, so "
        "small callers get in while large batches are shed.",
        0,
    )
    max_info_in_flight: int = _setting(
        4,
        "GetModelInfo RPCs queued or running at most, on their own thread; past it, RESOURCE_EXHAUSTED. They "
        "never count against --max-in-flight nor take an inference thread.",
        1,
    )
    max_pending_rpcs: int = _setting(
        0,
        "0: calls wait in gRPC core until the server takes them. N: gRPC core cancels a call arriving while N "
        "already wait, before any Python runs (the client sees CANCELLED at once); bounds the "
        "wait of admitted calls under overload.",
        0,
    )
    request_window_bytes: int = _setting(
        16384,
        "Bytes of a request gRPC core accepts before the server reads it (each call's HTTP/2 window), so a "
        "call waiting to be admitted or refused holds at most this much; 0: gRPC's own windows, which BDP "
        "probing grows to whole requests.",
        0,
    )
    trusted_keys_file: Path | None = _setting(
        None,
        "PEM Ed25519 public keys; when set, only model versions whose seal one of them signed are served.",
    )
    min_deadline_ms: float = _setting(
        1.0, "A request with less time than this left to its deadline gets DEADLINE_EXCEEDED, unrun.", 0
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            reason = _type_problem(_kinds()[f.name], value) or _bounds_problem(f.metadata, value)
            if reason:
                raise SettingsError(f.name, value, reason, f.name)
        if 0 < self.request_window_bytes < MIN_REQUEST_WINDOW_BYTES:
            reason = f"must be 0 (gRPC's own windows) or at least {MIN_REQUEST_WINDOW_BYTES}"
            raise SettingsError("request_window_bytes", self.request_window_bytes, reason, "request_window_bytes")
        if self.log_level.upper() not in LOG_LEVELS:
            raise SettingsError("log_level", self.log_level, f"must be one of {', '.join(LOG_LEVELS)}", "log_level")

    @property
    def min_deadline_s(self) -> float:
        """The deadline floor in seconds."""
        return self.min_deadline_ms / 1000.0

    @property
    def latency_budget_s(self) -> float:
        """The latency budget in seconds."""
        return self.latency_budget_ms / 1000.0


@cache
def _kinds() -> dict[str, Any]:
    """Each field's type, resolved from its annotation."""
    return typing.get_type_hints(Settings)


def _type_problem(kind: object, value: object) -> str | None:
    """Why `value` is not of the field's type, or None (an int is a float; a bool is not an int)."""
    allowed: dict[object, tuple[type, ...]] = {
        bool: (bool,),
        int: (int,),
        float: (int, float),
        str: (str,),
        Path: (Path,),
        Path | None: (Path, type(None)),
    }
    if isinstance(value, bool) and kind is not bool:
        return f"must be {getattr(kind, '__name__', kind)}, not a yes/no value"
    if not isinstance(value, allowed[kind]):
        return f"must be {getattr(kind, '__name__', kind)}, not {type(value).__name__}"
    return None


def _bounds_problem(metadata: Mapping[str, Any], value: Any) -> str | None:
    minimum, maximum = metadata.get("minimum"), metadata.get("maximum")
    if minimum is not None and maximum is not None and not minimum <= value <= maximum:
        return f"must be {minimum} to {maximum}"
    if minimum is not None and value < minimum:
        return f"must be at least {minimum}"
    return None


def parse_bool(text: str) -> bool:
    """true/yes/1 or false/no/0, in any case; raises ValueError otherwise."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("not a yes/no value (true/false, yes/no or 1/0)")


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError("not a whole number") from None


def _parse_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("not a number") from None
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


# From the text of a flag or variable to the field's type, chosen by the type itself.
PARSERS: dict[object, Callable[[str], object]] = {
    bool: parse_bool,
    int: _parse_int,
    float: _parse_float,
    str: str,
    Path: Path,
    Path | None: lambda text: Path(text) if text else None,
}


def flag_name(name: str) -> str:
    """The flag of a field: `grpc_port` -> `--grpc-port`."""
    return "--" + name.replace("_", "-")


def env_name(name: str) -> str:
    """The environment variable of a field: `grpc_port` -> `DWCP_INFERENCE_GRPC_PORT`."""
    return ENV_PREFIX + name.upper()


def _shown(value: object) -> str:
    if value is None:
        return "none"
    return str(value).lower() if isinstance(value, bool) else str(value)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; --help lists every field with its environment variable and default."""
    parser = argparse.ArgumentParser(
        prog="python -m server",
        description="Serve the DWCP inference models over gRPC. Every option can also be set with the "
        "environment variable shown; flags win over the environment. Yes/no options take true/false, "
        "yes/no or 1/0, and alone mean true.",
    )
    for f in dataclasses.fields(Settings):
        help_text = f"{f.metadata['help']} [env {env_name(f.name)}; default {_shown(f.default)}]"
        # Values stay text here: load_settings converts flags and environment alike, naming the source on error.
        extra: dict[str, Any] = {"nargs": "?", "const": "true"} if _kinds()[f.name] is bool else {}
        parser.add_argument(
            flag_name(f.name), dest=f.name, default=None, help=help_text, metavar=f.name.upper(), **extra
        )
    return parser


def load_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from defaults, then environment variables, then flags (flags win).

    Raises SettingsError naming the flag or variable and its value when one cannot be used.
    """
    environ = os.environ if environ is None else environ
    args = vars(build_parser().parse_args(argv))
    values: dict[str, object] = {}
    sources: dict[str, tuple[str, str]] = {}
    for f in dataclasses.fields(Settings):
        if args[f.name] is not None:
            source, text = flag_name(f.name), args[f.name]
        elif env_name(f.name) in environ:
            source, text = env_name(f.name), environ[env_name(f.name)]
        else:
            continue
        try:
            values[f.name] = PARSERS[_kinds()[f.name]](text)
        except ValueError as exc:
            raise SettingsError(source, text, str(exc), f.name) from None
        sources[f.name] = (source, text)
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except SettingsError as exc:
        if exc.field_name not in sources:
            raise
        source, text = sources[exc.field_name]
        raise SettingsError(source, text, exc.reason, exc.field_name) from None
