"""Training: ``train(config)`` writes a resumable run folder.

Run folder layout (``runs/<name>/``):
    config.json     the TrainConfig that made the run
    history.csv     one row per finished epoch (epoch, loss, accuracy, val_loss, val_accuracy, lr)
    last.keras      model + optimizer after the last finished epoch (resume point)
    best.keras      the model with the best validation accuracy so far (no optimizer)
    swa.keras       runs with ``swa_start``: the running average of the weights (SWA)
    best_before_recalibration.keras
                    best.keras as training left it, when BatchNorm recalibration improved it
    state.json      epochs finished, best validation accuracy, status
    metrics.json    evaluation of best.keras on the validation split, when the run ends

Selection uses the validation split only (PublicTest, or a slice of Training when the data
has no PublicTest); PrivateTest is never touched here.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np

from .data import Fer2013, load_fer2013, stratified_subset
from .errors import ConfigError
from .labels import EMOTIONS, NUM_CLASSES
from .model import available_architectures, build_model, save_keras_model

RUN_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
STOP_FILE = "STOP"  # create this file in a run folder to stop it after the current batch
ACTIVE_FILE = "active.json"  # in the runs folder: which model the app uses
HISTORY_FIELDS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate",
                  "seconds", "swa_val_accuracy"]


@dataclass
class TrainConfig:
    architecture: str = "cnn_gru"
    model_kwargs: dict = field(default_factory=dict)
    data_path: str | None = None
    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 2
    schedule: str = "cosine"  # "cosine", "constant" or "plateau" (the seed's ReduceLROnPlateau)
    label_smoothing: float = 0.1
    class_weighting: str = "sqrt"  # "none", "sqrt" (1/sqrt(frequency)) or "inverse"
    train_subset: int | None = None  # stratified subset of Training, for short runs
    validation_subset: int | None = None
    early_stopping_patience: int = 0  # 0 disables early stopping
    rotation_degrees: float = 10.0
    shift_fraction: float = 0.1
    zoom_fraction: float = 0.1
    horizontal_flip: bool = True
    seed: int = 1337
    runs_dir: str = "runs"
    run_name: str | None = None
    # Fine-tuning: start from the weights of this .keras file (same architecture).
    init_from: str | None = None
    # Stochastic weight averaging: from this epoch (1-based) on, the weights at the end of each
    # epoch join a running average, whose BatchNorm statistics are recomputed on Training and
    # which competes with the plain weights for best.keras on the validation split. 0: off.
    swa_start: int = 0
    # When the run ends, recompute best.keras's BatchNorm statistics on the plain Training
    # images, and keep that version if it scores higher on the validation split.
    recalibrate_batch_norm: bool = True

    def validate(self) -> None:
        if self.architecture not in available_architectures():
            raise ConfigError(f"Unknown architecture {self.architecture!r}; choose one of "
                              f"{', '.join(available_architectures())}.")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive whole number, got {value!r}.")
        if self.batch_size % 2:
            # TensorFlow 2.21's oneDNN CPU kernels crash the process (SIGSEGV) when training
            # mini_xception on a batch of odd size; every batch is full (see
            # pad_to_full_batches), so an even batch size avoids that.
            raise ConfigError(f"batch_size must be even, got {self.batch_size}.")
        if not (0 < self.learning_rate < 1):
            raise ConfigError(f"learning_rate must lie between 0 and 1, got {self.learning_rate}.")
        if self.schedule not in ("cosine", "constant", "plateau"):
            raise ConfigError("schedule must be 'cosine', 'constant' or 'plateau'.")
        if not isinstance(self.swa_start, int) or not 0 <= self.swa_start <= self.epochs:
            raise ConfigError(f"swa_start must be 0 (off) or an epoch from 1 to {self.epochs}, "
                              f"got {self.swa_start!r}.")
        if self.init_from is not None and not Path(self.init_from).is_file():
            raise ConfigError(f"init_from: {self.init_from} is not a model file.")
        if self.class_weighting not in ("none", "sqrt", "inverse"):
            raise ConfigError("class_weighting must be 'none', 'sqrt' or 'inverse'.")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError("label_smoothing must lie in [0, 1).")
        for name in ("train_subset", "validation_subset"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < NUM_CLASSES):
                raise ConfigError(f"{name} must be at least {NUM_CLASSES} images, got {value!r}.")
        if self.run_name is not None:
            check_run_name(self.run_name)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"Unknown training settings: {', '.join(sorted(unknown))}.")
        return cls(**values)


def check_run_name(name: str) -> str:
    """A run name is a plain folder name: it can never escape the runs folder."""
    if not isinstance(name, str) or not RUN_NAME_PATTERN.match(name) or ".." in name:
        raise ConfigError(f"Run name {name!r} is not allowed: use letters, digits, '_', '-' "
                          "and '.', starting with a letter or digit (at most 64 characters).")
    return name


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_json(path: Path, payload) -> None:
    _atomic_write_text(Path(path), json.dumps(payload, indent=2, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_json(path: Path, default=None):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def class_weights(labels: np.ndarray, mode: str) -> np.ndarray:
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(np.float64)
    counts = np.maximum(counts, 1.0)
    if mode == "none":
        weights = np.ones(NUM_CLASSES)
    elif mode == "sqrt":
        weights = 1.0 / np.sqrt(counts)
    else:
        weights = 1.0 / counts
    # Normalise so that the average weight over the training rows is 1.
    weights = weights / (weights[labels].mean())
    return weights.astype(np.float32)


def learning_rate_at(config: TrainConfig, epoch: int) -> float:
    """Cosine (or constant) schedule with linear warm-up, a pure function of the epoch (so
    resume is exact)."""
    if epoch < config.warmup_epochs:
        return config.learning_rate * (epoch + 1) / (config.warmup_epochs + 1)
    if config.schedule == "constant":
        return config.learning_rate
    span = max(config.epochs - config.warmup_epochs, 1)
    progress = (epoch - config.warmup_epochs) / span
    return config.learning_rate * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))


def make_augmenter(config: TrainConfig):
    """Augmentation as Keras layers (run on the accelerator, any backend); active only in fit."""
    import keras
    from keras import layers

    steps = []
    if config.horizontal_flip:
        steps.append(layers.RandomFlip("horizontal", seed=config.seed))
    if config.rotation_degrees:
        steps.append(layers.RandomRotation(config.rotation_degrees / 360.0, fill_mode="reflect",
                                           seed=config.seed + 1))
    if config.shift_fraction:
        steps.append(layers.RandomTranslation(config.shift_fraction, config.shift_fraction,
                                              fill_mode="reflect", seed=config.seed + 2))
    if config.zoom_fraction:
        steps.append(layers.RandomZoom(config.zoom_fraction, fill_mode="reflect",
                                       seed=config.seed + 3))
    return keras.Sequential(steps, name="augment")


def prepare_splits(dataset: Fer2013, config: TrainConfig):
    """Training rows, and validation rows (PublicTest; else 10% of Training, stratified)."""
    x_train, y_train = dataset.split("Training")
    if len(y_train) == 0:
        raise ConfigError("The dataset has no Training rows to train on.")
    x_val, y_val = dataset.split("PublicTest")
    if len(y_val) == 0:
        rng = np.random.default_rng(config.seed)
        held = np.zeros(len(y_train), dtype=bool)
        for label in np.unique(y_train):
            members = np.flatnonzero(y_train == label)
            take = max(1, len(members) // 10)
            held[rng.choice(members, size=take, replace=False)] = True
        x_val, y_val = x_train[held], y_train[held]
        x_train, y_train = x_train[~held], y_train[~held]
    if config.train_subset:
        keep = stratified_subset(y_train, config.train_subset, config.seed)
        x_train, y_train = x_train[keep], y_train[keep]
    if config.validation_subset:
        keep = stratified_subset(y_val, config.validation_subset, config.seed)
        x_val, y_val = x_val[keep], y_val[keep]
    return x_train, y_train, x_val, y_val


def pad_to_full_batches(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int):
    """Repeat a few randomly chosen rows so the row count is a multiple of the batch size.

    With no partial last batch, every training batch has the same, even size: TensorFlow
    2.21's oneDNN kernels crash (SIGSEGV) on odd batch sizes for some models. At most
    batch_size - 1 rows (0.2% of FER2013 Training at batch 64) are seen twice an epoch.
    """
    remainder = len(labels) % batch_size
    if not remainder:
        return images, labels
    extra = np.random.default_rng(seed).choice(len(labels), batch_size - remainder,
                                               replace=batch_size - remainder > len(labels))
    return np.concatenate([images, images[extra]]), np.concatenate([labels, labels[extra]])


def as_model_input(images: np.ndarray) -> np.ndarray:
    """(N, 48, 48) uint8 -> (N, 48, 48, 1) float32 raw 0..255 (the model normalises)."""
    return np.asarray(images, dtype=np.float32)[..., None]


def _read_history(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _write_history(path: Path, rows: list[dict]) -> None:
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    _atomic_write_text(path, buffer.getvalue())


def new_run_dir(config: TrainConfig) -> Path:
    runs = Path(config.runs_dir)
    runs.mkdir(parents=True, exist_ok=True)
    if config.run_name:
        return runs / check_run_name(config.run_name)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"{config.architecture}-{stamp}"
    # os.mkdir is atomic: two runs started at once never share a folder.
    for suffix in [""] + [f"-{i}" for i in range(1, 1000)]:
        try:
            os.mkdir(runs / (base + suffix))
            return runs / (base + suffix)
        except FileExistsError:
            continue
    raise ConfigError(f"Could not create a new run folder under {runs}.")


def recompute_batch_norm(model, images: np.ndarray, batch_size: int = 256) -> int:
    """Set every BatchNormalization layer's moving statistics to the exact mean over
    ``images`` (float32, N x 48 x 48 x 1) of its per-batch statistics; return how many layers.

    The statistics a model keeps from training were gathered on augmented images (rotated,
    shifted, zoomed with reflected borders) under changing weights; recomputing them on the
    plain images with the final weights matches what the model sees at test time.
    """
    from keras import layers

    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    if not norms:
        return 0
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.moving_mean.assign(np.zeros(layer.moving_mean.shape, np.float32))
        layer.moving_variance.assign(np.ones(layer.moving_variance.shape, np.float32))
    try:
        for number, start in enumerate(range(0, len(images), batch_size), 1):
            for layer in norms:
                layer.momentum = 1.0 - 1.0 / number  # a cumulative mean over the batches
            model(images[start:start + batch_size], training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
    return len(norms)


class WeightAverage:
    """Stochastic weight averaging (Izmailov et al., 2018) for a run.

    ``update(model)`` adds the model's current trainable weights to a running mean, copies the
    mean into a twin model, recomputes the twin's BatchNorm statistics with one pass over the
    training images (a cumulative mean over batches, as the averaged weights never saw
    statistics of their own), measures it on the validation images and saves it as
    ``swa.keras``. The saved file is the resume point: its weights are the mean so far.
    """

    def __init__(self, template, run_dir: Path, x_train, x_val, y_val, count: int = 0,
                 batch_size: int = 256):
        # x_train: model input (N, 48, 48, 1) float32; x_val: (N, 48, 48) uint8 images.
        import keras

        self.run_dir = Path(run_dir)
        self.x_train, self.x_val, self.y_val = x_train, x_val, y_val
        self.batch_size = batch_size
        self.count = count
        saved = self.run_dir / "swa.keras"
        if count and saved.is_file():
            self.model = keras.saving.load_model(saved, safe_mode=True)
        else:
            self.count = 0
            self.model = keras.models.clone_model(template)
            self.model.set_weights(template.get_weights())
        self.mean = [np.array(v) for v in self.model.trainable_variables]

    def update(self, model) -> float:
        current = [np.array(v) for v in model.trainable_variables]
        self.count += 1
        if self.count == 1:
            self.mean = current
        else:
            self.mean = [m + (c - m) / self.count for m, c in zip(self.mean, current)]
        for variable, value in zip(self.model.trainable_variables, self.mean):
            variable.assign(value)
        recompute_batch_norm(self.model, self.x_train, self.batch_size)
        accuracy = _accuracy(self.model, self.x_val, self.y_val)
        save_keras_model(self.model, self.run_dir / "swa.keras")
        return accuracy


class _RunCallback:
    """Keras callback: history rows, checkpoints and state, all written atomically."""

    def __new__(cls, *args, **kwargs):
        import keras

        class Impl(keras.callbacks.Callback):
            def __init__(self, run_dir, config, inner_model, history, best, on_epoch,
                         on_batch, steps_per_epoch, should_stop, swa=None):
                super().__init__()
                self.swa = swa
                self.run_dir = run_dir
                self.config = config
                self.inner_model = inner_model
                self.history_rows = history
                self.best = best
                self.on_epoch = on_epoch
                self.on_batch = on_batch
                self.steps_per_epoch = steps_per_epoch
                self.should_stop = should_stop
                self.epoch_started = time.time()
                self.current_epoch = 0
                self.last_progress = 0.0

            def on_epoch_begin(self, epoch, logs=None):
                self.epoch_started = time.time()
                self.current_epoch = epoch
                lr = learning_rate_at(self.config, epoch)
                if self.config.schedule in ("cosine", "constant"):
                    self.model.optimizer.learning_rate.assign(lr)

            def on_train_batch_end(self, batch, logs=None):
                if self.on_batch is not None:
                    self.on_batch(self.current_epoch, batch + 1, self.steps_per_epoch)
                now = time.time()
                if now - self.last_progress >= 1.0 or batch + 1 == self.steps_per_epoch:
                    self.last_progress = now
                    write_json(self.run_dir / "progress.json", {
                        "epoch": self.current_epoch + 1, "epochs": self.config.epochs,
                        "batch": batch + 1, "steps": self.steps_per_epoch,
                        "epoch_started": self.epoch_started, "updated": now})
                if self._stop_requested():
                    self.model.stop_training = True

            def _stop_requested(self):
                if (self.run_dir / STOP_FILE).exists():
                    return True
                return self.should_stop is not None and self.should_stop()

            def on_epoch_end(self, epoch, logs=None):
                logs = dict(logs or {})
                row = {
                    "epoch": epoch + 1,
                    "loss": float(logs.get("loss", float("nan"))),
                    "accuracy": float(logs.get("accuracy", float("nan"))),
                    "val_loss": float(logs.get("val_loss", float("nan"))),
                    "val_accuracy": float(logs.get("val_accuracy", float("nan"))),
                    "learning_rate": float(np.asarray(
                        self.model.optimizer.learning_rate)),
                    "seconds": round(time.time() - self.epoch_started, 2),
                }
                if self.model.stop_training and self._stop_requested():
                    return  # stopped mid-epoch: keep the last full checkpoint
                if self.swa is not None and epoch + 1 >= self.config.swa_start:
                    row["swa_val_accuracy"] = self.swa.update(self.inner_model)
                    if (row["swa_val_accuracy"] > self.best["val_accuracy"]
                            and row["swa_val_accuracy"] >= row["val_accuracy"]):
                        self.best.update(val_accuracy=row["swa_val_accuracy"],
                                         epoch=epoch + 1, kind="swa")
                        save_keras_model(self.swa.model, self.run_dir / "best.keras")
                if row["val_accuracy"] > self.best["val_accuracy"]:
                    self.best.update(val_accuracy=row["val_accuracy"], epoch=epoch + 1,
                                     kind="weights")
                    save_keras_model(self.inner_model, self.run_dir / "best.keras")
                save_keras_model(self.model, self.run_dir / "last.keras")
                self.history_rows.append(row)
                _write_history(self.run_dir / "history.csv", self.history_rows)
                write_json(self.run_dir / "state.json", {
                    "epochs_done": epoch + 1, "epochs": self.config.epochs,
                    "best_val_accuracy": self.best["val_accuracy"],
                    "best_epoch": self.best["epoch"], "best_kind": self.best["kind"],
                    "swa_count": self.swa.count if self.swa is not None else 0,
                    "status": "running", "updated": time.time()})
                if self.on_epoch is not None:
                    self.on_epoch(row)

        return Impl(*args, **kwargs)


def train(config: TrainConfig, dataset: Fer2013 | None = None, *, run_dir: str | Path | None = None,
          on_epoch: Callable[[dict], None] | None = None,
          on_batch: Callable[[int, int, int], None] | None = None,
          should_stop: Callable[[], bool] | None = None, verbose: int = 0) -> Path:
    """Train (or resume) a run and return its folder.

    If ``run_dir`` (or ``config.run_name``) names an existing run with a ``last.keras``, the
    run resumes from the epoch after its last finished one.
    """
    import contextlib
    import shutil

    import keras

    config.validate()
    strategy, is_chief, worker_index = distribution_from_env()
    if strategy is not None and run_dir is None and not config.run_name:
        raise ConfigError("Multi-worker training (TF_CONFIG is set) needs a run name (--name), "
                          "the same on every worker.")
    if run_dir is None:
        run_dir = new_run_dir(config)
    # The chief (or the only process) writes the run folder. Other workers read the chief's
    # folder to resume, and write to a scratch folder that is removed when they finish.
    read_dir = Path(run_dir)
    run_dir = read_dir if is_chief else read_dir.parent / f".{read_dir.name}.worker{worker_index}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / STOP_FILE).unlink(missing_ok=True)
    if dataset is None:
        dataset = load_fer2013(config.data_path)
    x_train, y_train, x_val, y_val = prepare_splits(dataset, config)

    keras.utils.set_random_seed(config.seed)
    state = read_json(read_dir / "state.json", {}) or {}
    last = read_dir / "last.keras"
    initial_epoch = 0
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        if last.is_file() and state.get("epochs_done"):
            training_model = keras.saving.load_model(last, safe_mode=True)
            initial_epoch = int(state["epochs_done"])
            saved = read_json(read_dir / "config.json", {})
            if saved and saved.get("architecture") != config.architecture:
                raise ConfigError(f"Run {read_dir.name} was trained as "
                                  f"{saved.get('architecture')}; cannot resume it as "
                                  f"{config.architecture}.")
            inner = training_model.get_layer(config.architecture)
        else:
            inner = build_model(config.architecture, **config.model_kwargs)
            if config.init_from:
                _load_initial_weights(inner, config.init_from)
            training_model = keras.Sequential([make_augmenter(config), inner], name="trainer")
            training_model.build((None, 48, 48, 1))
            optimizer = keras.optimizers.AdamW(learning_rate=config.learning_rate,
                                               weight_decay=config.weight_decay)
            training_model.compile(
                optimizer=optimizer,
                loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                metrics=["accuracy"])
    write_json(run_dir / "config.json", asdict(config))
    if not is_chief:
        for name in ("history.csv", "state.json"):
            if (read_dir / name).is_file():
                shutil.copyfile(read_dir / name, run_dir / name)

    # History: keep exactly the epochs the checkpoint holds (no gap, no duplicate).
    history = [r for r in _read_history(run_dir / "history.csv")
               if int(r["epoch"]) <= initial_epoch]
    best = {"val_accuracy": float(state.get("best_val_accuracy", -1.0)),
            "epoch": int(state.get("best_epoch", 0)), "kind": state.get("best_kind", "weights")}
    if initial_epoch >= config.epochs:
        return run_dir

    weights = class_weights(y_train, config.class_weighting)
    x_train, y_train = pad_to_full_batches(x_train, y_train, config.batch_size, config.seed)
    steps = int(math.ceil(len(y_train) / config.batch_size))
    swa = None
    if config.swa_start:
        swa = WeightAverage(inner, run_dir, as_model_input(x_train), x_val, y_val,
                            count=int(state.get("swa_count", 0)))
    callback = _RunCallback(run_dir, config, inner, history, best, on_epoch, on_batch, steps,
                            should_stop, swa)
    callbacks = [callback]
    if config.schedule == "plateau":
        # As the seed: cut the rate tenfold after a quarter of the early-stopping patience
        # without improvement (never under 2 epochs); 5 epochs when early stopping is off.
        patience = (max(2, config.early_stopping_patience // 4)
                    if config.early_stopping_patience else 5)
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.1,
                                                           patience=patience))
    if config.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_accuracy",
                                                       patience=config.early_stopping_patience))
    y_train_hot = np.eye(NUM_CLASSES, dtype=np.float32)[y_train]
    y_val_hot = np.eye(NUM_CLASSES, dtype=np.float32)[y_val]
    write_json(run_dir / "state.json", {**state, "status": "running",
                                        "epochs_done": initial_epoch, "epochs": config.epochs,
                                        "best_val_accuracy": best["val_accuracy"],
                                        "best_epoch": best["epoch"], "pid": os.getpid(),
                                        "updated": time.time()})
    started = time.time()
    if strategy is None:
        training_model.fit(
            as_model_input(x_train), y_train_hot, sample_weight=weights[y_train],
            validation_data=(as_model_input(x_val), y_val_hot),
            batch_size=config.batch_size, epochs=config.epochs, initial_epoch=initial_epoch,
            shuffle=True, callbacks=callbacks, verbose=verbose)
    else:
        _fit_multi_worker(strategy, training_model, config, initial_epoch, callback,
                          as_model_input(x_train), y_train_hot, weights[y_train],
                          as_model_input(x_val), y_val_hot)
    if not is_chief:
        shutil.rmtree(run_dir, ignore_errors=True)
        return read_dir
    stopped = (run_dir / STOP_FILE).exists() or (should_stop is not None and should_stop())
    final_state = read_json(run_dir / "state.json", {}) or {}
    final_state.update(status="stopped" if stopped else "finished",
                       train_seconds=round(final_state.get("train_seconds", 0)
                                           + time.time() - started, 1), updated=time.time())
    final_state.pop("pid", None)
    write_json(run_dir / "state.json", final_state)
    if config.recalibrate_batch_norm and not stopped and (run_dir / "best.keras").is_file():
        recalibrate_best(run_dir, x_train, x_val, y_val)
    if (run_dir / "best.keras").is_file():
        split = "PublicTest" if np.any(dataset.usage == "PublicTest") else "Training (held out)"
        write_run_metrics(run_dir, x_val, y_val, split, config.architecture, best["epoch"],
                          len(history))
    return run_dir


def write_run_metrics(run_dir: str | Path, x_val: np.ndarray, y_val: np.ndarray, split: str,
                      architecture: str, best_epoch: int, epochs_done: int) -> dict:
    """Evaluate the run's best.keras on the validation images into metrics.json."""
    from .evaluate import evaluate_images
    from .model import load_keras_model

    model = load_keras_model(Path(run_dir) / "best.keras")
    report = evaluate_images(model, x_val, y_val)
    report.update(split=split, architecture=architecture, parameters=int(model.count_params()),
                  best_epoch=best_epoch, epochs_done=epochs_done)
    write_json(Path(run_dir) / "metrics.json", report)
    return report


