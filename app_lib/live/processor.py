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

Two more queues could grow on a server past its capacity, and neither may (issue 25):
streamlit-webrtc's relay queued every frame in front of the encoder (``app_lib.live.relay``
keeps only the newest), and the server's network loop, which shares the CPU with every
stream's analysis, fell behind reading its sockets, so the kernel held seconds of video.
``FrameLag`` notices that from the frames themselves (each arrives later after its own
timestamp than the stream's usual), and a processor whose frames are late skips their
analysis until they are not: the server sheds analysis, never falls behind.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from app_lib.live.recording import LiveRecorder
from fer_core import EMOTIONS, Recognizer
from fer_core.errors import ConfigError
from fer_core.faces import DEFAULT_DETECTOR, to_grey
from fer_core.recognition.drawing import draw_results
from fer_core.recognition.results import FaceResult, ImageResult
from fer_core.recognition.uncertainty import threshold_of

logger = logging.getLogger(__name__)

ICE_SERVERS_ENV = "FER_ICE_SERVERS"
# The detector runs on every 3rd frame; the frames between classify the tracked boxes. On a
# ~200 px face moving over 640x480 frames (python -m bench.peers, "moving"), the face stayed
# in 100% of frames with one id, and the Haar live frame took a median 0.037 and a mean 0.117
# of fer's time (every frame: 0.37).
LIVE_DETECT_EVERY = 3


ICE_POLICIES = ("all", "relay")
TURN_CREDENTIAL_SECONDS = 12 * 3600  # how long a credential minted from a TURN secret lasts


def turn_credentials(secret: str, now: float | None = None, user: str = "fer") -> dict:
    """Time-limited TURN credentials from a shared secret (the "TURN REST API" scheme coturn
    implements with ``use-auth-secret``): the username carries its expiry time, the credential
    is the base64 HMAC-SHA1 of the username under the secret. The secret itself never reaches
    a browser."""
    expiry = int(time.time() if now is None else now) + TURN_CREDENTIAL_SECONDS
    username = f"{expiry}:{user}"
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return {"username": username, "credential": base64.b64encode(digest).decode("ascii")}


def rtc_configuration(environ=None, now: float | None = None) -> dict:
    """The WebRTC configuration, from ``FER_ICE_SERVERS``: ``{"iceServers": [...]}`` and, when
    given, ``"iceTransportPolicy"``. The browser gets all of it (``frontend_rtc``); the server
    (aiortc, which has no transport policy) gets the servers (``server_rtc``).

    Default: no ICE servers at all (``{"iceServers": []}``): browser and app talk directly,
    which works when both run on the same machine or LAN, and nothing is contacted outside.
    Behind NAT or a firewall, set ``FER_ICE_SERVERS`` to a JSON list of ICE servers, e.g.
    ``[{"urls": ["stun:stun.example.org:3478"]}]`` or, with TURN,
    ``[{"urls": "turn:turn.example.org:3478", "username": "u", "credential": "p"}]``; a TURN
    server with ``"secret"`` instead (coturn's ``static-auth-secret``) gets credentials
    minted from it, valid for 12 hours, so the secret stays on the server. A list of URL
    strings is accepted too. For the full configuration give an object:
    ``{"iceServers": [...], "iceTransportPolicy": "relay"}`` ("relay": every stream goes
    through the TURN server, e.g. to test it, or where direct paths must not be tried).
    """
    environ = os.environ if environ is None else environ
    raw = (environ.get(ICE_SERVERS_ENV) or "").strip()
    if not raw:
        return {"iceServers": []}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(
            f"{ICE_SERVERS_ENV} is not valid JSON ({exc}); expected a list such "
            'as [{"urls": ["stun:stun.example.org:3478"]}].'
        ) from exc
    policy = None
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"iceServers", "iceTransportPolicy"})
        if unknown:
            raise ConfigError(
                f"{ICE_SERVERS_ENV}: unknown setting {', '.join(map(repr, unknown))}; an object "
                'takes "iceServers" and "iceTransportPolicy".'
            )
        policy = value.get("iceTransportPolicy")
        if policy is not None and policy not in ICE_POLICIES:
            raise ConfigError(
                f'{ICE_SERVERS_ENV}: "iceTransportPolicy" is "all" or "relay" (got {policy!r}).'
            )
        value = value.get("iceServers", [])
    if not isinstance(value, list):
        raise ConfigError(f"{ICE_SERVERS_ENV} must be a JSON list of ICE servers.")
    servers = [_ice_server(server, now) for server in value]
    if policy == "relay" and not any(
        url.startswith(("turn:", "turns:")) for server in servers for url in server["urls"]
    ):
        raise ConfigError(
            f'{ICE_SERVERS_ENV}: "iceTransportPolicy": "relay" needs a TURN server (turn: or '
            "turns:); without one no stream can connect."
        )
    return {"iceServers": servers, **({"iceTransportPolicy": policy} if policy else {})}


