"""Training epochs under MultiWorkerMirroredStrategy (``--strategy multiworker``).

Keras 3.15's ``model.fit`` cannot run under this strategy: before the first step it reduces a
distributed input batch to one tensor, which MultiWorkerMirroredStrategy refuses
(keras-team/keras#20585). So the workers run their own step, the one ``fit`` runs: the
recipe's loss (Keras' ``CategoricalCrossentropy`` with label smoothing, sample weights for
class balance, scaled by Keras for the replica count), the Keras optimizer's
``apply_gradients`` (which sums the gradients of every replica on every worker), and the
same loss/accuracy numbers per epoch. ``fitloop.fit`` keeps the schedule, stages,
checkpoints and early stopping for every strategy.

Input: every worker builds the same seeded pipeline; each global batch is cut into one
contiguous slice per replica, and a worker keeps its own replicas' slices *before* the
costly decoding and augmentation (``replica_slices``). A step thus trains on exactly the
global batch a one-device run trains on.

Only the chief (task 0) keeps checkpoints. When a run starts or resumes, the chief's weights,
optimizer state and epoch counters are sent to every worker (``from_chief``), so a restarted
worker needs nothing on its disk. A worker that dies makes the others stop with a one-line
error within TensorFlow's heartbeat timeout (about 10 s), instead of waiting forever.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import FerEdgeError, first_line


def lost_cluster(exc: Exception, where: str) -> FerEdgeError:
    """TensorFlow's collective error (pages, naming the task that stopped) -> one line that says what to do."""
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", str(exc))  # {{function_node ... this task's device}}
    tasks = sorted(set(re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)", text.split("Error reported from", 1)[-1])))
    lines = [line.strip().rstrip(":") for line in text.splitlines()]
    telling = [line for line in lines if re.search(r"aborted|unhealthy|unavailable|deadline|connect", line, re.I)]
    why = (telling or [first_line(exc)])[0][:300]
    who = ", ".join(f"{job} {i}" for job, i in tasks) or "a worker"
    return FerEdgeError(f"multiworker training lost {who} during {where} ({why}); restart every worker with "
                        "--resume to continue from the chief's last checkpoint")


def replica_slices(ctx, total: int) -> Callable:
    """A tf.data transform: each global batch -> the slices of this input pipeline's replicas.

    Global batch of m images, ``total`` replicas: replica r gets [r*m//total, (r+1)*m//total).
    Batches with fewer images than replicas are dropped (an empty replica crashes TF's fused
    BatchNorm on CPU; ``distribute.without_empty_replicas`` does the same for MirroredStrategy)."""
    import tensorflow as tf

    per_pipeline = total // ctx.num_input_pipelines
    first = ctx.input_pipeline_id * per_pipeline

    def pieces(*batch):
        m = tf.shape(batch[0])[0]
        cuts = (tf.range(total + 1) * m) // total
        return tf.data.Dataset.range(first, first + per_pipeline).map(
            lambda r: tuple(t[cuts[r]:cuts[r + 1]] for t in batch))

    def transform(ds):
        return ds.filter(lambda xb, *rest: tf.shape(xb)[0] >= total).flat_map(pieces)

    return transform


def distributed(strategy, make: Callable[[Callable], Any]):
    """``make(share)`` builds the global-batch pipeline with ``share`` applied before its map."""
    n = strategy.num_replicas_in_sync
    return strategy.distribute_datasets_from_function(lambda ctx: make(replica_slices(ctx, n)))


def from_chief(strategy, values: Sequence, where: str = "the start of training") -> list[np.ndarray]:
    """The chief's ``values`` (arrays or variables), received by every worker: a sum over the
    cluster in which only replica 0 (on the chief) contributes. Sent as float64, which holds
    float32 weights and int64 counters up to 2**53 exactly."""
    import tensorflow as tf

    local = [tf.constant(np.asarray(v, np.float64)) for v in values]

    @tf.function
    def send(tensors):
        def fn():
            ctx = tf.distribute.get_replica_context()
            first = tf.equal(ctx.replica_id_in_sync_group, 0)
            return ctx.all_reduce(tf.distribute.ReduceOp.SUM,
                                  [tf.where(first, t, tf.zeros_like(t)) for t in tensors])
        return strategy.run(fn)

    try:
        out = send(local)
    except tf.errors.OpError as exc:
        raise lost_cluster(exc, where) from None
    return [np.asarray(strategy.experimental_local_results(o)[0]) for o in out]


def sync_from_chief(strategy, variables) -> None:
    """Set ``variables`` (model weights, optimizer state) on every worker to the chief's values."""
    variables = list(variables)
    for var, value in zip(variables, from_chief(strategy, variables)):
        var.assign(value.astype(var.dtype))


def weights_digest(model) -> str:
    """sha256 of the weights as float32 bytes: equal on every worker after each epoch."""
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w, np.float32).tobytes())
    return h.hexdigest()


