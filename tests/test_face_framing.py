"""The framing of pre-cropped datasets, measured with the real detector on the real images."""

from __future__ import annotations

import cv2
import pytest

from fer_edge.face import PRECROPPED_FRAMING, create_detector, crop_face, largest_face, measure_framing


@pytest.fixture(scope="module")
def yunet(face_weights):
    return create_detector("yunet")


def _gray(paths):
    for p in paths:
        yield cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)


def test_fer2013_is_framed_edge_to_edge(yunet, fer2013_test_images):
    files = sorted(fer2013_test_images.glob("*/*.jpg"))[::25]  # ~290 images, all classes
    fr = measure_framing(_gray(files), yunet)
    assert fr.found >= 0.97 * fr.total
    assert abs(fr.margin) < 0.05 and fr.margin_iqr[1] - fr.margin_iqr[0] < 0.1
    assert fr.center == pytest.approx((0.5, 0.51), abs=0.03)
    assert fr.spec() == PRECROPPED_FRAMING["fer2013"]


def test_ckplus48_is_framed_edge_to_edge(yunet, ckplus_dir):
    fr = measure_framing(_gray(sorted(ckplus_dir.glob("*/*.png"))[::10]), yunet)
    assert fr.found == fr.total and abs(fr.margin) < 0.05
    assert fr.spec() == PRECROPPED_FRAMING["ckplus48"]


def test_live_crop_with_that_spec_reproduces_the_framing(yunet, jaffe_dir):
    # A JAFFE photo cropped live with the FER2013 spec is framed like a FER2013 image:
    # re-measuring the crop gives margin ~0 again.
    img = cv2.imread(str(jaffe_dir / "KA.HA1.29.tiff"), cv2.IMREAD_GRAYSCALE)
    crop = crop_face(img, largest_face(yunet.detect(img)), PRECROPPED_FRAMING["fer2013"])
    fr = measure_framing([cv2.resize(crop, (48, 48), interpolation=cv2.INTER_AREA)], yunet)
    assert fr.found == 1 and abs(fr.margin) < 0.06


def test_dataset_framing_follows_the_dataset():
    from fer_edge.bundle import FaceSpec
    from fer_edge.face import dataset_framing

    assert dataset_framing("fer2013").margin == 0.0
    assert dataset_framing("ckplus48").margin == 0.0
    # a reader that cropped faces itself records its spec, which wins
    assert dataset_framing("jaffe", {"face": {"margin": 0.15, "align": True, "square": True}}) == FaceSpec(0.15, True, True)
    assert dataset_framing("imagefolder") == FaceSpec()


def test_jaffe_reader_records_its_crop(jaffe_dir):
    from fer_edge.data import load_dataset
    from fer_edge.face import dataset_framing

    ds = load_dataset(jaffe_dir)
    spec = dataset_framing("jaffe", ds.info)
    assert spec.margin == ds.info["margin"] and spec.align == ds.info["align"]
