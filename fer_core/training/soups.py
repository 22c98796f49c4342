"""Model soups: the mean of the weights of models fine-tuned from one start, as a run folder."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from fer_core.data.fer2013 import Fer2013
from fer_core.errors import ConfigError, ModelError
from fer_core.models.architectures import load_keras_model, save_keras_model
from fer_core.models.inference import file_sha256
from fer_core.training.averaging import recompute_batch_norm
from fer_core.training.config import TrainConfig
from fer_core.training.loop import as_model_input, crowd_labelled, prepare_splits, write_run_metrics
from fer_core.training.runs import Run

SOUP_SHARED_SETTINGS = (
    "label_smoothing",
    "class_weighting",
    "teacher",
    "distill_temperature",
    "distill_weight",
    "mix",
    "mix_alpha",
    "labels",
    "ferplus_path",
    "path_augment",
)


def average_models(
    paths: list[str | Path], dataset: Fer2013, run_dir: str | Path, data_path: str | None = None
) -> dict:
    """Average the weights of models fine-tuned from a common start (a "model soup",
    Wortsman et al., 2022) into a new run folder, and recompute its BatchNorm statistics on
    the plain Training images.

    The run folder holds best.keras, state.json (``averaged_from``: each file and its
    sha256, for the model card's lineage), config.json (the architecture and the settings
    in ``SOUP_SHARED_SETTINGS`` that all parents' runs share; no epochs, since a soup cannot
    be resumed) and metrics.json (on PublicTest).
    """

    if len(paths) < 2:
        raise ConfigError("Give at least two models to average.")
    run = Run(run_dir)
    if run.path.exists() and any(run.path.iterdir()):
        raise ConfigError(f"{run.path.name} already exists: choose a new run name.")
    models = [load_keras_model(path) for path in paths]
    first = models[0]
    for path, model in zip(paths[1:], models[1:]):
        if model.name != first.name or [w.shape for w in model.weights] != [
            w.shape for w in first.weights
        ]:
            raise ModelError(
                f"{Path(path).name} is not a {first.name} of the same shape as "
                f"{Path(paths[0]).name}: only models of one architecture average."
            )
    first.set_weights(
        [np.mean(values, axis=0) for values in zip(*(model.get_weights() for model in models))]
    )
    # The settings the weights learnt under, where every parent's run says the same: the
    # calibration takes the label smoothing's floor off, the card names the teachers, and a
    # soup of crowd models is recalibrated and scored by the crowd, as its parents were.
    # (No epochs: a soup is not a run that can be resumed.)
    parents = [Run(Path(path).parent).config() for path in paths]
    shared = {
        key: parents[0][key]
        for key in SOUP_SHARED_SETTINGS
        if parents[0].get(key) is not None
        and all(parent.get(key) == parents[0][key] for parent in parents)
    }
    config = TrainConfig(
        architecture=first.name,
        labels=shared.get("labels", "fer2013"),
        ferplus_path=shared.get("ferplus_path"),
    )
    x_train, _, x_val, y_val, split = prepare_splits(crowd_labelled(dataset, config), config)
    layers_done = recompute_batch_norm(first, as_model_input(x_train))
    run.path.mkdir(parents=True, exist_ok=True)
    save_keras_model(first, run.best_model)
    run.write_config(
        {"architecture": first.name, **shared, **({"data_path": data_path} if data_path else {})}
    )
    state = {
        "status": "finished",
        "epochs_done": 0,
        "best_epoch": 0,
        "best_kind": "average",
        "averaged_from": [{"file": str(path), "sha256": file_sha256(path)} for path in paths],
        "recalibration": {
            "batch_norm_layers": layers_done,
            "kept": True,
            "training_images": int(len(x_train)),
        },
        "data": {
            "source": Path(str(dataset.source)).name,
            "training_images": int(len(x_train)),
            "validation_split": split,
            "validation_images": int(len(y_val)),
        },
        "updated": time.time(),
    }
    run.write_state(state)
    report = write_run_metrics(run.path, x_val, y_val, split, first.name, 0, 0)
    run.update_state(best_val_accuracy=report["accuracy"])
    return report


__all__ = ["average_models", "SOUP_SHARED_SETTINGS"]
