"""Fine-tuning from a model file, the constant schedule, weight averaging (SWA) and the
BatchNorm recalibration that every run ends with."""

import json

import numpy as np
import pytest

from fer_core import ConfigError, load_fer2013
from fer_core.models.architectures import build_model, load_keras_model, save_keras_model
from fer_core.training.averaging import WeightAverage, recompute_batch_norm
from fer_core.training.loop import TrainConfig, learning_rate_at, recalibrate_best, train
from fer_core.training.runs import read_history
from tests.conftest import synthetic_rows, write_csv
from tests.training.test_train import _tiny_config as _config


def _base_then_swa(tmp_path, data, name: str):
    """A 1-epoch run "base", then a 2-epoch SWA fine-tune of it named ``name``."""
    base = train(_config(tmp_path, run_name="base", epochs=1), data)
    config = _config(
        tmp_path,
        run_name=name,
        epochs=2,
        schedule="constant",
        warmup_epochs=0,
        learning_rate=3e-4,
        swa_start=1,
        init_from=str(base / "last.keras"),
    )
    return config, train(config, data)


def test_constant_schedule_and_swa_settings_are_checked(tmp_path):
    config = TrainConfig(epochs=10, warmup_epochs=0, schedule="constant", learning_rate=3e-4)
    assert {learning_rate_at(config, e) for e in range(10)} == {3e-4}
    with pytest.raises(ConfigError, match="swa_start"):
        TrainConfig(epochs=5, swa_start=6).validate()
    with pytest.raises(ConfigError, match="init_from"):
        TrainConfig(init_from=str(tmp_path / "missing.keras")).validate()


def test_init_from_needs_the_same_architecture(tmp_path):
    data = load_fer2013(write_csv(tmp_path / "d.csv", synthetic_rows(4)))
    other = save_keras_model(build_model("cnn_wide"), tmp_path / "wide.keras")
    with pytest.raises(ConfigError, match="does not have this architecture"):
        train(_config(tmp_path, epochs=1, init_from=str(other)), data)


def test_recompute_batch_norm_gives_the_mean_of_batch_statistics():
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization()])
    rng = np.random.default_rng(0)
    images = rng.normal(5.0, 2.0, size=(1000, 3)).astype(np.float32)
    assert recompute_batch_norm(model, images, batch_size=100) == 1
    layer = model.layers[0]
    batch_means = images.reshape(10, 100, 3).mean(axis=1)
    batch_vars = images.reshape(10, 100, 3).var(axis=1)
    np.testing.assert_allclose(np.asarray(layer.moving_mean), batch_means.mean(0), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(layer.moving_variance), batch_vars.mean(0), rtol=1e-3)
    assert layer.momentum == pytest.approx(0.99)  # restored


def test_weight_average_is_the_running_mean_and_resumes(tmp_path):
    import keras

    def dense(value):
        model = keras.Sequential(
            [keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(1)]
        )
        model.set_weights([np.full((48 * 48, 1), value, np.float32), np.full(1, value, np.float32)])
        return model

    average = WeightAverage(dense(0.0))
    for value in (1.0, 2.0, 6.0):
        averaged = average.update(dense(value))
    np.testing.assert_allclose(np.asarray(averaged.trainable_variables[0]), 3.0)
    # Resuming from a model holding the mean of 3 snapshots continues the same mean.
    resumed = WeightAverage(dense(0.0), resume_from=dense(3.0), count=3)
    resumed.update(dense(7.0))
    np.testing.assert_allclose(np.asarray(resumed.model.trainable_variables[0]), 4.0)


@pytest.mark.slow
def test_swa_run_records_the_average_and_resumes(tmp_path):
    data = load_fer2013(write_csv(tmp_path / "d.csv", synthetic_rows(8)))
    config, run = _base_then_swa(tmp_path, data, "swa")
    history = read_history(run)
    assert [row["epoch"] for row in history] == [1, 2]
    assert all("swa_val_accuracy" in row for row in history)
    state = json.loads((run / "state.json").read_text())
    assert state["swa_count"] == 2 and state["best_kind"] in ("swa", "weights")
    assert (run / "swa.keras").is_file()
    # Two more epochs on the same run folder: the average continues from 2 snapshots.
    config.epochs = 4
    train(config, data, run_dir=run)
    state = json.loads((run / "state.json").read_text())
    assert state["swa_count"] == 4
    assert [row["epoch"] for row in read_history(run)] == [1, 2, 3, 4]


