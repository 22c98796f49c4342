import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from fer_core import ConfigError, FerError, load_fer2013
from fer_core.models.architectures import load_keras_model
from fer_core.service.active import get_active_model, set_active_model
from fer_core.training.loop import TrainConfig, class_weights, learning_rate_at, train
from fer_core.training.runs import Run, check_run_name, list_runs, read_history
from tests.conftest import ROOT, synthetic_rows, write_csv


@pytest.mark.parametrize(
    "name",
    [
        "../escape",
        "/etc/passwd",
        "a/b",
        "..",
        "",
        ".hidden",
        "x" * 100,
        "run\n",
        "run\r",
        "a\n../b",
    ],
)
def test_run_names_cannot_escape(name):
    with pytest.raises(ConfigError):
        check_run_name(name)


def test_config_validation():
    with pytest.raises(ConfigError, match="architecture"):
        TrainConfig(architecture="nope").validate()
    with pytest.raises(ConfigError, match="epochs"):
        TrainConfig(epochs=0).validate()
    with pytest.raises(ConfigError, match="Unknown training settings"):
        TrainConfig.from_dict({"epochz": 3})


def test_schedule_and_class_weights():
    config = TrainConfig(epochs=20, warmup_epochs=2, learning_rate=1e-2)
    rates = [learning_rate_at(config, e) for e in range(20)]
    assert rates[0] < rates[1] < rates[2] and rates[2] == pytest.approx(1e-2)
    assert all(a >= b for a, b in zip(rates[2:], rates[3:]))
    labels = np.array([0] * 90 + [1] * 10)
    weights = class_weights(labels, "sqrt")
    assert weights[1] == pytest.approx(3 * weights[0])
    assert weights[labels].mean() == pytest.approx(1.0)


def _tiny_config(tmp_path, **kw):
    values = dict(
        architecture="mini_xception",
        epochs=2,
        batch_size=32,
        runs_dir=str(tmp_path / "runs"),
        rotation_degrees=5,
    )
    values.update(kw)
    return TrainConfig(**values)


@pytest.mark.slow
def test_train_writes_run_folder_and_resumes(tmp_path):
    data = load_fer2013(write_csv(tmp_path / "d.csv", synthetic_rows(8)))
    config = _tiny_config(tmp_path, run_name="tiny")
    seen = []
    run = train(config, data, on_epoch=seen.append)
    for name in (
        "config.json",
        "history.csv",
        "state.json",
        "best.keras",
        "last.keras",
        "metrics.json",
        "progress.json",
    ):
        assert (run / name).is_file(), name
    assert [int(r["epoch"]) for r in seen] == [1, 2]
    load_keras_model(run / "best.keras")
    config.epochs = 3
    train(config, data)
    assert [int(r["epoch"]) for r in read_history(run)] == [1, 2, 3]
    assert list_runs(tmp_path / "runs")[0]["name"] == "tiny"


@pytest.mark.slow
def test_stop_keeps_last_full_epoch(tmp_path):
    data = load_fer2013(write_csv(tmp_path / "d.csv", synthetic_rows(8)))
    config = _tiny_config(tmp_path, run_name="stopper", epochs=5)
    calls = {"n": 0}

    def stop_in_second_epoch():
        calls["n"] += 1
        return len(read_history(Path(config.runs_dir) / "stopper")) >= 1

    run = train(config, data, should_stop=stop_in_second_epoch)
    history = read_history(run)
    assert [int(r["epoch"]) for r in history] == [1]
    from fer_core.storage import read_json

    assert read_json(run / "state.json")["status"] == "stopped"


def test_parallel_runs_get_distinct_folders(tmp_path):
    config = _tiny_config(tmp_path)
    with ThreadPoolExecutor(8) as pool:
        folders = list(
            pool.map(lambda _: Run.create_unique(config.runs_dir, "same").path, range(8))
        )
    assert len(set(folders)) == 8


def test_active_model_switch(tmp_path):
    model = tmp_path / "m.keras"
    model.write_bytes(b"x")
    runs = tmp_path / "runs"
    assert get_active_model(runs) is None
    set_active_model(model, runs)
    assert get_active_model(runs) == model.resolve()
    set_active_model(None, runs)
    assert get_active_model(runs) is None


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume(tmp_path):
    """Kill the training process mid-epoch; the resumed run has no gap or duplicate epoch."""
    csv = write_csv(tmp_path / "d.csv", synthetic_rows(60))
    runs = tmp_path / "runs"
    command = [
        sys.executable,
        "-m",
        "fer_core",
        "train",
        "--data",
        str(csv),
        "-a",
        "mini_xception",
        "--epochs",
        "4",
        "--batch-size",
        "16",
        "--runs-dir",
        str(runs),
        "--name",
        "killme",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    run = runs / "killme"
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            progress = _read(run / "progress.json")
            if (
                progress
                and progress.get("epoch", 0) >= 2
                and 0 < progress["batch"] < progress["steps"]
            ):
                break
            time.sleep(0.05)
        else:
            pytest.fail("training never reached the middle of epoch 2")
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    done_before = len(read_history(run))
    assert done_before >= 1
    subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=300,
    )
    assert [int(r["epoch"]) for r in read_history(run)] == [1, 2, 3, 4]
    load_keras_model(run / "best.keras")


