"""Bad input: one clear DataError naming the file/row, or with skip_bad a count and a list."""

from __future__ import annotations

import gzip

import cv2
import numpy as np
import pytest

from fer_edge.data import load_dataset
from fer_edge.data.fer2013 import read_fer2013
from fer_edge.data.ferplus import HEADER, read_ferplus
from fer_edge.errors import ConfigError, DataError

RNG = np.random.default_rng(0)


def _face(side=48) -> np.ndarray:
    return RNG.integers(0, 256, (side, side), dtype=np.uint8)


def _png(path, img=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix, _face() if img is None else img)
    path.write_bytes(buf.tobytes())


def _folder(tmp_path):
    root = tmp_path / "faces"
    for cls in ("angry", "happy"):
        for i in range(3):
            _png(root / cls / f"{cls}{i}.png")
    return root


def _row(label=0, n=2304, usage="Training", pixels=None) -> str:
    pixels = pixels if pixels is not None else " ".join(str(v) for v in RNG.integers(0, 256, n))
    return f"{label},{pixels},{usage}"


def _csv(path, rows, header="emotion,pixels,Usage"):
    text = "\n".join([header, *rows]) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


# ---- image files -------------------------------------------------------------------------

@pytest.mark.parametrize("name,data,problem", [
    ("junk.png", b"this is not an image at all", "not a readable image"),
    ("empty.png", b"", "empty file"),
    ("cut.jpg", None, "truncated JPEG"),
    ("cut.png", None, "truncated PNG"),
])
def test_unreadable_images(tmp_path, name, data, problem):
    root = _folder(tmp_path)
    bad = root / "happy" / name
    if data is None:  # a real image cut in half
        ok, buf = cv2.imencode(bad.suffix, _face())
        data = buf.tobytes()[: len(buf) // 2]
    bad.write_bytes(data)
    with pytest.raises(DataError, match=problem) as err:
        load_dataset(root)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    ds = load_dataset(root, skip_bad=True)
    assert len(ds) == 6
    assert [(b.source, problem in b.problem) for b in ds.skipped] == [(str(bad), True)]


def test_unknown_class_folder(tmp_path):
    root = _folder(tmp_path)
    _png(root / "confused" / "x.png")
    with pytest.raises(DataError, match=r"unknown emotion label 'confused' in class folder .*confused"):
        load_dataset(root)
    ds = load_dataset(root, skip_bad=True)
    assert len(ds) == 6  # never relabelled, only skipped and listed
    assert len(ds.skipped) == 1 and "confused" in ds.skipped[0].source


def test_empty_and_missing_paths(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty folder"):
        load_dataset(tmp_path / "empty")
    with pytest.raises(DataError, match="no such file or folder"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "classes" / "happy").mkdir(parents=True)
    with pytest.raises(DataError, match="no image files"):
        load_dataset(tmp_path / "classes")
    _png(tmp_path / "loose" / "a.png")
    with pytest.raises(DataError, match="1 images directly"):
        load_dataset(tmp_path / "loose")


def test_mixed_sizes_need_a_size(tmp_path):
    root = _folder(tmp_path)
    _png(root / "angry" / "big.png", _face(64))
    with pytest.raises(DataError, match="64x64 but .* is 48x48; pass a size"):
        load_dataset(root)
    assert load_dataset(root, size=32).images.shape == (7, 32, 32)


def test_stray_files_are_listed_not_fatal(tmp_path):
    root = _folder(tmp_path)
    (root / "happy" / "notes.txt").write_text("hello")
    _png(root / "loose.png")
    ds = load_dataset(root)
    assert len(ds) == 6
    assert sorted(b.problem for b in ds.skipped) == ["ignored: not an image file", "ignored: not inside a class folder"]


def test_ckplus_name_that_does_not_parse(tmp_path):
    root = tmp_path / "ck"
    _png(root / "anger" / "S010_004_00000017.png")
    _png(root / "anger" / "S010_004_00000018.png")
    _png(root / "fear" / "S011_001_00000002.png")
    ds = load_dataset(root)
    assert ds.info["kind"] == "ckplus48" and ds.subjects.tolist() == ["S010", "S010", "S011"]
    _png(root / "fear" / "subject11.png")
    # detection now says image folder (not all names parse); forcing the kind names the file
    with pytest.raises(DataError, match=r"subject11.png: file name does not match"):
        load_dataset(root, kind="ckplus48")
    assert len(load_dataset(root, kind="ckplus48", skip_bad=True)) == 3


def test_jaffe_without_a_face(tmp_path, face_weights):
    root = tmp_path / "jaffe"
    root.mkdir()
    blank = np.full((256, 256), 90, np.uint8)
    cv2.imwrite(str(root / "KA.AN1.39.tiff"), blank)
    with pytest.raises(DataError, match="KA.AN1.39.tiff: no face detected"):
        load_dataset(root)
    ds = load_dataset(root, skip_bad=True, fallback="whole")
    assert ds.images.shape == (1, 128, 128) and ds.skipped == []
    with pytest.raises(DataError, match="none of|could be read"):
        load_dataset(root, skip_bad=True)
    cv2.imwrite(str(root / "KA.XX1.40.tiff"), blank)
    with pytest.raises(DataError, match=r"unknown emotion label 'XX' in file name"):
        load_dataset(root, crop=None)


# ---- csv files ----------------------------------------------------------------------------

def test_fer2013_csv_problems(tmp_path):
    good = [_row(i % 7, usage=u) for i, u in enumerate(["Training"] * 4 + ["PublicTest", "PrivateTest"])]
    ok = read_fer2013(_csv(tmp_path / "ok.csv.gz", good))
    assert len(ok) == 6 and ok.counts()["Training"]["angry"] == 1

    with pytest.raises(DataError, match=r"header is \['emotion', 'pixels'\].*missing \['Usage'\]"):
        read_fer2013(_csv(tmp_path / "cols.csv", ["0,1 2"], header="emotion,pixels"))
    # Kaggle's icml_face_data.csv: same columns, other order, spaces in the header
    reordered = [f"{r.split(',')[0]},{r.split(',')[2]},{r.split(',')[1]}" for r in good]
    other = read_fer2013(_csv(tmp_path / "icml_face_data.csv", reordered, header="emotion, Usage, pixels"))
    np.testing.assert_array_equal(other.images, ok.images)
    assert (other.splits == ok.splits).all() and (other.labels == ok.labels).all()
    cases = {
        "short.csv": (_row(n=2303), "row 1 (line 3): pixels has 2303 values, expected 2304"),
        "extra.csv": (_row() + ",x", "row 1 (line 3): has 4 columns, expected 3"),
        "label.csv": (_row(label=9), "row 1 (line 3): emotion '9' is not a label 0..6"),
        "usage.csv": (_row(usage="Test"), "row 1 (line 3): Usage 'Test'"),
        "value.csv": (_row(pixels=" ".join(["300"] * 2304)), "row 1: pixels has a value outside 0..255"),
        # int16/int32 parsing would wrap these into plausible pixels (65636 -> 100)
        "wrap.csv": (_row(pixels=" ".join(["65636"] * 2303 + ["99999999999999999999"])),
                     "row 1: pixels has a value outside 0..255"),
        "text.csv": (_row(pixels=" ".join(["a"] * 2304)), "row 1: pixels contains a value that is not an integer"),
    }
    for name, (bad_row, message) in cases.items():
        path = _csv(tmp_path / name, [good[0], bad_row, *good[1:]])
        with pytest.raises(DataError, match=re_escape(f"{name}:{message}")):
            read_fer2013(path)
        ds = read_fer2013(path, skip_bad=True)
        assert len(ds) == 6 and len(ds.skipped) == 1, name
        assert ds.sources[1].endswith("row 2")  # rows keep their original numbers


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


def test_truncated_gzip(tmp_path):
    path = _csv(tmp_path / "fer2013.csv.gz", [_row() for _ in range(20)])
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(DataError, match="fer2013.csv.gz: cannot read"):
        load_dataset(path)


def test_ferplus_bad_vote_row(tmp_path):
    fer = _csv(tmp_path / "fer2013.csv", [_row() for _ in range(3)])
    votes = ["Training,fer0.png,10,0,0,0,0,0,0,0,0,0", "Training,fer1.png,x,0,0,0,0,0,0,0,0,0",
             "Training,fer2.png,0,9,1,0,0,0,0,0,0,0"]
    plus = _csv(tmp_path / "fer2013new.csv", votes, header=",".join(HEADER))
    with pytest.raises(DataError, match=r"fer2013new.csv:row 1 \(line 3\): vote counts"):
        load_dataset(plus)  # finds fer2013.csv beside it
    ds = read_ferplus(fer, plus, skip_bad=True)
    assert len(ds) == 2 and [b.source for b in ds.skipped] == ["fer2013new.csv:row 1 (line 3)"]


def test_kind_and_options_are_checked(tmp_path):
    root = _folder(tmp_path)
    with pytest.raises(ConfigError, match="unknown dataset kind 'faces'"):
        load_dataset(root, kind="faces")
    with pytest.raises(ConfigError, match=r"does not take option\(s\) \['mode'\]"):
        load_dataset(root, mode="soft")
    odd = _csv(tmp_path / "odd.csv", ["1,2,3"], header="a,b,c")
    with pytest.raises(DataError, match="neither FER2013"):
        load_dataset(odd)
