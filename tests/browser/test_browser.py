"""The app in a real Chromium: every page, a photo upload, and the live webcam over WebRTC.

See conftest.py for the network namespace and the fake webcam; driver.py for the steps."""

from pathlib import Path

import pytest

from app_lib.server.server_log import GONE_TAB_NOTE
from tests.browser.appserver import assert_no_traceback, write_y4m

pytestmark = pytest.mark.timeout(600)
ROOT = Path(__file__).resolve().parents[2]


def _explain(result: dict) -> str:
    keys = (
        "error",
        "traceback",
        "exceptions",
        "errors",
        "console_errors",
        "forced_clicks",
        "_stderr",
    )
    return "\n".join(f"{key}: {result[key]}" for key in keys if result.get(key))


def test_every_page_renders_without_exception(e2e):
    result = e2e.run("pages", "--expect-dataset")
    assert result.get("ok"), _explain(result)
    for name, page in result["pages"].items():
        assert page["exceptions"] == [], f"{name}: {page['exceptions']}"
        assert page["errors"] == [], f"{name}: {page['errors']}"
        assert "Active model" in page["sidebar"], f"{name}: sidebar is {page['sidebar']!r}"
        # the measured numbers, each with its split (issue 21 item 9)
        assert "Agrees with people (PrivateTest)" in page["sidebar"], (
            f"{name}: sidebar is {page['sidebar']!r}"
        )
        assert "FER2013 labels (PrivateTest)" in page["sidebar"], (
            f"{name}: sidebar is {page['sidebar']!r}"
        )


def test_uploaded_photo_gets_a_labelled_face(e2e):
    result = e2e.run("upload", "--photo", str(e2e.media["photo"]))
    assert result.get("ok"), _explain(result)
    assert result["exceptions"] == [] and result["errors"] == [], _explain(result)
    assert "#1 happy" in result["labels"], result["labels"]
    assert result["charts"] >= 1, "no probability bars"
    assert result["downloads"] == 3, "expected PNG, CSV and JSON downloads"
    e2e.publish("upload_photo.png", "photos.png")  # the README's picture of the Photos page


def test_live_webcam_shows_box_bars_and_happy(e2e):
    result = e2e.run("live", "--y4m", str(e2e.media["y4m"]))
    assert result.get("ok"), _explain(result)
    # Reported, not asserted (speed is measured in bench/): the page's own frame rate and
    # latency for a 30 fps, 640x480 fake webcam, shown with `pytest -s` or on failure.
    print("live page metrics:", result.get("metrics"))
    assert result["exceptions"] == [], _explain(result)
    assert result["bars"] >= 1, "no probability bars"
    assert result["top"] == "happy", f"top emotion {result['top']!r}; {result['summary']!r}"
    assert result["seconds_to_result"] <= 30, result["seconds_to_result"]
    assert result["box_pixels"] > 200, (
        f"no face box on the returned video ({result['box_pixels']} box-coloured pixels)"
    )
    e2e.publish("live_streaming.png", "live.png")  # the README's picture of the Live page


def test_concurrent_sessions_share_one_model_and_survive_camera_trouble(e2e):
    result = e2e.run(
        "sessions", "--y4m", str(e2e.media["y4m"]), "--photo", str(e2e.media["photo"]), timeout=500
    )
    print("START pressed without Playwright's stability check:", result.get("forced_clicks"))
    assert result.get("ok"), _explain(result)
    for name, tab_exceptions in result["exceptions"].items():
        assert tab_exceptions == [] and result["errors"][name] == [], _explain(result)
    sessions = result["sessions"]
    for name in ("live_a", "live_b"):
        assert sessions[name]["top"] == "happy", f"{name}: {sessions[name]}"
        assert sessions[name]["bars"] >= 1, f"{name}: no probability bars"
    for name in ("upload_a", "upload_b"):
        assert "#1 happy" in sessions[name]["labels"], f"{name}: {sessions[name]}"
    # Unplugged (the page then said it was waiting for frames), plugged back in, reloaded.
    assert result["stopped_tracks"] >= 1
    assert result["replugged"]["top"] == "happy", result["replugged"]
    assert result["reloaded"]["top"] == "happy", result["reloaded"]
    assert result["returned"]["top"] == "happy", result["returned"]
    log = e2e.server_log()
    # One model in memory for every session (st.cache_resource), loaded once.
    assert log.count("Loaded the emotion model") == 1, log[-3000:]
    # Tabs closed while the server answered them: one line each (app_lib/server/server_log.py).
    print("tabs gone mid-answer, as the log says:", log.count(GONE_TAB_NOTE))
    assert_no_traceback(e2e.test_log())


