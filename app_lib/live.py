"""The live page's frame processing, as plain Python (no streamlit here), so it is tested
on real frames without a browser.

``LiveProcessor`` is the ``video_frame_callback`` given to ``webrtc_streamer``: it runs on
streamlit-webrtc's worker thread, analyses a frame (detect, classify, smooth per face), draws
boxes and labels on it and publishes the latest result to a ``ResultHolder``. The page's
script thread reads the holder a few times a second. Nothing here touches ``st.*``.

Frames are dropped, not queued, when the model is slower than the camera: with
``async_processing=True`` (streamlit-webrtc's default) the worker thread takes all frames
that arrived while the previous one was processed and, as a ``video_frame_callback`` has no
``recv_queued``, processes only the newest one (``CallbackAttachableProcessor.recv_queued``
returns ``[self.recv(frames[-1])]``); the browser keeps getting the last processed frame
in the meantime. The latency shown is therefore the time of one frame, never a growing queue.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from app_lib.live_record import LiveRecorder
from fer_core import EMOTIONS, Recognizer
from fer_core.errors import ConfigError
from fer_core.faces import DEFAULT_DETECTOR
from fer_core.recognition.drawing import draw_results
from fer_core.recognition.uncertainty import is_uncertain, short_label, threshold_of

logger = logging.getLogger(__name__)

ICE_SERVERS_ENV = "FER_ICE_SERVERS"
# The detector runs on every 3rd frame; the frames between classify the tracked boxes. On a
# ~200 px face moving over 640x480 frames (python -m bench.peers, "moving"), the face stayed
# in 100% of frames with one id, and the Haar live frame took a median 0.037 and a mean 0.117
# of fer's time (every frame: 0.37).
LIVE_DETECT_EVERY = 3


def rtc_configuration(environ=None) -> dict:
    """The WebRTC configuration for both browser and server.

    Default: no ICE servers at all (``{"iceServers": []}``): browser and app talk directly,
    which works when both run on the same machine or LAN, and nothing is contacted outside.
    Behind NAT or on a hosted server, set ``FER_ICE_SERVERS`` to a JSON list of ICE servers,
    e.g. ``[{"urls": ["stun:stun.l.google.com:19302"]}]`` or, with TURN,
    ``[{"urls": "turn:turn.example.org:3478", "username": "u", "credential": "p"}]``.
    A list of URL strings is accepted too: ``["stun:stun.example.org:3478"]``.
    """
    environ = os.environ if environ is None else environ
    raw = (environ.get(ICE_SERVERS_ENV) or "").strip()
    if not raw:
        return {"iceServers": []}
    try:
        servers = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(
            f"{ICE_SERVERS_ENV} is not valid JSON ({exc}); expected a list such "
            'as [{"urls": ["stun:stun.l.google.com:19302"]}].'
        ) from exc
    if isinstance(servers, dict) and "iceServers" in servers:
        servers = servers["iceServers"]
    if not isinstance(servers, list):
        raise ConfigError(f"{ICE_SERVERS_ENV} must be a JSON list of ICE servers.")
    normalised = []
    for server in servers:
        if isinstance(server, str):
            server = {"urls": [server]}
        if not isinstance(server, dict) or not server.get("urls"):
            raise ConfigError(f'{ICE_SERVERS_ENV}: every ICE server needs "urls" (got {server!r}).')
        urls = server["urls"]
        urls = [urls] if isinstance(urls, str) else list(urls)
        if not all(
            isinstance(u, str) and u.split(":", 1)[0] in ("stun", "stuns", "turn", "turns")
            for u in urls
        ):
            raise ConfigError(
                f"{ICE_SERVERS_ENV}: ICE server URLs start with stun:, stuns:, "
                f"turn: or turns: (got {urls!r})."
            )
        entry = {"urls": urls}
        for key in ("username", "credential"):
            if key in server:
                entry[key] = str(server[key])
        normalised.append(entry)
    return {"iceServers": normalised}


@dataclass
class LiveSnapshot:
    """The latest processed frame's results, as handed from the video thread to the page."""

    # face_id, box, label, confidence, probs, and ``shown``: the label the overlay gives it
    # ("happy", or "uncertain: happy/sad" below the model card's threshold)
    faces: list[dict] = field(default_factory=list)
    frame_index: int = 0
    frame_size: tuple[int, int] = (0, 0)  # width, height
    fps: float = 0.0  # frames processed per second (last few seconds)
    latency_ms: float = 0.0  # one frame: decode, detect, classify, draw
    detect_ms: float = 0.0
    classify_ms: float = 0.0
    updated: float = 0.0  # time.time() when published
    error: str | None = None
    detector: str = DEFAULT_DETECTOR
    smallest_face: int | None = None  # the smallest face (px) the detector looks for
    image: np.ndarray | None = None  # the annotated frame (for a snapshot; never copied)

    @property
    def top(self) -> dict | None:
        """The most confident face (largest box on ties), or None: the page's heading names
        it, so the heading is the answer the model is surest of."""
        if not self.faces:
            return None
        return max(self.faces, key=lambda f: (f["confidence"], f["box"][2] * f["box"][3]))


