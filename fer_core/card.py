"""The model card: ``<model>.card.json`` beside a model, written from measured numbers only.

``python -m fer_core evaluate --write-card`` writes it; the app's Model page shows it.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

from .inference import card_path_for, file_sha256, litert_path_for
from .labels import EMOTIONS
from .model import load_keras_model
from .runs import Run, write_json


def _data_fields(data: dict, config: dict) -> dict:
    """What the run trained and chose on, from what the run recorded (state.json's "data")."""
    if not data:  # a run from before runs recorded their data
        subset = config.get("train_subset")
        return {"data": "FER2013 Training split" + (f", stratified subset of {subset:,} images"
                                                    if subset else ""),
                "selection_split": "PublicTest"}
    return {"data": f"{data.get('source') or 'FER2013'}: Training, "
                    f"{int(data.get('training_images', 0)):,} images"
                    + (", a stratified subset" if config.get("train_subset") else ""),
            "selection_split": f"{data.get('validation_split', 'PublicTest')} "
                               f"({int(data.get('validation_images', 0)):,} images)"}


def write_model_card(model_path, test_report: dict, *, split: str, flip_average: bool,
                     selection: dict | None, run_dir=None, latency: dict | None = None,
                     data_source: str = "", calibration: dict | None = None,
                     training: dict | None = None) -> dict:
    """Write ``<model>.card.json`` beside the model from measured numbers (never by hand).

    ``training``: the section to keep when ``run_dir`` is not given (the model's previous
    card's, when its run folder is gone); ``calibration``: ``fer_core.calibration``'s report."""
    model_path = Path(model_path)
    keras_model = load_keras_model(model_path)
    training = dict(training or {}) if run_dir is None else {}
    if run_dir is not None:
        run = Run(run_dir)
        config, state, history = run.config(), run.state(), run.history()
        config.pop("data_path", None)
        config.pop("runs_dir", None)
        training = {
            "run": run.name, "config": config,
            "epochs_done": len(history), "best_epoch": state.get("best_epoch"),
            "best_val_accuracy": state.get("best_val_accuracy"),
            # Sum of the finished epochs' wall time (resumed runs included).
            "train_seconds": round(sum(row.get("seconds", 0.0) for row in history), 1),
            **_data_fields(state.get("data") or {}, config),
            "seed": config.get("seed"),
            # Which weights best.keras holds ("weights" of an epoch, or the "swa" average of
            # the epochs from swa_start to best_epoch), and the BatchNorm recalibration that
            # ended the run.
            "best_kind": state.get("best_kind", "weights"),
            "swa_snapshots": (int(state.get("best_epoch", 0)) - int(config.get("swa_start") or 0)
                              + 1 if state.get("best_kind") == "swa" else 0),
            "recalibration": state.get("recalibration"),
        }
        init_from = config.get("init_from")
        if init_from:  # a fine-tuning run: say what it started from, and count its time too
            base_dir = Path(init_from).parent
            if not base_dir.is_dir():  # a relative path from another folder: a sibling run
                base_dir = run.path.parent / base_dir.name
            base_history = Run(base_dir).history()
            base_seconds = round(sum(row.get("seconds", 0.0) for row in base_history), 1)
            training["initialised_from"] = {"file": init_from, "run": base_dir.name,
                                            "epochs_done": len(base_history),
                                            "train_seconds": base_seconds}
            training["total_train_seconds"] = round(training["train_seconds"] + base_seconds, 1)
    litert = litert_path_for(model_path)
    card = {
        "name": model_path.stem,
        "architecture": keras_model.name,
        "parameters": int(keras_model.count_params()),
        "input": "48x48x1 grey, raw 0..255 (normalised inside the model)",
        "classes": list(EMOTIONS),
        "files": {
            "keras": {"file": model_path.name, "bytes": model_path.stat().st_size,
                      "sha256": file_sha256(model_path)},
            **({"litert": {"file": litert.name, "bytes": litert.stat().st_size,
                           "sha256": file_sha256(litert)}} if litert.is_file() else {}),
        },
        "training": training,
        "flip_average": bool(flip_average),
        "selection": selection or {},
        "test": {"split": split, **test_report},
        **({"calibration": calibration} if calibration else {}),
        "latency": latency or {},
        "data_source": Path(data_source).name if data_source else "",
        "written_by": "python -m fer_core evaluate --write-card",
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "processor": platform.machine(),
                    "python": platform.python_version()},
    }
    write_json(card_path_for(model_path), card)
    return card


__all__ = ["write_model_card"]
