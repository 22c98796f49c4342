"""The live page's frame callback, as a plain function on real frames (no browser, no WebRTC)."""

import asyncio
import dataclasses
import threading
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
import skimage.data

from app_lib.live.processor import (
    ICE_SERVERS_ENV,
    LAG_LIMIT_S,
    FrameLag,
    LiveProcessor,
    ResultHolder,
    describe_faces,
    rtc_configuration,
)
from fer_core import EMOTIONS
from fer_core.errors import ConfigError

BOX_RGB = np.array([40, 200, 80])  # the colour draw_results boxes faces with


def webcam_frame(width=640, height=480) -> np.ndarray:
    """The astronaut's smiling face as a 4:3 webcam frame."""
    face = skimage.data.astronaut()[0:255, 60:400]
    return cv2.resize(face, (width, height), interpolation=cv2.INTER_AREA)


def video_frame(rgb: np.ndarray, pts: int = 0) -> av.VideoFrame:
    # A webcam frame as aiortc delivers it: YUV 4:2:0, with a timestamp.
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    frame.pts = pts
    frame.time_base = Fraction(1, 90000)
    return frame


def box_pixels(rgb: np.ndarray) -> int:
    return int((np.abs(rgb.astype(int) - BOX_RGB).sum(axis=2) < 60).sum())


@pytest.fixture(scope="module")
def processor_factory():
    def make(**kwargs):
        return LiveProcessor(None, **kwargs)

    return make


def test_callback_draws_box_and_publishes_happy(processor_factory):
    processor = processor_factory(smoothing=0.5)
    rgb = webcam_frame()
    out = processor(video_frame(rgb, pts=3000))
    assert isinstance(out, av.VideoFrame)
    assert (out.width, out.height) == (640, 480)
    assert out.pts == 3000 and out.time_base is not None
    annotated = out.to_ndarray(format="rgb24")
    # A box of the box colour now surrounds the face; the input had no such pixels.
    assert box_pixels(annotated) > 500 > box_pixels(rgb)
    snapshot = processor.holder.latest()
    assert snapshot is not None and snapshot.error is None
    assert len(snapshot.faces) == 1
    face = snapshot.faces[0]
    assert face.label == "happy" and face.face_id == 1 and face.number == 1
    assert len(face.probs) == len(EMOTIONS) and abs(sum(face.probs) - 1) < 1e-4
    x, y, w, h = face.box
    assert 150 < x + w / 2 < 500 and w > 100  # the face, in full-frame pixels
    assert snapshot.frame_size == (640, 480)
    assert snapshot.latency_ms > 0 and snapshot.detect_ms > 0 and snapshot.classify_ms > 0
    assert snapshot.top is face and snapshot.result.model == "cnn_gru"
    assert describe_faces(snapshot)[0].startswith("face #1: happy")


def test_stream_keeps_face_id_and_measures_fps(processor_factory):
    processor = processor_factory(smoothing=0.8)
    rgb = webcam_frame()
    for index in range(4):
        processor(video_frame(rgb, pts=index * 6000))
    snapshot = processor.holder.latest()
    assert snapshot.frame_index == 4
    assert [f.face_id for f in snapshot.faces] == [1]  # tracked, not a new face each frame
    assert snapshot.fps > 0
    processor.set_smoothing(0.0)
    assert processor.recognizer.tracker.smoothing == 0.0
    with pytest.raises(ConfigError):
        processor.set_smoothing(1.0)
    processor.reset()
    assert processor.holder.latest() is None and processor.frames == 0


def test_frame_without_face_is_returned_unchanged(processor_factory):
    processor = processor_factory()
    grey = np.full((480, 640, 3), 120, np.uint8)
    annotated, snapshot = processor.process(grey)
    assert snapshot.faces == [] and snapshot.top is None
    np.testing.assert_array_equal(annotated, grey)


def test_a_failing_frame_does_not_end_the_stream(processor_factory):
    processor = processor_factory()

    def broken(_):
        raise RuntimeError("detector exploded")

    processor.recognizer.analyze_stream = broken
    rgb = webcam_frame()
    out = processor(video_frame(rgb))
    assert (out.width, out.height) == (640, 480)
    snapshot = processor.holder.latest()
    assert "detector exploded" in snapshot.error and snapshot.faces == []