def _read(path):
    import json

    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


@pytest.mark.slow
def test_one_epoch_smoke_on_real_images(fer2013, tmp_path):
    config = _tiny_config(
        tmp_path,
        architecture="cnn_gru",
        epochs=1,
        train_subset=400,
        validation_subset=200,
        run_name="smoke",
    )
    run = train(config, fer2013)
    metrics = _read(run / "metrics.json")
    assert metrics["split"] == "PublicTest" and metrics["n"] >= 190
    assert 0.0 <= metrics["accuracy"] <= 1.0


def test_batches_are_full_and_even(tmp_path):
    from fer_core.training.loop import pad_to_full_batches

    images = np.zeros((101, 48, 48), np.uint8)
    labels = np.arange(101) % 7
    padded_images, padded_labels = pad_to_full_batches(images, labels, 64, seed=0)
    assert len(padded_labels) == 128 and len(padded_images) == 128
    assert list(padded_labels[:101]) == list(labels)
    with pytest.raises(ConfigError, match="even"):
        TrainConfig(batch_size=33).validate()


@pytest.mark.slow
def test_mini_xception_trains_when_rows_do_not_fill_the_last_batch(tmp_path):
    """Regression: a partial batch of odd size crashed TensorFlow's oneDNN kernels (SIGSEGV)."""
    rows = synthetic_rows(5)  # 35 Training rows: a partial batch of 35 at batch size 64
    csv = write_csv(tmp_path / "d.csv", rows)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fer_core",
            "train",
            "--data",
            str(csv),
            "-a",
            "mini_xception",
            "--epochs",
            "1",
            "--batch-size",
            "64",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--name",
            "odd",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow
def test_a_run_whose_folder_is_deleted_ends_instead_of_training_on(tmp_path):
    """Deleting a run's folder ends its trainer at the next batch (no zombie training on,
    and the folder is not recreated)."""
    import shutil

    data = load_fer2013(write_csv(tmp_path / "d.csv", synthetic_rows(8)))
    config = _tiny_config(tmp_path, run_name="doomed", epochs=20)
    batches = []

    def delete_during_second_epoch(epoch, batch, steps):
        batches.append((epoch, batch))
        if epoch == 1 and batch == 1:
            shutil.rmtree(tmp_path / "runs" / "doomed")

    # ...and says so as an error (issue 34 item 7: `fer train` exited 0, as if it had trained)
    with pytest.raises(FerError, match="was deleted while it trained"):
        train(config, data, on_batch=delete_during_second_epoch)
    assert not (tmp_path / "runs" / "doomed").exists()
    assert max(epoch for epoch, _ in batches) == 1  # nothing after the deletion's epoch


@pytest.mark.slow
def test_a_resumed_run_starts_from_the_checkpoints_weights(tmp_path, monkeypatch):
    """Resume loads last.keras, and the model it goes on training has exactly the weights the
    interrupted run saved (a restart from scratch would build fresh ones and never load it);
    the finished epoch's history row is kept as it was."""
    import hashlib

    import keras

    data = load_fer2013(write_csv(tmp_path / "d.csv", synthetic_rows(8)))
    config = _tiny_config(tmp_path, run_name="resumed", epochs=3)
    run = tmp_path / "runs" / "resumed"

    def stop_after_first_epoch():
        return len(read_history(run)) >= 1

    train(config, data, should_stop=stop_after_first_epoch)
    row_before = (run / "history.csv").read_text().splitlines()[:2]

    def digest(model):
        hashed = hashlib.sha1()
        for weight in model.get_weights():
            hashed.update(np.ascontiguousarray(weight).tobytes())
        return hashed.hexdigest()

    saved = digest(keras.saving.load_model(run / "last.keras"))
    loaded = []
    original = keras.saving.load_model

    def spy(path, *args, **kwargs):
        model = original(path, *args, **kwargs)
        loaded.append((Path(path).name, digest(model)))
        return model

    monkeypatch.setattr(keras.saving, "load_model", spy)
    train(config, data)
    assert ("last.keras", saved) in loaded
    assert (run / "history.csv").read_text().splitlines()[:2] == row_before
    assert [int(r["epoch"]) for r in read_history(run)] == [1, 2, 3]
