"""Plotly figures used by the pages (no streamlit here: each returns a figure)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fer_core import EMOTIONS

# One colour per emotion, used on every page.
EMOTION_COLORS = {
    "angry": "#d62728",
    "disgust": "#8c564b",
    "fear": "#9467bd",
    "happy": "#2ca02c",
    "sad": "#1f77b4",
    "surprise": "#ff7f0e",
    "neutral": "#7f7f7f",
}
SPLIT_COLORS = {"Training": "#4c78a8", "PublicTest": "#f58518", "PrivateTest": "#54a24b"}


PANEL_GAP_PX = 60  # between rows of panels: room for the next panel's title


def probability_bars(
    probabilities: Sequence[Sequence[float]],
    titles: Sequence[str],
    columns: int = 3,
    height_per_row: int = 230,
):
    """Horizontal bars of the 7 probabilities, one panel per face, for any number of faces.

    The gap between rows is a fixed number of pixels (Plotly's ``vertical_spacing`` is a share
    of the whole figure and must stay below 1 / (rows - 1), so a fixed share breaks at 25 faces
    in 4 columns). Each bar's percentage is part of its axis label ("happy 91%"), inside its own
    panel, so on a narrow phone screen it cannot run into the next panel."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    count = max(len(probabilities), 1)
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    height = height_per_row * rows + 30
    vertical_spacing = min(PANEL_GAP_PX / height, 0.9 / (rows - 1)) if rows > 1 else 0.0
    figure = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=list(titles) or None,
        horizontal_spacing=0.12 if columns > 1 else 0.0,
        vertical_spacing=vertical_spacing,
    )
    for index, probs in enumerate(probabilities):
        probs = [float(p) for p in probs]
        figure.add_trace(
            go.Bar(
                x=probs,
                y=[f"{e} {p * 100:.0f}%" for e, p in zip(EMOTIONS, probs)],
                orientation="h",
                marker_color=[EMOTION_COLORS[e] for e in EMOTIONS],
                customdata=list(EMOTIONS),
                hovertemplate="%{customdata}: %{x:.1%}<extra></extra>",
                showlegend=False,
            ),
            row=index // columns + 1,
            col=index % columns + 1,
        )
    figure.update_xaxes(range=[0, 1], tickformat=".0%", showgrid=True, dtick=0.25)
    figure.update_yaxes(autorange="reversed", automargin=True)
    figure.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), bargap=0.25)
    return figure


def class_counts_figure(counts):
    """Grouped bars: images per emotion, one colour per split (``counts`` from
    ``fer_core.data.explore.class_counts``)."""
    import plotly.graph_objects as go

    figure = go.Figure()
    for split, row in counts.iterrows():
        values = [int(row[e]) for e in EMOTIONS]
        figure.add_trace(
            go.Bar(
                name=f"{split} ({int(row['total']):,})",
                x=list(EMOTIONS),
                y=values,
                marker_color=SPLIT_COLORS.get(split),
                text=[f"{v:,}" for v in values],
                textposition="outside",
            )
        )
    figure.update_layout(
        barmode="group",
        height=380,
        yaxis_title="images",
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", y=1.12),
    )
    return figure


