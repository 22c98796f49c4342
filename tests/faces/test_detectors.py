"""Face detectors by name (Haar, BlazeFace), their scores and eye points, and the tracker
that carries a face the detector misses for a frame or two."""

import numpy as np
import pytest

from fer_core import DETECTORS, ConfigError, FaceResult, FaceTracker, Recognizer
from fer_core.faces import make_detector
from fer_core.faces.blazeface import MODELS, anchors, make_interpreter, model_dir, weighted_nms
from fer_core.recognition.preprocess import Framing, crop_faces, eye_angle


def test_detector_names():
    assert DETECTORS == ("haar", "blazeface")
    with pytest.raises(ConfigError):
        make_detector("retinaface")
    with pytest.raises(ConfigError):
        Recognizer(detector="retinaface")


def test_anchor_counts_match_the_shipped_models():
    assert len(anchors(128, MODELS["short"].strides)) == 896
    assert len(anchors(192, MODELS["full"].strides)) == 2304
    interpreter = make_interpreter(model_dir() / MODELS["short"].file)
    assert tuple(interpreter.get_input_details()[0]["shape"]) == (1, 128, 128, 3)


def test_weighted_nms_merges_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], float)
    scores = np.array([0.9, 0.6, 0.8])
    kept, kept_scores, extra = weighted_nms(boxes, scores, boxes.copy(), 0.3)
    assert len(kept) == 2 and list(kept_scores) == [0.9, 0.8]
    assert kept[0][0] == pytest.approx(0.6 / 1.5)  # score-weighted mean of 0 and 1


@pytest.mark.parametrize("preset", ["photo", "live"])
def test_blazeface_finds_the_astronaut_with_score_and_eyes(astronaut, preset):
    found = make_detector("blazeface", preset).detect_faces(astronaut)
    assert len(found) == 1
    face = found[0]
    x, y, w, h = face.box
    assert 150 < x + w / 2 < 300 and 50 < y + h / 2 < 180 and 60 < w < 160
    assert 0.6 <= face.score <= 1.0
    (lx, ly), (rx, ry) = face.eyes
    assert x < lx < rx < x + w and y < ly < y + h / 2 + 10  # eyes in the upper half, left first
    assert make_detector("blazeface").detect_faces(np.full((200, 300, 3), 90, np.uint8)) == []


@pytest.mark.parametrize("preset", ["photo", "live"])
def test_haar_detections_carry_a_score_and_its_threshold_removes_boxes(astronaut, preset):
    from fer_core.faces.haar import cascade_score, last_stage_threshold

    found = make_detector("haar", preset).detect_faces(astronaut)
    assert len(found) == 1 and found[0].eyes is None
    assert 0.5 <= found[0].score < 1.0  # the logistic of the last stage's margin
    cascade = make_detector("haar", preset).settings.cascade
    threshold = last_stage_threshold(cascade)
    assert cascade_score(threshold, cascade) == pytest.approx(0.5)
    assert cascade_score(threshold + 2, cascade) > cascade_score(threshold + 1, cascade)
    above = make_detector("haar", preset, min_score=min(found[0].score + 1e-6, 0.999999))
    assert above.detect_faces(astronaut) == []
    # the same boxes as without scores: scores only rank them
    assert make_detector("haar", preset).detect(astronaut) == [found[0].box]


def test_blazeface_models_have_their_own_thresholds(astronaut):
    from fer_core.faces.blazeface import BlazeFaceDetector

    default = BlazeFaceDetector(preset="photo")
    assert default.settings.short_min_score is not None
    assert default._thresholds == [default.settings.short_min_score, default.settings.min_score]
    with pytest.raises(ConfigError, match="short_min_score"):
        BlazeFaceDetector(short_min_score=1.5)
    # a short-range threshold above every score leaves the full-range model's boxes only
    only_full = BlazeFaceDetector(preset="photo", short_min_score=0.9999)
    assert [d.box for d in only_full.detect_faces(astronaut)] == [
        d.box for d in BlazeFaceDetector(model="full", min_score=0.45).detect_faces(astronaut)
    ]


def test_recognizer_with_blazeface_reports_the_score(astronaut, shipped_model):
    faces = Recognizer(shipped_model, detector="blazeface").analyze(astronaut)
    assert len(faces) == 1 and faces[0].label == "happy"
    row = faces[0].as_dict()
    assert 0.6 <= row["score"] <= 1.0
    assert Recognizer(shipped_model, detector="blazeface", min_score=0.999).analyze(astronaut) == []
    assert 0.5 <= Recognizer(shipped_model).analyze(astronaut)[0].as_dict()["score"] < 1.0


