"""Plots (training curves, confusion matrix, t-SNE of penultimate features) and report.md."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..atomic import atomic_file


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    with atomic_file(path, "wb") as fh:
        fh.write(buf.getvalue())


def write_history_csv(path: Path, history: list[dict[str, Any]]) -> None:
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    with atomic_file(path) as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for row in history:
            w.writerow(row)


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    ep = [r["epoch"] for r in history]
    for ax, key in zip(axes, ("loss", "accuracy")):
        ax.plot(ep, [r.get(key) for r in history], "o-", label=f"train {key}")
        if any("val_" + key in r for r in history):
            ax.plot(ep, [r.get("val_" + key) for r in history], "o-", label=f"val {key}")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)
    plt.close(fig)


def plot_confusion(m: dict[str, Any], path: Path, title: str) -> None:
    plt = _plt()
    cm = np.asarray(m["confusion_matrix"], dtype=np.float64)
    labels = m["labels"]
    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(labels), 0.8 + 0.7 * len(labels)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{int(cm[i, j])}\n{norm[i, j]:.0%}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}: accuracy {m['accuracy']:.2%}")
    _save(fig, path)
    plt.close(fig)


def plot_tsne(feat: np.ndarray, y: np.ndarray, labels: Sequence[str], path: Path, title: str, seed: int = 0) -> None:
    from sklearn.manifold import TSNE

    plt = _plt()
    perplexity = float(min(30, max(2, (len(feat) - 1) // 3)))
    feat = np.nan_to_num(np.asarray(feat, np.float64))
    # PCA init divides by the variance: a collapsed model (constant features) needs random init.
    init = "pca" if feat.std(0).max() > 1e-9 else "random"
    if init == "random":
        title += " (features collapsed: all equal)"
    emb = TSNE(n_components=2, perplexity=perplexity, init=init, random_state=seed).fit_transform(feat)
    fig, ax = plt.subplots(figsize=(6, 5))
    for i, name in enumerate(labels):
        sel = y == i
        if sel.any():
            ax.scatter(emb[sel, 0], emb[sel, 1], s=5, label=name, alpha=0.7)
    ax.legend(markerscale=3, fontsize=7)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    _save(fig, path)
    plt.close(fig)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2%}"


def per_class_table(m: dict[str, Any]) -> str:
    lines = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name, r in m["per_class"].items():
        lines.append(f"| {name} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['support']} |")
    return "\n".join(lines)


def write_report(path: Path, title: str, facts: dict[str, Any], metrics: dict[str, Any], notes: list[str]) -> None:
    out = [f"# {title}", ""]
    for k, v in facts.items():
        out.append(f"- **{k}**: {v}")
    out.append("")
    for split in ("val", "test"):
        m = metrics.get(split)
        if not m:
            continue
        out += [f"## {split}: accuracy {_pct(m['accuracy'])}, macro-F1 {m['macro_f1']:.3f} (n={m['n']})", "", per_class_table(m), ""]
    for name, m in metrics.get("cross", {}).items():
        out += [f"## cross-dataset {name}: accuracy {_pct(m['accuracy'])}, macro-F1 {m['macro_f1']:.3f} (n={m['n']})", "",
                per_class_table(m), ""]
    if notes:
        out += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    plots = [f"`plots/{n}`" for n in ("curves.png", "confusion_val.png", "confusion_test.png", "tsne_test.png")
             if (path.parent / "plots" / n).is_file()]  # t-SNE only when the recipe asks for it
    if plots:
        out += [f"Plots: {', '.join(plots)}.", ""]
    with atomic_file(path) as fh:
        fh.write("\n".join(out))