def _accuracy(model, images: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of a Keras model on (N, 48, 48) uint8 images."""
    from .evaluate import predict_probabilities

    return float(np.mean(predict_probabilities(model, images).argmax(1) == labels))


def recalibrate_best(run_dir: str | Path, x_train: np.ndarray, x_val: np.ndarray,
                     y_val: np.ndarray) -> dict:
    """Recompute the BatchNorm statistics of a run's best.keras on the plain training images
    (``recompute_batch_norm``) and keep the result only if it scores higher on the
    validation images; the replaced file is kept as best_before_recalibration.keras.

    Images are (N, 48, 48) uint8. The outcome is recorded in state.json under
    "recalibration" and returned.
    """
    from .model import load_keras_model

    run_dir = Path(run_dir)
    best = run_dir / "best.keras"
    model = load_keras_model(best)
    before = _accuracy(model, x_val, y_val)
    layers_done = recompute_batch_norm(model, as_model_input(x_train))
    after = _accuracy(model, x_val, y_val) if layers_done else before
    result = {"val_accuracy_before": before, "val_accuracy_after": after,
              "batch_norm_layers": layers_done, "kept": bool(after > before),
              "training_images": int(len(x_train))}
    if result["kept"]:
        save_keras_model(load_keras_model(best), run_dir / "best_before_recalibration.keras")
        save_keras_model(model, best)
    state = read_json(run_dir / "state.json", {}) or {}
    state["recalibration"] = result
    if result["kept"]:
        state["best_val_accuracy"] = after
    write_json(run_dir / "state.json", state)
    return result


def _load_initial_weights(model, path: str | Path) -> None:
    """Copy the weights of the model file at ``path`` into ``model`` (fine-tuning)."""
    from .model import load_keras_model

    source = load_keras_model(path)
    try:
        model.set_weights(source.get_weights())
    except ValueError as exc:
        raise ConfigError(f"init_from: {path} does not have this architecture's weights "
                          f"({exc}).") from exc


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

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    is_chief = task_type == "chief" or (task_type == "worker" and index == 0
                                        and "chief" not in cluster)
    return strategy, is_chief, index


def _fit_multi_worker(strategy, training_model, config, initial_epoch, callback,
                      x_train, y_train, w_train, x_val, y_val):
    """Data-parallel training loop under MultiWorkerMirroredStrategy.

    Keras 3's ``fit`` fails under this strategy (keras-team/keras#20585), so the step is
    written out: each worker computes gradients on its shard, ``strategy.run`` all-reduces
    them, and the same run callback as ``fit`` writes checkpoints and history (chief only).
    """
    import tensorflow as tf

    optimizer = training_model.optimizer
    per_example_loss = type(training_model.loss)(label_smoothing=config.label_smoothing,
                                                 reduction=None)
    global_batch = config.batch_size
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA

    @tf.function
    def train_step(batch):
        def replica_step(x, y, w):
            with tf.GradientTape() as tape:
                probs = training_model(x, training=True)
                loss = tf.nn.compute_average_loss(per_example_loss(y, probs) * w,
                                                  global_batch_size=global_batch)
            variables = training_model.trainable_variables
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            hits = tf.cast(tf.equal(tf.argmax(probs, 1), tf.argmax(y, 1)), tf.float32)
            return loss, tf.reduce_sum(hits), tf.cast(tf.shape(x)[0], tf.float32)

        results = strategy.run(replica_step, args=batch)
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, r, axis=None) for r in results]

    callback.set_model(training_model)
    for epoch in range(initial_epoch, config.epochs):
        callback.on_epoch_begin(epoch)
        data = tf.data.Dataset.from_tensor_slices((x_train, y_train, w_train))
        data = data.shuffle(len(x_train), seed=config.seed + epoch).batch(global_batch)
        loss_sum = hits = seen = 0.0
        steps = 0
        for batch in strategy.experimental_distribute_dataset(data.with_options(options)):
            loss, batch_hits, batch_seen = train_step(batch)
            loss_sum, hits, seen = loss_sum + float(loss), hits + float(batch_hits), \
                seen + float(batch_seen)
            callback.on_train_batch_end(steps)
            steps += 1
            if training_model.stop_training:
                break
        # Weights are identical on every worker after the all-reduce, so each evaluates alone.
        probs = np.concatenate([np.asarray(training_model(x_val[i:i + 256], training=False))
                                for i in range(0, len(x_val), 256)])
        val_loss = float(np.mean(per_example_loss(y_val, probs)))
        val_accuracy = float(np.mean(probs.argmax(1) == y_val.argmax(1)))
        callback.on_epoch_end(epoch, {"loss": loss_sum / max(steps, 1),
                                      "accuracy": hits / max(seen, 1.0),
                                      "val_loss": val_loss, "val_accuracy": val_accuracy})
        if training_model.stop_training:
            break


def request_stop(run_dir: str | Path) -> None:
    """Ask a running training (in any process) to stop; its last full epoch is kept."""
    (Path(run_dir) / STOP_FILE).touch()


def set_active_model(model_path: str | Path | None, runs_dir: str | Path = "runs") -> None:
    """Make ``model_path`` the app's active model (``None``: back to the shipped default).

    The switch is one atomic rename of a small JSON file; model files are never overwritten.
    """
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    if model_path is None:
        (runs_dir / ACTIVE_FILE).unlink(missing_ok=True)
        return
    model_path = Path(model_path).resolve()
    if not model_path.is_file():
        raise ConfigError(f"{model_path} does not exist.")
    write_json(runs_dir / ACTIVE_FILE, {"model": str(model_path), "since": time.time()})


def get_active_model(runs_dir: str | Path = "runs") -> Path | None:
    """The model chosen with ``set_active_model``, or None for the shipped default."""
    active = read_json(Path(runs_dir) / ACTIVE_FILE, None)
    if not active or not isinstance(active, dict) or not active.get("model"):
        return None
    path = Path(active["model"])
    return path if path.is_file() else None


def list_runs(runs_dir: str | Path = "runs") -> list[dict]:
    """Summaries of the runs under ``runs_dir``, newest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    runs = []
    for folder in runs_dir.iterdir():
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        config = read_json(folder / "config.json", {}) or {}
        state = read_json(folder / "state.json", {}) or {}
        metrics = read_json(folder / "metrics.json", {}) or {}
        runs.append({
            "name": folder.name, "path": str(folder),
            "architecture": config.get("architecture", "?"),
            "epochs_done": state.get("epochs_done", 0), "epochs": config.get("epochs"),
            "status": state.get("status", "unknown"),
            "best_val_accuracy": state.get("best_val_accuracy"),
            "has_model": (folder / "best.keras").is_file(),
            "val_macro_f1": metrics.get("macro_f1"),
            "modified": folder.stat().st_mtime,
        })
    return sorted(runs, key=lambda r: r["modified"], reverse=True)


def read_history(run_dir: str | Path) -> list[dict]:
    return [{k: float(v) for k, v in row.items() if v not in ("", None)}
            for row in _read_history(Path(run_dir) / "history.csv")]


__all__ = ["TrainConfig", "train", "list_runs", "read_history", "check_run_name",
           "request_stop", "set_active_model", "get_active_model",
           "learning_rate_at", "class_weights", "recompute_batch_norm", "recalibrate_best",
           "WeightAverage", "EMOTIONS"]
