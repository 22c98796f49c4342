"""How many live streams one server process analyses at once (``FER_MAX_LIVE_STREAMS``).

Beyond what the CPU can analyse, every stream would slow down together. So the stream beyond
the limit is turned away at START with a message, and the streams already running keep
their frame rate. The default comes from the measurement, never from a typed number:
``python -m bench.live_capacity`` writes ``bench/live_capacity.json``. From it comes how
many streams per core the server kept up with at 15 frames/s with the default detector
(Haar), and the default is that many per core of the machine the app runs on.

Plain Python (no streamlit here). Admission is decided in two places, under one lock:

- the Live page calls ``LIVE_STREAMS.admit`` when a visitor presses START, and turns the
  stream away with a message when there is no room;
- every frame asks ``LIVE_STREAMS.frame`` before it is analysed (``LiveProcessor.admission``),
  so no more streams than the limit are ever analysed, whatever the page runs saw. A stream
  that sends no frame keeps its place for ``HOLD_S`` seconds (a network stall, a camera
  switched); after that its place is free, and when it resumes its frames are analysed only
  once there is room again (the page says so meanwhile).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path

from fer_core.errors import ConfigError
from fer_core.faces import DEFAULT_DETECTOR

MAX_LIVE_STREAMS_ENV = "FER_MAX_LIVE_STREAMS"
CAPACITY_RESULTS = Path(__file__).resolve().parents[2] / "bench" / "live_capacity.json"
DEFAULT_DETECTOR_FPS = (DEFAULT_DETECTOR, 15)  # what the default limit is measured for
HOLD_S = 10.0  # a stream that sent no frame for this long has given its place up
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


class LiveStreams:
    """The live streams of this server process: admitted at START or at a frame, counted
    while their frames arrive (within ``hold_s`` of the latest) or, admitted and still
    connecting, for ``reserve_s``. A closed tab stops its frames, so its place frees within
    ``hold_s`` without anyone telling."""

    def __init__(self, hold_s: float = HOLD_S, reserve_s: float = RESERVE_S):
        self._lock = threading.Lock()
        # key: (admitted at, the latest frame's time or None before the first)
        self._streams: dict[str, tuple[float, float | None]] = {}
        self.hold_s = hold_s
        self.reserve_s = reserve_s

    def _active(self, now: float) -> list[str]:
        active = []
        for key, (admitted, latest) in list(self._streams.items()):
            if now - (admitted if latest is None else latest) < (
                self.reserve_s if latest is None else self.hold_s
            ):
                active.append(key)
            else:
                del self._streams[key]
        return active

    def count(self, now: float | None = None) -> int:
        with self._lock:
            return len(self._active(time.time() if now is None else now))

    def admit(self, key: str, limit: int | None, now: float | None = None) -> bool:
        """Whether the stream of session ``key`` may run: it already does, or there is room
        under ``limit`` (None: always)."""
        now = time.time() if now is None else now
        with self._lock:
            active = self._active(now)
            if key in active:
                return True
            if limit is not None and len(active) >= limit:
                return False
            self._streams[key] = (now, None)
            return True

    def frame(self, key: str, limit: int | None, now: float | None = None) -> bool:
        """A frame of ``key``'s stream arrived: whether it may be analysed. It may when the
        stream holds a place (which the frame renews) or there is room for it; otherwise it
        is not, and the stream takes no place."""
        now = time.time() if now is None else now
        with self._lock:
            active = self._active(now)
            if key not in active and limit is not None and len(active) >= limit:
                return False
            admitted = self._streams[key][0] if key in active else now
            self._streams[key] = (admitted, now)
            return True

    def release(self, key: str) -> None:
        with self._lock:
            self._streams.pop(key, None)


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


def lost_place_message(limit: int, hold_s: float = HOLD_S) -> str:
    """What a visitor reads whose stream resumed after its place was taken (Markdown)."""
    return (
        f"**Your stream is not being analysed: it lost its place.** It sent no video for more "
        f"than {hold_s:.0f} s, and meanwhile this server took other streams up to its limit of "
        f"{limit}. Its frames are analysed again as soon as a place frees up, by themselves; "
        "or press STOP and try again later."
    )


__all__ = [
    "LIVE_STREAMS",
    "LiveStreams",
    "HOLD_S",
    "lost_place_message",
    "MAX_LIVE_STREAMS_ENV",
    "max_live_streams",
    "default_max_live_streams",
    "measured_streams_per_core",
    "refusal_message",
]