def _ice_server(server, now: float | None) -> dict:
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
    entry: dict = {"urls": urls}
    if server.get("secret"):
        if "username" in server or "credential" in server:
            raise ConfigError(
                f'{ICE_SERVERS_ENV}: give a TURN server either "secret" or "username" and '
                '"credential", not both.'
            )
        entry.update(turn_credentials(str(server["secret"]), now))
    for key in ("username", "credential"):
        if key in server:
            entry[key] = str(server[key])
    return entry


def frontend_rtc(config: dict) -> dict:
    """What the browser's RTCPeerConnection gets: the whole configuration."""
    return dict(config)


def server_rtc(config: dict) -> dict:
    """What the server's aiortc peer gets: the ICE servers (aiortc has no transport policy;
    a browser forced to relay reaches it through the relay all the same)."""
    return {"iceServers": list(config.get("iceServers", []))}


# After START, how long the page waits for the stream before it says the connection failed
# (on loopback and a LAN a stream connects within 1-3 s; through a TURN relay a little more).
ICE_PATIENCE_SECONDS = 12.0


def no_connection_message(waited: float, config: dict) -> str:
    """What to do when START was pressed but no video came back: the browser and the server
    found no network path (ICE), typically a firewall or NAT between them."""
    servers = config.get("iceServers") or []
    has_turn = any(
        url.startswith(("turn:", "turns:")) for server in servers for url in server["urls"]
    )
    advice = (
        "The TURN relay configured in "
        f"`{ICE_SERVERS_ENV}` did not help either: check that it runs and that its ports "
        "(its listening port, 3478 by default, and its relay port range) are open to both the browser and this server."
        if has_turn
        else "Browser and server need a TURN relay between them: the administrator sets "
        f"`{ICE_SERVERS_ENV}` (docs/sharing.md gives a tested coturn setup)."
    )
    return (
        f"**No video after {waited:.0f} s: the browser could not connect to the server.** "
        "They are probably on different networks, or a firewall blocks the media (UDP). "
        f"{advice} Press STOP, then START, to try again."
    )


@dataclass
class LiveSnapshot:
    """The latest processed frame's results, as handed from the video thread to the page:
    the recognizer's ImageResult (faces with their tracker ids, the model's threshold) as it
    came, and the stream's figures."""

    result: ImageResult = field(default_factory=ImageResult)
    frame_index: int = 0
    fps: float = 0.0  # frames processed per second (last few seconds)
    skipped: int = 0  # frames of this stream not analysed: they arrived late (a busy server)
    latency_ms: float = 0.0  # one frame: decode, detect, classify, draw
    detect_ms: float = 0.0
    classify_ms: float = 0.0
    updated: float = 0.0  # time.time() when published
    error: str | None = None
    smallest_face: int | None = None  # the smallest face (px) the detector looks for
    image: np.ndarray | None = None  # the annotated frame (for a snapshot; never copied)

    @property
    def faces(self) -> list[FaceResult]:
        return self.result.faces

    @property
    def detector(self) -> str:
        return self.result.detector

    @property
    def frame_size(self) -> tuple[int, int]:
        """Width, height of the frame analysed."""
        return (self.result.width, self.result.height)

    @property
    def top(self) -> FaceResult | None:
        """The most confident face (largest box on ties), or None: the page's heading names
        it, so the heading is the answer the model is surest of."""
        if not self.faces:
            return None
        return max(self.faces, key=lambda f: (f.confidence, f.area))

    def shown_label(self, face: FaceResult) -> str:
        """The label ``face`` has on the video: the page's heading, lines and bars say
        "uncertain" exactly where the overlay does (one threshold, the snapshot's)."""
        return face.shown_label(self.result.uncertain_below)


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


