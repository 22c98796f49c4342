import numpy as np
import pytest

from fer_core import ConfigError
from fer_core.faces import DetectorSettings, HaarDetector


def test_finds_the_astronaut_face(astronaut):
    boxes = HaarDetector().detect(astronaut)
    assert len(boxes) == 1
    x, y, w, h = boxes[0]
    # Her face is around x 170-280, y 60-170 in the 512x512 image.
    assert 150 < x + w / 2 < 300 and 50 < y + h / 2 < 180 and 60 < w < 160


def test_downscaled_detection_maps_boxes_back(astronaut):
    import cv2

    big = cv2.resize(astronaut, (1024, 1024))
    full = HaarDetector(min_size=100).detect(big)
    small = HaarDetector(detect_width=384, min_size=100).detect(big)
    assert len(full) == 1 and len(small) == 1
    fx, fy, fw, fh = full[0]
    sx, sy, sw, sh = small[0]
    assert fw > 150
    assert abs((fx + fw / 2) - (sx + sw / 2)) < 0.15 * fw
    assert abs(fw - sw) < 0.3 * fw


def test_boxes_are_clipped_and_blank_has_none(astronaut):
    # Face cut by the left border: boxes never leave the image.
    crop = np.ascontiguousarray(astronaut[40:220, 200:400])
    for x, y, w, h in HaarDetector(min_neighbors=3).detect(crop):
        assert x >= 0 and y >= 0 and x + w <= crop.shape[1] and y + h <= crop.shape[0]
    assert HaarDetector().detect(np.zeros((100, 100, 3), np.uint8)) == []
    assert HaarDetector().detect(np.zeros((5, 5, 3), np.uint8)) == []


def test_settings_validated():
    with pytest.raises(ConfigError):
        HaarDetector(DetectorSettings(scale_factor=1.0))
    with pytest.raises(ConfigError):
        HaarDetector(min_size=2)
