"""The training model: augmentation, image mixing and the loss, all inside the compiled step.

Keras's own ``RandomRotation``, ``RandomTranslation`` and ``RandomZoom`` layers declare that
they cannot be compiled (``supports_jit = False``). One of them in front of the model made
Keras run the whole training step op by op under JAX: on the lent GPU, 846 separate small
compilations in 100 s and slower than this laptop CPU. ``FaceAugment`` draws a flip, a
rotation, a shift and a zoom for every image and applies them as one affine transform with
``keras.ops`` alone, so the step compiles once on any backend.

The trainer takes the images and their *targets* (the one-hot label, then, when distilling,
the teacher's probabilities) and returns the student's probabilities followed by the targets
as mixed (mixup or CutMix mixes images and targets together, so both travel through the
model). ``TrainingLoss`` reads both halves from the prediction; ``label_accuracy`` scores the
student against the plain label.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from fer_core.labels import INPUT_SIZE, NUM_CLASSES
from fer_core.training.config import MIXES

_PACKAGE = "fer_core"


ops = keras.ops


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FaceAugment(keras.layers.Layer):
    """Random flip, rotation, shift and zoom (one bilinear affine warp, reflected borders),
    then optionally mixup or CutMix between each image and its mirror in the batch.

    Called on ``[images, targets]`` (N x 48 x 48 x 1, N x K); returns both, changed only when
    ``training``.
    """

    def __init__(
        self,
        rotation_degrees=10.0,
        shift_fraction=0.1,
        zoom_fraction=0.1,
        horizontal_flip=True,
        mix="none",
        mix_alpha=0.4,
        seed=None,
        path_augment=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if mix not in MIXES:
            raise ValueError(f"mix must be one of {', '.join(MIXES)}")
        self.rotation_degrees = float(rotation_degrees)
        self.shift_fraction = float(shift_fraction)
        self.zoom_fraction = float(zoom_fraction)
        self.horizontal_flip = bool(horizontal_flip)
        self.mix = mix
        self.mix_alpha = float(mix_alpha)
        self.seed = seed
        self.path_augment = bool(path_augment)
        self.generator = keras.random.SeedGenerator(seed)

    def get_config(self):
        return {
            **super().get_config(),
            "rotation_degrees": self.rotation_degrees,
            "shift_fraction": self.shift_fraction,
            "zoom_fraction": self.zoom_fraction,
            "horizontal_flip": self.horizontal_flip,
            "mix": self.mix,
            "mix_alpha": self.mix_alpha,
            "seed": self.seed,
            "path_augment": self.path_augment,
        }

    def compute_output_shape(self, input_shape):
        return input_shape

    def call(self, inputs, training=None):
        images, targets = inputs
        if not training:
            return images, targets
        images = self._warp(images)
        if self.path_augment:
            images = self._degrade(images)
        if self.mix != "none":
            images, targets = self._mix(images, targets)
        return images, targets

    def _uniform(self, n, limit):
        return keras.random.uniform((n,), -limit, limit, seed=self.generator)

    def _warp(self, images):
        n = ops.shape(images)[0]
        angle = self._uniform(n, self.rotation_degrees * math.pi / 180.0)
        zoom = 1.0 + self._uniform(n, self.zoom_fraction)
        shift_x = self._uniform(n, self.shift_fraction * INPUT_SIZE)
        shift_y = self._uniform(n, self.shift_fraction * INPUT_SIZE)
        if self.horizontal_flip:
            coin = keras.random.uniform((n,), 0.0, 1.0, seed=self.generator)
            flip = ops.where(coin < 0.5, -1.0, 1.0)
        else:
            flip = ops.ones((n,))
        # The transform maps each output pixel p to the input point c + A (p - c) + t, with
        # A = zoom * R(angle) * diag(flip, 1) and c the image centre.
        cos, sin = ops.cos(angle) * zoom, ops.sin(angle) * zoom
        a0, a1 = cos * flip, -sin
        b0, b1 = sin * flip, cos
        centre = (INPUT_SIZE - 1) / 2.0
        a2 = centre + shift_x - (a0 + a1) * centre
        b2 = centre + shift_y - (b0 + b1) * centre
        zeros = ops.zeros_like(a0)
        transform = ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
        return ops.image.affine_transform(
            images,
            transform,
            interpolation="bilinear",
            fill_mode="reflect",
            data_format="channels_last",
        )

    def _chance(self, n, p):
        coin = keras.random.uniform((n,), 0.0, 1.0, seed=self.generator)
        return ops.reshape(ops.cast(coin < p, "float32"), (-1, 1, 1, 1))

    def _degrade(self, images):
        """What the whole path does to a face, each with its own chance per image: a small
        face upscaled (the crop held 24, 30 or 36 px before the resize to 48), light
        (contrast, brightness, gamma), sensor and compression noise, and a part hidden
        (a hand, glasses, a box edge)."""
        n = ops.shape(images)[0]
        size = INPUT_SIZE
        # Small faces: down to a side of 24/30/36 px and back up; one side per image.
        pick = keras.random.uniform((n,), 0.0, 1.0, seed=self.generator)
        degraded = images
        for low, high, side in ((0.0, 0.15, 24), (0.15, 0.3, 30), (0.3, 0.45, 36)):
            small = ops.image.resize(
                images,
                (side, side),
                interpolation="bilinear",
                antialias=True,
                data_format="channels_last",
            )
            back = ops.image.resize(
                small, (size, size), interpolation="bilinear", data_format="channels_last"
            )
            chosen = ops.reshape(
                ops.cast(ops.logical_and(pick >= low, pick < high), "float32"), (-1, 1, 1, 1)
            )
            degraded = chosen * back + (1.0 - chosen) * degraded
        images = degraded
        # Light: contrast about the image mean, brightness, gamma.
        lit = self._chance(n, 0.6)
        contrast = ops.reshape(1.0 + self._uniform(n, 0.35), (-1, 1, 1, 1))
        brightness = ops.reshape(self._uniform(n, 35.0), (-1, 1, 1, 1))
        gamma = ops.reshape(ops.exp(self._uniform(n, 0.35)), (-1, 1, 1, 1))
        mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
        changed = (images - mean) * contrast + mean + brightness
        changed = 255.0 * ops.power(ops.clip(changed, 0.0, 255.0) / 255.0, gamma)
        images = lit * changed + (1.0 - lit) * images
        # Noise (sensor, JPEG blocks' ringing at this size): Gaussian, up to sigma 8.
        sigma = ops.reshape(
            keras.random.uniform((n,), 0.0, 8.0, seed=self.generator), (-1, 1, 1, 1)
        ) * self._chance(n, 0.5)
        noise = keras.random.normal(ops.shape(images), seed=self.generator)
        images = ops.clip(images + sigma * noise, 0.0, 255.0)
        # A part hidden: a box of 12-22 px of one random grey, on a quarter of the faces.
        side = keras.random.uniform((n,), 12.0, 22.0, seed=self.generator)
        cx = keras.random.uniform((n,), 0.0, float(size), seed=self.generator)
        cy = keras.random.uniform((n,), 0.0, float(size), seed=self.generator)
        grid = ops.arange(size, dtype="float32") + 0.5
        inside_x = ops.logical_and(
            grid[None, :] >= (cx - side / 2)[:, None], grid[None, :] < (cx + side / 2)[:, None]
        )
        inside_y = ops.logical_and(
            grid[None, :] >= (cy - side / 2)[:, None], grid[None, :] < (cy + side / 2)[:, None]
        )
        box = ops.cast(ops.logical_and(inside_y[:, :, None], inside_x[:, None, :]), "float32")[
            ..., None
        ] * self._chance(n, 0.25)
        fill = ops.reshape(
            keras.random.uniform((n,), 0.0, 255.0, seed=self.generator), (-1, 1, 1, 1)
        )
        return box * fill + (1.0 - box) * images

    def _mix(self, images, targets):
        n = ops.shape(images)[0]
        # Beta(a, a) from two gammas (keras.random.beta is not on every backend version).
        g1 = keras.random.gamma((n,), self.mix_alpha, seed=self.generator)
        g2 = keras.random.gamma((n,), self.mix_alpha, seed=self.generator)
        lam = g1 / ops.maximum(g1 + g2, 1e-12)
        partner_images = ops.flip(images, axis=0)  # batches are shuffled every epoch
        partner_targets = ops.flip(targets, axis=0)
        if self.mix == "mixup":
            keep = ops.reshape(lam, (-1, 1, 1, 1))
            images = keep * images + (1.0 - keep) * partner_images
        else:
            # CutMix: a box of area (1 - lam) of the side^2, centred anywhere, comes from
            # the partner; lam becomes the share of the image that is really kept.
            side = INPUT_SIZE * ops.sqrt(1.0 - lam)
            cx = keras.random.uniform((n,), 0.0, INPUT_SIZE, seed=self.generator)
            cy = keras.random.uniform((n,), 0.0, INPUT_SIZE, seed=self.generator)
            grid = ops.arange(INPUT_SIZE, dtype="float32") + 0.5
            inside_x = ops.logical_and(
                grid[None, :] >= (cx - side / 2)[:, None], grid[None, :] < (cx + side / 2)[:, None]
            )
            inside_y = ops.logical_and(
                grid[None, :] >= (cy - side / 2)[:, None], grid[None, :] < (cy + side / 2)[:, None]
            )
            box = ops.cast(ops.logical_and(inside_y[:, :, None], inside_x[:, None, :]), "float32")[
                ..., None
            ]
            images = box * partner_images + (1.0 - box) * images
            lam = 1.0 - ops.mean(box, axis=(1, 2, 3))
        keep = ops.reshape(lam, (-1, 1))
        return images, keep * targets + (1.0 - keep) * partner_targets


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TrainingLoss(keras.losses.Loss):
    """Cross-entropy on the (smoothed) label, plus, when the targets carry a teacher's
    probabilities, the distillation term of Hinton et al. (2015): T^2 KL(teacher_T || student_T),
    mixed as (1 - weight) * label + weight * teacher.

    ``y_pred`` is the trainer's output: 7 student probabilities, then the 7 label targets,
    then (distilling) 7 teacher probabilities. ``y_true`` is not read.
    """

    def __init__(
        self,
        label_smoothing=0.0,
        temperature=4.0,
        distill_weight=0.0,
        logit_adjustment=0.0,
        prior=None,
        name="training_loss",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.label_smoothing = float(label_smoothing)
        self.temperature = float(temperature)
        self.distill_weight = float(distill_weight)
        self.logit_adjustment = float(logit_adjustment)
        self.prior = None if prior is None else [float(p) for p in prior]
        if self.logit_adjustment and (self.prior is None or len(self.prior) != NUM_CLASSES):
            raise ValueError("logit adjustment needs the class prior of the targets")

    def call(self, y_true, y_pred):
        probs = ops.clip(y_pred[:, :NUM_CLASSES], 1e-7, 1.0)
        labels = y_pred[:, NUM_CLASSES : 2 * NUM_CLASSES]
        labels = labels * (1.0 - self.label_smoothing) + self.label_smoothing / NUM_CLASSES
        log_probs = ops.log(probs)
        fitted = log_probs
        if self.logit_adjustment:
            # log p is the logits less a per-face constant, which the softmax ignores.
            shift = self.logit_adjustment * ops.log(ops.convert_to_tensor(self.prior))
            fitted = ops.log_softmax(log_probs + shift[None, :], axis=-1)
        loss = -ops.sum(labels * fitted, axis=-1)
        if self.distill_weight and y_pred.shape[-1] == 3 * NUM_CLASSES:
            t = self.temperature
            teacher = ops.clip(y_pred[:, 2 * NUM_CLASSES :], 1e-7, 1.0)
            teacher_t = ops.softmax(ops.log(teacher) / t, axis=-1)
            student_t = ops.log_softmax(log_probs / t, axis=-1)
            kl = ops.sum(teacher_t * (ops.log(ops.clip(teacher_t, 1e-7, 1.0)) - student_t), axis=-1)
            loss = (1.0 - self.distill_weight) * loss + self.distill_weight * t * t * kl
        return loss

    def get_config(self):
        return {
            **super().get_config(),
            "label_smoothing": self.label_smoothing,
            "temperature": self.temperature,
            "distill_weight": self.distill_weight,
            "logit_adjustment": self.logit_adjustment,
            "prior": self.prior,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
def label_accuracy(y_true, y_pred):
    """The student's top class against the plain label (``y_true``, one-hot)."""
    guess = ops.argmax(y_pred[:, :NUM_CLASSES], axis=-1)
    truth = ops.argmax(y_true[:, :NUM_CLASSES], axis=-1)
    return ops.cast(ops.equal(guess, truth), "float32")


