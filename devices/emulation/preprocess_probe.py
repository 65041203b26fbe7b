"""Where arm64 and x86 part: run with an installed fer-edge on each machine (x86 first).

    python preprocess_probe.py OUT_DIR DATA LIMIT [X86_DIR]

Saves the shipped bundle's evaluation faces (the same fixed subset ``fer-edge bench --limit``
scores), their model input as this machine's fer-edge preprocesses them (OpenCV resize) and
the shipped model's probabilities; with X86_DIR, also the probabilities for x86's model input,
which separates the preprocessing from the model's own arithmetic.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from fer_edge.bench.evalset import eval_faces
from fer_edge.runtime import load
from fer_edge.shipped import shipped_bundle


def main(out: Path, data: str, limit: int, x86: Path | None) -> None:
    clf = load(shipped_bundle(), threads=1)
    faces = np.asarray(eval_faces(clf.manifest, data, limit)[0].images)
    x = clf.preprocess(faces)  # the single-view input (what predict and live feed without TTA)
    run = lambda inputs: np.concatenate([clf.run(inputs[i : i + 64]) for i in range(0, len(inputs), 64)])  # noqa: E731
    np.save(out / "faces.npy", faces)
    np.save(out / "inputs.npy", x)
    np.save(out / "probs.npy", run(x))
    if x86 is not None:
        np.save(out / "probs_on_x86_inputs.npy", run(np.load(x86 / "inputs.npy")))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]) if len(sys.argv) > 4 else None)
