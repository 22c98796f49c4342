"""fer_core: facial emotion recognition on FER2013 (no Streamlit in here).

Public API::

    from fer_core import EMOTIONS, FerError, read_image, load_fer2013, load_model, Recognizer
"""

from .data import Fer2013, load_fer2013
from .errors import ConfigError, DatasetError, FerError, ImageError, ModelError
from .faces import DETECTORS
from .image import read_image
from .inference import EmotionModel, load_model
from .labels import EMOTIONS, NUM_CLASSES, USAGES
from .model import available_architectures, build_model
from .recognizer import PRESETS, FaceResult, FaceTracker, Recognizer, draw_results

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
