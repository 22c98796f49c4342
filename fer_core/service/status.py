"""What a page shows about a run or its evaluation, read from the run folder's files.

Nothing here starts or stops anything (that is ``fer_core.service.jobs``); a run started from a
terminal is followed just like one started from the app.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from fer_core.service.jobs import process_alive, training_pid
from fer_core.storage import read_json
from fer_core.training.runs import (
    EVAL_JOB,
    EVAL_LOG,
    EVAL_PROGRESS,
    EVAL_REPORT,
    TRAIN_JOB,
    TRAIN_LOG,
    Run,
    list_runs,
)


def estimate_eta(
    progress: dict | None, history: list[dict], epochs: int | None = None, now: float | None = None
) -> float | None:
    """Seconds left in the run, from the batch rate of the current epoch and the length of
    the finished epochs (which include validation); None when nothing is known yet."""
    if not progress:
        return None
    now = time.time() if now is None else now
    try:
        epoch = int(progress["epoch"])
        total = int(epochs or progress["epochs"])
        batch = int(progress["batch"])
        steps = int(progress["steps"])
        elapsed = float(progress["updated"]) - float(progress["epoch_started"])
    except (KeyError, TypeError, ValueError):
        return None
    if batch <= 0 or steps <= 0 or elapsed < 0:
        return None
    first_end = progress.get("first_batch_end")
    if first_end is not None:
        # The first batch builds the graph (seconds): the rate is measured after it.
        if batch < 2:
            return None
        per_batch = max(float(progress["updated"]) - float(first_end), 0.0) / (batch - 1)
    else:
        per_batch = elapsed / batch
    recent = [float(row["seconds"]) for row in history[-3:] if row.get("seconds")]
    epoch_seconds = sum(recent) / len(recent) if recent else per_batch * steps * 1.1
    # Validation takes the part of an epoch that is not training batches.
    validation = max(epoch_seconds - per_batch * steps, 0.0) if recent else per_batch * steps * 0.1
    finished_current = len(history) >= epoch  # the epoch's row is written: only later epochs
    this_epoch = 0.0 if finished_current else (steps - batch) * per_batch + validation
    later = max(total - epoch, 0) * epoch_seconds
    since_update = max(now - float(progress["updated"]), 0.0)
    return max(this_epoch + later - since_update, 0.0)


def tail(path: str | os.PathLike, max_bytes: int = 4000, lines: int = 12) -> str:
    """The last lines of a log (carriage-return progress lines collapsed to their last state)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    # A progress line is redrawn after '\r'; its last drawn state is the last non-empty part.
    cleaned = [
        ([part for part in line.split("\r") if part.strip()] or [""])[-1]
        for line in text.split("\n")
    ]
    cleaned = [line for line in cleaned if line.strip() and not _noise(line)]
    return "\n".join(cleaned[-lines:])


def _noise(line: str) -> bool:
    # TensorFlow's start-up chatter says nothing to a user.
    markers = (
        "oneDNN custom operations",
        "absl::InitializeLog",
        "cuda_",
        "TensorFlow binary",
        "rebuild TensorFlow",
        "Unable to register",
        "computation placer",
        "cpu_feature_guard",
        "XNNPACK delegate",
    )
    return any(marker in line for marker in markers)


@dataclass(frozen=True)
class RunStatus:
    """Everything a page shows about a training run, read from its folder (``run_status``).

    ``phase`` is one of ``PHASES``: ``starting`` (process up, data loading), ``training``,
    ``stopping``, ``finishing`` (the epochs are done; the process recalibrates batch norm and
    scores the best model), ``finished``, ``stopped``, ``interrupted`` (the process ended without
    finishing: killed or crashed; resumable), ``failed`` (ended before the first epoch, see
    ``log``; or a checkpoint or history write failed, e.g. a full disk: ``reason`` says which
    and why, and the run resumes from its last full epoch), ``idle`` (no job information)."""

    name: str
    path: str
    phase: str
    alive: bool  # the training process is running now
    pid: int | None
    config: dict  # config.json: the settings it was started with
    state: dict  # state.json as the trainer wrote it
    progress: dict | None  # progress.json, when it describes the current job
    history: list[dict]  # history.csv, one row per finished epoch
    epochs: int  # epochs asked for (0: unknown)
    epochs_done: int
    epoch: int | None  # the epoch running now
    batch_fraction: float | None  # of the epoch running now
    overall_fraction: float | None  # of the whole run
    eta_seconds: float | None
    best_val_accuracy: float | None
    best_epoch: int | None
    has_model: bool  # best.keras exists
    metrics: dict | None  # metrics.json: validation scores of the best model
    evaluation: dict | None  # the report of ``fer evaluate`` on this run, if any
    log: str  # the last lines of its log (and the failure's reason)
    started: float | None  # when the latest job started (epoch seconds)
    reason: str | None  # why a failed run failed
    stage: str | None = None  # what the process does now (fer_core.training.runs.STAGES)

    @property
    def activity(self) -> str:
        """The run's phase and what it does now, in words: the one description that the
        runs table, the run picker and the run's panel all show."""
        return describe_activity(self)


