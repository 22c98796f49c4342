"""Loading models for inference: the Keras file, and its LiteRT/TFLite fast path."""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from pathlib import Path

import numpy as np

from fer_core.errors import ModelError
from fer_core.labels import EMOTIONS, INPUT_SIZE, NUM_CLASSES
from fer_core.models.architectures import load_keras_model
from fer_core.models.calibration import calibrate
from fer_core.models.card import ModelCard, read_card
from fer_core.storage import atomic_path


def _models_dir() -> Path:
    """The shipped model's folder: inside the installed package (``pip install .``), or the
    repository's ``models/`` (a checkout, or an editable install)."""
    package = Path(__file__).resolve().parents[1]  # fer_core/
    installed = package / "shipped"
    return installed if (installed / "cnn_gru.keras").is_file() else package.parent / "models"


MODELS_DIR = _models_dir()
DEFAULT_MODEL = MODELS_DIR / "cnn_gru.keras"
# Every shipped model by key: the default (trained on FER+'s crowd votes) and the selectable
# alternative (trained on FER2013's own labels). Both load offline; each has its card.
SHIPPED_MODELS = {"crowd": DEFAULT_MODEL, "fer2013": MODELS_DIR / "cnn_gru_fer2013.keras"}


def shipped_key(path: str | Path | None) -> str | None:
    """The key of a shipped model file, or None for any other file."""
    if path is None:
        return "crowd"
    try:
        resolved = Path(path).resolve()
    except OSError:
        return None
    return next(
        (key for key, shipped in SHIPPED_MODELS.items() if shipped.resolve() == resolved), None
    )


FAST_PATH_TOLERANCE = 1e-4


def litert_path_for(model_path: str | Path) -> Path:
    return Path(model_path).with_suffix(".tflite")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _interpreter_class():
    try:  # The standalone LiteRT runtime, where installed.
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        return tf.lite.Interpreter


class _LiteRTRunner:
    """A LiteRT interpreter behind a lock (interpreters are not thread-safe)."""

    def __init__(self, path: Path, num_threads: int | None = None):
        Interpreter = _interpreter_class()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._interpreter = Interpreter(
                    model_path=str(path), num_threads=num_threads or min(2, os.cpu_count() or 1)
                )
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"Could not load the fast-path model {path.name}: {exc}") from exc
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        if tuple(self._input["shape"][1:]) != (INPUT_SIZE, INPUT_SIZE, 1) or tuple(
            self._output["shape"][1:]
        ) != (NUM_CLASSES,):
            raise ModelError(f"{path.name} does not map 48x48x1 images to 7 probabilities.")
        self._batch = int(self._input["shape"][0])
        self._lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            if len(batch) != self._batch:
                self._interpreter.resize_tensor_input(
                    self._input["index"], [len(batch), INPUT_SIZE, INPUT_SIZE, 1]
                )
                self._interpreter.allocate_tensors()
                self._batch = len(batch)
            self._interpreter.set_tensor(self._input["index"], batch)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output["index"]).copy()


