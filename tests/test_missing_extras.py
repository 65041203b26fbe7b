"""A runtime-only install (`pip install fer-edge`, no extras): commands that need an extra stop
before any work with one line naming the missing modules and the pip command, never a traceback.

The missing packages are simulated by setting sys.modules[name] = None, which makes both
`import name` and importlib.util.find_spec(name) behave as if the package were not installed.
"""

from __future__ import annotations

import importlib
import sys

import click
import pytest
from click.testing import CliRunner

from fer_edge.errors import MissingExtraError, missing_extra_error, require_extras

# the module (fer_edge.cli's `main` attribute is the click group)
cli_main = importlib.import_module("fer_edge.cli.main")


def _uninstall(monkeypatch, *modules):
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def _run(*args):
    result = CliRunner().invoke(cli_main.main, list(map(str, args)))
    return result, result.output + (result.stderr if result.stderr_bytes is not None else "")


def test_require_extras_names_every_missing_module_and_one_pip_command(monkeypatch):
    _uninstall(monkeypatch, "keras", "tf2onnx")
    with pytest.raises(MissingExtraError) as err:
        require_extras(["train", "onnx", "", "onnx"], "fer-edge convert --format onnx")
    msg = str(err.value)
    assert "keras" in msg and "tf2onnx" in msg and "tensorflow" not in msg
    assert "pip install 'fer-edge[train,onnx]'" in msg
    require_extras(["openvino"], "anything")  # installed here: no error


def test_missing_extra_error_only_for_optional_modules():
    err = missing_extra_error(ModuleNotFoundError("No module named 'nncf.quantization'", name="nncf.quantization"))
    assert isinstance(err, MissingExtraError) and "fer-edge[openvino]" in str(err)
    assert missing_extra_error(ModuleNotFoundError("No module named 'fer_edge.nope'", name="fer_edge.nope")) is None


def test_convert_without_extras_stops_before_any_work(monkeypatch, tmp_path):
    _uninstall(monkeypatch, "keras", "tf2onnx", "onnxruntime")
    out = tmp_path / "export"
    result, text = _run("convert", tmp_path / "run-that-is-never-read", "--format", "onnx", "--int8", "--out", out)
    assert result.exit_code == 2, text
    assert "keras" in text and "onnxruntime" in text and "pip install 'fer-edge[train,onnx]'" in text
    assert "Traceback" not in text and not out.exists()


def test_train_without_extras_leaves_no_run_folder(monkeypatch, tmp_path, fer2013_csv):
    _uninstall(monkeypatch, "keras")
    out = tmp_path / "run"
    result, text = _run("train", "--recipe", "edge_mobilenetv2_64", "--data", fer2013_csv, "--out", out)
    assert result.exit_code == 2, text
    assert "fer-edge train needs keras" in text and "pip install 'fer-edge[train]'" in text
    assert not out.exists()


def test_train_without_pydantic_names_the_whole_extra(monkeypatch, tmp_path):
    """The recipe schema needs pydantic: the check of the whole extra comes before the recipe is read."""
    _uninstall(monkeypatch, "pydantic", "keras")
    monkeypatch.delitem(sys.modules, "fer_edge.training.recipe_schema", raising=False)  # re-imported: meets pydantic
    out = tmp_path / "run"
    result, text = _run("train", "--recipe", "edge_plain44", "--data", tmp_path / "x", "--out", out)
    assert result.exit_code == 2, text
    assert "fer-edge train needs keras, pydantic, which are not installed" in text, text
    assert "pip install 'fer-edge[train]'" in text and "Traceback" not in text and not out.exists()


def test_cli_turns_a_late_optional_import_into_one_line(monkeypatch):
    @click.command()
    def boom():
        import matplotlib.pyplot  # noqa: F401 - simulated as not installed

    _uninstall(monkeypatch, "matplotlib", "matplotlib.pyplot")
    original = cli_main.LazyGroup._load
    monkeypatch.setattr(cli_main.LazyGroup, "_load", staticmethod(lambda name: boom if name == "boom" else original(name)))
    result, text = _run("boom")
    assert result.exit_code == 2 and "pip install 'fer-edge[train]'" in text and "Traceback" not in text


def test_cli_keeps_the_traceback_of_a_real_bug(monkeypatch):
    @click.command()
    def broken():
        import fer_edge.no_such_module  # noqa: F401 - a bug, not a missing extra

    original = cli_main.LazyGroup._load
    monkeypatch.setattr(cli_main.LazyGroup, "_load", staticmethod(lambda name: broken if name == "broken" else original(name)))
    result, _ = _run("broken")
    assert isinstance(result.exception, ModuleNotFoundError)
