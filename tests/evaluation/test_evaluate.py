import numpy as np
import pytest

from fer_core.evaluation.reports import classification_report, format_report


def test_report_numbers():
    labels = np.array([0, 0, 1, 3, 3, 3, 6])
    preds = np.array([0, 1, 1, 3, 3, 6, 6])
    report = classification_report(labels, preds)
    assert report["accuracy"] == 5 / 7
    assert report["per_class"]["angry"]["recall"] == 0.5
    assert report["per_class"]["happy"]["precision"] == 1.0
    assert report["confusion_matrix"][3] == [0, 0, 0, 2, 0, 0, 1]
    assert report["per_class"]["fear"]["support"] == 0
    assert "macro-F1" in format_report(report)


def test_balanced_accuracy_is_the_mean_recall_of_the_classes_present():
    from fer_core.evaluation.reports import classification_report
    from fer_core.models.card import balanced_of

    # Nine neutral faces, one angry: always answering neutral is 90% accurate, 50% balanced.
    labels = np.array([6] * 9 + [0])
    report = classification_report(labels, np.full(10, 6))
    assert report["accuracy"] == pytest.approx(0.9)
    assert report["balanced_accuracy"] == pytest.approx(0.5)
    # An older card's report without the field: derived from its per-class rows.
    older = {k: v for k, v in report.items() if k != "balanced_accuracy"}
    assert balanced_of(older) == pytest.approx(0.5)
    # bench.wild's muxspace entries: recall and support by class (a class with no faces
    # does not count).
    by_class = {"recall": {"angry": 0.2, "fear": 0.0, "happy": 0.8}}
    assert balanced_of({**by_class, "support": {"angry": 5, "fear": 0, "happy": 9}}) == (
        pytest.approx(0.5)
    )
    assert balanced_of({}) is None
