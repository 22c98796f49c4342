"""The Live page's memory: the last-minute history, the recording and its downloads, the
smallest-face setting and the "faces too small" feedback (real frames, no browser)."""

import csv
import io
import json
import threading
import time
from datetime import datetime

import cv2
import numpy as np
import pytest

from app_lib.live.processor import LiveProcessor, LiveSnapshot, faces_too_small
from app_lib.live.recording import (
    LIVE_COLUMNS,
    CaptureGuard,
    LiveRecorder,
    capture_face,
    start_recording,
)
from fer_core import EMOTIONS, Recognizer
from fer_core.errors import ConfigError
from fer_core.recognition.results import VIDEO_COLUMNS, FaceResult, ImageResult
from fer_core.records import ADMIN_CLI, Records
from tests.app.test_live_processor import webcam_frame


class Clock:
    def __init__(self, start=1000.0):
        self.now = start

    def __call__(self):
        return self.now


def face(face_id, top=3, box=(10, 20, 100, 100)):
    probs = np.full(7, 0.05)
    probs[top] = 0.7
    return FaceResult(box, probs, face_id)


@pytest.fixture(scope="module")
def processor():
    return LiveProcessor(None)


def test_a_recording_has_a_row_per_face_per_frame_in_the_video_columns():
    clock = Clock()
    recorder = LiveRecorder(clock=clock, wall_clock=lambda: 1_700_000_000.0)
    recorder.add(1, ImageResult([face(1)]))  # before recording: history only
    recorder.start(uncertain_below=0.5)
    for index in range(2, 8):
        clock.now += 1 / 30
        recorder.add(
            index,
            ImageResult([face(1), face(2, top=4, box=(300, 20, 90, 90))] if index % 2 else []),
        )
    recorder.stop()
    clock.now += 5  # time after the stop does not count
    rows = recorder.rows()
    assert LIVE_COLUMNS == ["timestamp", *VIDEO_COLUMNS]
    assert [r["frame"] for r in rows] == [2, 3, 3, 4, 5, 5, 6, 7, 7]
    assert [r["faces"] for r in rows] == [0, 2, 2, 0, 2, 2, 0, 2, 2]
    assert all(set(r) == set(LIVE_COLUMNS) for r in rows)
    times = [r["time_s"] for r in rows]
    stamps = [datetime.fromisoformat(r["timestamp"]) for r in rows]
    assert times == sorted(times) and stamps == sorted(stamps)
    assert times[0] == pytest.approx(1 / 30, abs=1e-3) and times[-1] == pytest.approx(0.2, abs=1e-3)
    assert stamps[0].timestamp() == pytest.approx(1_700_000_000.0 + 1 / 30, abs=1e-3)
    assert recorder.seconds() == pytest.approx(0.2)
    second = rows[2]
    assert (second["face_id"], second["x"], second["w"], second["label"]) == (2, 300, 90, "sad")
    assert second["sad"] == pytest.approx(0.7 / 1.0, rel=0.01) and second["uncertain"] is False
    parsed = list(csv.DictReader(io.StringIO(recorder.csv_bytes().decode())))
    assert len(parsed) == len(rows) and list(parsed[0]) == LIVE_COLUMNS
    # whole numbers stay whole beside the rows of frames without a face
    assert (parsed[0]["faces"], parsed[0]["face_id"], parsed[0]["x"]) == ("0", "", "")
    assert (parsed[2]["face_id"], parsed[2]["x"], parsed[2]["uncertain"]) == ("2", "300", "False")
    assert recorder.csv_bytes() is recorder.csv_bytes()  # formatted once, not every refresh
    document = json.loads(recorder.json_bytes())
    assert (
        document["frames"] == 6
        and document["rows"] == rows
        and not document["stopped_because_full"]
    )


def test_a_recording_stops_at_its_bound_and_keeps_what_it_has():
    clock = Clock()
    recorder = LiveRecorder(max_frames=5, clock=clock)
    recorder.start()
    for index in range(1, 20):
        clock.now += 0.1
        recorder.add(index, ImageResult([face(1)]))
    assert not recorder.recording and recorder.full
    assert recorder.frame_count == 5 and [r["frame"] for r in recorder.rows()] == [1, 2, 3, 4, 5]
    recorder.start()  # a new recording replaces it
    assert recorder.frame_count == 0 and recorder.recording and not recorder.full


