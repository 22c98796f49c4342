"""A training run's folder as one object (its files written through ``fer_core.storage``).

Every file name of a run folder is spelled here and nowhere else::

    runs/<name>/
        config.json       the TrainConfig of the run: the single source of its settings
        history.csv       one row per finished epoch
        state.json        epochs finished, best validation accuracy, status
        progress.json     the current epoch's batch progress (for the app)
        last.keras        model + optimizer after the last finished epoch (the resume point)
        best.keras        the best model on the validation split (no optimizer)
        swa.keras         with weight averaging: the running average of the weights
        teacher.npz       with distillation: the teachers' probabilities, computed once
        best_before_recalibration.keras
                          best.keras as training left it, when recalibration improved it
        metrics.json      best.keras on the validation split, when the run ends
        STOP              a stop request (any process may create it)
        job.json, train.log           the background training process and its output
        eval_job.json, evaluate.log   the background evaluation and its output
        evaluation.json, best.card.json   the evaluation report and best.keras's model card
        export/<run>-<sha16>.keras     immutable copies made when a run becomes the app's model
        .lock             serialises start, resume and stop of this run across processes
    runs/active.json      which model the app uses (see fer_core.service.active)
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import time
from pathlib import Path

from fer_core.errors import ConfigError
from fer_core.storage import atomic_write_text, file_lock, read_json, write_json

RUNS_DIR_ENV = "FER_RUNS_DIR"
# What a training process does, as progress.json's "stage" names it (fer_core.service.status
# turns it into words): an epoch's first batch (the data pipeline and, in the first epoch, the
# graph are built), its batches, validating, saving the epoch (weight average, checkpoints),
# and once the epochs are done, recalibrating batch norm and scoring the best model.
STAGES = ("first batch", "training", "validating", "saving", "recalibrating", "scoring")

CONFIG = "config.json"
HISTORY = "history.csv"
STATE = "state.json"
PROGRESS = "progress.json"
LAST = "last.keras"
TEACHER = "teacher.npz"
TEACHER_CACHE = ".teacher_cache"  # in the runs folder: teachers' probabilities, by key
BEST = "best.keras"
SWA = "swa.keras"
BEST_BEFORE_RECALIBRATION = "best_before_recalibration.keras"
METRICS = "metrics.json"
STOP = "STOP"
TRAIN_JOB = "job.json"
TRAIN_LOG = "train.log"
EVAL_JOB = "eval_job.json"
EVAL_LOG = "evaluate.log"
EVAL_REPORT = "evaluation.json"
EVAL_PROGRESS = "eval_progress.json"
EXPORT_DIR = "export"
LOCK = ".lock"
ACTIVE = "active.json"  # in the runs folder, not in a run

HISTORY_FIELDS = [
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "seconds",
    "swa_val_accuracy",
]
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


# ----------------------------------------------------------------------------- names


def check_run_name(name: str) -> str:
    """A run name is a plain folder name: it can never escape the runs folder."""
    if not isinstance(name, str) or not _RUN_NAME.fullmatch(name) or ".." in name:
        raise ConfigError(
            f"Run name {name!r} is not allowed: use letters, digits, '_', '-' "
            "and '.', starting with a letter or digit (at most 64 characters)."
        )
    return name


def new_run_name(architecture: str, when: float | None = None) -> str:
    return f"{architecture}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(when))}"


def runs_dir(default: str | os.PathLike = "runs") -> Path:
    """The runs folder: ``$FER_RUNS_DIR`` if set, else ``default`` (relative to the cwd)."""
    return Path(os.environ.get(RUNS_DIR_ENV) or default)


# ----------------------------------------------------------------------------- a run


class Run:
    """One run folder: where its files are, and reading and writing them."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Run) and self.path == other.path

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        return self.path / name

    config_path = property(lambda self: self.path / CONFIG)
    history_path = property(lambda self: self.path / HISTORY)
    state_path = property(lambda self: self.path / STATE)
    progress_path = property(lambda self: self.path / PROGRESS)
    last_model = property(lambda self: self.path / LAST)
    teacher_cache = property(lambda self: self.path / TEACHER)
    best_model = property(lambda self: self.path / BEST)
    swa_model = property(lambda self: self.path / SWA)
    metrics_path = property(lambda self: self.path / METRICS)
    stop_path = property(lambda self: self.path / STOP)
    export_dir = property(lambda self: self.path / EXPORT_DIR)

    # --- creation: os.mkdir is atomic, so two starts never share a folder
    @classmethod
    def create(cls, parent: str | os.PathLike, name: str) -> Run:
        """Create a new, empty run folder; ConfigError if the name is taken."""
        parent = Path(parent)
        parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(parent / check_run_name(name))
        except FileExistsError:
            raise ConfigError(
                f"A run named {name!r} already exists; choose another name, or resume that run."
            ) from None
        return cls(parent / name)

    @classmethod
    def create_unique(cls, parent: str | os.PathLike, base: str) -> Run:
        for suffix in [""] + [f"-{i}" for i in range(1, 1000)]:
            try:
                return cls.create(parent, base + suffix)
            except ConfigError:
                continue
        raise ConfigError(f"Could not create a new run folder under {parent}.")

    def exists(self) -> bool:
        return self.path.is_dir()

    # --- settings, state, history
    def config(self) -> dict:
        return read_json(self.config_path, {}) or {}

    def write_config(self, values: dict) -> None:
        write_json(self.config_path, values)

    def state(self) -> dict:
        return read_json(self.state_path, {}) or {}

    def write_state(self, state: dict) -> None:
        write_json(self.state_path, state)

    def update_state(self, **changes) -> dict:
        state = {**self.state(), **changes}
        self.write_state(state)
        return state

    def progress(self) -> dict | None:
        return read_json(self.progress_path, None)

    def write_progress(self, progress: dict) -> None:
        write_json(self.progress_path, progress)

    def set_stage(self, stage: str) -> None:
        """What the trainer does now (``STAGES``), kept in progress.json for the page. Only
        what the page shows: a failed write is skipped."""
        with contextlib.suppress(OSError):
            write_json(self.progress_path, {**(self.progress() or {}), "stage": stage})

    def metrics(self) -> dict | None:
        return read_json(self.metrics_path, None)

    def history_rows(self) -> list[dict]:
        """history.csv as written (strings)."""
        try:
            with open(self.history_path, newline="", encoding="utf-8") as handle:
                return list(csv.DictReader(handle))
        except OSError:
            return []

    def history(self) -> list[dict]:
        """history.csv with numbers as floats (empty cells left out)."""
        rows = []
        for row in self.history_rows():
            try:
                rows.append({k: float(v) for k, v in row.items() if v not in ("", None)})
            except (TypeError, ValueError):
                continue
        return rows

    def write_history(self, rows: list[dict]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.history_path, buffer.getvalue())

    # --- stop requests (any process; the trainer polls between batches)
    def request_stop(self) -> None:
        self.stop_path.touch()

    def clear_stop(self) -> None:
        self.stop_path.unlink(missing_ok=True)

    def stop_requested(self) -> bool:
        return self.stop_path.exists()

    # --- one lock per run for start, resume and stop
    def lock(self, timeout: float = 30.0):
        """Hold this run's lock (an advisory file lock, across processes and threads)."""
        return file_lock(self.path / LOCK, timeout, f"Run {self.name} is busy; try again.")

    def summary(self) -> dict:
        config, state, metrics = self.config(), self.state(), self.metrics() or {}
        return {
            "name": self.name,
            "path": str(self.path),
            "architecture": config.get("architecture", "?"),
            "epochs_done": state.get("epochs_done", 0),
            "epochs": config.get("epochs"),
            "status": state.get("status", "unknown"),
            "best_val_accuracy": state.get("best_val_accuracy"),
            "has_model": self.best_model.is_file(),
            "val_macro_f1": metrics.get("macro_f1"),
            "modified": self.path.stat().st_mtime,
        }


def list_runs(parent: str | os.PathLike = "runs") -> list[dict]:
    """Summaries of the runs under ``parent``, newest first."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    runs = []
    for folder in parent.iterdir():
        if folder.is_dir() and not folder.name.startswith(".") and not folder.is_symlink():
            with contextlib.suppress(OSError):
                runs.append(Run(folder).summary())
    return sorted(runs, key=lambda r: r["modified"], reverse=True)


def read_history(run_dir: str | os.PathLike) -> list[dict]:
    return Run(run_dir).history()


__all__ = [
    "Run",
    "list_runs",
    "read_history",
    "check_run_name",
    "new_run_name",
    "runs_dir",
    "HISTORY_FIELDS",
    "RUNS_DIR_ENV",
    "STAGES",
]
