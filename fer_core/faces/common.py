"""What every detector returns, and the grey conversion every path shares."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_core.errors import ImageError


@dataclass(frozen=True)
class Detection:
    """One face: ``box`` (x, y, w, h) in image pixels, clipped to the image; ``score`` in
    [0, 1] where the detector has one (None for Haar); ``eyes`` ((x, y) of the eye on the
    image's left, (x, y) of the eye on the image's right) where the detector gives them."""

    box: tuple[int, int, int, int]
    score: float | None = None
    eyes: tuple[tuple[float, float], tuple[float, float]] | None = None


def iou(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def clip_box(x0: float, y0: float, x1: float, y1: float, width: int, height: int):
    """(x, y, w, h) ints inside the image, or None when less than 2 px remain."""
    x0, y0 = max(0, int(round(x0))), max(0, int(round(y0)))
    x1, y1 = min(width, int(round(x1))), min(height, int(round(y1)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


def to_grey(image: np.ndarray) -> np.ndarray:
    import cv2

    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ImageError(f"Expected a uint8 image, got {image.dtype}. Use fer_core.read_image.")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2GRAY)
    raise ImageError(f"Expected an (H, W, 3) RGB image, got shape {image.shape}.")


def to_rgb(image: np.ndarray) -> np.ndarray:
    import cv2

    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ImageError(f"Expected a uint8 image, got {image.dtype}. Use fer_core.read_image.")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
    raise ImageError(f"Expected an (H, W, 3) RGB image, got shape {image.shape}.")
