"""Compression-level oracle grounded in zstd speed/ratio curves measured on this machine.

`python -m training.compression_oracle measure --out training/data/zstd_curves.json` measures the
curves; `oracle_levels` labels rows with the DWCP level (0-9) that moves a chunk fastest. See
docs/compression-oracle.md for the model and its assumptions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import zstandard

# DWCP level -> zstd level; DWCP level 0 sends the chunk uncompressed.
ZSTD_LEVEL_BY_DWCP_LEVEL = (0, 1, 2, 3, 5, 7, 9, 12, 15, 19)
N_LEVELS = len(ZSTD_LEVEL_BY_DWCP_LEVEL)
REFERENCE_LEVEL = 3  # DWCP's default; hde_compression_ratio is read as the ratio at this level
DELTA_SIZE_FRACTION = 0.05  # a delta-hit chunk is sent as a delta of ~5 % of the chunk, uncompressed
CHUNK_BYTES = 1 << 20
DEFAULT_CURVES_PATH = Path(__file__).parent / "data" / "zstd_curves.json"


def _telemetry_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def payload_random(size: int, seed: int = 0) -> bytes:
    """Encrypted or already-compressed data: ratio ~1."""
    return _telemetry_rng(seed).bytes(size)


def payload_mixed(size: int, seed: int = 0) -> bytes:
    """Alternating 64 KiB blocks of random bytes and repetitive log text (e.g. a VM image)."""
    rng, out, block = _telemetry_rng(seed), bytearray(), 64 * 1024
    text = payload_log(block, seed)
    while len(out) < size:
        out += rng.bytes(block) if (len(out) // block) % 2 == 0 else text
    return bytes(out[:size])


def payload_columnar(size: int, seed: int = 0) -> bytes:
    """Column-wise telemetry: int64 timestamps, float32 random walks, small int counters."""
    rng = _telemetry_rng(seed)
    rows = size // 24
    ts = (1_767_225_600_000 + np.arange(rows) * 1000).astype(np.int64)
    walk = np.round(50 + np.cumsum(rng.normal(0, 0.5, (2, rows)), axis=1), 2).astype(np.float32)
    counters = rng.poisson(3, (2, rows)).astype(np.int16)
    return (ts.tobytes() + walk.tobytes() + counters.tobytes() + bytes(size))[:size]


def payload_json(size: int, seed: int = 0) -> bytes:
    """JSON records of node metrics, one per line."""
    rng, total = _telemetry_rng(seed), 0
    lines: list[str] = []
    while total < size:
        i = len(lines)
        record = {
            "timestamp": f"2026-01-05T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "node_id": f"node-{rng.integers(64):04d}",
            "rtt_ms": round(float(rng.lognormal(3, 0.5)), 3),
            "throughput_mbps": round(float(rng.lognormal(7, 1)), 2),
            "packet_loss_ratio": round(float(rng.random() * 0.01), 5),
            "healthy": bool(rng.random() > 0.01),
        }
        line = json.dumps(record) + "\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


def payload_log(size: int, seed: int = 0) -> bytes:
    """Service log lines: highly repetitive text."""
    rng, total = _telemetry_rng(seed), 0
    lines: list[str] = []
    events = ("consensus commit", "chunk sent", "stream opened", "heartbeat ok", "delta hit")
    while total < size:
        i = len(lines)
        line = (
            f"2026-01-05T00:{i // 60 % 60:02d}:{i % 60:02d}.{rng.integers(1000):03d}Z INFO "
            f"node-{rng.integers(32):02d} {events[rng.integers(len(events))]} "
            f"index={100000 + i} latency_ms={rng.lognormal(2, 0.5):.1f}\n"
        )
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


PAYLOADS: dict[str, Callable[[int, int], bytes]] = {
    "random": payload_random,
    "mixed_random_log": payload_mixed,
    "columnar_numeric": payload_columnar,
    "json_records": payload_json,
    "log_text": payload_log,
}


def _best_seconds(work: Callable[[], object], min_total_s: float) -> float:
    """Fastest of repeated calls, repeating until `min_total_s` has passed (at least twice)."""
    best_s, spent_s, calls = float("inf"), 0.0, 0
    while calls < 2 or spent_s < min_total_s:
        start_s = time.perf_counter()
        work()
        elapsed_s = time.perf_counter() - start_s
        best_s, spent_s, calls = min(best_s, elapsed_s), spent_s + elapsed_s, calls + 1
    return best_s


def measure_payload(data: bytes, min_total_s: float = 0.05) -> dict[str, list[float]]:
    """Ratio and single-thread speeds (MB/s of uncompressed bytes) for DWCP levels 0-9."""
    ratio, compress, decompress = [1.0], [float("inf")], [float("inf")]
    for zstd_level in ZSTD_LEVEL_BY_DWCP_LEVEL[1:]:
        compressor = zstandard.ZstdCompressor(level=zstd_level, threads=0)
        frame = compressor.compress(data)
        ratio.append(len(data) / len(frame))
        compress.append(len(data) / 1e6 / _best_seconds(partial(compressor.compress, data), min_total_s))
        decompress_frame = partial(zstandard.ZstdDecompressor().decompress, frame)
        decompress.append(len(data) / 1e6 / _best_seconds(decompress_frame, min_total_s))
    return {"ratio": ratio, "compress_mb_per_s": compress, "decompress_mb_per_s": decompress}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def measure_curves(chunk_bytes: int = CHUNK_BYTES, min_total_s: float = 0.05) -> dict[str, object]:
    """Measure every payload class at every level; a JSON-ready table (inf speeds as null)."""
    payloads = []
    for name, make in PAYLOADS.items():
        curves = measure_payload(make(chunk_bytes, 0), min_total_s)
        clean = {k: [None if np.isinf(v) else round(v, 4) for v in vs] for k, vs in curves.items()}
        payloads.append({"name": name, **clean})
    return {
        "measured_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {
            "cpu": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "zstandard": zstandard.__version__,
            "zstd": ".".join(map(str, zstandard.ZSTD_VERSION)),
        },
        "chunk_bytes": chunk_bytes,
        "threads": 1,
        "zstd_level_by_dwcp_level": list(ZSTD_LEVEL_BY_DWCP_LEVEL),
        "notes": "speeds are MB/s (1e6 bytes) of uncompressed data, best of repeats, one core; "
        "level 0 is uncompressed (ratio 1, no CPU cost: speeds null)",
        "payloads": payloads,
    }


@dataclass(frozen=True)
class ZstdCurves:
    """Measured curves, payload classes sorted by their ratio at the reference level."""

    names: tuple[str, ...]
    ratio: np.ndarray  # [payloads, levels]
    compress_s_per_mb: np.ndarray  # [payloads, levels] CPU seconds per MB of input, one core
    decompress_s_per_mb: np.ndarray  # [payloads, levels]

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> ZstdCurves:
        """Build from the JSON table written by `measure`."""
        payloads = sorted(table["payloads"], key=lambda p: p["ratio"][REFERENCE_LEVEL])

        def seconds(key: str) -> np.ndarray:
            return np.array([[0.0 if v is None else 1.0 / v for v in p[key]] for p in payloads])

        return cls(
            names=tuple(p["name"] for p in payloads),
            ratio=np.array([p["ratio"] for p in payloads], dtype=np.float64),
            compress_s_per_mb=seconds("compress_mb_per_s"),
            decompress_s_per_mb=seconds("decompress_mb_per_s"),
        )

    @classmethod
    def load(cls, path: Path = DEFAULT_CURVES_PATH) -> ZstdCurves:
        """Load the committed measurement (training/data/zstd_curves.json by default)."""
        return cls.from_table(json.loads(Path(path).read_text()))

    def at(self, reference_ratio: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """[N, levels] ratio, compress and decompress s/MB for payloads of the given level-3 ratio.

        Interpolates log-linearly between the two measured classes around the ratio, then scales
        the ratio curve so that it passes through the given ratio at the reference level.
        """
        log_ref = np.log(self.ratio[:, REFERENCE_LEVEL])
        position = np.interp(np.log(np.maximum(reference_ratio, 1.0)), log_ref, np.arange(len(self.names)))
        lo = np.minimum(np.floor(position).astype(int), len(self.names) - 2)
        frac = (position - lo)[:, None]

        def mix(table: np.ndarray) -> np.ndarray:
            return np.exp((1 - frac) * np.log(table[lo] + 1e-12) + frac * np.log(table[lo + 1] + 1e-12))

        ratio = mix(self.ratio)
        ratio = np.maximum(ratio * (reference_ratio[:, None] / ratio[:, [REFERENCE_LEVEL]]), 1.0)
        ratio[:, 0] = 1.0
        compress, decompress = mix(self.compress_s_per_mb), mix(self.decompress_s_per_mb)
        compress[:, 0] = decompress[:, 0] = 0.0
        return ratio, compress, decompress


def non_delta_ratio(hde_compression_ratio: np.ndarray, hde_delta_hit_ratio: np.ndarray) -> np.ndarray:
    """Ratio of the chunks that are not delta hits, given the overall HDE ratio over all chunks.

    Overall bytes out per byte in: 1/r = (1 - d) / r_chunk + d * DELTA_SIZE_FRACTION.
    """
    d = np.clip(hde_delta_hit_ratio, 0.0, 1.0)
    out_per_in = 1.0 / np.maximum(hde_compression_ratio, 1.0) - d * DELTA_SIZE_FRACTION
    return np.maximum((1.0 - d) / np.maximum(out_per_in, 1e-6), 1.0)


def chunk_seconds(
    throughput_mbps: np.ndarray,
    hde_compression_ratio: np.ndarray,
    hde_delta_hit_ratio: np.ndarray,
    curves: ZstdCurves,
    chunk_bytes: int = CHUNK_BYTES,
) -> np.ndarray:
    """[N, 10] expected seconds to move one chunk at each DWCP level.

    A chunk is compressed on one core, sent at the link's throughput, and decompressed: the
    three times add up (no pipelining). Delta-hit chunks cost the same at every level.
    """
    rate_bytes_per_s = np.maximum(np.asarray(throughput_mbps, dtype=np.float64), 1e-3)[:, None] * 1e6 / 8
    d = np.clip(np.asarray(hde_delta_hit_ratio, dtype=np.float64), 0.0, 1.0)[:, None]
    ratio, compress, decompress = curves.at(non_delta_ratio(np.asarray(hde_compression_ratio), d[:, 0]))
    chunk_mb = chunk_bytes / 1e6
    full = chunk_mb * (compress + decompress) + chunk_bytes / ratio / rate_bytes_per_s
    delta = chunk_bytes * DELTA_SIZE_FRACTION / rate_bytes_per_s
    return (1.0 - d) * full + d * delta


def _columns(features: Mapping[str, np.ndarray] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """throughput_mbps, hde_compression_ratio, hde_delta_hit_ratio from a mapping or [N,6] array."""
    if isinstance(features, np.ndarray):  # compression_features order, docs/artifacts.md
        return features[:, 0], features[:, 3], features[:, 4]
    return (
        np.asarray(features["throughput_mbps"]),
        np.asarray(features["hde_compression_ratio"]),
        np.asarray(features["hde_delta_hit_ratio"]),
    )


def oracle_levels(features: Mapping[str, np.ndarray] | np.ndarray, curves: ZstdCurves | None = None) -> np.ndarray:
    """[N] int64 DWCP level (0-9) minimising the time to move a chunk, from current features only."""
    seconds = chunk_seconds(*_columns(features), curves or ZstdCurves.load())
    return np.argmin(seconds, axis=1).astype(np.int64)


def effective_throughput_mbps(
    level: np.ndarray | int, features: Mapping[str, np.ndarray] | np.ndarray, curves: ZstdCurves | None = None
) -> np.ndarray:
    """[N] uncompressed megabits delivered per second when each row uses `level`."""
    seconds = chunk_seconds(*_columns(features), curves or ZstdCurves.load())
    levels = np.broadcast_to(np.asarray(level, dtype=np.int64), seconds.shape[:1])
    return CHUNK_BYTES * 8 / 1e6 / seconds[np.arange(len(seconds)), levels]


def throughput_gain(
    model_levels: np.ndarray, features: Mapping[str, np.ndarray] | np.ndarray, curves: ZstdCurves | None = None
) -> dict[str, float]:
    """Mean effective throughput of the model's levels relative to fixed level 3 and to the oracle."""
    seconds = chunk_seconds(*_columns(features), curves or ZstdCurves.load())  # [N, level], computed once
    mbps = CHUNK_BYTES * 8 / 1e6 / seconds
    rows = np.arange(len(seconds))
    model = mbps[rows, np.asarray(model_levels, dtype=np.int64)].mean()
    fixed = mbps[:, REFERENCE_LEVEL].mean()
    best = mbps[rows, np.argmin(seconds, axis=1)].mean()
    return {
        "model_mean_effective_throughput_mbps": float(model),
        "gain_vs_level3_pct": float(100 * (model / fixed - 1)),
        "gain_vs_oracle_pct": float(100 * (model / best - 1)),
    }


def main(argv: list[str] | None = None) -> None:
    """`measure --out PATH`: measure the zstd curves on this machine and write the JSON table."""
    parser = argparse.ArgumentParser(prog="python -m training.compression_oracle", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    measure = sub.add_parser("measure", help="measure zstd speed/ratio curves on this machine")
    measure.add_argument("--out", type=Path, default=DEFAULT_CURVES_PATH, help="JSON file to write")
    measure.add_argument("--chunk-bytes", type=int, default=CHUNK_BYTES, help="payload size per class")
    args = parser.parse_args(argv)
    started_s = time.perf_counter()
    table = measure_curves(args.chunk_bytes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {args.out} in {time.perf_counter() - started_s:.1f} s")


if __name__ == "__main__":
    main()
