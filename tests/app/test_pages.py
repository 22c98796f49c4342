"""The app's pages under streamlit.testing.v1.AppTest: they render, and user errors are shown
with st.error (never a traceback). The live page's webrtc component cannot run under AppTest;
its frame callback is tested in test_live_processor.py and the page itself in the browser."""

import contextlib
import dataclasses
import io
import json
import os
import re
import time
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image
from streamlit.testing.v1 import AppTest

from app_lib.ui.formatting import duration
from app_lib.ui.navigation import PAGES
from fer_core.data.media import FORMAT_NAMES, IMAGE_SUFFIXES, VIDEO_SUFFIXES

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
REAL_FER2013 = os.environ.get("FER2013_PATH")
TIMEOUT = 120  # the first run loads TensorFlow and the model


def png_bytes(rgb) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def write_fer_csv(path: Path, per_class: int = 3) -> Path:
    rng = np.random.default_rng(0)
    lines = ["emotion,pixels,Usage"]
    first = None
    for usage in ("Training", "PublicTest", "PrivateTest"):
        for label in range(7):
            for _ in range(per_class):
                pixels = " ".join(map(str, rng.integers(0, 256, 2304)))
                first = first or pixels
                lines.append(f"{label},{pixels},{usage}")
    lines.append(f"5,{first},PrivateTest")  # leaked duplicate with a conflicting label
    lines.append(f"6,{' '.join(['0'] * 2304)},Training")  # all black
    lines.append("3,1 2 3,Training")  # a bad row: too few pixels
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def app_env(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    runs.mkdir()
    data = write_fer_csv(tmp_path / "fer2013.csv")
    monkeypatch.setenv("FER_RUNS_DIR", str(runs))
    monkeypatch.setenv("FER2013_PATH", str(data))
    monkeypatch.delenv("FER_ICE_SERVERS", raising=False)
    monkeypatch.delenv("FER_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("FER_MAX_LIVE_STREAMS", raising=False)
    monkeypatch.delenv("FER_DB_URL", raising=False)  # the records database: runs/records.sqlite
    monkeypatch.delenv("FER_RETENTION_DAYS", raising=False)
    # The server's live streams, as a fresh server has them (a test's stand-in streams end here).
    from app_lib.live import limit as live_limit

    monkeypatch.setattr(live_limit, "LIVE_STREAMS", live_limit.LiveStreams())
    from fer_core.records import forget_open_records

    with listening_on("127.0.0.1"):  # as `make run`: local only, so every visitor is admin
        yield {"runs": runs, "data": data, "tmp": tmp_path}
    forget_open_records()


@contextlib.contextmanager
def listening_on(address: str):
    """As if the server were started with ``--server.address address``."""
    from streamlit import config as st_config

    old = st_config.get_option("server.address")
    st_config.set_option("server.address", address)
    try:
        yield
    finally:
        st_config.set_option("server.address", old)


def run_page(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def sources(elements) -> str:
    """The elements' Markdown source, escapes included."""
    return "\n".join(str(e.value) for e in elements)


def texts(elements) -> str:
    """The elements' text as a reader sees it (Markdown escapes removed)."""
    return re.sub(r"\\(.)", r"\1", sources(elements))


def _pct(value) -> str:
    return f"{value * 100:.1f}%"


def _path_end_to_end(card: dict, labels: str, detector: str) -> float:
    rows = card["whole_path"][labels]["rows"]
    return next(
        r["end_to_end"]
        for r in rows
        if (r["detector"], r["preset"], r.get("variant", "plain")) == (detector, "photo", "plain")
    )


@pytest.mark.parametrize("detector", ["haar", "blazeface"])
def test_home_shows_crop_and_whole_path_numbers_from_the_card(app_env, detector):
    """Issue 21 items 2 and 9: Home showed the crop accuracy alone (71.2%) while the default
    path (Haar) scored 58.5%; every number now comes from the card, with its split, and the
    whole path follows the detector chosen."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["face_detector"] = detector
    at.run()
    assert_clean(at)
    assert not at.error
    metrics = {m.label: m.value for m in at.metric}
    card = json.loads((ROOT / "models" / "cnn_gru.card.json").read_text())
    split = card["test"]["split"]
    crowd = card["held_out"]["ferplus"]
    assert metrics[f"Agrees with people ({split})"] == _pct(crowd["majority_agreement"])
    path_split = card["whole_path"]["ferplus-majority"]["split"]
    name = {"haar": "Haar", "blazeface": "BlazeFace"}[detector]
    assert metrics[f"Whole path, {name} ({path_split})"] == _pct(
        _path_end_to_end(card, "ferplus-majority", detector)
    )
    shown = texts(at.markdown)
    assert _pct(card["test"]["accuracy"]) in shown  # FER2013's labels, one sentence
    assert _pct(_path_end_to_end(card, "fer2013", detector)) in shown
    assert f"{card['latency']['batch_1']['median_ms']:.2f} ms" == metrics["Latency per face"]
    sidebar = texts(at.sidebar.markdown)
    assert "Active model" in sidebar and "cnn_gru" in sidebar and "shipped default" in sidebar
    side = {m.label: m.value for m in at.sidebar.metric}
    assert side == {
        f"Agrees with people ({split})": _pct(crowd["majority_agreement"]),
        f"FER2013 labels ({split})": _pct(card["test"]["accuracy"]),
    }


@pytest.mark.parametrize(
    "page",
    [
        "app_pages/model.py",
        "app_pages/training.py",
        "app_pages/upload.py",
        "app_pages/dataset.py",
        "app_pages/people.py",
    ],
)
def test_every_page_renders(app_env, page):
    at = run_page(page)
    assert_clean(at)
    assert not at.error, texts(at.error)
    assert "Active model" in texts(at.sidebar.markdown)


def test_home_lists_every_other_page(app_env):
    """Issue 33 item 5: Home's "What you can do here" listed 5 of the pages (no People &
    history). Every page file but Home's own has a link there, with a sentence."""
    at = run_page()
    assert_clean(at)
    linked = {link.proto.page for link in at.get("page_link")}
    files = {f.stem for f in (ROOT / "app_pages").glob("*.py")} - {"home"}
    urls = {PAGES[f"app_pages/{stem}.py"].url for stem in files}
    assert linked == urls, (linked, urls)
    assert "People & history" in {link.proto.label for link in at.get("page_link")}


def test_the_formats_named_are_the_formats_taken(app_env):
    """Issue 33 item 7: the Photos & videos page listed MP4, AVI, MOV, WebM while the uploader
    and ``fer predict`` also take MKV and M4V; every suffix taken is named, on the page and
    on Home, from the one list."""
    names = {FORMAT_NAMES[s] for s in IMAGE_SUFFIXES + VIDEO_SUFFIXES}
    for page in (None, "app_pages/upload.py"):
        at = run_page(page)
        assert_clean(at)
        shown = texts(at.caption)
        assert all(name in shown for name in names), (page, names, shown[:400])


def test_live_page_runs_with_the_camera_off(app_env, monkeypatch):
    """The Live page's script, all of it, under AppTest: streamlit-webrtc's component cannot
    render without a browser, so a stand-in returns a stopped stream and records what the
    page asked for (the browser tests stream for real)."""
    import types

    import streamlit_webrtc

    from app_lib.live.processor import LiveProcessor

    asked = {}

    def stand_in(**kwargs):
        asked.update(kwargs)
        return types.SimpleNamespace(state=types.SimpleNamespace(playing=False, signalling=False))

    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", stand_in)
    at = run_page("app_pages/live.py")
    assert_clean(at)
    assert not at.error, texts(at.error)
    assert [t.value for t in at.title] == ["Live webcam"]
    assert "The camera is off. Press START" in texts(at.info)
    assert isinstance(asked["video_frame_callback"], LiveProcessor)
    assert asked["async_processing"] is True
    assert asked["frontend_rtc_configuration"] == asked["server_rtc_configuration"]
    assert asked["server_rtc_configuration"] == {"iceServers": []}
    assert asked["media_stream_constraints"]["audio"] is False
    assert "Direct connection only" in texts(at.caption)


def test_live_page_names_https_as_the_fix_on_a_plain_http_network_page(app_env, monkeypatch):
    """Issue 25: at http://fer.test:PORT a browser has no camera API, so the page says why
    and what to do instead of offering START (the browser test sees the same in Chromium)."""
    import streamlit_webrtc

    from app_lib.server import secure_context

    def never(**kwargs):
        raise AssertionError("the camera component must not be offered on an insecure page")

    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", never)
    monkeypatch.setattr(
        secure_context,
        "page_security",
        lambda: secure_context.page_security_of({"Host": "fer.test:8501"}, server_tls=False),
    )
    at = run_page("app_pages/live.py")
    assert_clean(at)
    message = texts(at.error)
    assert "The camera cannot work here: this page came over plain HTTP from `fer.test`" in (
        message
    )
    assert "make cert" in message and "FER_TLS_CERT=certs/fer.crt" in message
    assert "Press START" not in texts(at.info)


def test_live_page_says_when_the_stream_never_connects(app_env, monkeypatch):
    """START pressed (an SDP offer sent) but no stream: "Connecting…", then, past the
    patience, that the browser could not reach the server and that a TURN relay is the fix
    (never "Press START" while it tries)."""
    import time
    import types

    import streamlit_webrtc

    from app_lib.live.processor import ICE_PATIENCE_SECONDS

    monkeypatch.setattr(
        streamlit_webrtc,
        "webrtc_streamer",
        lambda **kwargs: types.SimpleNamespace(
            state=types.SimpleNamespace(playing=False, signalling=True)
        ),
    )
    at = run_page("app_pages/live.py")
    assert_clean(at)
    assert "Connecting to the server" in texts(at.info)
    assert "Press START" not in texts(at.info)
    at.session_state["live_connecting_since"] = time.time() - ICE_PATIENCE_SECONDS - 1
    at.run()
    message = texts(at.error)
    assert "the browser could not connect to the server" in message
    assert "FER_ICE_SERVERS" in message and "TURN relay" in message


def test_the_live_page_turns_away_the_stream_beyond_the_limit(app_env, monkeypatch):
    """With one stream already running and FER_MAX_LIVE_STREAMS=1, START in another tab: the
    page asks the component to stop (desired_playing_state False) and says why."""
    import streamlit_webrtc

    from app_lib.live import limit as live_limit

    monkeypatch.setenv("FER_MAX_LIVE_STREAMS", "1")
    streams = live_limit.LIVE_STREAMS  # this test's server (app_env)
    assert streams.frame("another-tab", limit=1, now=time.time() + 3)  # streaming
    asked = []

    def stand_in(**kwargs):
        asked.append(kwargs.get("desired_playing_state"))
        return types.SimpleNamespace(state=types.SimpleNamespace(playing=False, signalling=True))

    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", stand_in)
    try:
        at = run_page("app_pages/live.py")
        assert_clean(at)
        assert asked[-1] is False, asked  # the component is told to stop
        assert "already analysing 1 live stream, its limit" in texts(at.error)
        assert "Connecting to the server" not in texts(at.info)
        assert streams.count() == 1  # the refused tab took no place
    finally:
        streams.release("another-tab")


def test_admin_sign_in_is_not_offered_over_plain_http_on_a_network(app_env, monkeypatch):
    """Issue 25: the password would cross the network in clear text, so there is no field to
    type it into; over HTTPS (here: behind a TLS proxy) the sign-in is offered."""
    from app_lib.server import secure_context

    monkeypatch.setenv("FER_ADMIN_PASSWORD", "s3cret-pass")
    monkeypatch.setattr(
        secure_context,
        "page_security",
        lambda: secure_context.page_security_of({"Host": "10.0.0.5:8501"}, server_tls=False),
    )
    at = run_page()
    assert_clean(at)
    assert not at.sidebar.text_input, "no password field on a plain-HTTP network page"
    assert "Administrator sign-in is off on this page" in texts(at.sidebar.caption)
    monkeypatch.setattr(
        secure_context,
        "page_security",
        lambda: secure_context.page_security_of(
            {"Host": "fer.example.org", "X-Forwarded-Proto": "https"}, server_tls=False
        ),
    )
    at = run_page()
    assert [t.label for t in at.sidebar.text_input] == ["Administrator password"]


def test_no_old_style_pages_folder():
    """A pages/ folder beside app.py makes Streamlit 1.67 run a page file alone (without
    app.py's navigation and sidebar) when the first visit goes to a page URL."""
    folder = ROOT / "pages"
    assert not (folder.is_dir() and any(folder.glob("*.py"))), (
        "keep the app's pages in app_pages/, not pages/ (see app.py)"
    )


def test_active_model_that_fails_falls_back_to_the_shipped_one(app_env):
    broken = app_env["tmp"] / "broken.keras"
    broken.write_bytes(b"this is not a keras file")
    (app_env["runs"] / "active.json").write_text(json.dumps({"model": str(broken)}))
    at = run_page()
    assert_clean(at)
    warning = texts(at.warning)
    assert "broken.keras could not be loaded" in warning and "shipped model" in warning
    assert "shipped default" in texts(at.sidebar.markdown)


def test_model_card_page(app_env):
    at = run_page("app_pages/model.py")
    assert_clean(at)
    labels = {m.label for m in at.metric}
    assert {"Accuracy", "Macro-F1", "One face", "Parameters"} <= labels
    headers = [h.value for h in at.subheader]
    assert any(h.startswith("Confusion matrix") for h in headers)
    assert "What this model cannot do" in headers
    assert "Not for decisions about people" in texts(at.markdown)
    at.toggle(key="cm_normalise").set_value(False).run()
    assert_clean(at)


def test_model_card_shows_calibration_read_from_the_card(app_env):
    card = json.loads((ROOT / "models" / "cnn_gru.card.json").read_text())["calibration"]
    at = run_page("app_pages/model.py")
    assert_clean(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["ECE as trained"] == f"{card['test']['ece_before']:.3f}"
    assert metrics["ECE calibrated"] == f"{card['test']['ece_after']:.3f}"
    assert any(h.value.startswith("Calibration") for h in at.subheader)
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    reliability = [c for c in charts if any("ECE" in (t.get("name") or "") for t in c["data"])]
    assert len(reliability) == 1 and len(reliability[0]["data"]) == 3


def test_upload_photos_each_get_a_result_or_a_message(app_env):
    at = run_page("app_pages/upload.py")
    assert texts(at.info).startswith("Drop photos")
    at.file_uploader[0].set_value(
        [
            ("astronaut.png", png_bytes(skimage.data.astronaut()), "image/png"),
            ("broken.jpg", b"\xff\xd8\xff\xe0 truncated", "image/jpeg"),
            ("wall.png", png_bytes(np.full((120, 160, 3), 200, np.uint8)), "image/png"),
        ]
    )
    at.run()
    assert_clean(at)
    assert "broken.jpg" in texts(at.error) and len(at.error) == 1
    assert "No face found in wall.png" in texts(at.info)
    assert "**#1 happy**" in texts(at.markdown)
    results = at.dataframe[0].value
    assert list(results["label"]) == ["happy"]
    summary = at.dataframe[-1].value  # the all-photos table
    assert list(summary["file"]) == ["astronaut.png", "broken.jpg", "wall.png"]
    assert list(summary["faces"].fillna(-1)) == [1, -1, 0]


def test_upload_video_gives_timeline_and_segments(app_env):
    from fer_core.recognition.video_writer import AnnotatedVideoWriter

    face = cv2.resize(skimage.data.astronaut()[0:255, 60:400], (320, 240))
    writer = AnnotatedVideoWriter(app_env["tmp"] / "clip", fps=10)
    for shift in range(12):
        writer.write(np.roll(face, shift, axis=1))
    path = writer.close()
    at = run_page("app_pages/upload.py")
    at.number_input(key="video_every").set_value(2)
    at.file_uploader[0].set_value([(f"clip{path.suffix}", path.read_bytes(), writer.mime)])
    at.run()
    assert_clean(at)
    assert not at.error, texts(at.error)
    faces, segments = at.dataframe[0].value, at.dataframe[1].value
    assert list(faces["dominant"]) == ["happy"] and faces["frames"].iloc[0] == 6
    assert set(segments["dominant"]) == {"happy"}
    assert len(at.get("plotly_chart")) == 1  # the timeline
    assert "every 2 frames" in texts(at.caption)
    next(b for b in at.button if b.label == "Save to history").click()
    at.run()
    assert_clean(at)
    assert "Saved to history as session #1" in texts(at.caption)


def test_home_follows_the_detector_chosen_on_another_page(app_env):
    """Home draws no detector radio, so Streamlit drops the radio's state there; Home reads
    the copy the radio keeps (seen in the browser: Home showed Haar after BlazeFace was
    chosen on the Photos page)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["_kept_face_detector"] = "blazeface"
    at.run()
    assert_clean(at)
    assert any(m.label.startswith("Whole path, BlazeFace") for m in at.metric)


def test_photo_without_a_face_offers_blazeface_in_one_click(app_env):
    """Issue 21 item 2: Haar missed clear faces and nothing suggested BlazeFace."""
    at = run_page("app_pages/upload.py")
    assert at.sidebar.radio(key="face_detector").value == "haar"
    blank = np.full((240, 320, 3), 128, np.uint8)
    at.file_uploader[0].set_value([("wall.png", png_bytes(blank), "image/png")])
    at.run()
    assert_clean(at)
    assert "or BlazeFace" in texts(at.info)
    offer = [b for b in at.button if b.label == "Try BlazeFace"]
    assert len(offer) == 1
    offer[0].click().run()
    assert_clean(at)
    assert at.sidebar.radio(key="face_detector").value == "blazeface"
    assert not [b for b in at.button if b.label == "Try BlazeFace"]  # offered under Haar only


def test_live_offer_waits_until_haar_has_missed_for_a_few_seconds():
    from app_lib.ui.detector import MISS_SECONDS, missing_for

    clock: dict = {}
    assert missing_for(clock, False, "haar", 100.0) == 0.0  # the clock starts
    assert missing_for(clock, False, "haar", 100.0 + MISS_SECONDS) >= MISS_SECONDS
    assert missing_for(clock, True, "haar", 104.0) == 0.0  # a face: the clock restarts
    assert missing_for(clock, False, "haar", 105.0) == 1.0
    assert missing_for(clock, False, "blazeface", 110.0) == 0.0  # another detector: afresh


def test_dataset_page_on_generated_data(app_env):
    at = run_page("app_pages/dataset.py")
    assert_clean(at)
    assert not at.error, texts(at.error)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == f"{3 * 7 * 3 + 2}"
    # Computed from the data shown, never FER2013's figures: this data is nearly even.
    assert "about even in this data" in texts(at.caption), texts(at.caption)
    assert metrics["Rows skipped"] == "1"
    assert metrics["All-black images"] == "1"
    assert metrics["Duplicate groups"] == "1"
    assert metrics["Across splits"] == "1" and metrics["Conflicting labels"] == "1"
    at.selectbox(key="sample_flag").set_value("conflicting labels").run()
    assert_clean(at)
    assert "2 images match." in texts(at.caption)


def test_dataset_page_shows_where_fer2013_and_the_crowd_disagree(app_env, monkeypatch):
    """Issue 23: FER+'s votes, read from FERPLUS_PATH and checked against the loaded
    FER2013, give the crowd tab its counts and its examples."""
    from tests.data.test_ferplus import write_votes

    rows = app_env["data"].read_text().splitlines()[1:]
    usage = [row.rsplit(",", 1)[1] for row in rows]
    labels = [int(row.split(",", 1)[0]) for row in rows]
    column = [4, 5, 6, 1, 3, 2, 0]
    votes = []
    for i, label in enumerate(labels):
        vote = [0] * 10
        # Every third face: the crowd says neutral; the others: FER2013's label, 8 of 10.
        vote[0 if i % 3 == 0 else column[label]] += 8
        vote[8] += 2
        votes.append(vote)
    monkeypatch.setenv("FERPLUS_PATH", str(write_votes(app_env["tmp"] / "v.csv", usage, votes)))
    at = run_page("app_pages/dataset.py")
    assert_clean(at)
    assert not at.error, texts(at.error)
    table = at.dataframe[-1].value
    public = table[table["split"] == "PublicTest"].iloc[0]
    assert public["faces"] == "21" and public["clear majority"] == "21"
    expected = sum(
        1 for i, u in enumerate(usage) if u == "PublicTest" and (i % 3 != 0 or labels[i] == 6)
    )
    assert public["FER2013 label = majority"].startswith(f"{expected:,} ")
    at.selectbox(key="crowd_split").set_value("PublicTest").run()
    at.selectbox(key="crowd_fer_class").set_value("angry").run()
    at.selectbox(key="crowd_crowd_class").set_value("neutral").run()
    assert_clean(at)
    wanted = sum(
        1 for i, u in enumerate(usage) if u == "PublicTest" and labels[i] == 0 and i % 3 == 0
    )
    assert f"{wanted:,} PublicTest faces labelled angry by FER2013 and neutral" in texts(at.caption)
    # A FER+ file that describes other rows is refused with a message, never a traceback:
    # the server's (FERPLUS_PATH) as a warning (it was given for another dataset than the one
    # loaded), one typed on the page as an error.
    other = write_votes(app_env["tmp"] / "w.csv", usage[:5], votes[:5])
    monkeypatch.setenv("FERPLUS_PATH", str(other))
    at = run_page("app_pages/dataset.py")
    assert_clean(at)
    assert not at.error, texts(at.error)
    assert "not the same release" in texts(at.warning) and "FERPLUS_PATH" in texts(at.warning)
    monkeypatch.setenv("FER_DATA_DIRS", str(app_env["tmp"]))
    monkeypatch.delenv("FERPLUS_PATH")
    at = run_page("app_pages/dataset.py")
    at.text_input(key="ferplus_path_input").set_value(str(other)).run()
    assert_clean(at)
    assert "not the same release" in texts(at.error)
    assert str(app_env["tmp"]) not in texts(at.error)


def test_dataset_page_reports_a_bad_path(app_env, monkeypatch):
    monkeypatch.setenv("FER_DATA_DIRS", str(app_env["tmp"]))  # typed paths must lie in here
    at = run_page("app_pages/dataset.py")
    at.text_input(key="dataset_path_input").set_value(str(app_env["tmp"] / "nope.csv")).run()
    assert_clean(at)
    assert "nope.csv in the data folder does not exist" in texts(at.error)
    not_csv = app_env["tmp"] / "notes.csv"
    not_csv.write_text("hello,world\n1,2\n")
    at.text_input(key="dataset_path_input").set_value(str(not_csv)).run()
    assert_clean(at)
    assert "does not start with FER2013's header line" in texts(at.error).replace("\\", "")


@pytest.mark.real_data
@pytest.mark.skipif(
    not REAL_FER2013, reason="FER2013_PATH is not set: the real-data page check needs FER2013"
)
def test_dataset_page_on_the_real_fer2013(app_env, monkeypatch):
    monkeypatch.setenv("FER_DATA_DIRS", str(Path(REAL_FER2013).resolve().parent))
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page("app_pages/dataset.py")
    at.run()
    at.text_input(key="dataset_path_input").set_value(REAL_FER2013).run()
    assert_clean(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == "35,887" and metrics["Rows skipped"] == "0"
    assert metrics["All-black images"] == "12" and metrics["Duplicate groups"] == "1,516"
    assert metrics["Across splits"] == "557" and metrics["Conflicting labels"] == "57"
    assert "far from balanced in this data: happy is 25.0% of the images and disgust 1.5%" in texts(
        at.caption
    ), texts(at.caption)


def fake_finished_run(runs: Path, name: str) -> Path:
    folder = runs / name
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "architecture": "mini_xception",
                "epochs": 2,
                "batch_size": 32,
                "learning_rate": 0.002,
                "train_subset": 500,
                "validation_subset": 100,
            }
        )
    )
    (folder / "history.csv").write_text(
        "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds\n"
        "1,1.9,0.25,1.85,0.27,0.001,10.5\n2,1.8,0.30,1.80,0.31,0.002,10.1\n"
    )
    (folder / "state.json").write_text(
        json.dumps(
            {
                "epochs_done": 2,
                "epochs": 2,
                "best_val_accuracy": 0.31,
                "best_epoch": 2,
                "status": "finished",
                "updated": time.time(),
            }
        )
    )
    (folder / "metrics.json").write_text(
        json.dumps({"split": "PublicTest", "accuracy": 0.31, "macro_f1": 0.12})
    )
    (folder / "evaluation.json").write_text(
        json.dumps(
            {
                "split": "PublicTest",
                "n": 100,
                "accuracy": 0.3,
                "macro_f1": 0.11,
                "per_class": {
                    "happy": {"precision": 0.5, "recall": 0.6, "f1": 0.55, "support": 30}
                },
            }
        )
    )
    return folder


def test_training_page_lists_runs_and_validates_the_form(app_env):
    fake_finished_run(app_env["runs"], "finished-run")
    at = run_page("app_pages/training.py")
    assert_clean(at)
    assert not at.error, texts(at.error)
    table = at.dataframe[0].value
    assert list(table["run"]) == ["finished-run"] and list(table["status"]) == ["finished"]
    assert "Evaluation on PublicTest" in texts(at.markdown)
    assert len(at.get("plotly_chart")) == 1  # the loss/accuracy chart
    # A run name that could leave the runs folder is refused with a message.
    name_box = [t for t in at.text_input if t.label == "Run name"][0]
    name_box.set_value("../outside")
    [b for b in at.button if b.label == "Start training"][0].click()
    at.run()
    assert_clean(at)
    assert "is not allowed" in texts(at.error)
    assert not (app_env["runs"].parent / "outside").exists()


def _polling(st, polled):
    """A stand-in for ``st.fragment`` that records what the page polls (with its args)."""
    real_fragment = st.fragment

    def fragment(func=None, *, run_every=None):
        if func is None:
            return lambda f: fragment(f, run_every=run_every)
        wrapped = real_fragment(func, run_every=run_every)
        if not run_every:
            return wrapped

        def call(*args, **kwargs):
            polled[func.__name__] = lambda: func(*args, **kwargs)
            return wrapped(*args, **kwargs)

        return call

    return fragment


def test_the_run_selector_follows_a_run_that_ends_while_another_is_shown(app_env):
    """Issue item 8: the run selector kept "(starting)" after that run had ended, when
    another run was shown below it, and missing values showed as the text None. The table,
    the picker and the panel are polled together while a run is busy."""
    import streamlit as st

    from app_lib.training.run_watch import busy_runs, changed_runs
    from fer_core.service.status import evaluation_status, run_status
    from fer_core.training.runs import TRAIN_JOB
    from tests.processes import stand_in

    polled, reruns = {}, []
    fake_finished_run(app_env["runs"], "finished-run")
    new = app_env["runs"] / "new-run"
    new.mkdir()
    (new / "config.json").write_text(json.dumps({"architecture": "cnn_gru", "epochs": 3}))
    process = stand_in("-m", "fer_core", "train", "--run", str(new))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(st, "fragment", _polling(st, polled))
        try:
            (new / TRAIN_JOB).write_text(json.dumps({"pid": process.pid, "started": time.time()}))
            at = run_page("app_pages/training.py")
            at.selectbox(key="run_choice").set_value("finished-run").run()
            assert_clean(at)
            assert "new-run (starting)" in at.selectbox(key="run_choice").options
            table = at.dataframe[0]
            assert table.proto.placeholder == "—"  # not "None"
            new_row = table.value[table.value["run"] == "new-run"].iloc[0]
            assert new_row["status"] == "starting: loading the data"
            assert pd_isna(new_row["best val acc"]) and pd_isna(new_row["val macro-F1"])
            section = polled["runs_section"]  # polled although the run shown is finished
            patch.setattr(st, "rerun", lambda *args, **kwargs: reruns.append(args))
            section()
            assert reruns == []  # nothing changed yet
        finally:
            process.kill()
            process.wait()
        section()
        assert len(reruns) >= 1  # the run ended: the page is drawn again...
    at.run()
    assert_clean(at)
    assert "new-run (failed)" in at.selectbox(key="run_choice").options  # ...and says so
    # The statuses as drawn while it was starting; read again, it has failed.
    statuses = {"new-run": dataclasses.replace(run_status(new), phase="starting")}
    assert busy_runs(statuses, {"new-run": evaluation_status(new)}) == {
        "new-run": ("starting", "none")
    }
    assert changed_runs({"new-run": ("starting", "none")}, statuses) == ["new-run"]


@pytest.mark.parametrize(
    "state, progress, activity",
    [
        (  # issue 33 item 3: the panel said "epoch 1/10", the table "0/10", the picker "starting"
            "running",
            {"epoch": 1, "batch": 5, "steps": 40, "stage": "training"},
            "training · epoch 1/3, batch 5/40",
        ),
        (
            "running",
            {"epoch": 2, "batch": 40, "steps": 40, "stage": "validating"},
            "training · epoch 2/3: validating",
        ),
        # after its last epoch it said "starting (loading data)" while it recalibrated
        (
            "finished",
            {"epoch": 3, "batch": 40, "steps": 40, "stage": "recalibrating"},
            "finishing: recalibrating batch norm",
        ),
    ],
)
def test_the_table_the_picker_and_the_panel_say_one_thing(app_env, state, progress, activity):
    """Issue 33 item 3: one reading of a run, the same words in the runs table, the run picker
    (its phase) and the run's panel, for each thing the run really does."""
    from fer_core.training.runs import TRAIN_JOB
    from tests.processes import stand_in

    run = app_env["runs"] / "busy-run"
    run.mkdir()
    now = time.time()
    (run / "config.json").write_text(json.dumps({"architecture": "cnn_gru", "epochs": 3}))
    (run / "state.json").write_text(
        json.dumps(
            {
                "status": state,
                "epochs_done": progress["epoch"] - 1,
                "epochs": 3,
                "updated": now,
                "best_val_accuracy": 0.5,
                "best_epoch": 1,
            }
        )
    )
    (run / "progress.json").write_text(
        json.dumps({**progress, "epochs": 3, "epoch_started": now - 5, "updated": now})
    )
    process = stand_in("-m", "fer_core", "train", "--run", str(run))
    try:
        (run / TRAIN_JOB).write_text(json.dumps({"pid": process.pid, "started": now - 60}))
        at = run_page("app_pages/training.py")
        assert_clean(at)
        phase = activity.split(" ")[0].rstrip(":")
        assert at.selectbox(key="run_choice").value == "busy-run"
        assert f"busy-run ({phase})" in at.selectbox(key="run_choice").options
        assert list(at.dataframe[0].value["status"]) == [activity]
        assert activity in texts(at.markdown)  # the panel's heading
        # not offered to the app while its process runs
        use = [b for b in at.button if b.label == "Use in the app"]
        assert not use or use[0].disabled
    finally:
        process.kill()
        process.wait()


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def runs_started(monkeypatch) -> list:
    """The Training page's Start training, recorded instead of started: the TrainConfig of
    every run it starts is appended to the list returned."""
    import fer_core.service.jobs

    started: list = []
    monkeypatch.setattr(
        fer_core.service.jobs,
        "start_training",
        lambda config, **kwargs: started.append(config) or {"pid": 0},
    )
    return started


def _button(at, label):
    return [b for b in at.button if b.label == label][0]


def test_training_page_trains_on_the_crowds_labels(app_env, monkeypatch):
    """Issue 23: the new-run form offers FER+'s labels and the whole-path augmentation; without
    FERPLUS_PATH, choosing the crowd says what to do instead of starting a run."""
    started = runs_started(monkeypatch)
    monkeypatch.delenv("FERPLUS_PATH", raising=False)
    at = run_page("app_pages/training.py")
    [s for s in at.selectbox if s.label == "Labels to learn"][0].set_value("ferplus-votes")
    _button(at, "Start training").click()
    at.run()
    assert_clean(at)
    assert "FERPLUS_PATH" in texts(at.error) and not started
    votes = app_env["tmp"] / "fer2013new.csv"
    votes.write_text("stands in for the file\n")
    monkeypatch.setenv("FERPLUS_PATH", str(votes))
    at = run_page("app_pages/training.py")
    [s for s in at.selectbox if s.label == "Labels to learn"][0].set_value("ferplus-votes")
    [c for c in at.checkbox if c.label == "Augment for the whole path"][0].check()
    _button(at, "Start training").click()
    at.run()
    assert_clean(at)
    assert not at.error, texts(at.error)
    (config,) = started
    assert (config.labels, config.ferplus_path, config.path_augment) == (
        "ferplus-votes",
        str(votes),
        True,
    )


def test_the_default_new_run_fine_tunes_the_shipped_model_and_says_how_long(app_env, monkeypatch):
    """Issue 33 item 4: the default form (3 epochs on 2,000 images from random weights) made
    a model at chance (13.8%), in a time nobody was told. The defaults fine-tune the shipped
    model with the labels and augmentation it was trained with, on all of Training, at a
    fine-tuning rate without warm-up; the time an epoch takes here is said before Start,
    from a run measured on this machine (or that there is no estimate yet)."""
    from fer_core.models.card import read_card
    from fer_core.models.inference import DEFAULT_MODEL

    votes = app_env["tmp"] / "fer2013new.csv"
    votes.write_text("stands in for the file\n")
    monkeypatch.setenv("FERPLUS_PATH", str(votes))
    started = runs_started(monkeypatch)
    at = run_page("app_pages/training.py")
    assert_clean(at)
    assert "no time estimate" in texts(at.caption)
    _button(at, "Start training").click()
    at.run()
    assert_clean(at)
    assert not at.error, texts(at.error)
    (config,) = started
    shipped = read_card(DEFAULT_MODEL).training["config"]
    assert config.init_from == str(DEFAULT_MODEL) and config.warmup_epochs == 0
    assert (config.labels, config.path_augment) == (shipped["labels"], shipped["path_augment"])
    assert (config.epochs, config.learning_rate) == (2, 3e-4)
    assert config.train_subset is None and config.validation_subset is None

    # a run measured here: 10.3 s an epoch (median) over 500 images
    folder = fake_finished_run(app_env["runs"], "measured")
    state = json.loads((folder / "state.json").read_text())
    state["data"] = {"training_images": 500}
    (folder / "state.json").write_text(json.dumps(state))
    at = run_page("app_pages/training.py")
    shown = texts(at.caption)
    per_epoch = 10.5 / 500 * 28_709  # the median of 10.1 and 10.5 is the later one
    assert f"about {duration(per_epoch)} for mini_xception (measured by run measured)" in shown
    assert f"2 epochs, about {duration(2 * per_epoch)} (mini_xception)" in shown


def test_use_in_the_app_says_how_the_run_compares(app_env):
    """Issue 33 item 4: "Use in the app" is offered for a run that has ended, with how it
    compares with the model in use."""
    folder = fake_finished_run(app_env["runs"], "finished-run")
    (folder / "best.keras").write_bytes(b"stands in for a model file")
    at = run_page("app_pages/training.py")
    assert_clean(at)
    use = [b for b in at.button if b.label == "Use in the app"][0]
    assert not use.disabled
    said = texts(at.caption)
    assert "Against the app's model: finished-run," in said and "in use, cnn_gru" in said


def test_training_page_fine_tunes_and_distils_from_models_it_lists(app_env, monkeypatch):
    """The new-run form offers the shipped model and every run's best model to start from and
    to distil from, by name: the files it passes on are the server's own, and a run cannot
    start from another architecture's weights."""
    from fer_core.models.inference import DEFAULT_MODEL

    folder = fake_finished_run(app_env["runs"], "finished-run")  # a mini_xception run
    (folder / "best.keras").write_bytes(b"stands in for a model file")
    started = runs_started(monkeypatch)
    at = run_page("app_pages/training.py")
    assert_clean(at)
    start_from = [s for s in at.selectbox if s.label == "Start from"][0]
    teachers = [m for m in at.multiselect if m.label == "Distil from (teachers)"][0]
    assert set(teachers.options) >= {
        f"the shipped model ({DEFAULT_MODEL.stem})",
        "run finished-run (mini_xception, val 31.0%)",
    }
    # cnn_gru (the default architecture) cannot start from the mini_xception run's weights.
    start_from.set_value("run:finished-run")
    _button(at, "Start training").click()
    at.run()
    assert_clean(at)
    assert "cannot start from its weights" in texts(at.error) and not started
    # From the shipped model, distilled from the run, with CutMix.
    start_from = [s for s in at.selectbox if s.label == "Start from"][0]
    start_from.set_value("shipped")
    [m for m in at.multiselect if m.label == "Distil from (teachers)"][0].set_value(
        ["run:finished-run"]
    )
    [s for s in at.selectbox if s.label == "Image mixing"][0].set_value("cutmix")
    [n for n in at.number_input if n.label == "Teacher weight"][0].set_value(0.5)
    _button(at, "Start training").click()
    at.run()
    assert_clean(at)
    assert not at.error, texts(at.error)
    (config,) = started
    assert config.init_from == str(DEFAULT_MODEL)
    assert config.teacher == [str(folder / "best.keras")]
    assert (config.mix, config.distill_weight) == ("cutmix", 0.5)


def test_a_visitor_who_is_not_admin_cannot_change_what_everyone_sees(app_env, monkeypatch):
    """With an administrator password set, a visitor who has not signed in cannot start,
    stop or resume a run, read its log, or switch the model for everyone; after signing in
    with the right password (and only then) they can."""
    fake_finished_run(app_env["runs"], "finished-run")
    monkeypatch.setenv("FER_ADMIN_PASSWORD", "s3cret-for-tests")
    with listening_on("0.0.0.0"):
        at = run_page("app_pages/training.py")
        assert_clean(at)
        assert "Only an administrator can do this" in texts(at.info)
        assert _button(at, "Start training").disabled
        assert not [e for e in at.expander if e.label == "Settings and log"]
        assert not at.code or "epoch" not in texts(at.code)  # no log
        # A wrong password changes nothing; the right one signs this session in.
        at.sidebar.text_input[0].set_value("wrong")
        at.sidebar.button[0].click()
        at.run()
        assert "Wrong password" in texts(at.sidebar.error)
        assert _button(at, "Start training").disabled
        at.sidebar.text_input[0].set_value("s3cret-for-tests")
        at.sidebar.button[0].click()
        at.run()
        assert_clean(at)
        assert not _button(at, "Start training").disabled
        assert [e for e in at.expander if e.label == "Settings and log"]
    # A run that is training: a visitor who is not signed in cannot stop it.
    from fer_core.service.jobs import process_alive, start_training
    from fer_core.training.config import TrainConfig
    from tests.service.test_jobs import SLEEPER, _kill

    job = start_training(
        TrainConfig(data_path=str(app_env["data"]), runs_dir=str(app_env["runs"]), run_name="busy"),
        python=SLEEPER,
    )
    try:
        with listening_on("0.0.0.0"):
            at = run_page("app_pages/training.py")
            at.selectbox(key="run_choice").set_value("busy").run()
            assert_clean(at)
            assert _button(at, "Stop").disabled
            assert process_alive(job["pid"])
    finally:
        _kill(job["pid"])
    # Listening on a network address with no password: nobody is administrator.
    monkeypatch.delenv("FER_ADMIN_PASSWORD")
    with listening_on("0.0.0.0"):
        at = run_page("app_pages/training.py")
        assert_clean(at)
        assert "this server has none" in texts(at.info)
        assert _button(at, "Start training").disabled


def test_a_model_chosen_for_one_session_is_not_seen_by_another(app_env):
    """A visitor's own model choice stays in their session: everyone else keeps the model the
    administrator chose (here the shipped one)."""
    from fer_core.models.inference import DEFAULT_MODEL

    copy = app_env["tmp"] / "mine" / "mine.keras"
    copy.parent.mkdir()
    for suffix in (".keras", ".tflite"):
        copy.with_suffix(suffix).write_bytes(DEFAULT_MODEL.with_suffix(suffix).read_bytes())
    mine = AppTest.from_file(APP, default_timeout=TIMEOUT)
    mine.session_state["fer_session_model"] = str(copy)
    mine.run()
    assert_clean(mine)
    assert "chosen for this session" in texts(mine.sidebar.markdown)
    other = run_page()
    assert "shipped default" in texts(other.sidebar.markdown)
    assert not (app_env["runs"] / "active.json").exists()


@pytest.mark.slow
def test_upload_a_photo_of_30_faces_drop_boxes_and_explain(app_env):
    """Bug 1: 25 or more faces crashed the page (Plotly's vertical_spacing); the other photos,
    the summary and the downloads then never rendered."""
    from tests.synthetic_media import crowd

    at = run_page("app_pages/upload.py")
    at.file_uploader[0].set_value(
        [
            ("crowd.png", png_bytes(crowd()), "image/png"),
            ("astronaut.png", png_bytes(skimage.data.astronaut()), "image/png"),
        ]
    )
    at.run()
    assert_clean(at)
    assert "#30 happy" in texts(at.markdown)
    found = int(at.dataframe[0].value["faces"].iloc[0])  # 30, and any box the detector adds
    assert found >= 30 and len(at.dataframe[0].value) == found
    assert len(at.get("plotly_chart")) == found + 1  # a panel per face, both photos
    assert list(at.dataframe[-1].value["file"]) == ["crowd.png", "astronaut.png"]
    drop = at.multiselect[0]
    drop.set_value([2, 30]).run()
    assert_clean(at)
    assert len(at.dataframe[0].value) == found - 2
    labels = texts(at.markdown)
    assert not re.search(r"#2 |#30 ", labels) and "#29 happy" in labels
    assert sorted(set(at.dataframe[0].value["faces"])) == [found - 2]
    captions = [c for image in at.get("image") for c in image.captions]
    assert any(f"{found - 2} faces (2 dropped)" in c for c in captions), captions
    at.toggle[0].set_value(True).run()
    assert_clean(at)
    assert "occlusion sensitivity" in texts(at.caption)
    captions = [c for image in at.get("image") for c in image.captions]
    assert "#1 crop" in captions and "#1 happy" in captions and "#29 crop" in captions
    assert "#2 crop" not in captions  # a dropped box is not explained
    # Dropped boxes stay dropped after a visit to another page.
    at.switch_page("app_pages/model.py")
    at.run()
    at.switch_page("app_pages/upload.py")
    at.run()
    assert_clean(at)
    assert len(at.dataframe[0].value) == found - 2 and at.multiselect[0].value == [2, 30]


@pytest.fixture
def media_files(monkeypatch):
    """The last run's media file manager: what a download button hands the browser."""
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.testing.v1 import app_test

    managers = []

    class Recorded(MediaFileManager):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            managers.append(self)

    monkeypatch.setattr(app_test, "MediaFileManager", Recorded)
    return managers


def downloaded(managers, at: AppTest, key: str) -> bytes:
    """The bytes a click on download button ``key`` gives (made then, for a deferred one)."""
    proto = [b for b in at.get("download_button") if b.proto.id.endswith(key)][0].proto
    url = (
        managers[-1].execute_deferred(proto.deferred_file_id)
        if proto.deferred_file_id
        else proto.url
    )
    return managers[-1].read_file(url.rsplit("/", 1)[-1]).content


def test_dropped_boxes_leave_every_download(app_env, media_files):
    """Issue item 3: "All results JSON" still held the dropped boxes and the photo's JSON
    said ``faces: 3`` after a drop, although the page says they leave every download."""
    from app_lib.uploads.analysis import analyze_photo, annotated_png, photo_recognizer
    from tests.synthetic_media import crowd

    three = png_bytes(crowd(1, 3))
    at = run_page("app_pages/upload.py")
    at.file_uploader[0].set_value(
        [
            ("three.png", three, "image/png"),
            ("astronaut.png", png_bytes(skimage.data.astronaut()), "image/png"),
        ]
    )
    at.run()
    at.multiselect[0].set_value([2]).run()
    assert_clean(at)
    photo = json.loads(downloaded(media_files, at, "json-" + at.multiselect[0].key[5:]))
    assert [f["face"] for f in photo["faces"]] == [1, 3] and photo["dropped"] == [2]
    assert {f["faces"] for f in photo["faces"]} == {2}
    every = json.loads(downloaded(media_files, at, "all-json"))
    assert [f["face"] for f in every[0]["faces"]] == [1, 3] and every[0]["dropped"] == [2]
    assert {f["faces"] for f in every[0]["faces"]} == {2}
    assert [f["face"] for f in every[1]["faces"]] == [1]
    import pandas as pd

    table = pd.read_csv(io.BytesIO(downloaded(media_files, at, "all-csv")))
    assert list(table.loc[table["file"] == "three.png", "face"]) == [1, 3]
    assert set(table.loc[table["file"] == "three.png", "faces"]) == {2}
    png = downloaded(media_files, at, "png-" + at.multiselect[0].key[5:])
    card = json.loads((ROOT / "models" / "cnn_gru.card.json").read_text())
    kept = analyze_photo(three, "three.png", photo_recognizer(None)).kept([2])
    assert png == annotated_png(three, kept, card["calibration"]["uncertain_below"])


def test_upload_labels_an_unsure_face_uncertain(app_env):
    from tests.synthetic_media import unsure_face

    at = run_page("app_pages/upload.py")
    at.file_uploader[0].set_value([("unsure.png", png_bytes(unsure_face()), "image/png")])
    at.run()
    assert_clean(at)
    assert re.search(r"\*\*#1 uncertain: [a-z]+/[a-z]+\*\*", texts(at.markdown))
    card = json.loads((ROOT / "models" / "cnn_gru.card.json").read_text())
    threshold = card["calibration"]["uncertain_below"]
    assert f"below {threshold * 100:.0f}%" in texts(at.caption)  # the card's threshold
    assert list(at.dataframe[0].value["uncertain"]) == [True]
    at.file_uploader[0].set_value(
        [
            ("unsure.png", png_bytes(unsure_face()), "image/png"),
            ("astronaut.png", png_bytes(skimage.data.astronaut()), "image/png"),
        ]
    )
    at.run()
    summary = at.dataframe[-1].value
    assert [label.split(":")[0] for label in summary["labels"]] == ["uncertain", "happy"]


@pytest.mark.slow
def test_activating_a_worse_model_asks_first_and_shows_both_numbers(app_env):
    """Bug 10: one click replaced the 69% model with an 18% one, with no warning."""
    from fer_core.models.architectures import build_model, save_keras_model
    from fer_core.service.active import get_active_model

    run = fake_finished_run(app_env["runs"], "weak-run")
    save_keras_model(build_model("mini_xception"), run / "best.keras")
    shipped = json.loads((ROOT / "models" / "cnn_gru.card.json").read_text())["selection"]
    at = run_page("app_pages/training.py")
    _button(at, "Use in the app").click()
    at.run()
    assert_clean(at)
    warning = texts(at.warning)
    assert "weak-run: 30.0% on PublicTest (its evaluation), 100 images" in warning
    assert f"{shipped['accuracy_flip_average'] * 100:.1f}% on PublicTest" in warning
    assert get_active_model(app_env["runs"]) is None  # nothing switched yet
    _button(at, "Keep the current model").click()
    at.run()
    assert not at.warning and get_active_model(app_env["runs"]) is None
    _button(at, "Use in the app").click()
    at.run()
    _button(at, "Use it anyway").click()
    at.run()
    assert_clean(at)
    assert get_active_model(app_env["runs"]).parent == run / "export"


def test_photo_results_survive_going_to_another_page_and_back(app_env):
    at = run_page("app_pages/upload.py")
    at.file_uploader[0].set_value(
        [("astronaut.png", png_bytes(skimage.data.astronaut()), "image/png")]
    )
    at.run()
    assert "**#1 happy**" in texts(at.markdown)
    at.switch_page("app_pages/model.py")
    at.run()
    at.switch_page("app_pages/upload.py")
    at.run()
    assert_clean(at)
    assert "**#1 happy**" in texts(at.markdown)
    assert "This tab holds 1 file (0.4 MB of 600 MB)" in texts(at.caption)
    _button(at, "Clear all").click()
    at.run()
    assert texts(at.info).startswith("Drop photos")


def test_uploads_are_added_kept_on_disk_and_removed_one_by_one(app_env):
    """Issue 24: each upload is stored on disk and the uploader emptied (Streamlit's copy in
    memory is released); more uploads add to the tab's files; Remove deletes one file."""
    from app_lib.uploads.session_files import upload_root

    at = run_page("app_pages/upload.py")
    at.file_uploader[0].set_value(
        [("astronaut.png", png_bytes(skimage.data.astronaut()), "image/png")]
    )
    at.run()
    assert at.file_uploader[0].key != "upload_files"  # a new, empty uploader
    # ...and the old one's value, which held the file's bytes, is gone (issue 34 item 1)
    assert "upload_files" not in at.session_state
    at.file_uploader[0].set_value(
        [("wall.png", png_bytes(np.full((120, 160, 3), 200, np.uint8)), "image/png")]
    )
    at.run()
    assert_clean(at)
    uploaders = [key for key in at.session_state if key.startswith("upload_files")]
    assert uploaders == [at.file_uploader[0].key] and not at.file_uploader[0].value
    assert [h.value for h in at.subheader][:2] == ["astronaut.png", "wall.png"]
    assert "This tab holds 2 files" in texts(at.caption)
    stored = at.session_state["stored_uploads"]
    assert [item.name for item in stored] == ["astronaut.png", "wall.png"]
    assert all(item.path.is_file() and upload_root() in item.path.parents for item in stored)
    _button(at, "Remove").click()  # the first file's
    at.run()
    assert_clean(at)
    assert [item.name for item in at.session_state["stored_uploads"]] == ["wall.png"]
    assert not stored[0].path.exists() and stored[1].path.exists()
    assert "This tab holds 1 file" in texts(at.caption)


def test_a_video_analysis_can_be_cancelled_and_started_again(app_env):
    from fer_core.recognition.video_writer import AnnotatedVideoWriter

    face = cv2.resize(skimage.data.astronaut()[0:255, 60:400], (320, 240))
    writer = AnnotatedVideoWriter(app_env["tmp"] / "clip", fps=10)
    for shift in range(6):
        writer.write(np.roll(face, shift, axis=1))
    path = writer.close()
    at = run_page("app_pages/upload.py")
    at.file_uploader[0].set_value([(f"clip{path.suffix}", path.read_bytes(), writer.mime)])
    at.run()
    assert_clean(at)
    # Pressing Cancel while it runs: Streamlit reruns with the button's callback done.
    key = next(iter(at.session_state["video_results"]))
    at.session_state["video_results"] = {}
    at.session_state["video_cancelled"] = {key}
    at.run()
    assert_clean(at)
    assert "Analysis cancelled." in texts(at.info)
    assert not at.dataframe
    _button(at, "Analyse it").click()
    at.run()
    assert_clean(at)
    assert list(at.dataframe[0].value["dominant"]) == ["happy"]


def test_a_new_tab_keeps_the_dataset_an_administrator_chose(app_env, monkeypatch):
    """Bug 9: in a new browser tab the Training page's buttons stayed disabled until the
    dataset path was typed again."""
    monkeypatch.setenv("FER_DATA_DIRS", str(app_env["tmp"]))
    monkeypatch.delenv("FER2013_PATH")
    at = run_page("app_pages/training.py")
    assert _button(at, "Start training").disabled  # no dataset known yet
    at = run_page("app_pages/dataset.py")
    at.text_input(key="dataset_path_input").set_value(str(app_env["data"])).run()
    assert_clean(at)
    new_tab = run_page("app_pages/training.py")  # a new session
    assert_clean(new_tab)
    assert not _button(new_tab, "Start training").disabled
    assert str(app_env["data"]) in texts(new_tab.code)
    # A visitor who is not administrator changes only their own tab.
    other = app_env["tmp"] / "other.csv"
    other.write_bytes(app_env["data"].read_bytes())
    monkeypatch.setenv("FER_ADMIN_PASSWORD", "s3cret-for-tests")
    with listening_on("0.0.0.0"):
        visitor = run_page("app_pages/dataset.py")
        visitor.text_input(key="dataset_path_input").set_value(str(other)).run()
    monkeypatch.delenv("FER_ADMIN_PASSWORD")
    assert str(other) not in texts(run_page("app_pages/training.py").code)


@pytest.mark.timeout(120)
def test_a_running_evaluation_shows_progress_and_can_be_cancelled(app_env):
    """Bug 6: Evaluate ran 166 s with no progress; now its stage, share done and time left
    show, and Cancel ends it."""

    from fer_core.training.runs import EVAL_JOB, EVAL_PROGRESS

    run = fake_finished_run(app_env["runs"], "evaluating-run")
    (run / "evaluation.json").unlink()
    (run / "best.keras").write_bytes(b"x")
    from tests.processes import stand_in

    sleeper = stand_in("-m", "fer_core", "evaluate", start_new_session=True)
    try:
        (run / EVAL_JOB).write_text(
            json.dumps({"kind": "evaluate", "pid": sleeper.pid, "started": time.time() - 30})
        )
        # As `fer evaluate --progress` writes it.
        (run / EVAL_PROGRESS).write_text(
            json.dumps(
                {
                    "stage": "evaluating on PublicTest",
                    "fraction": 0.5,
                    "message": "1,792/3,589 images",
                    "updated": time.time(),
                }
            )
        )
        at = run_page("app_pages/training.py")
        assert_clean(at)
        bars = [p for p in at.get("progress") if "Evaluating on PublicTest" in p.proto.text]
        assert bars and "evaluating on PublicTest: 50.0%  1,792/3,589 images" in bars[0].proto.text
        assert "ETA" in bars[0].proto.text
        _button(at, "Cancel the evaluation").click()
        at.run()
        sleeper.wait(timeout=10)
        at.run()
        assert_clean(at)
        assert "The evaluation was cancelled" in texts(at.info)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_photos_page_switches_the_face_detector(app_env):
    at = run_page("app_pages/upload.py")
    radio = at.sidebar.radio(key="face_detector")
    assert radio.value == "haar" and list(radio.options) == [
        "Haar cascade (OpenCV)",
        "BlazeFace (MediaPipe)",
    ]
    radio.set_value("blazeface")
    at.file_uploader[0].set_value(
        [("astronaut.png", png_bytes(skimage.data.astronaut()), "image/png")]
    )
    at.run()
    assert_clean(at)
    assert "**#1 happy**" in texts(at.markdown)
    assert at.sidebar.radio(key="face_detector").value == "blazeface"


def test_model_card_shows_the_whole_path_beside_the_crop_accuracy(app_env):
    """Issue 16: the Model page reads the whole path from the card (never typed), scored by
    the crowd and by FER2013's labels (issue 23), each table under its own heading."""
    card = json.loads((ROOT / "models" / "cnn_gru.card.json").read_text())
    at = run_page("app_pages/model.py")
    assert_clean(at)
    assert "Through the whole path, as users get it" in texts(at.subheader)
    tables = [frame.value for frame in at.dataframe if "end-to-end accuracy" in frame.value]
    shown = [labels for labels in ("ferplus-majority", "fer2013") if labels in card["whole_path"]]
    assert shown and len(tables) == len(shown)
    captions = " ".join(c.value for c in at.caption)
    for labels, table in zip(shown, tables):
        results = card["whole_path"][labels]
        assert f"{results['faces']:,} faces" in texts(at.markdown)
        haar = table[(table["detector"] == "Haar") & (table["preset"] == "photo")].iloc[0]
        row = [
            r
            for r in results["rows"]
            if r["detector"] == "haar"
            and r["preset"] == "photo"
            and r.get("variant", "plain") == "plain"
        ][0]
        assert haar["end-to-end accuracy"] == f"{row['end_to_end'] * 100:.1f}%"
        # the caption names the commands the results record, not one made up
        assert all(command in captions for command in results["commands"]), captions
    assert "Scored by " in texts(at.markdown)
