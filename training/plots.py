"""Report plots (PNG): predicted vs actual, residuals, PR curves, confusion, error histograms, training curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path.name


def predicted_vs_actual(actual: np.ndarray, predicted: np.ndarray, baseline: np.ndarray, path: Path) -> str:
    """Scatter of predicted against actual (log-log), model and persistence baseline."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    pick = np.random.default_rng(0).choice(actual.size, size=min(actual.size, 5000), replace=False)
    ax.scatter(actual[pick], baseline[pick], s=3, alpha=0.3, label="persistence (last value)", color="tab:gray")
    ax.scatter(actual[pick], predicted[pick], s=3, alpha=0.4, label="model", color="tab:blue")
    lims = [max(float(np.min(actual[actual > 0])), 1e-3), float(np.max(actual))]
    ax.plot(lims, lims, "k--", lw=1)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="actual throughput (Mbps)",
        ylabel="predicted throughput (Mbps)",
        title="Next-interval throughput, test split",
    )
    ax.legend(loc="upper left")
    return _save(fig, path)


def residual_histogram(actual: np.ndarray, predicted: np.ndarray, path: Path) -> str:
    """Histogram of relative residuals (predicted / actual - 1)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    rel = (predicted - actual) / np.maximum(actual, 1e-6)
    ax.hist(np.clip(rel, -1, 1), bins=80, color="tab:blue")
    ax.set(xlabel="relative error (clipped to ±1)", ylabel="windows", title="Residuals, test split")
    return _save(fig, path)


def pr_curves(actual: np.ndarray, scores: dict[str, np.ndarray], path: Path) -> str:
    """Precision-recall curve of each scorer on the same rows."""
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for label, score in scores.items():
        order = np.argsort(-score, kind="stable")
        hits = np.asarray(actual, bool)[order]
        tp = np.cumsum(hits)
        ax.plot(tp / max(hits.sum(), 1), tp / np.arange(1, hits.size + 1), label=label)
    ax.set(xlabel="recall", ylabel="precision", ylim=(0, 1.02), title="Precision-recall, test split")
    ax.legend()
    return _save(fig, path)


def confusion_matrix(actual: np.ndarray, predicted: np.ndarray, labels: list[str], path: Path) -> str:
    """Row-normalised confusion matrix of class indices."""
    k = len(labels)
    counts = np.zeros((k, k))
    np.add.at(counts, (np.asarray(actual, int), np.asarray(predicted, int)), 1)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6, 5))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set(
        xticks=range(k),
        yticks=range(k),
        xticklabels=labels,
        yticklabels=labels,
        xlabel="model",
        ylabel="oracle",
        title="Confusion (row share), test split",
    )
    fig.colorbar(image, ax=ax)
    return _save(fig, path)


def error_histogram(normal: np.ndarray, abnormal: np.ndarray, threshold: float, path: Path) -> str:
    """Histogram of a score for normal and abnormal rows with the decision threshold."""
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = list(
        np.logspace(
            np.log10(max(min(normal.min(), abnormal.min() if abnormal.size else 1), 1e-6)),
            np.log10(max(normal.max(), abnormal.max() if abnormal.size else 1) + 1e-9),
            80,
        )
    )
    ax.hist(normal, bins=bins, alpha=0.6, label="normal", density=True)
    if abnormal.size:
        ax.hist(abnormal, bins=bins, alpha=0.6, label="labelled incident", density=True)
    ax.axvline(threshold, color="k", ls="--", label=f"threshold {threshold:.3g}")
    ax.set(xscale="log", xlabel="reconstruction error", ylabel="density", title="Reconstruction error, test split")
    ax.legend()
    return _save(fig, path)


def training_curves(history: dict[str, list[float]], title: str, path: Path) -> str:
    """Loss per epoch (train and validation)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, values in history.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", label=key)
    ax.set(xlabel="epoch", ylabel="loss", title=title)
    ax.legend()
    return _save(fig, path)
