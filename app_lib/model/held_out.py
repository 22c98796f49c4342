"""The Model page's numbers beyond FER2013's own labels, every one read from where it was
measured: the card's ``held_out`` and ``whole_path`` sections (``fer evaluate --write-card``,
``fer evaluate-pipeline --write-card``) and, for real faces from elsewhere, ``bench/wild.json``
(``python -m bench.wild``), matched to the model by its file's sha256.

``held_out_rows`` and ``wild_rows`` are plain Python (tested directly).
"""

from __future__ import annotations

import json
from pathlib import Path

from app_lib.model.card_view import LABEL_NAMES
from app_lib.ui.detector import short_label
from fer_core.models.card import ModelCard, balanced_of

ROOT = Path(__file__).resolve().parents[2]
WILD_RESULTS = ROOT / "bench" / "wild.json"


def _pct(value) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _count(value) -> str:
    return "—" if value is None else f"{value:,}"


def held_out_rows(card: ModelCard) -> list[dict]:
    """The four numbers of the card, one row each, with the faces they count; balanced
    accuracy (the mean of per-class recall) beside accuracy where the card has per-class
    recall; then the posed faces, when measured."""
    test = card.test
    held = card.held_out
    copies = held.get("without_training_copies") or {}
    crowd = held.get("ferplus") or {}
    split = test.get("split", "?")
    rows = [
        {
            "measure": f"FER2013 {split}, its own labels (comparable with the literature)",
            "result": _pct(test.get("accuracy")),
            "balanced": _pct(card.balanced_accuracy("fer2013")),
            "faces": _count(test.get("n")),
        }
    ]
    if copies:
        rows.append(
            {
                "measure": f"the same without the {copies.get('removed')} images that "
                "copy a Training image",
                "result": _pct(copies.get("accuracy")),
                "balanced": "—",
                "faces": _count(copies.get("n")),
            }
        )
    if crowd:
        rows.append(
            {
                "measure": f"agreement with FER+'s ten raters, clear majority ({split})",
                "result": _pct(crowd.get("majority_agreement")),
                "balanced": _pct(card.balanced_accuracy("ferplus")),
                "faces": _count(crowd.get("clear_faces")),
            }
        )
        rows.append(
            {
                "measure": "FER+ paper's majority protocol (unknown/not-a-face dropped)",
                "result": _pct(crowd.get("plurality_agreement")),
                "balanced": "—",
                "faces": _count(crowd.get("emotion_faces")),
            }
        )
    for labels, section in card.whole_path.items():
        for row in section.get("rows", []):
            if row.get("variant", "plain") != "plain":
                continue
            name = short_label(row["detector"])
            rows.append(
                {
                    "measure": f"whole path, {name} {row['preset']} preset, "
                    f"end to end, {LABEL_NAMES.get(labels, labels)} "
                    f"({section.get('split')})",
                    "result": _pct(row.get("end_to_end")),
                    "balanced": "—",
                    "faces": _count(row.get("faces")),
                }
            )
    posed = card.posed
    if posed:
        rows.append(
            {
                "measure": f"faces made on purpose, experts' labels ({posed.get('set')}; "
                "never trained on)",
                "result": _pct(posed.get("accuracy")),
                "balanced": _pct(posed.get("balanced_accuracy")),
                "faces": _count(posed.get("n")),
            }
        )
    return rows


def load_wild(path: str | Path = WILD_RESULTS) -> dict | None:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def wild_entry(card: ModelCard, results: dict | None) -> dict | None:
    sha = card.keras_sha256
    return ((results or {}).get("models") or {}).get(sha) if sha else None


