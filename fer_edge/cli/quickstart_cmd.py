"""`fer-edge quickstart`: the shipped model on a sample photo, then (with FER2013) train -> convert -> bench."""

from __future__ import annotations

import contextlib
import json
import sys

import click


@click.command("quickstart")
@click.option("--data", type=click.Path(), default=None,
              help="FER2013 csv (or a folder holding it). Default: $FER_EDGE_DATA, else ../shared/data.")
@click.option("--out", type=click.Path(file_okay=False), default="runs/quickstart", show_default=True,
              help="Output folder (an earlier quickstart there is replaced).")
@click.option("--minutes", type=float, default=10.0, show_default=True,
              help="Time budget on a 2-core CPU; sets how much is trained (about 40% of it).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def quickstart(data, out, minutes, as_json):
    """Show the whole toolchain on real data in about ten minutes and write a report.

    \b
    Always: the int8 model shipped with fer-edge labels a bundled public-domain photo and is timed.
    With FER2013: trains the edge recipe briefly, converts it to int8 TFLite/ONNX/OpenVINO, benchmarks
    them against the float model and the shipped model. Without it: says how to get FER2013.
    """
    from ..quickstart import run_quickstart

    # Keras prints epoch lines on stdout: keep stdout for the result (the report path or the JSON).
    with contextlib.redirect_stdout(sys.stderr):
        result = run_quickstart(out=out, data=data, minutes=minutes, progress=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        click.echo(f"report: {result.report}")
