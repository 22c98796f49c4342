import numpy as np

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
