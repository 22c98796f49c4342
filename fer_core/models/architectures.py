"""Named model architectures, and loading/saving of models.

Every model built here takes raw 48x48x1 grey values in 0..255 (float32) and normalises
inside itself, and ends in a 7-way softmax in ``EMOTIONS`` order. One registry decides what
a name means, so the CLI, the training page, the tests and the benchmark all agree.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fer_core.errors import ModelError
from fer_core.labels import INPUT_SIZE, NUM_CLASSES
from fer_core.storage import atomic_path

_REGISTRY: dict[str, Callable] = {}


def register(name: str):
    def decorator(builder):
        _REGISTRY[name] = builder
        return builder

    return decorator


def available_architectures() -> list[str]:
    return sorted(_REGISTRY)


def build_model(name: str, **kwargs):
    """Build a fresh, untrained model by registered name."""
    if name not in _REGISTRY:
        raise ModelError(
            f"Unknown architecture {name!r}. Choose one of: {', '.join(available_architectures())}."
        )
    return _REGISTRY[name](**kwargs)


def _input_and_normalise():
    import keras
    from keras import layers

    inputs = keras.Input(shape=(INPUT_SIZE, INPUT_SIZE, 1), name="pixels")
    # 0..255 -> -1..1, inside the model so no caller can feed the wrong scale.
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalise")(inputs)
    return inputs, x


def _conv_bn_relu(x, filters, name, padding="valid"):
    from keras import layers

    x = layers.Conv2D(filters, 3, padding=padding, use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _xception_block(x, filters, name):
    """Residual block of two depthwise-separable convolutions, halving the resolution."""
    from keras import layers

    residual = layers.Conv2D(
        filters, 1, strides=2, padding="same", use_bias=False, name=f"{name}_skip_conv"
    )(x)
    residual = layers.BatchNormalization(name=f"{name}_skip_bn")(residual)
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sep1")(x)
    x = layers.BatchNormalization(name=f"{name}_bn1")(x)
    x = layers.ReLU(name=f"{name}_relu1")(x)
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sep2")(x)
    x = layers.BatchNormalization(name=f"{name}_bn2")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    return layers.Add(name=f"{name}_add")([x, residual])


def _backbone(x, stem_filters, block_filters):
    """Mini-Xception backbone; returns the output of every residual block, low to high level."""
    x = _conv_bn_relu(x, stem_filters, "stem1")
    x = _conv_bn_relu(x, stem_filters, "stem2")
    features = []
    for index, filters in enumerate(block_filters, start=1):
        x = _xception_block(x, filters, f"block{index}")
        features.append(x)
    return features


@register("mini_xception")
def mini_xception(width: int = 8):
    """The seed's CNN (Arriaga et al., 2017): about 58k parameters at width 8."""
    import keras
    from keras import layers

    inputs, x = _input_and_normalise()
    features = _backbone(x, width, [2 * width, 4 * width, 8 * width, 16 * width])
    x = layers.Conv2D(NUM_CLASSES, 3, padding="same", name="classifier_conv")(features[-1])
    x = layers.GlobalAveragePooling2D(name="classifier_pool")(x)
    outputs = layers.Softmax(name="probabilities")(x)
    return keras.Model(inputs, outputs, name="mini_xception")


@register("cnn_wide")
def cnn_wide(width: int = 16, dropout_rate: float = 0.3):
    """Ablation: the cnn_gru backbone with a plain pooled head (no recurrent reader)."""
    import keras
    from keras import layers

    inputs, x = _input_and_normalise()
    features = _backbone(x, width, [2 * width, 4 * width, 8 * width, 16 * width])
    x = layers.GlobalAveragePooling2D(name="head_pool")(features[-1])
    x = layers.Dropout(dropout_rate, name="head_dropout")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="cnn_wide")


