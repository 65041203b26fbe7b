"""`fer-edge train --strategy`: MirroredStrategy on two logical CPU devices matches a one-device
run; checkpoint/resume under it; the replica rule; TF_CONFIG checks for multiworker
(multiworker training itself: test_train_multiworker.py).

The mirrored runs happen in a child process: logical devices must be configured before
TensorFlow starts, and this test process may have started it already.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fer_edge.errors import ConfigError
from fer_edge.training import distribute
from fer_edge.training.recipes import load_recipe

from tiny_recipe import tiny_recipe

HERE = Path(__file__).parent

TINY = tiny_recipe("""
name = "distribute_tiny"
[data]
protocol = "whole"
[data.protocols.whole]
type = "fixed"
label = "train / test (also the validation set: the runs compare models, not scores)"
train = { split = "train" }
val = { split = "test" }
test = { split = "test" }
[input]
size = [32, 32]
[model]
dropout = 0.0
freeze_bn = true   # BN as a fixed affine: trainable BN normalises each replica's share (distribute.py)
[train]
batch_size = 32
optimizer = "sgd"
lr = 0.05
replica_scaling = "none"
[augment]
hflip = false
""")

CHILD = r"""
import json, sys
from pathlib import Path
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from fer_edge.training.recipes import load_recipe
from fer_edge.training.trainer import train
from test_data_shards import make_imagefolder

tmp = Path(sys.argv[1])
data = make_imagefolder(tmp / "faces", n_train=256, n_test=70)  # 8 full batches: no last batch dropped
recipe = load_recipe(sys.argv[2])
quiet = lambda s: None

def weights(run):
    import keras
    return keras.models.load_model(run / "model.keras", compile=False).get_weights()

one = train(recipe, data, tmp / "one", log=quiet, strategy_name="none")
two = train(recipe, data, tmp / "two", log=quiet, strategy_name="mirrored")

class Interrupt(Exception):
    pass

def stop_after_first_epoch(msg):
    if msg.startswith("epoch 1/2:"):
        raise Interrupt(msg)

try:
    train(recipe, data, tmp / "resumed", log=stop_after_first_epoch, strategy_name="mirrored")
except Interrupt:
    pass
