"""Image-folder, CK+48 and JAFFE readers on the real data."""

from __future__ import annotations

import numpy as np
import pytest

from fer_edge.data import detect_kind, load_dataset
from fer_edge.data.ckplus import read_ckplus
from fer_edge.data.imagefolder import read_imagefolder
from fer_edge.data.jaffe import read_jaffe
from fer_edge.labels import FER7

PUBLIC_TEST = dict(zip(FER7, (467, 56, 496, 895, 653, 415, 607)))
PRIVATE_TEST = dict(zip(FER7, (491, 55, 528, 879, 594, 416, 626)))

CKPLUS = {"angry": 135, "contempt": 54, "disgust": 177, "fear": 75, "happy": 207, "sad": 84, "surprise": 249}


@pytest.fixture(scope="module")
def ckplus(ckplus_dir):
    return read_ckplus(ckplus_dir)


@pytest.fixture(scope="module")
def jaffe_faces(jaffe_dir, face_weights):
    return read_jaffe(jaffe_dir)  # YuNet face crops, 128x128


def test_fer2013_test_images_take_split_from_file_prefix(fer2013_test_images):
    assert detect_kind(fer2013_test_images) == "imagefolder"
    ds = read_imagefolder(fer2013_test_images)
    assert len(ds) == 7178 and ds.images.shape[1:] == (48, 48)
    assert ds.label_names == FER7
    assert ds.roles == {"test": "PrivateTest", "val": "PublicTest"}
    counts = ds.counts()
    assert counts["PublicTest"] == PUBLIC_TEST
    assert counts["PrivateTest"] == PRIVATE_TEST


def test_ckplus48_counts_subjects_sequences(ckplus, ckplus_dir):
    assert detect_kind(ckplus_dir) == "ckplus48"
    assert len(ckplus) == 981
    counts = ckplus.counts()["all"]
    assert {k: v for k, v in counts.items() if v} == CKPLUS
    assert counts["neutral"] == 0  # CK+48 has no neutral class; labels stay in canonical order
    assert len(set(ckplus.subjects.tolist())) == 118
    assert ckplus.images.shape == (981, 48, 48) and ckplus.images.dtype == np.uint8
    # subject and sequence come from the file name
    name = ckplus.sources[0].rsplit("/", 1)[1]
    assert ckplus.subjects[0] == name[:4] and ckplus.sequences[0] == name[:8]
    seq_sizes = np.unique(ckplus.sequences, return_counts=True)[1]
    assert len(seq_sizes) == 327 and seq_sizes.max() <= 6  # measured: mostly 3 frames per sequence


def test_ckplus_labels_map_to_fer7_without_contempt(ckplus):
    fer7 = ckplus.with_labels(FER7)
    assert len(fer7) == 981 - 54 and fer7.label_names == FER7


def test_jaffe_face_crops(jaffe_faces, jaffe_dir):
    ds = jaffe_faces
    assert detect_kind(jaffe_dir) == "jaffe"
    assert len(ds) == 213 and ds.images.shape == (213, 128, 128) and ds.images.dtype == np.uint8
    assert len(set(ds.subjects.tolist())) == 10
    assert ds.counts()["all"] == dict(zip(FER7, (30, 29, 32, 31, 31, 30, 30)))
    assert ds.skipped == []  # YuNet finds a face in every JAFFE image
    assert ds.sources[0].endswith("KA.AN1.39.tiff") and ds.subjects[0] == "KA"
    assert FER7[ds.labels[0]] == "angry"
    # a crop is a face, not the 256x256 frame squashed: it has less flat background
    assert ds.images.std() > 30


def test_jaffe_whole_image_and_palette_files(jaffe_dir):
    ds = load_dataset(jaffe_dir, crop=None)
    assert ds.images.shape == (213, 256, 256)
    # KA.AN1.39 is a palette TIFF: read as luma, equal to PIL's convert("L")
    pil = pytest.importorskip("PIL.Image")
    with pil.open(jaffe_dir / "KA.AN1.39.tiff") as im:
        assert im.mode == "P"
        np.testing.assert_array_equal(ds.images[0], np.asarray(im.convert("L")))


def test_split_level_image_folder(tmp_path, ckplus):
    import cv2

    for split, cls, idx in [("train", "anger", 0), ("train", "happiness", 1), ("test", "angry", 2), ("test", "Happy", 3)]:
        (tmp_path / split / cls).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / split / cls / f"{idx}.png"), ckplus.images[idx])
    ds = load_dataset(tmp_path)
    assert ds.info["kind"] == "imagefolder"
    assert ds.roles == {"test": "test", "train": "train"}
    assert ds.counts()["train"]["angry"] == 1 and ds.counts()["test"]["happy"] == 1
    np.testing.assert_array_equal(ds.images[ds.sources == str(tmp_path / "test" / "angry" / "2.png")][0], ckplus.images[2])


def test_labels_option_reindexes_any_kind(ckplus_dir, jaffe_dir):
    from fer_edge.labels import LABEL_SETS

    ck = load_dataset(ckplus_dir, labels="fer7")
    assert ck.label_names == FER7 and len(ck) == 981 - 54  # contempt dropped
    four = load_dataset(ckplus_dir, labels="fer4")
    assert four.label_names == ("happy", "sad", "neutral", "surprise")
    assert four.counts()["all"] == {"happy": 207, "sad": 84, "neutral": 0, "surprise": 249}
    jaffe8 = load_dataset(jaffe_dir, crop=None, size=32, labels="ferplus8")
    assert jaffe8.label_names == LABEL_SETS["ferplus8"] and len(jaffe8) == 213
    assert jaffe8.counts()["all"]["contempt"] == 0
