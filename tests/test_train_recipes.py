"""`fer-edge train`: every recipe trains a short run on a few hundred real images and
leaves a complete run folder (bundle manifest, metrics, history, plots, report); resume
after kill -9 continues from the saved epoch; `fer-edge eval` reproduces the numbers.

The real images come from ../shared (skipped when absent): a small FER2013 csv is cut
from the real one, JAFFE is small already.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import pytest

from fer_edge.bundle import read_bundle
from fer_edge.errors import ConfigError, ModelError
from fer_edge.training.recipes import builtin_names, load_recipe, with_overrides

PAPER_RECIPES = ["jaffe_mobilenetv2", "efficientnet_fer2013", "resnet50_fer2013", "custom_cnn_fer4"]


def _quick(name: str, epochs: int = 1, **data_changes):
    r = with_overrides(load_recipe(name), epochs=epochs, batch_size=32)
    r.data["report"] = {"tsne_samples": 60}
    for key, value in data_changes.items():
        r.data["data"]["protocols"][r.data["data"]["protocol"]][key] = value
    return r


def _assert_run(folder: Path, epochs: int, labels: tuple[str, ...]) -> dict:
    bundle = read_bundle(folder)  # verifies the model file's sha256
    m = bundle.manifest
    assert (m.format, m.precision, m.model_file) == ("keras", "fp32", "model.keras")
    assert tuple(m.labels) == labels
    prov = m.provenance
    for key in ("recipe", "recipe_sha256", "recipe_data", "seed", "data", "backbone_weights"):
        assert key in prov, key
    for key in ("path", "kind", "labels", "train", "val", "test", "protocol"):
        assert key in prov["data"], key
    assert {"test_accuracy", "test_macro_f1"} <= set(m.metrics)
    metrics = json.loads((folder / "metrics.json").read_text())
    for split in ("val", "test"):
        for key in ("accuracy", "macro_f1", "per_class", "confusion_matrix", "n"):
            assert key in metrics[split], (split, key)
        assert set(metrics[split]["per_class"]) >= set(labels)
        assert 0.0 <= metrics[split]["accuracy"] <= 1.0
    hist = (folder / "history.csv").read_text().strip().splitlines()
    assert len(hist) == 1 + epochs and hist[0].startswith("epoch,")
    for plot in ("curves.png", "confusion_test.png", "tsne_test.png"):
        p = folder / "plots" / plot
        assert p.is_file() and p.stat().st_size > 1000, plot
        assert p.read_bytes()[:4] == b"\x89PNG"
    assert "accuracy" in (folder / "report.md").read_text()
    return metrics


def test_builtin_recipes_load():
    names = builtin_names()
    for name in PAPER_RECIPES + ["edge_mobilenetv2_64", "resnet50_fer2013_substitute", "efficientnet_b0_fer2013"]:
        assert name in names
    for name in names:
        r = load_recipe(name)
        assert r.name == name and len(r.sha256) == 64 and r.epochs >= 1


def test_recipe_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown recipe"):
        load_recipe("no_such_recipe")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\n[data\n")
    with pytest.raises(ConfigError, match="not a valid TOML"):
        load_recipe(bad)
    with pytest.raises(ConfigError, match="--epochs"):
        with_overrides(load_recipe("edge_mobilenetv2_64"), epochs=0)
    with pytest.raises(ConfigError, match="no protocol"):
        with_overrides(load_recipe("edge_mobilenetv2_64"), protocol="loso")


def test_recipe_extends_merges_tables_and_tracks_the_parent(tmp_path):
    base = tmp_path / "base.toml"
    base.write_bytes((resources.files("fer_edge.recipes") / "edge_plain44.toml").read_bytes())
    child = tmp_path / "child.toml"
    child.write_text('extends = "base.toml"\nname = "child"\n[train]\nclass_balance = "sqrt"\nepochs = 3\n')
    parent, r = load_recipe(base), load_recipe(child)
    assert r.name == "child" and r.data["extends"] == "base.toml"
    # the child's keys win, the rest of the table is the parent's
    assert r.data["train"]["class_balance"] == "sqrt" and r.epochs == 3
    assert r.data["train"]["optimizer"] == parent.data["train"]["optimizer"] == "sgd"
    assert r.data["augment"] == parent.data["augment"] and r.data["model"] == parent.data["model"]
    # editing the parent changes the child's digest, so --resume refuses the changed recipe
    before = r.sha256
    base.write_text(base.read_text().replace("lr = 0.05", "lr = 0.02"))
    assert load_recipe(child).sha256 != before
    assert load_recipe(child).data["train"]["lr"] == 0.02
    # a typo in the variant is caught like one in a full recipe; a cycle is named
    child.write_text('extends = "base.toml"\nname = "child"\n[train]\nepochz = 3\n')
    with pytest.raises(ConfigError, match="unknown key train.epochz"):
        load_recipe(child)
    child.write_text('extends = "child.toml"\nname = "child"\n')
    with pytest.raises(ConfigError, match="extends itself"):
        load_recipe(child)
    child.write_text('extends = "nowhere.toml"\nname = "child"\n')
    with pytest.raises(ConfigError, match="nowhere.toml: recipe file not found"):
        load_recipe(child)


def test_builtin_variant_is_its_parent_plus_its_changes():
    parent, sqrt = load_recipe("edge_plain44"), load_recipe("edge_plain44_sqrt")
    assert sqrt.data["train"]["class_balance"] == "sqrt" and parent.data["train"]["class_balance"] == "none"
    differing = {k for k in parent.data["train"] if parent.data["train"][k] != sqrt.data["train"][k]}
    assert differing == {"class_balance"}
    kd, kd_sqrt = load_recipe("edge_plain44_kd"), load_recipe("edge_plain44_kd_sqrt")  # a variant of a variant
    assert kd_sqrt.data["distill"] == kd.data["distill"] and kd_sqrt.data["train"] == sqrt.data["train"]


def test_a_folder_named_like_a_recipe_does_not_hide_the_builtin(tmp_path, monkeypatch):
    # Regression: a run folder ./edge_plain44 (--out edge_plain44) made `--recipe edge_plain44` and every
    # variant extending it fail with "edge_plain44: recipe file not found".
    (tmp_path / "edge_plain44").mkdir()
    monkeypatch.chdir(tmp_path)
    assert load_recipe("edge_plain44").source == "builtin:edge_plain44"
    assert load_recipe("edge_plain44_sqrt").data["train"]["class_balance"] == "sqrt"


def test_overrides_are_recorded():
    r = with_overrides(load_recipe("edge_mobilenetv2_64"), epochs=3, batch_size=16, lr=1e-4, seed=7)
    assert r.epochs == 3 and r.stages[0]["trainable"] == "head"
    assert r.data["train"]["batch_size"] == 16 and r.data["overrides"]["seed"] == 7
    assert all("lr" not in s for s in r.stages) and r.data["train"]["lr"] == 1e-4


def test_edge_recipe_run_and_eval(small_fer_csv, tmp_path):
    """Two stages (head, then all), a bundle that convert can re-test, and `fer-edge eval`."""
    import keras

    from fer_edge.data.dataset import select
    from fer_edge.data import provenance_dataset
    from fer_edge.training.evaluation_cmd import evaluate_model
    from fer_edge.training.trainer import train

    out = tmp_path / "edge"
    summary = train(_quick("edge_mobilenetv2_64", epochs=2), small_fer_csv, out, log=lambda s: None)
    metrics = _assert_run(out, 2, ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"))
    assert summary["test_accuracy"] == metrics["test"]["accuracy"]
    m = read_bundle(out).manifest
    # The convert helper's path: load_model + provenance_dataset (the dataset the provenance names) + select(test selector).
    model = keras.models.load_model(out / "model.keras")
    ds = provenance_dataset(m.provenance["data"])
    test = select(ds, m.provenance["data"]["test"])
    acc = float((model.predict(m.input.preprocess(test.images), verbose=0).argmax(1) == test.labels).mean())
    assert acc == pytest.approx(metrics["test"]["accuracy"], abs=1e-6)
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)  # flat: no nested backbone
    res = evaluate_model(out, small_fer_csv, out=tmp_path / "ev")
    assert res["summary"]["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-6)
    assert (tmp_path / "ev" / "plots" / "tsne_test.png").stat().st_size > 1000


@pytest.mark.slow  # two MobileNetV2 trainings: ~1.5 min
def test_resume_takes_batchnorm_statistics_from_the_checkpoint(small_fer_csv, tmp_path, monkeypatch):
    """A resumed bn_recalibrate run does not recalibrate again: its checkpoint holds the statistics."""
    import keras
    import numpy as np

    from fer_edge.training import fitloop
    from fer_edge.training.models import is_backbone
    from fer_edge.training.trainer import train

    models, stats = [], []  # the model fit() trains; a backbone BN's moving mean as epoch 2 starts
    real_fit = fitloop.fit
    monkeypatch.setattr(fitloop, "fit", lambda model, *a, **k: models.append(model) or real_fit(model, *a, **k))

    class Stop(Exception):
        pass

    def log(lines: list[str], stop: bool):
        def write(line: str) -> None:
            lines.append(line)
            if line == "epoch 2/2":  # epoch 1 (head only: BN statistics untouched) is checkpointed
                bn = next(layer for layer in models[-1].layers
                          if isinstance(layer, keras.layers.BatchNormalization) and is_backbone(layer))
                stats.append(np.array(bn.moving_mean))
                if stop:
                    raise Stop
        return write

    out = tmp_path / "run"
    recipe = _quick("edge_mobilenetv2_64", epochs=2)
    assert recipe.data["model"]["bn_recalibrate"]
    first: list[str] = []
    with pytest.raises(Stop):
        train(recipe, small_fer_csv, out, log=log(first, stop=True))
    assert any(line.startswith("BatchNorm recalibrated") for line in first)
    lines: list[str] = []
    train(recipe, small_fer_csv, out, resume=True, log=log(lines, stop=False))
    assert "BatchNorm recalibration skipped: the checkpoint being resumed holds the statistics" in lines
    assert not any(line.startswith("BatchNorm recalibrated") for line in lines)
    assert "resuming after epoch 1/2 (best val accuracy so far" in "\n".join(lines)
    # the resumed model trains from the checkpoint's statistics, not the file's folded ones (mean 0)
    assert len(stats) == 2 and np.abs(stats[0]).max() > 1e-3
    np.testing.assert_allclose(stats[1], stats[0], rtol=1e-6, atol=1e-6)
    _assert_run(out, 2, ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"))


def test_eval_errors(tmp_path, small_fer_csv):
    from fer_edge.training.evaluation_cmd import evaluate_model

    with pytest.raises(ModelError, match="no such model"):
        evaluate_model(tmp_path / "missing.keras", small_fer_csv)
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        evaluate_model(junk, small_fer_csv)


def test_eval_of_a_bundle_file_names_the_folder(tmp_path, monkeypatch):
    """A model file of a bundle (or a bare .tflite/.onnx) is refused in one line before any data is read
    or any extra is checked: a runtime-only install is not told to install TensorFlow."""
    import shutil

    from click.testing import CliRunner

    from fer_edge.cli.main import main as cli
    from fer_edge.shipped import shipped_bundles

    for name in ("tensorflow", "keras"):  # as after `pip install .`
        monkeypatch.setitem(sys.modules, name, None)
    bundle = tmp_path / "tflite-int8"
    shutil.copytree(shipped_bundles()["tflite"], bundle)
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(bundle / "model.tflite", bare / "model.tflite")
    (bare / "model.onnx").write_bytes(b"onnx")
    data = tmp_path / "none.csv"  # never read

    def run(path):
        res = CliRunner().invoke(cli, ["eval", str(path), "--data", str(data)])
        assert res.exit_code == 2 and res.stderr.startswith("error: "), res.output
        assert len(res.stderr.strip().splitlines()) == 1 and "pip install" not in res.stderr, res.stderr
        return res.stderr

    for name in ("model.tflite", "retention.json"):
        err = run(bundle / name)
        assert "of the bundle" in err and f"fer-edge eval {bundle} " in err, err
    assert "the model file of the bundle" in run(bundle / "model.tflite")
    for name in ("model.tflite", "model.onnx"):
        err = run(bare / name)
        assert "without manifest.json" in err and "a bundle folder" in err and ".keras file" in err, err


def test_resume_after_kill(small_fer_csv, tmp_path):
    """kill -9 during epoch 2; --resume continues at epoch 2 with epoch 1's history kept."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "fer_edge", "train", "--recipe", "custom_cnn_fer4", "--data", str(small_fer_csv),
           "--out", str(out), "--epochs", "3", "--batch-size", "8"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    state = out / "checkpoints" / "state.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if state.is_file() and json.loads(state.read_text())["epoch"] >= 1:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "training ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = json.loads(state.read_text())
    assert first["epoch"] == 1 and not (out / "manifest.json").exists()
    other = [a if a != "3" else "4" for a in cmd]  # --epochs 4: another schedule, never resumed silently
    bad = subprocess.run(other + ["--resume"], capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode != 0 and "different recipe or different options" in bad.stderr, bad.stderr[-500:]
    assert json.loads(state.read_text()) == first  # nothing trained or written
    done = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming after epoch 1/3" in done.stdout
    assert "epoch 1/3\n" not in done.stdout  # epoch 1 was not trained again
    with open(out / "history.csv") as fh:
        hist = list(csv.DictReader(fh))
    assert [row["epoch"] for row in hist] == ["1", "2", "3"]
    assert float(hist[0]["accuracy"]) == pytest.approx(first["history"][0]["accuracy"])
    read_bundle(out)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["efficientnet_fer2013", "custom_cnn_fer4", "resnet50_fer2013_substitute"])
