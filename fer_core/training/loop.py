"""Training: the recipe and the loop. ``train(config)`` writes a resumable run folder.

The folder's files are described in ``fer_core.training.runs``; the settings in ``fer_core.training.config``;
weight averaging and BatchNorm recalibration in ``fer_core.training.averaging``; several machines in
``fer_core.training.distributed``. Selection uses the validation split only (PublicTest, or a slice of
Training when the data has no PublicTest); PrivateTest is never touched here.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fer_core.data.fer2013 import Fer2013, load_fer2013, stratified_subset
from fer_core.data.ferplus import load_ferplus, relabel
from fer_core.errors import ConfigError, FerError, ModelError
from fer_core.evaluation.reports import accuracy, evaluate_images
from fer_core.labels import NUM_CLASSES
from fer_core.models.architectures import build_model, load_keras_model, save_keras_model
from fer_core.models.inference import file_sha256
from fer_core.records import database_url
from fer_core.records.store import captured_training_faces
from fer_core.storage import WriteError, write_json
from fer_core.training.averaging import WeightAverage, recompute_batch_norm
from fer_core.training.config import TrainConfig, learning_rate_at
from fer_core.training.distributed import distribution_from_env, fit_multi_worker
from fer_core.training.runs import BEST_BEFORE_RECALIBRATION, Run, new_run_name
from fer_core.training.teachers import teacher_probabilities


def class_weights(labels: np.ndarray, mode: str) -> np.ndarray:
    counts = np.maximum(np.bincount(labels, minlength=NUM_CLASSES).astype(np.float64), 1.0)
    if mode == "none":
        weights = np.ones(NUM_CLASSES)
    elif mode == "sqrt":
        weights = 1.0 / np.sqrt(counts)
    else:
        weights = 1.0 / counts
    # Normalise so that the average weight over the training rows is 1.
    return (weights / weights[labels].mean()).astype(np.float32)


def prepare_splits(dataset: Fer2013, config: TrainConfig):
    """Training rows, validation rows (PublicTest; else 10% of Training, stratified) and the
    validation split's name."""
    x_train, y_train, _, x_val, y_val, _, split = prepare_training_splits(dataset, config)
    return x_train, y_train, x_val, y_val, split


