"""The one row schema: photos (page and CLI), videos and streams give the same face columns."""

import numpy as np

from fer_core import EMOTIONS, Recognizer
from fer_core.recognition.results import FACE_COLUMNS, PHOTO_COLUMNS, VIDEO_COLUMNS, face_rows


def test_photo_page_cli_and_video_rows_share_the_face_columns(astronaut, tmp_path):
    from app_lib.uploads.analysis import analyze_photo
    from fer_core.data.image import encode_png
    from fer_core.recognition.predict import FacePredictor

    recognizer = Recognizer()
    page = analyze_photo(encode_png(astronaut), "astronaut.png", recognizer).rows()
    cli = FacePredictor().rows_for("astronaut.png", astronaut)
    stream = face_rows(recognizer.analyze_stream(astronaut), frame=0, time_s=0.0)
    assert list(page[0]) == PHOTO_COLUMNS
    assert list(cli[0]) == PHOTO_COLUMNS
    assert list(stream[0]) == VIDEO_COLUMNS
    for row in (page[0], cli[0], stream[0]):
        assert row["faces"] == 1 and row["face"] == 1 and row["label"] == "happy"
        assert set(FACE_COLUMNS) <= set(row)
        assert abs(sum(row[e] for e in EMOTIONS) - 1) < 1e-3
    assert cli[0]["x"] == page[0]["x"] and cli[0]["label"] == page[0]["label"]


def test_an_image_without_faces_still_gives_a_row():
    from fer_core.recognition.predict import FacePredictor

    assert face_rows([], file="blank.png") == [{"file": "blank.png", "faces": 0, "face": None}]
    assert face_rows([], frame=3, time_s=0.1) == []  # a frame without faces: no row
    blank = np.full((120, 160, 3), 90, np.uint8)
    assert FacePredictor().rows_for("blank.png", blank)[0]["faces"] == 0
