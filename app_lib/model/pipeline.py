"""The Model page's pipeline figures: accuracy on FER2013's own crops beside accuracy through
the whole path (detector, crop, model), read from the pipeline evaluation's results file
(``bench/pipeline.json``, written by ``python -m fer_core evaluate-pipeline``), never typed in.

``pipeline_rows`` is plain Python (tested directly); ``render_pipeline_figures`` draws them
with Streamlit, for the lead to call from the Model page.
"""

from __future__ import annotations

import json
from pathlib import Path

from app_lib.ui.detector import short_label
from fer_core.faces import DETECTORS

ROOT = Path(__file__).resolve().parents[2]
PIPELINE_RESULTS = ROOT / "bench" / "pipeline.json"
COMMAND = (
    "python -m fer_core evaluate-pipeline --split PrivateTest "
    f"--detector {' '.join(DETECTORS)} "
    "--preset photo live --variants plain rotated shifted --out bench/pipeline.json"
)


def load_pipeline_results(path: str | Path = PIPELINE_RESULTS) -> dict | None:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _pct(value) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def pipeline_rows(results: dict, variant: str | None = "plain") -> list[dict]:
    """One row per detector, preset (and variant), in the results' order, as strings."""
    rows = []
    for row in results.get("rows", []):
        if variant is not None and row.get("variant", "plain") != variant:
            continue
        rows.append(
            {
                "detector": short_label(row["detector"]),
                "preset": row["preset"],
                "faces": row.get("variant", "plain"),
                "crop accuracy (FER2013's crops)": _pct(row["crop_accuracy"]),
                "end-to-end accuracy": _pct(row["end_to_end"]),
                "faces found": _pct(row["found"]),
                "accuracy on faces found": _pct(row["accuracy_found"]),
                "same faces, FER2013's crops": _pct(row["crop_accuracy_found"]),
                "framing cost": (
                    "—" if row["framing_cost"] is None else f"{row['framing_cost'] * 100:+.1f} pt"
                ),
                "macro-F1 on faces found": (
                    "—" if row["macro_f1_found"] is None else f"{row['macro_f1_found']:.3f}"
                ),
            }
        )
    return rows


def pipeline_figure(results: dict, variant: str = "plain"):
    """Grouped bars: crop accuracy and end-to-end accuracy per detector and preset."""
    import plotly.graph_objects as go

    rows = [r for r in results.get("rows", []) if r.get("variant", "plain") == variant]
    names = [f"{short_label(r['detector'])} ({r['preset']})" for r in rows]
    figure = go.Figure()
    for key, label in (
        ("crop_accuracy", "FER2013's crops"),
        ("accuracy_found", "through the pipeline, faces found"),
        ("end_to_end", "end to end (a missed face is wrong)"),
    ):
        figure.add_bar(
            x=names,
            y=[(r[key] or 0) * 100 for r in rows],
            name=label,
            text=[_pct(r[key]) for r in rows],
            textposition="outside",
        )
    figure.update_layout(
        barmode="group",
        yaxis_title="accuracy (%)",
        yaxis_range=[0, 100],
        height=360,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", y=-0.2),
    )
    return figure


def render_pipeline_figures(
    results: dict | None = None, container=None, key: str = "pipeline-figure"
) -> None:
    """One whole-path section (a card's ``whole_path[labels]``, or ``bench/pipeline.json``)."""
    import streamlit as st

    target = container if container is not None else st
    results = results if results is not None else load_pipeline_results()
    if not results:
        target.info(
            "No pipeline evaluation yet. Run `" + COMMAND + "` to measure accuracy "
            "through the face detector and crop.",
            icon=":material/info:",
        )
        return
    target.markdown(f"Through the whole path: {results['split']}, {results['faces']:,} faces")
    # the commands the results record (its rows may come from several), else one that
    # reproduces them all
    commands = [str(c) for c in results.get("commands") or []] or [COMMAND]
    target.caption(
        "Each FER2013 face, upscaled and placed in a larger frame, goes through the "
        "face detector, the crop and the model, as in the app. A face the detector "
        "misses counts as wrong end to end. Measured on "
        f"{results.get('date', 'an unknown date')} with "
        + "; then ".join(f"`{command}`" for command in commands)
        + "."
    )
    target.plotly_chart(pipeline_figure(results), key=key, config={"displayModeBar": False})
    target.dataframe(pipeline_rows(results, variant=None), hide_index=True)


__all__ = [
    "pipeline_rows",
    "pipeline_figure",
    "render_pipeline_figures",
    "load_pipeline_results",
    "PIPELINE_RESULTS",
    "COMMAND",
]