@pytest.mark.slow
def test_recalibration_is_kept_only_when_validation_improves(tmp_path, monkeypatch):
    import fer_core.training.loop as train_module

    data = load_fer2013(write_csv(tmp_path / "d.csv", synthetic_rows(4)))
    run = train(_config(tmp_path, run_name="r", epochs=1, recalibrate_batch_norm=False), data)
    x_train, _ = data.split("Training")
    x_val, y_val = data.split("PublicTest")
    original = (run / "best.keras").read_bytes()

    scores = iter([0.5, 0.4])  # worse after recalibration: nothing changes
    monkeypatch.setattr(train_module, "accuracy", lambda *a, **k: next(scores))
    result = recalibrate_best(run, x_train, x_val, y_val)
    assert result["kept"] is False
    assert (run / "best.keras").read_bytes() == original
    assert not (run / "best_before_recalibration.keras").exists()

    scores = iter([0.4, 0.5])  # better: the new one is best.keras, the old one is kept
    monkeypatch.setattr(train_module, "accuracy", lambda *a, **k: next(scores))
    result = recalibrate_best(run, x_train, x_val, y_val)
    assert result["kept"] is True
    assert (run / "best_before_recalibration.keras").is_file()
    before = load_keras_model(run / "best_before_recalibration.keras")
    after = load_keras_model(run / "best.keras")
    assert any(not np.allclose(a, b) for a, b in zip(before.get_weights(), after.get_weights()))
    state = json.loads((run / "state.json").read_text())
    assert state["recalibration"]["kept"] is True and state["best_val_accuracy"] == 0.5


@pytest.mark.slow
def test_model_card_of_a_fine_tuned_run_counts_the_base_run(tmp_path):
    from fer_core.evaluation.reports import evaluate_images
    from fer_core.models.card_writer import write_model_card
    from fer_core.training.provenance import training_section

    data = load_fer2013(write_csv(tmp_path / "d.csv", synthetic_rows(4)))
    _, run = _base_then_swa(tmp_path, data, "tuned")
    model_file = tmp_path / "shipped" / "model.keras"
    save_keras_model(load_keras_model(run / "best.keras"), model_file)
    x_test, y_test = data.split("PrivateTest")
    report = evaluate_images(load_keras_model(model_file), x_test, y_test)
    card = write_model_card(
        model_file,
        report,
        split="PrivateTest",
        flip_average=False,
        selection=None,
        training=training_section(run),
    )
    training = card["training"]
    assert training["run"] == "tuned" and training["epochs_done"] == 2
    # The snapshots in the shipped weights: the average up to the best epoch, or none.
    expected = training["best_epoch"] if training["best_kind"] == "swa" else 0
    assert training["swa_snapshots"] == expected
    assert training["recalibration"]["batch_norm_layers"] > 0
    base_part = training["initialised_from"]
    assert base_part["run"] == "base" and base_part["epochs_done"] == 1
    assert training["total_train_seconds"] == pytest.approx(
        training["train_seconds"] + base_part["train_seconds"], abs=0.11
    )
    assert json.loads(model_file.with_suffix(".card.json").read_text())["training"] == training


def test_model_lineage_follows_runs_and_cards_and_stops_at_a_changed_file(tmp_path):
    """Run c started from run b's best.keras, b from a model file with a card (whose own
    training started from run a). A file replaced after a run started from it ends the chain
    rather than describing another model."""
    from fer_core.models.inference import file_sha256
    from fer_core.training.provenance import model_lineage

    runs = tmp_path / "runs"
    for name, seconds in (("a", 10.0), ("b", 20.0)):
        (runs / name).mkdir(parents=True)
        (runs / name / "history.csv").write_text(
            "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds\n"
            f"1,1,0.5,1,0.5,0.001,{seconds}\n2,1,0.5,1,0.5,0.001,{seconds}\n"
        )
        (runs / name / "best.keras").write_bytes(name.encode())
    shipped = tmp_path / "models" / "m.keras"
    shipped.parent.mkdir()
    shipped.write_bytes(b"model m")
    shipped.with_suffix(".card.json").write_text(
        json.dumps(
            {
                "training": {
                    "run": "m_run",
                    "epochs_done": 5,
                    "train_seconds": 50.0,
                    "initialised_from": {
                        "file": "runs/a/best.keras",
                        "run": "a",
                        "epochs_done": 2,
                        "train_seconds": 20.0,
                    },
                }
            }
        )
    )
    (runs / "b" / "config.json").write_text(json.dumps({"init_from": str(shipped)}))
    (runs / "b" / "state.json").write_text(json.dumps({"init_from_sha256": file_sha256(shipped)}))
    lineage = model_lineage(
        str(runs / "b" / "best.keras"), file_sha256(runs / "b" / "best.keras"), runs
    )
    assert [(s["run"], s["epochs_done"], s["train_seconds"]) for s in lineage] == [
        ("b", 2, 40.0),
        ("m_run", 5, 50.0),
        ("a", 2, 20.0),
    ]
    # A relative path from another folder finds its sibling run folder.
    assert model_lineage("elsewhere/b/best.keras", None, runs)[0]["run"] == "b"
    # The model file changed after run b started from it: the chain stops there.
    shipped.write_bytes(b"another model")
    lineage = model_lineage(str(runs / "b" / "best.keras"), None, runs)
    assert [s["run"] for s in lineage] == ["b", "models"] and lineage[1]["changed"]
    # A file that is neither in a run folder nor carded is named, its training unknown.
    loose = tmp_path / "loose.keras"
    loose.write_bytes(b"x")
    assert model_lineage(str(loose), None, runs) == [
        {"file": str(loose), "run": tmp_path.name, "epochs_done": None, "train_seconds": None}
    ]


