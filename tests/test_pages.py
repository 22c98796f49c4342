"""The app's pages under streamlit.testing.v1.AppTest: they render, and user errors are shown
with st.error (never a traceback). The live page's webrtc component cannot run under AppTest;
its frame callback is tested in test_live_processor.py and the page itself in the browser."""

import io
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
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
    return {"runs": runs, "data": data, "tmp": tmp_path}


def run_page(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_home_shows_the_model_and_its_measured_quality(app_env):
    at = run_page()
    assert_clean(at)
    assert not at.error
    assert at.title[0].value == "Facial emotion recognition"
    metrics = {m.label: m.value for m in at.metric}
    card = json.loads((ROOT / "models" / "cnn_gru.card.json").read_text())
    split = card["test"]["split"]
    assert metrics[f"Accuracy ({split})"] == f"{card['test']['accuracy'] * 100:.1f}%"
    assert metrics[f"Macro-F1 ({split})"] == f"{card['test']['macro_f1']:.3f}"
    sidebar = texts(at.sidebar.markdown)
    assert "Active model" in sidebar and "cnn_gru" in sidebar and "shipped default" in sidebar
    assert {m.label for m in at.sidebar.metric} == {"Accuracy", "Macro-F1"}


@pytest.mark.parametrize("page", ["app_pages/model.py", "app_pages/training.py",
                                  "app_pages/upload.py", "app_pages/dataset.py"])
def test_every_page_renders(app_env, page):
    at = run_page(page)
    assert_clean(at)
    assert not at.error, texts(at.error)
    assert "Active model" in texts(at.sidebar.markdown)


def test_live_page_module_compiles():
    # webrtc_streamer cannot run under AppTest: compile the page, test its parts elsewhere.
    source = (ROOT / "app_pages" / "live.py").read_text()
    compile(source, "app_pages/live.py", "exec")


def test_no_old_style_pages_folder():
    """A pages/ folder beside app.py makes Streamlit 1.67 run a page file alone (without
    app.py's navigation and sidebar) when the first visit goes to a page URL."""
    folder = ROOT / "pages"
    assert not (folder.is_dir() and any(folder.glob("*.py"))), (
        "keep the app's pages in app_pages/, not pages/ (see app.py)")


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
    assert "Confusion matrix" in headers and "What this model cannot do" in headers
    assert "Not for decisions about people" in texts(at.markdown)
    at.toggle(key="cm_normalise").set_value(False).run()
    assert_clean(at)


def test_upload_photos_each_get_a_result_or_a_message(app_env):
    at = run_page("app_pages/upload.py")
    assert texts(at.info).startswith("Drop photos")
    at.file_uploader(key="upload_files").set_value([
        ("astronaut.png", png_bytes(skimage.data.astronaut()), "image/png"),
        ("broken.jpg", b"\xff\xd8\xff\xe0 truncated", "image/jpeg"),
        ("wall.png", png_bytes(np.full((120, 160, 3), 200, np.uint8)), "image/png"),
    ])
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
    from fer_core.video_writer import AnnotatedVideoWriter

    face = cv2.resize(skimage.data.astronaut()[0:255, 60:400], (320, 240))
    writer = AnnotatedVideoWriter(app_env["tmp"] / "clip", fps=10)
    for shift in range(12):
        writer.write(np.roll(face, shift, axis=1))
    path = writer.close()
    at = run_page("app_pages/upload.py")
    at.number_input(key="video_every").set_value(2)
    at.file_uploader(key="upload_files").set_value(
        [(f"clip{path.suffix}", path.read_bytes(), writer.mime)])
    at.run()
    assert_clean(at)
    assert not at.error, texts(at.error)
    faces, segments = at.dataframe[0].value, at.dataframe[1].value
    assert list(faces["dominant"]) == ["happy"] and faces["frames"].iloc[0] == 6
    assert set(segments["dominant"]) == {"happy"}
    assert len(at.get("plotly_chart")) == 1  # the timeline
    assert "every 2 frames" in texts(at.caption)


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


def test_dataset_page_reports_a_bad_path(app_env):
    at = run_page("app_pages/dataset.py")
    at.text_input(key="dataset_path_input").set_value(str(app_env["tmp"] / "nope.csv")).run()
    assert_clean(at)
    assert "nope.csv does not exist" in texts(at.error)
    not_csv = app_env["tmp"] / "notes.csv"
    not_csv.write_text("hello,world\n1,2\n")
    at.text_input(key="dataset_path_input").set_value(str(not_csv)).run()
    assert_clean(at)
    assert "FER2013's is 'emotion,pixels,Usage'" in texts(at.error)


@pytest.mark.skipif(not REAL_FER2013, reason="FER2013_PATH is not set: the real-data page "
                                             "check needs FER2013")
def test_dataset_page_on_the_real_fer2013(app_env):
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
    assert ("far from balanced in this data: happy is 25.0% of the images and disgust 1.5%"
            in texts(at.caption)), texts(at.caption)


def fake_finished_run(runs: Path, name: str) -> Path:
    folder = runs / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "architecture": "mini_xception", "epochs": 2, "batch_size": 32, "learning_rate": 0.002,
        "train_subset": 500, "validation_subset": 100}))
    (folder / "history.csv").write_text(
        "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds\n"
        "1,1.9,0.25,1.85,0.27,0.001,10.5\n2,1.8,0.30,1.80,0.31,0.002,10.1\n")
    (folder / "state.json").write_text(json.dumps({
        "epochs_done": 2, "epochs": 2, "best_val_accuracy": 0.31, "best_epoch": 2,
        "status": "finished", "updated": time.time()}))
    (folder / "metrics.json").write_text(json.dumps({"split": "PublicTest", "accuracy": 0.31,
                                                    "macro_f1": 0.12}))
    (folder / "evaluation.json").write_text(json.dumps({
        "split": "PublicTest", "n": 100, "accuracy": 0.3, "macro_f1": 0.11,
        "per_class": {"happy": {"precision": 0.5, "recall": 0.6, "f1": 0.55, "support": 30}}}))
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


def test_photos_page_switches_the_face_detector(app_env):
    at = run_page("app_pages/upload.py")
    radio = at.sidebar.radio(key="face_detector")
    assert radio.value == "haar" and list(radio.options) == ["Haar cascade (OpenCV)",
                                                             "BlazeFace (MediaPipe)"]
    radio.set_value("blazeface")
    at.file_uploader(key="upload_files").set_value([
        ("astronaut.png", png_bytes(skimage.data.astronaut()), "image/png")])
    at.run()
    assert_clean(at)
    assert "**#1 happy**" in texts(at.markdown)
    assert at.sidebar.radio(key="face_detector").value == "blazeface"
