"""Calibration: temperature scaling, ECE, the reliability curve, the uncertainty threshold,
and where they are used (predict_faces, the card, activation)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fer_core.models.calibration import (
    apply_temperature,
    calibrate,
    calibration_report,
    expected_calibration_error,
    fit_calibration,
    fit_temperature,
    reliability,
    remove_smoothing,
    uncertainty_threshold,
)

ROOT = Path(__file__).resolve().parents[2]


def _overconfident(n=4000, seed=0):
    """Labels drawn from softmax(z), probabilities reported as softmax(3 z): too sure."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.2, (n, 7))
    true = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(7, p=row) for row in true])
    return apply_temperature(true, 1 / 3), labels


def test_temperature_one_is_identity_and_ranking_is_kept():
    probs, _ = _overconfident(50)
    assert np.allclose(apply_temperature(probs, 1.0), probs)
    scaled = apply_temperature(probs, 2.5)
    assert np.allclose(scaled.sum(1), 1) and (scaled.argmax(1) == probs.argmax(1)).all()
    assert (scaled.max(1) < probs.max(1)).all()  # T > 1 softens


def test_fitted_temperature_recovers_the_truth_and_lowers_ece():
    probs, labels = _overconfident()
    temperature = fit_temperature(probs, labels)
    assert temperature == pytest.approx(3.0, rel=0.12)
    before = expected_calibration_error(probs, labels)
    after = expected_calibration_error(apply_temperature(probs, temperature), labels)
    assert before > 0.1 and after < 0.03


def test_ece_and_reliability_by_hand():
    probs = np.array([[0.9, 0.1] + [0] * 5, [0.9, 0.1] + [0] * 5, [0.55, 0.45] + [0] * 5])
    labels = np.array([0, 1, 0])
    rows = reliability(probs, labels, bins=10)
    assert [r["count"] for r in rows] == [0, 0, 0, 0, 0, 1, 0, 0, 2, 0]  # (0.5, 0.6], (0.8, 0.9]
    top = rows[8]
    assert top["confidence"] == pytest.approx(0.9) and top["accuracy"] == 0.5
    # |0.5 - 0.9| * 2/3 + |1 - 0.55| * 1/3
    assert expected_calibration_error(probs, labels, bins=10) == pytest.approx(
        0.4 * 2 / 3 + 0.45 / 3
    )


def test_removing_label_smoothing_lifts_the_floor():
    smooth = np.full((1, 7), 0.1 / 7)
    smooth[0, 3] += 0.9
    assert remove_smoothing(smooth, 0.1, 1e-3)[0, 3] > 0.99
    assert np.allclose(remove_smoothing(smooth, 0.0, 1e-3), smooth)
    fitted = fit_calibration(*_overconfident(800), smoothing=0.1)
    assert set(fitted) == {"smoothing", "floor", "temperature"} and fitted["temperature"] > 0
    assert np.allclose(calibrate(smooth, {}), smooth)


def test_uncertainty_threshold_is_where_guesses_start_being_right():
    # Top probability 0.3 -> right 20% of the time; 0.8 -> right 90% of the time: the
    # threshold is the lower edge of 0.8's bin, (0.7, 0.8].
    probs = np.array(
        [[0.3, 0.25, 0.2, 0.1, 0.05, 0.05, 0.05]] * 10 + [[0.8, 0.1, 0.1, 0, 0, 0, 0]] * 10
    )
    labels = np.array([0] * 2 + [1] * 8 + [0] * 9 + [1])
    assert uncertainty_threshold(probs, labels, bins=10) == pytest.approx(0.7)


def test_report_is_fitted_on_public_and_only_measured_on_test():
    public, public_labels = _overconfident(2000, seed=1)
    test, test_labels = _overconfident(2000, seed=2)
    report = calibration_report(public, public_labels, test, test_labels)
    again = calibration_report(public, public_labels, test[::-1], test_labels[::-1])
    assert report["temperature"] == again["temperature"]  # the test split never steers it
    assert report["test"]["ece_after"] < report["test"]["ece_before"]
    assert len(report["test"]["reliability_after"]) == 15


def test_predict_faces_applies_the_cards_calibration_and_can_give_raw(tmp_path):
    from fer_core.models.inference import EmotionModel

    for name in ("cnn_gru.keras", "cnn_gru.tflite"):
        shutil.copy(ROOT / "models" / name, tmp_path / name)
    crops = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    raw = EmotionModel(tmp_path / "cnn_gru.keras").predict_faces(crops)
    calibration = {"smoothing": 0.0, "floor": 0.0, "temperature": 2.0}
    (tmp_path / "cnn_gru.card.json").write_text(json.dumps({"calibration": calibration}))
    model = EmotionModel(tmp_path / "cnn_gru.keras")
    assert np.allclose(model.predict_faces(crops, calibrated=False), raw, atol=1e-6)
    assert np.allclose(model.predict_faces(crops), apply_temperature(raw, 2.0), atol=1e-5)


