"""On-device inference: load a bundle and run it with one backend.

Depends only on numpy, OpenCV (preprocessing) and the chosen backend package
(LiteRT / tflite-runtime, ONNX Runtime or OpenVINO). Importing this package
imports none of them, nor TensorFlow/Keras/torch/onnx/nncf: backends load in
``load()``.

    from fer_edge.runtime import load
    clf = load("runs/edge/export/tflite-int8")
    clf.predict(face)            # -> Prediction(label, score, scores)
    clf.predict_proba(faces)     # -> (N, K) float32
"""

from .backends import BACKENDS
from .classifier import Classifier, Prediction, load

__all__ = ["BACKENDS", "Classifier", "Prediction", "load"]
