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
from .quantize import litert_quantization
from .runs import Run
from .storage import write_json


def _data_fields(data: dict, config: dict) -> dict:
    """What the run trained and chose on, from what the run recorded (state.json's "data")."""
    if not data:  # a run from before runs recorded their data
        subset = config.get("train_subset")
        return {
            "data": "FER2013 Training split"
            + (f", stratified subset of {subset:,} images" if subset else ""),
            "selection_split": "PublicTest",
        }
    return {
        "data": f"{data.get('source') or 'FER2013'}: Training, "
        f"{int(data.get('training_images', 0)):,} images"
        + (", a stratified subset" if config.get("train_subset") else ""),
        "selection_split": f"{data.get('validation_split', 'PublicTest')} "
        f"({int(data.get('validation_images', 0)):,} images)",
    }


def model_lineage(
    init_from: str | None, sha256: str | None, runs_parent: Path, limit: int = 12
) -> list[dict]:
    """What a fine-tuned run started from, nearest first, back to a run from random weights.

    Each step is ``{"file", "run", "epochs_done", "train_seconds"}``. A link is followed
    through the run folder the file lies in (its history, and that run's own ``init_from``),
    or, for a model file outside a run folder, through the model card beside it. A link whose
    file no longer has the bytes the run recorded (``init_from_sha256``) ends the chain with
    ``"changed": true`` instead of describing a different model.
    """
    from .inference import read_card

    steps: list[dict] = []
    seen: set[str] = set()
    while init_from and len(steps) < limit:
        file = Path(init_from)
        if sha256 and (not file.is_file() or file_sha256(file) != sha256):
            steps.append(
                {
                    "file": str(init_from),
                    "run": file.parent.name,
                    "epochs_done": None,
                    "train_seconds": None,
                    "changed": True,
                }
            )
            break
        base_dir = file.parent if file.parent.is_dir() else runs_parent / file.parent.name
        base = Run(base_dir)
        history = base.history() if base.history_path.is_file() else []
        key = str(base_dir.resolve())
        if history and key not in seen:
            seen.add(key)
            steps.append(
                {
                    "file": str(init_from),
                    "run": base_dir.name,
                    "epochs_done": len(history),
                    "train_seconds": round(sum(row.get("seconds", 0.0) for row in history), 1),
                }
            )
            init_from = base.config().get("init_from")
            sha256 = base.state().get("init_from_sha256")
            runs_parent = base_dir.parent
            continue
        card = read_card(file) if file.is_file() else None
        training = (card or {}).get("training") or {}
        if training.get("run"):
            steps.append(
                {
                    "file": str(init_from),
                    "run": training["run"],
                    "epochs_done": training.get("epochs_done"),
                    "train_seconds": training.get("train_seconds"),
                }
            )
            earlier = training.get("lineage") or (
                [training["initialised_from"]] if training.get("initialised_from") else []
            )
            steps.extend(dict(step) for step in earlier[: limit - len(steps)])
        else:
            steps.append(
                {
                    "file": str(init_from),
                    "run": base_dir.name,
                    "epochs_done": None,
                    "train_seconds": None,
                }
            )
        break
    return steps


def add_whole_path(model_path, result: dict, command: str) -> dict:
    """Add one whole-path evaluation (``fer evaluate-pipeline``'s result) to the card beside
    the model, under the labels it was scored by; rows of the same detector, preset and
    variant are replaced, others kept."""
    from .errors import ModelError
    from .inference import DEFAULT_MODEL, read_card

    model_path = Path(model_path) if model_path else DEFAULT_MODEL
    card = read_card(model_path)
    if card is None:
        raise ModelError(
            f"{model_path.name} has no model card yet: write it first with "
            "`fer evaluate --write-card`."
        )
    if card.get("files", {}).get("keras", {}).get("sha256") != file_sha256(model_path):
        raise ModelError(
            f"{card_path_for(model_path).name} describes another file: write "
            "it again with `fer evaluate --write-card` first."
        )
    sections = card.setdefault("whole_path", {})
    labels = result.get("labels", "fer2013")
    previous = sections.get(labels) or {}
    if previous.get("split") not in (None, result["split"]):
        previous = {}
    key = ("detector", "preset", "variant")
    rows = {tuple(row.get(k) for k in key): row for row in previous.get("rows", [])}
    for row in result["rows"]:
        rows[tuple(row.get(k) for k in key)] = {k: v for k, v in row.items() if k != "records"}
    commands = [c for c in previous.get("commands", []) if c != command] + [command]
    sections[labels] = {
        "split": result["split"],
        "labels": labels,
        "faces": result["faces"],
        "date": result.get("date"),
        "commands": commands,
        "rows": list(rows.values()),
    }
    write_json(card_path_for(model_path), card)
    return card


