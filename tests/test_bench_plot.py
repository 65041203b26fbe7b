"""The accuracy-vs-latency plot is readable at a glance: numbered points that never overlap, one colour
per origin (this run, shipped, peer), plain-number log ticks, and the test-set size on the axis."""

from __future__ import annotations

import re

import pytest

from fer_edge.bench.schema import BenchReport, BenchResult, Latency
from fer_edge.shipped import bundle_dir

pytest.importorskip("matplotlib")


def _row(bundle, name, fmt, prec, backend, acc, ms, role="model", n=3589):
    lat = Latency(**{f: ms for f in Latency.__dataclass_fields__})
    return BenchResult(bundle=str(bundle), name=name, format=fmt, precision=prec, backend=backend, device="cpu",
                       threads=1, status="ok", role=role, accuracy=acc, latency=lat, eval_n=n)


def quickstart_like_report() -> BenchReport:
    """The quickstart's nine rows: several int8 variants within a few hundredths of a ms of each other."""
    run = "runs/quickstart/model"
    return BenchReport(device="cpu", settings={}, results=[
        _row(run, "edge_mobilenetv2_64", "keras", "fp32", "keras", 0.4831, 2.9),
        _row(f"{run}/export/tflite-int8", "edge_mobilenetv2_64", "tflite", "int8", "litert", 0.4740, 0.351),
        _row(f"{run}/export/onnx-int8", "edge_mobilenetv2_64", "onnx", "int8", "onnxruntime", 0.4772, 0.69),
        _row(f"{run}/export/openvino-int8", "edge_mobilenetv2_64", "openvino", "int8", "openvino", 0.4790, 0.74),
        _row(bundle_dir("tflite"), "edge_long", "tflite", "int8", "litert", 0.6606, 0.349),
        _row(bundle_dir("onnx"), "edge_long", "onnx", "int8", "onnxruntime", 0.6629, 0.70),
        _row(bundle_dir("openvino"), "edge_long", "openvino", "int8", "openvino", 0.6631, 0.72),
        _row("peers/mini", "mini-xception (fer)", "tflite", "dynamic", "litert", 0.6551, 0.347, role="baseline"),
        _row("peers/mini", "mini-xception (fer)", "keras", "fp32", "keras", 0.6556, 3.4, role="baseline"),
    ])


def test_plot_is_readable(tmp_path):
    import matplotlib.pyplot as plt

    from fer_edge.bench.plot import GROUP_COLORS, pareto_figure, pareto_png, row_group

    report = quickstart_like_report()
    assert [row_group(r) for r in report.results] == ["model"] * 4 + ["shipped"] * 3 + ["peer"] * 2
    fig = pareto_figure(report, "quickstart")
    ax = fig.axes[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.texts if t.get_text().isdigit()]
    assert sorted(int(t.get_text()) for t in labels) == list(range(1, 10))
    boxes = [t.get_window_extent(renderer) for t in labels]
    for i, a in enumerate(boxes):  # no two point numbers overlap
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (a, b)
    # one colour per origin: the run's models, the shipped ones and the peer differ
    colors = [tuple(round(c, 3) for c in col.get_facecolor()[0]) for col in ax.collections]
    assert len(set(colors[:4])) == 1 and len(set(colors[4:7])) == 1 and len(set(colors[7:])) == 1
    assert len({colors[0], colors[4], colors[7]}) == 3
    import matplotlib.colors as mcolors

    assert colors[4] == tuple(round(c, 3) for c in mcolors.to_rgba(GROUP_COLORS["shipped"]))
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert len(ticks) >= 3 and all(re.fullmatch(r"\d+(\.\d+)?", t) for t in ticks), ticks  # never 3x10^-1
    assert "n = 3,589" in ax.get_ylabel()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("5  shipped: tflite-int8/litert") for t in legend), legend
    plt.close(fig)
    png = pareto_png(report, tmp_path / "p.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
