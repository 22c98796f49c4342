"""The training model: augmentation and mixing inside the compiled step, the distillation
loss, and training with a teacher."""

import argparse
import json

import numpy as np
import pytest

from fer_core import ConfigError, load_fer2013
from fer_core.labels import NUM_CLASSES
from fer_core.models.architectures import build_model, save_keras_model
from fer_core.training.config import TrainConfig, add_config_arguments, given_settings
from fer_core.training.loop import train
from fer_core.training.trainer import FaceAugment, TrainingLoss, build_trainer, trainer_inputs
from tests.conftest import synthetic_rows, write_csv


def _images(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (n, 48, 48, 1)).astype("float32")


def _run(layer, images, targets, training=True):
    out_images, out_targets = layer([images, targets], training=training)
    return np.asarray(out_images), np.asarray(out_targets)


def test_every_layer_of_the_training_model_can_be_compiled():
    # Keras's RandomRotation/Translation/Zoom say supports_jit = False: one of them made Keras
    # run the whole step op by op under JAX (846 small compilations in 100 s on the GPU).
    from keras.src.trainers.trainer import model_supports_jit

    trainer = build_trainer(build_model("cnn_gru"), TrainConfig(), NUM_CLASSES)
    assert all(layer.supports_jit for layer in trainer._flatten_layers())
    assert model_supports_jit(trainer)


def test_augmentation_is_off_at_inference_and_an_identity_when_its_ranges_are_zero():
    images, targets = _images(), np.eye(NUM_CLASSES, dtype="float32")[np.arange(8) % 7]
    layer = FaceAugment(rotation_degrees=10, shift_fraction=0.1, zoom_fraction=0.1, seed=1)
    out, out_targets = _run(layer, images, targets, training=False)
    np.testing.assert_array_equal(out, images)
    np.testing.assert_array_equal(out_targets, targets)
    still = FaceAugment(0, 0, 0, horizontal_flip=False, seed=1)
    out, _ = _run(still, images, targets)
    np.testing.assert_allclose(out, images, atol=1e-3)


def test_flip_mirrors_some_images_and_leaves_the_others():
    images, targets = _images(64), np.zeros((64, NUM_CLASSES), "float32")
    out, _ = _run(FaceAugment(0, 0, 0, horizontal_flip=True, seed=3), images, targets)
    same = [np.allclose(o, i, atol=1e-3) for o, i in zip(out, images)]
    mirrored = [np.allclose(o, i[:, ::-1], atol=1e-3) for o, i in zip(out, images)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert 10 < sum(mirrored) < 54


def test_rotation_moves_pixels_but_keeps_the_brightness_range():
    images, targets = _images(16), np.zeros((16, NUM_CLASSES), "float32")
    out, _ = _run(FaceAugment(20, 0.1, 0.1, horizontal_flip=False, seed=5), images, targets)
    assert out.shape == images.shape
    assert not np.allclose(out, images, atol=1.0)
    assert out.min() >= -1e-3 and out.max() <= 255 + 1e-3  # reflected borders, no black fill


@pytest.mark.parametrize("mix", ["mixup", "cutmix"])
def test_mixing_mixes_images_and_targets_by_the_same_share(mix):
    # Image i is the constant 10 * i: a mixed image's mean tells the share it kept.
    n = 8
    values = 10.0 * np.arange(1, n + 1, dtype="float32")
    images = np.ones((n, 48, 48, 1), "float32") * values[:, None, None, None]
    targets = np.eye(NUM_CLASSES, dtype="float32")[np.arange(n) % 7]
    layer = FaceAugment(0, 0, 0, horizontal_flip=False, mix=mix, mix_alpha=1.0, seed=7)
    out, mixed = _run(layer, images, targets)
    partner = values[::-1]
    kept = (out.mean(axis=(1, 2, 3)) - partner) / (values - partner)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, atol=1e-5)
    for i in range(n):
        expected = kept[i] * targets[i] + (1 - kept[i]) * targets[n - 1 - i]
        np.testing.assert_allclose(mixed[i], expected, atol=1e-4)
    assert np.all((kept >= -1e-4) & (kept <= 1 + 1e-4))


