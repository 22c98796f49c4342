"""Photo and video analysis for the upload page, as plain functions (no streamlit here)."""

from __future__ import annotations

import io
import json
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from fer_core import FerError, Recognizer, read_image
from fer_core.data.image import encode_png
from fer_core.data.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, kind_of, without_dots
from fer_core.faces import DEFAULT_DETECTOR, DetectorSettings, detector_info
from fer_core.recognition.drawing import draw_results
from fer_core.recognition.results import PHOTO_COLUMNS, FaceResult, ImageResult, face_rows
from fer_core.recognition.uncertainty import threshold_of

IMAGE_TYPES = without_dots(IMAGE_SUFFIXES)  # for st.file_uploader; fer_core.data.media decides
VIDEO_TYPES = without_dots(VIDEO_SUFFIXES)
# Photos: the "photo" preset (full resolution, best recall) up to 2048 px wide; wider photos
# are scaled down for detection only (a 24 MP photo would take many seconds otherwise).
PHOTO_DETECTOR = DetectorSettings(scale_factor=1.1, min_neighbors=5, min_size=30, detect_width=2048)
VIDEO_DETECTOR = DetectorSettings(scale_factor=1.1, min_neighbors=5, min_size=30, detect_width=960)
PREVIEW_WIDTH = 1600  # annotated previews are scaled down to this width for the page
RESULT_COLUMNS = PHOTO_COLUMNS  # fer_core.recognition.results: the one row schema


@dataclass
class PhotoResult:
    """One uploaded photo: what the recognizer found (``image``), or why it could not be
    analysed (``error``), with the annotated preview the page shows."""

    name: str
    error: str | None = None  # why the file could not be analysed (a user-facing message)
    image: ImageResult | None = None
    preview_png: bytes | None = None  # annotated, at most PREVIEW_WIDTH wide
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def width(self) -> int:
        return self.image.width if self.image else 0

    @property
    def height(self) -> int:
        return self.image.height if self.image else 0

    @property
    def faces(self) -> list[FaceResult]:
        """Every face found, numbered 1..n as drawn."""
        return self.image.faces if self.image else []

    def kept(self, dropped=()) -> list[FaceResult]:
        """The faces the user kept (``dropped``: face numbers marked as not a face): every
        download is built from these, so a dropped box leaves all of them alike."""
        return self.image.kept(dropped).faces if self.image else []

    def rows(self, dropped=()) -> list[dict]:
        """Result rows of the faces kept (``faces`` then counts the faces kept). A photo with
        no face, or one that could not be read, gives one row saying so (``faces`` 0 or empty,
        ``problem``), so that a table of all photos leaves none out."""
        if not self.ok or self.image is None:
            return [{"file": self.name, "faces": None, "problem": self.error}]
        kept = self.image.kept(dropped)
        if not kept.faces:
            return [
                {
                    "file": self.name,
                    "faces": 0,
                    "problem": "all boxes dropped" if self.faces else "no face found",
                }
            ]
        return face_rows(kept, file=self.name)

    def as_json(self, model_name: str = "", dropped=()) -> dict:
        """The photo's JSON download: its faces as kept, and which were dropped."""
        kept = self.image.kept(dropped) if self.image else None
        return {
            "file": self.name,
            "width": self.width,
            "height": self.height,
            "model": model_name,
            "faces": face_rows(kept) if kept else [],
            "dropped": sorted(set(dropped) & {face.number for face in self.faces}),
            "error": self.error,
        }


def photo_recognizer(model, detector: str = DEFAULT_DETECTOR) -> Recognizer:
    return _recognizer(model, detector, PHOTO_DETECTOR)


def video_recognizer(model, detector: str = DEFAULT_DETECTOR) -> Recognizer:
    return _recognizer(model, detector, VIDEO_DETECTOR)


def _recognizer(model, detector: str, limits: DetectorSettings) -> Recognizer:
    """A detector with Haar's settings (``DetectorSettings``): its photo preset within the
    page's size limits for detection; other detectors scale the image to their input
    themselves."""
    photo = detector_info(detector).presets["photo"]
    if isinstance(photo, DetectorSettings):
        return Recognizer(
            model,
            detector=detector,
            detector_settings=replace(photo, detect_width=limits.detect_width),
        )
    return Recognizer(model, preset="photo", detector=detector)


def preview(rgb: np.ndarray, width: int = PREVIEW_WIDTH) -> np.ndarray:
    import cv2

    if rgb.shape[1] <= width:
        return rgb
    height = max(1, int(round(rgb.shape[0] * width / rgb.shape[1])))
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


def analyze_photo(data: bytes, name: str, recognizer: Recognizer) -> PhotoResult:
    """Decode and analyse one uploaded photo. A file that is not a readable image gives a
    PhotoResult with ``error`` set (never an exception), so other files still get results."""
    started = time.perf_counter()
    try:
        rgb = read_image(named_bytes(data, name))
    except FerError as exc:
        return PhotoResult(name, error=str(exc))
    image = recognizer.recognize(rgb)
    for face in image.faces:
        face.face_id = face.number  # a photo has no tracker: its faces are numbered, as drawn
    annotated = draw_results(rgb, image.faces, image.uncertain_below) if image.faces else rgb
    return PhotoResult(
        name,
        image=image,
        preview_png=encode_png(preview(annotated)),
        seconds=time.perf_counter() - started,
    )