def write_model_card(
    model_path,
    test_report: dict,
    *,
    split: str,
    flip_average: bool,
    selection: dict | None,
    run_dir=None,
    latency: dict | None = None,
    data_source: str = "",
    calibration: dict | None = None,
    training: dict | None = None,
    held_out: dict | None = None,
) -> dict:
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
            "run": run.name,
            "config": config,
            "epochs_done": len(history),
            "best_epoch": state.get("best_epoch"),
            "best_val_accuracy": state.get("best_val_accuracy"),
            # Sum of the finished epochs' wall time (resumed runs included).
            "train_seconds": round(sum(row.get("seconds", 0.0) for row in history), 1),
            **_data_fields(state.get("data") or {}, config),
            "seed": config.get("seed"),
            # Which weights best.keras holds ("weights" of an epoch, or the "swa" average of
            # the epochs from swa_start to best_epoch), and the BatchNorm recalibration that
            # ended the run.
            "best_kind": state.get("best_kind", "weights"),
            "swa_snapshots": (
                int(state.get("best_epoch", 0)) - int(config.get("swa_start") or 0) + 1
                if state.get("best_kind") == "swa"
                else 0
            ),
            "recalibration": state.get("recalibration"),
        }
        lineage = model_lineage(
            config.get("init_from"), state.get("init_from_sha256"), run.path.parent
        )
        if lineage:  # a fine-tuning run: say what it started from, and count its time too
            training["initialised_from"] = lineage[0]
            training["lineage"] = lineage
        parents = [
            model_lineage(item.get("file"), item.get("sha256"), run.path.parent)
            for item in state.get("averaged_from") or []
        ]
        if parents:  # a model soup: every model it averages, each with its own lineage
            training["averaged_from"] = parents
        if lineage or parents:
            # Each run once: the averaged models share the runs they were fine-tuned from.
            steps = {
                (step.get("run"), step.get("epochs_done"), step.get("train_seconds")): step
                for chain in [lineage, *parents]
                for step in chain
            }
            training["total_train_seconds"] = round(
                training["train_seconds"]
                + sum(step.get("train_seconds") or 0.0 for step in steps.values()),
                1,
            )
    litert = litert_path_for(model_path)
    from .inference import read_card

    previous = read_card(model_path) or {}
    same_file = previous.get("files", {}).get("keras", {}).get("sha256") == file_sha256(model_path)
    card = {
        "name": model_path.stem,
        "architecture": keras_model.name,
        "parameters": int(keras_model.count_params()),
        "input": "48x48x1 grey, raw 0..255 (normalised inside the model)",
        "classes": list(EMOTIONS),
        "files": {
            "keras": {
                "file": model_path.name,
                "bytes": model_path.stat().st_size,
                "sha256": file_sha256(model_path),
            },
            **(
                {
                    "litert": {
                        "file": litert.name,
                        "bytes": litert.stat().st_size,
                        "sha256": file_sha256(litert),
                        "quantization": litert_quantization(litert),
                    }
                }
                if litert.is_file()
                else {}
            ),
        },
        "training": training,
        "flip_average": bool(flip_average),
        "selection": selection or {},
        "test": {"split": split, **test_report},
        # Beyond FER2013's labels: without the test images that copy a Training image, and
        # agreement with FER+'s ten raters (fer_core.evaluate.held_out_reports).
        **({"held_out": {"split": split, **held_out}} if held_out else {}),
        **({"calibration": calibration} if calibration else {}),
        "latency": latency or {},
        # Whole-path results (fer evaluate-pipeline --write-card) stay while the file does.
        **(
            {"whole_path": previous["whole_path"]}
            if same_file and previous.get("whole_path")
            else {}
        ),
        "data_source": Path(data_source).name if data_source else "",
        "written_by": "python -m fer_core evaluate --write-card",
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "python": platform.python_version(),
        },
    }
    write_json(card_path_for(model_path), card)
    return card


__all__ = ["write_model_card"]
