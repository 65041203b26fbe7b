"""Render a BenchReport: terminal table, JSON, CSV and Markdown (one schema, many views)."""

from __future__ import annotations

import csv
import io
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..atomic import atomic_file, write_json
from . import schema
from .schema import BenchReport, BenchResult, Latency

LAT_KEYS = [f.name for f in fields(Latency)]


def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _delta(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:+.2f}"


def table_rows(report: BenchReport) -> tuple[list[str], list[list[str]]]:
    head = ["status", "model", "format", "backend", "device", "thr", "size KB", "acc", "Δacc pt", "F1",
            "p50 ms", "p90 ms", "p99 ms", "mean ms", "e2e p50", "img/s", "first ms", "peak MiB", "timing"]
    rows = []
    for r in report.results:
        lat = r.latency
        rows.append([
            r.status, r.name + (" (peer)" if r.role == "baseline" else ""), f"{r.format}-{r.precision}", r.backend,
            r.device if r.machine == "host" else r.machine, str(r.threads or "-"),
            _f(r.size_bytes / 1024 if r.size_bytes else None, ".1f"), _f(r.accuracy, ".4f"), _delta(r.accuracy_delta),
            _f(r.macro_f1, ".4f"), _f(lat and lat.p50_ms, ".3f"), _f(lat and lat.p90_ms, ".3f"),
            _f(lat and lat.p99_ms, ".3f"), _f(lat and lat.mean_ms, ".3f"), _f(r.latency_e2e and r.latency_e2e.p50_ms, ".3f"),
            (f"{r.throughput_ips:.0f}@{r.batch}" if r.throughput_ips else "-"), _f(r.first_inference_ms, ".0f"),
            _f(r.peak_rss_mb, ".0f"), r.timing if r.status in (schema.OK, schema.FAILED_VALIDATION) else "-",
        ])
    return head, rows


def text_table(report: BenchReport) -> str:
    head, rows = table_rows(report)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = [line(head), line(["-" * w for w in widths])] + [line(r) for r in rows]
    problems = [r for r in report.results if r.error]
    if problems:
        out.append("")
        out += [f"{r.status}: {r.label}: {r.error}" for r in problems]
    out.append("")
    out += explanations(report) + environment_lines(report)
    return "\n".join(out)


def explanations(report: BenchReport) -> list[str]:
    """What the table's accuracy columns were measured on, and why a cell of them is '-'."""
    lines = []
    eval_sets = sorted({r.eval_set for r in report.results if r.eval_set})
    if eval_sets:
        lines.append("evaluation: " + "; ".join(eval_sets))
    unmeasured: dict[str, int] = {}
    for r in report.results:
        for note in r.notes:
            if note.startswith("accuracy not measured"):
                unmeasured[note] = unmeasured.get(note, 0) + 1
    lines += [f"{note} ({n} row{'s' if n > 1 else ''})" for note, n in unmeasured.items()]
    if any(r.accuracy is not None and r.accuracy_delta is None for r in report.results):
        lines.append("Δacc pt '-': no float model of that bundle was measured here (the float accuracy convert "
                     "recorded counts only for the bundle's own whole test split, not --limit / --data faces)")
    return lines


def environment_lines(report: BenchReport) -> list[str]:
    lines = []
    for key, env in report.environments.items():
        pk = env.get("packages", {})
        runtimes = ", ".join(f"{k} {v}" for k, v in pk.items() if k != "fer-edge")
        board = f" ({env['board']})" if env.get("board") else ""
        timing = f"; timings {env['timing']}" if env.get("timing") else ""
        load = f"; load average {env['load_average']} at start" if env.get("load_average") else ""
        if env.get("load_average_end"):
            load += f", {env['load_average_end']} at end"
        lines.append(f"{key}: {env.get('cpu_model')}{board}, {env.get('cores')} cores ({env.get('usable_cores')} usable), "
                     f"{env.get('machine')}, {env.get('os')}, Python {env.get('python')}; {runtimes}{timing}{load}")
    hints = sorted({f"{r.backend}: {r.precision_hint}" for r in report.results if r.precision_hint})
    if hints:
        lines.append("OpenVINO INFERENCE_PRECISION_HINT as compiled: " + ", ".join(hints))
    s = report.settings
    lines.append(f"timing: {s.get('timer')}, warm-up {s.get('warmup')}, runs {s.get('runs')} single-image calls; "
                 f"throughput at batch {s.get('batch')}; memory: {s.get('memory')}")
    return lines


def flat(r: BenchResult) -> dict[str, Any]:
    d = r.to_dict()
    for key in ("latency", "latency_e2e"):
        lat = d.pop(key) or {}
        for k in LAT_KEYS:
            d[f"{key}_{k}"] = lat.get(k)
    d["notes"] = "; ".join(d["notes"])
    return d


def to_csv(report: BenchReport) -> str:
    buf = io.StringIO()
    rows = [flat(r) for r in report.results]
    cols = list(flat(BenchResult("", "", "", "", "", "", None, schema.OK)).keys())
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def to_markdown(report: BenchReport, title: str = "fer-edge bench") -> str:
    head, rows = table_rows(report)
    md = [f"# {title}", "", f"Created {report.created}; devices: {report.device}.", ""]
    md.append("| " + " | ".join(head) + " |")
    md.append("|" + "|".join("---" for _ in head) + "|")
    md += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows]
    md.append("")
    md.append("Latency is one preprocessed image through the model (p50/p90/p99/mean); `e2e p50` adds the bundle's "
              "preprocessing from a uint8 face; `img/s` is throughput at the batch size shown; `first ms` is load "
              "(sha256 check, runtime build) + first inference; `peak MiB` is the peak resident memory of a fresh "
              "process that measured only that row. `Δacc pt` is accuracy minus the float reference's, in points.")
    problems = [r for r in report.results if r.error]
    if problems:
        md += ["", "## Not measured / failed", ""]
        md += [f"- **{r.status}** {r.label}: {r.error}" for r in problems]
    if report.gpu_probe:
        md += ["", "## GPU probe", ""]
        md += [f"- {p['key']}: {'available' if p['available'] else 'not available'}: {p['detail']}" for p in report.gpu_probe]
    md += ["", "## Environment", ""] + [f"- {line}" for line in environment_lines(report)]
    notes = explanations(report)
    if notes:
        md += ["", "## Accuracy", ""] + [f"- {line}" for line in notes]
    return "\n".join(md) + "\n"


def write(report: BenchReport, path: str | Path, kind: str) -> Path:
    """Write ``kind`` (json | csv | md) atomically."""
    path = Path(path)
    if kind == "json":
        write_json(path, report.to_dict())
        return path
    text = {"csv": to_csv, "md": to_markdown}[kind](report)
    with atomic_file(path) as fh:
        fh.write(text)
    return path
