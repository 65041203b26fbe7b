"""`fer-edge convert`: Keras model or train run -> TFLite / ONNX / OpenVINO bundles, with retention measured."""

from __future__ import annotations

import json
import sys

import click

from ..errors import ConfigError
from ..formats import EXPORT_FORMATS
from ..quantization import QUANT_CONFIGS

FORMAT_CHOICES = [*EXPORT_FORMATS, "all"]


@click.command()
@click.argument("model", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES), required=True, help="Target format, or all three.")
@click.option("--fp32", is_flag=True, help=QUANT_CONFIGS["fp32"].description + " (default)")
@click.option("--fp16", is_flag=True, help=QUANT_CONFIGS["fp16"].description)
@click.option("--dynamic", is_flag=True, help=QUANT_CONFIGS["dynamic"].description + " (tflite only)")
@click.option("--int8", is_flag=True, help=QUANT_CONFIGS["int8"].description)
@click.option("--calib", type=click.Path(), default=None,
              help="int8 calibration images: a folder of face images or a dataset file (default: the run's training selector).")
@click.option("--calib-size", type=int, default=None, help="Number of calibration images (default from the profile, 300).")
@click.option("--int8-io", is_flag=True, help="TFLite int8 with int8 input/output (scale/zero point in the manifest).")
@click.option("--max-drop", type=float, default=None,
              help="Fail (exit 3, artifact kept and marked) when accuracy drops more than PP points.")
@click.option("--out", type=click.Path(), default=None, help="Output folder (default: <run>/export).")
@click.option("--overwrite", is_flag=True, help="Replace existing bundles of the same format-precision.")
@click.option("--no-eval", is_flag=True, help="Skip the retention evaluation.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def convert(model, fmt, fp32, fp16, dynamic, int8, calib, calib_size, int8_io, max_drop, out, overwrite, no_eval, as_json):
    """Convert MODEL (a .keras file or a `fer-edge train` run folder) and check every artifact.

    Each artifact is a bundle <out>/<format>-<precision>/ (model + manifest.json +
    retention.json), evaluated through fer_edge.runtime on the run's test selection
    against the float Keras model.
    """
    from ..export.pipeline import convert as run_convert
    from ..export.report import format_report

    chosen = [name for name, on in (("fp32", fp32), ("fp16", fp16), ("dynamic", dynamic), ("int8", int8)) if on]
    if len(chosen) > 1:
        raise ConfigError(f"choose one precision flag, got {', '.join('--' + c for c in chosen)}")
    precision = chosen[0] if chosen else "fp32"
    report = run_convert(
        model, fmt=fmt, precision=precision, calib=calib, calib_size=calib_size, int8_io=int8_io,
        max_drop=max_drop, out=out, overwrite=overwrite, evaluate=not no_eval,
        progress=lambda msg: click.echo(msg, err=True),
    )
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else format_report(report))
    if any(a.status == "failed" for a in report.artifacts):
        sys.exit(1)
    if any(a.status == "failed_validation" for a in report.artifacts):
        sys.exit(3)
