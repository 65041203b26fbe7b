"""`fer-edge bench`: latency, throughput, memory and accuracy of bundles on cpu / gpu / rpi."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import click

from ..bench.baselines import BASELINES
from ..bench.fleet import rpi_profiles
from ..bench.profiles import DEVICES
from ..bundle import TTA_MODES
from ..data.loader import KINDS


@click.command("bench")
@click.argument("bundles", nargs=-1, type=click.Path())
@click.option("--device", "devices", multiple=True, type=click.Choice(DEVICES), default=("cpu",),
              show_default=True, help="Where to run; repeat to put several devices in one table.")
@click.option("--host", "host_args", multiple=True,
              help="rpi: USER@HOST[:PORT] or a Host alias from ~/.ssh/config (key login, known host key); "
                   "repeat for a fleet, benchmarked in parallel.")
@click.option("--hosts", "hosts_file", type=click.Path(),
              help="rpi: a file of hosts, one 'USER@HOST[:PORT] [PROFILE]' per line (# comments).")
@click.option("--port", type=int, help="rpi: SSH port of hosts that name none (default: ssh's own, i.e. ~/.ssh/config or 22).")
@click.option("--threads", type=int, help="Threads per run (default: 1 and all cores; rpi: 1 and the profile's).")
@click.option("--warmup", type=int, default=20, show_default=True, help="Untimed calls before timing.")
@click.option("--runs", type=int, default=200, show_default=True, help="Timed single-image calls.")
@click.option("--batch", type=int, default=32, show_default=True, help="Batch size for throughput.")
@click.option("--data", type=click.Path(), help="Evaluation dataset (default: the one in each bundle's provenance).")
@click.option("--kind", type=click.Choice(KINDS), default=None, help="Reader of --data (default: detected).")
@click.option("--limit", type=int, help="Score on a fixed random subset of this many test images.")
@click.option("--tta", type=click.Choice(TTA_MODES), default=None,
              help="Test-time augmentation for every row (default: each bundle's own); e2e latency and accuracy average the views.")
@click.option("--baseline", "baselines", multiple=True, type=click.Choice(BASELINES),
              help="Add a peer model to the table, scored on the same test set.")
@click.option("--json", "json_out", type=click.Path(), help="Write the results JSON here ('-' for stdout).")
@click.option("--csv", "csv_out", type=click.Path(), help="Write a CSV table here.")
@click.option("--md", "md_out", type=click.Path(), help="Write a Markdown report here.")
@click.option("--plot", "plot_out", type=click.Path(), help="Write the accuracy-vs-latency (Pareto) PNG here (needs matplotlib).")
@click.option("--setup", is_flag=True, help="rpi: print the device install (with --host: perform it over SSH).")
@click.option("--profile", default="rpi4", show_default=True, type=click.Choice(rpi_profiles()),
              help="rpi: device profile (devices/profiles).")
@click.option("--remote-python", help="rpi: the device's Python (default: the profile's venv).")
@click.option("--ssh-config", type=click.Path(), help="rpi: an ssh_config file to use instead of ~/.ssh/config.")
def bench(bundles, devices, host_args, hosts_file, port, threads, warmup, runs, batch, data, kind, limit, tta, baselines, json_out,
          csv_out, md_out, plot_out, setup, profile, remote_python, ssh_config):
    """Measure BUNDLE... (bundle folders, or folders of bundles such as runs/edge/export).

    \b
    Per bundle, backend and thread count: status, size, accuracy and macro-F1 on the
    test split (delta vs the float reference), single-image latency p50/p90/p99/mean,
    throughput at --batch, time to first inference and peak memory (each row in a
    fresh process), plus the environment.
    \b
      fer-edge bench runs/edge/export --baseline mini-xception --md bench.md --plot bench.png
      fer-edge bench runs/edge/export/tflite-int8 --device rpi --host pi@raspberrypi.local
      fer-edge bench runs/edge/export/tflite-int8 --device rpi --host pi@pi-a --host pi@pi-b:2222
      fer-edge bench runs/edge/export/tflite-int8 --device rpi --hosts pis.txt --md fleet.md
      fer-edge bench --device rpi --host pi@raspberrypi.local --setup
    """
    from ..bench.fleet import parse_host, read_hosts_file
    from ..errors import ConfigError

    say = lambda msg: click.echo(msg, err=True)  # noqa: E731 - progress goes to stderr
    hosts = []
    for text in host_args:
        try:
            hosts.append(parse_host(text))
        except ValueError as exc:
            raise ConfigError(f"--host: {exc}") from None
    if hosts_file:
        hosts += read_hosts_file(hosts_file)
    if setup:
        from ..bench.setup import setup_device

        if not hosts:
            click.echo(setup_device(devices, profile, None, port, ssh_config, say))
        for h in hosts:
            click.echo(setup_device(devices, h.profile or profile, h.name, h.port or port, ssh_config, say))
        return
    if not bundles and not baselines:
        raise ConfigError("give at least one BUNDLE (or --baseline)")
    for flag, path in (("--json", json_out), ("--csv", csv_out), ("--md", md_out), ("--plot", plot_out)):
        if path and path != "-" and Path(path).is_dir():  # found now, not after the whole run
            raise ConfigError(f"{flag} {path}: is a folder; give the file to write")
    if plot_out and importlib.util.find_spec("matplotlib") is None:  # before measuring, not after the whole run
        from ..errors import MissingExtraError

        raise MissingExtraError("--plot needs matplotlib, which is not installed; install with: pip install matplotlib")
    from ..bench.core import BenchOptions, run_bench
    from ..bench import report as rep

    options = BenchOptions(
        devices=tuple(dict.fromkeys(devices)), threads=threads, warmup=warmup, runs=runs, batch=batch, data=data, kind=kind,
        limit=limit, baselines=tuple(baselines), hosts=tuple(hosts), port=port, ssh_config=ssh_config, profile=profile,
        remote_python=remote_python, tta=tta,
    )
    result = run_bench(list(bundles), options, progress=say)
    for path, kind in ((csv_out, "csv"), (md_out, "md")):
        if path:
            say(f"wrote {rep.write(result, path, kind)}")
    if plot_out:
        from ..bench.plot import pareto_png

        say(f"wrote {pareto_png(result, plot_out)}")
    if json_out == "-":
        import json

        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        if json_out:
            say(f"wrote {rep.write(result, json_out, 'json')}")
        click.echo(rep.text_table(result))
    if not any(r.status in ("ok", "exported-but-failed-validation") for r in result.results):
        sys.exit(1)
