"""`fer-edge doctor`: environment checks, each failure with the command that fixes it."""

from __future__ import annotations

import json
import sys

import click


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--quick", is_flag=True, help="Skip running the shipped models through each backend.")
def doctor(as_json, quick):
    """Check this machine: OS, CPU features, TFLite/ONNX Runtime/OpenVINO with numpy, OpenCV,
    cameras, the shipped models and the face detector. Exits 1 when a check fails."""
    from ..doctor import run_doctor

    report = run_doctor(run_inference=not quick)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.format())
    if not report.ok:
        sys.exit(1)