def test_old_callers_of_face_result_still_work():
    face = FaceResult((1, 2, 3, 4), np.eye(7)[3], 5)
    assert face.face_id == 5 and face.score is None and not face.carried


def test_framed_crop_pads_at_the_border_and_levels_the_eyes():
    grey = np.zeros((100, 100), np.uint8)
    grey[:, 50:] = 200
    # a box at the left border: the framed square reaches outside, which repeats the edge
    crop = crop_faces(grey, [(0, 20, 40, 40)], framing=Framing(scale=1.5))[0]
    assert crop.shape == (48, 48)
    # a tilted pair of eyes: the region is turned so that they are level
    assert eye_angle(((10, 10), (20, 20))) == pytest.approx(45)
    line = np.zeros((101, 101), np.uint8)
    for i in range(20, 81):
        line[i, i] = 255  # a 45-degree line through the centre
    levelled = crop_faces(line, [(20, 20, 61, 61)], framing=Framing(), eyes=[((20, 20), (80, 80))])[
        0
    ]
    rows = np.argwhere(levelled > 100)[:, 0]
    assert rows.max() - rows.min() <= 4  # now a horizontal line
    # the legacy call (no framing, no eyes) is unchanged
    legacy = crop_faces(grey, [(40, 40, 20, 20)], margin=0.1)
    assert legacy.shape == (1, 48, 48)


def test_tracker_carries_a_face_missed_for_a_few_frames_and_keeps_its_id():
    assert FaceTracker().carry_missed == 0  # photos and videos: only what was detected
    assert Recognizer(preset="live").tracker.carry_missed > 0
    tracker = FaceTracker(smoothing=0.0, carry_missed=5)
    probs = np.eye(7)[3]
    for step in range(4):
        results = tracker.update([FaceResult((100 + 5 * step, 100, 80, 80), probs.copy())])
        assert [r.face_id for r in results] == [1]
    for _ in range(tracker.carry_missed):  # the detector loses it: the box stays, carried
        carried = tracker.update([])
        assert len(carried) == 1 and carried[0].carried and carried[0].face_id == 1
    for _ in range(tracker.max_missed - tracker.carry_missed):
        assert tracker.update([]) == []  # no longer drawn, but the id is still kept
    back = tracker.update([FaceResult((130, 102, 80, 80), probs.copy())])
    assert back[0].face_id == 1 and not back[0].carried
    # a box seen once (a false face) is not carried
    tracker.update(
        [FaceResult((400, 10, 50, 50), probs.copy()), FaceResult((130, 102, 80, 80), probs.copy())]
    )
    assert all(
        r.face_id == 1 for r in tracker.update([FaceResult((131, 102, 80, 80), probs.copy())])
    )


def test_several_framings_are_averaged_in_one_model_call(astronaut, shipped_model, monkeypatch):
    calls = []
    original = shipped_model.predict_faces

    def spy(crops):
        calls.append(len(crops))
        return original(crops)

    monkeypatch.setattr(shipped_model, "predict_faces", spy)
    framings = (Framing(1.0), Framing(1.1, 0.0, 0.05), Framing(0.95))
    faces = Recognizer(shipped_model, framing=framings).analyze(astronaut)
    assert calls == [3] and len(faces) == 1 and faces[0].label == "happy"
    assert faces[0].probs.sum() == pytest.approx(1.0)
    with pytest.raises(ConfigError):
        Recognizer(shipped_model, framing=("wide",))


def test_detect_every_classifies_tracked_boxes_between_detections(
    astronaut, shipped_model, monkeypatch
):
    recognizer = Recognizer(shipped_model, preset="live", detect_every=3)
    calls = []
    original = recognizer.detector.detect_faces
    monkeypatch.setattr(
        recognizer.detector, "detect_faces", lambda image: calls.append(1) or original(image)
    )
    ids = []
    for _ in range(7):
        results = recognizer.analyze_stream(astronaut)
        ids.append([r.face_id for r in results])
        assert results[0].label == "happy"
    assert len(calls) == 3  # frames 1, 4 and 7
    assert ids == [[1]] * 7
    blaze = Recognizer(shipped_model, preset="live", detector="blazeface", detect_every=2)
    first, second = blaze.analyze_stream(astronaut), blaze.analyze_stream(astronaut)
    assert second[0].score == first[0].score is not None  # kept between detections
    with pytest.raises(ConfigError):
        Recognizer(shipped_model, detect_every=0)
