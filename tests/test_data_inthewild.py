"""RAF-DB basic and AffectNet readers on fixtures in the datasets' exact release layouts."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.cli.main import main as cli
from fer_edge.data import detect_kind, load_dataset
from fer_edge.data.affectnet import AFFECTNET_LABELS, DROPPED
from fer_edge.data.images import read_gray
from fer_edge.data.rafdb import RAF_LABELS
from fer_edge.errors import DataError
from fer_edge.labels import CANONICAL, FER7

from inthewild_fixtures import make_affectnet, make_rafdb


def _one_line_cli_error(args) -> str:
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in res.output, res.output
    return lines[0]


# ------------------------------------------------------------------ RAF-DB


@pytest.fixture
def rafdb(tmp_path):
    return make_rafdb(tmp_path / "RAF-DB" / "basic")


def test_rafdb_label_map_is_a_permutation_of_fer7():
    assert sorted(RAF_LABELS) == list(range(1, 8)) and sorted(RAF_LABELS.values()) == sorted(FER7)
    assert (RAF_LABELS[1], RAF_LABELS[4], RAF_LABELS[6], RAF_LABELS[7]) == ("surprise", "happy", "angry", "neutral")


def test_rafdb_reads_aligned_faces_in_canonical_order(rafdb):
    root = rafdb["root"]
    assert detect_kind(root) == "rafdb"
    ds = load_dataset(root)
    assert ds.info["kind"] == "rafdb" and ds.label_names == FER7
    assert len(ds) == len(rafdb["rows"]) == 21 and ds.images.shape == (21, 100, 100)
    assert ds.counts()["train"]["surprise"] == 2 and sum(ds.counts()["test"].values()) == 7
    assert ds.roles == {"train": "train", "test": "test"} and ds.subjects is None
    for i, (name, code) in enumerate(rafdb["rows"]):
        src = root / "Image" / "aligned" / name.replace(".jpg", "_aligned.jpg")
        assert ds.sources[i] == str(src) and ds.splits[i] == name.split("_")[0]
        assert ds.label_names[ds.labels[i]] == RAF_LABELS[code]
        np.testing.assert_array_equal(ds.images[i], read_gray(src))
    assert load_dataset(root, size=48).images.shape == (21, 48, 48)


def test_rafdb_list_naming_missing_images(rafdb):
    root = rafdb["root"]
    (root / "Image" / "aligned" / "train_00003_aligned.jpg").unlink()
    (root / "Image" / "aligned" / "test_0002_aligned.jpg").unlink()
    lst = root / "EmoLabel" / "list_patition_label.txt"
    with pytest.raises(DataError, match=re.escape(
            f"{lst}:3: names train_00003.jpg but {root}/Image/aligned/train_00003_aligned.jpg does not exist "
            f"(2 of 21 listed images are missing)")):
        load_dataset(root)
    assert _one_line_cli_error(["data", "info", str(root)]).startswith(f"error: {lst}:3: names train_00003.jpg")
    ds = load_dataset(root, skip_bad=True)
    assert len(ds) == 19 and [b.source for b in ds.skipped] == [f"{lst}:3", f"{lst}:16"]


@pytest.mark.parametrize("line, why", [
    ("train_00099.jpg 8", "label '8' of train_00099.jpg is not one of RAF-DB's 1-7"),
    ("train_00099.jpg", "expected '<train|test>_NNNNN.jpg LABEL'"),
    ("val_00001.jpg 3", "expected '<train|test>_NNNNN.jpg LABEL'"),
])
def test_rafdb_malformed_list_line(rafdb, line, why):
    lst = rafdb["root"] / "EmoLabel" / "list_patition_label.txt"
    lst.write_text(lst.read_text() + line + "\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(lst))}:22: {re.escape(why)}"):
        load_dataset(rafdb["root"])


def test_rafdb_without_aligned_folder(rafdb):
    import shutil

    shutil.rmtree(rafdb["root"] / "Image" / "aligned")
    with pytest.raises(DataError, match=r"Image/aligned folder is missing"):
        load_dataset(rafdb["root"], kind="rafdb")


# ------------------------------------------------------------------ AffectNet


@pytest.fixture
def affectnet(tmp_path):
    return make_affectnet(tmp_path / "AffectNet", ext="png")  # png: lossless, so crops compare exactly


def test_affectnet_codes_map_and_rule():
    assert sorted(AFFECTNET_LABELS.values()) == sorted(CANONICAL)
    assert sorted(set(AFFECTNET_LABELS) | set(DROPPED)) == list(range(11))


def test_affectnet_reads_box_crops_and_drops_8_to_10(affectnet):
    root = affectnet["root"]
    assert detect_kind(root) == "affectnet"
    ds = load_dataset(root, margin=0.0, size=64)
    kept = [r for r in affectnet["rows"] if r[4] <= 7]
    assert len(ds) == len(kept) == 24  # 22 training rows less 6 coded 8-10, plus 8 validation rows
    assert ds.info["dropped"] == {"none": 2, "uncertain": 2, "no-face": 2}
    assert ds.label_names == CANONICAL and ds.roles == {"train": "train", "test": "validation"}
    assert ds.counts()["validation"] == {n: 1 for n in CANONICAL}  # headerless validation.csv read too
    for i, (name, _, rel, _, code, face) in enumerate(kept):
        assert ds.sources[i].endswith(rel) and ds.label_names[ds.labels[i]] == AFFECTNET_LABELS[code]
        np.testing.assert_array_equal(ds.images[i], face)  # margin 0: exactly the boxed pixels
    assert ds.info["face"] == {"margin": 0.0, "align": False, "square": True}
    default = load_dataset(root)  # default margin 0.2, 100x100
    assert default.images.shape == (24, 100, 100)
    fer7 = load_dataset(root, labels="fer7")
    assert fer7.label_names == FER7 and len(fer7) == 24 - 3  # contempt rows (code 7) dropped


def test_affectnet_box_outside_image(affectnet):
    root = affectnet["root"]
    csv_path = root / "Manually_Annotated_file_lists" / "training.csv"
    lines = csv_path.read_text().splitlines()
    fields = lines[4].split(",")
    img = read_gray(root / "Manually_Annotated_Images" / fields[0])
    fields[1] = str(img.shape[1] - 10)  # face_x: the 64-px box now runs off the right edge
    lines[4] = ",".join(fields)
    csv_path.write_text("\n".join(lines) + "\n")
    msg = (f"{csv_path}:5: face box x={img.shape[1] - 10} y={fields[2]} w=64 h=64 is outside the "
           f"{img.shape[1]}x{img.shape[0]} image {root / 'Manually_Annotated_Images' / fields[0]}")
    with pytest.raises(DataError, match=re.escape(msg)):
        load_dataset(root)
    assert _one_line_cli_error(["data", "info", str(root)]) == f"error: {msg}"
    ds = load_dataset(root, skip_bad=True)
    assert len(ds) == 23 and ds.skipped[0].source == f"{csv_path}:5"


def test_affectnet_bad_rows(affectnet):
    root = affectnet["root"]
    csv_path = root / "Manually_Annotated_file_lists" / "validation.csv"
    rows = csv_path.read_text().splitlines()
    first = rows[0].split(",")
    for change, why in (
        ({6: "12"}, "expression 12 is not an AffectNet code (0-10)"),
        ({3: "0"}, "face box width/height 0x64 is not positive"),
        ({1: "left"}, "is not a number"),
        ({0: "9/missing.png"}, "does not exist (1 of 24 listed images are missing)"),
    ):
        f = list(first)
        for k, v in change.items():
            f[k] = v
        csv_path.write_text("\n".join([",".join(f)] + rows[1:]) + "\n")
        with pytest.raises(DataError, match=rf"^{re.escape(str(csv_path))}:1: .*{re.escape(why)}"):
            load_dataset(root)
    (root / "Manually_Annotated_file_lists" / "training.csv").unlink()
    (root / "Manually_Annotated_file_lists" / "validation.csv").unlink()
    with pytest.raises(DataError, match="not an AffectNet folder"):
        load_dataset(root, kind="affectnet")


def test_affectnet_csv_file_points_to_folder(affectnet):
    with pytest.raises(DataError, match="an AffectNet list; pass the AffectNet folder"):
        detect_kind(affectnet["root"] / "Manually_Annotated_file_lists" / "training.csv")


# ------------------------------------------------------------------ the seed-001 cross-dataset recipe


@pytest.mark.slow  # ~36 s: EfficientNet-Lite0 features + FER2013 csv load
def test_rafdb_cross_recipe_short_run(tmp_path, backbones_dir, ckplus_dir, fer2013_csv):
    """efficientnet_rafdb_cross trains on a RAF-DB fixture as written (1 epoch) and tests on
    RAF-DB test, CK+48 (contempt dropped) and FER2013's PrivateTest."""
    from fer_edge.bundle import read_bundle
    from fer_edge.training.recipes import load_recipe, with_overrides
    from fer_edge.training.trainer import train

    root = make_rafdb(tmp_path / "basic", n_train=70, n_test=21)["root"]
    recipe = with_overrides(load_recipe("efficientnet_rafdb_cross"), epochs=1)
    recipe.data["report"] = {"tsne_samples": 20}
    out = tmp_path / "run"
    summary = train(recipe, root, out, log=lambda s: None)
    m = read_bundle(out).manifest
    assert m.labels == list(FER7) and m.provenance["data"]["kind"] == "rafdb"
    assert m.provenance["data"]["test"] == {"split": "test"}
    cross = json.loads((out / "metrics.json").read_text())["cross"]
    assert cross["ckplus48"]["n"] == 981 - 54 and "contempt" not in cross["ckplus48"]["labels"]
    assert cross["fer2013"]["n"] == 3589  # PrivateTest only
    assert summary["cross_fer2013_accuracy"] == cross["fer2013"]["accuracy"]


def test_inthewild_kinds_stream_into_a_shard_cache(tmp_path):
    """RAF-DB and AffectNet are listed and read one face at a time into `data prepare --shards`."""
    from fer_edge.data.report import prepare_shards

    raf = make_rafdb(tmp_path / "basic")["root"]
    aff = make_affectnet(tmp_path / "AffectNet", ext="png")["root"]
    for root, opts in ((raf, {}), (aff, {"labels": "fer7", "margin": 0.0, "size": 64})):
        want = load_dataset(root, **opts)
        res = prepare_shards(root, tmp_path / f"{root.name}-cache", shard_size=5, **opts)
        got = load_dataset(tmp_path / f"{root.name}-cache")
        assert res["samples"] == len(want) and got.counts() == want.counts() and got.roles == want.roles
        by_source = {str(root / s): i for i, s in enumerate(got.sources)}
        pixels = np.asarray(got.images)
        for j, src in enumerate(want.sources):
            np.testing.assert_array_equal(pixels[by_source[src]], want.images[j])
        assert got.info["source_kind"] == want.info["kind"]
    assert got.info["dropped"] == {"none": 2, "uncertain": 2, "no-face": 2} and got.info["face"]["margin"] == 0.0
