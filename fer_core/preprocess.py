"""The one function that turns a face region into model input (training uses the same)."""

from __future__ import annotations

import numpy as np

from .labels import INPUT_SIZE


def crop_faces(grey: np.ndarray, boxes, margin: float = 0.0) -> np.ndarray:
    """Crop each (x, y, w, h) box from a grey image and resize to 48x48 uint8.

    ``margin`` widens each box by that fraction per side (clipped to the image). Returns an
    array (N, 48, 48) uint8, ready for ``EmotionModel.predict_faces``.
    """
    import cv2

    height, width = grey.shape[:2]
    crops = np.empty((len(boxes), INPUT_SIZE, INPUT_SIZE), dtype=np.uint8)
    for index, (x, y, w, h) in enumerate(boxes):
        dx, dy = int(round(w * margin)), int(round(h * margin))
        x0, y0 = max(0, x - dx), max(0, y - dy)
        x1, y1 = min(width, x + w + dx), min(height, y + h + dy)
        face = grey[y0:y1, x0:x1]
        interpolation = cv2.INTER_AREA if face.shape[0] > INPUT_SIZE else cv2.INTER_LINEAR
        crops[index] = cv2.resize(face, (INPUT_SIZE, INPUT_SIZE), interpolation=interpolation)
    return crops
