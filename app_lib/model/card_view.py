"""How the model card's training section reads on the Model page (plain functions, no
streamlit, so they are tested directly)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

from fer_core.faces import DEFAULT_DETECTOR
from fer_core.models.card import ModelCard


def _percent(value) -> str | None:
    return None if value is None else f"{value * 100:.1f}%"


def _minutes(seconds) -> str | None:
    return f"{seconds / 60:.0f} min" if seconds else None


def _lineage_step(step: dict) -> str:
    if step.get("changed"):
        return (
            f"{PurePath(str(step.get('file'))).name} (the file has changed since, so "
            "what came before is not shown)"
        )
    epochs = step.get("epochs_done")
    if epochs == 0 and not step.get("train_seconds"):
        return (
            f"{PurePath(str(step.get('file'))).name} (run {step.get('run')}: an average of "
            "fine-tuned models; its own card lists them)"
        )
    if epochs is None:
        return f"{PurePath(str(step.get('file'))).name} (its training was not recorded)"
    return (
        f"run {step.get('run')}: {epochs} epochs, "
        f"{_minutes(step.get('train_seconds')) or 'time not recorded'}"
    )


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
        "training images used": (
            f"{config['train_subset']:,} (stratified subset)"
            if config.get("train_subset")
            else "all"
        ),
        "faces captured on the Live page": (
            f"{training['captured_faces']:,}" if training.get("captured_faces") else None
        ),
        "model chosen on": training.get("selection_split"),
        "started from": (
            " ← ".join(_lineage_step(step) for step in training.get("lineage") or [base])
            if base
            else None
        ),
        "averaged from": (
            "; ".join(
                " ← ".join(_lineage_step(step) for step in chain)
                for chain in training["averaged_from"]
            )
            if training.get("averaged_from")
            else None
        ),
        "epochs trained": (
            None
            if training.get("averaged_from")
            else f"{training.get('epochs_done')} more"
            if base
            else training.get("epochs_done")
        ),
        "best epoch": None if training.get("averaged_from") else training.get("best_epoch"),
        "weights": (
            {
                "swa": f"average of the epochs from {config.get('swa_start')} to "
                f"{training.get('best_epoch')} (stochastic weight averaging)",
                "weights": "one epoch's weights",
            }.get(str(training.get("best_kind")))
            if swa
            else f"the mean of the {len(training['averaged_from'])} models' weights (a model soup)"
            if training.get("averaged_from")
            else None
        ),
        "BatchNorm statistics": (
            (
                f"recomputed on plain Training images (validation "
                f"{_percent(recalibration.get('val_accuracy_before'))} → "
                f"{_percent(recalibration.get('val_accuracy_after'))})"
            )
            if recalibration.get("kept") and recalibration.get("val_accuracy_before") is not None
            else "recomputed on plain Training images"
            if recalibration.get("kept")
            else (
                "as training left them (recomputing them did not help on validation)"
                if recalibration
                else None
            )
        ),
        "best validation accuracy": (
            f"{_percent(training.get('best_val_accuracy'))} (while "
            "training: Keras, no flip averaging"
            + (", FER+ majority" if config.get("labels") not in (None, "fer2013") else "")
            + ")"
            if training.get("best_val_accuracy") is not None
            else None
        ),
        "training time": (
            f"{_minutes(training.get('total_train_seconds'))} in all"
            if training.get("total_train_seconds")
            else _minutes(training.get("train_seconds"))
        ),
        "batch size": config.get("batch_size"),
        "learning rate": config.get("learning_rate"),
        "schedule": config.get("schedule"),
        "label smoothing": config.get("label_smoothing"),
        "class weighting": config.get("class_weighting"),
        "augmentation": (
            f"flip {config.get('horizontal_flip')}, rotation "
            f"{config.get('rotation_degrees')}°, shift "
            f"{config.get('shift_fraction')}, zoom {config.get('zoom_fraction')}"
        )
        if "rotation_degrees" in config
        else None,
        "image mixing": (
            f"{config.get('mix')} (alpha {config.get('mix_alpha')})"
            if config.get("mix") not in (None, "none")
            else None
        ),
        "distilled from": (
            ", ".join(PurePath(str(item)).name for item in config["teacher"])
            + f" (temperature {config.get('distill_temperature')}, teacher "
            f"weight {config.get('distill_weight')})"
            if config.get("teacher")
            else None
        ),
        "seed": training.get("seed"),
    }
    return {key: str(value) for key, value in rows.items() if value is not None}


LABEL_NAMES = {
    "fer2013": "FER2013's labels",
    "ferplus-votes": "FER+'s crowd votes",
    "ferplus-majority": "FER+'s crowd majority",
}


@dataclass(frozen=True)
class Headline:
    """The numbers a page may show about a model, each read from its card with its split.

    ``crop_*``: FER2013's own 48x48 crops; ``crowd_*``: agreement with FER+'s clear majority
    on the same split; ``path_*``: through the whole path (the detector's photo preset, end
    to end: a missed face counts as wrong), by FER2013's labels and by the crowd's."""

    split: str | None = None
    trained_on: str = "fer2013"
    crop_accuracy: float | None = None
    crop_macro_f1: float | None = None
    crop_balanced: float | None = None
    crop_faces: int | None = None
    copies_removed: int | None = None
    without_copies_accuracy: float | None = None
    crowd_agreement: float | None = None
    crowd_faces: int | None = None
    crowd_balanced: float | None = None
    posed_accuracy: float | None = None
    posed_balanced: float | None = None
    posed_recall: dict | None = None
    path_split: str | None = None
    path_accuracy: float | None = None
    path_framing_cost: float | None = None
    path_faces: int | None = None
    crowd_path_agreement: float | None = None
    crowd_path_faces: int | None = None
    latency_ms: float | None = None
    parameters: int | None = None
    architecture: str | None = None


def headline(card: ModelCard | None, detector: str = DEFAULT_DETECTOR) -> Headline:
    """The card's headline numbers, with the whole path of ``detector`` (photo preset)."""
    card = card or ModelCard(name="")
    test = card.test
    copies = card.held_out.get("without_training_copies") or {}
    crowd = card.held_out.get("ferplus") or {}
    path, section = card.whole_path_row("fer2013", detector)
    crowd_path, _ = card.whole_path_row("ferplus-majority", detector)
    return Headline(
        split=test.get("split"),
        trained_on=card.trained_labels,
        crop_accuracy=test.get("accuracy"),
        crop_macro_f1=test.get("macro_f1"),
        crop_balanced=card.balanced_accuracy("fer2013"),
        crop_faces=test.get("n"),
        copies_removed=copies.get("removed"),
        without_copies_accuracy=copies.get("accuracy"),
        crowd_agreement=crowd.get("majority_agreement"),
        crowd_faces=crowd.get("clear_faces"),
        crowd_balanced=card.balanced_accuracy("ferplus") if crowd else None,
        posed_accuracy=card.posed.get("accuracy"),
        posed_balanced=card.posed.get("balanced_accuracy"),
        posed_recall=card.posed.get("recall"),
        path_split=section.get("split"),
        path_accuracy=path.get("end_to_end") if path else None,
        path_framing_cost=path.get("framing_cost") if path else None,
        path_faces=path.get("faces") if path else None,
        crowd_path_agreement=crowd_path.get("end_to_end") if crowd_path else None,
        crowd_path_faces=crowd_path.get("faces") if crowd_path else None,
        latency_ms=card.latency_ms(1),
        parameters=card.parameters,
        architecture=card.architecture,
    )


