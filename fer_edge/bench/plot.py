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


# Colour = where a row comes from; marker = format. Numbers on the points, names in the legend: no
# overlapping text even when several int8 variants sit on the same spot.
GROUP_COLORS = {"model": "tab:blue", "shipped": "tab:green", "peer": "tab:gray", "emulated": "tab:orange"}
GROUP_NAMES = {"model": "", "shipped": "shipped ", "peer": "peer ", "emulated": ""}
MARKERS = {"tflite": "o", "onnx": "s", "openvino": "^", "keras": "D"}


def row_group(r: BenchResult) -> str:
    """peer baseline | shipped (a bundle inside fer_edge/assets) | emulated timing | model (the rest)."""
    from ..shipped import MODELS_DIR

    if r.role == "baseline":
        return "peer"
    if r.timing == schema.EMULATED:
        return "emulated"
    try:
        if Path(r.bundle).resolve().is_relative_to(MODELS_DIR.resolve()):
            return "shipped"
    except (OSError, ValueError):
        pass
    return "model"


def _place_labels(ax, pts: list[tuple[float, float]], texts: list[str], dpi: float) -> None:
    """Put each number next to its point where it covers no other number or point (greedy)."""
    to_px = dpi / 72.0
    xy = ax.transData.transform(pts) if pts else []
    marker_r = 5 * to_px
    placed: list[tuple[float, float, float, float]] = []
    offsets = [(5, 4), (5, -11), (-12, 4), (-12, -11), (8, -3), (-15, -3), (-3, 8), (-3, -15),
               (12, 10), (12, -17), (-19, 10), (-19, -17), (16, -3), (-23, -3)]

    def hits(box):
        x0, y0, x1, y1 = box
        if any(x0 < b[2] and b[0] < x1 and y0 < b[3] and b[1] < y1 for b in placed):
            return True
        return any(x0 - marker_r < px < x1 + marker_r and y0 - marker_r < py < y1 + marker_r for px, py in xy)

    for (px, py), (x, y), text in zip(xy, pts, texts):
        w, h = (6 * len(text) + 2) * to_px, 9 * to_px
        for dx, dy in offsets:
            box = (px + dx * to_px, py + dy * to_px, px + dx * to_px + w, py + dy * to_px + h)
            if not hits(box):
                break
        else:
            dx, dy = offsets[0]
            box = (px + dx * to_px, py + dy * to_px, px + dx * to_px + w, py + dy * to_px + h)
        placed.append(box)
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=8, fontweight="bold")


def _plain_log_axis(axis, lo: float, hi: float) -> None:
    """A log axis labelled 0.2, 0.3, 0.5, 1, 2 (never 3x10^-1): more labelled ticks when it spans < 1 decade."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    subs = (1, 2, 3, 4, 5, 6, 7, 8, 9) if hi / lo < 4 else (1, 2, 3, 5) if hi / lo < 30 else (1,)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def pareto_png(report: BenchReport, path: str | Path, title: str = "") -> Path:
    import matplotlib.pyplot as plt  # pareto_figure checked that matplotlib is installed

    fig = pareto_figure(report, title)
    path = Path(path)
    with atomic_file(path, "wb") as fh:
        fig.savefig(fh, format="png")
    plt.close(fig)
    return path


def pareto_figure(report: BenchReport, title: str = ""):
    """The accuracy-vs-latency figure (matplotlib Figure; the caller saves and closes it)."""
    matplotlib = require("matplotlib", "train", "the --plot accuracy-vs-latency PNG")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    rows = plottable(report)
    dpi = 120
    fig, ax = plt.subplots(figsize=(9.5, 5.5), dpi=dpi)
    if not rows:
        ax.text(0.5, 0.5, "no row has both accuracy and latency", ha="center", va="center", transform=ax.transAxes)
    pts = [(r.latency.p50_ms, r.accuracy) for r in rows]
    handles, names = [], []
    for i, (r, (lat, acc)) in enumerate(zip(rows, pts), 1):
        group = row_group(r)
        color, marker = GROUP_COLORS[group], MARKERS.get(r.format, "x")
        ax.scatter(lat, acc, marker=marker, color=color, s=46, zorder=3, edgecolors="black", linewidths=0.4)
        tag = f"{GROUP_NAMES[group]}{r.name if group in ('model', 'peer') else ''}".strip()
        tag = f"{tag}: " if tag else ""
        tag += f"{r.format}-{r.precision}/{r.backend}"
        if r.machine != "host":
            tag += f" [{r.machine}{', emulated' if r.timing == schema.EMULATED else ''}]"
        handles.append(Line2D([], [], linestyle="", marker=marker, color=color, markeredgecolor="black",
                              markeredgewidth=0.4, markersize=7))
        names.append(f"{i}  {tag}  ({100 * acc:.1f}%, {lat:.3g} ms)")
    if pts:
        lats, accs = [p[0] for p in pts], [p[1] for p in pts]
        lo, hi = min(lats), max(lats)
        ax.set_xscale("log")
        ax.set_xlim(lo / 1.35, hi * 1.35)
        span = max(accs) - min(accs)
        pad = max(span * 0.12, 0.005)
        ax.set_ylim(min(accs) - pad, max(accs) + pad)
        _plain_log_axis(ax.xaxis, lo / 1.35, hi * 1.35)
    front = pareto_front(pts)
    if len(front) > 1:
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "--", color="tab:red", lw=1, zorder=2)
        handles.append(Line2D([], [], linestyle="--", color="tab:red", lw=1))
        names.append("Pareto front")
    if handles:
        ax.legend(handles, names, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False,
                  handletextpad=0.3, borderaxespad=0.0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:.0f}%"))
    ax.set_xlabel("single-image latency p50 (ms, log scale, 1 thread)")
    n = sorted({r.eval_n for r in rows if r.eval_n})
    ax.set_ylabel("accuracy" + (f" (n = {', '.join(f'{k:,}' for k in n)} test faces)" if n else ""))
    ax.set_title(title or f"fer-edge bench: accuracy vs latency ({report.device})", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    _place_labels(ax, pts, [str(i) for i in range(1, len(pts) + 1)], dpi)  # after the layout: final positions
    return fig
