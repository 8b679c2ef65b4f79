"""`python -m server`: run the inference server until SIGTERM/SIGINT; SIGHUP reloads the models."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from artifacts.signing import load_trusted_keys
from server import security
from server.app import InferenceApp
from server.settings import build_parser, load_settings
from server.workers import run_workers


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the settings, serve, and drain on SIGTERM; returns the exit code."""
    try:
        settings = load_settings(argv)
        security.server_credentials(settings)  # refuse bad TLS settings or unwanted plaintext before starting
        if settings.trusted_keys_file is not None:
            load_trusted_keys(settings.trusted_keys_file)  # names the file and the key at fault
    except ValueError as exc:
        build_parser().error(str(exc))
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if settings.workers > 1:
        return run_workers(settings)
    app = InferenceApp(settings)
    stop = threading.Event()

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger("server").info("received %s", signal.Signals(signum).name)
        stop.set()

    def on_hangup(_signum: int, _frame: FrameType | None) -> None:
        app.request_reload()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hangup)
    try:
        app.start()
    except (OSError, RuntimeError) as exc:
        logging.getLogger("server").error("cannot start: %s", exc)
        return 1
    while not stop.wait(timeout=1.0):
        pass
    app.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
