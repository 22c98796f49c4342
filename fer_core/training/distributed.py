"""Training on several machines: TensorFlow's MultiWorkerMirroredStrategy, from TF_CONFIG.

Keras 3's ``fit`` fails under this strategy (keras-team/keras#20585), so the step is written
out here; ``fer_core.training.loop`` calls it instead of ``fit`` when TF_CONFIG describes a cluster.
"""

from __future__ import annotations

import json
import os

import numpy as np

from fer_core.errors import ConfigError
from fer_core.labels import NUM_CLASSES


def distribution_from_env():
    """(strategy, is_chief, worker_index). Without TF_CONFIG: (None, True, 0).

    With TF_CONFIG set (TensorFlow's cluster description), training runs data-parallel under
    ``tf.distribute.MultiWorkerMirroredStrategy``. The chief is the task of type "chief", or
    worker 0 when the cluster names no chief.
    """
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None, True, 0
    try:
        tf_config = json.loads(raw)
        task = tf_config["task"]
        task_type, index = task["type"], int(task["index"])
        cluster = tf_config["cluster"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"TF_CONFIG is not a valid cluster description: {exc}") from exc
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ConfigError("Multi-worker training needs the TensorFlow backend.")
    import tensorflow as tf

    # A worker that dies would leave the others waiting in an all-reduce forever: a collective
    # that takes longer than this ends the run on every worker (resume them all to go on).
    try:
        timeout = float(os.environ.get(TIMEOUT_ENV, "600"))
    except ValueError as exc:
        raise ConfigError(f"{TIMEOUT_ENV} must be a number of seconds.") from exc
    strategy = tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=timeout
        )
    )
    is_chief = task_type == "chief" or (
        task_type == "worker" and index == 0 and "chief" not in cluster
    )
    return strategy, is_chief, index


TRACE_ENV = "FER_TRACE_WEIGHTS"  # a folder: each worker logs a hash of its weights per step
TIMEOUT_ENV = "FER_COLLECTIVE_TIMEOUT"  # seconds a worker waits for the others (default 600)