class ResultHolder:
    """Lock-protected hand-over of the newest ``LiveSnapshot`` (the newest replaces the
    older one: the page shows the present, not a backlog)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._snapshot: LiveSnapshot | None = None

    def publish(self, snapshot: LiveSnapshot) -> None:
        with self._lock:
            self._snapshot = snapshot

    def latest(self) -> LiveSnapshot | None:
        with self._lock:
            return self._snapshot

    def clear(self) -> None:
        with self._lock:
            self._snapshot = None


class LiveProcessor:
    """``video_frame_callback``: av.VideoFrame in, annotated av.VideoFrame out.

    ``model``: an EmotionModel, a path or None (the shipped model). One processor per viewer
    (its face tracker follows one video stream).
    """

    def __init__(
        self,
        model=None,
        smoothing: float = 0.5,
        holder: ResultHolder | None = None,
        fps_window_s: float = 3.0,
        detector: str = DEFAULT_DETECTOR,
        detect_every: int = LIVE_DETECT_EVERY,
        min_face: int | None = None,
        recorder: LiveRecorder | None = None,
    ):
        self.recognizer = Recognizer(
            model,
            preset="live",
            smoothing=smoothing,
            detector=detector,
            detect_every=detect_every,
            min_face=min_face,
        )
        self.holder = holder or ResultHolder()
        self.recorder = recorder or LiveRecorder()
        self._times: deque = deque()
        self._fps_window_s = fps_window_s
        self._lock = threading.Lock()
        self.frames = 0

    @property
    def model(self):
        return self.recognizer.model

    @property
    def detector(self) -> str:
        return self.recognizer.detector_name

    def set_detector(self, name: str, min_face: int | None = None) -> None:
        """Switch the face detector (and the smallest face it reports) while streaming: the
        next frame uses the new one. Tracked faces (ids, smoothed probabilities) carry over."""
        current = self.recognizer
        min_face = None if min_face is None else int(min_face)
        if name == current.detector_name and min_face == current.min_face:
            return
        replacement = Recognizer(
            current.model,
            preset="live",
            detector=name,
            smoothing=current.tracker.smoothing,
            detect_every=current.detect_every,
            min_face=min_face,
        )
        replacement.tracker = current.tracker
        replacement._stream_lock = current._stream_lock
        self.recognizer = replacement  # one attribute write: the video thread sees old or new

    def set_smoothing(self, smoothing: float) -> None:
        self.recognizer.set_smoothing(float(smoothing))

    def reset(self) -> None:
        """Forget tracked faces and timings (e.g. when the stream restarts). A recording stops
        and is kept for download."""
        with self._lock:
            self.recognizer.tracker.reset()
            self._times.clear()
            self.frames = 0
        self.holder.clear()
        self.recorder.stop()
        self.recorder.forget_faces()

    def process(self, rgb: np.ndarray) -> tuple[np.ndarray, LiveSnapshot]:
        """Analyse one RGB frame; returns the annotated frame and the published snapshot."""
        started = time.perf_counter()
        error = None
        # one threshold for the overlay and the page's labels, so both say "uncertain" alike
        threshold = threshold_of(self.recognizer.model)
        try:
            results = self.recognizer.analyze_stream(rgb)
            annotated = draw_results(rgb, results, threshold)
        except Exception as exc:  # one bad frame must not end the stream; the page shows it
            logger.exception("live frame failed")
            results, annotated, error = [], rgb, f"{type(exc).__name__}: {exc}"
        finished = time.perf_counter()
        timings = dict(self.recognizer.last_timings)
        with self._lock:
            self.frames += 1
            self._times.append(finished)
            while self._times and finished - self._times[0] > self._fps_window_s:
                self._times.popleft()
            span = self._times[-1] - self._times[0] if len(self._times) > 1 else 0.0
            fps = (len(self._times) - 1) / span if span > 0 else 0.0
            index = self.frames
        self.recorder.add(index, results)
        snapshot = LiveSnapshot(
            faces=[
                {
                    "face_id": r.face_id,
                    "box": tuple(int(v) for v in r.box),
                    "label": r.label,
                    "confidence": float(r.confidence),
                    "score": r.score,
                    "carried": r.carried,
                    "probs": [float(p) for p in r.probs],
                    "uncertain": is_uncertain(r.probs, threshold),
                    "shown": short_label(r.probs, threshold),
                }
                for r in results
            ],
            frame_index=index,
            frame_size=(int(rgb.shape[1]), int(rgb.shape[0])),
            fps=fps,
            latency_ms=(finished - started) * 1e3,
            detect_ms=float(timings.get("detect_ms", 0.0)),
            classify_ms=float(timings.get("classify_ms", 0.0)),
            updated=time.time(),
            error=error,
            detector=self.recognizer.detector_name,
            smallest_face=self.recognizer.smallest_face,
            image=annotated,
        )
        self.holder.publish(snapshot)
        return annotated, snapshot

    def __call__(self, frame):
        import av

        rgb = frame.to_ndarray(format="rgb24")
        annotated, _ = self.process(rgb)
        out = av.VideoFrame.from_ndarray(np.ascontiguousarray(annotated), format="rgb24")
        out.pts, out.time_base = frame.pts, frame.time_base
        return out


# A face at arm's length from a laptop camera fills about a third of the frame's height; below
# that share of the height the detector's smallest face is out of reach.
TYPICAL_FACE_SHARE = 0.3


def faces_too_small(snapshot: LiveSnapshot | None) -> bool:
    """True when no face is found and the frame arriving is so small that a face at the usual
    distance would be below the smallest face the detector looks for: the page then says so
    instead of asking the user to face the camera."""
    if snapshot is None or snapshot.faces or not snapshot.smallest_face:
        return False
    height = snapshot.frame_size[1]
    return 0 < height and TYPICAL_FACE_SHARE * height < snapshot.smallest_face


def shown_label(face: dict) -> str:
    """The label a face has on the video (``LiveProcessor`` put it in the snapshot): the
    page's heading, lines and bars say "uncertain" exactly where the overlay does."""
    return face.get("shown") or face["label"]


