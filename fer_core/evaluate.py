"""Evaluation: accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix."""

from __future__ import annotations

import numpy as np

from .labels import EMOTIONS, NUM_CLASSES


def predict_probabilities(model, images: np.ndarray, batch_size: int = 256,
                          flip_average: bool = False) -> np.ndarray:
    """Probabilities for (N, 48, 48) uint8 images with a Keras model or an EmotionModel."""
    predict = getattr(model, "predict_faces", None)
    if predict is None:
        def predict(batch):
            return np.asarray(model.predict(batch.astype(np.float32)[..., None],
                                            batch_size=batch_size, verbose=0))
    images = np.asarray(images, dtype=np.uint8)
    probs = np.concatenate([predict(images[i:i + batch_size])
                            for i in range(0, len(images), batch_size)]) if len(images) else \
        np.zeros((0, NUM_CLASSES), np.float32)
    if flip_average and len(images):
        flipped = images[:, :, ::-1]
        probs = 0.5 * (probs + np.concatenate([predict(flipped[i:i + batch_size])
                                               for i in range(0, len(images), batch_size)]))
    return probs


def classification_report(labels: np.ndarray, predictions: np.ndarray) -> dict:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=list(range(NUM_CLASSES)), zero_division=0)
    matrix = confusion_matrix(labels, predictions, labels=list(range(NUM_CLASSES)))
    return {
        "n": int(len(labels)),
        "accuracy": float(np.mean(labels == predictions)) if len(labels) else float("nan"),
        "macro_f1": float(np.mean(f1)),
        "per_class": {
            emotion: {"precision": float(precision[i]), "recall": float(recall[i]),
                      "f1": float(f1[i]), "support": int(support[i])}
            for i, emotion in enumerate(EMOTIONS)
        },
        "confusion_matrix": matrix.tolist(),
        "labels": list(EMOTIONS),
    }


def evaluate_images(model, images: np.ndarray, labels: np.ndarray,
                    flip_average: bool = False) -> dict:
    probs = predict_probabilities(model, images, flip_average=flip_average)
    report = classification_report(labels, probs.argmax(axis=1))
    report["flip_average"] = bool(flip_average)
    return report


def format_report(report: dict) -> str:
    lines = [f"images: {report['n']}",
             f"accuracy: {report['accuracy'] * 100:.2f}%",
             f"macro-F1: {report['macro_f1']:.4f}",
             "",
             f"{'class':<10}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for emotion, row in report["per_class"].items():
        lines.append(f"{emotion:<10}{row['precision']:>10.3f}{row['recall']:>10.3f}"
                     f"{row['f1']:>10.3f}{row['support']:>10d}")
    lines += ["", "confusion matrix (rows: true, columns: predicted)",
              " " * 10 + "".join(f"{e[:8]:>9}" for e in EMOTIONS)]
    for emotion, row in zip(EMOTIONS, report["confusion_matrix"]):
        lines.append(f"{emotion:<10}" + "".join(f"{v:>9d}" for v in row))
    return "\n".join(lines)


def write_model_card(model_path, test_report: dict, *, split: str, flip_average: bool,
                     selection: dict | None, run_dir=None, latency: dict | None = None,
                     data_source: str = "") -> dict:
    """Write ``<model>.card.json`` beside the model from measured numbers (never by hand)."""
    import platform
    import time
    from pathlib import Path

    from .inference import card_path_for, file_sha256, litert_path_for
    from .model import load_keras_model
    from .train import read_history, read_json, write_json

    model_path = Path(model_path)
    keras_model = load_keras_model(model_path)
    training: dict = {}
    if run_dir is not None:
        run_dir = Path(run_dir)
        config = read_json(run_dir / "config.json", {}) or {}
        state = read_json(run_dir / "state.json", {}) or {}
        history = read_history(run_dir)
        config.pop("data_path", None)
        config.pop("runs_dir", None)
        training = {
            "run": run_dir.name, "config": config,
            "epochs_done": len(history), "best_epoch": state.get("best_epoch"),
            "best_val_accuracy": state.get("best_val_accuracy"),
            # Sum of the finished epochs' wall time (resumed runs included).
            "train_seconds": round(sum(row.get("seconds", 0.0) for row in history), 1),
            "data": ("FER2013 Training split (28,709 images)" if not config.get("train_subset")
                     else f"FER2013 Training split, stratified subset of "
                          f"{config['train_subset']:,} images"),
            "selection_split": "PublicTest (3,589 images)",
            "seed": config.get("seed"),
            # Which weights best.keras holds ("weights" of an epoch, or the "swa" average of
            # the epochs from swa_start to best_epoch), and the BatchNorm recalibration that
            # ended the run.
            "best_kind": state.get("best_kind", "weights"),
            "swa_snapshots": (int(state.get("best_epoch", 0)) - int(config.get("swa_start") or 0)
                              + 1 if state.get("best_kind") == "swa" else 0),
            "recalibration": state.get("recalibration"),
        }
        init_from = config.get("init_from")
        if init_from:  # a fine-tuning run: say what it started from, and count its time too
            base_dir = Path(init_from).parent
            if not base_dir.is_dir():  # a relative path from another folder: a sibling run
                base_dir = run_dir.parent / base_dir.name
            base_history = read_history(base_dir) if (base_dir / "history.csv").is_file() else []
            base_seconds = round(sum(row.get("seconds", 0.0) for row in base_history), 1)
            training["initialised_from"] = {"file": init_from, "run": base_dir.name,
                                            "epochs_done": len(base_history),
                                            "train_seconds": base_seconds}
            training["total_train_seconds"] = round(training["train_seconds"] + base_seconds, 1)
    litert = litert_path_for(model_path)
    card = {
        "name": model_path.stem,
        "architecture": keras_model.name,
        "parameters": int(keras_model.count_params()),
        "input": "48x48x1 grey, raw 0..255 (normalised inside the model)",
        "classes": list(EMOTIONS),
        "files": {
            "keras": {"file": model_path.name, "bytes": model_path.stat().st_size,
                      "sha256": file_sha256(model_path)},
            **({"litert": {"file": litert.name, "bytes": litert.stat().st_size,
                           "sha256": file_sha256(litert)}} if litert.is_file() else {}),
        },
        "training": training,
        "flip_average": bool(flip_average),
        "selection": selection or {},
        "test": {"split": split, **test_report},
        "latency": latency or {},
        "data_source": Path(data_source).name if data_source else "",
        "written_by": "python -m fer_core evaluate --write-card",
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "processor": platform.machine(),
                    "python": platform.python_version()},
    }
    write_json(card_path_for(model_path), card)
    return card
