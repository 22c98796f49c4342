"""One trainer per run, from anywhere.

One trainer per run, from anywhere: ``fer train`` holds the same lock (the run's ``.lock``,
``Run.lock``) for as long as it trains (``training_lock``), with its pid and start time
written in the lock file. A second trainer of the run, from the app or a terminal, is refused
at once (``RunBusy``: "run R is already training (process N)"). The kernel releases the lock
when its process dies, however it dies, so a killed trainer's run can be trained again at
once; its pid left in the lock file is ignored (that process no longer runs). While a
trainer holds the lock, the app's short operations do not wait for it: a resume or an
evaluation is refused, a stop is sent to the trainer.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

from fer_core.errors import ConfigError
from fer_core.safe_text import terminal_safe
from fer_core.training.runs import LOCK, Run


class RunBusy(ConfigError):
    """Another process trains the run (``pid``)."""

    def __init__(self, name: str, pid: int):
        super().__init__(f"run {terminal_safe(name)} is already training (process {pid})")
        self.pid = pid


def _process_started(pid: int) -> float | None:
    """When process ``pid`` started (psutil's create time), or None if it does not run."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except (psutil.Error, ValueError):
        return None


def lock_holder(run: Run) -> int | None:
    """The pid of the trainer that holds ``run``'s lock, from the pid and start time it wrote
    in the lock file; None when none is written there, or that process no longer runs (a
    killed trainer's record; a reused pid has another start time)."""
    try:
        with open(run.path / LOCK, "rb") as handle:
            words = handle.read(100).split()
        pid, started = int(words[0]), float(words[1])
    except (OSError, ValueError, IndexError):
        return None
    now_started = _process_started(pid)
    if now_started is None or abs(now_started - started) > 1.0:
        return None
    return pid


def _try_flock(fd: int) -> bool:
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _open_lock_file(run: Run) -> int:
    return os.open(run.path / LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)


def _lock_or_holder(fd: int, run: Run, wait: float) -> int | None:
    """Take the lock on ``fd`` (None), or name the trainer that holds it for its whole
    training (its pid, at once); a lock held only for a moment is waited for up to ``wait``
    seconds, then ConfigError."""
    deadline = time.monotonic() + wait
    while not _try_flock(fd):
        holder = lock_holder(run)
        if holder is not None:
            return holder
        if time.monotonic() > deadline:
            raise ConfigError(f"Run {terminal_safe(run.name)} is busy; try again.")
        time.sleep(0.02)
    return None


# The training locks this process holds: resolved run folder -> [thread id, depth]. A thread
# that holds a run's lock may take it again (e.g. `fer train` around a train() that takes it);
# another thread of the process is refused like another process.
_HELD: dict[Path, list[int]] = {}
_HELD_LOCK = threading.Lock()


@contextlib.contextmanager
def training_lock(run: Run, wait: float = 30.0):
    """Hold ``run``'s lock (the file ``Run.lock`` locks) for as long as this process trains
    it, its pid and start time written in the lock file for others to read.

    Raises ``RunBusy`` at once when another trainer holds it. While the lock is held only
    for a moment (the app starting, resuming or stopping this run; the app holds it while it
    starts this very process), waits up to ``wait`` seconds, then raises ConfigError."""
    run.path.mkdir(parents=True, exist_ok=True)
    key, me = run.path.resolve(), threading.get_ident()
    with _HELD_LOCK:
        held = _HELD.get(key)
        if held is not None and held[0] == me:
            held[1] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _HELD_LOCK:
                _HELD[key][1] -= 1
        return
    fd = _open_lock_file(run)
    try:
        holder = _lock_or_holder(fd, run, wait)
        if holder is not None:
            raise RunBusy(run.name, holder)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {_process_started(os.getpid())!r}\n".encode(), 0)
        with _HELD_LOCK:
            _HELD[key] = [me, 1]
        try:
            yield
        finally:
            with _HELD_LOCK:
                _HELD.pop(key, None)
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # before the lock goes: no stale record of a live run
    finally:
        os.close(fd)  # closing the descriptor releases the lock (as the kernel does on death)


@contextlib.contextmanager
def operation_lock(run: Run, timeout: float = 30.0):
    """``run.lock()`` for a short operation (start, resume, stop, evaluate); yields None.
    While a trainer holds the lock for its whole training, yields that trainer's pid at once
    instead, without the lock (waiting would last the whole training)."""
    fd = _open_lock_file(run)
    try:
        holder = _lock_or_holder(fd, run, timeout)
        if holder is not None:
            os.close(fd)
            fd = -1
        yield holder
    finally:
        if fd >= 0:
            os.close(fd)


__all__ = ["RunBusy", "lock_holder", "training_lock", "operation_lock"]
