"""Bad inputs of every kind: each gives a FerError (never another exception), nothing hangs,
memory stays bounded. Counts are printed for the record (pytest -s)."""

import io

import numpy as np
import pytest
from PIL import Image

from fer_core import FerError, Recognizer, read_image

FORMATS = ["PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF"]


def _encode(array, fmt):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def recognizer(shipped_model):
    return Recognizer(shipped_model)


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_truncated_and_corrupt_in_every_format(fmt, astronaut):
    data = _encode(astronaut[::4, ::4].copy(), fmt)
    bad = [
        b"",
        data[:10],
        data[: len(data) // 3],
        data[: -len(data) // 4],
        data[:20] + bytes(len(data) - 20),
    ]
    refused = 0
    for payload in bad:
        try:
            image = read_image(payload)
        except FerError as error:  # the expected outcome for most: a message, not a traceback
            assert str(error).strip()
            refused += 1
            continue
        # A decoder may legitimately recover a partial image; it must still be valid RGB.
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert image.shape[0] >= 1 and image.shape[1] >= 1
    # The empty, 10-byte and zeroed payloads never decode.
    assert refused >= 3, refused


@pytest.mark.parametrize("shape", [(1, 1, 3), (20, 20000, 3), (20000, 20, 3)])
def test_extreme_shapes(shape, recognizer):
    image = np.full(shape, 120, np.uint8)
    decoded = read_image(_encode(image, "PNG"))
    assert decoded.shape == shape
    assert recognizer.analyze(decoded) == []


def test_fifty_faces(astronaut, recognizer):
    import cv2

    face = cv2.resize(astronaut[20:260, 120:340], (110, 120))
    grid = np.concatenate([np.concatenate([face] * 10, axis=1)] * 5, axis=0)
    results = recognizer.analyze(grid)
    assert len(results) >= 45
    for result in results:
        assert abs(float(np.sum(result.probs)) - 1) < 1e-5


@pytest.mark.slow
def test_fuzz_mutated_images(astronaut, recognizer):
    """Thousands of byte-mutated real images through decode and analyse."""
    import psutil

    rng = np.random.default_rng(2026)
    small = np.ascontiguousarray(astronaut[::4, ::4])
    seeds = [_encode(small, fmt) for fmt in FORMATS]
    process = psutil.Process()
    counts = {"tried": 0, "decoded": 0, "fer_error": 0, "other_error": 0}
    rss_after_warmup = None
    for index in range(3000):
        data = bytearray(seeds[index % len(seeds)])
        kind = rng.integers(0, 4)
        if kind == 0:  # flip random bytes
            for position in rng.integers(0, len(data), rng.integers(1, 20)):
                data[position] = rng.integers(0, 256)
        elif kind == 1:  # truncate
            data = data[: rng.integers(0, len(data))]
        elif kind == 2:  # insert junk
            position = rng.integers(0, len(data))
            data[position:position] = rng.bytes(int(rng.integers(1, 200)))
        else:  # overwrite a block (headers included)
            position = rng.integers(0, max(1, len(data) - 64))
            data[position : position + 64] = rng.bytes(64)
        counts["tried"] += 1
        try:
            image = read_image(bytes(data))
            counts["decoded"] += 1
            recognizer.analyze(image)
        except FerError:
            counts["fer_error"] += 1
        except Exception as exc:  # noqa: BLE001 - the point of the test
            counts["other_error"] += 1
            pytest.fail(f"mutation {index} raised {type(exc).__name__}: {exc}")
        if index == 300:
            rss_after_warmup = process.memory_info().rss
    growth = (process.memory_info().rss - rss_after_warmup) / 2**20
    print(f"\nfuzz: {counts}, RSS growth after warm-up {growth:.1f} MiB")
    assert counts["other_error"] == 0
    assert counts["fer_error"] > 100 and counts["decoded"] > 100
    assert growth < 150