def test_shipped_cards_record_calibration_and_the_app_uses_it():
    from fer_core.models.inference import SHIPPED_MODELS, load_model

    for path in SHIPPED_MODELS.values():
        card = json.loads(path.with_name(path.stem + ".card.json").read_text())
        calibration = card["calibration"]
        assert calibration["fitted_on"] == "PublicTest" and calibration["bins"] == 15
        assert calibration["test"]["split"] == card["test"]["split"] == "PrivateTest"
        assert calibration["test"]["ece_after"] < calibration["test"]["ece_before"]
        assert card["latency"]["batch_1"]["backend"] == "litert"
        assert load_model(path).calibration["temperature"] == calibration["temperature"]
    default = json.loads((ROOT / "models" / "cnn_gru.card.json").read_text())
    # The default learned FER+'s vote shares: its temperature is fitted to them, and its
    # uncertain threshold and ECE are read against the crowd's clear majority.
    assert default["training"]["config"]["labels"] == "ferplus-votes"
    assert default["calibration"]["fitted_to"] == "FER+ vote shares (PublicTest)"
    assert default["calibration"]["labels"] == "ferplus-majority"
    assert default["files"]["litert"]["quantization"] == "int8"
    # The alternative is v3 (FER2013's labels): ECE 0.022 calibrated (docs/history.md).
    alternative = json.loads((ROOT / "models" / "cnn_gru_fer2013.card.json").read_text())
    assert alternative["training"]["run"] == "cnn_gru_v3_soup"
    assert len(alternative["training"]["averaged_from"]) == 2
    assert alternative["calibration"]["labels"] == "fer2013"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_activating_a_run_times_the_fast_path_the_app_will_use(tmp_path):
    """Bug 3: the run's card timed best.keras with Keras; the app runs LiteRT."""
    from fer_core.models.architectures import build_model, save_keras_model
    from fer_core.models.inference import file_sha256
    from fer_core.service.active import activate_run

    run = tmp_path / "runs" / "small"
    save_keras_model(build_model("mini_xception"), run / "best.keras")
    keras_latency = {"backend": "keras", "batch_size": 1, "median_ms": 182.24}
    (run / "best.card.json").write_text(
        json.dumps(
            {
                "name": "best",
                "flip_average": False,
                "files": {"keras": {"sha256": file_sha256(run / "best.keras")}},
                "latency": {"batch_1": keras_latency, "batch_32": keras_latency},
            }
        )
    )
    target = activate_run(run, tmp_path / "runs")
    card = json.loads(target.with_name(target.stem + ".card.json").read_text())
    assert card["latency"]["batch_1"]["backend"] == "litert"
    assert card["latency"]["batch_32"]["backend"] == "litert"
    assert card["latency"]["batch_1"]["median_ms"] != 182.24


@pytest.mark.timeout(600)
def test_card_ece_matches_an_outside_computation_on_privatetest(fer2013, request):
    """The card's calibrated ECE, recomputed here without fer_core.models.calibration or
    fer_core.data.ferplus from what the app gets (load_model().predict_faces, calibration applied)
    on PrivateTest, against the labels the card says it was measured on: FER2013's, or for a
    crowd model the FER+ clear majority (more than half of all ten votes on one emotion)."""
    import pandas as pd

    from fer_core.models.inference import load_model

    card = json.loads((ROOT / "models" / "cnn_gru.card.json").read_text())["calibration"]
    images, labels = fer2013.split("PrivateTest")
    if card.get("labels") == "ferplus-majority":
        votes = pd.read_csv(request.getfixturevalue("ferplus_path"))
        private = (votes["Usage"] == "PrivateTest").to_numpy()
        emotions = votes[
            ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]
        ].to_numpy()[private]
        totals = votes.iloc[:, 2:12].to_numpy()[private].sum(axis=1)
        clear = emotions.max(axis=1) * 2 > totals
        images, labels = images[clear], emotions.argmax(axis=1)[clear]
        assert len(labels) == card["test"]["n"] == 2720
    model = load_model()
    probs = np.concatenate(
        [model.predict_faces(images[i : i + 256]) for i in range(0, len(images), 256)]
    )
    confidence, right = probs.max(axis=1), probs.argmax(axis=1) == labels
    edges = np.linspace(0, 1, 16)
    ece = sum(
        ((confidence > lo) & (confidence <= hi)).mean()
        * abs(
            right[(confidence > lo) & (confidence <= hi)].mean()
            - confidence[(confidence > lo) & (confidence <= hi)].mean()
        )
        for lo, hi in zip(edges[:-1], edges[1:])
        if ((confidence > lo) & (confidence <= hi)).any()
    )
    assert ece == pytest.approx(card["test"]["ece_after"], abs=1e-6)
    assert ece < card["test"]["ece_before"]
