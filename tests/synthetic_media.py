"""Test photos made from skimage's astronaut and LFW faces (no files from outside the
repository)."""

import cv2
import numpy as np
import skimage.data

ASTRONAUT_FACE = (177, 66, 95, 95)  # the Haar box of her face (x, y, w, h)


def unsure_face() -> np.ndarray:
    """A real face the shipped model is unsure of: face 47 of skimage's LFW subset (25x25
    grey), enlarged to 160 px on a grey 320 px canvas. Model v4 through the default photo
    path: top probability 0.27 (happy, then neutral 0.25); its card's threshold is 0.40.
    (v4 is sure of the astronaut even with her mouth hidden: 0.46 at the least.)"""
    face = (skimage.data.lfw_subset()[47] * 255).astype(np.uint8)
    canvas = np.full((320, 320), 128, np.uint8)
    canvas[80:240, 80:240] = cv2.resize(face, (160, 160), interpolation=cv2.INTER_CUBIC)
    return np.dstack([canvas] * 3)


def crowd(rows: int = 5, columns: int = 6, size: int = 200) -> np.ndarray:
    """A photo of rows x columns faces (the astronaut's, tiled): 30 by default."""
    face = cv2.resize(skimage.data.astronaut()[0:260, 90:350], (size, size))
    return np.vstack([np.hstack([face] * columns)] * rows)
