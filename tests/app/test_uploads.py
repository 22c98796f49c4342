"""app_lib.uploads.analysis: the photo analysis behind the upload page, as plain functions."""

import io
import json

import numpy as np
import pandas as pd
import skimage.data
from PIL import Image

from app_lib.uploads.analysis import (
    ALL_PHOTO_COLUMNS,
    IMAGE_TYPES,
    RESULT_COLUMNS,
    analyze_photo,
    annotated_png,
    kind_of,
    photo_recognizer,
    rows_to_csv,
    to_json_bytes,
)
from fer_core import EMOTIONS


def png_bytes(rgb) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def test_photo_with_a_face_and_its_downloads():
    recognizer = photo_recognizer(None)
    data = png_bytes(skimage.data.astronaut())
    result = analyze_photo(data, "astronaut.png", recognizer)
    assert result.ok and (result.width, result.height) == (512, 512)
    assert [f.label for f in result.faces] == ["happy"] and result.faces[0].number == 1
    assert result.image is not None and result.image.model == "cnn_gru"  # what found them
    assert result.image.uncertain_below == recognizer.model.card.uncertain_below
    assert Image.open(io.BytesIO(result.preview_png)).size == (512, 512)
    table = pd.read_csv(io.BytesIO(rows_to_csv(result.rows())))
    assert list(table.columns) == RESULT_COLUMNS and table.loc[0, "file"] == "astronaut.png"
    assert abs(table.loc[0, list(EMOTIONS)].sum() - 1) < 1e-3
    payload = json.loads(to_json_bytes(result.as_json("cnn_gru")))
    assert payload["faces"][0]["label"] == "happy" and payload["model"] == "cnn_gru"
    full = np.asarray(Image.open(io.BytesIO(annotated_png(data, result.faces))))
    assert full.shape == (512, 512, 3)
    assert (np.abs(full.astype(int) - [40, 200, 80]).sum(axis=2) < 30).sum() > 300  # the box


def test_bad_files_give_messages_not_exceptions():
    recognizer = photo_recognizer(None)
    corrupt = analyze_photo(b"\x89PNG\r\n\x1a\n" + b"x" * 64, "broken.png", recognizer)
    assert not corrupt.ok and "broken.png" in corrupt.error
    text = analyze_photo(b"hello, I am text", "notes.jpg", recognizer)
    assert not text.ok and "notes.jpg" in text.error and "not an image" in text.error
    empty = analyze_photo(b"", "empty.webp", recognizer)
    assert "empty" in empty.error
    blank = analyze_photo(png_bytes(np.full((100, 100, 3), 200, np.uint8)), "wall.png", recognizer)
    assert blank.ok and blank.faces == [] and blank.preview_png
    # Bug 9: "All results CSV" left out photos with no face or an error; each now has a row.
    table = pd.read_csv(io.BytesIO(rows_to_csv(blank.rows() + corrupt.rows(), ALL_PHOTO_COLUMNS)))
    assert list(table.columns) == ALL_PHOTO_COLUMNS
    assert list(table["file"]) == ["wall.png", "broken.png"]
    assert table.loc[0, "faces"] == 0 and table.loc[0, "problem"] == "no face found"
    assert "broken.png" in table.loc[1, "problem"] and pd.isna(table.loc[1, "faces"])


def test_dropped_boxes_leave_rows_and_counts():
    from tests.synthetic_media import crowd

    result = analyze_photo(png_bytes(crowd(1, 3)), "three.png", photo_recognizer(None))
    assert [f.number for f in result.faces] == [1, 2, 3]
    rows = result.rows(dropped=[2])
    assert [r["face"] for r in rows] == [1, 3] and {r["faces"] for r in rows} == {2}
    assert result.rows(dropped=[1, 2, 3])[0]["problem"] == "all boxes dropped"


def test_every_download_leaves_the_dropped_boxes_out():
    """Issue item 3: the JSON downloads kept a dropped box ("All results JSON") or its count
    (``faces: 3`` after a drop); every download now counts and lists only the kept faces."""
    from tests.synthetic_media import crowd

    data = png_bytes(crowd(1, 3))
    result = analyze_photo(data, "three.png", photo_recognizer(None))
    payload = json.loads(to_json_bytes(result.as_json("cnn_gru", dropped=[2])))
    assert [f["face"] for f in payload["faces"]] == [1, 3] and payload["dropped"] == [2]
    assert {f["faces"] for f in payload["faces"]} == {2}
    assert [f.number for f in result.kept([2])] == [1, 3]
    table = pd.read_csv(io.BytesIO(rows_to_csv(result.rows([2]), ALL_PHOTO_COLUMNS)))
    assert list(table["face"]) == [1, 3] and set(table["faces"]) == {2}
    whole = json.loads(to_json_bytes(result.as_json("cnn_gru")))
    assert [f["face"] for f in whole["faces"]] == [1, 2, 3] and whole["dropped"] == []
    assert {f["faces"] for f in whole["faces"]} == {3}
    two = np.asarray(Image.open(io.BytesIO(annotated_png(data, result.kept([2])))))
    three = np.asarray(Image.open(io.BytesIO(annotated_png(data, result.faces))))
    green = [
        (np.abs(image.astype(int) - [40, 200, 80]).sum(axis=2) < 30).sum() for image in (two, three)
    ]
    assert green[0] < green[1] * 0.8  # the dropped face is not drawn


def test_the_uploader_accepts_every_format_the_error_message_names():
    """Bug 9: the broken-image message named GIF and TIFF while the uploader refused both."""
    import re

    text = analyze_photo(b"hello, I am text", "notes.jpg", photo_recognizer(None)).error
    named = re.search(r"\(([^)]*)\)", text).group(1)
    for name in named.split(", "):
        assert name.lower().replace("jpeg", "jpg") in IMAGE_TYPES, (name, IMAGE_TYPES)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares its size but holds no pixels (what a decompression bomb looks like
    to a decoder before it allocates memory)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_huge_image_is_refused_before_decoding():
    recognizer = photo_recognizer(None)
    big = analyze_photo(png_header_only(8000, 7000), "big.png", recognizer)
    assert not big.ok and "big.png" in big.error and "56 MP" in big.error
    bomb = analyze_photo(png_header_only(12000, 9000), "bomb.png", recognizer)
    assert not bomb.ok and "bomb.png" in bomb.error and "refused" in bomb.error


def test_kind_of():
    assert kind_of("a.JPG") == "image" and kind_of("b.webp") == "image"
    assert kind_of("c.MOV") == "video" and kind_of("d.webm") == "video"
    assert kind_of("e.txt") == "unknown"
