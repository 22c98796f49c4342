import os
import subprocess
import sys

import numpy as np

from fer_core.recognition.results import FILE_VIDEO_COLUMNS
from tests.conftest import ROOT


def _run(*args, timeout=600):
    """``fer ARGS`` as a script runs it: no terminal on its input (a question is not asked)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "fer_core", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_evaluate_private_test_prints_report(fer2013_path, tmp_path):
    """The README's "shipped model's report" reproduces the model card: by default the model
    is evaluated as users get it (flip averaging as the card chose)."""
    import json

    result = _run(
        "evaluate",
        "--split",
        "PrivateTest",
        "--data",
        str(fer2013_path),
        "--json",
        str(tmp_path / "r.json"),
    )
    assert result.returncode == 0, result.stderr
    assert "images: 3589" in result.stdout and "macro-F1" in result.stdout
    assert "disgust" in result.stdout and "confusion matrix" in result.stdout
    card = json.loads((ROOT / "models" / "cnn_gru.card.json").read_text())
    report = json.loads((tmp_path / "r.json").read_text())
    assert "flip-averaged (the model card's choice)" in result.stdout
    assert report["flip_average"] is card["flip_average"] is True
    assert report["accuracy"] == card["test"]["accuracy"]
    assert report["macro_f1"] == card["test"]["macro_f1"]
    copies = report["held_out"]["without_training_copies"]
    assert copies == card["held_out"]["without_training_copies"] and copies["removed"] == 288
    if os.environ.get("FERPLUS_PATH"):  # CI sets it: the crowd agreement is reproduced too
        crowd = report["held_out"]["ferplus"]
        assert crowd["majority_agreement"] == card["held_out"]["ferplus"]["majority_agreement"]
        assert crowd["clear_faces"] == 2720
        assert crowd["majority_agreement"] >= 0.84  # issue 23's bar for the shipped default
    plain = _run(
        "evaluate",
        "--split",
        "PrivateTest",
        "--data",
        str(fer2013_path),
        "--no-flip",
        "--json",
        str(tmp_path / "plain.json"),
    )
    assert plain.returncode == 0 and "not flip-averaged" in plain.stdout, plain.stderr
    assert json.loads((tmp_path / "plain.json").read_text())["accuracy"] != report["accuracy"]


def test_predict_folder_reports_and_skips_bad_files(tmp_path, astronaut):
    from PIL import Image

    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(astronaut).save(folder / "astronaut.png")
    Image.fromarray(np.full((100, 100, 3), 90, np.uint8)).save(folder / "sub" / "blank.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    out = tmp_path / "results.csv"
    result = _run("predict", str(folder), "--out", str(out))
    assert result.returncode == 1, result.stderr  # a failed input is a failed run (issue 15)
    assert "files: 3, processed: 2, faces: 1, failed: 1" in result.stdout
    assert "1 of 3 inputs failed" in result.stderr
    assert "broken.jpg" in result.stdout
    import pandas as pd

    table = pd.read_csv(out)
    assert table.loc[table["file"].str.endswith("astronaut.png"), "label"].item() == "happy"


def test_predict_refuses_a_folder_without_images_or_videos(tmp_path):
    """Issue item 7: a folder with no image succeeded silently ("files: 0", exit 0)."""
    folder = tmp_path / "holiday"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("not a photo")
    (folder / "sub" / "photo.heic").write_bytes(b"a format predict does not read")
    result = _run("predict", str(folder), "--out", str(tmp_path / "results.csv"))
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"{folder} holds no image or video files" in errors[0]
    assert ".jpg" in errors[0] and ".png" in errors[0] and ".mp4" in errors[0]
    assert "Traceback" not in result.stderr and "files: 0" not in result.stdout
    assert not (tmp_path / "results.csv").exists()


def test_bad_dataset_path_is_a_message_not_a_traceback(tmp_path):
    result = _run("evaluate", "--data", str(tmp_path / "missing.csv"))
    assert result.returncode == 2
    assert "error:" in result.stderr and "Traceback" not in result.stderr


def test_predict_video_gives_per_frame_rows(tmp_path, astronaut):
    import av
    import pandas as pd

    video = tmp_path / "clip.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 512, 512, "yuv420p"
        for _ in range(20):
            for packet in stream.encode(av.VideoFrame.from_ndarray(astronaut, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    out = tmp_path / "video.json"
    result = _run("predict", str(video), "--every", "2", "--out", str(out))
    assert result.returncode == 0, result.stderr
    table = pd.read_json(out)
    assert sorted(table["frame"]) == list(range(0, 20, 2))
    assert set(table["face_id"]) == {1} and set(table["label"]) == {"happy"}
    assert (table["time_s"].diff().dropna() > 0).all()
    assert set(table["faces"]) == {1} and set(table["face"]) == {1}  # 1-based, as photos
    assert list(table.columns) == FILE_VIDEO_COLUMNS


def test_predict_chooses_the_face_detector(tmp_path, astronaut):
    from PIL import Image

    from fer_core.recognition.predict import run_predict

    Image.fromarray(astronaut).save(tmp_path / "astronaut.png")
    for detector in ("haar", "blazeface"):
        rows = run_predict(
            [str(tmp_path / "astronaut.png")], None, None, 1, "photo", detector=detector
        )["rows"]
        assert [row["label"] for row in rows] == ["happy"], detector
    result = _run("predict", str(tmp_path / "astronaut.png"), "--detector", "nope")
    assert result.returncode == 2 and "invalid choice" in result.stderr