# The phases of a run whose process is up (the others describe how it ended).
ACTIVE_PHASES = ("starting", "training", "stopping", "finishing")
PHASES = (
    "starting",
    "training",
    "stopping",
    "finishing",
    "finished",
    "stopped",
    "interrupted",
    "failed",
    "idle",
)


@dataclass(frozen=True)
class EvaluationProgress:
    """How far a running evaluation is (``evaluation_progress``)."""

    fraction: float  # 0..1
    stage: str  # what it does now
    eta_seconds: float | None  # None until 5% is done


@dataclass(frozen=True)
class EvaluationStatus:
    """A run's ``fer evaluate`` (``evaluation_status``). ``phase``: ``none`` (never evaluated),
    ``running``, ``done``, ``stopped`` (cancelled) or ``failed``."""

    phase: str
    alive: bool
    job: dict | None  # eval_job.json: who started it, when, its pid
    report: dict | None  # the evaluation report, once done
    log: str
    progress: EvaluationProgress | None  # while running


def run_status(run_dir: str | os.PathLike, now: float | None = None) -> RunStatus:
    """A run's ``RunStatus``, read from its folder."""
    run = Run(run_dir)
    now = time.time() if now is None else now
    config, state, progress = run.config(), run.state(), run.progress() or {}
    job = read_json(run.file(TRAIN_JOB), None)
    history = run.history()
    pid = training_pid(run)
    alive = pid is not None
    if pid is None and job and job.get("pid"):
        pid = int(job["pid"])
    started = float(job["started"]) if job else None
    # Files from before this job started (a resumed run) do not describe it yet.
    fresh_state = bool(state) and (started is None or float(state.get("updated", 0)) >= started - 1)
    fresh_progress = bool(progress) and (
        started is None or float(progress.get("updated", 0)) >= started - 1
    )
    epochs = int(config.get("epochs") or state.get("epochs") or 0)
    if alive:
        if run.stop_requested():
            phase = "stopping"
        elif fresh_state and state.get("status") == "running":
            phase = "training"
        elif fresh_state and state.get("status") in ("finished", "stopped"):
            phase = "finishing"  # the epochs are done; it recalibrates, then scores
        else:
            phase = "starting"
    else:
        status = state.get("status")
        if job and not fresh_state:
            # The latest job ended before it trained a batch: stopped by the user, or failed.
            phase = "stopped" if job.get("terminated") else "failed"
        elif status in ("finished", "stopped", "failed"):
            phase = status  # "failed": training stopped on an error; state.json says why
        elif status == "running":
            phase = "interrupted"
        else:
            phase = "idle"
    epochs_done = int(state.get("epochs_done", len(history)) or 0)
    batch_fraction = None
    epoch_number = None
    if fresh_progress and phase in ("training", "stopping"):
        steps = int(progress.get("steps") or 0)
        batch_fraction = min(int(progress.get("batch", 0)) / steps, 1.0) if steps else None
        epoch_number = int(progress.get("epoch", epochs_done + 1))
    overall = None
    if epochs:
        if batch_fraction is not None and epoch_number is not None and epoch_number > epochs_done:
            overall = min((epoch_number - 1 + batch_fraction) / epochs, 1.0)
        else:
            overall = min(epochs_done / epochs, 1.0)
    eta = (
        estimate_eta(progress, history, epochs, now)
        if (fresh_progress and phase in ("training", "stopping"))
        else None
    )
    if eta is None and phase == "training" and history and epochs:
        # No batch progress (a run from an older fer_core): whole epochs from their length.
        recent = [float(row["seconds"]) for row in history[-3:] if row.get("seconds")]
        if recent:
            epoch_seconds = sum(recent) / len(recent)
            elapsed = max(now - float(state.get("updated", now)), 0.0)
            eta = max((epochs - epochs_done) * epoch_seconds - elapsed, 0.0)
    reason = state.get("reason") if phase == "failed" and fresh_state else None
    log = tail(run.file(TRAIN_LOG))
    if reason and reason not in log:  # a run started from a terminal has no train.log here
        log = f"{log}\n{reason}" if log else reason
    return RunStatus(
        name=run.name,
        path=str(run.path),
        phase=phase,
        alive=alive,
        pid=pid,
        config=config,
        state=state,
        progress=progress if fresh_progress else None,
        history=history,
        epochs=epochs,
        epochs_done=epochs_done,
        epoch=epoch_number,
        batch_fraction=batch_fraction,
        overall_fraction=overall,
        eta_seconds=eta,
        best_val_accuracy=state.get("best_val_accuracy"),
        best_epoch=state.get("best_epoch"),
        has_model=run.best_model.is_file(),
        metrics=run.metrics(),
        evaluation=read_json(run.file(EVAL_REPORT), None),
        log=log,
        started=started,
        reason=reason,
        stage=progress.get("stage") if fresh_progress and alive else None,
    )


