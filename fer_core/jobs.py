"""Background jobs for the app: training and evaluation in their own processes.

A job is ``python -m fer_core train|evaluate ...`` started with ``subprocess.Popen`` in a new
session, its output logged into the run folder. The app (or a notebook) only reads files the
job writes (``state.json``, ``progress.json``, ``history.csv``, ``evaluation.json``), so a page
can be reloaded, closed or served to several people while the job keeps running, and a job
started elsewhere (for example from the command line) is followed just the same.

Run folder files written here::

    job.json            pid, command and start time of the training process
    train.log           its output
    eval_job.json       the same for the evaluation process
    evaluate.log        its output
    evaluation.json     the evaluation report (accuracy, macro-F1, per class, confusion matrix)
    best.card.json      the model card of best.keras (written by the evaluation)
    export/<run>-<sha8>.keras (+ .tflite, .card.json)   an immutable copy made by activate_run
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from .errors import ConfigError, DatasetError, FerError, ModelError
from .train import (STOP_FILE, TrainConfig, check_run_name, get_active_model, read_history,
                    read_json, request_stop, set_active_model, write_json)

RUNS_DIR_ENV = "FER_RUNS_DIR"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
TRAIN_JOB = "job.json"
TRAIN_LOG = "train.log"
EVAL_JOB = "eval_job.json"
EVAL_LOG = "evaluate.log"
EVAL_REPORT = "evaluation.json"
EXPORT_DIR = "export"

# Popen objects of the children this process started, so finished children are reaped
# (a finished child that is never waited for stays a zombie and looks alive).
_CHILDREN: dict[int, subprocess.Popen] = {}
_CHILDREN_LOCK = threading.Lock()


def runs_dir(default: str | os.PathLike = "runs") -> Path:
    """The runs folder: ``$FER_RUNS_DIR`` if set, else ``default`` (relative to the cwd)."""
    return Path(os.environ.get(RUNS_DIR_ENV) or default)


def new_run_name(architecture: str, when: float | None = None) -> str:
    return f"{architecture}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(when))}"


# ----------------------------------------------------------------------------- processes


def process_alive(pid: int | None, expect: str = "fer_core") -> bool:
    """True while process ``pid`` runs (not a zombie) and its command line mentions ``expect``
    (so a recycled pid is not mistaken for the job)."""
    if not pid:
        return False
    pid = int(pid)
    with _CHILDREN_LOCK:
        child = _CHILDREN.get(pid)
        if child is not None:
            if child.poll() is not None:
                _CHILDREN.pop(pid, None)
                return False
            return True
    try:
        import psutil

        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            _reap(pid)
            return False
        return not expect or any(expect in part for part in process.cmdline())
    except ImportError:  # pragma: no cover - psutil is a dependency; keep a fallback
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    except Exception:  # psutil.NoSuchProcess, AccessDenied, ...
        return False


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass


def _spawn(command: list[str], log_path: Path, job_path: Path, kind: str,
           settings: dict | None = None) -> dict:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # The child must import this fer_core, whatever the caller's working directory.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PROJECT_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n$ {' '.join(command)}\n".encode())
        log.flush()
        process = subprocess.Popen(command, cwd=str(PROJECT_ROOT), env=env,
                                   stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    with _CHILDREN_LOCK:
        _CHILDREN[process.pid] = process
    job = {"kind": kind, "pid": process.pid, "command": command, "started": time.time(),
           "log": log_path.name, "settings": settings or {}}
    write_json(job_path, job)
    return job


def _terminate(pid: int) -> None:
    """Stop a job's whole process group (it runs in its own session)."""
    try:
        os.killpg(os.getpgid(pid), signal.SIGTERM)
    except (ProcessLookupError, PermissionError, OSError):
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass


# ----------------------------------------------------------------------------- training


