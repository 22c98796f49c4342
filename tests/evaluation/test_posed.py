"""The posed yardstick (bench.posed): its report, and that each shipped card's posed numbers
are what the yardstick measures today."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bench.posed import load_posed, posed_report, score_model

ROOT = Path(__file__).resolve().parents[2]
POSED = Path(
    os.environ.get("FER_POSED_PATH")
    or ROOT.parent / "shared" / "data" / "posed" / "ckplus48_dev.csv"
)


def test_the_report_counts_only_the_classes_the_set_holds_and_the_pull_to_neutral():
    labels = np.array([0, 0, 0, 0, 3, 3])  # four angry faces, two happy; no neutral
    probs = np.zeros((6, 7))
    probs[[0, 1, 2], 6] = 0.7  # three angry faces called neutral
    probs[[0, 1, 2], 0] = 0.3
    probs[3, 0] = 1.0
    probs[[4, 5], 3] = 1.0
    report = posed_report(probs, labels)
    assert report["recall"] == {"angry": 0.25, "happy": 1.0}
    assert report["accuracy"] == pytest.approx(3 / 6)
    assert report["balanced_accuracy"] == pytest.approx((0.25 + 1.0) / 2)
    assert report["called_neutral"] == pytest.approx(0.5)
    assert report["mean_neutral_probability"]["angry"] == pytest.approx(2.1 / 4)


def test_a_posed_csv_is_read_with_its_subjects(tmp_path):
    pixels = " ".join(["7"] * 2304)
    path = tmp_path / "posed.csv"
    path.write_text(
        f"emotion,pixels,Usage,subject\n0,{pixels},PosedDev,S1\n5,{pixels},PosedDev,S2\n"
    )
    images, labels, subjects = load_posed(path)
    assert images.shape == (2, 48, 48) and images.dtype == np.uint8 and images[0, 0, 0] == 7
    assert labels.tolist() == [0, 5] and subjects.tolist() == ["S1", "S2"]


@pytest.mark.real_data
@pytest.mark.parametrize("stem", ["cnn_gru", "cnn_gru_fer2013"])
def test_each_shipped_card_holds_what_the_posed_yardstick_measures(stem):
    if not POSED.is_file():
        pytest.skip(f"no posed faces at {POSED} (set FER_POSED_PATH to CK+48's dev CSV)")
    from fer_core.models.card import read_card

    path = ROOT / "models" / f"{stem}.keras"
    card = read_card(path)
    assert card is not None and card.posed, f"{stem}: no posed section in its card"
    images, labels, _ = load_posed(POSED)
    entry = score_model(path, images, labels)
    assert entry["sha256"] == card.keras_sha256
    for key in ("n", "accuracy", "balanced_accuracy"):
        assert entry[key] == pytest.approx(card.posed[key], abs=1e-9), key
    assert entry["recall"] == pytest.approx(card.posed["recall"], abs=1e-9)


def test_the_card_keeps_the_posed_numbers_while_it_describes_the_same_file(tmp_path):
    from fer_core.errors import ModelError
    from fer_core.evaluation.reports import classification_report
    from fer_core.models.architectures import build_model, save_keras_model
    from fer_core.models.card import read_card
    from fer_core.models.card_writer import add_posed, write_model_card

    model_file = save_keras_model(build_model("mini_xception", width=4), tmp_path / "m.keras")
    report = classification_report(np.array([0, 3, 6]), np.array([0, 3, 3]))
    with pytest.raises(ModelError, match="no model card"):
        add_posed(model_file, {"accuracy": 0.5}, dataset="d.csv", command="c")
    write_model_card(model_file, report, split="PrivateTest", flip_average=False, selection=None)
    posed = posed_report(np.eye(7)[[0, 6]], np.array([0, 0]))
    add_posed(model_file, posed, dataset="d.csv (2 frames)", command="python -m bench.posed")
    card = read_card(model_file)
    assert card.posed["recall"] == {"angry": 0.5} and card.posed["set"] == "d.csv (2 frames)"
    assert card.test["balanced_accuracy"] == pytest.approx((1 + 1 + 0) / 3)
    # Written again for the same file (a new evaluation): the posed numbers stay.
    write_model_card(model_file, report, split="PrivateTest", flip_average=False, selection=None)
    assert read_card(model_file).posed["recall"] == {"angry": 0.5}
    # Another file in its place: they go, and cannot be added to a card about other bytes.
    save_keras_model(build_model("mini_xception", width=6), model_file)
    with pytest.raises(ModelError, match="another file"):
        add_posed(model_file, posed, dataset="d.csv", command="c")
    write_model_card(model_file, report, split="PrivateTest", flip_average=False, selection=None)
    assert read_card(model_file).posed == {}