# Files of the project and of the machine that the app's server must never hand out.
PRIVATE_FILES = [
    "app.py",
    ".streamlit/config.toml",
    "models/cnn_gru.keras",
    "models/cnn_gru.card.json",
    "fer_core/training/loop.py",
    "requirements.txt",
]


def test_the_server_hands_out_no_project_or_system_files(e2e):
    from tests.browser.appserver import ROOT

    secrets = {name: (ROOT / name).read_bytes()[:200] for name in PRIVATE_FILES}
    passwd = open("/etc/passwd", "rb").read()[:60]
    paths = []
    for name in PRIVATE_FILES:
        paths += [
            f"/{name}",
            f"/app/static/{name}",
            f"/static/{name}",
            f"/media/{name}",
            f"/../{name}",
            f"/%2e%2e/{name}",
            f"/app/static/..%2f{name}",
            f"/component/streamlit_webrtc.component.webrtc_streamer/..%2f..%2f{name}",
        ]
    paths += [
        "/etc/passwd",
        "/app/static/../../../../etc/passwd",
        "/static/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/media/..%2f..%2fetc%2fpasswd",
        "/component/streamlit_webrtc.component.webrtc_streamer/..%2f..%2f..%2f..%2f"
        "..%2f..%2f..%2f..%2fetc%2fpasswd",
    ]
    assert e2e.server.fetch("/_stcore/health") == (200, b"ok")  # the probe itself works
    leaks = []
    for path in paths:
        status, body = e2e.server.fetch(path)
        # Unknown paths get the app's own index page (status 200) or an error status;
        # neither may carry a file's content.
        if passwd in body or any(secret and secret in body for secret in secrets.values()):
            leaks.append((path, status))
    assert leaks == [], leaks
    print(f"{len(paths)} paths tried, none served a private file")


VIDEO = ROOT.parent / "shared" / "data" / "video" / "facerec_short_hamilton_clip.mp4"


def test_the_performer_keeps_one_id_on_the_live_page(e2e, tmp_path):
    """Issue 16: the test video as the fake webcam (Chromium loops it), recorded from the
    Live page for 12 s (more than one pass of the 9.2 s clip). Each face is followed by box
    overlap across the analysed frames, bridging a detector's loss of up to half a second (a
    camera cut ends it); the faces keep their id in at least 90% of the frames in which they
    are shown, the longest-followed one (the performer) too."""
    if not VIDEO.is_file():
        pytest.skip(f"the test video is not at {VIDEO} (../shared/data/video)")
    import av

    from fer_core.recognition.track_metrics import id_consistency

    with av.open(str(VIDEO)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    y4m = write_y4m(tmp_path / "performer.y4m", frames)
    result = e2e.run("live_track", "--y4m", str(y4m), "--seconds", "12", timeout=300)
    assert result.get("ok"), _explain(result)
    assert result["exceptions"] == [], _explain(result)
    by_frame: dict[int, list] = {}
    times: dict[int, float] = {}
    for row in result["rows"]:
        faces = by_frame.setdefault(int(row["frame"]), [])
        times[int(row["frame"])] = float(row["time_s"])
        if row["faces"] != "0":
            faces.append((int(row["face_id"]), tuple(int(row[k]) for k in "xywh")))
    order = sorted(by_frame)
    shown = [by_frame[f] for f in order]
    # a face lost for up to half a second is the same face: it must come back with its id
    report = id_consistency(shown, times=[times[f] for f in order], max_gap_s=0.5)
    print("live tracking on the test video:", report, f"{len(shown)} frames analysed")
    assert sum(bool(faces) for faces in shown) >= 0.3 * len(shown), report
    assert report["kept_share"] >= 0.9, report
    assert report["longest_kept_share"] >= 0.9, report
