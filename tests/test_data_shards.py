"""`fer-edge data prepare --shards`: a sharded on-disk face cache that training streams.

Fixtures are generated image folders (real FER2013 faces from ../shared when present);
the face-detection case uses JAFFE images and the YuNet file from ../shared.
"""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.cli.main import main as cli
from fer_edge.data import load_dataset
from fer_edge.data.report import prepare_shards
from fer_edge.data.shards import ShardedImages
from fer_edge.errors import DataError
from fer_edge.labels import FER7

from inthewild_fixtures import faces
from tiny_recipe import tiny_recipe


def make_imagefolder(root, n_train=140, n_test=35, seed=0):
    """<root>/{train,test}/<class>/NNNN.png, classes cycling through FER7."""
    pool = faces(n_train + n_test, seed)
    for i, face in enumerate(pool):
        split = "train" if i < n_train else "test"
        folder = root / split / FER7[i % 7]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i:04d}.png"), face)
    return root


@pytest.fixture
def folder(tmp_path):
    return make_imagefolder(tmp_path / "faces")


def _by_source(ds):
    return {str(s): (int(y), str(sp)) for s, y, sp in zip(ds.sources, ds.labels, ds.splits)}


def test_shards_round_trip_and_lazy_selection(folder, tmp_path):
    out = tmp_path / "cache"
    res = prepare_shards(folder, out, shard_size=32)
    assert res["samples"] == 175 and res["shards"] == 6 and res["image_shape"] == [48, 48]
    meta = json.loads((out / "cache.json").read_text())
    assert [s["n"] for s in meta["shards"]] == [32] * 5 + [15]
    mem = load_dataset(folder)
    ds = load_dataset(out)  # kind detected: shards
    assert ds.info["kind"] == "shards" and ds.info["source_kind"] == "imagefolder" and ds.info["cache"] == str(out)
    assert ds.info["face"] == {"margin": 0.2, "align": False, "square": True}  # an image folder's framing
    assert isinstance(ds.images, ShardedImages) and ds.images.shape == (175, 48, 48)
    assert ds.counts() == mem.counts() and ds.roles == mem.roles == {"train": "train", "test": "test"}
    # stored in a seeded random order: the first shard is not one class
    assert len(set(ds.labels[:32].tolist())) == 7
    # every face, label and split matches the image folder read into memory
    want = {str((folder / s)): i for i, s in enumerate(ds.sources)}
    pixels = np.asarray(ds.images)
    for j, src in enumerate(mem.sources):
        i = want[str(src)]
        np.testing.assert_array_equal(pixels[i], mem.images[j])
        assert (ds.labels[i], ds.splits[i]) == (mem.labels[j], mem.splits[j])
    info = json.loads(CliRunner().invoke(cli, ["data", "info", str(out), "--json"]).stdout)
    assert info["kind"] == "shards" and info["samples"] == 175 and info["leakage"]["exact"]["groups"] == 0
    # selections stay on disk until asked for
    test = ds.split("test").with_labels(("happy", "sad"))
    assert isinstance(test.images, ShardedImages) and len(test) == 10
    np.testing.assert_array_equal(np.asarray(test.images), pixels[ds.splits == "test"][np.isin(
        ds.labels[ds.splits == "test"], [FER7.index("happy"), FER7.index("sad")])])


def test_tf_dataset_streams_every_selected_face_once(folder, tmp_path):
    out = tmp_path / "cache"
    prepare_shards(folder, out, shard_size=20)
    ds = load_dataset(out).split("train")
    pixels = np.asarray(ds.images)
    row_of = {pixels[i].tobytes(): i for i in range(len(ds))}
    w = np.arange(len(ds), dtype=np.float32)
    seen, sizes = [], []
    loads = []
    orig = ShardedImages._load
    ShardedImages._load = lambda self, s: loads.append(s) or orig(self, s)
    try:
        for xb, yb, wb in ds.images.tf_dataset(ds.labels, w, batch=16, seed=3):
            sizes.append(len(xb))
            for x, y, wi in zip(xb.numpy(), yb.numpy(), wb.numpy()):
                i = row_of[x.tobytes()]
                assert y == ds.labels[i] and wi == w[i]  # labels/weights travel with their pixels
                seen.append(i)
    finally:
        ShardedImages._load = orig
    assert sorted(seen) == list(range(len(ds)))  # each training face exactly once
    assert sizes[:-1] == [16] * (len(sizes) - 1) and sum(sizes) == 140  # full batches across shard boundaries
    assert sorted(loads) == list(range(9)) and len(loads) == 9  # each shard read once per epoch
    again = [row_of[x.tobytes()] for xb, *_ in ds.images.tf_dataset(ds.labels, None, 16, seed=4) for x in xb.numpy()]
    assert again != seen and sorted(again) == sorted(seen)  # another epoch, another order