@pytest.mark.slow
def test_average_command_writes_a_soup_run_and_its_card_lists_both_parents(tmp_path, monkeypatch):
    """Two fine-tunes of one base run, averaged by `fer average`: the run folder's model is
    the mean of their weights (BatchNorm statistics recomputed), it cannot be resumed, and
    its card lists both parents with their lineage, counting the shared base run once."""
    from app_lib.model.card_view import training_rows
    from fer_core.cli.main import main
    from fer_core.evaluation.reports import evaluate_images
    from fer_core.models.card_writer import write_model_card
    from fer_core.service.status import run_status
    from fer_core.training.provenance import training_section

    csv = write_csv(tmp_path / "d.csv", synthetic_rows(4))
    data = load_fer2013(csv)
    base = train(_config(tmp_path, run_name="base", epochs=1), data)
    tuned = [
        train(
            _config(
                tmp_path,
                run_name=name,
                epochs=1,
                seed=seed,
                warmup_epochs=0,
                init_from=str(base / "best.keras"),
            ),
            data,
        )
        for name, seed in (("a", 1), ("b", 2))
    ]
    runs = tmp_path / "runs"
    models = [str(run / "best.keras") for run in tuned]
    assert (
        main(["average", *models, "--name", "soup", "--runs-dir", str(runs), "--data", str(csv)])
        == 0
    )
    soup = load_keras_model(runs / "soup" / "best.keras")
    parents = [load_keras_model(path) for path in models]
    np.testing.assert_allclose(
        np.asarray(soup.trainable_weights[0]),
        (np.asarray(parents[0].trainable_weights[0]) + np.asarray(parents[1].trainable_weights[0]))
        / 2,
        rtol=1e-5,
        atol=1e-6,
    )
    state = json.loads((runs / "soup" / "state.json").read_text())
    assert [item["file"] for item in state["averaged_from"]] == models
    assert 0 <= state["best_val_accuracy"] <= 1
    # The parents' label smoothing is kept: the calibration takes its floor off.
    config = json.loads((runs / "soup" / "config.json").read_text())
    assert config["label_smoothing"] == 0.1 and "epochs" not in config
    status = run_status(runs / "soup")
    assert status.phase == "finished" and status.has_model
    # An existing run folder is never overwritten; one model alone is no average.
    assert (
        main(["average", *models, "--name", "soup", "--runs-dir", str(runs), "--data", str(csv)])
        == 2
    )
    assert (
        main(["average", models[0], "--name", "soup2", "--runs-dir", str(runs), "--data", str(csv)])
        == 2
    )
    # The card: both parents, each back to the base run; the base run's time counted once.
    x_test, y_test = data.split("PrivateTest")
    card = write_model_card(
        runs / "soup" / "best.keras",
        evaluate_images(soup, x_test, y_test),
        split="PrivateTest",
        flip_average=False,
        selection=None,
        training=training_section(runs / "soup"),
    )
    training = card["training"]
    assert [[step["run"] for step in chain] for chain in training["averaged_from"]] == [
        ["a", "base"],
        ["b", "base"],
    ]
    seconds = {
        name: sum(row["seconds"] for row in read_history(runs / name))
        for name in ("a", "b", "base")
    }
    assert training["total_train_seconds"] == pytest.approx(sum(seconds.values()), abs=0.2)
    rows = training_rows(training)
    assert (
        rows["averaged from"].startswith("run a: 1 epochs")
        and "; run b: 1 epochs" in rows["averaged from"]
    )
    assert rows["weights"] == "the mean of the 2 models' weights (a model soup)"
    assert "epochs trained" not in rows and "best epoch" not in rows
    assert "augmentation" not in rows
