"""A training run's folder as one object, and the one atomic writer everyone uses.

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
    runs/active.json      which model the app uses (see fer_core.active)
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from .errors import ConfigError, FerError

RUNS_DIR_ENV = "FER_RUNS_DIR"

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
EXPORT_DIR = "export"
LOCK = ".lock"
ACTIVE = "active.json"  # in the runs folder, not in a run

HISTORY_FIELDS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate",
                  "seconds", "swa_val_accuracy"]
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


# ----------------------------------------------------------------------------- write failures

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class WriteError(FerError):
    """A file of a run could not be written (the disk is full, or another OS error). The
    atomic writer leaves the previous file as it was and no temporary file behind, so the run
    can be resumed once the cause is fixed. ``name``: the file; ``cause``: the OSError;
    ``resume``: the run folder, when the message should say how to resume it."""

    def __init__(self, name: str, cause: OSError, resume: str | os.PathLike | None = None):
        self.name, self.cause = name, cause
        how = f" (fer train --run {resume})" if resume is not None else ""
        super().__init__(write_failure_message(name, cause) + how)


def os_error_in(exc: BaseException | None) -> OSError | None:
    """The OSError behind ``exc``: itself, or one it was raised from or while handling (a
    library may wrap the disk's error in its own)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def is_disk_full(exc: BaseException | None) -> bool:
    error = os_error_in(exc)
    return error is not None and error.errno in DISK_FULL_ERRNOS


def write_failure_message(name: str, exc: BaseException) -> str:
    """One line: which file could not be saved, why, and what to do."""
    if is_disk_full(exc):
        return f"disk full while saving {name}: free space and resume"
    error = os_error_in(exc) or exc
    why = getattr(error, "strerror", None) or str(error) or type(error).__name__
    code = errno.errorcode.get(getattr(error, "errno", None) or -1)
    return (f"could not save {name} ({why}{f', {code}' if code else ''}): fix that and "
            "resume")


@contextlib.contextmanager
def saving(name: str):
    """Turn an OSError (or an error caused by one) while writing ``name`` into WriteError."""
    try:
        yield
    except WriteError:
        raise
    except Exception as exc:
        error = os_error_in(exc)
        if error is None:
            raise
        raise WriteError(name, error) from exc


# ----------------------------------------------------------------------------- atomic files


@contextlib.contextmanager
def temporary_beside(path: str | os.PathLike):
    """Yield a unique temporary path in ``path``'s folder (same suffix), removed at the end if
    it is still there. Its name comes from ``tempfile.mkstemp``, so threads and processes never
    share one, and it stays short whatever the target's name."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem[:60]}.", suffix=f".tmp{path.suffix[:20]}",
                               dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o644)
        yield Path(tmp)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; when the block succeeds it is renamed over
    ``path`` (readers see the old file or the new one, never half of one), when it fails it
    is removed. A symlink at ``path`` is refused rather than replaced by a plain file."""
    path = Path(path)
    if path.is_symlink():
        raise ConfigError(f"{path.name} is a symbolic link; refusing to replace it.")
    with temporary_beside(path) as tmp:
        yield tmp
        if path.is_symlink():  # it became one while the work was done
            raise ConfigError(f"{path.name} is a symbolic link; refusing to replace it.")
        os.replace(tmp, path)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "w"):
    """``atomic_path`` opened for writing; synced to disk before the rename."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_writer(path) as handle:
        handle.write(text)


def store_by_digest(source, folder: str | os.PathLike, prefix: str = "",
                    suffix: str = "") -> tuple[Path, str]:
    """Copy ``source`` (a path or a binary file object) into ``folder`` under a name made from
    its SHA-256 (``<prefix><sha[:16]><suffix>``, never from a user's name); return the path
    and the full digest. The same content is stored once; concurrent copies never collide."""
    import hashlib

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with temporary_beside(folder / f"incoming{suffix}") as tmp:
        reader = open(source, "rb") if isinstance(source, (str, os.PathLike)) else source
        try:
            with open(tmp, "wb") as writer:
                for chunk in iter(lambda: reader.read(1 << 20), b""):
                    digest.update(chunk)
                    writer.write(chunk)
        finally:
            if reader is not source:
                reader.close()
        target = folder / f"{prefix}{digest.hexdigest()[:16]}{suffix}"
        os.replace(tmp, target)
    return target, digest.hexdigest()


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_json(path: str | os.PathLike, payload) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, default=_json_default) + "\n")


def read_json(path: str | os.PathLike, default=None, max_bytes: int = 16 << 20):
    """A small JSON file's content, or ``default`` when it is missing, too big or broken."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            return default
        return json.loads(data.decode("utf-8"))
    except (OSError, ValueError):
        return default


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, timeout: float = 30.0, busy: str = "Busy; try again."):
    """Hold an exclusive advisory lock on ``path`` (created if needed); each holder opens its
    own descriptor, so it serialises threads of one process as well as processes."""
    import fcntl

    deadline = time.monotonic() + timeout
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ConfigError(busy) from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


# ----------------------------------------------------------------------------- names


def check_run_name(name: str) -> str:
    """A run name is a plain folder name: it can never escape the runs folder."""
    if not isinstance(name, str) or not _RUN_NAME.fullmatch(name) or ".." in name:
        raise ConfigError(f"Run name {name!r} is not allowed: use letters, digits, '_', '-' "
                          "and '.', starting with a letter or digit (at most 64 characters).")
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
    def create(cls, parent: str | os.PathLike, name: str) -> "Run":
        """Create a new, empty run folder; ConfigError if the name is taken."""
        parent = Path(parent)
        parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(parent / check_run_name(name))
        except FileExistsError:
            raise ConfigError(f"A run named {name!r} already exists; choose another name, or "
                              "resume that run.") from None
        return cls(parent / name)

    @classmethod
    def create_unique(cls, parent: str | os.PathLike, base: str) -> "Run":
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
            "name": self.name, "path": str(self.path),
            "architecture": config.get("architecture", "?"),
            "epochs_done": state.get("epochs_done", 0), "epochs": config.get("epochs"),
            "status": state.get("status", "unknown"),
            "best_val_accuracy": state.get("best_val_accuracy"),
            "has_model": self.best_model.is_file(), "val_macro_f1": metrics.get("macro_f1"),
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


__all__ = ["WriteError", "saving", "write_failure_message", "is_disk_full", "os_error_in",
           "Run", "list_runs", "read_history", "check_run_name", "new_run_name", "runs_dir",
           "temporary_beside", "atomic_path", "atomic_writer", "atomic_write_text",
           "store_by_digest",
           "write_json", "read_json", "file_lock", "HISTORY_FIELDS", "RUNS_DIR_ENV"]