def start_training(*, data_path: str | os.PathLike, runs_dir: str | os.PathLike, name: str,
                   architecture: str = "cnn_gru", epochs: int = 3, batch_size: int = 64,
                   learning_rate: float = 2e-3, subset: int | None = None,
                   val_subset: int | None = None, resume: bool = False,
                   python: str | None = None) -> dict:
    """Start ``python -m fer_core train`` in the background and return its job record.

    A new run needs a new ``name``; ``resume=True`` continues an existing, idle run (its
    settings come from the command, its weights from ``last.keras``). Raises ConfigError or
    DatasetError (with a message for the user) before anything starts.
    """
    check_run_name(name)
    config = TrainConfig(architecture=architecture, epochs=int(epochs),
                         batch_size=int(batch_size), learning_rate=float(learning_rate),
                         train_subset=int(subset) if subset else None,
                         validation_subset=int(val_subset) if val_subset else None,
                         run_name=name)
    config.validate()
    if not data_path:
        raise DatasetError("No FER2013 file given. Enter its path on the Dataset page or set "
                           "FER2013_PATH.")
    data = Path(data_path).expanduser().resolve()
    if not data.exists():
        raise DatasetError(f"{data} does not exist. Give the path of fer2013.csv(.gz) or of "
                           "the folder holding train/ and test/.")
    runs = Path(runs_dir).expanduser().resolve()
    run_dir = runs / name
    if run_dir.exists() and not resume:
        raise ConfigError(f"A run named {name!r} already exists; choose another name, or "
                          "resume that run.")
    if resume and not run_dir.is_dir():
        raise ConfigError(f"There is no run named {name!r} to resume.")
    if run_dir.exists() and is_training(run_dir):
        raise ConfigError(f"Run {name!r} is training already.")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / STOP_FILE).unlink(missing_ok=True)
    command = [python or sys.executable, "-m", "fer_core", "train", "--data", str(data),
               "--architecture", architecture, "--epochs", str(config.epochs),
               "--batch-size", str(config.batch_size),
               "--learning-rate", repr(config.learning_rate),
               "--runs-dir", str(runs), "--name", name]
    if config.train_subset:
        command += ["--subset", str(config.train_subset)]
    if config.validation_subset:
        command += ["--val-subset", str(config.validation_subset)]
    settings = {key: value for key, value in asdict(config).items()
                if key not in ("runs_dir", "data_path", "model_kwargs")}
    return _spawn(command, run_dir / TRAIN_LOG, run_dir / TRAIN_JOB, "train", settings)


def _training_pid(run_dir: Path, job: dict | None, state: dict) -> int | None:
    if job and job.get("pid"):
        return int(job["pid"])
    return int(state["pid"]) if state.get("pid") else None


