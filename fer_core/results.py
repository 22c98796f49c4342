"""One row schema for a face result, shared by photos, videos, the CLI and the live page.

A row is the context it came from (``file``; ``frame`` and ``time_s`` for video and live),
then ``faces`` (how many faces the image or frame has), ``face`` (which one, 1-based, left to
right), ``face_id`` (the tracker's id in a stream; for a photo, its number as drawn, or empty), the box, the label, its
probability and all seven probabilities.
"""

from __future__ import annotations

from .labels import EMOTIONS

FACE_COLUMNS = ["faces", "face", "face_id", "x", "y", "w", "h", "label", "confidence", *EMOTIONS]
PHOTO_COLUMNS = ["file", *FACE_COLUMNS]
VIDEO_COLUMNS = ["frame", "time_s", *FACE_COLUMNS]
FILE_VIDEO_COLUMNS = ["file", "frame", "time_s", *FACE_COLUMNS]  # the CLI: photos and videos


def face_rows(results, **context) -> list[dict]:
    """Rows for the faces of one image or frame (``results``: FaceResult list), each
    starting with ``context``; an image with no face gives one row with ``faces == 0`` so
    that nothing disappears silently when ``context`` names a file."""
    if not results:
        return [{**context, "faces": 0, "face": None}] if "file" in context else []
    rows = []
    for number, result in enumerate(results, start=1):
        row = {**context, "faces": len(results), "face": number}
        row.update(result.as_dict())
        rows.append(row)
    return rows


__all__ = ["FACE_COLUMNS", "PHOTO_COLUMNS", "VIDEO_COLUMNS", "FILE_VIDEO_COLUMNS", "face_rows"]
