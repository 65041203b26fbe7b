"""tf.distribute for `fer-edge train --strategy` (or ``[train] strategy``): which strategy, and
how the batch size and learning rate follow the number of replicas.

Strategies:
  none         one device.
  auto         MirroredStrategy when more than one GPU is visible, else one device (default).
  mirrored     MirroredStrategy over every GPU, or over the logical CPU devices when there is no
               GPU (``tf.config.set_logical_device_configuration``; how the tests run it).
  multiworker  MultiWorkerMirroredStrategy over the cluster in ``TF_CONFIG`` (checked first). Every
               worker runs the same command; the epochs run ``multiworker.Loop``, not
               ``model.fit`` (Keras 3.15 cannot fit under this strategy: keras-team/keras#20585).
               The chief (job "chief", else worker 0) writes the run folder; the other workers
               write theirs to a temporary folder that is removed at the end. A cluster that has
               not formed after ``FER_EDGE_CLUSTER_WAIT`` seconds (default 600) is an error.

Replica rule (``[train] replica_scaling``): ``linear`` (default) keeps the recipe's
``batch_size`` per replica, so the global batch is batch_size x replicas, and multiplies the
learning rate by the replica count (Goyal et al. 2017's linear scaling rule); ``none`` keeps
batch_size as the global batch and the learning rate as written, so a mirrored run computes
the same updates as a one-device run, except in trainable BatchNorm layers, which normalise
each replica's own share of the batch (tf.distribute's default; Keras 3.15's synchronized BN
fails under MirroredStrategy on CPU devices, so it is not switched on).
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from typing import Any, Callable

from ..errors import ConfigError, first_line
from .recipes import Recipe

STRATEGIES = ("auto", "none", "mirrored", "multiworker")
REPLICA_SCALING = ("linear", "none")
TF_CONFIG_EXAMPLE = ('{"cluster": {"worker": ["gpu-a:12345", "gpu-b:12345"]}, '
                     '"task": {"type": "worker", "index": 0}}')
CLUSTER_WAIT_ENV = "FER_EDGE_CLUSTER_WAIT"
CLUSTER_WAIT_S = 600.0
# A separate process, because TensorFlow blocks the cluster wait while holding the GIL: no
# Python thread or signal handler of the waiting process runs until the cluster forms.
WATCHDOG = r"""
import os, select, signal, sys
parent, wait, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
ready, _, _ = select.select([sys.stdin], [], [], wait)
if not ready:  # no word from the parent (it closes our stdin once the cluster forms, or when it dies)
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    os.kill(parent, signal.SIGKILL)
"""


def strategy_name(recipe: Recipe, override: str | None) -> str:
    name = override or str(recipe.data["train"].get("strategy", "auto"))
    if name not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}, not {name!r}")
    return name


def read_tf_config(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """TF_CONFIG, checked: a cluster of HOST:PORT lists and this process's task in it."""
    env = os.environ if environ is None else environ
    raw = env.get("TF_CONFIG", "").strip()
    if not raw:
        raise ConfigError("TF_CONFIG is not set; --strategy multiworker reads the cluster from it, e.g. "
                          f"TF_CONFIG='{TF_CONFIG_EXAMPLE}' (the same on every worker but task.index)")
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({exc.msg} at character {exc.pos}); "
                          f"expected e.g. {TF_CONFIG_EXAMPLE}") from None
    cluster = cfg.get("cluster") if isinstance(cfg, dict) else None
    if not isinstance(cluster, dict) or not cluster:
        raise ConfigError(f"TF_CONFIG has no \"cluster\" table of job -> [HOST:PORT, ...]; expected e.g. "
                          f"{TF_CONFIG_EXAMPLE}")
    for job, addresses in cluster.items():
        if job not in ("chief", "worker"):
            raise ConfigError(f"TF_CONFIG cluster job {job!r} is not used by multiworker training (chief, worker)")
        if not isinstance(addresses, list) or not addresses:
            raise ConfigError(f"TF_CONFIG cluster.{job} must be a non-empty list of HOST:PORT")
        for i, addr in enumerate(addresses):
            host, _, port = str(addr).rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError(f"TF_CONFIG cluster.{job}[{i}] is {addr!r}, not HOST:PORT")
    task = cfg.get("task")
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise ConfigError(f"TF_CONFIG task must name this process's job ({' or '.join(cluster)}) and index, "
                          f"e.g. \"task\": {{\"type\": \"worker\", \"index\": 0}}; got {task!r}")
    index = task.get("index")
    if not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
        raise ConfigError(f"TF_CONFIG task.index {index!r} is not an index of cluster.{task['type']} "
                          f"(0-{len(cluster[task['type']]) - 1})")
    return cfg