def class_prior(targets: np.ndarray) -> list[float]:
    """Each class's share of the training targets (what logit adjustment subtracts)."""
    totals = np.asarray(targets, dtype=np.float64).sum(axis=0)
    totals = np.maximum(totals, 1e-3 * max(totals.sum(), 1.0) / NUM_CLASSES)
    return (totals / totals.sum()).tolist()


def build_trainer(inner, config, target_width: int, prior=None):
    """The compiled training model around ``inner``: augmentation and mixing, the student,
    then its probabilities and the (mixed) targets side by side."""
    layers = keras.layers
    pixels = keras.Input(shape=(INPUT_SIZE, INPUT_SIZE, 1), name="pixels")
    targets = keras.Input(shape=(target_width,), name="targets")
    augment = FaceAugment(
        config.rotation_degrees,
        config.shift_fraction,
        config.zoom_fraction,
        config.horizontal_flip,
        config.mix,
        config.mix_alpha,
        seed=config.seed,
        path_augment=config.path_augment,
        name="augment",
    )
    images, mixed = augment([pixels, targets])
    probs = inner(images)
    outputs = layers.Concatenate(name="probs_and_targets")([probs, mixed])
    trainer = keras.Model({"pixels": pixels, "targets": targets}, outputs, name="trainer")
    trainer.compile(
        optimizer=keras.optimizers.AdamW(
            learning_rate=config.learning_rate, weight_decay=config.weight_decay
        ),
        loss=TrainingLoss(
            config.label_smoothing,
            config.distill_temperature,
            config.distill_weight if config.teacher else 0.0,
            config.logit_adjustment,
            prior if config.logit_adjustment else None,
        ),
        metrics=[keras.metrics.MeanMetricWrapper(label_accuracy, name="accuracy")],
        steps_per_execution=config.steps_per_execution,
    )
    return trainer


def trainer_inputs(
    images: np.ndarray,
    labels: np.ndarray,
    teacher: np.ndarray | None = None,
    label_targets: np.ndarray | None = None,
) -> tuple[dict, np.ndarray]:
    """(x, y) for the trainer: images (N, 48, 48) uint8 and labels (N,) -> the input dict
    and the one-hot labels the accuracy is scored against. ``label_targets`` (N, 7): what the
    cross-entropy learns instead of the one-hot label (FER+'s vote shares)."""
    hot = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
    learn = hot if label_targets is None else np.asarray(label_targets, np.float32)
    targets = learn if teacher is None else np.concatenate([learn, teacher.astype(np.float32)], 1)
    return ({"pixels": np.asarray(images, dtype=np.float32)[..., None], "targets": targets}, hot)


__all__ = [
    "FaceAugment",
    "TrainingLoss",
    "label_accuracy",
    "build_trainer",
    "class_prior",
    "trainer_inputs",
    "MIXES",
]
