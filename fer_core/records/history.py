"""What a person's rows say over time: the share of time per emotion, per day and per
session, the uncertain share, and everything about a person as CSV or JSON.

A "share" counts face rows (one per analysed frame or photo): in a live recording or a
video, frames are evenly spaced in time, so the share of rows is the share of time the face
showed that emotion (as labelled; an uncertain row counts under its label and in the
uncertain share too)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pandas as pd

from fer_core.labels import EMOTIONS
from fer_core.recognition.results import frame_to_csv_bytes
from fer_core.records.database import Viewer
from fer_core.records.store import Records


def face_rows_only(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows that hold a face (a frame without one has no label)."""
    return rows[rows["label"].notna()] if len(rows) else rows


def emotion_shares(rows: pd.DataFrame) -> pd.Series:
    """Share of face rows per emotion (EMOTIONS order, summing to 1; all 0 with no face)."""
    faces = face_rows_only(rows)
    counts = faces["label"].value_counts().reindex(EMOTIONS, fill_value=0)
    total = int(counts.sum())
    return (counts / total if total else counts.astype(float)).rename("share")


def uncertain_share(rows: pd.DataFrame) -> float | None:
    """Share of face rows marked uncertain; None when no row says (a model without a
    calibrated card writes no uncertainty)."""
    faces = face_rows_only(rows)
    known = faces["uncertain"].dropna() if len(faces) else faces
    if not len(known):
        return None
    return float(known.astype(bool).mean())


def row_times(rows: pd.DataFrame) -> pd.Series:
    """When each row happened (UTC): its own timestamp (live), else its session's start
    plus its time in the video, else the session's start (photos)."""
    started = pd.to_datetime(rows["session_started"], utc=True)
    offset = pd.to_timedelta(rows["time_s"].astype(float).fillna(0.0), unit="s")
    stamped = pd.to_datetime(rows["timestamp"], utc=True, errors="coerce", format="ISO8601")
    return stamped.fillna(started + offset)


def daily_shares(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per day with faces: the day (date, UTC), ``faces`` (rows) and the share of
    each emotion and of uncertain rows."""
    faces = face_rows_only(rows)
    if not len(faces):
        return pd.DataFrame(columns=["day", "faces", *EMOTIONS, "uncertain"])
    days = row_times(faces).dt.tz_convert(UTC).dt.date
    table = pd.crosstab(days, faces["label"]).reindex(columns=list(EMOTIONS), fill_value=0)
    totals = table.sum(axis=1)
    shares = table.div(totals, axis=0)
    shares.insert(0, "faces", totals)
    uncertain = faces["uncertain"].astype("boolean").groupby(days).mean()
    shares["uncertain"] = uncertain.reindex(shares.index).astype(float)
    return shares.rename_axis("day").rename_axis(columns=None).reset_index()


def session_shares(rows: pd.DataFrame) -> pd.DataFrame:
    """Per session (its number, start, source, name): face rows and each emotion's share."""
    faces = face_rows_only(rows)
    columns = ["session", "session_started", "source", "session_name", "faces", *EMOTIONS]
    if not len(faces):
        return pd.DataFrame(columns=columns)
    keys = ["session", "session_started", "source", "session_name"]
    table = (
        pd.crosstab([faces[k] for k in keys], faces["label"])
        .reindex(columns=list(EMOTIONS), fill_value=0)
        .astype(float)
    )
    totals = table.sum(axis=1)
    table = table.div(totals, axis=0)
    table.insert(0, "faces", totals.astype(int))
    return table.rename_axis(columns=None).reset_index()[columns]


def _iso(value) -> str | None:
    return None if value is None else value.isoformat()


def person_export(records: Records, person_id: int, viewer: Viewer) -> dict:
    """Everything the database holds about a person: who, their sessions, every row about
    them, their captured faces (48x48 grey, base64 of the raw bytes)."""
    person = records.person(person_id, viewer)
    sessions = records.sessions(viewer, person_id=person_id)
    rows = records.person_rows(person_id, viewer)
    _, images, labels, _ = records.captures(viewer, person_id=person_id)
    theirs = {
        (int(session), None if pd.isna(face) else int(face))
        for session, face in zip(rows["session"], rows["face_id"])
    }
    plain_rows = json.loads(
        rows.assign(session_started=rows["session_started"].astype(str)).to_json(orient="records")
    )
    return {
        "exported": datetime.now(UTC).isoformat(),
        "person": {
            "number": person.id,
            "id": person.uid,
            "name": person.name,
            "note": person.note,
            "added": _iso(person.created_at),
        },
        "sessions": [
            {
                "number": s.id,
                "id": s.uid,
                "source": s.source,
                "name": s.name,
                "detector": s.detector,
                "model": s.model,
                "started": _iso(s.started_at),
                "ended": _iso(s.ended_at),
                "status": s.status,
                "rows": s.rows,
            }
            for s in sessions
        ],
        "rows": plain_rows,
        "face_thumbnails": [
            {
                "session": s.id,
                "face_id": face,
                "frame": frame,
                "png_base64": base64.b64encode(png).decode(),
            }
            for s in sessions
            if s.thumbnails
            for face, frame, png in records.session_thumbnails(s.id, viewer)
            if (s.id, face) in theirs  # not the faces of others in the same session
        ],
        "captured_faces": [
            {
                "emotion": EMOTIONS[int(label)],
                "pixels_48x48_base64": base64.b64encode(image.tobytes()).decode(),
            }
            for image, label in zip(images, labels)
        ],
    }


def person_json_bytes(records: Records, person_id: int, viewer: Viewer) -> bytes:
    return json.dumps(person_export(records, person_id, viewer), indent=1).encode("utf-8")


def person_csv_bytes(records: Records, person_id: int, viewer: Viewer) -> bytes:
    """Every row about a person, with its session, as the exports' CSV (formula-like cells
    neutralised)."""
    rows = records.person_rows(person_id, viewer)
    rows = rows.assign(
        session_started=rows["session_started"].map(lambda v: None if pd.isna(v) else v.isoformat())
    )
    return frame_to_csv_bytes(rows)


def session_csv_bytes(records: Records, session_id: int, viewer: Viewer) -> bytes:
    return frame_to_csv_bytes(records.session_rows(session_id, viewer))


__all__ = [
    "emotion_shares",
    "uncertain_share",
    "daily_shares",
    "session_shares",
    "row_times",
    "person_export",
    "person_json_bytes",
    "person_csv_bytes",
    "session_csv_bytes",
]
