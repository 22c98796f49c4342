"""Weight averaging and BatchNorm recalibration, and nothing else: no files, no scoring.

``WeightAverage.update(model)`` folds a model's weights into a running mean (stochastic weight
averaging, Izmailov et al., 2018), as timm's ``ModelEmaV3.update`` does for an EMA; the
caller decides what to do with the averaged model (recalibrate it, score it, save it).
"""

from __future__ import annotations

import numpy as np


def recompute_batch_norm(model, images: np.ndarray, batch_size: int = 256) -> int:
    """Set every BatchNormalization layer's moving statistics to the exact mean over
    ``images`` (float32, N x 48 x 48 x 1) of its per-batch statistics; return how many layers.

    The statistics a model keeps from training were gathered on augmented images (rotated,
    shifted, zoomed with reflected borders) under changing weights; recomputing them on the
    plain images with the final weights matches what the model sees at test time.
    """
    from keras import layers

    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    if not norms:
        return 0
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.moving_mean.assign(np.zeros(layer.moving_mean.shape, np.float32))
        layer.moving_variance.assign(np.ones(layer.moving_variance.shape, np.float32))
    try:
        for number, start in enumerate(range(0, len(images), batch_size), 1):
            for layer in norms:
                layer.momentum = 1.0 - 1.0 / number  # a cumulative mean over the batches
            model(images[start : start + batch_size], training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
    return len(norms)


class WeightAverage:
    """A running mean of a model's trainable weights, held in a twin model.

    ``WeightAverage(template)`` starts empty; ``WeightAverage(template, resume_from=model,
    count=n)`` continues an average of ``n`` snapshots whose mean is ``model``'s weights.
    """

    def __init__(self, template, resume_from=None, count: int = 0):
        import keras

        if resume_from is not None and count:
            self.model, self.count = resume_from, int(count)
        else:
            self.model = keras.models.clone_model(template)
            self.model.set_weights(template.get_weights())
            self.count = 0
        self.mean = [np.array(v) for v in self.model.trainable_variables]

    def update(self, model):
        """Add ``model``'s current trainable weights to the mean; return the averaged model."""
        current = [np.array(v) for v in model.trainable_variables]
        self.count += 1
        if self.count == 1:
            self.mean = current
        else:
            self.mean = [m + (c - m) / self.count for m, c in zip(self.mean, current)]
        for variable, value in zip(self.model.trainable_variables, self.mean):
            variable.assign(value)
        return self.model


__all__ = ["recompute_batch_norm", "WeightAverage"]
