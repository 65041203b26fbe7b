"""Every stage picks a bundle's evaluation faces the same way (fer_edge.data.select_role):
regressions for `bench --data <image folder>` and for quick runs whose subset was ignored."""

from __future__ import annotations

import numpy as np

from fer_edge.bundle import InputSpec, Manifest
from fer_edge.data import load_dataset, select, select_role


def _manifest(data: dict) -> Manifest:
    return Manifest(name="m", format="tflite", precision="int8", model_file="model.tflite", labels=[
        "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"], input=InputSpec(size=(48, 48)),
        provenance={"data": data})


def test_bench_reads_an_image_folder(fer2013_test_images):
    # Regression: `fer-edge bench BUNDLE --data <image folder>` failed with "unknown dataset kind 'folder'".
    from fer_edge.bench.evalset import eval_faces

    m = _manifest({"path": "/elsewhere/fer2013.csv.gz", "kind": "fer2013", "test": {"split": "test"}})
    faces, description = eval_faces(m, fer2013_test_images, limit=50)
    assert len(faces) == 50 and description.endswith("n=50")
    full, _ = eval_faces(m, fer2013_test_images, limit=None)
    assert len(full) == 3589  # the folder's PrivateTest half: the test role of an image folder


def test_bench_and_eval_score_all_of_a_dataset_without_splits(ckplus_dir):
    # Regression: `bench --data ckplus48` applied the bundle's {'split': 'test'} to CK+ (it has none) and
    # failed, where `eval` scores every face; both now ask evaluation.split_selection.
    from fer_edge.bench.evalset import eval_faces
    from fer_edge.evaluation import split_selection

    m = _manifest({"path": "/elsewhere/fer2013.csv.gz", "kind": "fer2013", "test": {"split": "test"}})
    faces, description = eval_faces(m, ckplus_dir, limit=None)
    ck = load_dataset(ckplus_dir)
    assert split_selection(ck, "test") is None and len(faces) == len(ck) == 981
    assert description == f"{ckplus_dir.name} all n=981"


def test_a_quick_runs_subset_reaches_bench_and_convert(fer2013_csv):
    # Regression: a run trained with --limit (a subset applied before the selectors) was scored by
    # convert and bench on the whole test split instead of the faces `train` reported on.
    from fer_edge.bench.evalset import eval_faces
    from fer_edge.evaluation import select_faces

    subset = {"holdout": {"fraction": 0.05, "seed": 0, "part": "holdout"}}
    data = {"path": str(fer2013_csv), "kind": "fer2013", "test": {"split": "test"}, "subset": subset}
    ds = load_dataset(fer2013_csv, "fer2013")
    want = select(select(ds, subset), {"split": "test"})
    assert 100 < len(want) < 400
    for got in (select_role(ds, data, "test"), select_faces(ds, "test", data)):  # train/convert, eval/bench
        assert np.array_equal(got.sources, want.sources)
    faces, _ = eval_faces(_manifest(data), None, limit=None)
    assert len(faces) == len(want) and np.array_equal(faces.images, want.images)


def test_the_loader_keeps_the_last_file_but_rereads_a_changed_one(tmp_path):
    # export/datasource.py's private cache is gone: every stage reads through load_dataset.
    pixels = " ".join(["7"] * 48 * 48)
    csv = tmp_path / "fer2013.csv"
    csv.write_text("emotion,pixels,Usage\n" + "".join(f"{e},{pixels},PrivateTest\n" for e in (3, 4)))
    a, b = load_dataset(csv), load_dataset(csv)
    assert a is not b and a.images is b.images  # read once, each caller its own FaceDataset
    a.info["mine"] = 1
    assert "mine" not in load_dataset(csv).info
    csv.write_text(csv.read_text() + f"0,{pixels},PrivateTest\n")
    assert len(load_dataset(csv)) == 3


def test_bench_shares_an_evaluation_set_only_between_bundles_with_the_same_selection(tmp_path):
    # Regression: the bench workspace keyed its evaluation sets by (data path, test selector,
    # --limit) only, so a 7-class bundle benched after a 4-class (or quick-run) bundle of the same
    # data was scored on that bundle's faces (provenance labels and subset were left out).
    from fer_edge.bench.core import BenchOptions, Workspace
    from fer_edge.bench.targets import Target

    pixels = " ".join(["7"] * 48 * 48)
    csv = tmp_path / "fer2013.csv"
    csv.write_text("emotion,pixels,Usage\n" + "".join(f"{e % 7},{pixels},PrivateTest\n" for e in range(70)))
    base = {"path": str(csv), "kind": "fer2013", "test": {"split": "test"}}
    four = ["angry", "happy", "sad", "neutral"]
    subset = {"holdout": {"fraction": 0.5, "seed": 0, "part": "holdout"}}
    ws_dir = tmp_path / "ws"
    ws_dir.mkdir()
    ws = Workspace(ws_dir, BenchOptions(batch=4))
    targets = {name: Target(name, tmp_path, _manifest(data)) for name, data in (
        ("fer4", {**base, "labels": four}), ("fer7", base), ("quick", {**base, "subset": subset}))}
    n = {name: len(ws.eval_files(t, None).faces) for name, t in targets.items()}
    assert n == {"fer4": 40, "fer7": 70, "quick": len(select(load_dataset(csv), subset))}
    assert 0 < n["quick"] < 70
    assert ws.eval_files(Target("again", tmp_path, _manifest(dict(base))), None) is ws.eval_files(targets["fer7"], None)
