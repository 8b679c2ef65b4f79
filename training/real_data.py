"""The committed model set on real public telemetry: mahimahi traces (bandwidth) and NAB series (latency).

`make evaluate-real MAHIMAHI=<traces dir> NAB=<NAB checkout>` runs it. Nothing is retrained: every raw
file goes through `training import`, validation and the tasks' own `evaluate` (the ONNX files through
onnxruntime, beside every baseline on the same windows), and the figures land in one markdown report
with a plot. The data itself is never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

BANDWIDTH, LATENCY = "bandwidth_predictor", "consensus_latency"
NAB_FOLDERS = ("artificialNoAnomaly", "realKnownCause", "realAWSCloudwatch")  # the machine and service series
MAX_LATENCY_MS = 600_000.0  # schema range of consensus_latency_ms: series outside it are not latencies


def _say(line: str) -> None:
    print(f"evaluate-real: {line}", file=sys.stderr, flush=True)


def _import(args: list[str]) -> bool:
    """`training import` into the scratch directory; its summary line goes to stderr, like the progress."""
    import contextlib

    from training.cli import main as training_main

    with contextlib.redirect_stdout(sys.stderr):
        return training_main(["import", *args, "--quiet"]) == 0


def _evaluate(model: str, metrics: Path, incidents: Path | None, models_dir: Path) -> dict[str, Any] | None:
    """The newest committed version's evaluation on one imported file, as `training evaluate` runs it."""
    from training.commands.evaluate import evaluate_newest
    from training.readiness import DataRequest
    from training.validate import TelemetryValidationError, load_validated_telemetry

    try:
        data = load_validated_telemetry(metrics, incidents, DataRequest(models=(model,)))
    except TelemetryValidationError as exc:
        _say(f"{metrics.name}: skipped, it does not validate: {exc.report.format().splitlines()[0]}")
        return None
    try:
        entry = evaluate_newest(model, models_dir, data)
    except ValueError as exc:
        raise SystemExit(f"evaluate-real: {model}: {exc}") from None
    return {"version": entry["version"], "interval_s": data.interval_s} | entry["evaluation"]


def mahimahi(traces: Path, work: Path, models_dir: Path) -> dict[str, dict[str, Any]]:
    """Per trace: the bandwidth predictor and its baselines at 1 s samples."""
    out: dict[str, dict[str, Any]] = {}
    for trace in sorted(p for p in traces.iterdir() if p.suffix in (".up", ".down") and p.stat().st_size > 0):
        parquet = work / f"mahimahi-{trace.name}.parquet"
        if not _import(["mahimahi", str(trace), "--node-id", "trace", "--peer-id", "{name}", "--out", str(parquet)]):
            _say(f"{trace.name}: skipped, the importer refused it")
            continue
        result = _evaluate(BANDWIDTH, parquet, None, models_dir)
        if result is not None:
            out[trace.name] = result
            _say(f"{trace.name}: {result['metrics']['rows']:.0f} windows")
    return out


def _latency_like(path: Path) -> bool:
    """A NAB series whose values fit the consensus latency column (non-negative, within its range)."""
    import pandas as pd

    values = pd.read_csv(path, usecols=["value"])["value"]
    return bool(values.notna().all() and values.min() >= 0 and values.max() <= MAX_LATENCY_MS)


def nab(root: Path, work: Path, models_dir: Path) -> dict[str, dict[str, Any]]:
    """Per series: the latency detector and its baselines, labels from NAB's combined windows."""
    out: dict[str, dict[str, Any]] = {}
    data_root, labels = root / "data", root / "labels" / "combined_windows.json"
    for folder in NAB_FOLDERS:
        for csv in sorted((data_root / folder).glob("*.csv")):
            key = f"{folder}/{csv.name}"
            if not _latency_like(csv):
                _say(f"{key}: skipped, its values are outside 0-{MAX_LATENCY_MS:g} (not a latency)")
                continue
            parquet = work / f"nab-{csv.stem}.parquet"
            if not _import(["nab", key, "--data-root", str(data_root), "--labels", str(labels), "--out", str(parquet)]):
                _say(f"{key}: skipped, the importer refused it")
                continue
            incidents = parquet.with_name(parquet.name.removesuffix(".parquet") + ".incidents.json")
            result = _evaluate(LATENCY, parquet, incidents if incidents.exists() else None, models_dir)
            if result is not None:
                out[key] = result
                _say(f"{key}: {result['metrics']['rows']:.0f} windows")
    return out


