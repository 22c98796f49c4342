import numpy as np
import pytest

from fer_core import EMOTIONS, FaceResult, FaceTracker, Recognizer, draw_results
from fer_core.recognition.recognizer import iou


def test_shipped_model_card_and_fast_path(shipped_model):
    assert shipped_model.backend == "litert"
    card = shipped_model.card
    assert card.test["split"] == "PrivateTest" and card.test["n"] == 3589
    assert card.raw["written_by"].startswith("python -m fer_core evaluate")
    assert card.name == "cnn_gru" and card.uncertain_below == card.calibration["uncertain_below"]


def test_astronaut_is_happy(astronaut, shipped_model):
    results = Recognizer(shipped_model).analyze(astronaut)
    assert len(results) == 1
    face = results[0]
    assert face.label == "happy"
    assert len(face.probs) == 7 and abs(sum(face.probs) - 1) < 1e-5
    x, y, w, h = face.box
    assert 0 <= x and x + w <= 512 and 0 <= y and y + h <= 512


def test_no_face_is_an_empty_list(shipped_model):
    assert Recognizer(shipped_model).analyze(np.full((240, 320, 3), 128, np.uint8)) == []


def test_all_faces_go_in_one_batch(astronaut, shipped_model, monkeypatch):
    tiled = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)  # two faces
    recognizer = Recognizer(shipped_model)
    calls = []
    original = shipped_model.predict_faces
    monkeypatch.setattr(
        shipped_model, "predict_faces", lambda crops: calls.append(len(crops)) or original(crops)
    )
    results = recognizer.analyze(tiled)
    # one call: every face found (both, and with 2 neighbours a false one on her suit), each
    # in every framing of the photo preset
    assert len(results) >= 2 and calls == [len(results) * len(recognizer.framing)]


def test_live_preset_finds_the_face(astronaut, shipped_model):
    import cv2

    frame = cv2.resize(astronaut, (640, 480))
    results = Recognizer(shipped_model, preset="live").analyze(frame)
    assert len(results) == 1


def test_tracker_keeps_ids_and_smooths():
    tracker = FaceTracker(smoothing=0.5)
    a = np.eye(7)[3]
    b = np.eye(7)[0]
    first = tracker.update([FaceResult((10, 10, 50, 50), a.copy())])
    second = tracker.update(
        [FaceResult((12, 11, 50, 50), b.copy()), FaceResult((200, 10, 50, 50), b.copy())]
    )
    assert first[0].face_id == 1
    assert second[0].face_id == 1 and second[1].face_id == 2
    np.testing.assert_allclose(second[0].probs, 0.5 * a + 0.5 * b)
    np.testing.assert_allclose(second[1].probs, b)


def test_iou_and_drawing(astronaut):
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    face = FaceResult((100, 100, 80, 80), np.eye(7)[3])
    drawn = draw_results(astronaut, [face])
    assert drawn.shape == astronaut.shape and not np.array_equal(drawn, astronaut)
    assert face.as_dict()["label"] == "happy" and set(EMOTIONS) <= set(face.as_dict())


def test_unknown_preset():
    from fer_core import ConfigError

    with pytest.raises(ConfigError):
        Recognizer(preset="turbo")


def test_tracker_follows_a_face_that_moved_between_sampled_frames():
    tracker = FaceTracker(smoothing=0.5)
    probs = np.eye(7)[3]
    tracker.update([FaceResult((100, 100, 80, 80), probs.copy())])
    moved = tracker.update([FaceResult((150, 115, 84, 84), probs.copy())])  # IoU 0.19
    assert moved[0].face_id == 1
    far = tracker.update([FaceResult((400, 100, 80, 80), probs.copy())])
    assert far[0].face_id == 2


def test_labels_stay_inside_the_image_and_clear_of_each_other():
    """Issue item 8: labels were cut at the image's edges and overlapped on a group photo."""
    from fer_core.recognition.drawing import label_boxes

    canvas = np.zeros((240, 320, 3), np.uint8)
    happy, sad, neutral = np.eye(7)[3], np.eye(7)[4], np.eye(7)[6]
    faces = [
        FaceResult((290, 0, 30, 30), happy, 1),  # the top-right corner
        FaceResult((0, 215, 25, 25), sad, 2),  # the bottom-left corner
        FaceResult((300, 210, 20, 30), neutral, 3),  # the bottom-right corner
        # a group: three faces side by side, labels wider than the faces
        FaceResult((90, 80, 40, 40), happy, 4),
        FaceResult((132, 82, 40, 40), sad, 5),
        FaceResult((174, 78, 40, 40), neutral, 6),
    ]
    colours = [(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0), (0, 250, 250), (250, 0, 250)]
    by_id = {face.face_id: colour for face, colour in zip(faces, colours)}
    drawn = draw_results(canvas, faces, style=lambda r: (r.label, by_id[r.face_id]))
    boxes = label_boxes(canvas.shape, faces, [f"#{f.face_id} {f.label}" for f in faces])
    for left, top, w, h in boxes:
        assert 0 <= left and left + w <= 320 and 0 <= top and top + h <= 240
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not (
                a[0] < b[0] + b[2]
                and b[0] < a[0] + a[2]
                and a[1] < b[1] + b[3]
                and b[1] < a[1] + a[3]
            ), (a, b)
    for (left, top, w, h), colour in zip(boxes, colours):
        # each label's background is drawn whole, in its face's colour (the rest is its text)
        patch = drawn[top : top + h, left : left + w]
        assert (patch == colour).all(axis=2).mean() > 0.6
    # a face far from others keeps its label just above its box, as before
    alone = FaceResult((100, 100, 80, 80), happy, 7)
    ((left, top, w, h),) = label_boxes(canvas.shape, [alone], ["#7 happy"])
    assert (left, top + h) == (100, 100)
