"""How a model was made, read from the training runs behind it: a run's settings, epochs,
time and data, and the chain of runs it was fine-tuned or averaged from. The model card
(``fer_core.models.card``) records what this returns; it reads no run folder itself."""

from __future__ import annotations

from pathlib import Path

from fer_core.models.card import read_card
from fer_core.models.inference import file_sha256
from fer_core.training.runs import Run


def _data_fields(data: dict, config: dict) -> dict:
    """What the run trained and chose on, from what the run recorded (state.json's "data")."""
    if not data:  # a run from before runs recorded their data
        subset = config.get("train_subset")
        return {
            "data": "FER2013 Training split"
            + (f", stratified subset of {subset:,} images" if subset else ""),
            "selection_split": "PublicTest",
        }
    captured = int(data.get("captured_faces") or 0)
    return {
        "data": f"{data.get('source') or 'FER2013'}: Training, "
        f"{int(data.get('training_images', 0)) - captured:,} images"
        + (", a stratified subset" if config.get("train_subset") else "")
        + (f", and {captured:,} faces captured on the Live page" if captured else ""),
        "selection_split": f"{data.get('validation_split', 'PublicTest')} "
        f"({int(data.get('validation_images', 0)):,} images)",
        "captured_faces": captured,
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
        training = card.training if card else {}
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


def training_section(run_dir) -> dict:
    """The card's "training" section for the model a run folder made."""
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
    lineage = model_lineage(config.get("init_from"), state.get("init_from_sha256"), run.path.parent)
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
    return training


__all__ = ["training_section", "model_lineage"]
