"""The served model set: scans the model directory, loads the newest valid versions and swaps them in."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from artifacts.signing import UntrustedError
from artifacts.versions import visible_dirs
from server.metrics import Metrics
from server.runtime import LoadedModel, load_version

log = logging.getLogger(__name__)


def _fingerprint(version_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """Changes when any file of the version changes, so a fixed-up version is tried again."""
    try:
        stats = ((p.name, p.stat()) for p in version_dir.iterdir())
        return tuple(sorted((name, st.st_mtime_ns, st.st_size) for name, st in stats))
    except OSError:
        return ()


class ModelStore:
    """Which model version answers each RPC. Readers take a reference; reloads replace the whole mapping."""

    def __init__(
        self,
        model_dir: Path,
        metrics: Metrics,
        intra_op_threads: int = 1,
        max_batch_items: int = 1024,
        on_change: Callable[[], None] = lambda: None,
        trusted_keys: dict[str, Any] | None = None,
    ) -> None:
        self.model_dir = model_dir
        self.metrics = metrics
        self.intra_op_threads = intra_op_threads
        self.max_batch_items = max_batch_items
        self.on_change = on_change
        self.trusted_keys = trusted_keys  # None: signatures are not required (every version must still be sealed)
        self._by_rpc: dict[str, LoadedModel] = {}  # replaced, never mutated: in-flight requests keep theirs
        self._rejected: dict[Path, object] = {}
        self._reload_lock = threading.Lock()
        self._warned_missing = False

    def for_rpc(self, rpc: str) -> LoadedModel | None:
        """The model version answering `rpc`, or None when none is loaded."""
        return self._by_rpc.get(rpc)

    def models(self) -> list[LoadedModel]:
        """Every served model version, sorted by name."""
        return sorted(self._by_rpc.values(), key=lambda m: m.name)

    def reload(self) -> int:
        """Load any newer valid version of every model and swap it in; returns how many were swapped."""
        with self._reload_lock:
            if not self.model_dir.is_dir():
                if not self._warned_missing:
                    log.warning("model directory %s does not exist; no model is served", self.model_dir)
                    self._warned_missing = True
                return 0
            self._warned_missing = False
            swapped = 0
            try:
                model_dirs = visible_dirs(self.model_dir)
            except OSError as exc:
                log.warning("cannot list %s: %s", self.model_dir, exc)
                return 0
            for model_dir in model_dirs:
                swapped += self._reload_model(model_dir)
            if swapped:
                self.on_change()
            return swapped

    def _reload_model(self, model_dir: Path) -> int:
        current = next((m for m in self._by_rpc.values() if m.name == model_dir.name), None)
        try:
            version_dirs = visible_dirs(model_dir)
        except OSError as exc:  # removed or unreadable while scanning: try again at the next poll
            log.warning("cannot list %s: %s", model_dir, exc)
            return 0
        for version_dir in reversed(version_dirs):
            if current is not None and version_dir.name <= current.version:
                return 0  # never go back to an older version than the one serving
            fingerprint = _fingerprint(version_dir)
            if self._rejected.get(version_dir) == fingerprint:
                continue
            try:
                model = load_version(version_dir, self.intra_op_threads, self.max_batch_items, self.trusted_keys)
                if current is not None and model.manifest.rpc != current.manifest.rpc:
                    raise ValueError(
                        f"{version_dir}: rpc {model.manifest.rpc} differs from {current.manifest.rpc}, which version "
                        f"{current.version} of {model.name} serves; a model keeps its RPC across versions"
                    )
                serving = self._by_rpc.get(model.manifest.rpc)
                if serving is not None and serving.name != model.name:
                    raise ValueError(f"{version_dir}: rpc {model.manifest.rpc} is already served by {serving.name}")
            except Exception as exc:  # any failure rejects this version only; the old one keeps serving
                log.error("rejected model version %s: %s", version_dir, exc)
                self.metrics.model_rejected(model_dir.name)
                if isinstance(exc, UntrustedError):
                    self.metrics.model_untrusted_of(model_dir.name, exc.reason).inc()
                self._rejected[version_dir] = fingerprint
                continue
            model.bind_metrics(self.metrics)
            self._by_rpc = {**self._by_rpc, model.manifest.rpc: model}
            old = (current.version, current.sha256) if current else None
            self.metrics.model_swapped(model.name, model.manifest.rpc, old, (model.version, model.sha256))
            log.info("serving model %s version %s for %s", model.name, model.version, model.manifest.rpc)
            return 1
        return 0
