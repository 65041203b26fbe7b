"""fer_edge.face on the real JAFFE / CK+48 images: detection, crops, alignment, errors."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.bundle import FaceSpec
from fer_edge.errors import ConfigError, DataError, ModelError
from fer_edge.face import Face, FaceDetector, create_detector, crop_face, eye_angle, largest_face, rotate_points


def _gray(path: Path) -> np.ndarray:
    # JAFFE has palette-mode TIFFs; IMREAD_GRAYSCALE converts them to L.
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert img is not None, path
    return img


@pytest.fixture(scope="module")
def yunet(face_weights) -> FaceDetector:
    return create_detector("yunet")


@pytest.fixture(scope="module")
def jaffe_files(jaffe_dir) -> list[Path]:
    files = sorted(jaffe_dir.glob("*.tiff"))
    assert len(files) == 213
    return files


def test_yunet_finds_one_face_in_every_jaffe_image(yunet, jaffe_files):
    for path in jaffe_files:
        img = _gray(path)
        faces = yunet.detect(img)
        assert len(faces) == 1, f"{path.name}: {len(faces)} faces"
        f = faces[0]
        x, y, w, h = f.box
        # JAFFE: one frontal face, roughly centred, filling about half of the 256x256 frame.
        assert 0.6 < f.score <= 1.0
        assert 80 < w < 200 and 100 < h < 220, (path.name, f.box)
        assert 60 < x + w / 2 < 196 and 60 < y + h / 2 < 196, (path.name, f.box)
        lm = f.landmarks
        assert lm.shape == (5, 2)
        # YuNet order: right eye is on the image left, eyes above the nose, nose above the mouth.
        assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]
        assert max(lm[0, 1], lm[1, 1]) < lm[2, 1] < min(lm[3, 1], lm[4, 1])


def test_yunet_finds_faces_in_ckplus48_crops(yunet, ckplus_dir):
    files = sorted(ckplus_dir.glob("*/*.png"))[::7]  # every 7th: all classes, ~140 images
    assert len(files) > 100
    found = sum(1 for p in files if yunet.detect(_gray(p)))
    assert found == len(files)


def test_rgb_and_gray_give_the_same_face(yunet, jaffe_files):
    gray = _gray(jaffe_files[5])
    rgb = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    a, b = yunet.detect(gray)[0], yunet.detect(rgb)[0]
    assert np.allclose(a.box, b.box, atol=0.5)
    assert yunet.detect(rgb[:, :, :1])[0].box == pytest.approx(a.box, abs=0.5)


def test_no_face_in_blank_and_noise_images(yunet):
    rng = np.random.default_rng(0)
    assert yunet.detect(np.full((240, 320), 128, np.uint8)) == []
    assert yunet.detect(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)) == []


def test_detector_follows_frame_size_changes(yunet, jaffe_files):
    img = _gray(jaffe_files[0])
    small = yunet.detect(img)[0]
    big = yunet.detect(cv2.resize(img, (512, 512)))[0]
    assert big.box == pytest.approx(tuple(2 * v for v in small.box), rel=0.1, abs=4)
    assert yunet.detect(img)[0].box == pytest.approx(small.box, abs=1e-3)


def test_haar_fallback_finds_jaffe_faces(face_weights, jaffe_files):
    haar = create_detector("haar")
    for path in jaffe_files[::20]:
        faces = haar.detect(_gray(path))
        assert faces, path.name
        assert faces[0].landmarks is None
        x, y, w, h = largest_face(faces).box
        assert 60 < x + w / 2 < 196


def test_crop_is_square_with_margin_and_keeps_colour(yunet, jaffe_files):
    gray = _gray(jaffe_files[10])
    face = yunet.detect(gray)[0]
    side = max(face.box[2], face.box[3])
    crop = crop_face(gray, face, FaceSpec(margin=0.2))
    assert crop.dtype == np.uint8 and crop.ndim == 2
    assert crop.shape[0] == crop.shape[1] == pytest.approx(side * 1.4, abs=1)
    rgb = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    crop_rgb = crop_face(rgb, face, FaceSpec(margin=0.2))
    assert crop_rgb.shape == crop.shape + (3,)
    assert np.array_equal(crop_rgb[..., 0], crop)
    # Margin 0 and a non-square spec reproduce the detector box.
    tight = crop_face(gray, face, FaceSpec(margin=0.0, square=False))
    assert tight.shape == (round(face.box[3]), round(face.box[2]))
    # The crop really is the face: YuNet finds it again, filling the crop.
    again = yunet.detect(crop)
    assert again and again[0].box[2] > 0.5 * crop.shape[1]


def test_crop_pads_with_black_outside_the_image():
    img = np.full((100, 100), 200, np.uint8)
    face = Face(box=(-10.0, 80.0, 40.0, 40.0), score=1.0)
    crop = crop_face(img, face, FaceSpec(margin=0.0))
    assert crop.shape == (40, 40)
    assert (crop[:, :10] == 0).all() and (crop[20:, :] == 0).all()
    assert (crop[:20, 10:] == 200).all()
    nowhere = crop_face(img, Face(box=(500.0, 500.0, 20.0, 20.0), score=1.0), FaceSpec(margin=0.0))
    assert nowhere.shape == (20, 20) and not nowhere.any()


@pytest.mark.parametrize("tilt", [-15.0, 12.0])
def test_alignment_levels_the_eyes(yunet, jaffe_files, tilt):
    img = _gray(jaffe_files[0])
    m = cv2.getRotationMatrix2D((128.0, 128.0), tilt, 1.0)
    tilted = cv2.warpAffine(img, m, (256, 256))
    face = yunet.detect(tilted)[0]
    assert abs(eye_angle(face.landmarks)) > 7  # the tilt is visible to the detector
    aligned_spec = FaceSpec(margin=0.2, align=True)
    # Geometrically: the detected eyes end up on one row of the aligned crop.
    eyes = rotate_points(face.landmarks[:2], face, aligned_spec)
    assert abs(eyes[0, 1] - eyes[1, 1]) < 1e-6
    # And visibly: the detector sees level eyes in the aligned crop, tilted ones in the plain crop.
    aligned = crop_face(tilted, face, aligned_spec)
    plain = crop_face(tilted, face, FaceSpec(margin=0.2, align=False))
    assert aligned.shape == plain.shape
    a_aligned = eye_angle(largest_face(yunet.detect(aligned)).landmarks)
    a_plain = eye_angle(largest_face(yunet.detect(plain)).landmarks)
    assert abs(a_aligned) < 5 and abs(a_plain) > 7
    assert math.copysign(1, a_plain) == math.copysign(1, eye_angle(face.landmarks))


def test_align_without_landmarks_is_a_plain_crop():
    img = np.arange(100 * 100, dtype=np.uint32).reshape(100, 100).astype(np.uint8)
    face = Face(box=(30.0, 30.0, 40.0, 40.0), score=1.0, landmarks=None)
    assert np.array_equal(crop_face(img, face, FaceSpec(align=True)), crop_face(img, face, FaceSpec(align=False)))


def test_largest_face():
    assert largest_face([]) is None
    small, big = Face((0, 0, 10, 10), 0.9), Face((50, 50, 30, 20), 0.7)
    assert largest_face([small, big]) is big


def test_detector_errors(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="unknown face detector"):
        create_detector("mtcnn")
    with pytest.raises(ConfigError, match="threshold"):
        create_detector("yunet", score_threshold=1.5)
    with pytest.raises(ModelError, match="not found"):
        create_detector("yunet", model_path=tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="YuNet"):
        create_detector("yunet", model_path=bad)
    monkeypatch.setenv("FER_EDGE_WEIGHTS", str(tmp_path))
    with pytest.raises(DataError, match="face_detection_yunet_2023mar.onnx"):
        create_detector("yunet")


def test_detect_rejects_non_uint8(face_weights, yunet):
    with pytest.raises(ValueError, match="uint8"):
        yunet.detect(np.zeros((10, 10), np.float32))


def test_haar_on_an_opencv_without_cascades(face_weights, monkeypatch):
    monkeypatch.delattr(cv2, "CascadeClassifier")
    with pytest.raises(ModelError, match="OpenCV 5"):
        create_detector("haar")
