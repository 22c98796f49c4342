import io

import numpy as np
import pytest
from PIL import Image

from fer_core import ImageError, read_image


def _encode(image, fmt, **kwargs):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"])
def test_formats_decode_to_rgb(rgb, fmt):
    out = read_image(_encode(Image.fromarray(rgb), fmt))
    assert out.dtype == np.uint8 and out.shape == (40, 60, 3)


def test_sources_path_bytes_filelike(tmp_path, rgb):
    data = _encode(Image.fromarray(rgb), "PNG")
    path = tmp_path / "x.png"
    path.write_bytes(data)
    for source in (path, str(path), data, io.BytesIO(data), open(path, "rb")):
        assert np.array_equal(read_image(source), rgb)


def test_modes_grey_rgba_16bit_palette_cmyk(rgb):
    grey = Image.fromarray(rgb[..., 0])
    out = read_image(_encode(grey, "PNG"))
    assert out.shape == (40, 60, 3) and np.array_equal(out[..., 0], rgb[..., 0])

    rgba = np.dstack([rgb, np.zeros((40, 60), np.uint8)])  # fully transparent -> white
    assert (read_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG")) == 255).all()

    sixteen = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)
    out = read_image(_encode(sixteen, "PNG"))
    assert np.abs(out[..., 0].astype(int) - rgb[..., 0]).max() <= 1

    palette = Image.fromarray(rgb).convert("P")
    assert read_image(_encode(palette, "PNG")).shape == (40, 60, 3)

    cmyk = Image.fromarray(rgb).convert("CMYK")
    assert read_image(_encode(cmyk, "JPEG")).shape == (40, 60, 3)


def test_exif_rotation_is_applied(rgb):
    image = Image.fromarray(rgb)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    out = read_image(_encode(image, "JPEG", exif=exif.tobytes()))
    assert out.shape == (60, 40, 3)


@pytest.mark.parametrize(
    "payload", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 20]
)
def test_rejects_garbage(payload):
    with pytest.raises(ImageError):
        read_image(payload)


def test_rejects_truncated(rgb):
    data = _encode(Image.fromarray(rgb), "PNG")
    with pytest.raises(ImageError):
        read_image(data[: len(data) // 2])


def test_rejects_decompression_bomb():
    # A tiny PNG that declares 30000 x 30000 pixels.
    bomb = _encode(Image.new("1", (30000, 30000)), "PNG")
    assert len(bomb) < 200_000
    with pytest.raises(ImageError, match="MP|enormous"):
        read_image(bomb)


def test_text_mode_handle_is_a_clear_error(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("hello")
    with open(path) as handle, pytest.raises(ImageError, match="binary"):
        read_image(handle)


def test_missing_file():
    with pytest.raises(ImageError, match="does not exist"):
        read_image("/nonexistent/face.jpg")
