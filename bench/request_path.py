"""The server's per-request Python work, in process, without gRPC: what docs/performance.md's "Per-request work" cites.

    .venv/bin/python -m bench.request_path --model-dir models

Per RPC, on requests built from synthetic telemetry and the served models:
- encode (decode + checks into the float32 tensor), hot: best of 3 `timeit` runs, at 1 and 1,024 items;
- handle() minus the model run, cold: each call after GAP_S of unrelated work (touching 2 MiB, spinning),
  median, as a server thread meets a request after the transport's work;
- the model alone, back to back and after a 0.5 ms sleep, with session.run and with onnxruntime's IOBinding;
- one full garbage collection in a fresh process running the server on the models (the pause a
  generation-2 collection costs there; this process holds pandas and the telemetry besides).
Figures are wall time on a shared machine: compare within one run, not across machines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from bench.payloads import RPCS, build_pools, build_requests, load_telemetry
from bench.tables import check_model_dir, markdown_table
from server.admission import ItemBudget
from server.codec import encode_request
from server.metrics import Metrics
from server.servicer import InferenceHandler
from server.store import ModelStore

GAP_S = 0.0002  # unrelated work before each cold call
SLEEP_S = 0.0005  # the model run's idle gap
MODEL_COLUMNS = ("run, back to back", "run, after 0.5 ms", "IOBinding, back to back")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Flags of the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.request_path", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models"), help="Model directory to load.")
    parser.add_argument("--calls", type=int, default=1500, help="Calls per cold measurement.")
    parser.add_argument("--data", type=Path, default=None, help="Telemetry Parquet (default: generated).")
    parser.add_argument("--out", type=Path, default=Path("reports/request-path"), help="Report folder.")
    return parser.parse_args(argv)


_JUNK = np.ones(2 << 20, np.uint8)


def _unrelated_work() -> None:
    _JUNK[::64] += 1
    end = time.perf_counter() + GAP_S
    while time.perf_counter() < end:
        pass


def _median_us(call: Callable[[int], Any], calls: int, before: Callable[[], None]) -> float:
    times = []
    for i in range(calls):
        before()
        start = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def _hot_us(call: Callable[[], Any], number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=3)) / number * 1e6


def _model_us(model: Any, calls: int) -> dict[str, float]:
    """The model on one row of its example: session.run and IOBinding, back to back and after a sleep."""
    manifest, session = model.manifest, model.session
    row = np.ascontiguousarray(manifest.example_input.reshape(-1, *manifest.input.shape[1:])[:1])
    feed = {manifest.input.name: row}
    binding = session.io_binding()
    for name in model.output_names:
        binding.bind_output(name)

    def run(_i: int) -> None:
        session.run(model.output_names, feed)

    def bound(_i: int) -> None:
        binding.bind_cpu_input(manifest.input.name, row)
        session.run_with_iobinding(binding)
        binding.copy_outputs_to_cpu()

    def rest() -> None:
        time.sleep(SLEEP_S)

    def nothing() -> None:
        return None

    measured = (_median_us(run, calls, nothing), _median_us(run, calls, rest), _median_us(bound, calls, nothing))
    return dict(zip(MODEL_COLUMNS, measured, strict=True))


# Run in a fresh interpreter: start the server on the models, collect start-up's garbage, then time one full
# collection of what stays.
_GC_PROGRAM = """
import gc, sys, time
from server.app import InferenceApp
from server.settings import load_settings
app = InferenceApp(load_settings(["--model-dir", sys.argv[1], "--grpc-port", "0", "--metrics-port", "-1"]))
app.start()
gc.collect()  # start-up's garbage
started = time.perf_counter()
gc.collect()
print((time.perf_counter() - started) * 1000, len(gc.get_objects()))
app.stop(0)
"""


def _server_full_gc(model_dir: Path) -> tuple[float, int]:
    """(ms one full collection takes, objects tracked) in a process serving `model_dir`."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "gen" / "python")])}
    done = subprocess.run(
        [sys.executable, "-c", _GC_PROGRAM, str(model_dir)], capture_output=True, text=True, env=env, check=True
    )
    ms, tracked = done.stdout.split()[-2:]
    return float(ms), int(tracked)


def _measure_rpc(
    handler: InferenceHandler, store: ModelStore, rpc: str, pools: Any, calls: int
) -> tuple[list[Any], list[Any]]:
    """(rpc, encode 1 item, encode 1,024 items, handle minus model) and (model, its run times) for one RPC."""
    model = store.for_rpc(rpc)
    if model is None:
        raise SystemExit(f"no model serves {rpc}")
    single = build_requests(pools, rpc, 1, 64)
    large = build_requests(pools, rpc, 1024, 1)[0]

    def encode(request: Any) -> Any:
        return encode_request(model.spec, request, model.manifest, model.range_check, 4096, model.layout)

    encode_1 = _hot_us(lambda: encode(single[0]), 5000)
    encode_1024 = _hot_us(lambda: encode(large), 50)
    times = _model_us(model, calls)
    handle = _median_us(lambda i: handler.handle(rpc, single[i % 64], 1.0, None), calls, _unrelated_work)
    one_row = np.ascontiguousarray(model.manifest.example_input.reshape(-1, *model.manifest.input.shape[1:])[:1])
    run_cold = _median_us(lambda _i: model.run(one_row), calls, _unrelated_work)
    return [rpc, encode_1, encode_1024, handle - run_cold], [model.name, *times.values()]


def main(argv: list[str] | None = None) -> int:
    """Measure and print the tables."""
    args = parse_args(argv)
    check_model_dir(args.model_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    metrics = Metrics(CollectorRegistry(), 0.010)
    store = ModelStore(args.model_dir, metrics, 1, 4096, lambda *_: None, None)
    store.reload()
    for loaded in store.models():
        loaded.bind_metrics(metrics)
    handler = InferenceHandler(store, metrics, 4096, 0.0, None, ItemBudget(1 << 30, 0))
    pools = build_pools(load_telemetry(args.data))
    rows, model_rows = [], []
    for rpc in RPCS:
        row, model_row = _measure_rpc(handler, store, rpc, pools, args.calls)
        rows.append(row)
        model_rows.append(model_row)
        print(f"{rpc}: encode {row[1]:.1f} us, handle minus model {row[3]:.1f} us (cold)", flush=True)
    full_gc_ms, tracked = _server_full_gc(args.model_dir)
    text = "\n\n".join(
        [
            "# Per-request work, in process",
            markdown_table(
                ["rpc", "encode, 1 item, hot us", "encode, 1,024 items, hot us", "handle() minus the model, cold us"],
                rows,
            ),
            markdown_table(["model (1 row)", *(f"{k} us (median)" for k in MODEL_COLUMNS)], model_rows),
            f"One full garbage collection in a process serving the models, after start-up: {full_gc_ms:.2f} ms "
            f"({tracked:,} objects tracked).",
        ]
    )
    (args.out / "summary.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