def test_fer2013_paper_recipes(name, small_fer_csv, tmp_path):
    from fer_edge.training.trainer import train

    out = tmp_path / name
    train(_quick(name), small_fer_csv, out, log=lambda s: None)
    labels = ("happy", "sad", "neutral", "surprise") if name == "custom_cnn_fer4" else (
        "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    metrics = _assert_run(out, 1, labels)
    prov = read_bundle(out).manifest.provenance
    if name == "efficientnet_fer2013":
        assert "Lite0" in prov["backbone_weights"] and "ckplus48" in metrics.get("cross", {})
        assert "contempt" not in metrics["cross"]["ckplus48"]["labels"]
    if name == "resnet50_fer2013_substitute":
        assert "ResNet50" in prov["substitution"]
        assert prov["data"]["train"]["holdout"]["fraction"] == 0.2


@pytest.mark.slow
def test_resnet50_offline_fails_clearly(small_fer_csv, tmp_path):
    from fer_edge.training.trainer import train

    with pytest.raises(ModelError, match="ResNet50 weights"):
        train(_quick("resnet50_fer2013"), small_fer_csv, tmp_path / "r", log=lambda s: None)


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["paper", "loso"])
def test_jaffe_recipe(protocol, jaffe_dir, tmp_path):
    from fer_edge.training.trainer import train

    r = with_overrides(load_recipe("jaffe_mobilenetv2"), epochs=1, protocol=protocol)
    r.data["report"] = {"tsne_samples": 40}
    r.data["data"]["protocols"][protocol]["copies"] = 2
    if protocol == "loso":
        r.data["data"]["protocols"]["loso"]["folds"] = ["KA", "KL"]
    out = tmp_path / protocol
    train(r, jaffe_dir, out, log=lambda s: None)
    metrics = _assert_run(out, 1, ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"))
    prov = read_bundle(out).manifest.provenance
    assert metrics["summary"]["precision"] == "float32"  # a LOSO run's pooled summary names it too
    assert prov["data"]["path"] == "$FER_EDGE_DATA/jaffe"  # under the data root: found again on any machine
    if protocol == "paper":
        assert "LEAKS" in prov["data"]["protocol"]
    else:
        assert set(metrics["per_fold"]) == {"loso-KA", "loso-KL"}
        assert all((f["epochs_run"], f["best_epoch"]) == (1, 1) for f in metrics["per_fold"].values())
        assert prov["data"]["test"] == {"subjects": ["KA"]}
        assert prov["data"]["val"] == {"subjects": ["KL"]}  # validated on the next person, not on KA's trainers
        assert read_bundle(out / "folds" / "loso-KL").manifest.provenance["data"]["test"] == {"subjects": ["KL"]}


@pytest.mark.parametrize("name, paper_params", [("custom_cnn_fer4_model1", 605_060), ("custom_cnn_fer4_model2", 830_928)])
def test_custom_cnn_small_models_match_the_papers_size(name, paper_params):
    """Models 1/2: the paper gives layer counts and trainable parameters only; ours are within 4%."""
    import numpy as np

    from fer_edge.training.models import build_model

    recipe = load_recipe(name)
    model, _ = build_model(recipe.data["model"], (48, 48, 1), 4)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    convs = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    denses = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
    assert (len(convs), len(denses)) == ((3, 2) if name.endswith("model1") else (4, 3))
    assert abs(trainable - paper_params) / paper_params < 0.04, trainable


def test_recalibrate_bn_keeps_the_function_and_makes_batch_statistics_agree():
    """A folded BN (mean 0, var 1, the shared MobileNetV2 file's) gets its input's statistics:
    inference computes the same function, and training mode on the same images now agrees with it."""
    import keras
    import numpy as np

    from fer_edge.training.models import recalibrate_bn

    inp = keras.Input((6, 6, 2), name="image")
    bn = keras.layers.BatchNormalization(name="block_bn")  # a backbone layer: no head_/pre_ prefix
    out = keras.layers.GlobalAveragePooling2D(name="head_pool")(bn(keras.layers.Conv2D(3, 3, name="conv")(inp)))
    model = keras.Model(inp, out)
    rng = np.random.default_rng(0)
    folded = [np.ones(3), rng.normal(size=3), np.zeros(3), np.ones(3)]  # identity plus a bias
    bn.set_weights(folded)
    x = rng.normal(5.0, 3.0, (40, 6, 6, 2)).astype("float32")
    before = np.asarray(model(x, training=False))
    assert not np.allclose(np.asarray(model(x, training=True)), before, atol=1e-2)  # why it cannot train as is
    bn.set_weights(folded)  # the training-mode call moved the moving statistics

    assert recalibrate_bn(model, x, batch=16) == 1
    np.testing.assert_allclose(np.asarray(model(x, training=False)), before, rtol=1e-4, atol=1e-4)
    conv_out = np.asarray(model.get_layer("conv")(x)).reshape(-1, 3)
    np.testing.assert_allclose(bn.moving_mean.numpy(), conv_out.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(model(x, training=True)), before, rtol=1e-3, atol=1e-3)


def test_prose_edits_keep_a_run_resumable_and_settings_do_not(tmp_path):
    # --resume and a LOSO run's finished folds compare training_digest: rewording a note must not
    # strand a run of hours, a changed setting must stop it.
    import copy
    import json

    from fer_edge.training.recipes import training_digest
    from fer_edge.training.trainer import _same_recipe_as_finished

    base = load_recipe("jaffe_mobilenetv2").data
    reworded = copy.deepcopy(base)
    reworded["description"] += " (reworded)"
    reworded["claim"] = "another claim"
    reworded["report"] = {"tsne_samples": 10, "notes": ["new note"]}
    reworded["data"]["protocols"]["loso"]["label"] = "another label"
    reworded["data"]["protocols"]["loso"]["folds"] = ["KA"]  # a fold trains alike whichever others run
    assert training_digest(reworded) == training_digest(base)
    changed = copy.deepcopy(base)
    changed["train"]["lr"] = 0.001
    assert training_digest(changed) != training_digest(base)

    (tmp_path / "manifest.json").write_text(json.dumps({"provenance": {"recipe_data": base}}))
    _same_recipe_as_finished(tmp_path, reworded)  # no error
    with pytest.raises(ConfigError, match="finished fold was trained with other recipe settings"):
        _same_recipe_as_finished(tmp_path, changed)


@pytest.mark.parametrize("protocol, message", [
    ('type = "fixed"\ntrain = { split = "train" }\nval = { split = "val" }\ntest = { split = "test" }\nval_fraction = 0.2',
     "protocol type 'fixed' does not use val_fraction"),
    ('type = "fixed"\ntrain = { split = "train" }\ntest = { split = "test" }', "needs train, val and test selectors"),
    ('type = "loso"\ntest_fraction = 0.1', "protocol type 'loso' does not use test_fraction"),
    ('type = "augment_then_split"\nval_from = "next_subject"', "does not use val_from"),
])
def test_a_protocol_key_its_type_ignores_is_an_error(tmp_path, protocol, message):
    # e.g. val_fraction on a fixed split used to be accepted and silently ignored
    recipe = tmp_path / "bad.toml"
    recipe.write_text(f'extends = "edge_plain44"\nname = "bad"\n\n[data.protocols.mine]\n{protocol}\n')
    with pytest.raises(ConfigError, match=message) as err:
        load_recipe(recipe)
    assert "bad.toml" in str(err.value) and "data.protocols.mine" in str(err.value)


def test_precision_override_is_validated_and_recorded():
    r = with_overrides(load_recipe("edge_plain44"), precision="float32")
    assert r.data["train"]["precision"] == "float32"
    assert r.data["overrides"]["precision"] == "float32"
    assert load_recipe("edge_plain44").data["train"]["precision"] == "mixed_bfloat16"  # the recipe itself untouched
    with pytest.raises(ConfigError, match="--precision must be one of float32, mixed_bfloat16"):
        with_overrides(load_recipe("edge_plain44"), precision="float16")


def test_cli_precision_choices_come_from_the_recipes_table():
    from click.testing import CliRunner

    from fer_edge.cli import main

    res = CliRunner().invoke(main, ["train", "--recipe", "edge_plain44", "--data", "x.csv", "--out", "y", "--precision", "fp16"])
    assert res.exit_code == 2 and "'fp16' is not one of 'float32', 'mixed_bfloat16'" in res.output


def test_bf16_warning_only_for_bf16_on_a_cpu_without_native_bf16():
    from fer_edge.training.trainer import bf16_warning

    avx2 = {"model": "Intel Core i5-8250U", "flags": ["sse4_2", "avx2", "fma"]}
    msg = bf16_warning("mixed_bfloat16", avx2, gpus=0)
    assert msg and "Intel Core i5-8250U" in msg and "--precision float32" in msg
    assert bf16_warning("float32", avx2, gpus=0) is None
    assert bf16_warning("mixed_bfloat16", avx2, gpus=1) is None  # the GPU trains, not the CPU
    assert bf16_warning("mixed_bfloat16", {"model": "x", "flags": ["avx2", "avx512_bf16"]}, gpus=0) is None
    assert bf16_warning("mixed_bfloat16", {"model": "Cortex-A76", "flags": ["asimd", "asimddp"]}, gpus=0)  # Pi 5: none
    assert bf16_warning("mixed_bfloat16", {"model": "", "flags": []}, gpus=0) is None  # no /proc/cpuinfo: unknown


def test_train_json_mode_sends_warnings_to_stderr(capsys):
    from fer_edge.cli.train_cmd import _json_log

    _json_log("epoch 1/2: loss 1.0")
    _json_log("warning: this CPU has no native bfloat16")
    out, err = capsys.readouterr()
    assert out == "" and err.strip() == "warning: this CPU has no native bfloat16"


def test_native_bf16_reads_the_cpu_flags():
    from fer_edge.training.trainer import native_bf16

    assert native_bf16({"flags": ["avx2", "amx_bf16"]}) is True
    assert native_bf16({"flags": ["avx2"]}) is False
    assert native_bf16({"flags": []}) is None