def prepare_training_splits(dataset: Fer2013, config: TrainConfig):
    """As ``prepare_splits``, with each split's training targets (N, 7) beside its labels:
    ``x_train, y_train, t_train, x_val, y_val, t_val, split``."""
    train_rows = np.flatnonzero(dataset.usage == "Training")
    if len(train_rows) == 0:
        raise ConfigError("The dataset has no Training rows to train on.")
    val_rows = np.flatnonzero(dataset.usage == "PublicTest")
    split = "PublicTest"
    if len(val_rows) == 0:
        split = "Training (held out)"
        rng = np.random.default_rng(config.seed)
        y_all = dataset.labels[train_rows]
        held = np.zeros(len(train_rows), dtype=bool)
        for label in np.unique(y_all):
            members = np.flatnonzero(y_all == label)
            held[rng.choice(members, size=max(1, len(members) // 10), replace=False)] = True
        val_rows, train_rows = train_rows[held], train_rows[~held]
    if config.train_subset:
        train_rows = train_rows[
            stratified_subset(dataset.labels[train_rows], config.train_subset, config.seed)
        ]
    if config.validation_subset:
        val_rows = val_rows[
            stratified_subset(dataset.labels[val_rows], config.validation_subset, config.seed)
        ]
    targets = dataset.targets()
    return (
        dataset.images[train_rows],
        dataset.labels[train_rows],
        targets[train_rows],
        dataset.images[val_rows],
        dataset.labels[val_rows],
        targets[val_rows],
        split,
    )


def crowd_labelled(dataset: Fer2013, config: TrainConfig) -> Fer2013:
    """The dataset as ``config.labels`` says: FER2013's own labels, or FER+'s crowd
    (fer_core.data.ferplus.relabel says which faces stay and what each learns)."""
    if config.labels == "fer2013":
        return dataset
    votes, own = load_ferplus(config.ferplus_path, dataset), config.own_label_weight
    return relabel(dataset, votes, config.labels, config.neutral_vote_weight, own)


def pad_to_full_batches(
    images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int, *more: np.ndarray | None
):
    """Repeat a few randomly chosen rows so the row count is a multiple of the batch size.

    With no partial last batch, every training batch has the same, even size: TensorFlow
    2.21's oneDNN kernels crash (SIGSEGV) on odd batch sizes for some models. At most
    batch_size - 1 rows (0.2% of FER2013 Training at batch 64) are seen twice an epoch.
    ``more``: other per-row arrays (None passes through), padded with the same rows.
    """
    remainder = len(labels) % batch_size
    if not remainder:
        return (images, labels, *more)
    extra = np.random.default_rng(seed).choice(
        len(labels), batch_size - remainder, replace=batch_size - remainder > len(labels)
    )
    return tuple(
        None if array is None else np.concatenate([array, array[extra]])
        for array in (images, labels, *more)
    )


def as_model_input(images: np.ndarray) -> np.ndarray:
    """(N, 48, 48) uint8 -> (N, 48, 48, 1) float32 raw 0..255 (the model normalises)."""
    return np.asarray(images, dtype=np.float32)[..., None]


def _open_run(config: TrainConfig, run_dir) -> Run:
    if run_dir is None and not config.run_name:
        return Run.create_unique(config.runs_dir, new_run_name(config.architecture))
    run = Run(run_dir if run_dir is not None else Path(config.runs_dir) / str(config.run_name))
    run.path.mkdir(parents=True, exist_ok=True)
    return run


def _build_training_model(config: TrainConfig, target_width: int, targets=None):
    from fer_core.training.trainer import build_trainer, class_prior

    inner = build_model(config.architecture, **config.model_kwargs)
    if config.init_from:
        source = _model_to_start_from(config.init_from, config.architecture)
        try:
            inner.set_weights(source.get_weights())
        except ValueError as exc:
            raise ConfigError(
                f"init_from: {Path(config.init_from).name} does not have this "
                f"architecture's weights ({exc})."
            ) from exc
    prior = class_prior(targets) if targets is not None else None
    return build_trainer(inner, config, target_width, prior), inner


def _model_to_start_from(path: str, architecture: str):
    """A model file's student: a model file, or a run's last.keras (the training model, whose
    student is the layer named after the architecture)."""
    import keras

    from fer_core.training import trainer as _registers_layers  # noqa: F401  (the trainer's parts)

    try:
        return load_keras_model(path)
    except ModelError:
        try:
            trainer = keras.saving.load_model(path, compile=False, safe_mode=True)
            return trainer.get_layer(architecture)
        except Exception:  # noqa: BLE001  (the first, clearer message is the one to give)
            pass
        raise


def train(
    config: TrainConfig,
    dataset: Fer2013 | None = None,
    *,
    run_dir: str | Path | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    on_batch: Callable[[int, int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    verbose: int = 0,
) -> Path:
    """Train (or resume) a run and return its folder.

    If ``run_dir`` (or ``config.run_name``) names a run with a ``last.keras``, the run resumes
    from the epoch after its last finished one; ``config`` is written to its config.json.
    """
    import contextlib
    import shutil

    import keras

    from fer_core.training.checkpoints import RunCallback

    config.validate()
    strategy, is_chief, worker_index = distribution_from_env()
    if strategy is not None and run_dir is None and not config.run_name:
        raise ConfigError(
            "Multi-worker training (TF_CONFIG is set) needs a run name (--name), "
            "the same on every worker."
        )
    # The chief (or the only process) writes the run folder. Other workers read the chief's
    # folder to resume, and write to a scratch folder that is removed when they finish.
    source = _open_run(config, run_dir)
    run = source if is_chief else Run(source.path.parent / f".{source.name}.worker{worker_index}")
    run.path.mkdir(parents=True, exist_ok=True)
    run.clear_stop()
    if dataset is None:
        dataset = load_fer2013(config.data_path)
    dataset = crowd_labelled(dataset, config)
    x_train, y_train, t_train, x_val, y_val, t_val, val_split = prepare_training_splits(
        dataset, config
    )
    captured = 0
    if config.captured_faces:  # read afresh at every (re)start: a deleted person's go with them
        x_cap, y_cap = captured_training_faces(database_url(runs=config.runs_dir))
        captured = len(y_cap)
        x_train = np.concatenate([x_train, x_cap])
        y_train = np.concatenate([y_train, y_cap])
        t_train = np.concatenate([t_train, np.eye(NUM_CLASSES, dtype=t_train.dtype)[y_cap]])

    # Importing the trainer registers its layer and loss before a resume loads them.
    from fer_core.training.trainer import trainer_inputs

    keras.utils.set_random_seed(config.seed)
    weights = class_weights(y_train, config.class_weighting)
    training_images = int(len(y_train))
    # The teachers see each image once, before padding, so their cached probabilities do not
    # depend on the batch size or the seed.
    teacher = (
        teacher_probabilities(config, source, {"train": x_train, "val": x_val})
        if config.teacher
        else {"train": None, "val": None}
    )
    x_train, y_train, teacher["train"], t_train = pad_to_full_batches(
        x_train, y_train, config.batch_size, config.seed, teacher["train"], t_train
    )
    target_width = NUM_CLASSES * (2 if config.teacher else 1)
    state = source.state()
    state.pop("reason", None)  # why an earlier attempt failed: not this one's
    initial_epoch = 0
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        if source.last_model.is_file() and state.get("epochs_done"):
            saved = source.config()
            if saved and saved.get("architecture") != config.architecture:
                raise ConfigError(
                    f"Run {source.name} was trained as {saved.get('architecture')}; "
                    f"cannot resume it as {config.architecture}."
                )
            training_model = keras.saving.load_model(source.last_model, safe_mode=True)
            if (
                not isinstance(training_model.input, dict)
                or training_model.input["targets"].shape[-1] != target_width
            ):
                raise ConfigError(
                    f"Run {source.name}'s checkpoint was written by an older "
                    "version or with other teacher settings, and cannot be "
                    "resumed: start a new run (--init-from its best.keras keeps "
                    "its weights)."
                )
            initial_epoch = int(state["epochs_done"])
            inner = training_model.get_layer(config.architecture)
        else:
            training_model, inner = _build_training_model(config, target_width, t_train)
            if config.init_from:
                # Which bytes the run started from: the model card follows this link back
                # only while the file there is still the same one.

                state["init_from_sha256"] = file_sha256(config.init_from)
    run.write_config(config.to_dict())
    if not is_chief:
        for kept in (source.history_path, source.state_path):
            if kept.is_file():
                shutil.copyfile(kept, run.file(kept.name))

    # History: keep exactly the epochs the checkpoint holds (no gap, no duplicate).
    history = [r for r in run.history_rows() if int(r["epoch"]) <= initial_epoch]
    best = {
        "val_accuracy": float(state.get("best_val_accuracy", -1.0)),
        "epoch": int(state.get("best_epoch", 0)),
        "kind": state.get("best_kind", "weights"),
    }
    if initial_epoch >= config.epochs:
        return source.path

    data_used = {
        "source": Path(str(dataset.source)).name,
        "training_images": training_images,
        "labels": config.labels,
        "validation_split": val_split,
        "validation_images": int(len(y_val)),
        "captured_faces": captured,
    }
    steps = int(math.ceil(len(y_train) / config.batch_size))
    swa = None
    if config.swa_start:
        count = int(state.get("swa_count", 0))
        resumed = (
            keras.saving.load_model(run.swa_model, safe_mode=True)
            if count and run.swa_model.is_file()
            else None
        )
        swa = WeightAverage(inner, resume_from=resumed, count=count if resumed else 0)
    hooks = {"on_epoch": on_epoch, "on_batch": on_batch, "should_stop": should_stop}
    callback = RunCallback(
        run,
        config,
        inner,
        history,
        best,
        hooks,
        steps,
        swa,
        as_model_input(x_train),
        (x_val, y_val),
        source,
    )
    callbacks = [callback]
    if config.schedule == "plateau":
        # As the seed: cut the rate tenfold after a quarter of the early-stopping patience
        # without improvement (never under 2 epochs); 5 epochs when early stopping is off.
        patience = (
            max(2, config.early_stopping_patience // 4) if config.early_stopping_patience else 5
        )
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.1, patience=patience)
        )
    if config.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy", patience=config.early_stopping_patience
            )
        )
    train_inputs, y_train_hot = trainer_inputs(x_train, y_train, teacher["train"], t_train)
    val_inputs, y_val_hot = trainer_inputs(x_val, y_val, teacher["val"], t_val)
    run.write_state(
        {
            **state,
            "status": "running",
            "epochs_done": initial_epoch,
            "epochs": config.epochs,
            "best_val_accuracy": best["val_accuracy"],
            "best_epoch": best["epoch"],
            "pid": os.getpid(),
            "data": data_used,
            "updated": time.time(),
        }
    )
    started = time.time()
    if strategy is None:
        training_model.fit(
            train_inputs,
            y_train_hot,
            sample_weight=weights[y_train],
            validation_data=(val_inputs, y_val_hot),
            batch_size=config.batch_size,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            shuffle=True,
            callbacks=callbacks,
            verbose=verbose,
        )
    else:
        fit_multi_worker(
            strategy,
            training_model,
            config,
            initial_epoch,
            callback,
            train_inputs,
            y_train_hot,
            weights[y_train],
            val_inputs,
            y_val_hot,
            worker_index,
        )
    if callback.failure is not None:
        _fail_run(run, callback.failure, best, started)
        if not is_chief:
            shutil.rmtree(run.path, ignore_errors=True)
        failure = callback.failure
        raise WriteError(failure.name, failure.cause, resume=source.path) from failure.cause
    if not is_chief:
        shutil.rmtree(run.path, ignore_errors=True)
        return source.path
    if not run.path.is_dir():
        raise FerError(f"run folder {run.path} was deleted while it trained: nothing is kept")
    stopped = run.stop_requested() or (should_stop is not None and should_stop())
    final_state = run.state()
    final_state.update(
        status="stopped" if stopped else "finished",
        train_seconds=round(final_state.get("train_seconds", 0) + time.time() - started, 1),
        updated=time.time(),
    )
    final_state.pop("pid", None)
    run.write_state(final_state)
    if config.recalibrate_batch_norm and not stopped and run.best_model.is_file():
        run.set_stage("recalibrating")
        recalibrate_best(run.path, x_train, x_val, y_val)
    if run.best_model.is_file():
        run.set_stage("scoring")
        write_run_metrics(
            run.path, x_val, y_val, val_split, config.architecture, best["epoch"], len(history)
        )
    return run.path


def _fail_run(run: Run, failure: WriteError, best: dict, started: float) -> None:
    """A write failed while training (``failure`` says which file and why): record the run as
    failed with that reason. Its files are those of its last full epoch (each write is atomic,
    and the failed one left no temporary file), with ``best`` describing best.keras; ``fer
    train --run`` resumes it. The caller raises the error: the command line prints its one
    line."""
    try:
        state = run.state()
        state.update(
            status="failed",
            reason=str(failure),
            epochs_done=len(run.history()),  # the epochs whose checkpoint and row were written
            best_val_accuracy=best["val_accuracy"],
            best_epoch=best["epoch"],
            best_kind=best["kind"],
            train_seconds=round(state.get("train_seconds", 0) + time.time() - started, 1),
            updated=time.time(),
        )
        state.pop("pid", None)
        run.write_state(state)
    except OSError as exc:  # still no room even for state.json: the message says it all
        print(
            f"could not record the failure in {run.state_path.name} either: {exc.strerror or exc}",
            flush=True,
        )


def write_run_metrics(
    run_dir: str | Path,
    x_val: np.ndarray,
    y_val: np.ndarray,
    split: str,
    architecture: str,
    best_epoch: int,
    epochs_done: int,
) -> dict:
    """Evaluate the run's best.keras on the validation images into metrics.json."""

    run = Run(run_dir)
    model = load_keras_model(run.best_model)
    report = evaluate_images(model, x_val, y_val)
    report.update(
        split=split,
        architecture=architecture,
        parameters=int(model.count_params()),
        best_epoch=best_epoch,
        epochs_done=epochs_done,
    )
    write_json(run.metrics_path, report)
    return report


def recalibrate_best(
    run_dir: str | Path, x_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray
) -> dict:
    """Recompute the BatchNorm statistics of a run's best.keras on the plain training images
    and keep the result only if it scores higher on the validation images; the replaced file
    is kept as best_before_recalibration.keras.

    Images are (N, 48, 48) uint8. The outcome is recorded in state.json under
    "recalibration" and returned.
    """
    run = Run(run_dir)
    model = load_keras_model(run.best_model)
    before = accuracy(model, x_val, y_val)
    layers_done = recompute_batch_norm(model, as_model_input(x_train))
    after = accuracy(model, x_val, y_val) if layers_done else before
    result = {
        "val_accuracy_before": before,
        "val_accuracy_after": after,
        "batch_norm_layers": layers_done,
        "kept": bool(after > before),
        "training_images": int(len(x_train)),
    }
    if result["kept"]:
        save_keras_model(load_keras_model(run.best_model), run.file(BEST_BEFORE_RECALIBRATION))
        save_keras_model(model, run.best_model)
    kept = {"best_val_accuracy": after} if result["kept"] else {}
    run.update_state(recalibration=result, **kept)
    return result


__all__ = [
    "TrainConfig",
    "train",
    "learning_rate_at",
    "class_weights",
    "prepare_splits",
    "recalibrate_best",
    "write_run_metrics",
    "pad_to_full_batches",
    "prepare_training_splits",
    "crowd_labelled",
]
