"""Which model the app uses: the shipped one, or a run's model that someone made active.

One pointer file (``runs/active.json``) says which; switching is one atomic rename, and the
model files themselves are never overwritten. ``active_choice`` is the one place that reads it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from fer_core.errors import ConfigError, ModelError
from fer_core.evaluation.latency import measure_classifier_latency
from fer_core.models.card import ModelCard, card_path_for, read_card
from fer_core.models.inference import (
    DEFAULT_MODEL,
    SHIPPED_MODELS,
    EmotionModel,
    export_litert,
    file_sha256,
    litert_path_for,
)
from fer_core.service.status import EvaluationStatus, RunStatus
from fer_core.storage import read_json, store_by_digest, write_json
from fer_core.training.runs import ACTIVE, Run, list_runs


@dataclass(frozen=True)
class ActiveChoice:
    """``path`` None means the shipped model; ``problem`` says why a chosen model that cannot
    be used was passed over (the shipped model is used instead)."""

    path: Path | None
    source: str  # "shipped" or "run"
    problem: str | None = None


def active_choice(runs_dir: str | os.PathLike = "runs") -> ActiveChoice:
    pointer = Path(runs_dir) / ACTIVE
    if not pointer.exists():
        return ActiveChoice(None, "shipped")
    chosen = read_json(pointer, None)
    if not isinstance(chosen, dict) or not isinstance(chosen.get("model"), str):
        return ActiveChoice(None, "shipped", "The active-model file is not valid.")
    path = Path(chosen["model"])
    if not path.is_file():
        return ActiveChoice(None, "shipped", f"The active model {path.name} no longer exists.")
    return ActiveChoice(path, "run")


def set_active_model(
    model_path: str | os.PathLike | None, runs_dir: str | os.PathLike = "runs"
) -> None:
    """Make ``model_path`` the app's active model (``None``: back to the shipped default)."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    if model_path is None:
        (runs_dir / ACTIVE).unlink(missing_ok=True)
        return
    model_path = Path(model_path).resolve()
    if not model_path.is_file():
        raise ConfigError(f"{model_path.name} does not exist.")
    write_json(runs_dir / ACTIVE, {"model": str(model_path), "since": time.time()})


def get_active_model(runs_dir: str | os.PathLike = "runs") -> Path | None:
    """The chosen model's path, or None for the shipped default."""
    return active_choice(runs_dir).path


def activate_run(run_dir: str | os.PathLike, runs_dir: str | os.PathLike = "runs") -> Path:
    """Make a run's best model the app's active model.

    best.keras is copied to ``export/<run>-<sha16>.keras`` (a file that never changes again,
    even if the run is resumed), its LiteRT fast path is exported and checked beside it, the
    run's model card is carried over when it describes exactly this model, and only then is
    the active-model pointer switched. The shipped model is never touched.
    """

    run = Run(Path(run_dir).resolve())
    if not run.best_model.is_file():
        raise ModelError(f"Run {run.name} has no best.keras yet: it needs one finished epoch.")
    # A copy named by its content: a file that never changes, even if best.keras is
    # replaced while this runs or the run is resumed later.
    target, digest = store_by_digest(run.best_model, run.export_dir, f"{run.name}-", ".keras")
    if not litert_path_for(target).is_file():
        export_litert(target)  # raises ModelError if the fast path disagrees with Keras
    run_card = read_card(run.best_model)
    if run_card and run_card.keras_sha256 == digest:
        card = run_card.to_json()
        litert = litert_path_for(target)
        card["name"] = target.stem
        card["files"] = {
            "keras": {"file": target.name, "bytes": target.stat().st_size, "sha256": digest},
            "litert": {
                "file": litert.name,
                "bytes": litert.stat().st_size,
                "sha256": file_sha256(litert),
            },
        }
        # The run's card timed best.keras with Keras (a run folder has no fast path); the app
        # runs this copy through LiteRT, so its latency is measured again, on what runs.
        card["latency"] = _measure_latency(target, run_card.flip_average)
        write_json(card_path_for(target), card)
    set_active_model(target, runs_dir)
    return target


def _measure_latency(model_path: Path, flip_average) -> dict:
    model = EmotionModel(model_path, flip_average=bool(flip_average))
    return {
        "batch_1": measure_classifier_latency(model, 1, max_seconds=10),
        "batch_32": measure_classifier_latency(model, 32, repeats=100, max_seconds=10),
    }