def describe_faces(snapshot: LiveSnapshot | None) -> list[str]:
    """One line per face, most confident first: ``face #1: happy (88%)``, or
    ``face #2: uncertain: happy/sad (30%)``."""
    if snapshot is None:
        return []
    faces = sorted(snapshot.faces, key=lambda f: -f["confidence"])
    return [f"face #{f['face_id']}: {shown_label(f)} ({f['confidence'] * 100:.0f}%)" for f in faces]


MAX_BAR_FACES = 4  # the panel beside the video has room for four faces' bars


def bar_faces(
    snapshot: LiveSnapshot | None, limit: int = MAX_BAR_FACES
) -> tuple[list[dict], str | None]:
    """The faces whose bars the panel shows: the ``limit`` most confident (so the heading's
    face is among them), in face-id order (so the panels do not jump); and a note such as
    "showing 4 of 12 faces" when that leaves faces out, else None."""
    faces = [] if snapshot is None else snapshot.faces
    chosen = sorted(faces, key=lambda f: -f["confidence"])[:limit]
    return sorted(chosen, key=lambda f: f["face_id"] or 0), showing_note(len(chosen), len(faces))


def showing_note(shown: int, total: int) -> str | None:
    """``"showing 4 of 12 faces"`` when a chart leaves faces out; None when it shows all."""
    return f"showing {shown} of {total} faces" if shown < total else None


__all__ = [
    "LiveProcessor",
    "ResultHolder",
    "LiveSnapshot",
    "rtc_configuration",
    "describe_faces",
    "shown_label",
    "bar_faces",
    "showing_note",
    "faces_too_small",
    "LiveRecorder",
    "ICE_SERVERS_ENV",
    "EMOTIONS",
]