class EmotionModel:
    """A trained emotion classifier: raw 48x48 grey crops in, 7 probabilities out.

    ``backend`` is ``"litert"`` (the fast path, used when ``<model>.tflite`` sits beside the
    ``.keras`` file) or ``"keras"``.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        fast: bool = True,
        num_threads: int | None = None,
        flip_average: bool | None = None,
    ):
        self.path = Path(path) if path is not None else DEFAULT_MODEL
        if not self.path.is_file():
            if path is None:
                raise ModelError(
                    f"The shipped model {self.path} is missing; reinstall the "
                    "project or train one with `python -m fer_core train`."
                )
            raise ModelError(f"Model file {self.path} does not exist.")
        self.card: ModelCard | None = read_card(self.path)
        # Test-time horizontal-flip averaging: on when the model card chose it (on PublicTest).
        if flip_average is None:
            flip_average = self.card.flip_average if self.card else False
        self.flip_average = flip_average
        # The card's calibration (fitted on PublicTest by ``evaluate --write-card``): every
        # probability ``predict_faces`` gives is calibrated; ``calibrated=False`` gives raw ones.
        self.calibration = self.card.calibration if self.card else {}
        self._keras = None
        self._keras_lock = threading.Lock()
        self._runner = None
        litert = litert_path_for(self.path)
        if fast and litert.is_file():
            self._runner = _LiteRTRunner(litert, num_threads)
            self.backend = "litert"
        else:
            _ = self.keras_model  # load now so a bad file fails here, not on first use
            self.backend = "keras"

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def keras_model(self):
        if self._keras is None:
            with self._keras_lock:
                if self._keras is None:
                    self._keras = load_keras_model(self.path)
        return self._keras

    def predict_faces(self, crops: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """(N, 48, 48) uint8 crops -> (N, 7) float32 probabilities in EMOTIONS order,
        calibrated with the model card's temperature (``calibrated=False``: the network's own
        probabilities, for fitting and evaluating the calibration)."""
        crops = np.asarray(crops)
        if crops.ndim != 3 or crops.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"expected (N, 48, 48) crops, got {crops.shape}")
        if len(crops) == 0:
            return np.zeros((0, NUM_CLASSES), dtype=np.float32)
        batch = crops.astype(np.float32)[..., None]
        if self.flip_average:
            batch = np.concatenate([batch, batch[:, :, ::-1]])
        probs = self._predict_batch(batch)
        if self.flip_average:
            half = len(crops)
            probs = 0.5 * (probs[:half] + probs[half:])
        if calibrated and self.calibration:
            probs = calibrate(probs, self.calibration).astype(np.float32)
        return probs

    def _predict_batch(self, batch: np.ndarray) -> np.ndarray:
        if self._runner is not None:
            return self._runner(np.ascontiguousarray(batch))
        model = self.keras_model
        with self._keras_lock:
            # Calling the model directly avoids predict()'s per-call set-up cost.
            return np.asarray(model(batch, training=False), dtype=np.float32)


_CACHE: dict[tuple, EmotionModel] = {}
_CACHE_LOCK = threading.Lock()


def load_model(
    path: str | Path | None = None, fast: bool = True, flip_average: bool | None = None
) -> EmotionModel:
    """Load a model (``None``: the shipped default in ``models/``). Loaded once per path."""
    resolved = Path(path).resolve() if path is not None else DEFAULT_MODEL
    try:
        stamp = resolved.stat().st_mtime_ns
    except OSError:
        stamp = None
    key = (str(resolved), fast, flip_average, stamp)
    with _CACHE_LOCK:
        model = _CACHE.get(key)
        if model is None:
            model = EmotionModel(path, fast=fast, flip_average=flip_average)
            _CACHE[key] = model
        return model


def export_litert(keras_path: str | Path, check_images: np.ndarray | None = None) -> dict:
    """Export ``<model>.keras`` to ``<model>.tflite`` (written atomically) and check that the
    fast path agrees with Keras to within 1e-4 on real or random inputs."""

    keras_path = Path(keras_path)
    model = load_keras_model(keras_path)
    target = litert_path_for(keras_path)
    if check_images is None:
        rng = np.random.default_rng(0)
        check_images = rng.integers(0, 256, (64, INPUT_SIZE, INPUT_SIZE), dtype=np.uint8)
    batch = np.asarray(check_images, dtype=np.float32)[..., None]
    expected = np.asarray(model(batch, training=False))
    with atomic_path(target) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.export(str(tmp), format="litert", verbose=False)
        runner = _LiteRTRunner(tmp)
        got = np.concatenate([runner(batch[i : i + 1]) for i in range(len(batch))])
        difference = float(np.abs(expected - got).max())
        if difference > FAST_PATH_TOLERANCE:
            raise ModelError(
                f"The LiteRT export differs from Keras by {difference:.2e} "
                f"(> {FAST_PATH_TOLERANCE}); not using it."
            )
    return {
        "path": str(target),
        "max_abs_difference": difference,
        "checked": int(len(batch)),
        "bytes": target.stat().st_size,
    }


def export_litert_int8(
    keras_path: str | Path, representative: np.ndarray, target: str | Path | None = None
) -> dict:
    """Export ``<model>.keras`` as a full-integer LiteRT model: every weight and activation
    int8 (float32 in and out, so the fast path's callers do not change), the activation
    ranges read from ``representative`` (N, 48, 48) uint8 faces from Training. Written
    atomically to ``target`` (default: ``<model>.tflite``). Whether it may ship is decided
    by its accuracy on PublicTest (``fer export --int8``), not here."""
    import shutil
    import tempfile

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    keras_path = Path(keras_path)
    target = Path(target) if target is not None else litert_path_for(keras_path)
    model = load_keras_model(keras_path)
    faces = np.asarray(representative, dtype=np.float32)[..., None]

    def samples():
        for face in faces:
            yield [face[None]]

    folder = Path(tempfile.mkdtemp(prefix="fer_int8_"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.export(str(folder / "saved"), format="tf_saved_model", verbose=False)
            converter = tf.lite.TFLiteConverter.from_saved_model(str(folder / "saved"))
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = samples
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            data = converter.convert()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    with atomic_path(target) as tmp:
        Path(tmp).write_bytes(data)
        _LiteRTRunner(Path(tmp))  # it loads and has the right shape
    return {
        "path": str(target),
        "bytes": len(data),
        "quantization": "int8",
        "representative_faces": int(len(faces)),
    }


__all__ = [
    "EmotionModel",
    "load_model",
    "export_litert",
    "export_litert_int8",
    "DEFAULT_MODEL",
    "SHIPPED_MODELS",
    "shipped_key",
    "EMOTIONS",
]