def wild_rows(entry: dict, peer: dict | None = None) -> list[dict]:
    """GENKI-4K through the whole path per detector (and the `fer` package on the same
    photos, when measured), then muxspace's crops."""
    rows = []
    for detector, report in (entry.get("genki4k") or {}).items():
        name = short_label(detector)
        rows.append(
            {
                "set": "GENKI-4K smiles, whole path",
                "model": f"this model, {name}",
                "faces found": _pct(report.get("found")),
                "right (happy or not), faces found": _pct(
                    (report.get("on_found") or {}).get("accuracy")
                ),
                "balanced": _pct((report.get("on_found") or {}).get("balanced_accuracy")),
                "end to end": _pct(report.get("end_to_end_accuracy")),
            }
        )
    genki_peer = (peer or {}).get("genki4k") or {}
    if genki_peer and not genki_peer.get("missing"):
        rows.append(
            {
                "set": "GENKI-4K smiles, whole path",
                "model": "the fer package",
                "faces found": _pct(genki_peer.get("found")),
                "right (happy or not), faces found": _pct(
                    (genki_peer.get("on_found") or {}).get("accuracy")
                ),
                "balanced": _pct((genki_peer.get("on_found") or {}).get("balanced_accuracy")),
                "end to end": _pct(genki_peer.get("end_to_end_accuracy")),
            }
        )
    return rows


def render_posed(card: ModelCard) -> None:
    """Faces made on purpose: per-class recall from the card's ``posed`` section."""
    import streamlit as st

    posed = card.posed
    st.markdown("##### Faces made on purpose (posed, labelled by experts)")
    if not posed:
        st.caption(
            "Not measured for this model file: `python -m bench.posed --model MODEL --write-card`."
        )
        return
    recall = posed.get("recall") or {}
    support = posed.get("support") or {}
    st.dataframe(
        [
            {"expression": emotion, "recall": _pct(value), "faces": _count(support.get(emotion))}
            for emotion, value in recall.items()
        ],
        hide_index=True,
    )
    st.caption(
        f"{posed.get('set')}: expressions posed at their peak in a studio (CK+), labelled by "
        f"FACS-trained coders; no face of CK+ was used to train. Accuracy "
        f"{_pct(posed.get('accuracy'))}, balanced accuracy "
        f"{_pct(posed.get('balanced_accuracy'))}; {_pct(posed.get('called_neutral'))} of "
        f"these faces (none of them neutral) were called neutral. Measured by "
        f"`{posed.get('command')}` on {posed.get('date')}."
    )


def render_whole_path(card: ModelCard) -> None:
    import streamlit as st

    from app_lib.model.pipeline import render_pipeline_figures

    sections = card.whole_path
    if not sections:
        st.info(
            "The whole path (detector, crop and model together) has not been measured for "
            "this model: run `fer evaluate-pipeline --split PrivateTest --detector haar "
            "blazeface --preset photo live --model MODEL --write-card`.",
            icon=":material/info:",
        )
        return
    for labels in ("ferplus-majority", "fer2013"):
        if labels in sections:
            st.markdown(f"##### Scored by {LABEL_NAMES.get(labels, labels)}")
            render_pipeline_figures(sections[labels], key=f"pipeline-{labels}")


def render_held_out(card: ModelCard) -> None:
    import streamlit as st

    st.subheader("Beyond FER2013's labeller")
    rows = held_out_rows(card)
    st.dataframe(rows, hide_index=True, width="stretch", height=38 + 35 * len(rows))
    st.caption(
        "FER2013's labels come from one person per face; FER+ asked ten. The whole "
        "path places each test face in a larger frame and runs the detector, the crop "
        "and the model as the app does; a missed face counts as wrong."
    )
    render_posed(card)
    results = load_wild()
    entry = wild_entry(card, results)
    if entry is None:
        st.caption(
            "Real faces from elsewhere (GENKI-4K, muxspace) have not been measured for "
            "this model file: `python -m bench.wild --model MODEL`."
        )
        return
    st.markdown("##### Real faces labelled by other people (not used for training)")
    st.dataframe(wild_rows(entry, (results or {}).get("peer")), hide_index=True)
    mux = entry.get("muxspace") or {}
    if mux:
        recall = ", ".join(
            f"{emotion} {_pct(value)}" for emotion, value in (mux.get("recall") or {}).items()
        )
        st.caption(
            f"muxspace ({mux.get('n'):,} tight crops, one student each): accuracy "
            f"{_pct(mux.get('accuracy'))}, balanced accuracy {_pct(balanced_of(mux))}, "
            f"macro-F1 {mux.get('macro_f1', 0):.3f}; "
            f"recall per class: {recall}. Measured by `python -m bench.wild`."
        )


__all__ = [
    "held_out_rows",
    "wild_rows",
    "wild_entry",
    "load_wild",
    "render_held_out",
    "render_whole_path",
    "render_posed",
]