def history_figure(history: list[dict]):
    """Loss and accuracy per epoch, training and validation (grows as epochs finish)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"))
    epochs = [int(row["epoch"]) for row in history]
    series = [
        ("loss", "train", 1, "#4c78a8", "solid"),
        ("val_loss", "validation", 1, "#f58518", "dash"),
        ("accuracy", "train", 2, "#4c78a8", "solid"),
        ("val_accuracy", "validation", 2, "#f58518", "dash"),
    ]
    for key, name, col, colour, dash in series:
        values = [row.get(key) for row in history]
        figure.add_trace(
            go.Scatter(
                x=epochs,
                y=values,
                mode="lines+markers",
                name=name,
                legendgroup=name,
                showlegend=col == 1,
                line=dict(color=colour, dash=dash),
            ),
            row=1,
            col=col,
        )
    figure.update_xaxes(title_text="epoch", dtick=1 if len(epochs) <= 20 else None)
    figure.update_yaxes(tickformat=".0%", row=1, col=2)
    figure.update_layout(
        height=360,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", x=0.5, xanchor="center", y=-0.22),
    )
    return figure


def confusion_figure(
    matrix, normalise: bool = True, rows: str = "true", columns: str = "predicted"
):
    """Heatmap of the confusion matrix (rows: true class, columns: predicted)."""
    import plotly.graph_objects as go

    counts = np.asarray(matrix, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    values = shares if normalise else counts
    text = [
        [
            (
                f"{shares[i, j] * 100:.0f}%<br>{int(counts[i, j])}"
                if normalise
                else f"{int(counts[i, j])}"
            )
            for j in range(counts.shape[1])
        ]
        for i in range(counts.shape[0])
    ]
    figure = go.Figure(
        go.Heatmap(
            z=values,
            x=list(EMOTIONS),
            y=list(EMOTIONS),
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1 if normalise else None,
            colorbar=dict(
                title="share of row" if normalise else "images",
                tickformat=".0%" if normalise else None,
            ),
            hovertemplate="true %{y}, predicted %{x}: %{text}<extra></extra>",
        )
    )
    figure.update_layout(
        height=480,
        xaxis_title=columns,
        yaxis_title=rows,
        yaxis_autorange="reversed",
        margin=dict(l=10, r=10, t=30, b=10),
    )
    return figure


def per_class_figure(per_class: dict):
    """Precision, recall and F1 per emotion as grouped bars."""
    import plotly.graph_objects as go

    figure = go.Figure()
    for metric, colour in (("precision", "#4c78a8"), ("recall", "#f58518"), ("f1", "#54a24b")):
        values = [per_class.get(e, {}).get(metric, 0.0) for e in EMOTIONS]
        figure.add_trace(
            go.Bar(
                name=metric.capitalize() if metric != "f1" else "F1",
                x=list(EMOTIONS),
                y=values,
                marker_color=colour,
                hovertemplate="%{x}: %{y:.3f}<extra></extra>",
            )
        )
    figure.update_layout(
        barmode="group",
        height=320,
        yaxis=dict(range=[0, 1], tickformat=".0%"),
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", y=1.15),
    )
    return figure


def timeline_figure(frames, max_faces: int = 6, x_title: str = "time (s)", titles=None, faces=None):
    """Probability of each emotion over time, one panel per face id (``frames`` is the
    DataFrame of ``fer_core.recognition.video.analyze_video``, or the Live page's last minute).
    ``titles``: a title per face id, instead of "face #N (K frames)". ``faces``: the face
    ids to draw, top to bottom (default: the ``max_faces`` seen in most frames, by id)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    data = frames.dropna(subset=["face_id"])
    counts = data["face_id"].astype(int).value_counts()
    faces = (
        sorted(counts.index[:max_faces].tolist())
        if faces is None
        else [int(face) for face in faces][:max_faces]
    )
    rows = max(len(faces), 1)
    figure = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=[(titles or {}).get(f, f"face #{f} ({counts[f]} frames)") for f in faces]
        or None,
    )
    for row, face in enumerate(faces, start=1):
        face_data = data[data["face_id"].astype(int) == face].sort_values("time_s")
        for emotion in EMOTIONS:
            figure.add_trace(
                go.Scatter(
                    x=face_data["time_s"],
                    y=face_data[emotion],
                    mode="lines",
                    name=emotion,
                    legendgroup=emotion,
                    showlegend=row == 1,
                    line=dict(color=EMOTION_COLORS[emotion], width=2),
                    hovertemplate=f"face #{face} {emotion}: %{{y:.1%}} at %{{x:.2f}} s<extra></extra>",
                ),
                row=row,
                col=1,
            )
    figure.update_yaxes(range=[0, 1], tickformat=".0%")
    figure.update_xaxes(title_text=x_title, row=rows, col=1)
    figure.update_layout(
        height=max(260, 200 * rows + 60),
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(title_text="emotion", tracegroupgap=2),
    )
    return figure