def test_loss_without_a_teacher_is_the_smoothed_cross_entropy():
    import keras

    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(NUM_CLASSES), 5).astype("float32")
    labels = np.eye(NUM_CLASSES, dtype="float32")[[0, 1, 2, 3, 4]]
    ours = float(TrainingLoss(label_smoothing=0.1)(labels, np.concatenate([probs, labels], 1)))
    reference = float(keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(labels, probs))
    assert ours == pytest.approx(reference, rel=1e-4)


def test_distillation_loss_follows_hinton():
    rng = np.random.default_rng(1)
    student = rng.dirichlet(np.ones(NUM_CLASSES), 4)
    teacher = rng.dirichlet(np.ones(NUM_CLASSES), 4)
    labels = np.eye(NUM_CLASSES)[[6, 5, 4, 3]]
    t, w = 3.0, 0.6
    y_pred = np.concatenate([student, labels, teacher], 1).astype("float32")
    ours = float(TrainingLoss(0.0, t, w)(labels, y_pred))

    def soften(p):
        z = np.log(p) / t
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    ce = -np.sum(labels * np.log(student), 1)
    kl = np.sum(soften(teacher) * (np.log(soften(teacher)) - np.log(soften(student))), 1)
    assert ours == pytest.approx(np.mean((1 - w) * ce + w * t * t * kl), rel=1e-4)


def test_teacher_and_mix_flags_reach_the_config(tmp_path):
    teacher = save_keras_model(build_model("mini_xception", width=4), tmp_path / "t.keras")
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(
        ["--teacher", str(teacher), str(teacher), "--mix", "cutmix", "--distill-temperature", "2"]
    )
    config = TrainConfig(**given_settings(args))
    config.validate()
    assert config.teacher == [str(teacher)] * 2 and config.mix == "cutmix"
    with pytest.raises(ConfigError, match="teacher"):
        TrainConfig(teacher=[str(tmp_path / "missing.keras")]).validate()
    with pytest.raises(ConfigError, match="distill_weight"):
        TrainConfig(distill_weight=1.5).validate()
    with pytest.raises(SystemExit):
        parser.parse_args(["--mix", "blend"])


@pytest.mark.slow
def test_training_with_a_teacher_caches_its_probabilities(tmp_path, monkeypatch):
    import fer_core.training.teachers as teacher_module

    data = load_fer2013(write_csv(tmp_path / "d.csv", synthetic_rows(8)))
    teacher = save_keras_model(build_model("mini_xception", width=4), tmp_path / "t.keras")
    config = TrainConfig(
        architecture="mini_xception",
        epochs=1,
        batch_size=32,
        runs_dir=str(tmp_path / "runs"),
        run_name="kd",
        teacher=[str(teacher)],
        mix="mixup",
        recalibrate_batch_norm=False,
    )
    loads = []
    real_load = teacher_module.load_keras_model
    monkeypatch.setattr(
        teacher_module, "load_keras_model", lambda path: loads.append(str(path)) or real_load(path)
    )
    run = train(config, data)
    assert loads.count(str(teacher)) == 1
    cache = np.load(run / "teacher.npz")
    assert cache["train"].shape[1] == NUM_CLASSES
    np.testing.assert_allclose(cache["val"].sum(axis=1), 1.0, atol=1e-4)
    # A resumed run reads the cached probabilities instead of running the teacher again.
    config.epochs = 2
    train(config, data, run_dir=run)
    assert loads.count(str(teacher)) == 1
    assert json.loads((run / "state.json").read_text())["epochs_done"] == 2
    # Without the teacher the checkpoint (trained on label + teacher targets) cannot resume.
    with pytest.raises(ConfigError, match="cannot be resumed"):
        train(TrainConfig(**{**config.to_dict(), "teacher": None, "epochs": 3}), data, run_dir=run)
    # Another run with the same teacher and data, but another seed and batch size (so other
    # padding rows), finds the probabilities in the runs folder's shared cache.
    other = train(config.replace(run_name="kd2", seed=7, batch_size=16, epochs=1), data)
    assert loads.count(str(teacher)) == 1
    with np.load(other / "teacher.npz") as copied:
        np.testing.assert_array_equal(copied["train"], cache["train"])
    assert cache["train"].shape[0] == len(data.split("Training")[1])  # before padding