def strategy_for(name: str, log: Callable[[str], None]):
    """The tf.distribute strategy for ``name`` (None: train on one device)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if name == "none":
        return None
    if name == "auto":
        if len(gpus) > 1:
            log(f"{len(gpus)} GPUs visible: training under tf.distribute.MirroredStrategy")
            return tf.distribute.MirroredStrategy()
        return None
    if name == "mirrored":
        if gpus:
            strategy = tf.distribute.MirroredStrategy()
        else:
            cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
            strategy = tf.distribute.MirroredStrategy(cpus)
        log(f"MirroredStrategy over {strategy.num_replicas_in_sync} replica(s): "
            f"{', '.join(strategy.extended.worker_devices)}")
        return strategy
    return _join_cluster(read_tf_config(), cluster_wait(), log)


def cluster_wait(environ: dict[str, str] | None = None) -> float:
    """Seconds to wait for every worker of the cluster to join (``FER_EDGE_CLUSTER_WAIT``)."""
    raw = (os.environ if environ is None else environ).get(CLUSTER_WAIT_ENV, "").strip()
    if not raw:
        return CLUSTER_WAIT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"{CLUSTER_WAIT_ENV} must be a number of seconds > 0, not {raw!r}")
    return value


def _join_cluster(cfg: dict[str, Any], wait: float, log: Callable[[str], None]):
    """MultiWorkerMirroredStrategy for TF_CONFIG, or a one-line error when the cluster does not form.

    TensorFlow keeps waiting for missing workers (measured with TF 2.21: the chief with no
    deadline, a worker still waiting after 100 s), and that wait cannot be interrupted from Python; so
    a watchdog process prints the error line and ends this process (exit status 137) if the
    cluster has not formed after ``wait`` seconds."""
    import tensorflow as tf

    task, cluster = cfg["task"], cfg["cluster"]
    addresses = [a for job in ("chief", "worker") for a in cluster.get(job, [])]
    me = f"{task['type']} {task['index']}"
    log(f"MultiWorkerMirroredStrategy: {me} of a {len(addresses)}-worker cluster ({', '.join(addresses)}); "
        f"waiting up to {wait:.0f} s for every worker to join")

    message = (f"error: TF_CONFIG cluster did not form within {wait:.0f} s: {me} waited for the workers at "
               f"{', '.join(addresses)}; start every worker with the same cluster list and its own task.index, "
               f"check that each can reach the others' ports, or set {CLUSTER_WAIT_ENV} to wait longer")
    watchdog = subprocess.Popen([sys.executable, "-c", WATCHDOG, str(os.getpid()), str(wait), message],
                                stdin=subprocess.PIPE)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except tf.errors.OpError as exc:
        raise ConfigError(f"TF_CONFIG: {me} could not join the cluster at {', '.join(addresses)}: "
                          f"{first_line(exc)}") from None
    finally:
        watchdog.stdin.close()
        watchdog.wait()
    role = "the chief: it writes the run folder" if is_chief(strategy) else "a worker: the chief writes the run folder"
    log(f"cluster formed: {strategy.num_replicas_in_sync} replica(s); {me} is {role}")
    return strategy


def is_multiworker(strategy) -> bool:
    if strategy is None:
        return False
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy) -> bool:
    """True unless this process is a non-chief worker of a multiworker cluster."""
    if not is_multiworker(strategy):
        return True
    resolver = strategy.cluster_resolver
    if "chief" in resolver.cluster_spec().jobs:
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and int(resolver.task_id) == 0


def worker_rank(strategy) -> int:
    """0 for the chief (or a single process), 1..N-1 for the other workers of a cluster."""
    if not is_multiworker(strategy):
        return 0
    resolver = strategy.cluster_resolver
    has_chief = "chief" in resolver.cluster_spec().jobs
    return 0 if resolver.task_type == "chief" else int(resolver.task_id) + int(has_chief)


def task_name(strategy) -> str:
    resolver = strategy.cluster_resolver
    return f"{resolver.task_type} {resolver.task_id}"


def replicas(strategy) -> int:
    return 1 if strategy is None else int(strategy.num_replicas_in_sync)


def scaled(recipe: Recipe, strategy) -> Recipe:
    """``recipe`` with batch size and learning rate set by ``[train] replica_scaling`` for the
    strategy's replica count; the rule and the values used are recorded under ``distribute``."""
    n = replicas(strategy)
    train = recipe.data["train"]
    rule = str(train.get("replica_scaling", "linear"))
    if rule not in REPLICA_SCALING:
        raise ConfigError(f"[train] replica_scaling must be one of {', '.join(REPLICA_SCALING)}, not {rule!r}")
    if n == 1:
        return recipe
    data = copy.deepcopy(recipe.data)
    t = data["train"]
    batch = int(t.get("batch_size", 64))
    if rule == "linear":
        t["batch_size"] = batch * n
        for holder in [t] + list(t.get("stages", [])):
            if "lr" in holder:
                holder["lr"] = float(holder["lr"]) * n
        if "lr" not in t:
            t["lr"] = 1e-3 * n  # make_optimizer's default, scaled
    if int(t["batch_size"]) % n:
        raise ConfigError(f"global batch {t['batch_size']} does not split evenly over {n} replicas; "
                          f"change [train] batch_size")
    data["distribute"] = {"replicas": n, "replica_scaling": rule, "global_batch_size": int(t["batch_size"]),
                          "per_replica_batch_size": int(t["batch_size"]) // n,
                          "devices": list(strategy.extended.worker_devices)}
    if is_multiworker(strategy):  # devices are this worker's; the cluster is the same on every worker
        spec = strategy.cluster_resolver.cluster_spec()
        data["distribute"]["workers"] = sum(spec.num_tasks(job) for job in spec.jobs)
    return Recipe(name=recipe.name, data=data, source=recipe.source, sha256=recipe.sha256)


def without_empty_replicas(ds, strategy):
    """Drop a last batch smaller than the replica count: a replica handed 0 images crashes
    TensorFlow's fused CPU kernels (measured: "Incompatible shapes: [0,16,16,8] vs. [16]"
    in BatchNormalization). At most replicas - 1 images of an epoch are skipped."""
    n = replicas(strategy)
    if n == 1:
        return ds
    import tensorflow as tf

    return ds.filter(lambda xb, *rest: tf.shape(xb)[0] >= n)
