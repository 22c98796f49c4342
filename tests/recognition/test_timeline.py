"""fer_core.recognition.timeline: per-segment and per-face summaries of video results."""

import numpy as np
import pandas as pd
import pytest

from fer_core import EMOTIONS
from fer_core.recognition.timeline import SEGMENT_COLUMNS, face_summary, segment_summary
from fer_core.recognition.video import COLUMNS


def frames_table(rows):
    """rows: (time_s, face_id, dominant emotion, its probability)."""
    records = []
    for index, (time_s, face_id, emotion, p) in enumerate(rows):
        probs = np.full(len(EMOTIONS), (1 - p) / (len(EMOTIONS) - 1))
        probs[EMOTIONS.index(emotion)] = p
        record = {
            "frame": index,
            "time_s": time_s,
            "face_id": face_id,
            "x": 0,
            "y": 0,
            "w": 10,
            "h": 10,
            "label": emotion,
            "confidence": p,
        }
        record.update(dict(zip(EMOTIONS, probs)))
        records.append(record)
    return pd.DataFrame(records, columns=COLUMNS)


def test_segment_summary_averages_per_face_and_segment():
    frames = frames_table(
        [
            (0.1, 1, "happy", 0.9),
            (0.6, 1, "sad", 0.5),
            (0.7, 2, "angry", 0.8),
            (1.2, 1, "sad", 0.9),
            (1.4, 1, "sad", 0.7),
            (2.5, 2, "fear", 0.6),
        ]
    )
    summary = segment_summary(frames, 1.0, start_s=0.0)
    assert list(summary.columns) == SEGMENT_COLUMNS
    keyed = {(r.face_id, r.segment): r for r in summary.itertuples()}
    assert list(zip(summary["segment"], summary["face_id"])) == [(0, 1), (0, 2), (1, 1), (2, 2)]
    assert keyed[(1, 0)].dominant == "happy" and keyed[(1, 0)].frames == 2
    assert keyed[(1, 0)].mean_probability == pytest.approx((0.9 + 0.5 / 6) / 2)
    assert keyed[(1, 1)].dominant == "sad" and keyed[(1, 1)].start_s == 1.0
    assert keyed[(2, 2)].dominant == "fear" and keyed[(2, 2)].end_s == 3.0
    # Default origin: the first face's time.
    assert segment_summary(frames, 2.0)["start_s"].min() == pytest.approx(0.1)
    with pytest.raises(ValueError):
        segment_summary(frames, 0)


def test_summaries_of_no_faces_are_empty_tables():
    empty = pd.DataFrame(columns=COLUMNS)
    assert segment_summary(empty).empty and list(segment_summary(empty).columns) == SEGMENT_COLUMNS
    assert face_summary(empty).empty


def test_face_summary():
    frames = frames_table([(0.0, 1, "happy", 0.9), (0.5, 1, "happy", 0.7), (0.5, 3, "sad", 0.6)])
    faces = face_summary(frames).set_index("face_id")
    assert faces.loc[1, "frames"] == 2 and faces.loc[1, "dominant"] == "happy"
    assert faces.loc[1, "last_s"] == 0.5 and faces.loc[3, "dominant"] == "sad"
