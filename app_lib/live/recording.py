"""What the Live page remembers of a stream: the last minute of every face (for the
emotion-over-time chart) and, while the user records, every analysed frame (for the CSV and
JSON downloads). Plain Python, no streamlit: the video thread writes, the page reads.

The video thread only appends references to the frame's results (no formatting, no copying
of pixels) to bounded buffers; rows are built when the page asks for them. Timestamps come
from one monotonic clock anchored to the wall clock when recording starts, so they never go
backwards even when the system clock is adjusted.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np

from app_lib.ui.formatting import duration
from fer_core import EMOTIONS, FerError
from fer_core.data.image import encode_png
from fer_core.recognition.results import (
    VIDEO_COLUMNS,
    ImageResult,
    face_rows,
    frame_to_csv_bytes,
    typed_frame,
)

# A recording keeps at most this many frames: 10 minutes at 30 frames a second (a frame with
# two faces is one entry). It then stops by itself and says so; nothing already recorded is
# dropped.
MAX_RECORDED_FRAMES = 18_000
HISTORY_SECONDS = 60.0  # the chart beside the bars shows each face's last minute
MAX_HISTORY_FRAMES = 3_600  # ... bounded at 60 frames a second
HISTORY_STEP_S = 0.25  # the chart averages each face over a quarter of a second
# A saved live session's name, and once it is stopped, with its length ("Live webcam, 12 s"):
# photos are named by their count and videos by their file in the same list.
LIVE_SESSION_NAME = "Live webcam"
LIVE_COLUMNS = ["timestamp", *VIDEO_COLUMNS]  # the video export's columns, after a wall-clock time


class LiveRecorder:
    """Bounded, thread-safe memory of one viewer's live stream."""

    def __init__(
        self,
        max_frames: int = MAX_RECORDED_FRAMES,
        history_seconds: float = HISTORY_SECONDS,
        max_history_frames: int = MAX_HISTORY_FRAMES,
        clock=time.monotonic,
        wall_clock=time.time,
    ):
        self._lock = threading.Lock()
        self.start_lock = threading.Lock()  # start_recording's: one press starts a recording
        self._clock, self._wall_clock = clock, wall_clock
        self.max_frames = int(max_frames)
        self.history_seconds = float(history_seconds)
        self._history: deque = deque(maxlen=int(max_history_frames))
        self._frames: list = []
        self._uncertain_below: float | None = None
        self._exports: dict = {}
        self.recording = False
        self.saving_for = ""  # whom the current (or last) recording is saved for, in words
        self.full = False  # the last recording stopped because it reached max_frames
        self._started_mono: float | None = None
        self._started_wall: float | None = None
        self._stopped_mono: float | None = None
        self.sink = None  # the SessionWriter saving the current recording, if it is saved
        self.last_sink = None  # ... and the one that saved the last one (for the page)
        self.wants_crops = False  # the saved recording keeps face thumbnails: add() gets crops

    # --- the page's buttons
    def start(
        self, uncertain_below: float | None = None, sink=None, thumbnails: bool = False
    ) -> None:
        """Start a new recording (the previous one is replaced). ``sink``: a function that
        takes this recording's row builder and returns a ``SessionWriter``
        (``fer_core.records.writer``): every recorded frame is also saved to the records
        database while it records. ``thumbnails``: the saved rows also carry each face's
        48x48 crop as a PNG (asked for explicitly; the downloads never do)."""
        self.stop()
        with self._lock:
            self._frames = []
            self._uncertain_below = uncertain_below
            self._started_mono, self._started_wall = self._clock(), self._wall_clock()
            self._stopped_mono = None
            self.recording, self.full = True, False
            started = (self._started_mono, self._started_wall, uncertain_below)
            self.sink = (
                None if sink is None else sink(lambda items: _recorded_rows(items, *started))
            )
            self.last_sink = self.sink
            self.wants_crops = bool(thumbnails and self.sink is not None)

    def stop(self) -> None:
        with self._lock:
            sink, self.sink = self.sink, None
            self.wants_crops = False
            if self.recording:
                self.recording = False
                self._stopped_mono = self._clock()
        if sink is not None:
            sink.close(wait=False)  # its thread writes what is left and marks it complete

    def clear(self) -> None:
        self.stop()
        with self._lock:
            self._frames = []
            self.recording = self.full = False
            self._started_mono = self._started_wall = self._stopped_mono = None

    def forget_faces(self) -> None:
        """Drop the chart's history (the stream restarted: its face ids start again)."""
        with self._lock:
            self._history.clear()

    # --- the video thread
    def add(self, frame_index: int, image: ImageResult, crops=None) -> None:
        """One analysed frame, the recognizer's ImageResult as it came: appended, nothing
        else (rows are made when the page or the database writer asks). ``crops``: the
        faces' 48x48 crops, when ``wants_crops`` (they go to the saved session only)."""
        now = self._clock()
        results = image.faces
        with self._lock:
            self._history.append((now, results))
            while self._history and now - self._history[0][0] > self.history_seconds:
                self._history.popleft()
            if self.recording:
                self._frames.append((now, frame_index, results))
                sink = self.sink
                if sink is not None:
                    sink.put((now, frame_index, results, crops))
                if len(self._frames) >= self.max_frames:
                    self.recording, self.full = False, True
                    self._stopped_mono = now
                    if sink is not None:
                        self.sink, self.wants_crops = None, False
                        sink.close(wait=False)  # never wait on the video thread

    # --- the page
    @property
    def started_at(self) -> datetime | None:
        """When the current (or last) recording started, in local time."""
        with self._lock:
            started = self._started_wall
        return None if started is None else datetime.fromtimestamp(started)

    @property
    def frame_count(self) -> int:
        with self._lock:
            return len(self._frames)

    def seconds(self) -> float:
        """How long the current (or last) recording has run."""
        with self._lock:
            if self._started_mono is None:
                return 0.0
            end = self._clock() if self.recording else (self._stopped_mono or self._started_mono)
            return max(0.0, end - self._started_mono)

    def rows(self) -> list[dict]:
        """One row per face per recorded frame (a frame without a face gives one row with
        ``faces`` 0), in the video export's columns after ``timestamp`` (ISO 8601, UTC)."""
        with self._lock:
            frames = list(self._frames)
            started_mono, started_wall = self._started_mono, self._started_wall
            threshold = self._uncertain_below
        return _recorded_rows(frames, started_mono, started_wall, threshold)

    def _export(self, kind: str, build) -> bytes:
        """The page asks once a second: a stopped recording is formatted once."""
        with self._lock:
            key = (kind, self._started_wall, len(self._frames), self.recording)
            cached = self._exports.get(kind)
        if cached is not None and cached[0] == key:
            return cached[1]
        data = build()
        with self._lock:
            self._exports[kind] = (key, data)
        return data

    def csv_bytes(self) -> bytes:
        def build():
            # the shared writer: formula-like cells neutralised, numbers kept
            return frame_to_csv_bytes(typed_frame(self.rows(), LIVE_COLUMNS))

        return self._export("csv", build)

    def json_bytes(self) -> bytes:
        def build():
            with self._lock:
                started_wall = self._started_wall
            meta = {
                "started": None
                if started_wall is None
                else datetime.fromtimestamp(started_wall, UTC).isoformat(),
                "seconds": round(self.seconds(), 3),
                "frames": self.frame_count,
                "stopped_because_full": self.full,
                "columns": LIVE_COLUMNS,
            }
            return json.dumps({**meta, "rows": self.rows()}, indent=1, default=_plain).encode()

        return self._export("json", build)

    def history(self, max_faces: int = 4, step_s: float = HISTORY_STEP_S):
        """The last minute as a DataFrame (``face_id``, ``time_s`` in seconds before now,
        one column per emotion, averaged over ``step_s``, which keeps the chart light) for
        ``app_lib.ui.charts.timeline_figure``, or None when no face was seen.

        It holds the ``max_faces`` faces seen most recently, in that order (those on screen
        now first, by id): the chart follows the people in front of the camera, not the
        first ones that ever were. ``attrs["faces_seen"]`` counts every face of the last
        minute, so the page can say how many it leaves out."""
        import pandas as pd

        now = self._clock()
        with self._lock:
            frames = list(self._history)
        records = [
            (face.face_id, mono - now, *map(float, face.probs))
            for mono, results in frames
            if now - mono <= self.history_seconds
            for face in results
            if face.face_id is not None
        ]
        if not records:
            return None
        data = pd.DataFrame(records, columns=["face_id", "time_s", *EMOTIONS])
        last_seen = data.groupby("face_id", as_index=False)["time_s"].max()
        order = list(
            last_seen.sort_values(["time_s", "face_id"], ascending=[False, True])["face_id"]
        )
        rank = {face_id: index for index, face_id in enumerate(order[:max_faces])}
        data = data[data["face_id"].isin(list(rank))]
        if step_s:
            data = data.assign(time_s=(data["time_s"] / step_s).round() * step_s)
            data = data.groupby(["face_id", "time_s"], as_index=False)[list(EMOTIONS)].mean()
        data = (
            data.assign(rank=data["face_id"].map(rank))
            .sort_values(["rank", "time_s"])
            .drop(columns="rank")
            .reset_index(drop=True)
        )
        data.attrs["faces_seen"] = len(order)
        return data


