"""The Markdown report of `fer-edge quickstart` (and its latency plot when no data was found)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from .atomic import atomic_file
from .errors import MissingExtraError


def _rel(path: str | os.PathLike | None, root: Path) -> str:
    if not path:
        return "-"
    """Relative to the report when inside its folder (so links work when it moves), else absolute."""
    full = Path(path).resolve()
    try:
        return full.relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(full)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def sample_section(result, root: Path) -> list[str]:
    s = result.sample
    md = ["## 1. The shipped model on a sample photo", "",
          f"`fer-edge predict {s['image']}` with the shipped model `{_rel(s['model'], root)}` "
          f"(face detector: {s['detector']}):", ""]
    if s.get("annotated"):
        md += [f"![annotated sample]({_rel(s['annotated'], root)})", ""]
    if not s["faces"]:
        md.append("No face was found in the sample photo.")
    for i, f in enumerate(s["faces"], 1):
        top = sorted(f["scores"].items(), key=lambda kv: -kv[1])[:3]
        md.append(f"- face {i} at {f['box']}: **{f['label']}** {f['score']:.2f} "
                  f"(then {', '.join(f'{k} {v:.2f}' for k, v in top[1:])})")
    md.append("")
    return md


def latency_section(result, root: Path) -> list[str]:
    md = ["## 2. Shipped model latency on this machine", "",
          "One face at the shipped model's input size, 1 thread, timed in-process with `fer_edge.bench.measure` "
          "(model only, and end to end from the uint8 face crop).", "",
          "| format | backend | size KB | p50 ms | p90 ms | e2e p50 ms |", "|---|---|---|---|---|---|"]
    for r in result.shipped_latency:
        if "error" in r:
            md.append(f"| {r['format']} | not run: {r['error']} | | | | |")
            continue
        lat, e2e = r["latency"], r["latency_e2e"]
        md.append(f"| {r['format']}-int8 | {r['backend']} | {r['size_bytes'] / 1024:.0f} | {lat['p50_ms']:.3f} | "
                  f"{lat['p90_ms']:.3f} | {e2e['p50_ms']:.3f} |")
    png = latency_png(result.shipped_latency, root / "latency.png")
    if png:
        md += ["", f"![latency]({_rel(png, root)})"]
    md.append("")
    return md


def latency_png(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Bar chart of the shipped formats' p50 latency; None when matplotlib is not installed."""
    rows = [r for r in rows if "latency" in r]
    if not rows:
        return None
    try:
        from .errors import require

        matplotlib = require("matplotlib", "train", "the quickstart latency plot")
    except MissingExtraError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3), dpi=120)
    names = [f"{r['format']}-int8\n{r['backend']}" for r in rows]
    ax.bar(names, [r["latency"]["p50_ms"] for r in rows], color="tab:blue", label="model")
    ax.scatter(names, [r["latency_e2e"]["p50_ms"] for r in rows], color="tab:red", zorder=3, label="end to end")
    ax.set_ylabel("p50 latency (ms, 1 thread)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_file(path, "wb") as fh:
        fig.savefig(fh, format="png")
    plt.close(fig)
    return path


def full_schedule_command(training: dict[str, Any], data) -> str:
    """The `fer-edge train` command of the recipe's whole schedule, in the precision quickstart trained in here
    (float32 where the CPU has no native bfloat16: the recipe's mixed_bfloat16 would be emulated, slower)."""
    recipe = training["recipe"]
    cmd = ["fer-edge", "train", "--recipe", recipe, "--data", str(data), "--out", f"runs/{recipe}"]
    if training.get("precision") == "float32":
        cmd += ["--precision", "float32"]
    return shlex.join(cmd)


def training_section(result, root: Path) -> list[str]:
    t = result.training
    run = Path(t["run"])
    md = ["## 2. Training (short budget)", "",
          f"Recipe `{t['recipe']}` on `{result.data}`: each split capped to ~{t['limit']} images, "
          f"{t['epochs']} epochs, {t['train_seconds']:.0f} s of training. The shipped model had the full schedule; "
          "this one shows the toolchain, not the best accuracy. A larger `--minutes` trains on more faces (the cap "
          "follows the minutes and how fast this CPU trains, up to every training face); the full schedule: "
          f"`{full_schedule_command(t, result.data)}`.", "",
          f"- test accuracy {_pct(t['test_accuracy'])}, macro-F1 {t['test_macro_f1']:.3f}"
          f"{_n_text((result.conversion or {}).get('reference', {}).get('n'))}; "
          f"validation accuracy {_pct(t['val_accuracy'])}",
          f"- full training report: [{_rel(run / 'report.md', root)}]({_rel(run / 'report.md', root)})", ""]
    for name in ("curves.png", "confusion_test.png"):
        if (run / "plots" / name).is_file():
            md.append(f"![{name}]({_rel(run / 'plots' / name, root)})")
    md.append("")
    return md


def _count(n: int | None) -> str:
    return f"{n:,}" if n else "-"


def _n_text(n: int | None) -> str:
    return f" on n={n:,} test faces" if n else ""


def conversion_section(result, root: Path) -> list[str]:
    c = result.conversion
    ref = c.get("reference") or {}
    md = ["## 3. Conversion to int8", "",
          f"Float Keras reference on the run's test split: accuracy {_pct(ref.get('accuracy'))}, "
          f"macro-F1 {ref.get('macro_f1', 0):.3f} (n={_count(ref.get('n'))} test faces). Each artifact below was "
          "measured through `fer_edge.runtime` on the same faces.", "",
          "| artifact | status | size KB | accuracy | Δ pp | top-1 agreement | seconds |", "|---|---|---|---|---|---|---|"]
    for a in c["artifacts"]:
        ret = a.get("retention") or {}
        delta = f"{ret['accuracy_delta_pp']:+.2f}" if "accuracy_delta_pp" in ret else "-"
        md.append(f"| [{a['format']}-{a['precision']}]({_rel(a['path'], root)}) | {a['status']}"
                  f"{': ' + a['error'] if a.get('error') else ''} | {a['size_bytes'] / 1024:.0f} | "
                  f"{_pct(ret.get('accuracy'))} | {delta} | {_pct(ret.get('top1_agreement'))} | {a['convert_seconds']:.0f} |")
    md += [f"- warning: {w}" for w in c.get("warnings", [])]
    md.append("")
    return md


def bench_section(result, root: Path) -> list[str]:
    conv_n = ((result.conversion or {}).get("reference") or {}).get("n")
    ns = {r["eval_n"] for r in result.bench if r.get("eval_n")}
    if ns and ns == {conv_n}:
        faces = f"scored on the same {conv_n:,} FER2013 test faces as the conversion table"
    else:
        faces = ("scored on FER2013 test faces, n per row (the conversion table scored "
                 f"n={_count(conv_n)}; accuracies on different faces differ by chance)")
    md = ["## 4. Benchmark: float vs int8 vs the shipped model", "",
          f"Every row in a fresh process, 1 thread, {faces} "
          f"(full table: [bench.md](bench.md), data: [bench.json](bench.json)).", "",
          "| model | format | backend | size KB | n | accuracy | macro-F1 | p50 ms | e2e p50 ms | status |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result.bench:
        lat, e2e = r.get("latency") or {}, r.get("latency_e2e") or {}
        who = "shipped" if "assets" in Path(r["bundle"]).parts else r["name"]
        size = f"{r['size_bytes'] / 1024:.0f}" if r.get("size_bytes") else "-"
        f1 = "-" if r.get("macro_f1") is None else f"{r['macro_f1']:.3f}"
        p50 = f"{lat['p50_ms']:.3f}" if lat else "-"
        e2e50 = f"{e2e['p50_ms']:.3f}" if e2e else "-"
        status = r["status"] + (f": {r['error']}" if r.get("error") else "")
        n = _count(r.get("eval_n"))
        md.append(f"| {who} | {r['format']}-{r['precision']} | {r['backend']} | {size} | {n} | {_pct(r.get('accuracy'))} | "
                  f"{f1} | {p50} | {e2e50} | {status} |")
    if (root / "bench.png").is_file():
        md += ["", "![accuracy vs latency](bench.png)"]
    md.append("")
    return md


def write_report(result) -> Path:
    root = result.out
    md = ["# fer-edge quickstart", "",
          f"Finished in {result.seconds / 60:.1f} min. Data: {result.data or 'none found'}.", ""]
    md += sample_section(result, root)
    if result.training is None:
        md += latency_section(result, root)
    else:
        md += training_section(result, root) + conversion_section(result, root) + bench_section(result, root)
    if result.notes:
        md += ["## Notes", ""] + [f"- {n}" for n in result.notes] + [""]
    md += ["## Next", "", "```bash", "fer-edge predict photo.jpg            # the shipped model, any photo",
           "fer-edge live --source 0              # webcam"]
    if result.training is not None:
        run = _rel(Path(result.training["run"]), Path.cwd())
        md += [f"fer-edge train --recipe {result.training['recipe']} --data {result.data} --out runs/edge  # full schedule",
               f"fer-edge bench {run}/export --baseline mini-xception --md bench.md"]
    md += ["```", ""]
    with atomic_file(result.report) as fh:
        fh.write("\n".join(md))
    return result.report
