"""`fer-edge train --strategy multiworker`, for real: worker processes on loopback ports picked
here, each started with its own TF_CONFIG as a cluster would start them.

- two workers train the tiny recipe of test_train_distribute to the model a one-device run
  trains (same global batch, frozen BatchNorm), the chief writes the one bundle, and the
  workers end with the same weights;
- a worker killed mid-run stops the chief with a one-line error, and --resume on both
  continues from the chief's checkpoint to the model an uninterrupted one-device run trains;
- a worker whose cluster never forms gives up with a one-line error after FER_EDGE_CLUSTER_WAIT.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fer_edge.errors import ConfigError
from fer_edge.training import distribute

HERE = Path(__file__).parent
DIGEST = re.compile(r"^(worker \d+): weights after epoch (\d+): sha256 ([0-9a-f]{64})", re.M)


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start_worker(index: int, ports: list[int], args: list[str], log: Path, **env) -> subprocess.Popen:
    tf_config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
    full_env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "CUDA_VISIBLE_DEVICES": "-1",
                "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", **env}
    cmd = [sys.executable, "-m", "fer_edge.cli.main", "train", *args, "--strategy", "multiworker"]
    with open(log.with_suffix(".out"), "w") as out, open(log.with_suffix(".err"), "w") as err:
        return subprocess.Popen(cmd, stdout=out, stderr=err, env=full_env)


def cluster(n: int, args: list[str], logs: Path, tag: str) -> list[subprocess.Popen]:
    ports = free_ports(n)
    return [start_worker(i, ports, args, logs / f"{tag}-w{i}") for i in range(n)]


def finish(procs: list[subprocess.Popen], timeout: float = 400) -> list[int]:
    end = time.time() + timeout
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=max(1.0, end - time.time())))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
    return codes


def read(logs: Path, name: str) -> tuple[str, str]:
    return (logs / f"{name}.out").read_text(), (logs / f"{name}.err").read_text()


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error: ")]


@pytest.fixture
def tiny(tmp_path):
    sys.path.insert(0, str(HERE))
    from test_data_shards import make_imagefolder
    from test_train_distribute import TINY

    data = make_imagefolder(tmp_path / "faces", n_train=256, n_test=70)  # 8 full batches of 32
    logs = tmp_path / "logs"
    logs.mkdir()
    return tmp_path, data, TINY, logs


@pytest.mark.slow  # ~1-2 min: a one-device run and two worker processes
def test_two_workers_train_the_one_device_model_and_the_chief_writes_one_bundle(tiny):
    import keras

    from fer_edge.training.recipes import load_recipe
    from fer_edge.training.trainer import train

    tmp, data, recipe_text, logs = tiny
    recipe = tmp / "tiny.toml"
    recipe.write_text(recipe_text)
    out = tmp / "run"
    procs = cluster(2, ["--recipe", str(recipe), "--data", str(data), "--out", str(out)], logs, "fresh")
    codes = finish(procs)
    (chief_out, chief_err), (worker_out, worker_err) = read(logs, "fresh-w0"), read(logs, "fresh-w1")
    assert codes == [0, 0], chief_err[-3000:] + worker_err[-3000:]
    assert f"done: {out} test accuracy" in chief_out
    assert f"done: worker 1 trained 2 epoch(s); the chief wrote {out} (test accuracy" in worker_out
    digests = DIGEST.findall(chief_out) + DIGEST.findall(worker_out)
    assert [(d[0], d[1]) for d in digests] == [("worker 0", "2"), ("worker 1", "2")]
    assert digests[0][2] == digests[1][2]  # every weight (BN statistics too) equal on both workers

    # One bundle, the chief's; the worker kept nothing in this folder (its scratch folder is elsewhere and removed).
    assert (out / "manifest.json").is_file() and (out / "model.keras").is_file()
    assert sorted(p.name for p in tmp.iterdir()) == ["faces", "logs", "run", "tiny.toml"]
    prov = json.loads((out / "manifest.json").read_text())["provenance"]["recipe_data"]["distribute"]
    assert prov["replicas"] == 2 and prov["workers"] == 2
    assert prov["global_batch_size"] == 32 and prov["per_replica_batch_size"] == 16

    # The same global batches and learning rate, BN frozen: the one-device model up to summation order.
    one = train(load_recipe(recipe), data, tmp / "one", log=lambda s: None, strategy_name="none")
    w_one = keras.models.load_model(tmp / "one" / "model.keras", compile=False).get_weights()
    w_two = keras.models.load_model(out / "model.keras", compile=False).get_weights()
    assert max(float(np.abs(a - b).max()) for a, b in zip(w_one, w_two)) < 1e-4
    assert json.loads((out / "metrics.json").read_text())["summary"]["test_accuracy"] == one["test_accuracy"]


@pytest.mark.slow  # ~2 min: a cluster run, a killed worker, the resumed run and a one-device run
def test_killed_worker_stops_the_chief_with_one_line_and_resume_continues(tiny):
    tmp, data, recipe_text, logs = tiny
    recipe = tmp / "long.toml"
    recipe.write_text(recipe_text.replace("epochs = 2", "epochs = 8"))
    out = tmp / "run"
    args = ["--recipe", str(recipe), "--data", str(data), "--out", str(out)]
    procs = cluster(2, args, logs, "first")
    chief_log = logs / "first-w0.out"
    deadline = time.time() + 300
    while not re.search(r"^epoch 2/8:", chief_log.read_text(), re.M):
        assert procs[0].poll() is None and time.time() < deadline, read(logs, "first-w0")[1][-3000:]
        time.sleep(0.2)
    procs[1].send_signal(signal.SIGKILL)
    t_kill = time.time()
    codes = finish(procs, timeout=120)
    chief_out, chief_err = read(logs, "first-w0")
    assert codes[1] == -signal.SIGKILL and codes[0] != 0, chief_err[-3000:]
    assert time.time() - t_kill < 60  # found out by TensorFlow's heartbeat (~10 s), not a hang
    errors = error_lines(chief_err)
    assert len(errors) == 1 and "Traceback" not in chief_err, chief_err[-3000:]
    # TensorFlow's reason: a reset connection, or missed heartbeats, whichever it notices first
    assert re.match(r"error: multiworker training lost worker 1 during epoch \d+ \(.*(connection|heartbeat).*\); "
                    r"restart every worker with --resume", errors[0], re.I), errors[0]
    assert not (out / "manifest.json").exists()  # never a half-written bundle
    saved = json.loads((out / "checkpoints" / "state.json").read_text())["epoch"]
    assert 2 <= saved < 8

    codes = finish(cluster(2, args + ["--resume"], logs, "resumed"))
    (chief_out, chief_err), (worker_out, worker_err) = read(logs, "resumed-w0"), read(logs, "resumed-w1")
    assert codes == [0, 0], chief_err[-3000:] + worker_err[-3000:]
    assert f"resuming after epoch {saved}/8" in chief_out
    assert f"done: worker 1 trained {8 - saved} epoch(s)" in worker_out  # it followed the chief's checkpoint
    digests = DIGEST.findall(chief_out) + DIGEST.findall(worker_out)
    assert len(digests) == 2 and digests[0][1:] == digests[1][1:] == ("8", digests[0][2])
    rows = (out / "history.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, 9))
    assert (out / "manifest.json").is_file()

    # It continued the same run: the model of an uninterrupted one-device run of the recipe.
    import keras

    from fer_edge.training.recipes import load_recipe
    from fer_edge.training.trainer import train

    train(load_recipe(recipe), data, tmp / "one", log=lambda s: None, strategy_name="none")
    w_one = keras.models.load_model(tmp / "one" / "model.keras", compile=False).get_weights()
    w_run = keras.models.load_model(out / "model.keras", compile=False).get_weights()
    assert max(float(np.abs(a - b).max()) for a, b in zip(w_one, w_run)) < 1e-4


def test_a_cluster_that_never_forms_is_one_line_error(tiny):
    """Worker 1 of two, alone: TensorFlow would wait for an hour; FER_EDGE_CLUSTER_WAIT ends it."""
    tmp, data, recipe_text, logs = tiny
    recipe = tmp / "tiny.toml"
    recipe.write_text(recipe_text)
    ports = free_ports(2)
    t0 = time.time()
    proc = start_worker(1, ports, ["--recipe", str(recipe), "--data", str(data), "--out", str(tmp / "run")],
                        logs / "alone", FER_EDGE_CLUSTER_WAIT="3")
    code = proc.wait(timeout=120)
    _, err = read(logs, "alone")
    assert code != 0 and time.time() - t0 < 100
    assert error_lines(err) == [
        f"error: TF_CONFIG cluster did not form within 3 s: worker 1 waited for the workers at 127.0.0.1:{ports[0]}, "
        f"127.0.0.1:{ports[1]}; start every worker with the same cluster list and its own task.index, check that "
        "each can reach the others' ports, or set FER_EDGE_CLUSTER_WAIT to wait longer"], err[-3000:]
    assert not (tmp / "run").exists()


@pytest.mark.parametrize("raw, want", [("", 600.0), ("45", 45.0), ("2.5", 2.5)])
def test_cluster_wait(raw, want):
    assert distribute.cluster_wait({"FER_EDGE_CLUSTER_WAIT": raw}) == want


@pytest.mark.parametrize("raw", ["0", "-3", "soon", "nan", "inf"])
def test_cluster_wait_refuses_bad_values(raw):
    with pytest.raises(ConfigError, match=f"^FER_EDGE_CLUSTER_WAIT must be a number of seconds > 0, not '{raw}'$"):
        distribute.cluster_wait({"FER_EDGE_CLUSTER_WAIT": raw})