def annotated_png(
    data: bytes,
    faces: list[FaceResult],
    threshold: float | None = None,
    width: int | None = None,
) -> bytes:
    """Annotated PNG of a photo from its bytes and the faces to draw (downloads: full size;
    ``width``: scaled down to at most that, for the page)."""
    rgb = read_image(data)
    annotated = draw_results(rgb, faces, threshold)
    return encode_png(preview(annotated, width) if width else annotated)


def named_bytes(data: bytes, name: str) -> io.BytesIO:
    """Bytes as a file object with a name, so error messages name the user's file."""
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def explain_photo(data: bytes, name: str, faces: list[FaceResult], recognizer) -> list[dict]:
    """Per face: the 48x48 crop the model saw and its occlusion-sensitivity overlay, as PNG
    bytes, and the emotion the overlay explains (``fer_core.recognition.explain``), cropped by the
    recognizer that found the faces."""
    from fer_core.recognition.explain import explain_faces

    rgb = read_image(named_bytes(data, name))
    boxes = [face.box for face in faces]
    return [
        {
            "face": face.number,
            "emotion": item["emotion"],
            "framings": len(item["crops"]),
            "crop_png": encode_png(item["crop_image"]),
            "overlay_png": encode_png(item["overlay_image"]),
        }
        for face, item in zip(faces, explain_faces(recognizer, rgb, boxes))
    ]


ALL_PHOTO_COLUMNS = RESULT_COLUMNS + ["problem"]


def rows_to_csv(rows: list[dict], columns: list[str] | None = None) -> bytes:
    """The shared CSV writer: a cell that would start a formula is neutralised (a visitor's
    file name is in it), numbers stay numbers."""
    from fer_core.recognition.results import rows_to_csv_bytes

    return rows_to_csv_bytes(rows, columns or RESULT_COLUMNS)


def to_json_bytes(payload) -> bytes:
    def default(value):
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
        raise TypeError(type(value).__name__)

    return json.dumps(payload, indent=2, default=default).encode("utf-8")


def frames_to_json(frames, info: dict, segments, model_name: str, every: int) -> bytes:
    """Video results as JSON: the video's facts, per-frame faces and the segment summary."""
    payload = {
        "model": model_name,
        "every": every,
        "video": info,
        "frames": json.loads(frames.to_json(orient="records")),
        "segments": json.loads(segments.to_json(orient="records")),
    }
    return to_json_bytes(payload)


@dataclass
class VideoAnalysis:
    """One analysed video: ``frames`` (the rows of every face of every analysed frame, the
    video table's columns), the video's facts (``info``: fps, duration, size), why the results
    end before the video does (``cut_short``: a truncated file or the length cap; None), and
    the annotated copy on disk (``video_path``, None without one, and its ``video_mime``)."""

    frames: Any  # pandas DataFrame
    info: dict
    cut_short: str | None = None
    video_path: Path | None = None
    video_mime: str | None = None


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} minutes"


def analyze_video_file(
    path: Path,
    out_folder: Path,
    recognizer: Recognizer,
    every: int = 3,
    write_video: bool = True,
    progress=None,
    max_seconds: float | None = None,
) -> VideoAnalysis:
    """Analyse a stored video; the annotated copy (if asked for) is written into
    ``out_folder`` under a new random name, so two analyses of one video never share a file and
    the user's file name (any length) never reaches the disk.

    A video longer than ``max_seconds`` is refused (``ImageError`` saying what to do); when its
    length is unknown, analysis stops at ``max_seconds``. ``cut_short`` says why results end
    before the video does (a truncated file, or the cap), else None. The annotated video stays
    on disk: ``video_path`` (None without one)."""
    from fer_core.errors import ImageError
    from fer_core.recognition.video import analyze_video, video_info
    from fer_core.recognition.video_writer import AnnotatedVideoWriter

    info = video_info(path)
    duration = info.get("duration_s")
    if max_seconds is not None and duration and duration > max_seconds + 0.5:
        raise ImageError(
            f"The video is {_duration(duration)} long; this app analyses videos "
            f"up to {_duration(max_seconds)} (FER_MAX_VIDEO_SECONDS). "
            "Cut it shorter, or use the command line: python -m fer_core predict "
            "VIDEO --out results.csv."
        )
    writer = None
    if write_video:
        writer = AnnotatedVideoWriter(
            out_folder / f"annotated-{secrets.token_hex(8)}",
            fps=(info["fps"] or 25.0) / every,
            uncertain_below=threshold_of(recognizer.model),
        )
    video_path = None
    try:
        frames = analyze_video(
            path,
            recognizer=recognizer,
            every=int(every),
            progress=progress,
            on_frame=writer.on_frame if writer else None,
            max_seconds=max_seconds,
        )
    except BaseException:
        if writer is not None:
            try:
                writer.close()
            finally:
                writer.path.unlink(missing_ok=True)
        raise
    if writer is not None:
        video_path = writer.close()
    return VideoAnalysis(
        frames=frames,
        info=info,
        cut_short=frames.attrs.get("cut_short"),
        video_path=video_path,
        video_mime=writer.mime if writer else None,
    )


__all__ = [
    "ALL_PHOTO_COLUMNS",
    "explain_photo",
    "IMAGE_TYPES",
    "VIDEO_TYPES",
    "PhotoResult",
    "analyze_photo",
    "annotated_png",
    "rows_to_csv",
    "to_json_bytes",
    "frames_to_json",
    "kind_of",
    "photo_recognizer",
    "video_recognizer",
    "named_bytes",
    "analyze_video_file",
    "VideoAnalysis",
]