@register("cnn_gru")
def cnn_gru(
    width: int = 16, projection_units: int = 128, rnn_units: int = 64, dropout_rate: float = 0.3
):
    """Hierarchical CNN-RNN.

    The pooled output of every residual block (low level to high level) is projected to one
    width and read as a short sequence by a bidirectional GRU, whose final states feed the
    softmax. The sequence length is fixed (4) and the GRU is unrolled, so the model converts
    to LiteRT/TFLite with plain ops.
    """
    import keras
    from keras import layers

    inputs, x = _input_and_normalise()
    features = _backbone(x, width, [2 * width, 4 * width, 8 * width, 16 * width])
    steps = []
    for index, feature in enumerate(features, start=1):
        pooled = layers.GlobalAveragePooling2D(name=f"level{index}_pool")(feature)
        projected = layers.Dense(projection_units, activation="relu", name=f"level{index}_proj")(
            pooled
        )
        steps.append(layers.Reshape((1, projection_units), name=f"level{index}_step")(projected))
    sequence = layers.Concatenate(axis=1, name="levels")(steps)
    x = layers.Bidirectional(layers.GRU(rnn_units, unroll=True, name="gru"), name="bigru")(sequence)
    x = layers.Dropout(dropout_rate, name="head_dropout")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="cnn_gru")


@register("vgg_teacher")
def vgg_teacher(width: int = 48, dropout_rate: float = 0.4):
    """Teacher for distillation: VGG-style, four stages of two 3x3 convolutions (BatchNorm,
    ReLU) and a max-pool, widths w, 2w, 4w, 8w, then global pooling and a dense head. About
    2.6M parameters at width 48: several times the student, too slow for live video on a
    laptop CPU, minutes to train on a GPU."""
    import keras
    from keras import layers

    inputs, x = _input_and_normalise()
    for stage, filters in enumerate((width, 2 * width, 4 * width, 8 * width), start=1):
        x = _conv_bn_relu(x, filters, f"stage{stage}a", padding="same")
        x = _conv_bn_relu(x, filters, f"stage{stage}b", padding="same")
        x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = layers.Dropout(dropout_rate, name="head_dropout1")(x)
    x = layers.Dense(4 * width, activation="relu", name="head_dense")(x)
    x = layers.Dropout(dropout_rate, name="head_dropout2")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="vgg_teacher")


def check_model_signature(model, source: str = "model") -> None:
    """Raise ModelError unless the model maps (N, 48, 48, 1) to (N, 7)."""
    try:
        in_shape = tuple(model.input_shape)
        out_shape = tuple(model.output_shape)
    except (AttributeError, ValueError) as exc:
        raise ModelError(f"{source} is not a single-input, single-output model: {exc}") from exc
    if in_shape[1:] != (INPUT_SIZE, INPUT_SIZE, 1):
        raise ModelError(
            f"{source} expects input {in_shape[1:]}, but FER models take 48x48x1 grey images. "
            "Train one with `python -m fer_core train`."
        )
    if out_shape[1:] != (NUM_CLASSES,):
        raise ModelError(
            f"{source} outputs {out_shape[1:]}, but an emotion model must output 7 probabilities."
        )


def load_keras_model(path: str | Path):
    """Load a .keras file safely (no code from the file runs) and check its shape."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"Model file {path} does not exist. Give the path of a .keras file.")
    if path.suffix != ".keras":
        raise ModelError(f"{path.name} is not a .keras model file (Keras 3 format).")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for corrupt/foreign files.
        raise ModelError(
            f"Could not load model {path.name}: {type(exc).__name__}: {exc}. "
            "The file is corrupt, truncated or not a Keras 3 model."
        ) from exc
    check_model_signature(model, path.name)
    return model


def save_keras_model(model, path: str | Path) -> Path:
    """Save atomically: a temporary file beside the target, then renamed into place."""

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A compiled model carries its optimizer state (the resume point needs it); the bare
    # inner model saved as best.keras has none.
    with atomic_path(path) as tmp:
        model.save(tmp)
    return path
