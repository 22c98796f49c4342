"""Video files -> per-frame, per-face emotions (a pandas DataFrame), streamed frame by frame."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from .errors import FerError, ImageError
from .results import VIDEO_COLUMNS, face_rows

COLUMNS = VIDEO_COLUMNS  # fer_core.results: the one row schema


def iter_frames(path: str | Path, every: int = 1):
    """Yield (frame_index, time_seconds, rgb uint8) for every ``every``-th decoded frame."""
    import av

    if every < 1:
        raise FerError("every must be 1 or more.")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise ImageError(f"{Path(path).name} is not a video we can read: {exc}") from exc
    try:
        if not container.streams.video:
            raise ImageError(f"{Path(path).name} has no video stream.")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        index = -1
        try:
            for frame in container.decode(stream):
                index += 1
                if index % every:
                    continue
                seconds = float(frame.time) if frame.time is not None else index / float(
                    stream.average_rate or 30)
                yield index, seconds, frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as exc:
            if index < 0:
                raise ImageError(f"{Path(path).name}: no frame could be decoded ({exc}).") from exc
            # A truncated file: keep what was decoded.
    finally:
        container.close()


def video_info(path: str | Path) -> dict:
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            duration = float(stream.duration * stream.time_base) if stream.duration else (
                container.duration / 1e6 if container.duration else None)
            return {"width": stream.width, "height": stream.height,
                    "fps": float(stream.average_rate or 0), "frames": stream.frames or None,
                    "duration_s": duration}
    except (av.error.FFmpegError, OSError, IndexError, ValueError) as exc:
        raise ImageError(f"{Path(path).name} is not a video we can read: {exc}") from exc


def analyze_video(path: str | Path, recognizer=None, every: int = 1,
                  progress: Callable[[float, str], None] | None = None,
                  on_frame: Callable[[int, np.ndarray, list], None] | None = None):
    """Analyse a video; returns a DataFrame with one row per face per analysed frame.

    Faces are tracked across frames (``face_id``) and their probabilities smoothed as on the
    live page. ``on_frame(index, rgb, results)`` receives each analysed frame (e.g. to write an
    annotated video); memory does not grow with the video's length.
    """
    import pandas as pd

    from .recognizer import Recognizer

    recognizer = recognizer or Recognizer(preset="photo")
    recognizer.tracker.reset()
    info = video_info(path)
    total = info.get("frames") or 0
    rows = []
    for index, seconds, rgb in iter_frames(path, every):
        results = recognizer.analyze_stream(rgb)
        rows.extend(face_rows(results, frame=index, time_s=round(seconds, 4)))
        if on_frame is not None:
            on_frame(index, rgb, results)
        if progress is not None and total:
            progress(min((index + 1) / total, 1.0), f"frame {index + 1:,} of {total:,}")
    if progress is not None:
        progress(1.0, "done")
    return pd.DataFrame(rows, columns=COLUMNS)
