"""The sidebar every page shares: the model in use, its measured accuracy, administrator
sign-in."""

from __future__ import annotations

import streamlit as st

from app_lib.model.card_view import headline
from app_lib.model.model_state import ActiveModel
from app_lib.server.access import render_admin_panel
from app_lib.ui.formatting import percent
from app_lib.ui.text import escape_markdown

SOURCES = {
    "shipped": "shipped default",
    "run": "trained here",
    "session": "chosen for this session",
}


def render_sidebar(active: ActiveModel | None, error: str | None = None) -> None:
    with st.sidebar:
        st.markdown("#### Active model")
        if active is None:
            st.error(escape_markdown(error or "No model could be loaded."))
        else:
            model = active.model
            st.markdown(
                f"**{escape_markdown(model.name)}**  \n"
                f"{SOURCES.get(active.source, active.source)} · backend "
                f"`{model.backend}`"
            )
            numbers = headline(active.card)
            if numbers.crowd_agreement is not None:
                st.metric(
                    f"Agrees with people ({numbers.split})",
                    percent(numbers.crowd_agreement),
                    help=f"FER+ majority of ten raters, {numbers.crowd_faces:,} "
                    f"{numbers.split} faces (FER2013's own crops)",
                )
            if numbers.crop_accuracy is not None:
                st.metric(
                    f"FER2013 labels ({numbers.split})",
                    percent(numbers.crop_accuracy),
                    help=f"Accuracy on FER2013 {numbers.split}'s crops, by its single labeller",
                )
            if numbers.crop_accuracy is None and numbers.crowd_agreement is None:
                st.caption("No model card: accuracy not measured yet.")
            if active.problem:
                st.warning("Fallback model in use (see the page).", icon=":material/warning:")
        render_admin_panel()
