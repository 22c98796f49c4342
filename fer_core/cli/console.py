"""Progress lines on stderr for the ``fer`` commands (one line, rewritten in place)."""

from __future__ import annotations

import sys


def progress_printer(prefix: str):
    def progress(fraction: float, message: str) -> None:
        print(f"\r{prefix}: {fraction * 100:5.1f}%  {message}", end="", file=sys.stderr, flush=True)
        if fraction >= 1.0:
            print(file=sys.stderr)

    return progress


def count_printer(prefix: str):
    printer = progress_printer(prefix)
    return lambda done, total: printer(done / max(total, 1), f"{done:,}/{total:,} images")


__all__ = ["progress_printer", "count_printer"]
