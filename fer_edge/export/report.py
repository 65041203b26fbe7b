"""Text rendering of a ConvertReport (the table `fer-edge convert` prints)."""

from __future__ import annotations

from .pipeline import ConvertReport, next_commands


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def format_report(report: ConvertReport) -> str:
    lines = []
    if report.reference:
        r = report.reference
        lines.append(
            f"float Keras reference: accuracy {_pct(r['accuracy'])}%  macro-F1 {_pct(r['macro_f1'])}%  "
            f"(n={r['n']}, {report.source})"
        )
    head = ("artifact", "status", "size KB", "x vs f32 w", "conv s", "acc %", "d acc pp", "F1 %", "d F1 pp", "agree %", "mean|dp|")
    rows = [head]
    for a in report.artifacts:
        name = f"{a.format}-{a.precision}" + ("-qat" if a.qat else "") + ("-io" if a.int8_io else "")
        ret = a.retention or {}
        ratio = f"{report.float32_weights_bytes / a.size_bytes:.1f}" if a.size_bytes else "-"
        rows.append((
            name, a.status, f"{a.size_bytes / 1024:.1f}" if a.size_bytes else "-", ratio, f"{a.convert_seconds:.1f}",
            _pct(ret.get("accuracy")),
            f"{ret['accuracy_delta_pp']:+.2f}" if ret else "-",
            _pct(ret.get("macro_f1")),
            f"{ret['macro_f1_delta_pp']:+.2f}" if ret else "-",
            _pct(ret.get("top1_agreement")),
            f"{ret['mean_abs_prob_diff']:.4f}" if ret else "-",
        ))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
    for r in rows:
        lines.append("  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    lines.append("(x vs f32 w: float32 weight bytes (parameters x 4) / artifact size)")
    for a in report.artifacts:
        if a.error:
            lines.append(f"error: {a.format}-{a.precision}: {a.error}")
        elif a.status == "failed_validation":
            lines.append(
                f"FAILED validation: {a.path} drops {-a.retention['accuracy_delta_pp']:.2f} pp > --max-drop "
                f"{report.max_drop_pp} (artifact kept, marked in its manifest)"
            )
    for w in report.warnings:
        lines.append(f"warning: {w}")
    cmds = next_commands(report)
    if cmds:
        lines.append("next:")
        lines.extend(f"  {c}" for c in cmds)
    return "\n".join(lines)