def find_training_process(run_dir: str | os.PathLike) -> int | None:
    """The pid of a ``python -m fer_core train`` process writing into ``run_dir``, found by
    its command line (for runs started outside the app, e.g. from a terminal)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover
        return None
    run_dir = Path(run_dir).resolve()
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            command = process.info["cmdline"] or []
            if "fer_core" not in command or "train" not in command:
                continue
            if "--resume" in command:
                target = command[command.index("--resume") + 1]
            elif "--name" in command:
                runs = command[command.index("--runs-dir") + 1] if "--runs-dir" in command \
                    else "runs"
                target = os.path.join(runs, command[command.index("--name") + 1])
            else:
                continue
            if (Path(process.cwd()) / target).resolve() == run_dir:
                return int(process.info["pid"])
        except (psutil.Error, IndexError, OSError, ValueError):
            continue
    return None


def is_training(run_dir: str | os.PathLike) -> bool:
    run_dir = Path(run_dir)
    job = read_json(run_dir / TRAIN_JOB, None)
    state = read_json(run_dir / "state.json", {}) or {}
    if job and process_alive(job.get("pid")):
        return True
    return bool(state.get("status") == "running" and process_alive(state.get("pid")))


def estimate_eta(progress: dict | None, history: list[dict], epochs: int | None = None,
                 now: float | None = None) -> float | None:
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
    cleaned = [line.split("\r")[-1] for line in text.split("\n")]
    cleaned = [line for line in cleaned if line.strip() and not _noise(line)]
    return "\n".join(cleaned[-lines:])


def _noise(line: str) -> bool:
    # TensorFlow's start-up chatter says nothing to a user.
    markers = ("oneDNN custom operations", "absl::InitializeLog", "cuda_", "TensorFlow binary",
               "rebuild TensorFlow", "Unable to register", "computation placer", "cpu_feature_guard",
               "XNNPACK delegate")
    return any(marker in line for marker in markers)


def run_status(run_dir: str | os.PathLike, now: float | None = None) -> dict:
    """Everything a page shows about a run, read from its folder.

    ``phase`` is one of: ``starting`` (process up, data loading), ``training``, ``stopping``,
    ``finished``, ``stopped``, ``interrupted`` (the process ended without finishing: killed
    or crashed; resumable), ``failed`` (ended before the first epoch; see ``log``), ``idle``
    (a folder with no job information).
    """
    run_dir = Path(run_dir)
    now = time.time() if now is None else now
    config = read_json(run_dir / "config.json", {}) or {}
    state = read_json(run_dir / "state.json", {}) or {}
    progress = read_json(run_dir / "progress.json", None)
    job = read_json(run_dir / TRAIN_JOB, None)
    if not config and job:  # config.json is written once the data is loaded
        config = dict(job.get("settings") or {})
    history = read_history(run_dir)
    pid = _training_pid(run_dir, job, state)
    alive = process_alive(pid)
    if not alive and state.get("status") == "running" and run_dir.is_dir():
        found = find_training_process(run_dir)  # a run started elsewhere, without job.json
        if found:
            pid, alive = found, True
    started = float(job["started"]) if job else None
    # Files from before this job started (a resumed run) do not describe it yet.
    fresh_state = bool(state) and (started is None or float(state.get("updated", 0)) >= started - 1)
    fresh_progress = bool(progress) and (started is None or
                                         float(progress.get("updated", 0)) >= started - 1)
    epochs = int(config.get("epochs") or state.get("epochs") or
                 (job_epochs(job) if job else 0) or 0)
    if alive:
        if (run_dir / STOP_FILE).exists():
            phase = "stopping"
        elif fresh_state and state.get("status") == "running":
            phase = "training"
        else:
            phase = "starting"
    else:
        status = state.get("status")
        if job and not fresh_state:
            # The latest job ended before it trained a batch: stopped by the user, or failed.
            phase = "stopped" if job.get("terminated") else "failed"
        elif status in ("finished", "stopped"):
            phase = status
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
    eta = estimate_eta(progress, history, epochs, now) if (
        fresh_progress and phase in ("training", "stopping")) else None
    if eta is None and phase == "training" and history and epochs:
        # No batch progress (a run from an older fer_core): whole epochs from their length.
        recent = [float(row["seconds"]) for row in history[-3:] if row.get("seconds")]
        if recent:
            epoch_seconds = sum(recent) / len(recent)
            elapsed = max(now - float(state.get("updated", now)), 0.0)
            eta = max((epochs - epochs_done) * epoch_seconds - elapsed, 0.0)
    return {
        "name": run_dir.name, "path": str(run_dir), "phase": phase, "alive": alive, "pid": pid,
        "config": config, "state": state, "progress": progress if fresh_progress else None,
        "history": history, "epochs": epochs, "epochs_done": epochs_done,
        "epoch": epoch_number, "batch_fraction": batch_fraction, "overall_fraction": overall,
        "eta_seconds": eta, "best_val_accuracy": state.get("best_val_accuracy"),
        "best_epoch": state.get("best_epoch"), "has_model": (run_dir / "best.keras").is_file(),
        "metrics": read_json(run_dir / "metrics.json", None),
        "evaluation": read_json(run_dir / EVAL_REPORT, None),
        "log": tail(run_dir / TRAIN_LOG), "started": started,
    }


def job_epochs(job: dict) -> int:
    command = job.get("command") or []
    try:
        return int(command[command.index("--epochs") + 1])
    except (ValueError, IndexError):
        return 0


def stop_training(run_dir: str | os.PathLike) -> str:
    """Stop a run. While it trains, ask it to stop after the current batch (its last full
    epoch is kept); while it is still starting (loading data, nothing learnt yet), end the
    process. Returns what was done: ``"requested"``, ``"terminated"`` or ``"not running"``."""
    run_dir = Path(run_dir)
    status = run_status(run_dir)
    if not status["alive"]:
        return "not running"
    if status["phase"] == "starting":
        # train() clears the STOP file when it starts, so a request now would be lost.
        job = read_json(run_dir / TRAIN_JOB, None)
        if job:
            write_json(run_dir / TRAIN_JOB, {**job, "terminated": time.time()})
        _terminate(int(status["pid"]))
        return "terminated"
    request_stop(run_dir)
    return "requested"


# ----------------------------------------------------------------------------- evaluation


def start_evaluation(run_dir: str | os.PathLike, data_path: str | os.PathLike,
                     split: str = "PublicTest", python: str | None = None) -> dict:
    """Evaluate a run's best.keras on ``split`` in the background (``python -m fer_core
    evaluate --write-card``): writes evaluation.json and best.card.json into the run folder.

    PublicTest is the split for choosing between runs; PrivateTest is for reporting only.
    """
    run_dir = Path(run_dir).resolve()
    model = run_dir / "best.keras"
    if not model.is_file():
        raise ModelError(f"Run {run_dir.name} has no best.keras yet: it needs one finished epoch.")
    if split not in ("Training", "PublicTest", "PrivateTest"):
        raise ConfigError(f"Unknown split {split!r}.")
    if not data_path:
        raise DatasetError("No FER2013 file given. Enter its path on the Dataset page or set "
                           "FER2013_PATH.")
    data = Path(data_path).expanduser().resolve()
    if not data.exists():
        raise DatasetError(f"{data} does not exist.")
    if evaluation_status(run_dir)["alive"]:
        raise ConfigError(f"Run {run_dir.name} is being evaluated already.")
    (run_dir / EVAL_REPORT).unlink(missing_ok=True)
    command = [python or sys.executable, "-m", "fer_core", "evaluate", "--model", str(model),
               "--data", str(data), "--split", split, "--json", str(run_dir / EVAL_REPORT),
               "--write-card", "--run", str(run_dir)]
    return _spawn(command, run_dir / EVAL_LOG, run_dir / EVAL_JOB, "evaluate")


def evaluation_status(run_dir: str | os.PathLike) -> dict:
    """``phase``: ``none`` (never evaluated), ``running``, ``done`` or ``failed``."""
    run_dir = Path(run_dir)
    job = read_json(run_dir / EVAL_JOB, None)
    report = read_json(run_dir / EVAL_REPORT, None)
    alive = bool(job) and process_alive(job.get("pid"))
    if alive:
        phase = "running"
    elif report:
        phase = "done"
    elif job:
        phase = "failed"
    else:
        phase = "none"
    return {"phase": phase, "alive": alive, "job": job, "report": report,
            "log": tail(run_dir / EVAL_LOG)}


# ----------------------------------------------------------------------------- activation


def activate_run(run_dir: str | os.PathLike, runs_dir: str | os.PathLike = "runs") -> Path:
    """Make a run's best model the app's active model.

    best.keras is copied to ``export/<run>-<sha8>.keras`` (a file that never changes again,
    even if the run is resumed), its LiteRT fast path is exported and checked beside it, the
    run's model card is carried over when it describes exactly this model, and only then is
    the active-model pointer switched (one atomic rename). The shipped model is never touched.
    """
    from .inference import card_path_for, export_litert, file_sha256, litert_path_for

    run_dir = Path(run_dir).resolve()
    source = run_dir / "best.keras"
    if not source.is_file():
        raise ModelError(f"Run {run_dir.name} has no best.keras yet: it needs one finished epoch.")
    export_dir = run_dir / EXPORT_DIR
    export_dir.mkdir(parents=True, exist_ok=True)
    tmp = export_dir / f".{run_dir.name}.{os.getpid()}.tmp.keras"
    shutil.copyfile(source, tmp)  # copy first: best.keras may be replaced while we work
    digest = file_sha256(tmp)
    target = export_dir / f"{run_dir.name}-{digest[:8]}.keras"
    os.replace(tmp, target)
    if not litert_path_for(target).is_file():
        export_litert(target)  # raises ModelError if the fast path disagrees with Keras
    card = read_json(card_path_for(source), None)
    if card and card.get("files", {}).get("keras", {}).get("sha256") == digest:
        litert = litert_path_for(target)
        card["name"] = target.stem
        card["files"] = {
            "keras": {"file": target.name, "bytes": target.stat().st_size, "sha256": digest},
            "litert": {"file": litert.name, "bytes": litert.stat().st_size,
                       "sha256": file_sha256(litert)},
        }
        write_json(card_path_for(target), card)
    set_active_model(target, runs_dir)
    return target


def use_shipped_model(runs_dir: str | os.PathLike = "runs") -> None:
    set_active_model(None, runs_dir)


def active_model_choice(runs_dir: str | os.PathLike = "runs") -> dict:
    """What the app should load: ``{"path": Path | None, "problem": str | None}``. ``path`` None
    means the shipped model; ``problem`` says why a chosen model cannot be used."""
    from .train import ACTIVE_FILE

    runs_dir = Path(runs_dir)
    pointer = runs_dir / ACTIVE_FILE
    if not pointer.exists():
        return {"path": None, "problem": None}
    chosen = read_json(pointer, None)
    if not isinstance(chosen, dict) or not chosen.get("model"):
        return {"path": None, "problem": f"{pointer} is not a valid active-model file."}
    path = get_active_model(runs_dir)
    if path is None:
        return {"path": None, "problem": f"The active model {chosen['model']} no longer exists."}
    return {"path": path, "problem": None}


def describe_job_error(exc: BaseException) -> str:
    """A user-facing message for an exception raised while starting a job."""
    if isinstance(exc, FerError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"Could not start the job: {exc.strerror or exc}."
    return f"Could not start the job: {exc}"


__all__ = ["runs_dir", "new_run_name", "start_training", "run_status", "stop_training",
           "estimate_eta", "start_evaluation", "evaluation_status", "activate_run",
           "use_shipped_model", "active_model_choice", "process_alive", "is_training", "tail",
           "RUNS_DIR_ENV"]
