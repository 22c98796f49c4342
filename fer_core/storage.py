"""Files that survive a crash or a full disk: the one atomic writer everyone uses (a temporary
file beside the target, fsynced, then renamed), JSON read with a bound, files stored by their
digest, an inter-process file lock, and the error a failed write becomes (``WriteError``, with
the disk's reason in one line).

Nothing here knows about training runs; ``fer_core.training.runs`` builds a run's folder on it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from fer_core.errors import ConfigError, FerError

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
    return f"could not save {name} ({why}{f', {code}' if code else ''}): fix that and resume"


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
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem[:60]}.", suffix=f".tmp{path.suffix[:20]}", dir=path.parent
    )
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
        encoding = None if "b" in mode else "utf-8"
        with open(tmp, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_writer(path) as handle:
        handle.write(text)


def store_by_digest(
    source, folder: str | os.PathLike, prefix: str = "", suffix: str = ""
) -> tuple[Path, str]:
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


__all__ = [
    "WriteError",
    "saving",
    "write_failure_message",
    "is_disk_full",
    "os_error_in",
    "temporary_beside",
    "atomic_path",
    "atomic_writer",
    "atomic_write_text",
    "store_by_digest",
    "write_json",
    "read_json",
    "file_lock",
    "DISK_FULL_ERRNOS",
]
