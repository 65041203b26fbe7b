"""`fer-edge formats`: the registries the other commands read their choices from."""

from __future__ import annotations

import json

import click


def registries() -> dict:
    """Formats, precisions, runtime backends, test-time augmentations, baselines and device profiles."""
    from ..bench.baselines import BASELINES
    from ..bench.profiles import load_profile, profile_names
    from ..bundle import TTA_MODES
    from ..formats import FORMATS
    from ..quantization import QUANT_CONFIGS
    from ..runtime.backends import BACKENDS

    return {
        "formats": {n: {"precisions": list(f.precisions), "backend": f.backend, "export_extra": f.export_extra,
                        "runtime_extra": f.runtime_extra or "(base install)", "description": f.description}
                    for n, f in FORMATS.items()},
        "precisions": {n: {"flag": q.flag, "needs_calibration": q.needs_calibration, "description": q.description}
                       for n, q in QUANT_CONFIGS.items()},
        "backends": {n: {"formats": list(b.formats), "description": b.description} for n, b in BACKENDS.items()},
        "tta": list(TTA_MODES),
        "baselines": list(BASELINES),
        "device_profiles": {n: load_profile(n).description for n in profile_names()},
    }


@click.command("formats")
@click.option("--json", "as_json", is_flag=True, help="Print the registries as JSON.")
def formats(as_json):
    """List the model formats, precisions, runtime backends, TTA modes, baselines and device profiles."""
    reg = registries()
    if as_json:
        click.echo(json.dumps(reg, indent=2))
        return
    click.echo("formats:")
    for n, f in reg["formats"].items():
        click.echo(f"  {n:9s} {', '.join(f['precisions']):26s} backend {f['backend'] or '-':12s} {f['description']}")
    click.echo("precisions (fer-edge convert flags):")
    for n, q in reg["precisions"].items():
        click.echo(f"  {q['flag']:10s} {q['description']}")
    click.echo("runtime backends (--backend):")
    for n, b in reg["backends"].items():
        click.echo(f"  {n:12s} runs {', '.join(b['formats']):16s} {b['description']}")
    click.echo(f"test-time augmentation (--tta): {', '.join(reg['tta'])}")
    click.echo(f"baselines (bench --baseline): {', '.join(reg['baselines'])}")
    click.echo("device profiles (bench --profile / --setup):")
    for n, d in reg["device_profiles"].items():
        click.echo(f"  {n:6s} {d}")
