"""Streamlit helpers shared by the app's pages (the pages stay thin; the vision and learning
live in ``fer_core``, which never imports streamlit).

``app_lib.live.processor`` and ``app_lib.uploads.analysis`` do not import streamlit either, so their logic is
tested as plain functions.
"""

# pylibsrtp (used by aiortc, hence streamlit-webrtc) crashes the process with a segmentation
# fault when it is imported after TensorFlow has been loaded (their bundled crypto libraries
# clash). Importing it first is safe, so it is imported here, before any page loads a model.
try:  # pragma: no cover - import side effect only
    import pylibsrtp  # noqa: F401
except ImportError:  # the live page will say that streamlit-webrtc is missing
    pass

import gc as _gc
import sys as _sys


def _keep_streamlit_from_resetting_keras() -> None:
    """Stop Streamlit from calling ``keras.backend.clear_session()`` after every script run.

    Streamlit's script runner does that whenever ``keras`` is imported (an old workaround for
    TensorFlow 1 graphs piling up). Here it costs a full garbage collection of a process that
    holds TensorFlow, about 250 ms, after every run, and the Live page's panel reruns three
    times a second: the script thread then holds the GIL nearly all the time, and the WebRTC
    loop and the frame callback starve (measured: 22 fps fell to about 1 fps, 900 ms a
    frame). It would also reset Keras's global state under models that other sessions are
    using. Models here are loaded once and shared, so there is nothing to clear. The
    matplotlib part of Streamlit's cleanup is kept.
    """
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:  # pragma: no cover - streamlit is a requirement of the app
        return
    if not hasattr(script_runner, "_clean_problem_modules"):
        return  # a Streamlit without the hook; tests/app/test_app_runtime.py notices

    def clean_problem_modules_except_keras() -> None:
        pyplot = _sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            try:
                pyplot.close("all")
            except Exception:  # noqa: BLE001 - as Streamlit: never crash the app here
                pass

    script_runner._clean_problem_modules = clean_problem_modules_except_keras


_keep_streamlit_from_resetting_keras()


def _no_outbound_lookups() -> None:
    """Never ask the internet for this machine's public address. Streamlit does (an HTTP
    request to checkip.amazonaws.com) when it starts on a wildcard address, to print an
    "External URL", and when a page from another site opens a connection, to compare origins.
    Nothing may leave the machine: the address is "not known", which prints no External URL
    and allows no more origins (localhost, the address served and the local network address
    still are). ``python -m app_lib.server.serve`` (``make run``) installs this before Streamlit
    starts; a plain ``streamlit run app.py`` gets it at the first page view."""
    try:
        from streamlit import net_util
    except ImportError:  # pragma: no cover - streamlit is a requirement of the app
        return
    net_util.get_external_ip = lambda: None


_no_outbound_lookups()


def freeze_long_lived_objects() -> None:
    """Move every object alive now out of reach of the cyclic garbage collector.

    Called once the heavy modules (TensorFlow) and the model are loaded: their hundreds of
    thousands of objects live as long as the server, and without this each full collection
    walks all of them (about 250 ms, holding the GIL, which stalls the live video)."""
    _gc.freeze()


def _remove_stale_uploads() -> None:
    """At server start (app.py imports app_lib on the first script run), delete the upload
    folders that servers no longer running left behind (see app_lib.uploads.session_files)."""
    try:
        from app_lib.uploads.session_files import remove_stale_folders

        remove_stale_folders()
    except Exception:  # noqa: BLE001 - never keep the app from starting over old temp files
        pass


_remove_stale_uploads()
