"""The Model page's choice between the shipped models: the default, trained on FER+'s crowd
votes, and the alternative, trained on FER2013's own labels. Both ship inside the package
and load offline; their numbers come from their own cards.

``shipped_rows`` is plain Python (tested directly)."""

from __future__ import annotations

from pathlib import Path

from app_lib.model.card_view import LABEL_NAMES, headline
from fer_core.models.card import read_card
from fer_core.models.inference import SHIPPED_MODELS

WHAT = {
    "crowd": "default: what share of people would say",
    "fer2013": "alternative: FER2013's one labeller",
}


def _pct(value) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def shipped_rows() -> list[dict]:
    rows = []
    for key, path in SHIPPED_MODELS.items():
        if not path.is_file():
            continue
        numbers = headline(read_card(path))
        rows.append(
            {
                "model": path.stem,
                "role": WHAT.get(key, key),
                "trained on": LABEL_NAMES.get(numbers.trained_on, numbers.trained_on),
                f"agrees with people ({numbers.split})": _pct(numbers.crowd_agreement),
                f"FER2013 labels ({numbers.split})": _pct(numbers.crop_accuracy),
            }
        )
    return rows


def render_shipped_choice(active) -> None:
    import streamlit as st

    from app_lib.model.model_state import choose_for_session, runs_dir
    from app_lib.server.access import is_admin
    from fer_core.service.active import set_active_model

    st.subheader("The shipped models")
    st.dataframe(shipped_rows(), hide_index=True, width="stretch")
    st.caption(
        "The default says what share of people would call a face each emotion (it "
        "learned ten people's votes per face, FER+); the alternative learned FER2013's "
        "own labels and is the one to compare with published FER2013 results."
    )
    in_use = Path(active.model.path).resolve()
    buttons = st.container(horizontal=True, gap="small")
    for key, path in SHIPPED_MODELS.items():
        if not path.is_file() or path.resolve() == in_use:
            continue
        if buttons.button(
            f"Use {path.stem} for me",
            key=f"session-shipped-{key}",
            icon=":material/person:",
            help="Only in this browser session; everyone else keeps theirs.",
        ):
            choose_for_session(path)
            st.rerun(scope="app")
        if is_admin() and buttons.button(
            f"Use {path.stem} for everyone",
            key=f"everyone-shipped-{key}",
            icon=":material/published_with_changes:",
        ):
            choose_for_session(None)
            set_active_model(None if key == "crowd" else path, runs_dir())
            st.rerun(scope="app")


__all__ = ["shipped_rows", "render_shipped_choice"]
