"""Which files a user of the app may make the server read, and how they are opened.

The app is shared: a path typed into a page is a request to read a file *on the server*, so it
is accepted only inside the configured data folders (``FER_DATA_DIRS``), plus whatever
folders the caller adds (the session's own upload folder). The refusal is the same message
whether or not the path exists, so the path box cannot be used to probe the server's disk.

``FER_DATA_DIRS`` is a list of folders (or single files) separated by ``os.pathsep`` (``:`` on
Linux). When it is unset or empty the default is the project's ``data/`` folder; the file or
folder named by ``FER2013_PATH`` is always allowed (the owner set it). ``/`` is never an
allowed root, even when listed: that would be every file on the machine.

Files are opened only when they are regular files (``open_regular_file``): a FIFO would block
the reading thread forever and a device can be endless, so both are refused before reading.

The command line (``python -m fer_core ... --data``) is run by the machine's owner and reads any
path given; it still gets the bounded reads of ``fer_core.data.fer2013``.

Messages never show a visitor an absolute path of the server (``shown_path``): a file is named
relative to the place the visitor knows it by ("train/happy/1.jpg in the data folder",
"1f2e….csv in your uploads"; the app registers its upload folder with ``add_places``), else
by its name alone. A path typed as a relative one (the command line) is shown as typed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from fer_core.errors import DatasetError

DATA_DIRS_ENV = "FER_DATA_DIRS"
PROJECT_DATA_DIR = Path(__file__).resolve().parents[2] / "data"  # the checkout's data/


class DataPathError(DatasetError):
    """A path the user gave is not one the app may read (outside the data folders, or not a
    regular file)."""


def _absolute(entry: str) -> Path | None:
    entry = entry.strip()
    if not entry or "\0" in entry:
        return None
    try:
        path = Path(os.path.realpath(Path(entry).expanduser()))
    except (OSError, RuntimeError, ValueError):
        return None
    if path == Path(path.anchor):  # "/" (or a symlink to it): never every file on the machine
        return None
    return path


DATA_ENV = "FER2013_PATH"  # the one place that names the default dataset's variable


def default_ferplus_path() -> str | None:
    """FER+'s vote file from ``$FERPLUS_PATH``, or None when it is unset."""
    return os.environ.get("FERPLUS_PATH") or None


def default_data_path() -> str | None:
    """The FER2013 path from ``$FER2013_PATH``, or None when it is unset."""
    return os.environ.get(DATA_ENV) or None


