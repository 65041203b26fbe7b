"""Live and still-image inference: `fer-edge live` and `fer-edge predict`.

    from fer_edge.live import LiveOptions, run_live, predict_paths, load_classifier
    clf = load_classifier("runs/edge/export/tflite-int8")     # once
    result = run_live(clf, LiveOptions(source="0", headless=True, frames=100))
    print(result.summary.format())

numpy + OpenCV + the runtime backend only; no TensorFlow.
"""

from __future__ import annotations

from .capture import CaptureThread
from .models import default_bundle, load_classifier
from .pipeline import FacePipeline, FaceResult
from .predict import PredictReport, predict_paths
from .runner import LiveOptions, LiveResult, live_from_bundle, run_live
from .sources import Frame, FrameSource, OpenCVSource, PicameraSource, SourceDisconnected, SourceError, open_source
from .stats import Summary
from .tracker import IouTracker

__all__ = [
    "CaptureThread", "FacePipeline", "FaceResult", "Frame", "FrameSource", "IouTracker", "LiveOptions",
    "LiveResult", "OpenCVSource", "PicameraSource", "PredictReport", "SourceDisconnected", "SourceError",
    "Summary", "default_bundle", "live_from_bundle", "load_classifier", "open_source", "predict_paths", "run_live",
]
