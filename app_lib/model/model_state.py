"""The model a page uses: loaded once per file with st.cache_resource and shared by all
sessions; chosen by the administrator for everyone (``fer_core.service.active``), or by a visitor
for their own session only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from streamlit.logger import get_logger

from fer_core import FerError
from fer_core.errors import ModelError
from fer_core.models.card import ModelCard, card_path_for
from fer_core.models.inference import (
    DEFAULT_MODEL,
    EmotionModel,
    litert_path_for,
    load_model,
    shipped_key,
)
from fer_core.service.active import active_choice
from fer_core.training.runs import runs_dir as _runs_dir

SESSION_MODEL_KEY = "fer_session_model"  # session_state: a model chosen for this session only
_logger = get_logger("fer_app")


def runs_dir() -> Path:
    """Where training runs live: ``$FER_RUNS_DIR`` or ``runs`` (relative to the app's cwd)."""
    return _runs_dir("runs")


def _file_stamp(path: Path) -> tuple:
    stamps: list[int | None] = []
    for candidate in (path, litert_path_for(path), card_path_for(path)):
        try:
            stamps.append(candidate.stat().st_mtime_ns)
        except OSError:
            stamps.append(None)
    return tuple(stamps)


@st.cache_resource(show_spinner="Loading the emotion model…", max_entries=4)
def _load_model_cached(path: str, stamp: tuple) -> EmotionModel:
    # ``stamp`` (file times) makes a replaced model file load afresh.
    from app_lib import freeze_long_lived_objects

    model = load_model(path)
    freeze_long_lived_objects()  # TensorFlow and the model now live as long as the server
    # One line per load in the server's log: all sessions share this one model.
    _logger.info(
        "Loaded the emotion model %s (%s backend), shared by all sessions", path, model.backend
    )
    return model


@dataclass
class ActiveModel:
    model: EmotionModel
    source: str  # "shipped", "run" (chosen for everyone) or "session" (for this session)
    problem: str | None = None  # why the chosen model is not the one in use

    @property
    def card(self) -> ModelCard | None:
        return self.model.card


def _load(path: Path, label: str) -> tuple[EmotionModel | None, str | None]:
    try:
        return _load_model_cached(str(path), _file_stamp(path)), None
    except FerError as exc:
        return None, f"The {label} {path.name} could not be loaded ({exc})."
    except Exception as exc:  # a broken file can fail in many ways inside TensorFlow
        return None, f"The {label} {path.name} could not be loaded ({type(exc).__name__})."


def choose_for_session(path: str | Path | None) -> None:
    """Use ``path`` in this browser session only (None: what everyone uses)."""
    if path is None:
        st.session_state.pop(SESSION_MODEL_KEY, None)
    else:
        st.session_state[SESSION_MODEL_KEY] = str(Path(path).resolve())


def active_model() -> ActiveModel:
    """The model this session uses: its own choice, else the one chosen for everyone on the
    Training page, else the shipped one.

    If a chosen model cannot be loaded, the next one is used and ``problem`` says why.
    Raises ModelError only if the shipped model itself is unusable.
    """
    problems: list[str] = []
    own = st.session_state.get(SESSION_MODEL_KEY)
    if own:
        model, problem = _load(Path(own), "model chosen for this session")
        if model is not None:
            return ActiveModel(model, "session")
        problems.append(str(problem))
    choice = active_choice(runs_dir())
    if choice.problem:
        problems.append(choice.problem)
    if choice.path is not None:
        model, problem = _load(choice.path, "active model")
        if model is not None:
            source = "shipped" if shipped_key(choice.path) else "run"
            return ActiveModel(model, source, " ".join(problems) or None)
        problems.append(str(problem))
    try:
        model = _load_model_cached(str(DEFAULT_MODEL), _file_stamp(DEFAULT_MODEL))
    except FerError:
        raise
    except Exception as exc:
        raise ModelError(
            f"The shipped model {DEFAULT_MODEL.name} could not be loaded "
            f"({type(exc).__name__}). Reinstall the project."
        ) from exc
    problem = " ".join(problems) + " Using the shipped model instead." if problems else None
    return ActiveModel(model, "shipped", problem)


def require_active_model() -> ActiveModel:
    """``active_model()`` for a page that cannot work without one: on failure the page shows
    the error and stops."""
    from app_lib.ui.text import show_error

    try:
        return active_model()
    except FerError as exc:
        show_error(str(exc))
        st.stop()
