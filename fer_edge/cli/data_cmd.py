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
        click.option("--detect-faces", is_flag=True,
                     help="Image folders: detect the face in each image and cut it out (--detector, --margin)."),
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


def _opts(fer2013, mode, size, margin, no_crop, detect_faces, detector, fallback, label_set) -> dict:
    given = {"fer2013": fer2013, "mode": mode, "size": size, "margin": margin, "detector": detector,
             "fallback": fallback, "labels": label_set}
    out = {k: v for k, v in given.items() if v is not None}
    if no_crop:
        out["crop"] = None
    if detect_faces:
        if no_crop:
            from ..errors import ConfigError

            raise ConfigError("--no-crop and --detect-faces contradict each other; give one")
        out["crop"] = "face"
    return out


@click.group()
def data() -> None:
    """Inspect datasets and cache them as arrays."""


@data.command()
@click.argument("path", type=click.Path())
@_reader_options
@click.option("--near-dups", is_flag=True, help="Also look for near-duplicate images (perceptual hash).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def info(path, kind, skip_bad, fer2013, mode, size, margin, no_crop, detect_faces, detector, fallback, label_set, near_dups,
         as_json):
    """Kind, counts per split x class, subjects, duplicates/leakage and bad files of PATH."""
    from ..data.report import dataset_info, format_info

    result = dataset_info(path, kind=kind, skip_bad=skip_bad, near_dups=near_dups,
                          **_opts(fer2013, mode, size, margin, no_crop, detect_faces, detector, fallback, label_set))
    click.echo(json.dumps(result, indent=2) if as_json else format_info(result))


@data.command()
@click.argument("path", type=click.Path())
@click.option("--out", "out", type=click.Path(), required=True,
              help="Cache to write: a .npz file (a .json sidecar goes beside it), or with --shards a folder.")
@_reader_options
@click.option("--shards", is_flag=True,
              help="Write a sharded folder of .npy faces that training streams from disk (datasets larger than RAM).")
@click.option("--shard-size", type=int, default=4096, show_default=True, help="--shards: faces per shard.")
@click.option("--overwrite", is_flag=True, help="Replace an existing cache file.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def prepare(path, out, kind, skip_bad, fer2013, mode, size, margin, no_crop, detect_faces, detector, fallback, label_set,
            shards, shard_size, overwrite, as_json):
    """Read PATH once and cache it: a compressed .npz that loads in a fraction of the time, or
    (--shards) a folder of face shards that training streams with flat memory.

    \b
      fer-edge data prepare faces/ --out .cache/faces --shards --detect-faces --size 64
      fer-edge train --recipe edge_mobilenetv2_64 --data .cache/faces --out runs/faces
    """
    from ..data.report import prepare as prepare_cache, prepare_shards

    opts = _opts(fer2013, mode, size, margin, no_crop, detect_faces, detector, fallback, label_set)
    if shards:
        progress = None if as_json else (lambda msg: click.echo(msg, err=True))
        result = prepare_shards(path, out, kind=kind, skip_bad=skip_bad, overwrite=overwrite, shard_size=shard_size,
                                progress=progress, **opts)
    else:
        result = prepare_cache(path, out, kind=kind, skip_bad=skip_bad, overwrite=overwrite, **opts)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"wrote {result['out']} ({result['samples']} samples, {result['bytes'] / 1e6:.1f} MB"
                   + (f", {result['skipped']} skipped" if result["skipped"] else "") + ")")
