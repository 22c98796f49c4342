"""fer_core: facial emotion recognition on FER2013 (no Streamlit in here).

Public API::

    from fer_core import EMOTIONS, FerError, read_image, load_fer2013, load_model, Recognizer
"""

from fer_core.data.fer2013 import Fer2013, load_fer2013
from fer_core.data.image import read_image
from fer_core.errors import ConfigError, DatasetError, FerError, ImageError, ModelError
from fer_core.faces import DETECTORS
from fer_core.labels import EMOTIONS, NUM_CLASSES, USAGES
from fer_core.models.architectures import available_architectures, build_model
from fer_core.models.inference import EmotionModel, load_model
from fer_core.recognition.drawing import draw_results
from fer_core.recognition.recognizer import PRESETS, FaceTracker, Recognizer
from fer_core.recognition.results import FaceResult

__all__ = [
    "EMOTIONS",
    "NUM_CLASSES",
    "USAGES",
    "FerError",
    "ImageError",
    "DatasetError",
    "ModelError",
    "ConfigError",
    "read_image",
    "load_fer2013",
    "Fer2013",
    "load_model",
    "EmotionModel",
    "Recognizer",
    "DETECTORS",
    "FaceResult",
    "FaceTracker",
    "PRESETS",
    "draw_results",
    "build_model",
    "available_architectures",
]
# The one place the version is written: pyproject.toml reads it from here.
__version__ = "0.3.0"