def pooled_mae(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """MAE over every window of every trace, for the model and each baseline."""
    rows = np.array([r["metrics"]["rows"] for r in results.values()])
    pooled = {"model": float(np.dot(rows, [r["metrics"]["mae"] for r in results.values()]) / rows.sum())}
    for name in next(iter(results.values()))["baselines"]:
        maes = [r["baselines"][name]["mae"] for r in results.values()]
        pooled[name] = float(np.dot(rows, maes) / rows.sum())
    return pooled


def _counts(m: dict[str, float], suffix: str = "") -> tuple[float, float, float]:
    """(true positives, false positives, negatives) back from binary_metrics' rates."""
    positives, rows = m[f"positives{suffix}"], m.get(f"rows{suffix}", m["rows"])
    tp = m[f"recall{suffix}"] * positives if positives else 0.0
    return tp, m[f"false_positive_rate{suffix}"] * (rows - positives), rows - positives


def pooled_detection(results: dict[str, dict[str, Any]], suffix: str = "") -> dict[str, dict[str, float]]:
    """F1 and false-positive rate over every window of every series (summed counts), per detector."""
    names = ["model", *next(iter(results.values()))["baselines"]]
    out = {}
    for name in names:
        tp = fp = negatives = positives = 0.0
        for r in results.values():
            m = r["metrics"] if name == "model" else r["baselines"][name]
            if f"recall{suffix}" not in m:
                break
            t, f, n = _counts(m, suffix)
            tp, fp, negatives, positives = tp + t, fp + f, negatives + n, positives + m[f"positives{suffix}"]
        else:
            precision = tp / (tp + fp) if tp + fp else 0.0
            recall = tp / positives if positives else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            out[name] = {"f1": f1, "precision": precision, "recall": recall, "false_positive_rate": fp / negatives}
    return out


def _anomaly_free_fpr(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """False-positive rate on the series with no labelled anomaly at all, pooled."""
    free = {k: r for k, r in results.items() if r["metrics"]["positives"] == 0}
    return {name: v["false_positive_rate"] for name, v in pooled_detection(free).items()} if free else {}


def _table(rows: dict[str, dict[str, float]], columns: Sequence[str]) -> list[str]:
    lines = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, values in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{values.get(c, float('nan')):.4g}" for c in columns) + " |")
    return lines


def report(bandwidth: dict[str, dict[str, Any]], latency: dict[str, dict[str, Any]], out: Path) -> str:
    """The markdown report (and its plot) of both evaluations."""
    lines = [
        "# The committed model set on real data",
        "",
        "Not retrained on these sets: each raw file is imported (`training import`), validated and scored by the",
        "task's own `evaluate` through onnxruntime, beside every baseline on the same windows. Reproduce with",
        "`make evaluate-real MAHIMAHI=<mahimahi>/traces NAB=<NAB checkout>`.",
        "",
    ]
    if bandwidth:
        version = next(iter(bandwidth.values()))["version"]
        pooled = pooled_mae(bandwidth)
        best = min((k for k in pooled if k != "model"), key=pooled.__getitem__)
        lines += [
            f"## Bandwidth: mahimahi cellular traces at 1 s (bandwidth_predictor {version})",
            "",
            f"Pooled over {len(bandwidth)} traces, {sum(r['metrics']['rows'] for r in bandwidth.values()):.0f} "
            f"windows: model MAE {pooled['model']:.4g} Mbps; best baseline {best} {pooled[best]:.4g} Mbps "
            f"(model / best = {pooled['model'] / pooled[best]:.3f}).",
            "",
            "| trace | windows | model MAE | "
            + " | ".join(f"{b} MAE" for b in pooled if b != "model")
            + " | model / best | 90 % interval coverage |",
            "|---" * (len(pooled) + 4) + "|",
        ]
        for name, r in bandwidth.items():
            base = {b: v["mae"] for b, v in r["baselines"].items()}
            mae = r["metrics"]["mae"]
            lines.append(
                f"| {name} | {r['metrics']['rows']:.0f} | {mae:.4g} | "
                + " | ".join(f"{v:.4g}" for v in base.values())
                + f" | {mae / min(base.values()):.3f} | {r['metrics']['interval_coverage']:.3f} |"
            )
        lines += ["", f"![MAE relative to the best baseline per trace]({_plot(bandwidth, out)})", ""]
    if latency:
        version = next(iter(latency.values()))["version"]
        lines += [
            f"## Consensus latency: NAB series (consensus_latency {version})",
            "",
            f"{len(latency)} series of {', '.join(NAB_FOLDERS)} whose values fit the latency column; labels from",
            "NAB's combined windows. Pooled over every window (summed counts). 'any point': a window is positive",
            "when any of its points is in a labelled window; 'newest point' (the detector's primary labelling:",
            "its flag says whether the newest latency is high): when its newest point is.",
            "",
            "Any point:",
            "",
            *_table(pooled_detection(latency), ["f1", "precision", "recall", "false_positive_rate"]),
            "",
            "Newest point:",
            "",
            *_table(pooled_detection(latency, "_newest"), ["f1", "precision", "recall", "false_positive_rate"]),
            "",
        ]
        free = _anomaly_free_fpr(latency)
        if free:
            lines += ["False-positive rate on the series with no labelled anomaly:", ""]
            lines += _table({k: {"false_positive_rate": v} for k, v in free.items()}, ["false_positive_rate"])
            lines.append("")
        lines += ["| series | windows | positives | model F1 | model FPR | model PR-AUC |", "|---|---|---|---|---|---|"]
        for name, r in latency.items():
            m = r["metrics"]
            lines.append(
                f"| {name} | {m['rows']:.0f} | {m['positives']:.0f} | {m['f1']:.3f} | "
                f"{m['false_positive_rate']:.4f} | {m.get('pr_auc', float('nan')):.3f} |"
            )
    return "\n".join(lines) + "\n"


def _plot(bandwidth: dict[str, dict[str, Any]], out: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(bandwidth)
    ratios = [r["metrics"]["mae"] / min(v["mae"] for v in r["baselines"].values()) for r in bandwidth.values()]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1.5))
    ax.barh(names, ratios, color=["tab:green" if x <= 1 else "tab:red" for x in ratios])
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xlabel("model MAE / best baseline MAE (below 1: the model is better)")
    ax.set_xlim(min(0.9, min(ratios) - 0.02), max(1.1, max(ratios) + 0.02))
    fig.tight_layout()
    path = out / "plots" / "real_bandwidth_mae_ratio.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path.relative_to(out))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.real_data", description=__doc__.splitlines()[0])
    parser.add_argument("--mahimahi", type=Path, help="directory of mahimahi traces (*.up, *.down)")
    parser.add_argument("--nab", type=Path, help="a NAB checkout (with data/ and labels/combined_windows.json)")
    parser.add_argument("--models-dir", type=Path, default=Path("models"), help="model set to evaluate")
    parser.add_argument("--out", type=Path, default=Path("docs/model-report/real-data"), help="report directory")
    args = parser.parse_args(argv)
    if args.mahimahi is None and args.nab is None:
        parser.error("give --mahimahi, --nab or both")
    for path in (args.mahimahi, args.nab):
        if path is not None and not path.is_dir():
            parser.error(f"{path}: not a directory")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dwcp-real-") as tmp:
        work = Path(tmp)
        bandwidth = mahimahi(args.mahimahi, work, args.models_dir) if args.mahimahi else {}
        latency = nab(args.nab, work, args.models_dir) if args.nab else {}
    (args.out / "real_data_report.json").write_text(
        json.dumps({"mahimahi": bandwidth, "nab": latency}, indent=2, default=float) + "\n"
    )
    (args.out / "README.md").write_text(report(bandwidth, latency, args.out))
    print(f"report: {args.out / 'README.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
