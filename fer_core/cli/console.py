"""Progress for the ``fer`` commands: one line on stderr, rewritten in place, and, when a
command was given a progress file (``fer evaluate --progress FILE``), the same stage and
fraction as JSON in that file, so that whoever started the command (the app's evaluation job)
reads how far it is without parsing what it prints."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from fer_core.storage import write_json

_progress_file: Path | None = None
_last_written = (0.0, "")


def report_to(path: str | Path | None) -> None:
    """Record every stage and fraction in ``path`` from now on (None: stop)."""
    global _progress_file, _last_written
    _progress_file = Path(path) if path else None
    _last_written = (0.0, "")


def _record(stage: str, fraction: float | None, message: str = "") -> None:
    """The progress file, at most twice a second within a stage (always when a stage starts
    or ends)."""
    global _last_written
    if _progress_file is None:
        return
    now = time.time()
    same_stage = stage == _last_written[1]
    if same_stage and fraction not in (None, 0.0, 1.0) and now - _last_written[0] < 0.5:
        return
    _last_written = (now, stage)
    write_json(
        _progress_file,
        {"stage": stage, "fraction": fraction, "message": message, "updated": now},
    )


def stage(name: str) -> None:
    """A stage without a fraction of its own (a line on stderr, and the progress file)."""
    print(name, file=sys.stderr, flush=True)
    _record(name, None)


def progress_printer(prefix: str):
    def progress(fraction: float, message: str) -> None:
        print(f"\r{prefix}: {fraction * 100:5.1f}%  {message}", end="", file=sys.stderr, flush=True)
        if fraction >= 1.0:
            print(file=sys.stderr)
        _record(prefix, float(fraction), message)

    return progress


def count_printer(prefix: str):
    printer = progress_printer(prefix)
    return lambda done, total: printer(done / max(total, 1), f"{done:,}/{total:,} images")


__all__ = ["progress_printer", "count_printer", "report_to", "stage"]