# A frame this much later than its stream's usual (arrival minus the frame's own timestamp)
# waited in a queue on its way in: its analysis is skipped, the CPU goes to catching up.
LAG_LIMIT_S = 0.1
# Even when every frame is late, one frame a second is analysed: the picture, the results
# and the stream's place under FER_MAX_LIVE_STREAMS never go stale.
MAX_SKIP_S = 1.0
LAG_BASELINE_S = 30.0  # the usual delay: the least of this many seconds (clocks drift)


class FrameLag:
    """How much later than usual frames arrive: the time a frame arrived (``frame.opaque``,
    stamped by ``app_lib.live.relay.ArrivalStamped`` as it came off the network) minus the
    frame's own timestamp (the sender's clock), above the least of that over the last
    ``LAG_BASELINE_S`` seconds. The offset between the two clocks and the network's fixed
    delay cancel out; what is left is time spent in queues, which on a busy server is the
    server's own backlog. A frame without an arrival time or a timestamp (one that did not
    come over the network) is never late."""

    def __init__(self, baseline_s: float = LAG_BASELINE_S):
        self.baseline_s = baseline_s
        self._minima: deque = deque()  # (second, least delay in that second)

    def reset(self) -> None:
        self._minima.clear()

    def lag(self, frame) -> float:
        arrived = getattr(frame, "opaque", None)
        pts, time_base = getattr(frame, "pts", None), getattr(frame, "time_base", None)
        if not isinstance(arrived, float) or pts is None or time_base is None:
            return 0.0
        delay = arrived - float(pts * time_base)
        second = int(arrived)
        if self._minima and self._minima[-1][0] == second:
            if delay < self._minima[-1][1]:
                self._minima[-1] = (second, delay)
        else:
            self._minima.append((second, delay))
        while self._minima[0][0] <= second - self.baseline_s:
            self._minima.popleft()
        return max(0.0, delay - min(d for _, d in self._minima))


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
        self._last: tuple | None = None  # the latest (frame, results): a reference, no copy
        self.frame_lag = FrameLag()
        self.skipped = 0  # frames not analysed because they arrived late (FrameLag)
        self._last_out = None  # the latest annotated av.VideoFrame
        self._last_analysed = 0.0  # self.clock() at the latest analysis
        self.clock = time.monotonic  # the clock ArrivalStamped stamps frames with
        # Asked before each frame is analysed: may this stream be analysed now (the server's
        # limit, app_lib.live.limit)? None: always.
        self.admission: Callable[[], bool] | None = None
        self.held_back = 0  # frames not analysed because the stream had no place
        self.held_back_at: float | None = None  # time.time() of the latest such frame

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

    def face_crop(self):
        """The 48x48 grey crop the model classified for the largest face of the latest frame
        (the recognizer's own crop: the first framing, eyes levelled where it aligns), and
        that face's result; None when the latest frame has no face."""
        with self._lock:
            last = self._last
        if last is None or not last[1]:
            return None
        rgb, results = last
        face = max(results, key=lambda r: r.box[2] * r.box[3])
        return self._crops(rgb, [face])[0], face

    def _crops(self, rgb: np.ndarray, results) -> np.ndarray:
        """The recognizer's own 48x48 crops of ``results``' faces (its first framing)."""
        return self.recognizer.face_crops(
            to_grey(rgb), [r.box for r in results], [r.eyes for r in results]
        )[0]

    def reset(self) -> None:
        """Forget tracked faces and timings (e.g. when the stream restarts). A recording stops
        and is kept for download."""
        with self._lock:
            self.recognizer.tracker.reset()
            self._times.clear()
            self.frames = 0
            self._last = None
            self.skipped = 0
            self._last_out = None
            self.frame_lag.reset()
            self.held_back, self.held_back_at = 0, None
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
            image = self.recognizer.recognize_stream(rgb)
            annotated = draw_results(rgb, image.faces, threshold)
        except Exception as exc:  # one bad frame must not end the stream; the page shows it
            logger.exception("live frame failed")
            image = self.recognizer.image_result(rgb, [])
            annotated, error = rgb, f"{type(exc).__name__}: {exc}"
        results = image.faces
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
            self._last = (rgb, results)
        # a saved recording that keeps thumbnails
        crops = self._crops(rgb, results) if self.recorder.wants_crops and results else None
        self.recorder.add(index, image, crops)
        snapshot = LiveSnapshot(
            result=image,
            frame_index=index,
            fps=fps,
            skipped=self.skipped,
            latency_ms=(finished - started) * 1e3,
            detect_ms=float(timings.get("detect_ms", 0.0)),
            classify_ms=float(timings.get("classify_ms", 0.0)),
            updated=time.time(),
            error=error,
            smallest_face=self.recognizer.smallest_face,
            image=annotated,
        )
        self.holder.publish(snapshot)
        return annotated, snapshot

    def __call__(self, frame):
        import av

        if self.admission is not None and not self.admission():
            # No place under the server's limit: not analysed, returned as it came.
            self.held_back += 1
            self.held_back_at = time.time()
            return frame
        now = self.clock()
        late = self.frame_lag.lag(frame) > LAG_LIMIT_S
        if late and self._last_out is not None and now - self._last_analysed < MAX_SKIP_S:
            # The server is behind: this frame waited in a queue. The browser keeps the
            # latest annotated picture; the CPU goes to catching up.
            self.skipped += 1
            return self._last_out
        rgb = frame.to_ndarray(format="rgb24")
        annotated, _ = self.process(rgb)
        out = av.VideoFrame.from_ndarray(np.ascontiguousarray(annotated), format="rgb24")
        out.pts, out.time_base = frame.pts, frame.time_base
        self._last_out, self._last_analysed = out, now
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


