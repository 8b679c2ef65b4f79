"""The server's one typed settings object, read from flags and DWCP_INFERENCE_* environment variables."""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "DWCP_INFERENCE_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _doc(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class Settings:
    """Everything the server can be told; each field is a flag `--field-name` and env `DWCP_INFERENCE_FIELD_NAME`."""

    host: str = field(default="127.0.0.1", metadata=_doc("Address the gRPC and metrics servers bind to."))
    grpc_port: int = field(default=50051, metadata=_doc("gRPC port; 0 picks a free port."))
    metrics_port: int = field(default=9102, metadata=_doc("Prometheus HTTP port; 0 picks a free port, -1 disables."))
    model_dir: Path = field(default=Path("models"), metadata=_doc("Model directory: <name>/<version>/manifest.json."))
    max_batch_items: int = field(default=1024, metadata=_doc("Largest batch (items per request) accepted."))
    latency_budget_ms: float = field(default=10.0, metadata=_doc("Per-RPC latency budget; slower RPCs are counted."))
    grace_period_s: float = field(default=5.0, metadata=_doc("On SIGTERM, time in-flight RPCs get to finish."))
    reload_interval_s: float = field(
        default=5.0, metadata=_doc("Poll the model directory for new versions this often; 0 polls only on SIGHUP.")
    )
    ort_intra_op_threads: int = field(default=1, metadata=_doc("onnxruntime intra-op threads per session."))
    grpc_threads: int = field(default=4, metadata=_doc("Worker threads of the gRPC server's thread pool."))
    workers: int = field(
        default=1, metadata=_doc("Server processes sharing --grpc-port (SO_REUSEPORT); each has its own metrics port.")
    )
    reuse_port: int = field(
        default=0, metadata=_doc("1 lets several server processes share --grpc-port (SO_REUSEPORT); 0 refuses.")
    )
    ready_file: Path | None = field(
        default=None,
        metadata=_doc('Once listening and models are loaded, write {"grpc_port", "metrics_port", "pid"} JSON here.'),
    )
    log_level: str = field(default="INFO", metadata=_doc("Logging level: DEBUG, INFO, WARNING or ERROR."))
    tls_cert_file: Path | None = field(
        default=None, metadata=_doc("PEM certificate chain of the server; with --tls-key-file serves TLS.")
    )
    tls_key_file: Path | None = field(default=None, metadata=_doc("PEM private key of --tls-cert-file."))
    tls_client_ca_file: Path | None = field(
        default=None,
        metadata=_doc("PEM CA bundle; when set, clients must present a certificate it signed (mutual TLS)."),
    )
    insecure: int = field(
        default=0,
        metadata=_doc(
            "1 chooses plaintext explicitly. Without TLS files plaintext is served only on a loopback --host "
            "unless this is 1."
        ),
    )
    max_receive_message_bytes: int = field(
        default=4 * 1024 * 1024,
        metadata=_doc("Largest request message accepted; larger ones get RESOURCE_EXHAUSTED before decoding."),
    )
    max_in_flight: int = field(
        default=16,
        metadata=_doc("Inference RPCs queued or running at most; past it, RESOURCE_EXHAUSTED at once."),
    )
    max_pending_rpcs: int = field(
        default=0,
        metadata=_doc(
            "0: calls wait in gRPC core until the server takes them. N: gRPC core cancels a call arriving while N "
            "already wait, before any Python runs (the client sees CANCELLED at once); bounds the "
            "wait of admitted calls under overload."
        ),
    )
    min_deadline_ms: float = field(
        default=1.0,
        metadata=_doc("A request with less time than this left to its deadline gets DEADLINE_EXCEEDED, unrun."),
    )

    def __post_init__(self) -> None:
        if self.log_level.upper() not in LOG_LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(LOG_LEVELS)}, not {self.log_level!r}")
        if self.max_batch_items < 1:
            raise ValueError(f"max_batch_items must be at least 1, not {self.max_batch_items}")
        if min(self.grpc_threads, self.ort_intra_op_threads, self.workers) < 1:
            raise ValueError("grpc_threads, ort_intra_op_threads and workers must be at least 1")
        if self.max_in_flight < 1 or self.max_receive_message_bytes < 1024 or self.min_deadline_ms < 0:
            raise ValueError("max_in_flight must be >= 1, max_receive_message_bytes >= 1024, min_deadline_ms >= 0")
        if self.max_pending_rpcs < 0:
            raise ValueError(f"max_pending_rpcs must be 0 (no limit) or more, not {self.max_pending_rpcs}")
        if self.insecure not in (0, 1):
            raise ValueError(f"insecure must be 0 or 1, not {self.insecure}")
        if not -1 <= self.metrics_port <= 65535 or not 0 <= self.grpc_port <= 65535:
            raise ValueError("grpc_port must be 0-65535 and metrics_port -1-65535")

    @property
    def min_deadline_s(self) -> float:
        """The deadline floor in seconds."""
        return self.min_deadline_ms / 1000.0

    @property
    def latency_budget_s(self) -> float:
        """The latency budget in seconds."""
        return self.latency_budget_ms / 1000.0


def _env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _convert(kind: object, text: str) -> object:
    """Turn a flag or environment string into the field's type."""
    if kind in (int, "int"):
        return int(text)
    if kind in (float, "float"):
        return float(text)
    if kind == "Path | None":
        return Path(text) if text else None
    if kind == "Path":
        return Path(text)
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; --help lists every field with its environment variable and default."""
    parser = argparse.ArgumentParser(
        prog="python -m server",
        description="Serve the DWCP inference models over gRPC. Every option can also be set with the "
        "environment variable shown; flags win over the environment.",
    )
    for f in dataclasses.fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata['help']} [env {_env_name(f.name)}; default {f.default}]"
        kind = f.type

        def parse(text: str, kind: object = kind) -> object:
            return _convert(kind, text)

        parser.add_argument(flag, dest=f.name, type=parse, default=None, help=help_text, metavar=f.name.upper())
    return parser


def load_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from defaults, then environment variables, then flags (flags win)."""
    environ = os.environ if environ is None else environ
    args = vars(build_parser().parse_args(argv))
    values: dict[str, object] = {}
    for f in dataclasses.fields(Settings):
        if args[f.name] is not None:
            values[f.name] = args[f.name]
        elif _env_name(f.name) in environ:
            values[f.name] = _convert(f.type, environ[_env_name(f.name)])
    return Settings(**values)  # type: ignore[arg-type]