def fit_multi_worker(
    strategy,
    training_model,
    config,
    initial_epoch,
    callback,
    x_train,
    y_train,
    w_train,
    x_val,
    y_val,
    worker_index: int = 0,
):
    """Data-parallel training loop under MultiWorkerMirroredStrategy.

    Keras 3's ``fit`` fails under this strategy (keras-team/keras#20585), so the step is
    written out: each worker computes gradients on its shard, ``strategy.run`` all-reduces
    them, and the same run callback as ``fit`` writes checkpoints and history (chief only).

    Stopping is agreed: after every batch the workers all-reduce their "stop" flags (a stop
    request in the run folder, which every worker reads), so all of them leave the loop after
    the same batch. A worker that left alone would leave the others waiting forever in the
    next all-reduce.

    With ``$FER_TRACE_WEIGHTS`` set to a folder, each worker appends ``epoch,step,sha1`` of
    its trainable weights after every step to ``worker<index>.csv`` there: identical lines
    on every worker show that the gradients really were all-reduced.
    """
    import tensorflow as tf

    optimizer = training_model.optimizer
    loss = training_model.loss
    per_example_loss = type(loss)(
        label_smoothing=loss.label_smoothing,
        temperature=loss.temperature,
        distill_weight=loss.distill_weight,
        reduction=None,
    )
    global_batch = config.batch_size
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA

    @tf.function
    def train_step(batch):
        def replica_step(x, y, w):
            with tf.GradientTape() as tape:
                outputs = training_model(x, training=True)
                loss = tf.nn.compute_average_loss(
                    per_example_loss(y, outputs) * w, global_batch_size=global_batch
                )
            variables = training_model.trainable_variables
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            hits = tf.cast(
                tf.equal(tf.argmax(outputs[:, :NUM_CLASSES], 1), tf.argmax(y, 1)), tf.float32
            )
            return loss, tf.reduce_sum(hits), tf.cast(tf.shape(y)[0], tf.float32)

        results = strategy.run(replica_step, args=batch)
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, r, axis=None) for r in results]

    @tf.function
    def agreed_stop(flag):
        votes = strategy.run(lambda value: tf.identity(value), args=(flag,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, votes, axis=None) > 0

    trace = _weight_trace(worker_index)

    callback.set_model(training_model)
    try:
        _epochs(
            strategy,
            training_model,
            config,
            initial_epoch,
            callback,
            train_step,
            agreed_stop,
            trace,
            options,
            per_example_loss,
            (x_train, y_train, w_train),
            (x_val, y_val),
        )
    except (
        tf.errors.DeadlineExceededError,
        tf.errors.UnavailableError,
        tf.errors.CancelledError,
    ) as exc:
        # Any collective can be the one that times out: the step, the stop vote, or the
        # distributed dataset agreeing on whether every worker still has a batch.
        raise ConfigError(
            f"Another worker stopped answering (waited up to "
            f"{os.environ.get(TIMEOUT_ENV, '600')} s: {type(exc).__name__}). The run keeps "
            "its last full epoch: start every worker again to resume it."
        ) from None


def _epochs(
    strategy,
    training_model,
    config,
    initial_epoch,
    callback,
    train_step,
    agreed_stop,
    trace,
    options,
    per_example_loss,
    train,
    val,
):
    import tensorflow as tf

    (x_train, y_train, w_train), (x_val, y_val) = train, val
    for epoch in range(initial_epoch, config.epochs):
        callback.on_epoch_begin(epoch)
        data = tf.data.Dataset.from_tensor_slices((x_train, y_train, w_train))
        data = data.shuffle(len(y_train), seed=config.seed + epoch).batch(config.batch_size)
        loss_sum = hits = seen = 0.0
        steps = 0
        for batch in strategy.experimental_distribute_dataset(data.with_options(options)):
            loss, batch_hits, batch_seen = train_step(batch)
            loss_sum, hits, seen = (
                loss_sum + float(loss),
                hits + float(batch_hits),
                seen + float(batch_seen),
            )
            callback.on_train_batch_end(steps)
            steps += 1
            if trace is not None:
                trace(epoch + 1, steps, training_model)
            stop = agreed_stop(tf.constant(1.0 if training_model.stop_training else 0.0))
            training_model.stop_training = bool(stop)
            if training_model.stop_training:
                break
        # Weights are identical on every worker after the all-reduce, so each evaluates alone.
        outputs = np.concatenate(
            [
                np.asarray(
                    training_model(
                        {key: value[i : i + 256] for key, value in x_val.items()}, training=False
                    )
                )
                for i in range(0, len(y_val), 256)
            ]
        )
        val_loss = float(np.mean(per_example_loss(y_val, outputs)))
        val_accuracy = float(np.mean(outputs[:, :NUM_CLASSES].argmax(1) == y_val.argmax(1)))
        callback.on_epoch_end(
            epoch,
            {
                "loss": loss_sum / max(steps, 1),
                "accuracy": hits / max(seen, 1.0),
                "val_loss": val_loss,
                "val_accuracy": val_accuracy,
            },
        )
        if training_model.stop_training:
            break


def _weight_trace(worker_index: int):
    folder = os.environ.get(TRACE_ENV)
    if not folder:
        return None
    import hashlib

    path = os.path.join(folder, f"worker{worker_index}.csv")

    def trace(epoch: int, step: int, model) -> None:
        digest = hashlib.sha1()
        for variable in model.trainable_variables:
            digest.update(np.ascontiguousarray(np.asarray(variable)).tobytes())
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"{epoch},{step},{digest.hexdigest()}\n")

    return trace


__all__ = ["distribution_from_env", "fit_multi_worker", "TRACE_ENV", "TIMEOUT_ENV"]