def share_bars(shares, title: str = "", height: int = 260):
    """Each emotion's share of a person's (or a session's) face rows: horizontal bars in the
    emotions' colours, the percentage in each label."""
    import plotly.graph_objects as go

    values = [float(shares.get(emotion, 0.0)) for emotion in EMOTIONS]
    figure = go.Figure(
        go.Bar(
            x=values,
            y=[f"{e} {v * 100:.0f}%" for e, v in zip(EMOTIONS, values)],
            orientation="h",
            marker_color=[EMOTION_COLORS[e] for e in EMOTIONS],
            hovertemplate="%{y}<extra></extra>",
        )
    )
    figure.update_xaxes(range=[0, 1], tickformat=".0%")
    figure.update_yaxes(autorange="reversed")
    figure.update_layout(
        title_text=title or None,
        height=height,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
    )
    return figure


def daily_figure(daily):
    """Emotions over days: per day, each emotion's share of that day's face rows (stacked
    bars), and the uncertain share as a line. ``daily``: ``fer_core.records.history.daily_shares``."""
    import plotly.graph_objects as go

    days = [str(day) for day in daily["day"]]
    figure = go.Figure()
    for emotion in EMOTIONS:
        figure.add_trace(
            go.Bar(
                x=days,
                y=daily[emotion],
                name=emotion,
                marker_color=EMOTION_COLORS[emotion],
                customdata=daily["faces"],
                hovertemplate=f"%{{x}} {emotion}: %{{y:.0%}} of %{{customdata}} faces<extra></extra>",
            )
        )
    if daily["uncertain"].notna().any():
        figure.add_trace(
            go.Scatter(
                x=days,
                y=daily["uncertain"],
                name="uncertain",
                mode="lines+markers",
                line=dict(color="#000000", dash="dot"),
                hovertemplate="%{x} uncertain: %{y:.0%}<extra></extra>",
            )
        )
    figure.update_layout(
        barmode="stack",
        height=320,
        margin=dict(l=10, r=10, t=10, b=10),
        yaxis=dict(range=[0, 1], tickformat=".0%", title_text="share of faces"),
        xaxis=dict(type="category", title_text="day (UTC)"),
        legend=dict(title_text="emotion"),
    )
    return figure


def reliability_figure(calibration: dict):
    """The reliability diagram of a model card's ``calibration`` section: per bin of the top
    probability, how often the top guess was right, before and after calibration, against the
    diagonal of perfect calibration; marker size follows the number of faces in the bin."""
    import plotly.graph_objects as go

    test = calibration.get("test") or {}
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfectly calibrated",
            line=dict(color="#999999", dash="dot"),
            hoverinfo="skip",
        )
    )
    for key, name, colour, ece_key in (
        ("reliability_before", "as trained", "#f58518", "ece_before"),
        ("reliability_after", "calibrated (shown in the app)", "#4c78a8", "ece_after"),
    ):
        bins = [row for row in test.get(key) or [] if row.get("count")]
        if not bins:
            continue
        ece = test.get(ece_key)
        figure.add_trace(
            go.Scatter(
                x=[row["confidence"] for row in bins],
                y=[row["accuracy"] for row in bins],
                mode="lines+markers",
                name=f"{name}: ECE {ece:.3f}" if ece is not None else name,
                line=dict(color=colour),
                marker=dict(
                    size=[
                        6 + 14 * (row["count"] / max(r["count"] for r in bins)) ** 0.5
                        for row in bins
                    ]
                ),
                customdata=[[row["count"], row["low"], row["high"]] for row in bins],
                hovertemplate=(
                    "top probability %{customdata[1]:.2f}–%{customdata[2]:.2f}: "
                    "%{customdata[0]} faces, mean %{x:.1%}, right %{y:.1%}"
                    "<extra></extra>"
                ),
            )
        )
    figure.update_layout(
        height=420,
        xaxis=dict(title="top probability (mean in bin)", range=[0, 1], tickformat=".0%"),
        yaxis=dict(title="share right", range=[0, 1], tickformat=".0%"),
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", y=1.12),
    )
    return figure