def test_the_history_keeps_the_last_minute_per_face_and_is_bounded():
    clock = Clock()
    recorder = LiveRecorder(clock=clock, max_history_frames=10_000)
    assert recorder.history() is None
    for index in range(90 * 30):  # 90 s at 30 frames a second; face 2 appears after 50 s
        clock.now += 1 / 30
        recorder.add(index, ImageResult([face(1)] + ([face(2, top=0)] if index > 50 * 30 else [])))
    history = recorder.history()
    assert set(history["face_id"]) == {1, 2}
    assert history["time_s"].min() >= -60.0 and history["time_s"].max() <= 0.0
    assert history.groupby("face_id")["time_s"].min()[2] > -40.5
    # averaged over a quarter second: about 4 points a second, not 30
    assert len(history[history["face_id"] == 1]) <= 60 * 4 + 2
    assert history[history["face_id"] == 2]["angry"].iloc[0] == pytest.approx(0.7)
    assert list(history.columns) == ["face_id", "time_s", *EMOTIONS]
    small = LiveRecorder(clock=clock, max_history_frames=50)
    for index in range(500):
        small.add(index, ImageResult([face(1)]))
    assert len(small._history) == 50


def test_the_frame_callback_appends_and_recording_survives_a_stream_stop(processor):
    processor.reset()
    processor.recorder.clear()
    rgb = webcam_frame()
    processor.recorder.start(uncertain_below=None)
    threads = [threading.Thread(target=processor.process, args=(rgb,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    processor.process(rgb)
    processor.reset()  # the stream stopped: the recording stops and is kept
    assert not processor.recorder.recording
    rows = processor.recorder.rows()
    assert sorted(r["frame"] for r in rows) == [1, 2, 3, 4]
    assert all(r["label"] == "happy" and r["faces"] == 1 for r in rows)
    assert processor.recorder.history() is None  # face ids restart with the stream


def test_the_snapshot_carries_the_annotated_frame(processor):
    processor.reset()
    annotated, snapshot = processor.process(webcam_frame())
    assert snapshot.image is annotated and snapshot.image.shape == (480, 640, 3)
    ok, png = cv2.imencode(".png", snapshot.image)
    assert ok and png.size > 1000


def test_smallest_face_setting_and_the_too_small_message(processor):
    small = webcam_frame(320, 180)  # the face is about 90 px high here
    haar = Recognizer(preset="live")
    assert haar.smallest_face == 60
    assert Recognizer(preset="live", detector="blazeface").smallest_face is None
    assert Recognizer(preset="live", min_face=30).smallest_face == 30
    with pytest.raises(ConfigError, match="min_face"):
        Recognizer(min_face=2)
    # above the photo preset's two-pass border, only its large-face pass is left
    large_only = Recognizer(min_face=160).detector.settings
    assert (large_only.large_from, large_only.min_size, large_only.scale_factor) == (None, 160, 1.1)
    assert Recognizer(min_face=40).detector.settings.large_from == 120
    # a face larger than the setting is found, a smaller setting finds it too; a larger one not
    assert Recognizer(preset="live", detector="blazeface", min_face=40).analyze(small)
    assert not Recognizer(preset="live", detector="blazeface", min_face=160).analyze(small)
    processor.reset()
    processor.set_detector("haar", 160)
    try:
        _, snapshot = processor.process(small)
        assert snapshot.faces == [] and snapshot.smallest_face == 160
        assert snapshot.frame_size == (320, 180) and faces_too_small(snapshot)
    finally:
        processor.set_detector("haar", None)
    _, snapshot = processor.process(webcam_frame())
    assert snapshot.faces and not faces_too_small(snapshot)

    # no face in a large frame: the user is asked to face the camera, not told it is too small
    def empty(width, height, smallest_face):
        return LiveSnapshot(
            result=ImageResult(width=width, height=height), smallest_face=smallest_face
        )

    assert not faces_too_small(empty(640, 480, 60))
    assert faces_too_small(empty(320, 180, 60))
    assert not faces_too_small(empty(320, 180, None))


def test_the_last_minute_shows_the_faces_on_screen_and_says_how_many_it_leaves_out():
    """Issue item 5: the chart showed the first four face ids ever seen, not the faces on
    screen, and did not say that it showed 4 of 12."""
    from app_lib.live.processor import showing_note

    clock = Clock()
    recorder = LiveRecorder(clock=clock, max_history_frames=10_000)
    for index in range(60 * 10):  # a minute at 10 frames a second
        second = index / 10
        clock.now += 0.1
        present = [f for f in range(1, 8) if second < 40]  # seven people leave after 40 s
        present += [8] if second < 55 else []  # one leaves 5 s before now
        present += [9] if 45 <= second < 48 else []  # one passes by
        present += [10, 11, 12] if second >= 50 else []  # three are on screen now
        recorder.add(index, ImageResult([face(f, box=(30 * f, 20, 25, 25)) for f in present]))
    history = recorder.history(max_faces=4)
    assert list(history["face_id"].unique()) == [10, 11, 12, 8]  # on screen first
    assert history.attrs["faces_seen"] == 12
    assert showing_note(4, history.attrs["faces_seen"]) == "showing 4 of 12 faces"
    assert showing_note(3, 3) is None
    everyone = recorder.history(max_faces=20)
    assert len(everyone["face_id"].unique()) == 12 == everyone.attrs["faces_seen"]


def test_record_pressed_again_while_recording_keeps_one_recording_and_one_session(tmp_path):
    """Record pressed again once the recording has started (the press made twice before the
    page answered) must not cut the recording in two: one session, holding every frame."""
    store = Records(f"sqlite:///{tmp_path / 'records.sqlite'}")
    try:
        ann = store.add_person("Ann", ADMIN_CLI).id
        recorder = LiveRecorder()
        first = start_recording(recorder, None, store, ADMIN_CLI, person_id=ann, detector="haar")
        assert first.started and first.problem is None and recorder.recording
        writer = recorder.sink
        recorder.add(0, ImageResult([face(1)]))
        again = start_recording(recorder, None, store, ADMIN_CLI, person_id=ann, detector="haar")
        assert not again.started and again.problem is None
        assert recorder.sink is writer and recorder.recording
        recorder.add(1, ImageResult([face(1)]))
        recorder.stop()
        assert writer.finished.wait(30)
        (session,) = store.sessions(ADMIN_CLI, person_id=ann)
        assert session.id == writer.session_id and session.rows == 2 == recorder.frame_count
        assert session.status == "complete" and session.detector == "haar"

        # once stopped, Record starts a new recording and a new session
        assert start_recording(recorder, None, store, ADMIN_CLI, person_id=ann).started
        recorder.stop()
        assert recorder.last_sink.finished.wait(30)
        assert len(store.sessions(ADMIN_CLI, person_id=ann)) == 2

        # a session that cannot be started (the person is gone): it records without saving
        store.delete_person(ann, ADMIN_CLI)
        refused = start_recording(recorder, None, store, ADMIN_CLI, person_id=ann)
        assert refused.started and recorder.recording and recorder.sink is None
        assert refused.problem.startswith("Recording without saving: ")
        recorder.stop()
        assert store.sessions(ADMIN_CLI) == []
    finally:
        store.close()


PRESSES = 8


def at_once(press, times: int) -> list:
    """``press()`` called in ``times`` threads released together, as Streamlit handles the
    presses of a button made before the page answered; what each call returned."""
    together = threading.Barrier(times)
    results = []

    def one():
        together.wait()
        results.append(press())

    threads = [threading.Thread(target=one) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def slowly(monkeypatch, store, method: str, seconds: float = 0.05) -> None:
    """``store.method`` as a database that takes its time to answer: calls made at once
    overlap, as they do on a loaded server."""
    fast = getattr(store, method)

    def slow(*args, **kwargs):
        time.sleep(seconds)
        return fast(*args, **kwargs)

    monkeypatch.setattr(store, method, slow)


def test_presses_handled_at_the_same_time_start_one_recording(tmp_path, monkeypatch):
    """Streamlit runs a rerun's callbacks in a new script thread without waiting for the last
    one: presses of Record made before the page answered (seen in a real browser) reach
    start_recording at the same time. One of them starts the recording and its session."""
    store = Records(f"sqlite:///{tmp_path / 'records.sqlite'}")
    slowly(monkeypatch, store, "start_session")
    try:
        recorder = LiveRecorder()
        results = at_once(lambda: start_recording(recorder, None, store, ADMIN_CLI), PRESSES)
        assert sorted(r.started for r in results) == [False] * (PRESSES - 1) + [True]
        recorder.stop()
        assert recorder.last_sink.finished.wait(30)
        assert [s.id for s in store.sessions(ADMIN_CLI)] == [recorder.last_sink.session_id]
    finally:
        store.close()


def _a_face(face_id=3):
    return np.full((48, 48), 128, np.uint8), face(face_id)


def test_presses_of_capture_handled_at_the_same_time_store_one_face(tmp_path, monkeypatch):
    """Issue 33: one press of Capture face stored two faces on a loaded machine. Presses (or
    one press delivered again) handled at the same time in script threads of their own store
    one face; the others say the face was captured a moment ago."""
    store = Records(f"sqlite:///{tmp_path / 'records.sqlite'}")
    slowly(monkeypatch, store, "add_capture")
    try:
        ann = store.add_person("Ann", ADMIN_CLI).id
        guard = CaptureGuard()
        done = at_once(
            lambda: capture_face(guard, _a_face(), store, ann, "happy", ADMIN_CLI), PRESSES
        )
        assert sorted(d.stored for d in done) == [False] * (PRESSES - 1) + [True]
        assert {d.kind for d in done} == {"success", "info"}
        assert all("a moment ago" in d.message for d in done if not d.stored)
        assert len(store.captures(ADMIN_CLI)[0]) == 1
    finally:
        store.close()


def test_capture_pressed_again_later_or_for_another_emotion_stores_again(tmp_path):
    """The guard holds presses for one person and emotion for ``repeat_s`` only: a press
    after that, or for another emotion or person, is a press of its own; a capture that
    fails gives its claim back, so pressing again retries at once."""
    clock = Clock()
    guard = CaptureGuard(repeat_s=2.0, clock=clock)
    store = Records(f"sqlite:///{tmp_path / 'records.sqlite'}")
    try:
        ann = store.add_person("Ann", ADMIN_CLI).id
        bob = store.add_person("Bob", ADMIN_CLI).id
        press = lambda who, emotion: capture_face(  # noqa: E731
            guard, _a_face(), store, who, emotion, ADMIN_CLI
        )
        assert press(ann, "happy").stored
        clock.now += 1.9
        assert not press(ann, "happy").stored
        assert press(ann, "sad").stored and press(bob, "happy").stored
        clock.now += 0.2  # 2.1 s after the first
        first = press(ann, "happy")
        assert first.stored and first.message.startswith("Captured face #3 as happy")
        assert len(store.captures(ADMIN_CLI)[0]) == 4
        store.delete_person(bob, ADMIN_CLI)
        refused = press(bob, "sad")  # the database refuses: a person deleted meanwhile
        assert (refused.kind, refused.stored) == ("error", False)
        assert guard.claim((bob, "sad"))  # the failed capture gave its claim back
        nothing = capture_face(guard, None, store, ann, "fear", ADMIN_CLI)
        assert (nothing.kind, nothing.stored) == ("warning", False)
        assert nothing.message == "No face in the latest frame: nothing captured."
    finally:
        store.close()


def test_a_saved_live_session_is_named_with_its_length(tmp_path):
    """Issue 33 item 6: live sessions had an empty name in Saved sessions (photos get "5
    photos", videos their file name). It is "Live webcam" while it records (and if it is
    interrupted), and "Live webcam, 1 min 12 s" once stopped."""
    clock = Clock()
    store = Records(f"sqlite:///{tmp_path / 'records.sqlite'}")
    try:
        recorder = LiveRecorder(clock=clock)
        assert start_recording(recorder, None, store, ADMIN_CLI, saving_for="#1 Ann").started
        assert recorder.saving_for == "#1 Ann"  # set with the start, for the page to say
        recorder.add(0, ImageResult([face(1)]))
        (recording,) = store.sessions(ADMIN_CLI)
        assert recording.name == "Live webcam"
        clock.now += 72.4
        recorder.stop()
        assert recorder.last_sink.finished.wait(30)
        (done,) = store.sessions(ADMIN_CLI)
        assert (done.name, done.status) == ("Live webcam, 1 min 12 s", "complete")
        assert start_recording(recorder, None, None, ADMIN_CLI, saving_for="#1 Ann").started
        assert recorder.saving_for == ""  # not saved: for nobody
        recorder.stop()
    finally:
        store.close()
