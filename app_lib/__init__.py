"""Streamlit helpers shared by the app's pages (the pages stay thin; the vision and learning
live in ``fer_core``, which never imports streamlit).

``app_lib.live`` and ``app_lib.uploads`` do not import streamlit either, so their logic is
tested as plain functions.
"""

# pylibsrtp (used by aiortc, hence streamlit-webrtc) crashes the process with a segmentation
# fault when it is imported after TensorFlow has been loaded (their bundled crypto libraries
# clash). Importing it first is safe, so it is imported here, before any page loads a model.
try:  # pragma: no cover - import side effect only
    import pylibsrtp  # noqa: F401
except ImportError:  # the live page will say that streamlit-webrtc is missing
    pass
