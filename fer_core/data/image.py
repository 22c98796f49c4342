"""Decode user images safely into RGB uint8 arrays."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np

from fer_core.data.media import IMAGE_SUFFIXES, format_names
from fer_core.errors import ImageError

# Refuse images whose decoded size would be absurd: 40 megapixels is well above any photo a
# user uploads (a 7952x5304 full-frame camera is 42 MP, so allow a little more) and far below
# what a decompression bomb asks for.
MAX_PIXELS = 50_000_000
MAX_FILE_BYTES = 200 * 1024 * 1024

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO


def _read_bytes(source: ImageSource) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "image"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"{path} does not exist or is not a file.")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ImageError(
                f"{path.name} is {size / 2**20:.0f} MB; images up to "
                f"{MAX_FILE_BYTES // 2**20} MB are accepted."
            )
        return path.read_bytes(), path.name
    if hasattr(source, "read"):
        name = getattr(source, "name", "image")
        if hasattr(source, "seek"):
            try:
                source.seek(0)
            except (OSError, ValueError):
                pass
        data = source.read(MAX_FILE_BYTES + 1)
        if isinstance(data, str):
            raise ImageError(f"{name}: open the file in binary mode ('rb').")
        if len(data) > MAX_FILE_BYTES:
            raise ImageError(f"{name} is larger than {MAX_FILE_BYTES // 2**20} MB.")
        return bytes(data), str(name)
    raise ImageError(
        f"Cannot read an image from a {type(source).__name__}; give a path, "
        "bytes or a binary file object."
    )


def read_image(source: ImageSource, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image (path, bytes or binary file object) into an RGB uint8 (H, W, 3) array.

    Grayscale, RGBA/LA (composited on white), 16-bit, palette and CMYK images are converted;
    the EXIF orientation is applied. Raises ``ImageError`` for anything that is not a complete,
    reasonably sized image.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    data, name = _read_bytes(source)
    if not data:
        raise ImageError(f"{name} is empty (0 bytes).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width < 1 or height < 1:
                raise ImageError(f"{name} has no pixels ({width}x{height}).")
            if width * height > max_pixels:
                raise ImageError(
                    f"{name} is {width}x{height} pixels ({width * height / 1e6:.0f} MP); the limit "
                    f"is {max_pixels / 1e6:.0f} MP. Resize the image and try again."
                )
            image.load()
            rgb = _to_rgb(ImageOps.exif_transpose(image))
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{name} declares an enormous size and was refused: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(
            f"{name} is not an image in a format we can read ({format_names(IMAGE_SUFFIXES)})."
        ) from exc
    except (
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        IndexError,
        TypeError,
        KeyError,
        MemoryError,
        ZeroDivisionError,
        AttributeError,
        RuntimeError,
    ) as exc:
        raise ImageError(
            f"{name} is corrupt or truncated and cannot be decoded ({type(exc).__name__}: {exc})."
        ) from exc
    return rgb


def _to_rgb(image) -> np.ndarray:
    from PIL import Image

    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if array.max() > 255 else 255.0
        grey = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "F":
        array = np.asarray(image, dtype=np.float64)
        low, high = float(np.nanmin(array)), float(np.nanmax(array))
        scale = 255.0 / (high - low) if high > low else 0.0
        grey = np.nan_to_num((array - low) * scale).clip(0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "P":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageError(f"Unsupported image layout {rgb.shape}.")
    return np.ascontiguousarray(rgb)


def encode_png(rgb: np.ndarray) -> bytes:
    """RGB (or grey) uint8 array -> PNG bytes: the one PNG encoder of downloads, previews,
    snapshots and thumbnails."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