def test_prepare_shards_detects_faces(jaffe_dir, face_weights, tmp_path):
    src = tmp_path / "jaffe_folder"
    for f in sorted(jaffe_dir.glob("*.tiff"))[:12]:
        label = {"AN": "angry", "DI": "disgust", "FE": "fear", "HA": "happy", "NE": "neutral", "SA": "sad",
                 "SU": "surprise"}[f.name.split(".")[1][:2]]
        (src / label).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, src / label / f.name)
    noise = np.random.default_rng(0).integers(0, 256, (256, 256), dtype=np.uint8)
    cv2.imwrite(str(src / "happy" / "no_face.png"), cv2.GaussianBlur(noise, (31, 31), 0))
    args = ["data", "prepare", str(src), "--out", str(tmp_path / "c"), "--shards", "--detect-faces", "--size", "64"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and res.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "no_face.png: no face detected" in res.stderr and not (tmp_path / "c").exists()  # nothing half-written
    assert not list(tmp_path.glob(".c.tmp-*"))
    res = CliRunner().invoke(cli, args + ["--skip-bad", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["samples"] == 12 and out["skipped"] == 1 and out["image_shape"] == [64, 64]
    ds = load_dataset(tmp_path / "c")
    assert ds.info["face"] == {"margin": 0.2, "align": False, "square": True}
    # the same crops as the JAFFE reader's (same detector, margin and size)
    jaffe = load_dataset(jaffe_dir, size=64)
    by_name = {s.split("/")[-1]: i for i, s in enumerate(jaffe.sources)}
    pixels = np.asarray(ds.images)
    for i, s in enumerate(ds.sources):
        np.testing.assert_array_equal(pixels[i], jaffe.images[by_name[s.split("/")[-1]]])


def test_shards_bad_input(folder, tmp_path):
    out = tmp_path / "cache"
    with pytest.raises(DataError, match="a shard cache is a folder"):
        prepare_shards(folder, tmp_path / "c.npz")
    cv2.imwrite(str(folder / "train" / "happy" / "big.png"), np.zeros((60, 60), np.uint8))
    with pytest.raises(DataError, match=r"big.png: face is 60x60 but .* is 48x48; pass --size"):
        prepare_shards(folder, out)
    assert not out.exists() and not list(tmp_path.glob(".cache.tmp-*"))  # never half a cache
    prepare_shards(folder, out, size=48)
    with pytest.raises(DataError, match="already exists"):
        prepare_shards(folder, out, size=48)
    shard = out / "shard-00000.npy"
    shard.write_bytes(shard.read_bytes()[:1000])  # truncated
    ds = load_dataset(out)
    with pytest.raises(DataError, match=r"shard-00000.npy: cannot read this shard .*prepare` again"):
        np.asarray(ds.images)
    (out / "labels.npy").unlink()
    res = CliRunner().invoke(cli, ["data", "info", str(out)])
    assert res.exit_code == 2 and res.stderr.strip().startswith(f"error: {out}: shard cache is incomplete")
    res = CliRunner().invoke(cli, ["data", "prepare", str(folder), "--out", str(tmp_path / "x"), "--shards",
                                   "--shard-size", "0"])
    assert res.exit_code == 2 and "--shard-size must be >= 1" in res.stderr


TINY = tiny_recipe('name = "stream_tiny"\n')


def test_train_streams_from_shards(folder, tmp_path, monkeypatch):
    from fer_edge.bundle import read_bundle
    from fer_edge.training.recipes import load_recipe
    from fer_edge.training.trainer import train

    prepare_shards(folder, tmp_path / "cache", shard_size=25)
    recipe_path = tmp_path / "tiny.toml"
    recipe_path.write_text(TINY)
    streamed = []
    orig = ShardedImages.tf_dataset
    monkeypatch.setattr(ShardedImages, "tf_dataset", lambda self, *a: streamed.append(self.shape) or orig(self, *a))
    summary = train(load_recipe(recipe_path), tmp_path / "cache", tmp_path / "run", log=lambda s: None)
    assert streamed == [(126, 40, 40, 1)] * 2  # the training split, resized to the input, streamed each epoch
    m = read_bundle(tmp_path / "run").manifest
    assert m.provenance["data"]["kind"] == "shards" and summary["epochs_run"] == 2
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    # `fer-edge eval` reads the cache's test split back and reproduces the run's score
    res = CliRunner().invoke(cli, ["eval", str(tmp_path / "run"), "--data", str(tmp_path / "cache"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["accuracy"] == pytest.approx(summary["test_accuracy"])
