"""The app's pages under streamlit.testing.v1.AppTest: they render, and user errors are shown
with st.error (never a traceback). The live page's webrtc component cannot run under AppTest;
its frame callback is tested in test_live_processor.py and the page itself in the browser."""

import io
import contextlib
import json
import os
import re
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
    monkeypatch.delenv("FER_ADMIN_PASSWORD", raising=False)
    with listening_on("127.0.0.1"):  # as `make run`: local only, so every visitor is admin
        yield {"runs": runs, "data": data, "tmp": tmp_path}


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


def test_dataset_page_reports_a_bad_path(app_env, monkeypatch):
    monkeypatch.setenv("FER_DATA_DIRS", str(app_env["tmp"]))  # typed paths must lie in here
    at = run_page("app_pages/dataset.py")
    at.text_input(key="dataset_path_input").set_value(str(app_env["tmp"] / "nope.csv")).run()
    assert_clean(at)
    assert "nope.csv does not exist" in texts(at.error)
    not_csv = app_env["tmp"] / "notes.csv"
    not_csv.write_text("hello,world\n1,2\n")
    at.text_input(key="dataset_path_input").set_value(str(not_csv)).run()
    assert_clean(at)
    assert "does not start with FER2013's header line" in texts(at.error).replace("\\", "")


@pytest.mark.skipif(not REAL_FER2013, reason="FER2013_PATH is not set: the real-data page "
                                             "check needs FER2013")
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


def _button(at, label):
    return [b for b in at.button if b.label == label][0]


def test_training_page_fine_tunes_and_distils_from_models_it_lists(app_env, monkeypatch):
    """The new-run form offers the shipped model and every run's best model to start from and
    to distil from, by name: the files it passes on are the server's own, and a run cannot
    start from another architecture's weights."""
    import fer_core.jobs
    from fer_core.inference import DEFAULT_MODEL

    folder = fake_finished_run(app_env["runs"], "finished-run")  # a mini_xception run
    (folder / "best.keras").write_bytes(b"stands in for a model file")
    started = []
    monkeypatch.setattr(fer_core.jobs, "start_training",
                        lambda config, **kwargs: started.append(config) or {"pid": 0})
    at = run_page("app_pages/training.py")
    assert_clean(at)
    start_from = [s for s in at.selectbox if s.label == "Start from"][0]
    teachers = [m for m in at.multiselect if m.label == "Distil from (teachers)"][0]
    assert set(teachers.options) >= {f"the shipped model ({DEFAULT_MODEL.stem})",
                                     "run finished-run (mini_xception, val 31.0%)"}
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
        ["run:finished-run"])
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
    from fer_core.config import TrainConfig
    from fer_core.jobs import process_alive, start_training
    from tests.test_jobs import SLEEPER, _kill

    job = start_training(TrainConfig(data_path=str(app_env["data"]),
                                     runs_dir=str(app_env["runs"]), run_name="busy"),
                         python=SLEEPER)
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
    from fer_core.inference import DEFAULT_MODEL

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


def test_upload_a_photo_of_30_faces_drop_boxes_and_explain(app_env):
    """Bug 1: 25 or more faces crashed the page (Plotly's vertical_spacing); the other photos,
    the summary and the downloads then never rendered."""
    from tests.media import crowd

    at = run_page("app_pages/upload.py")
    at.file_uploader(key="upload_files").set_value([
        ("crowd.png", png_bytes(crowd()), "image/png"),
        ("astronaut.png", png_bytes(skimage.data.astronaut()), "image/png")])
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


def test_upload_labels_an_unsure_face_uncertain(app_env):
    from tests.media import masked_astronaut

    at = run_page("app_pages/upload.py")
    at.file_uploader(key="upload_files").set_value([
        ("masked.png", png_bytes(masked_astronaut()), "image/png")])
    at.run()
    assert_clean(at)
    assert re.search(r"\*\*#1 uncertain: [a-z]+/[a-z]+\*\*", texts(at.markdown))
    card = json.loads((ROOT / "models" / "cnn_gru.card.json").read_text())
    threshold = card["calibration"]["uncertain_below"]
    assert f"below {threshold * 100:.0f}%" in texts(at.caption)  # the card's threshold
    assert list(at.dataframe[0].value["uncertain"]) == [True]
    at.file_uploader(key="upload_files").set_value([
        ("masked.png", png_bytes(masked_astronaut()), "image/png"),
        ("astronaut.png", png_bytes(skimage.data.astronaut()), "image/png")])
    at.run()
    summary = at.dataframe[-1].value
    assert [label.split(":")[0] for label in summary["labels"]] == ["uncertain", "happy"]