def card_public_score(card: ModelCard | None) -> dict | None:
    """A model's accuracy on PublicTest, from its card: the card's test report when it was
    measured there, else the PublicTest figure its flip-averaging choice recorded. None when
    the card has neither. ``{"accuracy", "images", "where"}``."""
    if card is None:
        return None
    test = card.test
    if test.get("split") == "PublicTest" and test.get("accuracy") is not None:
        return {
            "accuracy": float(test["accuracy"]),
            "images": test.get("n"),
            "where": "PublicTest (model card)",
        }
    selection = card.selection
    if selection.get("split") == "PublicTest":
        key = "accuracy_flip_average" if selection.get("flip_average") else "accuracy_plain"
        if selection.get(key) is not None:
            return {
                "accuracy": float(selection[key]),
                "images": None,
                "where": "PublicTest (model card)",
            }
    return None


def run_public_score(status: RunStatus, evaluation: EvaluationStatus) -> dict | None:
    """A run's accuracy on PublicTest: its evaluation when done (all of PublicTest), else its
    best validation accuracy (PublicTest or the subset of it the run validated on)."""
    report = evaluation.report if evaluation.phase == "done" else None
    if report and report.get("split") == "PublicTest" and report.get("accuracy") is not None:
        return {
            "accuracy": float(report["accuracy"]),
            "images": report.get("n"),
            "where": "PublicTest (its evaluation)",
        }
    best = status.best_val_accuracy
    if best is not None and best >= 0:
        subset = status.config.get("validation_subset")
        return {
            "accuracy": float(best),
            "images": subset,
            "where": "its validation images" + (" (a PublicTest subset)" if subset else ""),
        }
    return None


def activation_warning(candidate: dict | None, current: dict | None) -> bool:
    """Whether making ``candidate`` the app's model needs a confirmation: it scores worse than
    the model in use, or its score is unknown."""
    if candidate is None:
        return True
    return current is not None and candidate["accuracy"] < current["accuracy"]


def use_shipped_model(runs_dir: str | os.PathLike = "runs") -> None:
    set_active_model(None, runs_dir)


@dataclass(frozen=True)
class ModelSource:
    """A trained model a new run can start from or distil from: the shipped model or a run's
    best.keras. Pages offer these by ``key``; the path never comes from the visitor."""

    key: str  # "shipped" or "run:<name>"
    label: str
    path: Path
    architecture: str


def model_sources(runs_dir: str | os.PathLike = "runs") -> list[ModelSource]:
    """The shipped model, then every run under ``runs_dir`` that has a best.keras (newest
    first)."""

    sources = []
    if DEFAULT_MODEL.is_file():
        card = read_card(DEFAULT_MODEL)
        sources.append(
            ModelSource(
                "shipped",
                f"the shipped model ({DEFAULT_MODEL.stem})",
                DEFAULT_MODEL,
                str((card.architecture if card else None) or "cnn_gru"),
            )
        )
    for key, path in SHIPPED_MODELS.items():
        if path != DEFAULT_MODEL and path.is_file():
            card = read_card(path)
            sources.append(
                ModelSource(
                    f"shipped:{key}",
                    f"the shipped alternative ({path.stem})",
                    path,
                    str((card.architecture if card else None) or "cnn_gru"),
                )
            )
    for summary in list_runs(runs_dir):
        if summary["has_model"]:
            best = summary["best_val_accuracy"]
            score = (
                f", val {100 * best:.1f}%" if isinstance(best, (int, float)) and best >= 0 else ""
            )
            sources.append(
                ModelSource(
                    f"run:{summary['name']}",
                    f"run {summary['name']} ({summary['architecture']}{score})",
                    Run(summary["path"]).best_model,
                    str(summary["architecture"]),
                )
            )
    return sources


def check_start_from(source: ModelSource | None, architecture: str) -> None:
    """A run can only start from weights of its own architecture."""
    if source is not None and source.architecture != architecture:
        raise ConfigError(
            f"{source.label} is a {source.architecture} model; a {architecture} "
            "run cannot start from its weights. Choose a model of the same "
            "architecture, or random weights."
        )


__all__ = [
    "card_public_score",
    "run_public_score",
    "activation_warning",
    "ActiveChoice",
    "active_choice",
    "set_active_model",
    "get_active_model",
    "activate_run",
    "use_shipped_model",
    "ModelSource",
    "model_sources",
    "check_start_from",
]
