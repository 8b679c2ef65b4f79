"""The training report: master JSON and Markdown, one JSON per model, every figure beside target and baseline."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from training.metrics import Evaluation


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.4g}"
    return str(value)


def evaluation_json(evaluation: Evaluation) -> dict[str, Any]:
    """A JSON-ready view of one model's evaluation."""
    return {
        "model": evaluation.model,
        "passed": evaluation.passed,
        "failures": evaluation.failures,
        "metrics": evaluation.metrics,
        "targets": evaluation.target_table(),
        "baselines": evaluation.baselines,
        "beats_baselines": evaluation.beats_baselines,
        "primary_metric": evaluation.primary_metric,
        "notes": evaluation.notes,
    }


def summary_rows(entries: list[dict[str, Any]]) -> list[str]:
    """Markdown table: one row per target with measured value, met or MISSED, and the baselines; then a
    FAILED row with the reasons for a failed model (a detector that catches nothing, parity beyond tolerance)."""
    lines = [
        "| model | metric | target | measured | result | baselines (same test rows) |",
        "|---|---|---|---|---|---|",
    ]
    for entry in entries:
        ev = entry["evaluation"]
        base = "; ".join(
            f"{name}: " + ", ".join(f"{m}={_fmt(v)}" for m, v in values.items() if m in ev["metrics"])
            for name, values in ev["baselines"].items()
        )
        for metric, t in ev["targets"].items():
            result = "met" if t["met"] else "**MISSED**"
            lines.append(
                f"| {ev['model']} | {metric} | {t['op']} {_fmt(t['value'])} | {_fmt(t['measured'])} | "
                f"{result} | {base} |"
            )
        beaten = ", ".join(f"{k}: {'beaten' if v else '**NOT beaten**'}" for k, v in ev["beats_baselines"].items())
        on = f" on {ev['primary_metric']}" if ev.get("primary_metric") else ""
        lines.append(f"| {ev['model']} | baselines | model beats each{on} | | {beaten} | |")
        failures = entry.get("failures", ev.get("failures", []))
        if failures:
            reasons = "; ".join(f.replace("|", "/") for f in failures)
            lines.append(f"| {ev['model']} | **FAILED** | a usable model | | **FAILED**: {reasons} | |")
    return lines


def _model_section(entry: dict[str, Any]) -> list[str]:
    ev = entry["evaluation"]
    lines = [f"## {ev['model']}", "", entry.get("description", ""), ""]
    lines += [
        f"- status: {entry['status']}",
        *[f"- **FAILED**: {failure}" for failure in entry.get("failures", [])],
        f"- version: {entry.get('version', 'not exported')}",
        f"- training time: {entry.get('train_seconds', 0):.0f} s",
        f"- split (rows or windows): {entry.get('split_counts', {})}",
        f"- ONNX parity vs native: {entry.get('parity', {})}",
        f"- onnxruntime latency, 1 thread (us): {entry.get('latency_us', {})}",
        "",
    ]
    names = sorted(set(ev["metrics"]) | {m for b in ev["baselines"].values() for m in b})
    header = "| metric | model | " + " | ".join(ev["baselines"]) + " |"
    lines += [header, "|---" * (2 + len(ev["baselines"])) + "|"]
    for name in names:
        row = [_fmt(ev["metrics"].get(name, float("nan")))]
        row += [_fmt(b.get(name, float("nan"))) for b in ev["baselines"].values()]
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    lines += [""] + [f"- {note}" for note in ev["notes"]] + [""]
    lines += [f"![{name}](plots/{file})" for name, file in entry.get("plots", {}).items()] + [""]
    return lines


def write_reports(report_dir: Path, entries: list[dict[str, Any]], header: dict[str, Any]) -> Path:
    """master_training_report.json and .md plus <model>_report.json; returns the Markdown path."""
    report_dir.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        (report_dir / f"{entry['evaluation']['model']}_report.json").write_text(json.dumps(entry, indent=2) + "\n")
    (report_dir / "master_training_report.json").write_text(json.dumps({**header, "models": entries}, indent=2) + "\n")
    lines = ["# Training report", ""] + [f"- {k}: {_fmt(v)}" for k, v in header.items()] + [""]
    lines += ["## Summary", ""] + summary_rows(entries) + [""]
    for entry in entries:
        lines += _model_section(entry)
    md = report_dir / "master_training_report.md"
    md.write_text("\n".join(lines))
    return md
