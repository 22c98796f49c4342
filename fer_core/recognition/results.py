"""One row schema for a face result, shared by photos, videos, the CLI and the live page.

A row is the context it came from (``file``; ``frame`` and ``time_s`` for video and live),
then ``faces`` (how many faces the image or frame has), ``face`` (which one, 1-based, left to
right), ``face_id`` (the tracker's id in a stream; for a photo, its number as drawn, or empty), the box, the label, its
probability, ``uncertain`` (whether the top probability is below the model card's threshold, in
which case pages draw "uncertain" with the two leading emotions; empty for a model without a
calibrated card), ``second`` (the runner-up emotion) and all seven probabilities.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from fer_core.faces import DEFAULT_DETECTOR
from fer_core.labels import EMOTIONS
from fer_core.recognition.uncertainty import is_uncertain, short_label, uncertainty_columns
from fer_core.safe_text import to_safe_csv


@dataclass
class FaceResult:
    """One face in one image or frame: the record that goes from the recognizer to every
    page, drawing, download and the command line (rows via ``face_rows``)."""

    box: tuple[int, int, int, int]  # x, y, w, h in image pixels
    probs: np.ndarray  # 7 floats summing to 1, EMOTIONS order
    face_id: int | None = None
    score: float | None = None  # the detector's score, where it has one (not Haar)
    eyes: tuple | None = None  # ((x, y) image-left eye, (x, y) image-right eye), or None
    carried: bool = False  # True: the detector missed this face; the tracker kept its box
    # which face of its image (1-based, as the recognizer found them; ImageResult numbers
    # them): a face the user drops keeps the others' numbers
    number: int | None = None

    @property
    def label(self) -> str:
        return EMOTIONS[int(np.argmax(self.probs))]

    @property
    def confidence(self) -> float:
        return float(np.max(self.probs))

    @property
    def area(self) -> int:
        return int(self.box[2]) * int(self.box[3])

    def uncertain(self, uncertain_below: float | None) -> bool:
        """Whether the top probability is below the model card's threshold (never without one)."""
        return is_uncertain(self.probs, uncertain_below)

    def shown_label(self, uncertain_below: float | None) -> str:
        """The label every page, overlay and list shows: ``"happy"``, or
        ``"uncertain: sad/neutral"`` below the threshold."""
        return short_label(self.probs, uncertain_below)

    def as_dict(self) -> dict:
        x, y, w, h = self.box
        row = {
            "face_id": self.face_id,
            "x": x,
            "y": y,
            "w": w,
            "h": h,
            "label": self.label,
            "confidence": round(self.confidence, 6),
            "score": None if self.score is None else round(float(self.score), 6),
        }
        row.update({emotion: round(float(p), 6) for emotion, p in zip(EMOTIONS, self.probs)})
        return row


@dataclass
class ImageResult:
    """Everything the recognizer found in one image or frame: the faces, the image's size and
    what found and judged them. It travels unchanged from the recognizer to photos, videos,
    the live page and the recorder; rows for a CSV, JSON or the database are made from it
    only where they are written (``face_rows``)."""

    faces: list[FaceResult] = field(default_factory=list)
    width: int = 0
    height: int = 0
    detector: str = DEFAULT_DETECTOR
    model: str = ""  # the model file's name
    uncertain_below: float | None = None  # the model card's threshold (None: none)

    def __post_init__(self) -> None:
        for number, face in enumerate(self.faces, start=1):
            if face.number is None:
                face.number = number

    def kept(self, dropped: Iterable[int] = ()) -> ImageResult:
        """The same image without the faces whose numbers are in ``dropped`` (boxes the user
        marked as not a face); the faces kept keep their numbers."""
        gone = set(dropped)
        return replace(self, faces=[face for face in self.faces if face.number not in gone])


FACE_COLUMNS = [
    "faces",
    "face",
    "face_id",
    "x",
    "y",
    "w",
    "h",
    "label",
    "confidence",
    "uncertain",
    "second",
    *EMOTIONS,
]
PHOTO_COLUMNS = ["file", *FACE_COLUMNS]
VIDEO_COLUMNS = ["frame", "time_s", *FACE_COLUMNS]
FILE_VIDEO_COLUMNS = ["file", "frame", "time_s", *FACE_COLUMNS]  # the CLI: photos and videos


def face_rows(results, *, uncertain_below: float | None = None, **context) -> list[dict]:
    """Rows for the faces of one image or frame (``results``: an ImageResult, whose threshold
    is used, or a FaceResult list), each starting with ``context``; an image with no face
    gives one row with ``faces == 0`` so that nothing disappears silently when ``context``
    names a file. ``uncertain_below``: the model card's threshold
    (``fer_core.recognition.uncertainty.threshold_of``). The one place a face becomes a row:
    every writer (CSV, JSON, the records database) calls it."""

    if isinstance(results, ImageResult):
        uncertain_below = results.uncertain_below
        results = results.faces
    if not results:
        return [{**context, "faces": 0, "face": None}] if "file" in context else []
    rows = []
    for number, result in enumerate(results, start=1):
        values = {
            "faces": len(results),
            "face": result.number or number,
            **result.as_dict(),
            **uncertainty_columns(result.probs, uncertain_below),
        }
        rows.append({**context, **{column: values[column] for column in FACE_COLUMNS}})
    return rows


_TEXT_COLUMNS = {"file", "label", "second", "error", "problem", "timestamp"}
_INT_COLUMNS = {"frame", "faces", "face", "face_id", "x", "y", "w", "h"}
_BOOL_COLUMNS = {"uncertain"}


def typed_frame(rows: list[dict], columns: list[str]):
    """Rows -> a DataFrame with ``columns``: strings, nullable integers (a face number stays
    ``3``, not ``3.0``, beside a row without a face), nullable booleans and floats."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=columns)
    for column in columns:
        kind = (
            "string"
            if column in _TEXT_COLUMNS
            else "Int64"
            if column in _INT_COLUMNS
            else "boolean"
            if column in _BOOL_COLUMNS
            else "float64"
        )
        frame[column] = frame[column].astype(kind)
    return frame


def frame_to_csv_bytes(frame) -> bytes:
    """The CSV of a results table, as UTF-8 bytes: the one writer for the CSVs people open in
    a spreadsheet (downloads, ``fer predict --out x.csv``). A text cell that a spreadsheet
    would run as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
    return: a file named ``=HYPERLINK(...).png``) gets a leading single quote; numbers stay
    numbers; a cell holding a line break is quoted (CRLF line ends, as RFC 4180). JSON is
    written from the table as it is."""

    return to_safe_csv(frame).encode("utf-8")


def rows_to_csv_bytes(rows: list[dict], columns: list[str]) -> bytes:
    """``frame_to_csv_bytes`` of ``typed_frame(rows, columns)``."""
    return frame_to_csv_bytes(typed_frame(rows, columns))


__all__ = [
    "FaceResult",
    "ImageResult",
    "typed_frame",
    "frame_to_csv_bytes",
    "rows_to_csv_bytes",
    "FACE_COLUMNS",
    "PHOTO_COLUMNS",
    "VIDEO_COLUMNS",
    "FILE_VIDEO_COLUMNS",
    "face_rows",
]
