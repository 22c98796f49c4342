"""Background jobs for the app: training and evaluation in their own processes.

A job is ``fer train --run DIR`` or ``fer evaluate ...`` (``python -m fer_core``) started in
a new session, its output logged into the run folder. The app only reads files the job
writes (see ``fer_core.training.runs``), so a page can be reloaded, closed or served to several people
while the job keeps running, and a run started elsewhere is followed just the same
(``fer_core.service.status``).

Starting a run writes its ``config.json`` first (the run folder is created atomically), and
the process reads its settings from there; resuming starts the same command again. Start,
resume and stop hold the run's lock, and at most ``FER_MAX_TRAINING_JOBS`` runs (default 1)
train at once.

One trainer per run: see ``fer_core.training.run_lock``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from fer_core.errors import ConfigError, DatasetError, ModelError
from fer_core.storage import file_lock, read_json, write_json
from fer_core.training.config import TrainConfig
from fer_core.training.run_lock import RunBusy, lock_holder, operation_lock
from fer_core.training.runs import (
    EVAL_JOB,
    EVAL_LOG,
    EVAL_PROGRESS,
    EVAL_REPORT,
    RUNS_DIR_ENV,
    TRAIN_JOB,
    TRAIN_LOG,
    Run,
)

MAX_JOBS_ENV = "FER_MAX_TRAINING_JOBS"
_JOBS_LOCK = ".jobs.lock"  # in the runs folder: serialises the job-count check and the start

# Popen objects of the children this process started, so finished children are reaped
# (a finished child that is never waited for stays a zombie and looks alive).
_CHILDREN: dict[int, subprocess.Popen] = {}
_CHILDREN_LOCK = threading.Lock()


def max_training_jobs() -> int:
    try:
        return max(1, int(os.environ.get(MAX_JOBS_ENV, "1")))
    except ValueError:
        return 1


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
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            _reap(pid)
            return False
        return not expect or any(expect in part for part in process.cmdline())
    except psutil.Error:
        return False


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass


def fer_command(python: str | None = None) -> list[str]:
    """How to run the ``fer`` command with this interpreter (the installed package)."""
    return [python or sys.executable, "-m", "fer_core"]


def _spawn(command: list[str], run: Run, log_name: str, job_name: str, kind: str) -> dict:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with open(run.file(log_name), "ab") as log:
        log.write(f"\n$ {' '.join(command)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            command,
            cwd=str(run.path),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    with _CHILDREN_LOCK:
        _CHILDREN[process.pid] = process
    job = {
        "kind": kind,
        "pid": process.pid,
        "command": command,
        "started": time.time(),
        "log": log_name,
    }
    write_json(run.file(job_name), job)
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


def find_training_process(run_dir: str | os.PathLike) -> int | None:
    """The pid of a ``fer train`` process writing into ``run_dir``, found by its command line
    (for runs started outside the app, e.g. from a terminal)."""
    import psutil

    run_dir = Path(run_dir).resolve()
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            command = process.info["cmdline"] or []
            is_fer = "fer_core" in command or any(Path(p).name == "fer" for p in command[:2])
            if not is_fer or "train" not in command:
                continue
            for flag in ("--run", "--resume"):
                if flag in command:
                    target = command[command.index(flag) + 1]
                    break
            else:
                if "--name" not in command:
                    continue
                # `fer train --name` finds its run in --runs-dir, else $FER_RUNS_DIR, else runs
                runs = (
                    command[command.index("--runs-dir") + 1]
                    if "--runs-dir" in command
                    else _process_runs_dir(process)
                )
                target = os.path.join(runs, command[command.index("--name") + 1])
            if (Path(process.cwd()) / target).resolve() == run_dir:
                return int(process.info["pid"])
        except (psutil.Error, IndexError, OSError, ValueError):
            continue
    return None


def _process_runs_dir(process) -> str:
    """The runs folder a ``fer train --name`` process without ``--runs-dir`` uses."""
    import psutil

    try:
        return process.environ().get(RUNS_DIR_ENV) or "runs"
    except (psutil.Error, OSError):
        return "runs"


def training_pid(run: Run) -> int | None:
    """The pid of the process training ``run`` now, if one does."""
    holder = lock_holder(run)
    if holder is not None:
        return holder
    job, state = read_json(run.file(TRAIN_JOB), None), run.state()
    if job and process_alive(job.get("pid")):
        return int(job["pid"])
    if state.get("status") == "running":
        if process_alive(state.get("pid")):
            return int(state["pid"])
        if run.exists():
            return find_training_process(run.path)
    return None


def is_training(run_dir: str | os.PathLike) -> bool:
    return training_pid(Run(run_dir)) is not None


def _training_runs(runs_dir: Path) -> list[str]:
    if not runs_dir.is_dir():
        return []
    return [
        folder.name
        for folder in runs_dir.iterdir()
        if folder.is_dir() and not folder.name.startswith(".") and is_training(folder)
    ]


# ----------------------------------------------------------------------------- training


def _check_data(data_path) -> Path:
    if not data_path:
        raise DatasetError(
            "No FER2013 file given. Enter its path on the Dataset page or set FER2013_PATH."
        )
    data = Path(data_path).expanduser().resolve()
    if not data.exists():
        raise DatasetError(
            "The FER2013 path given cannot be used. Give the path of "
            "fer2013.csv(.gz) or of the folder holding train/ and test/."
        )
    return data


def _launch(run: Run, runs_dir: Path, python: str | None) -> dict:
    """Start ``fer train --run`` for ``run`` (the caller holds the run's lock)."""
    with file_lock(runs_dir / _JOBS_LOCK, busy="Another training run is starting; try again."):
        busy = [name for name in _training_runs(runs_dir) if name != run.name]
        if len(busy) >= max_training_jobs():
            raise ConfigError(
                f"{len(busy)} training run(s) already use this server "
                f"(at most {max_training_jobs()} at a time): wait for "
                f"{', '.join(busy)} to end, or stop it."
            )
        run.clear_stop()
        return _spawn(
            fer_command(python) + ["train", "--run", str(run.path)],
            run,
            TRAIN_LOG,
            TRAIN_JOB,
            "train",
        )


def start_training(config: TrainConfig, python: str | None = None) -> dict:
    """Create the run folder ``config.runs_dir/config.run_name``, write ``config`` as its
    config.json, and start training it in the background; return the job record.

    Raises ConfigError or DatasetError (with a message for the user) before anything starts.
    """
    if not config.run_name:
        raise ConfigError("A new run needs a name.")
    config.validate()
    config = config.replace(
        data_path=str(_check_data(config.data_path)),
        runs_dir=str(Path(config.runs_dir).expanduser().resolve()),
    )
    runs_dir = Path(config.runs_dir)
    run = Run.create(runs_dir, str(config.run_name))  # atomic: a taken name raises
    try:
        with operation_lock(run) as trainer:
            if trainer is not None:  # `fer train --name` of this name got here first
                raise RunBusy(run.name, trainer)
            run.write_config(config.to_dict())
            return _launch(run, runs_dir, python)
    except RunBusy:
        raise  # the folder is that trainer's now: left as it is
    except BaseException:
        if not run.state() and not run.last_model.exists():
            import shutil

            shutil.rmtree(run.path, ignore_errors=True)  # nothing started: leave no trace
        raise


def resume_training(run_dir: str | os.PathLike, python: str | None = None) -> dict:
    """Continue a run that is not training, with exactly the settings in its config.json."""
    run = Run(Path(run_dir).expanduser().resolve())
    if not run.config_path.is_file():
        raise ConfigError(f"There is no run named {run.name!r} to resume.")
    config = TrainConfig.from_file(run.config_path)
    config.validate()
    _check_data(config.data_path)
    with operation_lock(run) as trainer:
        if trainer is not None or is_training(run.path):
            raise ConfigError(f"Run {run.name!r} is training already.")
        return _launch(run, run.path.parent, python)


def _is_starting(run: Run, job: dict | None) -> bool:
    """The run's process is up but has not begun training yet (it is loading data): its
    state.json is not yet this job's (once it is, the run trains, or finishes its epochs)."""
    if not job:
        return False
    state = run.state()
    return not (
        state.get("status") in ("running", "finished", "stopped")
        and float(state.get("updated", 0)) >= float(job.get("started", 0)) - 1
    )


def stop_training(run_dir: str | os.PathLike) -> str:
    """Stop a run. While it trains, ask it to stop after the current batch (its last full
    epoch is kept); while it is still starting (loading data, nothing learnt yet), end the
    process. Returns what was done: ``"requested"``, ``"terminated"`` or ``"not running"``."""
    run = Run(run_dir)
    if not run.exists():
        return "not running"
    with operation_lock(run) as trainer:
        pid = trainer or training_pid(run)
        if pid is None:
            return "not running"
        job = read_json(run.file(TRAIN_JOB), None)
        if _is_starting(run, job) and job and int(job.get("pid", 0)) == pid:
            # train() clears the STOP file when it starts, so a request now would be lost.
            write_json(run.file(TRAIN_JOB), {**job, "terminated": time.time()})
            _terminate(pid)
            return "terminated"
        run.request_stop()
        return "requested"


# ----------------------------------------------------------------------------- evaluation


def start_evaluation(
    run_dir: str | os.PathLike,
    data_path: str | os.PathLike,
    split: str = "PublicTest",
    python: str | None = None,
) -> dict:
    """Evaluate a run's best.keras on ``split`` in the background (``fer evaluate
    --write-card``): writes evaluation.json and best.card.json into the run folder.

    PublicTest is the split for choosing between runs; PrivateTest is for reporting only.
    """
    run = Run(Path(run_dir).resolve())
    if not run.best_model.is_file():
        raise ModelError(f"Run {run.name} has no best.keras yet: it needs one finished epoch.")
    if split not in ("Training", "PublicTest", "PrivateTest"):
        raise ConfigError(f"Unknown split {split!r}.")
    data = _check_data(data_path)
    with operation_lock(run) as trainer:
        if trainer is not None:
            raise ConfigError(
                f"Run {run.name} is training (process {trainer}); evaluate it when it ends."
            )
        job = read_json(run.file(EVAL_JOB), None)
        if job and process_alive(job.get("pid")):
            raise ConfigError(f"Run {run.name} is being evaluated already.")
        run.file(EVAL_REPORT).unlink(missing_ok=True)
        run.file(EVAL_PROGRESS).unlink(missing_ok=True)
        command = fer_command(python) + [
            "evaluate",
            "--model",
            str(run.best_model),
            "--data",
            str(data),
            "--split",
            split,
            "--json",
            str(run.file(EVAL_REPORT)),
            "--write-card",
            "--run",
            str(run.path),
            "--progress",
            str(run.file(EVAL_PROGRESS)),
        ]
        return _spawn(command, run, EVAL_LOG, EVAL_JOB, "evaluate")


def stop_evaluation(run_dir: str | os.PathLike) -> str:
    """Cancel a run's evaluation (its process group ends; a partial report is never written:
    the report is written atomically at the end). ``"terminated"`` or ``"not running"``."""
    run = Run(Path(run_dir))
    if not run.exists():
        return "not running"
    with operation_lock(run):
        job = read_json(run.file(EVAL_JOB), None)
        if not job or not process_alive(job.get("pid")):
            return "not running"
        write_json(run.file(EVAL_JOB), {**job, "terminated": time.time()})
        _terminate(int(job["pid"]))
        return "terminated"


__all__ = [
    "start_training",
    "resume_training",
    "stop_training",
    "start_evaluation",
    "stop_evaluation",
    "RunBusy",
    "process_alive",
    "is_training",
    "training_pid",
    "find_training_process",
    "max_training_jobs",
    "MAX_JOBS_ENV",
]
