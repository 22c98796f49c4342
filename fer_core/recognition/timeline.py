"""Summaries of per-frame video results (the DataFrame of ``fer_core.recognition.video.analyze_video``)."""

from __future__ import annotations

import numpy as np

from fer_core.labels import EMOTIONS

SEGMENT_COLUMNS = [
    "face_id",
    "segment",
    "start_s",
    "end_s",
    "frames",
    "dominant",
    "mean_probability",
    *EMOTIONS,
]


def segment_summary(frames, segment_seconds: float = 1.0, start_s: float | None = None):
    """The dominant emotion of each face in consecutive segments of ``segment_seconds``.

    For every face id and segment, the face's probabilities are averaged over the analysed
    frames in that segment; ``dominant`` is the emotion with the highest mean and
    ``mean_probability`` that mean. Segments without the face are left out. Returns a
    DataFrame with ``SEGMENT_COLUMNS``.
    """
    import pandas as pd

    if segment_seconds <= 0:
        raise ValueError("segment_seconds must be positive")
    if frames is None or len(frames) == 0:
        return pd.DataFrame(columns=SEGMENT_COLUMNS)
    data = frames.dropna(subset=["face_id"]).copy()
    if data.empty:
        return pd.DataFrame(columns=SEGMENT_COLUMNS)
    origin = float(data["time_s"].min()) if start_s is None else float(start_s)
    data["segment"] = np.floor((data["time_s"] - origin) / segment_seconds + 1e-9).astype(int)
    data["face_id"] = data["face_id"].astype(int)
    grouped = data.groupby(["face_id", "segment"], sort=True)
    means = grouped[list(EMOTIONS)].mean()
    counts = grouped.size()
    summary = means.reset_index()
    probabilities = summary[list(EMOTIONS)].to_numpy()
    summary["dominant"] = [EMOTIONS[i] for i in probabilities.argmax(axis=1)]
    summary["mean_probability"] = probabilities.max(axis=1)
    summary["frames"] = counts.to_numpy()
    summary["start_s"] = origin + summary["segment"] * segment_seconds
    summary["end_s"] = summary["start_s"] + segment_seconds
    summary = summary.sort_values(["segment", "face_id"], kind="stable")
    return summary[SEGMENT_COLUMNS].reset_index(drop=True)


def face_summary(frames):
    """Per face id: frames seen, first and last time, and the dominant emotion overall."""
    import pandas as pd

    columns = ["face_id", "frames", "first_s", "last_s", "dominant", "mean_probability"]
    if frames is None or len(frames) == 0:
        return pd.DataFrame(columns=columns)
    data = frames.dropna(subset=["face_id"])
    rows = []
    for face_id, group in data.groupby(data["face_id"].astype(int)):
        mean = group[list(EMOTIONS)].mean().to_numpy()
        rows.append(
            {
                "face_id": int(face_id),
                "frames": int(len(group)),
                "first_s": float(group["time_s"].min()),
                "last_s": float(group["time_s"].max()),
                "dominant": EMOTIONS[int(mean.argmax())],
                "mean_probability": float(mean.max()),
            }
        )
    return pd.DataFrame(rows, columns=columns)


__all__ = ["segment_summary", "face_summary", "SEGMENT_COLUMNS"]
