"""Evaluation: accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix."""

from __future__ import annotations

import numpy as np

from fer_core.data.fer2013 import duplicates_of_training
from fer_core.data.ferplus import FerPlus, agreement_report, aligned
from fer_core.labels import EMOTIONS, NUM_CLASSES


def predict_probabilities(
    model,
    images: np.ndarray,
    batch_size: int = 256,
    flip_average: bool = False,
    calibrated: bool = True,
    progress=None,
) -> np.ndarray:
    """Probabilities for (N, 48, 48) uint8 images with a Keras model or an EmotionModel
    (``calibrated=False``: an EmotionModel's raw probabilities, before its card's calibration).
    ``progress(done, total)`` is called after each batch."""
    predict = getattr(model, "predict_faces", None)
    if predict is not None and not calibrated:
        predict_calibrated = predict

        def predict(batch):
            return predict_calibrated(batch, calibrated=False)

    if progress is not None and predict is not None:
        inner, done = predict, [0]

        def predict(batch):
            result = inner(batch)
            done[0] += len(batch)
            progress(done[0], len(images) * (2 if flip_average else 1))
            return result

    if predict is None:

        def predict(batch):
            return np.asarray(
                model.predict(batch.astype(np.float32)[..., None], batch_size=batch_size, verbose=0)
            )

    images = np.asarray(images, dtype=np.uint8)
    # A bare Keras model without progress: one predict call per pass over all the images (one
    # compiled function, no per-batch set-up); predict batches them itself.
    step = (
        max(len(images), 1)
        if getattr(model, "predict_faces", None) is None and progress is None
        else batch_size
    )
    probs = (
        np.concatenate([predict(images[i : i + step]) for i in range(0, len(images), step)])
        if len(images)
        else np.zeros((0, NUM_CLASSES), np.float32)
    )
    if flip_average and len(images):
        flipped = images[:, :, ::-1]
        probs = 0.5 * (
            probs
            + np.concatenate([predict(flipped[i : i + step]) for i in range(0, len(images), step)])
        )
    return probs


def accuracy(model, images: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of a Keras model on (N, 48, 48) uint8 images."""
    return float(np.mean(predict_probabilities(model, images).argmax(1) == labels))


def balanced_accuracy(recall, support) -> float | None:
    """The mean of per-class recall over the classes that occur (a model that answers the
    commonest class scores 1/K here, however well it does on accuracy)."""
    present = np.asarray(support) > 0
    return float(np.mean(np.asarray(recall)[present])) if present.any() else None


def classification_report(labels: np.ndarray, predictions: np.ndarray) -> dict:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=list(range(NUM_CLASSES)), zero_division=0
    )
    matrix = confusion_matrix(labels, predictions, labels=list(range(NUM_CLASSES)))
    return {
        "n": int(len(labels)),
        "accuracy": float(np.mean(labels == predictions)) if len(labels) else float("nan"),
        "macro_f1": float(np.mean(f1)),
        "balanced_accuracy": balanced_accuracy(recall, support),
        "per_class": {
            emotion: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, emotion in enumerate(EMOTIONS)
        },
        "confusion_matrix": matrix.tolist(),
        "labels": list(EMOTIONS),
    }


def evaluate_images(
    model, images: np.ndarray, labels: np.ndarray, flip_average: bool = False
) -> dict:
    probs = predict_probabilities(model, images, flip_average=flip_average)
    report = classification_report(labels, probs.argmax(axis=1))
    report["flip_average"] = bool(flip_average)
    return report


def held_out_reports(dataset, split: str, probabilities: np.ndarray, ferplus=None) -> dict:
    """The numbers beyond FER2013's own labels, for ``probabilities`` of ``split``'s rows:

    - ``without_training_copies``: FER2013's labels, without the images of ``split`` that are
      exact copies of a Training image (how many is in ``removed``);
    - ``ferplus`` (when FER+ votes are given): agreement with the crowd
      (``fer_core.data.ferplus.agreement_report``), on the clear-majority faces and by the FER+
      paper's majority protocol.
    """

    labels = dataset.labels[dataset.usage == split]
    guesses = np.asarray(probabilities).argmax(axis=1)
    copies = (
        duplicates_of_training(dataset, split)
        if split != "Training"
        else np.zeros(len(labels), dtype=bool)
    )
    kept = classification_report(labels[~copies], guesses[~copies])
    result = {
        "without_training_copies": {
            "n": kept["n"],
            "removed": int(copies.sum()),
            "accuracy": kept["accuracy"],
            "macro_f1": kept["macro_f1"],
        }
    }
    if ferplus is not None:
        votes = aligned(ferplus, dataset)
        inside = dataset.usage == split
        split_votes = FerPlus(votes.votes[inside], votes.usage[inside], votes.source)
        majority = split_votes.clear_majority()
        clear = majority >= 0
        report = agreement_report(probabilities, split_votes)
        report["majority_report"] = classification_report(majority[clear], guesses[clear])
        report["source"] = votes.source
        result["ferplus"] = report
    return result


def format_held_out(reports: dict) -> str:
    copies = reports["without_training_copies"]
    lines = [
        f"without the {copies['removed']} images that copy a Training image: "
        f"{copies['accuracy'] * 100:.2f}% of {copies['n']} (macro-F1 "
        f"{copies['macro_f1']:.4f})"
    ]
    crowd = reports.get("ferplus")
    if crowd:
        lines.append(
            f"agreement with the FER+ majority (clear faces, {crowd['clear_faces']}): "
            f"{crowd['majority_agreement'] * 100:.2f}%, macro-F1 "
            f"{crowd['majority_report']['macro_f1']:.4f}"
        )
        lines.append(
            f"FER+ paper's majority protocol ({crowd['emotion_faces']} faces): "
            f"{crowd['plurality_agreement'] * 100:.2f}%"
        )
        lines.append(
            f"distance to the crowd's vote shares: KL {crowd['crowd_kl']:.4f}, "
            f"total variation {crowd['crowd_tv']:.4f}; ECE against the majority "
            f"{crowd['majority_ece']:.4f}"
        )
    return "\n".join(lines)


def format_report(report: dict) -> str:
    lines = [
        f"images: {report['n']}",
        f"accuracy: {report['accuracy'] * 100:.2f}%",
        f"macro-F1: {report['macro_f1']:.4f}",
        "",
        f"{'class':<10}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}",
    ]
    for emotion, row in report["per_class"].items():
        lines.append(
            f"{emotion:<10}{row['precision']:>10.3f}{row['recall']:>10.3f}"
            f"{row['f1']:>10.3f}{row['support']:>10d}"
        )
    lines += [
        "",
        "confusion matrix (rows: true, columns: predicted)",
        " " * 10 + "".join(f"{e[:8]:>9}" for e in EMOTIONS),
    ]
    for emotion, row in zip(EMOTIONS, report["confusion_matrix"]):
        lines.append(f"{emotion:<10}" + "".join(f"{v:>9d}" for v in row))
    return "\n".join(lines)


__all__ = [
    "predict_probabilities",
    "accuracy",
    "classification_report",
    "evaluate_images",
    "format_report",
    "held_out_reports",
    "format_held_out",
]
