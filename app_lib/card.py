"""How the model card's training section reads on the Model page (plain functions, no
streamlit, so they are tested directly)."""

from __future__ import annotations

from pathlib import PurePath


def _percent(value) -> str | None:
    return None if value is None else f"{value * 100:.1f}%"


def _minutes(seconds) -> str | None:
    return f"{seconds / 60:.0f} min" if seconds else None


def _lineage_step(step: dict) -> str:
    if step.get("changed"):
        return (f"{PurePath(str(step.get('file'))).name} (the file has changed since, so "
                "what came before is not shown)")
    epochs = step.get("epochs_done")
    if epochs is None:
        return f"{PurePath(str(step.get('file'))).name} (its training was not recorded)"
    return (f"run {step.get('run')}: {epochs} epochs, "
            f"{_minutes(step.get('train_seconds')) or 'time not recorded'}")


def training_rows(training: dict) -> dict[str, str]:
    """Setting -> value for the card's ``training`` section, leaving out what it lacks.

    A fine-tuned model (``initialised_from``) shows the runs it started from, nearest first
    (``lineage``), and the training time counts them all.
    """
    config = training.get("config") or {}
    base = training.get("initialised_from") or {}
    recalibration = training.get("recalibration") or {}
    swa = training.get("swa_snapshots") or 0
    rows = {
        "data": training.get("data"),
        "training images used": (f"{config['train_subset']:,} (stratified subset)"
                                 if config.get("train_subset") else "all"),
        "model chosen on": training.get("selection_split"),
        "started from": (" ← ".join(_lineage_step(step) for step in
                                    training.get("lineage") or [base]) if base else None),
        "averaged from": ("; ".join(" ← ".join(_lineage_step(step) for step in chain)
                                    for chain in training["averaged_from"])
                          if training.get("averaged_from") else None),
        "epochs trained": (None if training.get("averaged_from") else
                           f"{training.get('epochs_done')} more" if base
                           else training.get("epochs_done")),
        "best epoch": None if training.get("averaged_from") else training.get("best_epoch"),
        "weights": ({"swa": f"average of the epochs from {config.get('swa_start')} to "
                            f"{training.get('best_epoch')} (stochastic weight averaging)",
                     "weights": "one epoch's weights"}.get(training.get("best_kind"))
                    if swa else f"the mean of the {len(training['averaged_from'])} models' "
                                "weights (a model soup)"
                    if training.get("averaged_from") else None),
        "BatchNorm statistics": (
            (f"recomputed on plain Training images (validation "
             f"{_percent(recalibration.get('val_accuracy_before'))} → "
             f"{_percent(recalibration.get('val_accuracy_after'))})")
            if recalibration.get("kept") and recalibration.get("val_accuracy_before") is not None
            else "recomputed on plain Training images" if recalibration.get("kept") else
            ("as training left them (recomputing them did not help on validation)"
             if recalibration else None)),
        "best validation accuracy": _percent(training.get("best_val_accuracy")),
        "training time": (f"{_minutes(training.get('total_train_seconds'))} in all"
                          if training.get("total_train_seconds")
                          else _minutes(training.get("train_seconds"))),
        "batch size": config.get("batch_size"),
        "learning rate": config.get("learning_rate"),
        "schedule": config.get("schedule"),
        "label smoothing": config.get("label_smoothing"),
        "class weighting": config.get("class_weighting"),
        "augmentation": (f"flip {config.get('horizontal_flip')}, rotation "
                         f"{config.get('rotation_degrees')}°, shift "
                         f"{config.get('shift_fraction')}, zoom {config.get('zoom_fraction')}")
        if "rotation_degrees" in config else None,
        "image mixing": (f"{config.get('mix')} (alpha {config.get('mix_alpha')})"
                         if config.get("mix") not in (None, "none") else None),
        "distilled from": (", ".join(PurePath(str(item)).name for item in config["teacher"])
                           + f" (temperature {config.get('distill_temperature')}, teacher "
                             f"weight {config.get('distill_weight')})"
                           if config.get("teacher") else None),
        "seed": training.get("seed"),
    }
    return {key: str(value) for key, value in rows.items() if value is not None}


def top_confusions(matrix, labels, count: int = 3) -> list[tuple[str, str, float]]:
    """The ``count`` largest off-diagonal shares of the confusion matrix: (true, predicted,
    share of the true class), largest first."""
    pairs = []
    for i, row in enumerate(matrix):
        total = sum(row)
        for j, value in enumerate(row):
            if i != j and total:
                pairs.append((labels[i], labels[j], value / total))
    return sorted(pairs, key=lambda pair: pair[2], reverse=True)[:count]


def weak_classes(test: dict, count: int = 3) -> list[str]:
    """Sentences about the classes with the lowest recall in the card's test report: recall,
    test images, and what they are mistaken for most often (all read from the card)."""
    per_class = test.get("per_class") or {}
    matrix = test.get("confusion_matrix")
    labels = test.get("labels") or list(per_class)
    if not per_class:
        return []
    ranked = sorted(per_class.items(), key=lambda item: item[1].get("recall", 0.0))[:count]
    lines = []
    for emotion, scores in ranked:
        line = (f"*{emotion}*: recall {_percent(scores.get('recall'))} on "
                f"{scores.get('support', 0):,} test images")
        if matrix and emotion in labels:
            i = labels.index(emotion)
            row = matrix[i]
            total = sum(row) or 1
            mistakes = sorted(((row[j] / total, labels[j]) for j in range(len(row)) if j != i),
                              reverse=True)[:2]
            named = [f"*{label}* ({_percent(share)})" for share, label in mistakes if share > 0]
            if named:
                line += ", most often taken for " + " or ".join(named)
        lines.append(line)
    return lines
