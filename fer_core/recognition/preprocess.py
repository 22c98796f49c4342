"""The one function that turns a face region into model input (training uses the same).

FER2013's 48x48 images are framed looser than a face detector's box: a Haar box covers about
84% of a FER2013 frame's width. A ``Framing`` maps a detector's box to the square region that
FER2013 would have framed (its side and centre relative to the box), so that the model sees
what it was trained on. ``FRAMINGS`` holds the one measured for each detector (see
``fer_core.evaluation.whole_path.measure_framing``; measured on PublicTest only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_core.faces.registry import BLAZEFACE, HAAR
from fer_core.labels import INPUT_SIZE


@dataclass(frozen=True)
class Framing:
    """The FER2013-like square for a detector box (x, y, w, h): side ``scale * w``, centre
    ``(x + w/2 + dx*w, y + h/2 + dy*h)``. ``Framing()`` is the box itself, squared."""

    scale: float = 1.0
    dx: float = 0.0
    dy: float = 0.0

    def region(self, box, margin: float = 0.0) -> tuple[float, float, float]:
        """(centre x, centre y, side) of the square region for ``box``."""
        x, y, w, h = box
        side = self.scale * max(w, h) * (1 + 2 * margin)
        return x + w / 2 + self.dx * w, y + h / 2 + self.dy * h, side

    def as_dict(self) -> dict:
        return {"scale": self.scale, "dx": self.dx, "dy": self.dy}


# Chosen on FER2013 PublicTest faces upscaled 4x on a 640x480 grey frame, never PrivateTest:
#   python -m fer_core evaluate-pipeline --split PublicTest --detector haar blazeface --sweep-framing
# scores a grid of (scale, dy) framings of each detector's box by the accuracy on the faces it
# found; --measure-framing gives the geometric medians (Haar's box covers 97% of FER2013's frame
# width, BlazeFace's 82%, with its centre 0.11 box heights lower).
FRAMINGS = {
    HAAR.name: Framing(scale=1.0, dx=0.0, dy=0.05),
    BLAZEFACE.name: Framing(scale=1.1, dx=0.0, dy=-0.1),
}


def _offsets(centre: Framing, step: float = 0.05) -> tuple[Framing, ...]:
    """The centre framing raised and lowered by ``step`` box heights (3 crops)."""
    return tuple(
        Framing(centre.scale, centre.dx, round(centre.dy + b, 3)) for b in (-step, 0.0, step)
    )


# Haar's photo preset averages the model over three framings (one model call): Haar's box
# wanders up and down against FER2013's frame from face to face, and one framing cannot follow
# that. With the two-pass photo preset, on the 2,995 PublicTest faces it found (83.5%), the
# model was right on 67.9% with the centre framing alone, 68.3% with it raised and lowered by
# 0.05 box heights (3 crops), 68.1% over three scales, 68.2% over both (5) and 68.5% over the
# full 3x3 ladder (9). Three cost 0.2 points against nine and about a third of their time, and
# the photo path has to stay within fer's time, so: three. For BlazeFace (1,896 PublicTest
# faces) the 9 framings gave no gain over one (67.1% against 66.6%, within noise), so it keeps
# one. The live preset uses the centre framing alone (speed).
FRAMING_SETS = {
    HAAR.name: _offsets(FRAMINGS[HAAR.name]),
    BLAZEFACE.name: (FRAMINGS[BLAZEFACE.name],),
}


def eye_angle(eyes) -> float:
    """Degrees to rotate (counter-clockwise, OpenCV's sense) so that the eyes are level."""
    (lx, ly), (rx, ry) = eyes
    return float(np.degrees(np.arctan2(ry - ly, rx - lx)))


def crop_faces(
    grey: np.ndarray, boxes, margin: float = 0.0, framing: Framing | None = None, eyes=None
) -> np.ndarray:
    """Crop each (x, y, w, h) box from a grey image and resize to 48x48 uint8.

    Without ``framing``: the box itself, widened by ``margin`` (a fraction of its size) per side
    and clipped to the image. With ``framing``: the square region FER2013 would have framed
    around that box (widened by ``margin``); parts outside the image repeat its edge pixels, so
    a face at the border keeps its proportions. ``eyes``: for each box, its two eye points (or
    None): the region is then rotated about its centre so that the eyes are level.
    Returns an array (N, 48, 48) uint8, ready for ``EmotionModel.predict_faces``.
    """
    import cv2

    height, width = grey.shape[:2]
    crops = np.empty((len(boxes), INPUT_SIZE, INPUT_SIZE), dtype=np.uint8)
    for index, box in enumerate(boxes):
        points = eyes[index] if eyes is not None else None
        if framing is None and points is None:
            x, y, w, h = box
            dx, dy = int(round(w * margin)), int(round(h * margin))
            x0, y0 = max(0, x - dx), max(0, y - dy)
            x1, y1 = min(width, x + w + dx), min(height, y + h + dy)
            face = grey[y0:y1, x0:x1]
        else:
            cx, cy, side = (framing or Framing()).region(box, margin)
            size = max(2, int(round(side)))
            angle = eye_angle(points) if points is not None else 0.0
            # the region (rotated by ``angle`` about its centre) -> a size x size image
            matrix = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
            matrix[:, 2] += np.array([size / 2 - cx, size / 2 - cy])
            if angle == 0.0:
                x0, y0 = int(round(cx - size / 2)), int(round(cy - size / 2))
                if x0 >= 0 and y0 >= 0 and x0 + size <= width and y0 + size <= height:
                    face = grey[y0 : y0 + size, x0 : x0 + size]
                else:
                    face = (
                        cv2.copyMakeBorder(
                            grey[
                                max(0, y0) : min(height, y0 + size),
                                max(0, x0) : min(width, x0 + size),
                            ],
                            max(0, -y0),
                            max(0, y0 + size - height),
                            max(0, -x0),
                            max(0, x0 + size - width),
                            cv2.BORDER_REPLICATE,
                        )
                        if x0 < width and y0 < height and x0 + size > 0 and y0 + size > 0
                        else np.full((size, size), int(np.median(grey)), np.uint8)
                    )
            else:
                face = cv2.warpAffine(
                    grey,
                    matrix,
                    (size, size),
                    flags=cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE,
                )
        interpolation = cv2.INTER_AREA if face.shape[0] > INPUT_SIZE else cv2.INTER_LINEAR
        crops[index] = cv2.resize(face, (INPUT_SIZE, INPUT_SIZE), interpolation=interpolation)
    return crops