def headline_sentences(numbers: Headline, detector_label: str) -> list[str]:
    """One plain sentence per number, saying what it means and where it was measured."""
    lines = []
    if numbers.crowd_agreement is not None:
        lines.append(
            f"On {numbers.crowd_faces:,} {numbers.split} faces on which most of ten "
            f"people agreed (FER+), the model names the emotion they chose "
            f"{_percent(numbers.crowd_agreement)} of the time."
        )
    if numbers.crowd_path_agreement is not None:
        lines.append(
            f"Through the whole path with {detector_label} (find the face, cut it "
            f"out, classify it; a missed face counts as wrong), it agrees with them "
            f"on {_percent(numbers.crowd_path_agreement)} of {numbers.crowd_path_faces:,}"
            f" {numbers.path_split} faces."
        )
    if numbers.posed_balanced is not None:
        lines.append(posed_sentence(numbers))
    if numbers.crop_accuracy is not None:
        lines.append(
            f"On FER2013's own labels (one person labelled each face; comparable "
            f"with published results), {_percent(numbers.crop_accuracy)} of "
            f"{numbers.crop_faces or 0:,} {numbers.split} crops"
            + (
                f", {_percent(numbers.without_copies_accuracy)} without the "
                f"{numbers.copies_removed} that copy a training image"
                if numbers.without_copies_accuracy is not None
                else ""
            )
            + "."
        )
    if numbers.path_accuracy is not None:
        lines.append(
            f"By the same labels through the whole path with {detector_label}: "
            f"{_percent(numbers.path_accuracy)} of {numbers.path_faces:,} "
            f"{numbers.path_split} faces."
        )
    return lines


def posed_sentence(numbers: Headline) -> str:
    """How the model does on faces people make on purpose, in one plain sentence."""
    recall = numbers.posed_recall or {}
    angry = recall.get("angry")
    return (
        "On faces made on purpose (posed expressions from the CK+ set, labelled by experts; "
        "none of them was used to train), it names the expression "
        f"{_percent(numbers.posed_accuracy)} of the time, {_percent(numbers.posed_balanced)} "
        f"averaged over the {len(recall)} expressions"
        + (f", and reads {_percent(angry)} of angry faces as angry" if angry is not None else "")
        + "."
    )


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


def own_labels_report(card: ModelCard | None) -> tuple[dict, str]:
    """The card's test report by the labels the model learned: FER+'s clear majority for a
    crowd model (when measured), else FER2013's; and what it was judged by."""
    if card is None:
        return {}, "FER2013's labels"
    crowd = (card.held_out.get("ferplus") or {}).get("majority_report")
    if card.trained_labels != "fer2013" and crowd:
        return crowd, "FER+ majority"
    return card.test, "FER2013's labels"


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
        line = (
            f"*{emotion}*: recall {_percent(scores.get('recall'))} on "
            f"{scores.get('support', 0):,} test images"
        )
        if matrix and emotion in labels:
            i = labels.index(emotion)
            row = matrix[i]
            total = sum(row) or 1
            mistakes = sorted(
                ((row[j] / total, labels[j]) for j in range(len(row)) if j != i), reverse=True
            )[:2]
            named = [f"*{label}* ({_percent(share)})" for share, label in mistakes if share > 0]
            if named:
                line += ", most often taken for " + " or ".join(named)
        lines.append(line)
    return lines
