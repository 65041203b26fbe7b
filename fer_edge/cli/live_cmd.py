"""`fer-edge predict` (still images) and `fer-edge live` (camera, video file, stream)."""

from __future__ import annotations

import json
import sys

import click

from ..bundle import TTA_MODES
from ..errors import ConfigError

SMALL_IMAGE_PX = 64  # at most this wide and high: probably a face crop, not a photo

def _resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--resolution {text!r}: use WIDTHxHEIGHT, e.g. 640x480") from None
    if w < 64 or h < 64:
        raise ConfigError(f"--resolution {text!r}: width and height must be >= 64")
    return w, h


_model_opt = click.option("--model", "model", type=click.Path(), default=None,
                          help="Bundle folder (from fer-edge convert). Default: $FER_EDGE_MODEL, else the int8 TFLite model shipped with fer-edge.")
_backend_opt = click.option("--backend", default=None, help="litert | onnxruntime | openvino (default: from the bundle).")
_threads_opt = click.option("--threads", type=int, default=None, help="Inference threads (default: all cores).")
_tta_opt = click.option("--tta", type=click.Choice(TTA_MODES), default=None,
                       help="Test-time augmentation: average the model over these views of each face "
                            "(default: the bundle's own; costs one model call per view).")
_detector_opt = click.option("--detector", default="auto", show_default=True,
                             help="Face detector: yunet | haar | auto (YuNet if its model is found, else OpenCV's Haar cascade).")
_score_opt = click.option("--face-threshold", "score_threshold", type=float, default=0.6, show_default=True,
                          help="Minimum YuNet face score.")


@click.command("predict")
@click.argument("images", nargs=-1, required=True, type=click.Path())
@_model_opt
@_backend_opt
@_threads_opt
@_tta_opt
@_detector_opt
@_score_opt
@click.option("--whole-image", is_flag=True, help="Images are already face crops: classify each whole image.")
@click.option("--annotate", "annotate_dir", type=click.Path(file_okay=False), default=None,
              help="Write annotated copies into this folder (never over an input image; "
                   "a repeated file name gets -2, -3, ...).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def predict(images, model, backend, threads, tta, detector, score_threshold, whole_image, annotate_dir, as_json):
    """Label every face in IMAGE files or folders of images."""
    from ..face import create_detector
    from ..live import load_classifier, predict_paths

    clf = load_classifier(model, backend=backend, threads=threads, tta=tta)
    det = None if whole_image else create_detector(detector, score_threshold=score_threshold)
    report = predict_paths(list(images), clf, det, annotate_dir=annotate_dir, whole_image=whole_image)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for r in report.images:
            copy = f" -> {r.annotated}" if r.annotated else ""  # its name may differ from the input's (a-2.jpg)
            click.echo(f"{r.path}: {len(r.faces)} face{'s' if len(r.faces) != 1 else ''}{copy}")
            for i, f in enumerate(r.faces, 1):
                x, y, w, h = f["box"]
                top = sorted(f["scores"].items(), key=lambda kv: -kv[1])[:3]
                rest = ", ".join(f"{k} {v:.2f}" for k, v in top[1:])
                click.echo(f"  #{i} [{x:.0f},{y:.0f} {w:.0f}x{h:.0f}] {f['label']} {f['score']:.2f}  ({rest})")
        counts = report.to_json()["counts"]
        click.echo(f"{counts['images']} images, {counts['faces']} faces, {counts['without_faces']} without a face, "
                   f"{counts['skipped']} skipped" + (f"; annotated copies in {annotate_dir}" if annotate_dir else ""))
    for path, why in report.skipped:
        click.echo(f"skipped {path}: {why}", err=True)
    for folder in report.left_out:
        click.echo(f"left out {folder}: the --annotate folder (its images are annotated copies)", err=True)
    tiny = [r.path for r in report.images if not r.faces and max(r.size) <= SMALL_IMAGE_PX]
    if det is not None and tiny:  # a detector finds no face in a face crop (FER2013 / CK+ images are 48 px)
        click.echo(f"{len(tiny)} image(s) of {SMALL_IMAGE_PX} px or less without a detected face (e.g. {tiny[0]}): "
                   "if they are face crops already, add --whole-image", err=True)
    if not report.images:
        raise ConfigError(f"none of the {len(report.skipped)} files could be read as an image")


@click.command("live")
@_model_opt
@click.option("--source", default="0", show_default=True,
              help="picamera | camera index | /dev/videoN | video file | rtsp://... or http://... URL")
@_backend_opt
@_threads_opt
@_tta_opt
@_detector_opt
@_score_opt
@click.option("--detect-every", type=int, default=1, show_default=True,
              help="Run the face detector every N frames and track boxes in between.")
@click.option("--detect-width", type=int, default=320, show_default=True,
              help="Width of the image the detector sees (0 = full frame; picamera: the lores stream). "
                   "Cost grows with its area; raise it for faces far from the camera.")
@click.option("--resolution", default="640x480", show_default=True, help="Camera resolution WIDTHxHEIGHT.")
@click.option("--single-face", is_flag=True, help="Only the largest face (kiosk mode).")
@click.option("--smooth", "smoothing", default="ema:0.5", show_default=True,
              help="Per-face score smoothing: ema:ALPHA | window:N | none.")
@click.option("--headless", is_flag=True, help="No window: print JSON lines (one per frame, then a summary).")
@click.option("--show-crop", is_flag=True, help="Show the exact model input beside the frame.")
@click.option("--record", type=click.Path(dir_okay=False), default=None, help="Save the annotated video (.mp4/.avi).")
@click.option("--seconds", type=float, default=None, help="Stop after this many seconds.")
@click.option("--frames", type=int, default=None, help="Stop after this many processed frames.")
@click.option("--reconnect", "reconnect_retries", type=int, default=5, show_default=True,
              help="Reconnect tries (exponential back-off) when a camera or stream drops.")
@click.option("--serve", metavar="[HOST:]PORT", default=None,
              help="Serve a live web page (video, labels, charts) and the JSON stream instead of a window. "
                   "HOST defaults to 127.0.0.1; another address (e.g. 0.0.0.0:8080) is reachable from the "
                   "network and needs the token.")
@click.option("--token", default=None, help="Protect every --serve endpoint with this token "
              "(default: $FER_EDGE_TOKEN; off loopback a random one is generated and printed).")
def live(model, source, backend, threads, tta, detector, score_threshold, detect_every, detect_width, resolution,
         single_face, smoothing, headless, show_crop, record, seconds, frames, reconnect_retries, serve, token):
    """Classify faces live from a camera, a video file or a stream.

    \b
    Output: a window (default), JSON lines (--headless), or a web page (--serve 8080):
      fer-edge live --source picamera --serve 8080      # then open http://127.0.0.1:8080/
    """
    from ..live import LiveOptions, live_from_bundle

    opts = LiveOptions(
        source=source, detector=detector, score_threshold=score_threshold, detect_every=detect_every,
        detect_width=detect_width or None, resolution=_resolution(resolution), single_face=single_face,
        smoothing=smoothing, headless=headless, show_crop=show_crop, record=record, seconds=seconds,
        frames=frames, reconnect_retries=reconnect_retries, serve=serve, token=token,
    )
    result = live_from_bundle(model, opts, backend=backend, threads=threads, tta=tta)
    click.echo(result.summary.format(), err=True)
    if result.recorded:
        click.echo(f"recorded {result.recorded}", err=True)
    if result.error:
        click.echo(f"error: {result.error}", err=True)
        sys.exit(1)