def describe_faces(snapshot: LiveSnapshot | None) -> list[str]:
    """One line per face, most confident first: ``face #1: happy (88%)``, or
    ``face #2: uncertain: happy/sad (30%)``."""
    if snapshot is None:
        return []
    faces = sorted(snapshot.faces, key=lambda f: -f.confidence)
    return [
        f"face #{f.face_id}: {snapshot.shown_label(f)} ({f.confidence * 100:.0f}%)" for f in faces
    ]


MAX_BAR_FACES = 4  # the panel beside the video has room for four faces' bars


def bar_faces(
    snapshot: LiveSnapshot | None, limit: int = MAX_BAR_FACES
) -> tuple[list[FaceResult], str | None]:
    """The faces whose bars the panel shows: the ``limit`` most confident (so the heading's
    face is among them), in face-id order (so the panels do not jump); and a note such as
    "showing 4 of 12 faces" when that leaves faces out, else None."""
    faces = [] if snapshot is None else snapshot.faces
    chosen = sorted(faces, key=lambda f: -f.confidence)[:limit]
    return sorted(chosen, key=lambda f: f.face_id or 0), showing_note(len(chosen), len(faces))


def showing_note(shown: int, total: int) -> str | None:
    """``"showing 4 of 12 faces"`` when a chart leaves faces out; None when it shows all."""
    return f"showing {shown} of {total} faces" if shown < total else None


__all__ = [
    "LiveProcessor",
    "FrameLag",
    "LAG_LIMIT_S",
    "ResultHolder",
    "LiveSnapshot",
    "rtc_configuration",
    "no_connection_message",
    "ICE_PATIENCE_SECONDS",
    "frontend_rtc",
    "server_rtc",
    "turn_credentials",
    "describe_faces",
    "bar_faces",
    "showing_note",
    "faces_too_small",
    "LiveRecorder",
    "ICE_SERVERS_ENV",
    "EMOTIONS",
]