def learning_rate(optimizer) -> float:
    import tensorflow as tf

    lr = optimizer.learning_rate
    return float(tf.convert_to_tensor(getattr(lr, "value", lr)).numpy())


class Loop:
    """One stage's train and validation steps for ``model`` and ``optimizer`` (both made in the
    strategy's scope; the optimizer built on the trainable weights)."""

    def __init__(self, strategy, model, optimizer, label_smoothing: float):
        import keras
        import tensorflow as tf

        self.strategy, self.model, self.optimizer = strategy, model, optimizer
        self.replicas = strategy.num_replicas_in_sync
        # Called in a replica context, a Keras loss is the mean over that replica's images divided
        # by the replica count, so the optimizer's sum over replicas is the global-batch mean (as in fit).
        self.loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
        self.train_step = tf.function(self._train_step, reduce_retracing=True)
        self.test_step = tf.function(self._test_step, reduce_retracing=True)
        # Trainable BatchNorm layers update their moving statistics from their own replica's images.
        self.bn_stats = [v for layer in model.layers
                         if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
                         for v in (layer.moving_mean, layer.moving_variance)]

    def _totals(self, loss, y, pred):
        """(loss x images, correct, images) summed over every replica of the cluster."""
        import tensorflow as tf

        n = tf.cast(tf.shape(y)[0], tf.float32)
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(y, -1), tf.argmax(pred, -1)), tf.float32))
        unscaled = tf.cast(loss, tf.float32) * self.replicas
        return tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, [unscaled * n, correct, n])

    def _train_step(self, batch):
        import tensorflow as tf

        def step(x, y, w=None):
            with tf.GradientTape() as tape:
                pred = self.model(x, training=True)
                loss = self.loss(y, pred, sample_weight=w)
                if self.model.losses:  # weight regularizers, divided as Keras divides them
                    loss = loss + tf.add_n(self.model.losses) / self.replicas
            variables = self.model.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return self._totals(loss, y, pred)

        return self.strategy.run(step, args=tuple(batch))

    def _test_step(self, batch):
        def step(x, y, w=None):
            pred = self.model(x, training=False)
            return self._totals(self.loss(y, pred, sample_weight=w), y, pred)

        return self.strategy.run(step, args=tuple(batch))

    def _run(self, step, dataset) -> tuple[float, float]:
        totals = np.zeros(3)
        for batch in dataset:
            totals += [float(self.strategy.experimental_local_results(t)[0]) for t in step(batch)]
        return totals[0] / max(totals[2], 1.0), totals[1] / max(totals[2], 1.0)

    def average_bn_statistics(self) -> None:
        """Every worker's moving mean/variance -> their average, on every worker."""
        import tensorflow as tf

        if not self.bn_stats:
            return

        @tf.function
        def mean():
            return self.strategy.run(lambda: tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.MEAN, [tf.identity(v.value) for v in self.bn_stats]))

        for var, value in zip(self.bn_stats, mean()):
            var.assign(self.strategy.experimental_local_results(value)[0])

    def epoch(self, train_ds, val_ds, number: int) -> dict[str, float]:
        """Train one epoch and validate; the numbers fit reports (loss, accuracy, val_loss, val_accuracy)."""
        import tensorflow as tf

        try:
            loss, acc = self._run(self.train_step, train_ds)
            self.average_bn_statistics()
            val_loss, val_acc = self._run(self.test_step, val_ds)
        except tf.errors.OpError as exc:
            raise lost_cluster(exc, f"epoch {number}") from None
        return {"accuracy": acc, "loss": loss, "val_accuracy": val_acc, "val_loss": val_loss}