class RecordingStart(NamedTuple):
    started: bool  # False: it was already recording, and nothing changed
    problem: str | None  # why it records without saving


def start_recording(
    recorder: LiveRecorder,
    uncertain_below: float | None,
    store=None,
    viewer=None,
    *,
    thumbnails: bool = False,
    saving_for: str = "",
    **session,
) -> RecordingStart:
    """The Record button: ``recorder`` starts recording; with ``store`` (``Records``), every
    recorded frame is also saved, while it records, to a new "live" session of ``viewer``'s
    (``session``: its person_id, detector and model). ``saving_for``: whom it is saved for, in
    words, kept as ``recorder.saving_for`` while it is saved ("" when it is not).

    A press while it already records changes nothing: it is the press that started it, made
    again before the page answered (a person pressing twice or more on a busy page). Starting
    over would cut the recording in two and leave a stub of it in the history as a session of
    its own. Streamlit may handle those presses at the same time, each in a script thread of
    its own (a rerun request starts a new thread without waiting for the last one), so the
    check and the start are one step under the recorder's ``start_lock``."""
    from fer_core.records.writer import SessionWriter  # sqlalchemy: only for the page

    with recorder.start_lock:
        if recorder.recording:
            return RecordingStart(False, None)
        sink, problem = None, None
        if store is not None:
            try:
                session_id = store.start_session(
                    "live", viewer, name=LIVE_SESSION_NAME, thumbnails=thumbnails, **session
                )
            except FerError as exc:
                problem = f"Recording without saving: {exc}"
            else:

                def sink(to_rows):
                    return SessionWriter(
                        store,
                        session_id,
                        to_rows,
                        final_name=lambda: f"{LIVE_SESSION_NAME}, {duration(recorder.seconds())}",
                    )

        # whom it is saved for, in words (the page says it beside Stop recording), set with
        # the start so that no view of the recording can miss it
        recorder.saving_for = saving_for if sink is not None else ""
        recorder.start(uncertain_below, sink=sink, thumbnails=thumbnails)
    return RecordingStart(True, problem)


