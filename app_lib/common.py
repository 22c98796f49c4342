"""What every page shares: the active model (loaded once with st.cache_resource), the runs
folder, the sidebar, and error display. (The dataset path lives in ``app_lib.data_source``,
uploads in ``app_lib.session_files``.)"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from streamlit.logger import get_logger

from fer_core import FerError
from fer_core.errors import ModelError
from fer_core.inference import DEFAULT_MODEL, EmotionModel, litert_path_for, load_model
from fer_core.jobs import active_model_choice
from fer_core.jobs import runs_dir as _runs_dir


PAGES = {  # file -> (title, material icon, url path); app.py builds the navigation from this
    "app_pages/home.py": ("Home", ":material/home:", "home"),
    "app_pages/live.py": ("Live webcam", ":material/videocam:", "live"),
    "app_pages/upload.py": ("Photos & videos", ":material/upload:", "upload"),
    "app_pages/dataset.py": ("Dataset explorer", ":material/dataset:", "dataset"),
    "app_pages/training.py": ("Training", ":material/model_training:", "training"),
    "app_pages/model.py": ("Model card", ":material/description:", "model"),
}


def runs_dir() -> Path:
    """Where training runs live: ``$FER_RUNS_DIR`` or ``runs`` (relative to the app's cwd)."""
    return _runs_dir("runs")


# ----------------------------------------------------------------------------- the model


def _file_stamp(path: Path) -> tuple:
    stamps = []
    for candidate in (path, litert_path_for(path), path.with_name(path.stem + ".card.json")):
        try:
            stamps.append(candidate.stat().st_mtime_ns)
        except OSError:
            stamps.append(None)
    return tuple(stamps)


_logger = get_logger("fer_app")


@st.cache_resource(show_spinner="Loading the emotion model…", max_entries=4)
def _load_model_cached(path: str, stamp: tuple) -> EmotionModel:
    # ``stamp`` (file times) makes a replaced model file load afresh.
    from app_lib import freeze_long_lived_objects

    model = load_model(path)
    freeze_long_lived_objects()  # TensorFlow and the model now live as long as the server
    # One line per load in the server's log: all sessions share this one model.
    _logger.info("Loaded the emotion model %s (%s backend), shared by all sessions",
                 path, model.backend)
    return model


@dataclass
class ActiveModel:
    model: EmotionModel
    source: str  # "shipped" or "run"
    problem: str | None = None  # why the chosen model is not the one in use

    @property
    def card(self) -> dict:
        return self.model.card or {}


def active_model() -> ActiveModel:
    """The model the app uses: the one chosen on the Training page, else the shipped one.

    If the chosen model cannot be loaded, the shipped model is used and ``problem`` says why.
    Raises ModelError only if the shipped model itself is unusable.
    """
    choice = active_model_choice(runs_dir())
    problem = choice["problem"]
    if choice["path"] is not None:
        path = Path(choice["path"])
        try:
            return ActiveModel(_load_model_cached(str(path), _file_stamp(path)), "run")
        except FerError as exc:
            problem = f"The active model {path.name} could not be loaded ({exc})."
        except Exception as exc:  # a broken file can fail in many ways inside TensorFlow
            problem = (f"The active model {path.name} could not be loaded "
                       f"({type(exc).__name__}: {exc}).")
    try:
        model = _load_model_cached(str(DEFAULT_MODEL), _file_stamp(DEFAULT_MODEL))
    except FerError:
        raise
    except Exception as exc:
        raise ModelError(f"The shipped model {DEFAULT_MODEL.name} could not be loaded "
                         f"({type(exc).__name__}: {exc}). Reinstall the project.") from exc
    if problem:
        problem += " Using the shipped model instead."
    return ActiveModel(model, "shipped", problem)


def require_active_model() -> ActiveModel:
    """``active_model()`` for a page that cannot work without one: on failure the page shows
    the error and stops."""
    try:
        return active_model()
    except FerError as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()


def card_metrics(card: dict) -> dict:
    """Headline numbers of a model card (None where the card has none)."""
    test = (card or {}).get("test") or {}
    latency = ((card or {}).get("latency") or {}).get("batch_1") or {}
    return {"split": test.get("split"), "accuracy": test.get("accuracy"),
            "macro_f1": test.get("macro_f1"), "n": test.get("n"),
            "latency_ms": latency.get("median_ms"), "parameters": (card or {}).get("parameters"),
            "architecture": (card or {}).get("architecture")}


def percent(value, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def render_sidebar(active: ActiveModel | None, error: str | None = None) -> None:
    with st.sidebar:
        st.markdown("#### Active model")
        if active is None:
            st.error(error or "No model could be loaded.")
            return
        model = active.model
        metrics = card_metrics(active.card)
        st.markdown(f"**{model.name}**  \n"
                    f"{'shipped default' if active.source == 'shipped' else 'trained here'}"
                    f" · backend `{model.backend}`")
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
            st.warning("Fallback to the shipped model (see the page).", icon=":material/warning:")


# ----------------------------------------------------------------------------- errors


@contextlib.contextmanager
def user_errors(prefix: str = ""):
    """Show a FerError (a problem the user can fix) with st.error instead of a traceback."""
    try:
        yield
    except FerError as exc:
        st.error(f"{prefix}{exc}", icon=":material/error:")
