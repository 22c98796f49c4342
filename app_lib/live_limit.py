"""How many live streams one server process analyses at once (``FER_MAX_LIVE_STREAMS``).

Beyond what the CPU can analyse, every stream would slow down together. So the stream beyond
the limit is turned away at START with a message, and the streams already running keep
their frame rate. The default comes from the measurement, never from a typed number:
``python -m bench.live_capacity`` writes ``bench/live_capacity.json``. From it comes how
many streams per core the server kept up with at 15 frames/s with the default detector
(Haar), and the default is that many per core of the machine the app runs on.

Plain Python (no streamlit here); the Live page calls ``LIVE_STREAMS.admit`` when a visitor
presses START.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path

from fer_core.errors import ConfigError

MAX_LIVE_STREAMS_ENV = "FER_MAX_LIVE_STREAMS"
CAPACITY_RESULTS = Path(__file__).resolve().parent.parent / "bench" / "live_capacity.json"
DEFAULT_DETECTOR_FPS = ("haar", 15)  # what the default limit is measured for
FRESH_S = 3.0  # a stream whose latest frame is this recent is streaming
RESERVE_S = 15.0  # an admitted stream with no frame yet (still connecting) keeps its place


def measured_streams_per_core(path: str | os.PathLike = CAPACITY_RESULTS) -> float | None:
    """Streams per core the server kept up with (Haar, 15 frames/s), from the bench's
    results; None when they are missing or unreadable."""
    try:
        results = json.loads(Path(path).read_text(encoding="utf-8"))
        detector, fps = DEFAULT_DETECTOR_FPS
        run = next(r for r in results["runs"] if r["detector"] == detector and int(r["fps"]) == fps)
        return float(run["capacity"]) / float(results["cores"])
    except (OSError, ValueError, KeyError, TypeError, StopIteration, ZeroDivisionError):
        return None


def default_max_live_streams(
    cores: int | None = None, path: str | os.PathLike = CAPACITY_RESULTS
) -> int | None:
    """The measured streams per core times this machine's cores (at least 1); None (no
    limit) when nothing was measured."""
    per_core = measured_streams_per_core(path)
    if per_core is None:
        return None
    return max(1, math.floor(per_core * (cores or os.cpu_count() or 1)))


def max_live_streams(environ=None, cores: int | None = None, path=CAPACITY_RESULTS) -> int | None:
    """``FER_MAX_LIVE_STREAMS``: a positive whole number, or ``0`` for no limit; unset: the
    measured default. ConfigError for anything else."""
    environ = os.environ if environ is None else environ
    raw = (environ.get(MAX_LIVE_STREAMS_ENV) or "").strip()
    if not raw:
        return default_max_live_streams(cores, path)
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError(
            f"{MAX_LIVE_STREAMS_ENV} must be a whole number of live streams (0: no limit), "
            f"not {raw[:40]!r}."
        )
    return value or None


def _latest_frame_time(processor) -> float | None:
    snapshot = processor.holder.latest()
    return None if snapshot is None else snapshot.updated


class LiveStreams:
    """The live streams of this server process: admitted at START, counted while their frames
    arrive (or, just admitted, while they connect). A closed tab stops its frames, so it
    stops counting within ``FRESH_S`` without anyone telling."""

    def __init__(self, fresh_s: float = FRESH_S, reserve_s: float = RESERVE_S):
        self._lock = threading.Lock()
        self._admitted: dict[str, tuple[object, float]] = {}  # key: (processor, admitted at)
        self.fresh_s = fresh_s
        self.reserve_s = reserve_s

    def _active(self, now: float) -> list[str]:
        active = []
        for key, (processor, admitted) in list(self._admitted.items()):
            latest = _latest_frame_time(processor)
            streaming = latest is not None and now - latest < self.fresh_s and latest >= admitted
            if streaming or now - admitted < self.reserve_s:
                active.append(key)
            else:
                del self._admitted[key]
        return active

    def count(self, now: float | None = None) -> int:
        with self._lock:
            return len(self._active(time.time() if now is None else now))

    def admit(self, key: str, processor, limit: int | None, now: float | None = None) -> bool:
        """Whether the stream of session ``key`` may run: it already does, or there is room
        under ``limit`` (None: always)."""
        now = time.time() if now is None else now
        with self._lock:
            active = self._active(now)
            if key in active:
                return True
            if limit is not None and len(active) >= limit:
                return False
            self._admitted[key] = (processor, now)
            return True

    def release(self, key: str) -> None:
        with self._lock:
            self._admitted.pop(key, None)


LIVE_STREAMS = LiveStreams()  # one per server process, shared by its sessions


def refusal_message(limit: int) -> str:
    """What a visitor turned away at START reads (Markdown)."""
    return (
        f"**This server is already analysing {limit} live "
        f"stream{'s' if limit != 1 else ''}, its limit.** Beyond it every stream would slow "
        "down, so yours was not started. Try again in a minute; photos and videos work "
        f"meanwhile. (The administrator sets the limit with `{MAX_LIVE_STREAMS_ENV}`; "
        "docs/sharing.md says how many streams a core holds.)"
    )


__all__ = [
    "LIVE_STREAMS",
    "LiveStreams",
    "MAX_LIVE_STREAMS_ENV",
    "max_live_streams",
    "default_max_live_streams",
    "measured_streams_per_core",
    "refusal_message",
]