# Presses of Capture face within this many seconds of a capture, for the same person and
# emotion, are that same press delivered again (see ``capture_face``).
CAPTURE_REPEAT_S = 2.0


class Captured(NamedTuple):
    kind: str  # "success", "info" (a press counted once), "warning" (no face) or "error"
    message: str
    stored: bool


class CaptureGuard:
    """One capture per press of Capture face, for one browser session.

    On a loaded machine one press can reach the page more than once (seen in CI: two faces
    stored for one click), and Streamlit may handle those deliveries at the same time in script
    threads of their own; a person on a slow page also presses again. A press within
    ``repeat_s`` of a capture for the same person and emotion is counted as that capture. The
    check and the claim are one step under a lock; a capture that fails gives its claim back,
    so pressing again retries at once."""

    def __init__(self, repeat_s: float = CAPTURE_REPEAT_S, clock=time.monotonic):
        self.repeat_s, self._clock = repeat_s, clock
        self._lock = threading.Lock()
        self._last: dict[tuple, float] = {}

    def claim(self, key: tuple) -> bool:
        with self._lock:
            now, last = self._clock(), self._last.get(key)
            if last is not None and now - last < self.repeat_s:
                return False
            self._last[key] = now
            return True

    def release(self, key: tuple) -> None:
        with self._lock:
            self._last.pop(key, None)


def capture_face(guard: CaptureGuard, found, store, person_id: int, emotion: str, viewer):
    """Capture face: store ``found`` (``(crop, face)``, the largest face of the latest
    analysed frame, or None) for ``person_id`` labelled ``emotion``, once per press."""
    if found is None:
        return Captured("warning", "No face in the latest frame: nothing captured.", False)
    crop, face = found
    key = (person_id, emotion)
    if not guard.claim(key):
        return Captured(
            "info",
            f"Captured face #{face.face_id} as {emotion} a moment ago: a press counts once "
            f"(press again after {guard.repeat_s:.0f} s for another picture).",
            False,
        )
    try:
        store.add_capture(person_id, emotion, crop, viewer)
    except FerError as exc:
        guard.release(key)
        return Captured("error", str(exc), False)
    return Captured(
        "success",
        f"Captured face #{face.face_id} as {emotion} (the model said {face.label}).",
        True,
    )


def _recorded_rows(frames, started_mono, started_wall, threshold) -> list[dict]:
    """Recorded frames ``(monotonic time, frame index, results[, crops])`` as export rows:
    the page's downloads and the records database get the same rows. Given crops, each
    face's row also carries ``thumbnail``, the crop as PNG bytes (the database only)."""
    rows = []
    for mono, frame_index, results, *more in frames:
        crops = more[0] if more else None
        elapsed = mono - started_mono
        stamp = datetime.fromtimestamp(started_wall + elapsed, UTC)
        context = {
            "timestamp": stamp.isoformat(timespec="milliseconds"),
            "frame": int(frame_index),
            "time_s": round(elapsed, 3),
        }
        found = face_rows(results, uncertain_below=threshold, **context)
        found = [{column: row.get(column) for column in LIVE_COLUMNS} for row in found]
        if crops is not None:
            for row, crop in zip(found, crops):
                row["thumbnail"] = encode_png(crop)
        rows.extend(found or [{**{c: None for c in LIVE_COLUMNS}, **context, "faces": 0}])
    return rows


def _plain(value):
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


__all__ = [
    "CAPTURE_REPEAT_S",
    "CaptureGuard",
    "Captured",
    "capture_face",
    "LiveRecorder",
    "RecordingStart",
    "start_recording",
    "LIVE_COLUMNS",
    "MAX_RECORDED_FRAMES",
    "HISTORY_SECONDS",
]