STAGE_WORDS = {
    "first batch": "its first batch (the data pipeline, and in a first epoch the model, are built)",
    "validating": "validating",
    "saving": "saving the epoch",
    "recalibrating": "recalibrating batch norm",
    "scoring": "scoring the best model",
}


def describe_activity(status: RunStatus) -> str:
    """``RunStatus.activity``: "training · epoch 3/10, batch 120/449", "training · epoch 3/10:
    validating", "finishing: recalibrating batch norm", "starting: loading the data"..."""
    phase, stage = status.phase, status.stage
    if phase == "starting":
        return "starting: loading the data"
    if phase in ("training", "stopping"):
        epoch = status.epoch or status.epochs_done + 1
        where = f"epoch {epoch}/{status.epochs or '?'}"
        if stage == "training" and status.progress:
            where += (
                f", batch {status.progress.get('batch', 0)}/{status.progress.get('steps', '?')}"
            )
        elif stage in STAGE_WORDS:
            where += f": {STAGE_WORDS[stage]}"
        return f"{phase} · {where}"
    if phase == "finishing":
        return "finishing: " + STAGE_WORDS.get(stage or "", "the epochs are done")
    return phase


@dataclass(frozen=True)
class Pace:
    """How fast training goes on this machine, measured by a run that trained here."""

    run: str  # the run it was measured on
    architecture: str
    seconds_per_image: float  # an epoch's seconds (validation included) per training image
    epoch_seconds: float  # that run's median epoch
    images: int  # that run's training images

    def seconds(self, images: int, epochs: int) -> float:
        """About how long ``epochs`` epochs over ``images`` training images take."""
        return self.seconds_per_image * images * epochs


def training_pace(runs_dir: str | os.PathLike, architecture: str) -> Pace | None:
    """The pace of the newest run of ``architecture`` under ``runs_dir`` that finished an epoch
    (the median of its epochs); None when no such run is here (no estimate, rather than a
    number measured on another machine)."""
    for summary in list_runs(runs_dir):
        if summary["architecture"] != architecture:
            continue
        run = Run(summary["path"])
        images = int((run.state().get("data") or {}).get("training_images") or 0)
        seconds = sorted(float(row["seconds"]) for row in run.history() if row.get("seconds"))
        if images and seconds:
            median = seconds[len(seconds) // 2]
            return Pace(run.name, architecture, median / images, median, images)
    return None


# The stages of ``fer evaluate`` as its progress file names them, and the share of the work
# before each (loading the CSV and predicting dominate; latency is capped at 20 s).
EVAL_STAGES = (
    ("loading FER2013", 0.0, 0.35),
    ("evaluating on", 0.35, 0.45),
    ("calibrating on", 0.80, 0.10),
    ("measuring latency", 0.90, 0.10),
)


def evaluation_progress(
    progress: dict | None, started: float | None, now: float | None = None
) -> EvaluationProgress:
    """How far an evaluation is, from its progress file (``fer evaluate --progress``)."""
    now = time.time() if now is None else now
    fraction, stage = 0.0, "starting (loading TensorFlow)"
    progress = progress or {}
    name = str(progress.get("stage") or "")
    for prefix, before, share in EVAL_STAGES:
        if name.startswith(prefix):
            part = min(max(float(progress.get("fraction") or 0.0), 0.0), 1.0)
            fraction = before + share * part
            message = progress.get("message") or ""
            stage = f"{name}: {part * 100:.1f}%  {message}".strip() if part else name
            break
    elapsed = max(now - started, 0.0) if started else None
    eta = elapsed / fraction * (1 - fraction) if elapsed is not None and fraction >= 0.05 else None
    return EvaluationProgress(fraction=fraction, stage=stage, eta_seconds=eta)


def evaluation_status(run_dir: str | os.PathLike, now: float | None = None) -> EvaluationStatus:
    """A run's ``EvaluationStatus``, read from its folder."""
    run = Run(run_dir)
    job = read_json(run.file(EVAL_JOB), None)
    report = read_json(run.file(EVAL_REPORT), None)
    alive = bool(job) and process_alive(job.get("pid"))
    if alive:
        phase = "running"
    elif report:
        phase = "done"
    elif job and job.get("terminated"):
        phase = "stopped"
    elif job:
        phase = "failed"
    else:
        phase = "none"
    log = tail(run.file(EVAL_LOG))
    progress = (
        evaluation_progress(
            read_json(run.file(EVAL_PROGRESS), None), (job or {}).get("started"), now
        )
        if alive
        else None
    )
    return EvaluationStatus(
        phase=phase,
        alive=alive,
        job=job,
        report=report,
        log=log,
        progress=progress,
    )


__all__ = [
    "RunStatus",
    "Pace",
    "training_pace",
    "EvaluationStatus",
    "EvaluationProgress",
    "PHASES",
    "ACTIVE_PHASES",
    "describe_activity",
    "evaluation_progress",
    "run_status",
    "evaluation_status",
    "estimate_eta",
    "tail",
]
