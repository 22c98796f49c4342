"""The Model page's reading of the card's training section."""

import json
from pathlib import Path

from app_lib.model.card_view import training_rows
from fer_core.models.card import read_card

ROOT = Path(__file__).resolve().parents[2]


def test_plain_run():
    rows = training_rows(
        {
            "epochs_done": 80,
            "best_epoch": 72,
            "train_seconds": 5400,
            "best_val_accuracy": 0.6464,
            "config": {"batch_size": 64},
        }
    )
    assert rows["epochs trained"] == "80" and rows["training time"] == "90 min"
    assert rows["best validation accuracy"] == "64.6% (while training: Keras, no flip averaging)"
    assert "started from" not in rows and "weights" not in rows
    assert "BatchNorm statistics" not in rows


def test_a_crowd_run_says_whose_labels_its_validation_accuracy_is_on():
    rows = training_rows(
        {"epochs_done": 12, "best_val_accuracy": 0.885, "config": {"labels": "ferplus-votes"}}
    )
    assert rows["best validation accuracy"] == (
        "88.5% (while training: Keras, no flip averaging, FER+ majority)"
    )


def test_fine_tuned_averaged_recalibrated_run():
    rows = training_rows(
        {
            "epochs_done": 30,
            "best_epoch": 28,
            "train_seconds": 2160,
            "best_kind": "swa",
            "swa_snapshots": 29,
            "total_train_seconds": 7560,
            "initialised_from": {"run": "base", "epochs_done": 80, "train_seconds": 5400},
            "recalibration": {
                "kept": True,
                "val_accuracy_before": 0.6645,
                "val_accuracy_after": 0.6648,
            },
            "config": {"swa_start": 2},
        }
    )
    assert rows["started from"] == "run base: 80 epochs, 90 min"
    assert rows["epochs trained"] == "30 more"
    assert rows["weights"].startswith("average of the epochs from 2 to 28")
    assert rows["BatchNorm statistics"].endswith("(validation 66.5% → 66.5%)")
    assert rows["training time"] == "126 min in all"


def test_a_chain_of_fine_tunes_reads_nearest_first():
    steps = [
        {"run": "kd", "epochs_done": 6, "train_seconds": 1620},
        {"run": "alone", "epochs_done": 48, "train_seconds": 180},
        {
            "file": "models/old.keras",
            "run": "models",
            "epochs_done": None,
            "train_seconds": None,
            "changed": True,
        },
    ]
    rows = training_rows(
        {
            "epochs_done": 12,
            "train_seconds": 2400,
            "total_train_seconds": 4200,
            "initialised_from": steps[0],
            "lineage": steps,
            "config": {},
        }
    )
    assert rows["started from"] == (
        "run kd: 6 epochs, 27 min ← run alone: 48 epochs, 3 min ← "
        "old.keras (the file has changed since, so what came "
        "before is not shown)"
    )
    assert rows["training time"] == "70 min in all"


def test_the_shipped_card_reads_without_gaps():
    card = json.loads((ROOT / "models" / "cnn_gru.card.json").read_text())
    rows = training_rows(card["training"])
    assert "None" not in " ".join(rows.values())
    assert rows["model chosen on"].startswith("PublicTest")


def test_limits_text_is_computed_from_the_cards_confusion_matrix():
    from app_lib.model.card_view import own_labels_report, top_confusions, weak_classes

    card = read_card(ROOT / "models" / "cnn_gru.keras")
    # The default learned FER+'s votes: its weak classes are read against the crowd.
    test, judged_by = own_labels_report(card)
    assert judged_by == "FER+ majority"
    assert test is card.held_out["ferplus"]["majority_report"]
    lines = weak_classes(test)
    recalls = {e: v["recall"] for e, v in test["per_class"].items()}
    weakest = sorted(recalls, key=recalls.get)[:3]
    assert [line.split("*")[1] for line in lines] == weakest
    assert "happy" not in weakest  # the crowd's commonest, clearest class
    matrix = test["confusion_matrix"]
    labels = test["labels"]
    true, predicted, share = top_confusions(matrix, labels, 1)[0]
    i, j = labels.index(true), labels.index(predicted)
    assert (
        share
        == max(matrix[a][b] / sum(matrix[a]) for a in range(7) for b in range(7) if a != b)
        == matrix[i][j] / sum(matrix[i])
    )
    # A made-up card where disgust is weak says so, with its real confusion.
    fake = {
        "labels": ["angry", "disgust"],
        "confusion_matrix": [[9, 1], [6, 4]],
        "per_class": {
            "angry": {"recall": 0.9, "support": 10},
            "disgust": {"recall": 0.4, "support": 10},
        },
    }
    assert weak_classes(fake, 1) == [
        "*disgust*: recall 40.0% on 10 test images, most often taken for *angry* (60.0%)"
    ]


def test_the_home_sentences_say_how_the_model_does_on_faces_made_on_purpose():
    from app_lib.model.card_view import headline, headline_sentences

    card = read_card(ROOT / "models" / "cnn_gru.keras")
    numbers = headline(card, "haar")
    sentence = next(s for s in headline_sentences(numbers, "Haar") if "on purpose" in s)
    posed = card.posed
    assert f"{posed['accuracy'] * 100:.1f}%" in sentence
    assert f"{posed['balanced_accuracy'] * 100:.1f}%" in sentence
    assert f"reads {posed['recall']['angry'] * 100:.1f}% of angry faces as angry" in sentence
    assert numbers.crop_balanced is not None and numbers.crowd_balanced is not None
