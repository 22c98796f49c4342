"""Image -> faces -> emotions. One path for photos, video files and the live webcam."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from fer_core.errors import ConfigError
from fer_core.faces import (
    DEFAULT_DETECTOR,
    HaarDetector,
    detector_info,
    to_grey,
)
from fer_core.faces.common import iou
from fer_core.faces.haar import HAAR_PRESETS
from fer_core.models.inference import EmotionModel, load_model
from fer_core.recognition.preprocess import FRAMING_SETS, FRAMINGS, Framing, crop_faces
from fer_core.recognition.results import FaceResult, ImageResult
from fer_core.recognition.uncertainty import threshold_of

# Haar's presets (kept under this name for old callers). "photo" is the seed's settings on the
# full-size image (best recall); "live" detects on a frame downscaled to 320 px wide.
PRESETS = HAAR_PRESETS
LIVE_CARRY_FRAMES = 5  # the live preset draws a missed face for up to 5 frames


def _int_box(box) -> tuple[int, int, int, int]:
    x, y, w, h = (int(v) for v in box)
    return (x, y, w, h)


def _affinity(track_box, box) -> float:
    """IoU, or, for boxes of similar size whose centres are close (a face that moved between
    sparsely sampled frames, or a box that jittered), a score just above the IoU threshold
    scaled by how close the centres are."""
    overlap = iou(track_box, box)
    tx, ty, tw, th = track_box
    x, y, w, h = box
    size_ratio = min(tw, w) / max(tw, w, 1)
    distance = np.hypot((tx + tw / 2) - (x + w / 2), (ty + th / 2) - (y + h / 2))
    reach = 0.8 * max(tw, w)
    if size_ratio >= 0.6 and distance < reach:
        return max(overlap, 0.3 + 0.2 * (1 - distance / reach))
    return overlap


@dataclass
class _Track:
    face_id: int
    box: tuple[int, int, int, int]
    probs: np.ndarray
    missed: int = 0
    hits: int = 1
    score: float | None = None


@dataclass
class FaceTracker:
    """Gives faces stable ids across frames (greedy IoU matching) and smooths each face's
    probabilities: ``smoothed = smoothing * previous + (1 - smoothing) * current``.

    A track the detector misses keeps its id for ``max_missed`` frames (15: half a second at
    30 fps) after the last frame that showed it. With ``carry_missed`` > 0 (the live preset:
    5), a face seen in at least ``carry_min_hits`` frames is carried through up to
    ``carry_missed`` missed frames: it stays in the results, at its last box, with its last
    probabilities and ``carried=True``, so a moving face does not blink out of the overlay."""

    smoothing: float = 0.5
    min_iou: float = 0.3
    max_missed: int = 15
    carry_missed: int = 0
    carry_min_hits: int = 3
    _tracks: list = field(default_factory=list)
    _next_id: int = 1

    def __post_init__(self):
        if not 0.0 <= self.smoothing < 1.0:
            raise ConfigError("smoothing must lie in [0, 1).")

    def reset(self) -> None:
        self._tracks = []
        self._next_id = 1

    def update(self, results: list[FaceResult]) -> list[FaceResult]:
        pairs = sorted(
            (
                (_affinity(t.box, r.box), ti, ri)
                for ti, t in enumerate(self._tracks)
                for ri, r in enumerate(results)
            ),
            reverse=True,
        )
        used_tracks, used_results = set(), set()
        for overlap, ti, ri in pairs:
            if overlap < self.min_iou or ti in used_tracks or ri in used_results:
                continue
            used_tracks.add(ti)
            used_results.add(ri)
            track, result = self._tracks[ti], results[ri]
            track.probs = self.smoothing * track.probs + (1 - self.smoothing) * result.probs
            track.box, track.missed, track.score = result.box, 0, result.score
            track.hits += 1
            result.probs, result.face_id = track.probs.copy(), track.face_id
        carried = []
        for ti, track in enumerate(self._tracks):
            if ti not in used_tracks:
                track.missed += 1
                if track.missed <= self.carry_missed and track.hits >= self.carry_min_hits:
                    carried.append(
                        FaceResult(
                            track.box,
                            track.probs.copy(),
                            track.face_id,
                            score=track.score,
                            carried=True,
                        )
                    )
        # the half second counts from the last frame that showed the face: carried frames
        # (shown at the last box) do not use it up
        self._tracks = [
            t
            for t in self._tracks
            if t.missed
            <= self.max_missed + (self.carry_missed if t.hits >= self.carry_min_hits else 0)
        ]
        for ri, result in enumerate(results):
            if ri not in used_results:
                track = _Track(self._next_id, result.box, result.probs.copy(), score=result.score)
                self._next_id += 1
                self._tracks.append(track)
                result.face_id = track.face_id
        return results + carried


class Recognizer:
    """Detect every face in an RGB image and classify them all in one model call.

    ``model``: an EmotionModel, a path, or None (the shipped default).
    ``detector``: one of ``fer_core.DETECTORS`` (``fer_core.faces.registry`` describes each;
    ``DEFAULT_DETECTOR`` when not given).
    ``preset``: "photo" (default) or "live"; ``detector_settings`` (of the detector's own
    settings type, as its presets are) overrides it.
    ``framing``: "auto" (the detector's FER2013 framing: ``preprocess.FRAMING_SETS`` for photos,
    ``FRAMINGS`` for live), a ``Framing``, a tuple of them (averaged), or None (the bare box,
    widened by ``margin``).
    ``align``: rotate each face so that its eyes are level (detectors that give eye points).
    ``min_score``: drop faces whose detector score is below it (None: the detector's default).
    ``min_face``: the smallest face to report, in pixels of the image (the larger side of its
    box); Haar then searches from that size up (None: the preset's own, see ``smallest_face``).
    ``smoothing``: for streams (``analyze_stream``), weight of the previous probabilities.
    ``detect_every``: for streams, run the detector on every N-th frame only (see
    ``analyze_stream``).
    """

    def __init__(
        self,
        model: EmotionModel | str | None = None,
        preset: str = "photo",
        detector_settings: object | None = None,
        smoothing: float = 0.5,
        margin: float = 0.0,
        detector: str = DEFAULT_DETECTOR,
        framing: Framing | tuple[Framing, ...] | str | None = "auto",
        align: bool = False,
        min_score: float | None = None,
        detect_every: int = 1,
        min_face: int | None = None,
    ):
        info = detector_info(detector)  # a ConfigError for an unknown name
        if preset not in info.presets:
            raise ConfigError(
                f"Unknown preset {preset!r}; choose one of {', '.join(info.presets)}."
            )
        if isinstance(framing, str) and framing == "auto":
            framing = (FRAMINGS if preset == "live" else FRAMING_SETS).get(detector)
        if isinstance(framing, (list, tuple)):
            framing = tuple(framing)
            if not framing or not all(isinstance(f, Framing) for f in framing):
                raise ConfigError("framing must be 'auto', a Framing, a tuple of Framings or None.")
        elif framing is not None and not isinstance(framing, Framing):
            raise ConfigError("framing must be 'auto', a Framing, a tuple of Framings or None.")
        self.model = model if isinstance(model, EmotionModel) else load_model(model)
        self.preset = preset
        self.detector_name = detector
        if min_face is not None and not 8 <= int(min_face) <= 4096:
            raise ConfigError("min_face must lie between 8 and 4096 pixels.")
        self.min_face = None if min_face is None else int(min_face)
        if detector_settings is not None:
            kind = type(info.presets[preset])
            if not isinstance(detector_settings, kind):
                raise ConfigError(
                    f"detector_settings for {info.label} must be a {kind.__name__}, "
                    f"not a {type(detector_settings).__name__}."
                )
            self.detector = info.make(detector_settings)
        else:
            self.detector = info.detector(preset)
        if isinstance(self.detector, HaarDetector) and self.min_face is not None:
            settings = self.detector.settings
            changes: dict[str, object] = {"min_size": self.min_face}
            if settings.large_from is not None and self.min_face >= settings.large_from:
                # only large faces are wanted: the large-face pass alone
                changes.update(
                    large_from=None,
                    scale_factor=settings.large_scale_factor,
                    min_neighbors=settings.min_neighbors
                    if settings.large_min_neighbors is None
                    else settings.large_min_neighbors,
                )
            self.detector = HaarDetector(settings, **changes)
        self.margin = margin
        self.framing = framing
        self.align = align
        self.min_score = min_score
        if not 1 <= int(detect_every) <= 10:
            raise ConfigError("detect_every must lie between 1 and 10.")
        self.detect_every = int(detect_every)
        self._stream_frames = 0
        # Live frames carry a face the detector misses for a few frames; photos and videos
        # report only what was detected.
        self.tracker = FaceTracker(
            smoothing=smoothing, carry_missed=LIVE_CARRY_FRAMES if preset == "live" else 0
        )
        self._stream_lock = threading.Lock()
        self.last_timings: dict[str, float] = {}

    @property
    def smallest_face(self) -> int | None:
        """The smallest face (pixels) this recognizer reports, where it has a limit: the
        ``min_face`` given, else Haar's ``min_size``; None for BlazeFace without ``min_face``."""
        if self.min_face is not None:
            return self.min_face
        settings = getattr(self.detector, "settings", None)
        return getattr(settings, "min_size", None)

    def analyze(self, rgb_image: np.ndarray) -> list[FaceResult]:
        """All faces in one image, each with box, probabilities and label. No face: []."""
        return self.analyze_many([rgb_image])[0]

    def recognize(self, rgb_image: np.ndarray) -> ImageResult:
        """``analyze`` as one typed result: the faces (numbered 1..n), the image's size, the
        detector, the model and its uncertainty threshold. Photos, videos and the live page
        carry it to their drawings and writers unchanged."""
        return self.image_result(rgb_image, self.analyze(rgb_image))

    def recognize_stream(self, rgb_frame: np.ndarray) -> ImageResult:
        """``analyze_stream`` as one typed result (see ``recognize``)."""
        return self.image_result(rgb_frame, self.analyze_stream(rgb_frame))

    def image_result(self, rgb_image: np.ndarray, faces: list[FaceResult]) -> ImageResult:
        """``faces`` found by this recognizer in ``rgb_image``, as an ImageResult."""
        height, width = np.shape(rgb_image)[:2]
        return ImageResult(
            faces,
            width=int(width),
            height=int(height),
            detector=self.detector_name,
            model=str(getattr(self.model, "name", "")),
            uncertain_below=threshold_of(self.model),
        )

    def analyze_many(self, rgb_images) -> list[list[FaceResult]]:
        """``analyze`` for several images, with the faces of all of them classified in one
        model call (a batch engine's batch of photos)."""
        started = time.perf_counter()
        found = [self._detect_and_crop(rgb) for rgb in rgb_images]
        detected = time.perf_counter()
        crops = [crop for detections, crop in found if detections]
        probs = self.model.predict_faces(np.concatenate(crops)) if crops else None
        finished = time.perf_counter()
        self.last_timings = {
            "detect_ms": (detected - started) * 1e3,
            "classify_ms": (finished - detected) * 1e3,
        }
        framings = len(self.framing) if isinstance(self.framing, tuple) else 1
        results: list[list[FaceResult]] = []
        used = 0
        for detections, _ in found:
            if not detections:
                results.append([])
                continue
            count = len(detections) * framings
            # several framings: every face cropped each way (framing-major), averaged
            assert probs is not None  # some image had faces
            mine = probs[used : used + count].reshape(framings, len(detections), -1).mean(axis=0)
            used += count
            results.append(
                [
                    FaceResult(
                        _int_box(d.box),
                        p.astype(np.float64) / p.sum(),
                        score=d.score,
                        eyes=d.eyes,
                    )
                    for d, p in zip(detections, mine)
                ]
            )
        return results

    def _detect_and_crop(self, rgb_image: np.ndarray):
        """(detections, crops) of one image: every face cropped in each framing."""
        grey = to_grey(rgb_image)
        detections = self.detector.detect_faces(rgb_image if self.detector.needs_rgb else grey)
        if self.min_score is not None:
            detections = [d for d in detections if d.score is None or d.score >= self.min_score]
        if self.min_face is not None:
            detections = [d for d in detections if max(d.box[2], d.box[3]) >= self.min_face]
        if not detections:
            return [], None
        crops = self.face_crops(grey, [d.box for d in detections], [d.eyes for d in detections])
        return detections, crops.reshape(-1, *crops.shape[2:])

    def face_crops(self, grey: np.ndarray, boxes, eyes=None) -> np.ndarray:
        """The 48x48 crops this recognizer classifies for ``boxes`` of a grey image, shape
        (framings, faces, 48, 48): one per framing (their probabilities are averaged), eyes
        levelled when the recognizer aligns. The one place a face becomes model input, for
        the answer and for its explanation alike."""
        framings = self.framing if isinstance(self.framing, tuple) else (self.framing,)
        eyes = list(eyes) if self.align and eyes is not None else None
        return np.stack([crop_faces(grey, boxes, self.margin, f, eyes) for f in framings])

    def analyze_stream(self, rgb_frame: np.ndarray) -> list[FaceResult]:
        """Like ``analyze``, for consecutive frames: faces get ids and smoothed probabilities.

        With ``detect_every`` = N > 1, the detector runs on every N-th frame only; in between,
        the faces tracked on the last detected frame are cropped at their boxes and classified
        (the cheap part), so every frame still gets fresh probabilities."""
        with self._stream_lock:
            self._stream_frames += 1
            tracked = [(t.box, t.score) for t in self.tracker._tracks if t.missed == 0]
            skip = (
                self.detect_every > 1
                and tracked
                and (self._stream_frames - 1) % self.detect_every != 0
            )
        results = self._classify_boxes(rgb_frame, tracked) if skip else self.analyze(rgb_frame)
        with self._stream_lock:
            return self.tracker.update(results)

    def _classify_boxes(self, rgb_image: np.ndarray, tracked) -> list[FaceResult]:
        """Classify tracked (box, score) pairs without detecting: the frames between
        detections in a stream. Each face keeps the score of its last detection."""
        started = time.perf_counter()
        boxes = [box for box, _ in tracked]
        crops = self.face_crops(to_grey(rgb_image), boxes)
        probs = self.model.predict_faces(crops.reshape(-1, *crops.shape[2:]))
        probs = probs.reshape(crops.shape[0], len(boxes), -1).mean(axis=0)
        self.last_timings = {"detect_ms": 0.0, "classify_ms": (time.perf_counter() - started) * 1e3}
        return [
            FaceResult(_int_box(box), p.astype(np.float64) / p.sum(), score=score)
            for (box, score), p in zip(tracked, probs)
        ]

    def set_smoothing(self, smoothing: float) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ConfigError("smoothing must lie in [0, 1).")
        self.tracker.smoothing = smoothing
