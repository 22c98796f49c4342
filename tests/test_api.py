import subprocess
import sys

import fer_core
from tests.conftest import ROOT


def test_emotions_in_fer2013_order():
    assert fer_core.EMOTIONS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def test_error_hierarchy():
    for cls in (
        fer_core.ImageError,
        fer_core.DatasetError,
        fer_core.ModelError,
        fer_core.ConfigError,
    ):
        assert issubclass(cls, fer_core.FerError)


def test_import_does_not_pull_streamlit_or_tensorflow():
    code = "import sys, fer_core; print('streamlit' in sys.modules, 'tensorflow' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "False"]