def test_streamlit_webrtc_drops_stale_frames_instead_of_queueing(processor_factory):
    """With async processing, a video_frame_callback sees only the newest of the frames that
    queued up while it was busy (streamlit-webrtc's CallbackAttachableProcessor)."""
    from streamlit_webrtc.models import CallbackAttachableProcessor

    processor = processor_factory()
    seen = []

    def callback(frame):
        seen.append(frame.pts)
        return processor(frame)

    wrapper = CallbackAttachableProcessor(callback, None, None)
    rgb = webcam_frame()
    queued = [video_frame(rgb, pts=pts) for pts in (0, 3000, 6000)]
    out = asyncio.run(wrapper.recv_queued(queued))
    assert seen == [6000] and len(out) == 1 and processor.frames == 1


def test_result_holder_hands_over_the_latest_snapshot():
    holder = ResultHolder()
    assert holder.latest() is None
    processor = LiveProcessor(None, holder=holder)
    rgb = webcam_frame(320, 240)
    threads = [threading.Thread(target=processor.process, args=(rgb,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snapshot = holder.latest()
    assert snapshot.frame_index in (1, 2, 3) and processor.frames == 3
    holder.clear()
    assert holder.latest() is None


def test_rtc_configuration_is_local_by_default_and_reads_the_environment():
    assert rtc_configuration({}) == {"iceServers": []}
    assert rtc_configuration({ICE_SERVERS_ENV: "  "}) == {"iceServers": []}
    stun = rtc_configuration({ICE_SERVERS_ENV: '[{"urls": ["stun:stun.example.org:3478"]}]'})
    assert stun == {"iceServers": [{"urls": ["stun:stun.example.org:3478"]}]}
    turn = rtc_configuration(
        {
            ICE_SERVERS_ENV: '[{"urls": "turn:t.example.org:3478", '
            '"username": "u", "credential": "p"}]'
        }
    )
    assert turn == {
        "iceServers": [{"urls": ["turn:t.example.org:3478"], "username": "u", "credential": "p"}]
    }
    plain = rtc_configuration({ICE_SERVERS_ENV: '["stun:a.example.org", "stun:b.example.org"]'})
    assert [s["urls"] for s in plain["iceServers"]] == [
        ["stun:a.example.org"],
        ["stun:b.example.org"],
    ]
    wrapped = rtc_configuration({ICE_SERVERS_ENV: '{"iceServers": [{"urls": "stun:x.org"}]}'})
    assert wrapped == {"iceServers": [{"urls": ["stun:x.org"]}]}
    for bad in ("not json", '{"urls": "stun:x"}', '[{"username": "u"}]', '["http://x.org"]'):
        with pytest.raises(ConfigError):
            rtc_configuration({ICE_SERVERS_ENV: bad})


def test_the_full_rtc_configuration_and_turn_secrets():
    """Issue 25: FER_ICE_SERVERS takes the whole configuration, so a relay can be forced; the
    browser gets all of it, aiortc the servers; a TURN secret mints time-limited credentials
    (coturn's use-auth-secret) and never reaches the browser."""
    import base64
    import hashlib
    import hmac
    import json

    from app_lib.live.processor import TURN_CREDENTIAL_SECONDS, frontend_rtc, server_rtc

    config = rtc_configuration(
        {
            ICE_SERVERS_ENV: json.dumps(
                {
                    "iceServers": [{"urls": "turn:127.0.0.1:3478", "secret": "shh"}],
                    "iceTransportPolicy": "relay",
                }
            )
        },
        now=1_000_000,
    )
    assert config["iceTransportPolicy"] == "relay"
    (server,) = config["iceServers"]
    assert "secret" not in server and "shh" not in json.dumps(config)
    expiry, user = server["username"].split(":")
    assert int(expiry) == 1_000_000 + TURN_CREDENTIAL_SECONDS and user == "fer"
    expected = hmac.new(b"shh", server["username"].encode(), hashlib.sha1).digest()
    assert base64.b64decode(server["credential"]) == expected
    assert frontend_rtc(config) == config
    assert server_rtc(config) == {"iceServers": config["iceServers"]}
    for bad, why in (
        ('{"iceServers": [], "iceTransportPolicy": "none"}', '"all" or "relay"'),
        ('{"iceServers": [{"urls": "stun:x.org"}], "iceTransportPolicy": "relay"}', "TURN"),
        ('{"iceServers": [], "bundlePolicy": "max-bundle"}', "unknown setting"),
        ('[{"urls": "turn:x.org", "secret": "s", "username": "u"}]', "not both"),
    ):
        with pytest.raises(ConfigError, match=why):
            rtc_configuration({ICE_SERVERS_ENV: bad})


def test_the_no_connection_message_points_at_a_relay():
    from app_lib.live.processor import no_connection_message

    direct = no_connection_message(12.4, {"iceServers": []})
    assert "No video after 12 s" in direct and "FER_ICE_SERVERS" in direct
    relayed = no_connection_message(
        15, {"iceServers": [{"urls": ["turn:t.example.org:3478"]}], "iceTransportPolicy": "relay"}
    )
    assert "did not help either" in relayed and "3478" in relayed


def test_switching_the_detector_mid_stream_keeps_the_face_id(processor_factory):
    processor = processor_factory(smoothing=0.5)
    assert processor.detector == "haar" and processor.recognizer.detect_every == 3
    rgb = webcam_frame()
    processor.process(rgb)
    processor.process(rgb)
    processor.set_detector("blazeface")  # what the sidebar switch does while streaming
    _, snapshot = processor.process(rgb)
    assert processor.detector == "blazeface" and snapshot.detector == "blazeface"
    assert processor.recognizer.detect_every == 3
    assert [f.face_id for f in snapshot.faces] == [1]
    assert snapshot.faces[0].score is not None and not snapshot.faces[0].carried
    with pytest.raises(ConfigError):
        processor.set_detector("nope")
    assert processor.detector == "blazeface"


def test_the_heading_says_uncertain_where_the_overlay_does(processor_factory, monkeypatch):
    """Issue item 4: the video said "uncertain: happy 30%/sad 28%" while the heading beside it
    said **happy**: the heading, the lines and the bars now take the overlay's label."""
    from fer_core.recognition.drawing import UNCERTAIN_COLOUR

    processor = processor_factory(smoothing=0.0)
    model = processor.recognizer.model
    _, sure = processor.process(webcam_frame())
    assert sure.shown_label(sure.top) == "happy" and not sure.top.uncertain(
        sure.result.uncertain_below
    )
    # a model whose card finds nothing below 99.9% sure enough: the same face is uncertain
    card = dataclasses.replace(
        model.card, calibration={**model.card.calibration, "uncertain_below": 0.999}
    )
    monkeypatch.setattr(model, "card", card)
    annotated, unsure = processor.process(webcam_frame())
    amber = (np.abs(annotated.astype(int) - UNCERTAIN_COLOUR).sum(axis=2) < 10).sum()
    assert amber > 300  # the overlay says uncertain...
    assert unsure.top.uncertain(unsure.result.uncertain_below)
    assert unsure.shown_label(unsure.top).startswith("uncertain: happy/")
    assert describe_faces(unsure)[0].startswith("face #1: uncertain: happy/")  # ...and the page


def test_the_heading_names_the_most_confident_face_and_the_bars_say_what_they_leave_out():
    """Issue item 4: the heading followed the largest face, not the most confident one its
    docstring names; the bars showed 4 of 6 faces without saying so."""
    from app_lib.live.processor import LiveSnapshot, bar_faces
    from fer_core.recognition.results import FaceResult, ImageResult

    def face(face_id, size, confidence):
        probs = np.full(7, (1 - confidence) / 6)
        probs[3] = confidence  # happy
        return FaceResult((10 * face_id, 10, size, size), probs, face_id)

    def snapshot_of(*faces):
        return LiveSnapshot(result=ImageResult(list(faces)))

    close_but_unsure = face(1, 300, 0.35)
    snapshot = snapshot_of(close_but_unsure, face(2, 60, 0.9), face(3, 60, 0.5))
    assert snapshot.top.face_id == 2
    assert snapshot_of(face(1, 60, 0.9), face(2, 90, 0.9)).top.face_id == 2  # tie
    assert LiveSnapshot().top is None
    shown, note = bar_faces(snapshot)
    assert [f.face_id for f in shown] == [1, 2, 3] and note is None
    crowd = snapshot_of(*[face(i, 60, 0.3 + i / 20) for i in range(1, 7)])
    shown, note = bar_faces(crowd)
    assert [f.face_id for f in shown] == [3, 4, 5, 6] and note == "showing 4 of 6 faces"
    assert crowd.top in shown


def test_face_crop_is_the_crop_the_model_classified():
    processor = LiveProcessor(None)
    assert processor.face_crop() is None  # no frame yet
    processor.process(webcam_frame())
    crop, face = processor.face_crop()
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    probs = processor.model.predict_faces(crop[None])[0]
    assert EMOTIONS[int(np.argmax(probs))] == "happy" == face.label
    processor.reset()
    assert processor.face_crop() is None


def test_a_saved_recording_keeps_face_thumbnails_only_when_asked(tmp_path):
    from fer_core.records import Records, Viewer
    from fer_core.records.writer import SessionWriter

    records = Records(f"sqlite:///{tmp_path / 'records.sqlite'}")
    viewer = Viewer("tab")
    processor = LiveProcessor(None)
    sessions = []
    for thumbnails in (False, True):
        session = records.start_session("live", viewer, thumbnails=thumbnails)
        sessions.append(session)
        processor.recorder.start(
            None,
            sink=lambda to_rows, s=session: SessionWriter(records, s, to_rows, flush_seconds=0.05),
            thumbnails=thumbnails,
        )
        for index in range(3):
            processor(video_frame(webcam_frame(), pts=index * 3000))
        writer = processor.recorder.last_sink
        processor.recorder.stop()
        assert writer.finished.wait(10) and writer.written == 3
    assert records.session_thumbnails(sessions[0], viewer) == []
    thumbs = records.session_thumbnails(sessions[1], viewer)
    assert len(thumbs) == 3
    crop = cv2.imdecode(np.frombuffer(thumbs[0][2], np.uint8), cv2.IMREAD_UNCHANGED)
    assert crop.shape == (48, 48)
    # the downloads never carry images
    assert "thumbnail" not in processor.recorder.rows()[0]
    records.close()


def arrived(rgb, number: int, at: float, fps: int = 15) -> av.VideoFrame:
    """Frame ``number`` of a 15 frames/s stream, received at monotonic time ``at``."""
    frame = video_frame(rgb, pts=number * (90000 // fps))
    frame.opaque = at
    return frame


def test_frame_lag_is_the_wait_beyond_the_streams_usual_delay():
    lag = FrameLag(baseline_s=30)
    rgb = np.zeros((48, 64, 3), np.uint8)
    start = 1000.0
    # frames on time: a constant delay (clock offset plus network) is no lag
    assert [lag.lag(arrived(rgb, n, start + 0.25 + n / 15)) for n in range(15)] == [0.0] * 15
    assert lag.lag(arrived(rgb, 15, start + 0.25 + 1 + 0.4)) == pytest.approx(0.4)
    # a frame that did not come over the network (no arrival stamp) is never late
    assert lag.lag(video_frame(rgb, pts=16 * 6000)) == 0.0
    # after the baseline window the usual delay is what it has been since (clocks drift)
    later = start + 40
    assert lag.lag(arrived(rgb, 40 * 15, later + 0.6)) == 0.0
    lag.reset()
    assert lag.lag(arrived(rgb, 0, start)) == 0.0


def test_late_frames_are_not_analysed_but_one_a_second_is(processor_factory):
    """A server that is behind skips the analysis of frames that waited in a queue on their
    way in; the browser keeps the latest annotated picture, and one frame a second is still
    analysed."""
    processor = processor_factory()
    rgb = webcam_frame()
    clock = [5000.0]
    processor.clock = lambda: clock[0]

    def feed(number, lateness):
        clock[0] = 5000.0 + number / 15 + lateness
        return processor(arrived(rgb, number, clock[0]))

    first = feed(0, 0.0)
    assert processor.frames == 1
    assert feed(1, LAG_LIMIT_S + 0.2) is first  # late: the latest picture again
    assert processor.frames == 1 and processor.skipped == 1
    on_time = feed(2, 0.0)
    assert on_time is not first and processor.frames == 2
    # late for more than a second: still one analysis per second
    results = [feed(n, 0.5) for n in range(3, 3 + 20)]
    assert processor.frames == 3 and processor.skipped == 20
    assert len({id(r) for r in results}) == 2
    # frames 3 to 9 skipped, 10 analysed (a second after the last analysis), the rest skipped
    assert processor.holder.latest().skipped == 1 + 7  # as it stood at the analysed frame
    processor.reset()
    assert processor.skipped == 0


def test_a_frame_without_a_place_under_the_limit_is_not_analysed(processor_factory):
    """Issue 34 item 3: the processor asks ``admission`` before each frame; a frame it
    refuses is returned as it came, counted, and not analysed (nothing published)."""
    processor = processor_factory()
    answers = [True, False, False, True]
    processor.admission = lambda: answers.pop(0)
    frame = video_frame(webcam_frame())
    results = [processor(frame) for _ in range(4)]
    assert processor.frames == 2 and processor.held_back == 2
    assert results[1] is frame and results[2] is frame
    assert results[0] is not frame and results[3] is not frame  # annotated
    assert processor.held_back_at is not None
    processor.reset()
    assert processor.held_back == 0 and processor.held_back_at is None
