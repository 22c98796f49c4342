import zipfile

import numpy as np
import pytest

from fer_core import ModelError, available_architectures, build_model
from fer_core.models.architectures import load_keras_model, save_keras_model
from fer_core.models.inference import EmotionModel, export_litert


def test_registry_names():
    assert {"mini_xception", "cnn_gru", "cnn_wide"} <= set(available_architectures())
    with pytest.raises(ModelError, match="Unknown architecture"):
        build_model("resnet9000")


def test_mini_xception_is_the_seed_size():
    model = build_model("mini_xception")
    assert 50_000 < model.count_params() < 65_000


@pytest.mark.parametrize("name", ["mini_xception", "cnn_gru", "cnn_wide"])
def test_models_take_raw_pixels_and_output_probabilities(name):
    model = build_model(name)
    assert tuple(model.input_shape[1:]) == (48, 48, 1)
    x = np.random.default_rng(0).integers(0, 256, (3, 48, 48, 1)).astype(np.float32)
    probs = np.asarray(model(x, training=False))
    assert probs.shape == (3, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # Normalisation lives inside: the first layer rescales 0..255.
    assert model.layers[1].name == "normalise"


def test_cnn_gru_reads_every_level_with_an_unrolled_gru():
    model = build_model("cnn_gru")
    levels = model.get_layer("levels")
    assert tuple(levels.output.shape[1:]) == (4, 128)
    assert model.get_layer("bigru").forward_layer.unroll


@pytest.mark.slow
def test_save_load_and_litert_agree(tmp_path):
    model = build_model("cnn_gru")
    path = save_keras_model(model, tmp_path / "m.keras")
    result = export_litert(path)
    assert result["max_abs_difference"] < 1e-4
    crops = np.random.default_rng(1).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    fast = EmotionModel(path).predict_faces(crops)
    slow = EmotionModel(path, fast=False).predict_faces(crops)
    assert EmotionModel(path).backend == "litert"
    np.testing.assert_allclose(fast, slow, atol=1e-4)


def test_bad_model_files(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_keras_model(tmp_path / "missing.keras")
    truncated = tmp_path / "t.keras"
    good = save_keras_model(build_model("mini_xception"), tmp_path / "g.keras")
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(ModelError, match="corrupt|truncated"):
        load_keras_model(truncated)
    foreign = tmp_path / "f.keras"
    with zipfile.ZipFile(foreign, "w") as archive:
        archive.writestr("hello.txt", "not a model")
    with pytest.raises(ModelError):
        load_keras_model(foreign)
    pickled = tmp_path / "p.pkl"
    pickled.write_bytes(b"\x80\x04N.")
    with pytest.raises(ModelError, match=".keras"):
        load_keras_model(pickled)


def test_wrong_shapes_are_refused(tmp_path):
    import keras

    inputs = keras.Input((64, 64, 3))
    outputs = keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(inputs))
    path = save_keras_model(keras.Model(inputs, outputs), tmp_path / "rgb.keras")
    with pytest.raises(ModelError, match="48x48x1"):
        load_keras_model(path)
    inputs = keras.Input((48, 48, 1))
    outputs = keras.layers.Dense(5, activation="softmax")(keras.layers.Flatten()(inputs))
    path = save_keras_model(keras.Model(inputs, outputs), tmp_path / "five.keras")
    with pytest.raises(ModelError, match="7 probabilities"):
        load_keras_model(path)
