"""The sidebar every page shares: the model in use, its measured accuracy, administrator
sign-in."""

from __future__ import annotations

import streamlit as st

from app_lib.access import render_admin_panel
from app_lib.formatting import percent
from app_lib.text import escape_markdown
from app_lib.model_state import ActiveModel, card_metrics

SOURCES = {"shipped": "shipped default", "run": "trained here",
           "session": "chosen for this session"}


def render_sidebar(active: ActiveModel | None, error: str | None = None) -> None:
    with st.sidebar:
        st.markdown("#### Active model")
        if active is None:
            st.error(escape_markdown(error or "No model could be loaded."))
        else:
            model = active.model
            metrics = card_metrics(active.card)
            st.markdown(f"**{escape_markdown(model.name)}**  \n"
                        f"{SOURCES.get(active.source, active.source)} · backend "
                        f"`{model.backend}`")
            if metrics["accuracy"] is not None:
                split = metrics["split"] or "test"
                left, right = st.columns(2)
                left.metric("Accuracy", percent(metrics["accuracy"]), help=f"On FER2013 {split}")
                right.metric("Macro-F1", f"{metrics['macro_f1']:.3f}" if metrics["macro_f1"]
                             is not None else "—", help=f"On FER2013 {split}")
                st.caption(f"Measured on FER2013 {split}"
                           + (f" ({metrics['n']:,} images)" if metrics["n"] else "") + ".")
            else:
                st.caption("No model card: accuracy not measured yet.")
            if active.problem:
                st.warning("Fallback model in use (see the page).", icon=":material/warning:")
        render_admin_panel()