logs = []
resumed = train(recipe, data, tmp / "resumed", log=logs.append, resume=True, strategy_name="mirrored")
prov = json.loads((tmp / "two" / "manifest.json").read_text())["provenance"]
diff = lambda a, b: max(float(np.abs(x - y).max()) for x, y in zip(weights(a), weights(b)))
print("RESULT " + json.dumps({
    "mirrored_vs_one": diff(tmp / "one", tmp / "two"), "resumed_vs_mirrored": diff(tmp / "two", tmp / "resumed"),
    "acc": [one["test_accuracy"], two["test_accuracy"], resumed["test_accuracy"]],
    "distribute": prov["recipe_data"].get("distribute"), "resume_log": [l for l in logs if "resuming" in l],
}))
"""


@pytest.mark.slow  # ~40 s: four short trainings in a fresh TensorFlow process
def test_mirrored_two_cpu_devices_matches_one_device_and_resumes(tmp_path):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), str(recipe)], capture_output=True, text=True,
                          env=env, timeout=600)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line, proc.stdout[-2000:] + proc.stderr[-3000:]
    r = json.loads(line[len("RESULT "):])
    assert r["distribute"]["replicas"] == 2 and r["distribute"]["global_batch_size"] == 32
    assert r["distribute"]["per_replica_batch_size"] == 16 and r["distribute"]["replica_scaling"] == "none"
    # Same global batch, same learning rate, BN frozen: the same model up to float summation order.
    assert r["mirrored_vs_one"] < 1e-4, r
    assert r["resumed_vs_mirrored"] < 1e-4, r  # an interrupted mirrored run resumes to the same model
    assert r["resume_log"] and "resuming after epoch 1/2" in r["resume_log"][0]


def test_replica_rule(tmp_path):
    class Fake:
        num_replicas_in_sync = 4

        class extended:
            worker_devices = ("/gpu:0", "/gpu:1", "/gpu:2", "/gpu:3")

    path = tmp_path / "r.toml"
    path.write_text(TINY.replace('replica_scaling = "none"\n', ""))
    linear = distribute.scaled(load_recipe(path), Fake())
    assert linear.data["train"]["batch_size"] == 128 and linear.data["train"]["lr"] == pytest.approx(0.2)
    assert linear.data["distribute"]["per_replica_batch_size"] == 32
    path.write_text(TINY)
    kept = distribute.scaled(load_recipe(path), Fake())
    assert kept.data["train"]["batch_size"] == 32 and kept.data["train"]["lr"] == 0.05
    assert distribute.scaled(load_recipe(path), None).data == load_recipe(path).data
    path.write_text(TINY.replace("batch_size = 32", "batch_size = 30"))
    with pytest.raises(ConfigError, match="global batch 30 does not split evenly over 4 replicas"):
        distribute.scaled(load_recipe(path), Fake())
    path.write_text(TINY.replace('replica_scaling = "none"', 'replica_scaling = "sqrt"'))
    with pytest.raises(ConfigError, match=r"train.replica_scaling: Input should be 'linear' or 'none' \(got 'sqrt'\)"):
        load_recipe(path)


GOOD = {"cluster": {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]}, "task": {"type": "worker", "index": 1}}


@pytest.mark.parametrize("raw, why", [
    (None, "TF_CONFIG is not set; --strategy multiworker reads the cluster from it"),
    ("{cluster: 1}", "TF_CONFIG is not valid JSON"),
    (json.dumps({"task": GOOD["task"]}), 'TF_CONFIG has no "cluster" table'),
    (json.dumps({**GOOD, "cluster": {"ps": ["a:1"]}}), "TF_CONFIG cluster job 'ps' is not used"),
    (json.dumps({**GOOD, "cluster": {"worker": ["gpu-a"]}}), "TF_CONFIG cluster.worker[0] is 'gpu-a', not HOST:PORT"),
    (json.dumps({**GOOD, "task": {"type": "evaluator", "index": 0}}), "TF_CONFIG task must name this process's job"),
    (json.dumps({**GOOD, "task": {"type": "worker", "index": 2}}), "TF_CONFIG task.index 2 is not an index of cluster.worker (0-1)"),
])
def test_malformed_tf_config(raw, why):
    env = {} if raw is None else {"TF_CONFIG": raw}
    with pytest.raises(ConfigError, match="^" + re.escape(why)):
        distribute.read_tf_config(env)
    assert distribute.read_tf_config({"TF_CONFIG": json.dumps(GOOD)}) == GOOD


def test_multiworker_cli_errors_are_one_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from fer_edge.cli.main import main as cli

    run = tmp_path / "old-run"
    run.mkdir()
    (run / "keep.txt").write_text("an earlier run")
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY)
    args = ["train", "--recipe", str(recipe), "--data", str(tmp_path), "--out", str(run), "--overwrite",
            "--strategy", "multiworker"]
    monkeypatch.delenv("TF_CONFIG", raising=False)
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and res.stderr.startswith("error: TF_CONFIG is not set") and res.stderr.count("\n") == 1
    monkeypatch.setenv("TF_CONFIG", '{"cluster": ')
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and res.stderr.startswith("error: TF_CONFIG is not valid JSON")
    monkeypatch.setenv("TF_CONFIG", json.dumps(GOOD))
    monkeypatch.setenv("FER_EDGE_CLUSTER_WAIT", "soon")
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and res.stderr == "error: FER_EDGE_CLUSTER_WAIT must be a number of seconds > 0, not 'soon'\n"
    assert (run / "keep.txt").read_text() == "an earlier run"  # --overwrite did not cost the old run
    res = CliRunner().invoke(cli, ["train", "--recipe", str(recipe), "--data", str(tmp_path), "--out", str(run),
                                   "--strategy", "ring"])
    assert res.exit_code == 2 and "'ring' is not one of" in res.output


def test_worker_rank_gives_each_worker_its_own_augmentation_stream(monkeypatch):
    # fitloop seeds each worker's augmenter with seed + 7919 * rank: equal ranks would give slice k of
    # every worker the same flips and crops
    from types import SimpleNamespace

    from fer_edge.training import distribute

    def fake(jobs, task_type, task_id):
        spec = SimpleNamespace(jobs=jobs)
        return SimpleNamespace(cluster_resolver=SimpleNamespace(cluster_spec=lambda: spec, task_type=task_type,
                                                                task_id=task_id))

    assert distribute.worker_rank(None) == 0
    monkeypatch.setattr(distribute, "is_multiworker", lambda s: s is not None)
    with_chief = [fake(["chief", "worker"], "chief", 0)] + [fake(["chief", "worker"], "worker", i) for i in range(3)]
    assert [distribute.worker_rank(s) for s in with_chief] == [0, 1, 2, 3]
    workers_only = [fake(["worker"], "worker", i) for i in range(3)]
    assert [distribute.worker_rank(s) for s in workers_only] == [0, 1, 2]