def allowed_data_roots(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The folders (or single files) typed paths may point into, resolved, without repeats."""
    environ = os.environ if environ is None else environ
    configured = environ.get(DATA_DIRS_ENV, "")
    entries = [e for e in configured.split(os.pathsep) if e.strip()]
    if not entries:
        entries = [str(PROJECT_DATA_DIR)]
    if environ.get(DATA_ENV, "").strip():
        entries.append(environ[DATA_ENV])
    roots: list[Path] = []
    for entry in entries:
        path = _absolute(entry)
        if path is not None and path not in roots:
            roots.append(path)
    return roots


def is_within(path: Path, roots: Iterable[Path]) -> bool:
    """Whether the resolved ``path`` is one of ``roots`` or lies under one of them."""
    return any(path == root or path.is_relative_to(root) for root in roots)


# Places besides the data folders that messages name by what a visitor calls them, e.g. the
# app's upload folder as "your uploads": functions that return (folder, name) pairs, asked
# each time (their folders may follow settings).
_PLACES: list[Callable[[], Iterable[tuple[str | os.PathLike, str]]]] = []


def add_places(places: Callable[[], Iterable[tuple[str | os.PathLike, str]]]) -> None:
    """Have ``shown_path`` name files under each ``(folder, name)`` that ``places()`` returns
    as "<file name> in <name>" (e.g. the app's uploads: ``"your uploads"``)."""
    if places not in _PLACES:
        _PLACES.append(places)


def _real(path: Path) -> Path:
    try:
        return Path(os.path.realpath(path))
    except (OSError, RuntimeError, ValueError):
        return path


def shown_path(path: str | os.PathLike) -> str:
    """``path`` as a message shows it, never as an absolute path of the server: under a data
    folder, relative to it ("train/happy/1.jpg in the data folder"); under a place registered
    with ``add_places``, its name there ("x.csv in your uploads"); anything else absolute, by
    its name alone. A relative path (typed on the command line) is shown as it was given."""
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    candidates = [path] + ([_real(path)] if _real(path) != path else [])
    for places in list(_PLACES):
        try:
            named = [(Path(folder), name) for folder, name in places()]
        except Exception:  # noqa: BLE001 - a place that cannot say where it is names nothing
            continue
        for folder, name in named:
            for root in {folder, _real(folder)}:
                if any(c == root or c.is_relative_to(root) for c in candidates):
                    return f"{path.name} in {name}"
    for root in allowed_data_roots():
        for candidate in candidates:
            if candidate == root:
                return path.name
            if candidate.is_relative_to(root):
                return f"{candidate.relative_to(root).as_posix()} in the data folder"
    return path.name or "the file"


def refusal(text: str, roots: Sequence[Path]) -> DataPathError:
    """The refusal names no folder of the server: a visitor learns nothing of its disk
    (neither the data folders' absolute paths nor any upload folder)."""
    return DataPathError(
        f"{text} is not inside a data folder this app may read. Put the dataset in the "
        f"server's data folder (the project's data/ unless {DATA_DIRS_ENV} names others), "
        "upload it, or ask whoever runs the app to add its folder to "
        f"{DATA_DIRS_ENV}."
    )


def resolve_user_path(text: str, roots: Sequence[Path]) -> Path:
    """The resolved path for ``text`` if it lies inside ``roots`` (symlinks and ``..``
    followed first); raises ``DataPathError`` otherwise. Nothing is opened, and the message is
    the same whether or not the path exists."""
    text = (text or "").strip()
    if not text:
        raise DataPathError(
            "Give the path of fer2013.csv, fer2013.csv.gz or the folder holding train/ and test/."
        )
    shown = text if len(text) <= 300 else text[:300] + "…"
    if "\0" in text:
        raise refusal(repr(shown), roots)
    try:
        resolved = Path(os.path.realpath(Path(text).expanduser()))
    except (OSError, RuntimeError, ValueError):
        raise refusal(shown, roots) from None
    if not is_within(resolved, roots):
        raise refusal(shown, roots)
    return resolved


def describe_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def require_regular_file(path: Path) -> os.stat_result:
    """``os.stat(path)`` when ``path`` is a regular file; raises ``DataPathError`` for a FIFO,
    device, socket or folder (checked before anything opens it). Messages name the file by
    ``shown_path``."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise DataPathError(f"{shown_path(path)} does not exist.") from None
    except OSError as exc:
        raise DataPathError(
            f"Cannot read {shown_path(path)}: {exc.strerror or type(exc).__name__}."
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise DataPathError(
            f"{shown_path(path)} is {describe_kind(info.st_mode)}, not a "
            "regular file: refused. Give a plain file."
        )
    return info


def open_regular_file(path: Path):
    """Open ``path`` for binary reading only if it is a regular file.

    The path is checked with ``stat`` first (a device is never opened), then opened with
    ``O_NONBLOCK`` (a FIFO swapped in between cannot block the open) and checked again on
    the open descriptor."""
    require_regular_file(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise DataPathError(
            f"Cannot open {shown_path(path)}: {exc.strerror or type(exc).__name__}."
        ) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise DataPathError(
                f"{shown_path(path)} is {describe_kind(mode)}, not a regular file: refused."
            )
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


__all__ = [
    "DATA_DIRS_ENV",
    "PROJECT_DATA_DIR",
    "DataPathError",
    "allowed_data_roots",
    "is_within",
    "resolve_user_path",
    "require_regular_file",
    "open_regular_file",
    "shown_path",
    "add_places",
]
