"""Video files -> per-frame, per-face emotions (a pandas DataFrame), streamed frame by frame."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from fer_core.errors import FerError, ImageError
from fer_core.recognition.recognizer import Recognizer
from fer_core.recognition.results import VIDEO_COLUMNS, face_rows
from fer_core.recognition.uncertainty import threshold_of
from fer_core.safe_text import terminal_safe


def _name(path) -> str:
    """The file's name for a message: its control characters escaped (a name can hold a
    newline or a terminal escape sequence), never its folder."""
    return terminal_safe(Path(path).name)


def _reason(exc: Exception) -> str:
    """A decoder error without the file's full path (FFmpeg's messages end with it)."""
    if isinstance(exc, IndexError):
        return "it has no video stream"
    return getattr(exc, "strerror", None) or type(exc).__name__


COLUMNS = VIDEO_COLUMNS  # fer_core.recognition.results: the one row schema


def iter_frames(path: str | Path, every: int = 1, report: dict | None = None):
    """Yield (frame_index, time_seconds, rgb uint8) for every ``every``-th decoded frame.

    ``report`` (a dict), if given, receives ``decoded`` (frames decoded) and, when decoding
    stopped on damaged data after some frames, ``decode_error``."""
    import av

    if every < 1:
        raise FerError("every must be 1 or more.")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise ImageError(f"{_name(path)} is not a video we can read: {_reason(exc)}.") from exc
    try:
        if not container.streams.video:
            raise ImageError(f"{_name(path)} has no video stream.")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        # Times count from the stream's start, as a player shows them: many files (phone
        # clips, cuts) start their timestamps at 0.85 s or later, and a CSV that said 0.852 s
        # for the first frame (and 9.96 s for the last of a 9.2 s clip) matched nothing.
        start = (
            float(stream.start_time * stream.time_base)
            if stream.start_time is not None and stream.time_base
            else None
        )
        index = -1
        try:
            for frame in container.decode(stream):
                index += 1
                if report is not None:
                    report["decoded"] = index + 1
                if start is None and frame.time is not None:
                    start = float(frame.time)  # no declared start: the first frame's time
                if index % every:
                    continue
                seconds = (
                    max(0.0, float(frame.time) - start)
                    if frame.time is not None
                    else index / float(stream.average_rate or 30)
                )
                yield index, seconds, frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as exc:
            if index < 0:
                raise ImageError(
                    f"{_name(path)}: no frame could be decoded ({_reason(exc)})."
                ) from exc
            # A truncated file: keep what was decoded, and say so.
            if report is not None:
                report["decode_error"] = type(exc).__name__
    finally:
        container.close()


def video_info(path: str | Path) -> dict:
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            # The container's duration runs to its last timestamp: less its start time.
            duration = (
                float(stream.duration * stream.time_base)
                if stream.duration and stream.time_base
                else (
                    (container.duration - max(container.start_time or 0, 0)) / 1e6
                    if container.duration
                    else None
                )
            )
            return {
                "width": stream.width,
                "height": stream.height,
                "fps": float(stream.average_rate or 0),
                "frames": stream.frames or None,
                "duration_s": duration,
            }
    except (av.error.FFmpegError, OSError, IndexError, ValueError) as exc:
        raise ImageError(f"{_name(path)} is not a video we can read: {_reason(exc)}.") from exc


def analyze_video(
    path: str | Path,
    recognizer=None,
    every: int = 1,
    progress: Callable[[float, str], None] | None = None,
    on_frame: Callable[[int, np.ndarray, list], None] | None = None,
    max_seconds: float | None = None,
):
    """Analyse a video; returns a DataFrame with one row per face per analysed frame.

    ``frame.attrs["cut_short"]`` is None, or a sentence saying why the results stop before the
    video's declared end: the file is truncated or damaged, or ``max_seconds`` was reached.

    Faces are tracked across frames (``face_id``) and their probabilities smoothed as on the
    live page. ``on_frame(index, rgb, results)`` receives each analysed frame (e.g. to write an
    annotated video); memory does not grow with the video's length.
    """
    import pandas as pd

    recognizer = recognizer or Recognizer(preset="photo")
    recognizer.tracker.reset()
    threshold = threshold_of(recognizer.model)
    info = video_info(path)
    total = info.get("frames") or 0
    rows = []
    report: dict = {}
    stopped_at = None
    for index, seconds, rgb in iter_frames(path, every, report):
        if max_seconds is not None and seconds > max_seconds:
            stopped_at = seconds
            break
        results = recognizer.analyze_stream(rgb)
        rows.extend(
            face_rows(results, frame=index, time_s=round(seconds, 4), uncertain_below=threshold)
        )
        if on_frame is not None:
            on_frame(index, rgb, results)
        if progress is not None and total:
            progress(min((index + 1) / total, 1.0), f"frame {index + 1:,} of {total:,}")
    if progress is not None:
        progress(1.0, "done")
    frame = pd.DataFrame(rows, columns=COLUMNS)
    decoded = report.get("decoded", 0)
    cut_short = None
    if stopped_at is not None:
        cut_short = (
            f"Only the first {max_seconds:g} s were analysed: that is the longest "
            "video this app analyses."
        )
    elif report.get("decode_error") or (total and decoded < total * 0.98 and decoded < total - 1):
        fps = info.get("fps") or 0
        cut_short = (
            f"The video is cut short: only {decoded:,} of the {total:,} frames it "
            "declares could be decoded"
            if total
            else f"The video is damaged: decoding stopped after {decoded:,} frames"
        )
        cut_short += (
            f" (the first {decoded / fps:.1f} s)" if fps else ""
        ) + ". The file is truncated or damaged; results cover only that part."
    frame.attrs["cut_short"] = cut_short
    return frame
