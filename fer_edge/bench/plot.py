"""Accuracy vs latency (the Pareto view) as a PNG."""

from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_file
from ..errors import require
from . import schema
from .schema import BenchReport, BenchResult


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points no other point beats on both lower latency and higher accuracy."""
    front = []
    for i, (lat, acc) in enumerate(points):
        dominated = any((l2 <= lat and a2 >= acc) and (l2 < lat or a2 > acc) for j, (l2, a2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def plottable(report: BenchReport, threads: int | None = 1) -> list[BenchResult]:
    """Measured rows with accuracy and latency; one thread count so rows compare like for like."""
    rows = [r for r in report.results
            if r.status in (schema.OK, schema.FAILED_VALIDATION) and r.accuracy is not None and r.latency is not None]
    if threads is not None and any(r.threads == threads for r in rows):
        rows = [r for r in rows if r.threads == threads]
    return rows


def pareto_png(report: BenchReport, path: str | Path, title: str = "") -> Path:
    matplotlib = require("matplotlib", "train", "the --plot accuracy-vs-latency PNG")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = plottable(report)
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    if not rows:
        ax.text(0.5, 0.5, "no row has both accuracy and latency", ha="center", va="center", transform=ax.transAxes)
    pts = [(r.latency.p50_ms, r.accuracy) for r in rows]
    markers = {"tflite": "o", "onnx": "s", "openvino": "^", "keras": "D"}
    for r, (lat, acc) in zip(rows, pts):
        color = "tab:gray" if r.role == "baseline" else "tab:blue"
        if r.timing == schema.EMULATED:
            color = "tab:orange"
        ax.scatter(lat, acc, marker=markers.get(r.format, "x"), color=color, s=40, zorder=3)
        tag = f"{'peer ' if r.role == 'baseline' else ''}{r.format}-{r.precision}/{r.backend}"
        if r.machine != "host":
            tag += f" [{r.machine}{', emulated' if r.timing == schema.EMULATED else ''}]"
        ax.annotate(tag, (lat, acc), textcoords="offset points", xytext=(4, 3), fontsize=7)
    front = pareto_front(pts)
    if len(front) > 1:
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "--", color="tab:red", lw=1, label="Pareto front")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("single-image latency p50 (ms, log scale, 1 thread)")
    ax.set_ylabel("accuracy")
    ax.set_title(title or f"fer-edge bench: accuracy vs latency ({report.device})", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    with atomic_file(path, "wb") as fh:
        fig.savefig(fh, format="png")
    plt.close(fig)
    return path