def test_activating_a_worse_model_asks_first_and_shows_both_numbers(app_env):
    """Bug 10: one click replaced the 69% model with an 18% one, with no warning."""
    from fer_core.active import get_active_model
    from fer_core.model import build_model, save_keras_model

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
    at.file_uploader(key="upload_files").set_value([
        ("astronaut.png", png_bytes(skimage.data.astronaut()), "image/png")])
    at.run()
    assert "**#1 happy**" in texts(at.markdown)
    at.switch_page("app_pages/model.py")
    at.run()
    at.switch_page("app_pages/upload.py")
    at.run()
    assert_clean(at)
    assert "**#1 happy**" in texts(at.markdown)
    assert "Your last upload (1 file)" in texts(at.caption)
    _button(at, "Clear").click()
    at.run()
    assert texts(at.info).startswith("Drop photos")


def test_a_video_analysis_can_be_cancelled_and_started_again(app_env):
    from fer_core.video_writer import AnnotatedVideoWriter

    face = cv2.resize(skimage.data.astronaut()[0:255, 60:400], (320, 240))
    writer = AnnotatedVideoWriter(app_env["tmp"] / "clip", fps=10)
    for shift in range(6):
        writer.write(np.roll(face, shift, axis=1))
    path = writer.close()
    at = run_page("app_pages/upload.py")
    at.file_uploader(key="upload_files").set_value(
        [(f"clip{path.suffix}", path.read_bytes(), writer.mime)])
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
    import subprocess
    import sys

    from fer_core.runs import EVAL_JOB, EVAL_LOG

    run = fake_finished_run(app_env["runs"], "evaluating-run")
    (run / "evaluation.json").unlink()
    (run / "best.keras").write_bytes(b"x")
    from tests.processes import stand_in

    sleeper = stand_in("-m", "fer_core", "evaluate", start_new_session=True)
    try:
        (run / EVAL_JOB).write_text(json.dumps({"kind": "evaluate", "pid": sleeper.pid,
                                                "started": time.time() - 30}))
        # As the evaluate command writes it: each update starts with '\r'.
        (run / EVAL_LOG).write_text("\rloading FER2013:  50.0%  Read 17,000 rows"
                                    "\rloading FER2013: 100.0%  Read 35,887 rows\n"
                                    "\revaluating on PublicTest:  25.0%  896/3,589 images"
                                    "\revaluating on PublicTest:  50.0%  1,792/3,589 images")
        at = run_page("app_pages/training.py")
        assert_clean(at)
        bars = [p for p in at.get("progress") if "Evaluating on PublicTest" in p.proto.text]
        assert bars and "evaluating on PublicTest:  50.0%" in bars[0].proto.text
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
    assert radio.value == "haar" and list(radio.options) == ["Haar cascade (OpenCV)",
                                                             "BlazeFace (MediaPipe)"]
    radio.set_value("blazeface")
    at.file_uploader(key="upload_files").set_value([
        ("astronaut.png", png_bytes(skimage.data.astronaut()), "image/png")])
    at.run()
    assert_clean(at)
    assert "**#1 happy**" in texts(at.markdown)
    assert at.sidebar.radio(key="face_detector").value == "blazeface"


def test_model_card_shows_the_whole_path_beside_the_crop_accuracy(app_env):
    """Issue 16: the Model page reads the pipeline evaluation's results file (never typed)."""
    from app_lib.pipeline_card import load_pipeline_results

    results = load_pipeline_results()
    at = run_page("app_pages/model.py")
    assert_clean(at)
    assert "Through the whole path, as users get it" in texts(at.subheader)
    assert f"{results['faces']:,} faces" in texts(at.markdown)
    table = [frame.value for frame in at.dataframe if "end-to-end accuracy" in frame.value][0]
    haar = table[(table["detector"] == "Haar") & (table["preset"] == "photo")].iloc[0]
    row = [r for r in results["rows"] if r["detector"] == "haar" and r["preset"] == "photo"
           and r.get("variant", "plain") == "plain"][0]
    assert haar["end-to-end accuracy"] == f"{row['end_to_end'] * 100:.1f}%"
    # the caption names the commands the results file records, not one made up
    captions = " ".join(c.value for c in at.caption)
    assert all(command in captions for command in results["commands"]), captions
