"""`fer-edge data info|prepare`: inspect a dataset, or cache it as arrays for fast training."""

from __future__ import annotations

import json

import click

from ..data.loader import KINDS
from ..labels import LABEL_SETS


def _reader_options(f):
    """Options passed to the dataset reader only when given (a kind refuses options it does not take)."""
    opts = [
        click.option("--kind", type=click.Choice(KINDS), default=None, help="Dataset kind (default: detected)."),
        click.option("--skip-bad", is_flag=True, help="Skip unreadable files/rows and list them instead of failing."),
        click.option("--fer2013", "fer2013", type=click.Path(), default=None,
                     help="FER+: the fer2013.csv(.gz) holding the pixels (default: found beside the votes)."),
        click.option("--mode", type=click.Choice(["majority", "soft"]), default=None,
                     help="FER+: majority label or vote distribution (default majority)."),
        click.option("--size", type=int, default=None,
                     help="Resize images to SIZE x SIZE (JAFFE face crops: 128; AffectNet: 100)."),
        click.option("--margin", type=float, default=None,
                     help="JAFFE / AffectNet: border added around the face box, as a fraction of its size (0.2)."),
        click.option("--no-crop", is_flag=True, help="JAFFE: keep the whole 256x256 image instead of the face crop."),
        click.option("--detector", type=click.Choice(["yunet", "haar"]), default=None,
                     help="JAFFE: face detector for the crop (default yunet)."),
        click.option("--fallback", type=click.Choice(["whole"]), default=None,
                     help="JAFFE: use the whole image where no face is found (default: report it as bad)."),
        click.option("--labels", "label_set", type=click.Choice(sorted(LABEL_SETS)), default=None,
                     help="Re-index to this label set; other classes are dropped (e.g. fer4 = happy/sad/neutral/surprise)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _opts(fer2013, mode, size, margin, no_crop, detector, fallback, label_set) -> dict:
    given = {"fer2013": fer2013, "mode": mode, "size": size, "margin": margin, "detector": detector,
             "fallback": fallback, "labels": label_set}
    out = {k: v for k, v in given.items() if v is not None}
    if no_crop:
        out["crop"] = None
    return out


@click.group()
def data() -> None:
    """Inspect datasets and cache them as arrays."""


@data.command()
@click.argument("path", type=click.Path())
@_reader_options
@click.option("--near-dups", is_flag=True, help="Also look for near-duplicate images (perceptual hash).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def info(path, kind, skip_bad, fer2013, mode, size, margin, no_crop, detector, fallback, label_set, near_dups, as_json):
    """Kind, counts per split x class, subjects, duplicates/leakage and bad files of PATH."""
    from ..data.report import dataset_info, format_info

    result = dataset_info(path, kind=kind, skip_bad=skip_bad, near_dups=near_dups,
                          **_opts(fer2013, mode, size, margin, no_crop, detector, fallback, label_set))
    click.echo(json.dumps(result, indent=2) if as_json else format_info(result))


@data.command()
@click.argument("path", type=click.Path())
@click.option("--out", "out", type=click.Path(), required=True, help="Cache file to write (.npz; a .json sidecar goes beside it).")
@_reader_options
@click.option("--overwrite", is_flag=True, help="Replace an existing cache file.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def prepare(path, out, kind, skip_bad, fer2013, mode, size, margin, no_crop, detector, fallback, label_set, overwrite,
            as_json):
    """Read PATH once and cache it as a compressed .npz that loads in a fraction of the time."""
    from ..data.report import prepare as prepare_cache

    result = prepare_cache(path, out, kind=kind, skip_bad=skip_bad, overwrite=overwrite,
                           **_opts(fer2013, mode, size, margin, no_crop, detector, fallback, label_set))
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"wrote {result['out']} ({result['samples']} samples, {result['bytes'] / 1e6:.1f} MB"
                   + (f", {result['skipped']} skipped" if result["skipped"] else "") + ")")