def test_trainer_inputs_pack_label_and_teacher():
    images = np.zeros((3, 48, 48), np.uint8)
    x, y = trainer_inputs(images, np.array([0, 3, 6]))
    assert x["pixels"].shape == (3, 48, 48, 1) and x["targets"].shape == (3, NUM_CLASSES)
    teacher = np.full((3, NUM_CLASSES), 1 / NUM_CLASSES, np.float32)
    x, y = trainer_inputs(images, np.array([0, 3, 6]), teacher)
    assert x["targets"].shape == (3, 2 * NUM_CLASSES)
    np.testing.assert_array_equal(y.argmax(1), [0, 3, 6])


def test_logit_adjusted_loss_is_the_cross_entropy_of_the_shifted_softmax():
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(NUM_CLASSES), 6).astype("float32")
    labels = rng.dirichlet(np.ones(NUM_CLASSES), 6).astype("float32")  # soft targets too
    prior = rng.dirichlet(np.ones(NUM_CLASSES) * 3)
    tau = 0.7
    y_pred = np.concatenate([probs, labels], 1)
    ours = float(TrainingLoss(logit_adjustment=tau, prior=prior.tolist())(labels, y_pred))
    shifted = np.log(probs) + tau * np.log(prior)
    shifted -= np.log(np.exp(shifted).sum(1, keepdims=True))
    assert ours == pytest.approx(np.mean(-np.sum(labels * shifted, 1)), rel=1e-4)
    # The same outputs lose less on the commonest class and more on the rarest: the net must
    # give a rare class a larger margin, so without the shift it stops favouring common ones.
    plain = float(TrainingLoss()(labels, y_pred))
    adjusted = TrainingLoss(logit_adjustment=tau, prior=prior.tolist())
    for cls, sign in ((int(np.argmax(prior)), -1), (int(np.argmin(prior)), 1)):
        hot = np.eye(NUM_CLASSES, dtype="float32")[[cls] * 6]
        y = np.concatenate([probs, hot], 1)
        assert sign * (float(adjusted(hot, y)) - float(TrainingLoss()(hot, y))) > 0
    # A uniform prior changes nothing; a missing prior is refused.
    uniform = [1 / NUM_CLASSES] * NUM_CLASSES
    assert float(TrainingLoss(logit_adjustment=1.0, prior=uniform)(labels, y_pred)) == (
        pytest.approx(plain, rel=1e-5)
    )
    with pytest.raises(ValueError, match="prior"):
        TrainingLoss(logit_adjustment=1.0)


def test_target_flags_reach_the_config_and_are_checked():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(
        [
            "--labels",
            "ferplus-votes",
            "--neutral-vote-weight",
            "0.5",
            "--own-label-weight",
            "0.3",
            "--logit-adjustment",
            "1",
        ]
    )
    config = TrainConfig(**given_settings(args))
    assert (config.neutral_vote_weight, config.own_label_weight, config.logit_adjustment) == (
        0.5,
        0.3,
        1.0,
    )
    with pytest.raises(ConfigError, match="FER\\+ labels"):
        TrainConfig(own_label_weight=0.5).validate()  # FER2013's labels: nothing to mix
    with pytest.raises(ConfigError, match="neutral_vote_weight"):
        TrainConfig(labels="ferplus-votes", neutral_vote_weight=1.5).validate()
    with pytest.raises(ConfigError, match="logit_adjustment"):
        TrainConfig(logit_adjustment=-1).validate()
