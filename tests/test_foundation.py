"""Core contracts: bundle manifests, atomic writes, labels, format/precision tables, CLI errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer_edge import atomic, bundle, formats, labels, quantization
from fer_edge.errors import ConfigError, DataError, FerEdgeError, MissingExtraError, ModelError, require


def _make_bundle(tmp_path, name="b"):
    folder = tmp_path / name
    with atomic.atomic_dir(folder) as tmp:
        (tmp / "model.tflite").write_bytes(b"not really a model, but hashed")
        manifest = bundle.Manifest(
            name="test",
            format="tflite",
            precision="int8",
            model_file="model.tflite",
            labels=list(labels.FER7),
            input=bundle.InputSpec(size=(48, 48), color="gray"),
        )
        bundle.write_bundle(tmp, manifest, ["model.tflite"])
    return folder


def test_bundle_roundtrip_and_hash(tmp_path):
    folder = _make_bundle(tmp_path)
    b = bundle.read_bundle(folder)
    assert b.manifest.labels == list(labels.FER7)
    assert b.manifest.input.shape == (48, 48, 1)
    assert b.manifest.files["model.tflite"] == bundle.sha256_file(folder / "model.tflite")
    assert b.manifest.versions["fer_edge"]
    # reading via the manifest path works too
    assert bundle.read_bundle(folder / "manifest.json").folder == folder


def test_bundle_refuses_changed_model(tmp_path):
    folder = _make_bundle(tmp_path)
    (folder / "model.tflite").write_bytes(b"tampered")
    with pytest.raises(ModelError, match="sha256"):
        bundle.read_bundle(folder)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("labels"), "missing fields"),
        (lambda d: d.update(schema="other"), "schema"),
        (lambda d: d["input"].update(color="cmyk"), "color"),
    ],
)
def test_bundle_rejects_bad_manifest(tmp_path, mutate, message):
    folder = _make_bundle(tmp_path)
    data = json.loads((folder / "manifest.json").read_text())
    mutate(data)
    (folder / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match=message):
        bundle.read_bundle(folder)


def test_bundle_not_a_bundle(tmp_path):
    with pytest.raises(ModelError, match="no such bundle"):
        bundle.read_bundle(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="not a fer-edge bundle"):
        bundle.read_bundle(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        bundle.read_bundle(tmp_path / "junk")


def test_input_spec_preprocess_gray_and_rgb():
    gray = np.arange(96 * 96, dtype=np.uint32).reshape(96, 96).astype(np.uint8)
    spec = bundle.InputSpec(size=(48, 48), color="gray")
    out = spec.preprocess(gray[None])
    assert out.shape == (1, 48, 48, 1) and out.dtype == np.float32
    rgb_spec = bundle.InputSpec(size=(64, 64), color="rgb", scale=2 / 255, offset=(1.0,))
    out = rgb_spec.preprocess_one(gray)
    assert out.shape == (1, 64, 64, 3)
    assert out.min() >= -1.0 and out.max() <= 1.0
    # gray expanded to rgb has equal channels
    assert np.allclose(out[..., 0], out[..., 2])
    with pytest.raises(ModelError, match="uint8"):
        spec.preprocess(gray.astype(np.float32)[None])


def test_input_spec_bgr_swaps_channels():
    img = np.zeros((1, 8, 8, 3), np.uint8)
    img[..., 0] = 200  # red in RGB
    out = bundle.InputSpec(size=(8, 8), color="bgr").preprocess(img)
    assert out[0, 0, 0, 2] == 200 and out[0, 0, 0, 0] == 0


def test_atomic_dir_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic.atomic_dir(target) as tmp:
            (tmp / "half.bin").write_bytes(b"x")
            raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_refuses_existing_unless_overwrite(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(FerEdgeError, match="already exists"):
        with atomic.atomic_dir(target):
            pass
    with atomic.atomic_dir(target, overwrite=True) as tmp:
        (tmp / "new").write_text("1")
    assert (target / "new").read_text() == "1"


def test_atomic_file_keeps_old_content_on_failure(tmp_path):
    target = tmp_path / "x.json"
    atomic.write_json(target, {"a": 1})
    with pytest.raises(ValueError):
        with atomic.atomic_file(target) as fh:
            fh.write("partial")
            raise ValueError
    assert json.loads(target.read_text()) == {"a": 1}


def test_labels_map_between_datasets():
    assert labels.canonical("Anger") == "angry"
    assert labels.canonical("sadness") == "sad"
    assert labels.canonical("happiness") == "happy"
    assert labels.canonical("contempt") == "contempt"
    with pytest.raises(DataError, match="unknown emotion label 'bored'.*in x/y"):
        labels.canonical("bored", where="x/y")
    assert labels.label_set("fer4") == ("happy", "sad", "neutral", "surprise")


def test_format_and_precision_tables():
    assert formats.get_format("onnx").backend == "onnxruntime"
    for fmt in formats.FORMATS.values():
        for precision in fmt.precisions:
            assert precision in quantization.QUANT_CONFIGS
    formats.check_precision("tflite", "dynamic")
    with pytest.raises(ConfigError, match="does not support precision 'dynamic'"):
        formats.check_precision("openvino", "dynamic")
    with pytest.raises(ConfigError, match="unknown format"):
        formats.get_format("coreml")
    assert {q.flag for q in quantization.QUANT_CONFIGS.values()} == {"--fp32", "--fp16", "--dynamic", "--int8"}


def test_require_names_the_extra():
    with pytest.raises(MissingExtraError, match=r"pip install 'fer-edge\[train\]'"):
        require("surely_not_a_module_xyz", "train")


def test_cli_unknown_command_fails():
    from click.testing import CliRunner

    from fer_edge.cli import main

    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code != 0
    assert "No such command" in result.output


def test_atomic_outputs_have_normal_permissions(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        atomic.write_json(tmp_path / "m.json", {})
        with atomic.atomic_dir(tmp_path / "d"):
            pass
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755


def test_formats_command_lists_the_registries_the_cli_reads():
    import json

    from click.testing import CliRunner

    from fer_edge.bench.baselines import BASELINES
    from fer_edge.bundle import TTA_MODES
    from fer_edge.cli import main
    from fer_edge.cli.convert_cmd import FORMAT_CHOICES
    from fer_edge.formats import EXPORT_FORMATS, FORMATS
    from fer_edge.runtime.backends import BACKENDS

    res = CliRunner().invoke(main, ["formats", "--json"])
    assert res.exit_code == 0, res.output
    reg = json.loads(res.output)
    assert list(reg["formats"]) == list(FORMATS) and list(reg["backends"]) == list(BACKENDS)
    assert reg["tta"] == list(TTA_MODES) and reg["baselines"] == list(BASELINES)
    assert FORMAT_CHOICES == [*EXPORT_FORMATS, "all"]
    bench = CliRunner().invoke(main, ["bench", "--help"]).output
    assert "[cpu|gpu|rpi]" in bench and "rpi4|rpi5" in bench
    text = CliRunner().invoke(main, ["formats"]).output
    assert all(name in text for name in FORMATS) and "--int8" in text


def test_provenance_names_data_under_the_data_root_portably(monkeypatch, tmp_path):
    from fer_edge import paths
    from fer_edge.data.provenance import resolve_path

    root = tmp_path / "data"
    (root / "fer2013").mkdir(parents=True)
    (root / "fer2013" / "fer2013.csv").write_text("emotion,pixels,Usage\n")
    outside = tmp_path / "mine.csv"
    outside.write_text("emotion,pixels,Usage\n")
    monkeypatch.setenv(paths.ENV_DATA, str(root))
    recorded = paths.portable_data_path(root / "fer2013" / "fer2013.csv")
    assert recorded == "$FER_EDGE_DATA/fer2013/fer2013.csv"
    assert paths.portable_data_path(root) == "$FER_EDGE_DATA"
    assert paths.portable_data_path(outside) == str(outside.resolve())  # outside the root: stays absolute
    (root / "linked.csv").symlink_to(outside)  # a data root of links: the link's place is what is recorded
    assert paths.portable_data_path(root / "linked.csv") == "$FER_EDGE_DATA/linked.csv"
    (root / "v1.").mkdir()
    assert paths.portable_data_path(root / "v1.") == "$FER_EDGE_DATA/v1."
    moved = tmp_path / "moved"
    (root).rename(moved)  # the same data on another machine, under another root
    monkeypatch.setenv(paths.ENV_DATA, str(moved))
    assert resolve_path(recorded, None) == moved / "fer2013" / "fer2013.csv"
    monkeypatch.delenv(paths.ENV_DATA)
    monkeypatch.setenv(paths.ENV_SHARED, "")  # no root at all: the error says what to set
    monkeypatch.setattr(paths, "shared_root", lambda: None)
    with pytest.raises(DataError, match=r"\$FER_EDGE_DATA/fer2013/fer2013.csv: no data root here; set FER_EDGE_DATA"):
        resolve_path(recorded, None)
