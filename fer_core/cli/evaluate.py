"""The ``fer evaluate`` command: a model's accuracy on a FER2013 split, by FER2013's labels and,
given FER+'s votes, by the crowd's; with ``--write-card``, the calibration (fitted on
PublicTest), the latency and the model card."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from fer_core.cli.console import count_printer, progress_printer, report_to, stage
from fer_core.data.fer2013 import load_fer2013
from fer_core.data.ferplus import crowd_labels, crowd_shares, load_ferplus
from fer_core.data.paths import default_data_path
from fer_core.errors import DatasetError
from fer_core.evaluation.latency import measure_classifier_latency
from fer_core.evaluation.reports import (
    classification_report,
    evaluate_images,
    format_held_out,
    format_report,
    held_out_reports,
    predict_probabilities,
)
from fer_core.models.calibration import calibrate, calibration_report
from fer_core.models.card import ModelCard, read_card
from fer_core.models.card_writer import write_model_card
from fer_core.models.inference import DEFAULT_MODEL, EmotionModel
from fer_core.safe_text import terminal_safe
from fer_core.storage import write_json
from fer_core.training.provenance import training_section
from fer_core.training.runs import Run


def add_evaluate_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy, macro-F1, per-class report, confusion matrix")
    p.add_argument("--model", default=None, help="a .keras file (default: the shipped model)")
    p.add_argument("--data", default=default_data_path(), help="FER2013 (default: $FER2013_PATH)")
    p.add_argument(
        "--split", default="PrivateTest", choices=["Training", "PublicTest", "PrivateTest"]
    )
    flip = p.add_mutually_exclusive_group()
    flip.add_argument(
        "--flip",
        dest="flip",
        action="store_const",
        const=True,
        default=None,
        help="average with the mirrored face (default: as the model card chose, "
        "i.e. the model as users get it)",
    )
    flip.add_argument(
        "--no-flip",
        dest="flip",
        action="store_const",
        const=False,
        help="the plain model, without averaging with the mirrored face",
    )
    flip.add_argument(
        "--choose-flip",
        action="store_true",
        help="decide flip averaging on PublicTest before evaluating",
    )
    p.add_argument(
        "--ferplus",
        default=None,
        help="FER+'s fer2013new.csv: also measure agreement with the crowd "
        "(default: $FERPLUS_PATH, skipped with a note when it describes "
        "another dataset)",
    )
    p.add_argument("--json", default=None, help="also write the report to this JSON file")
    p.add_argument(
        "--write-card",
        action="store_true",
        help="write the model card (<model>.card.json) from this evaluation",
    )
    p.add_argument("--run", default=None, help="run folder the model came from (for the card)")
    p.add_argument("--skip-bad-rows", action="store_true")
    p.add_argument(
        "--progress",
        default=None,
        metavar="FILE",
        help="also record the stage and fraction done in this JSON file (the app's jobs read it)",
    )
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    report_to(args.progress)
    model_path = args.model or DEFAULT_MODEL
    dataset = load_fer2013(
        args.data, skip_bad=args.skip_bad_rows, progress=progress_printer("loading FER2013")
    )
    flip = args.flip  # None: the model card's choice (EmotionModel reads it)
    selection = None
    ferplus = _ferplus_votes(args.ferplus, dataset)
    previous = read_card(model_path)
    crowd_model = _trained_labels(args.run, previous) != "fer2013"
    if args.choose_flip:
        # Decide test-time flip averaging on PublicTest only; PrivateTest never steers it.
        # A crowd model is judged by the crowd (the faces with a clear FER+ majority).
        x_val, y_val = dataset.split("PublicTest")
        judged_by = "FER2013 labels"
        if crowd_model and ferplus is not None:
            y_val, keep = crowd_labels(ferplus, dataset, "PublicTest")
            x_val, judged_by = x_val[keep], "FER+ majority (clear faces)"
        plain = evaluate_images(EmotionModel(model_path, flip_average=False), x_val, y_val)
        flipped = evaluate_images(EmotionModel(model_path, flip_average=True), x_val, y_val)
        flip = flipped["accuracy"] > plain["accuracy"]
        selection = {
            "split": "PublicTest",
            "judged_by": judged_by,
            "accuracy_plain": plain["accuracy"],
            "accuracy_flip_average": flipped["accuracy"],
            "macro_f1_plain": plain["macro_f1"],
            "macro_f1_flip_average": flipped["macro_f1"],
            "flip_average": flip,
        }
        print(
            f"PublicTest: plain {plain['accuracy']:.4f}, flip-averaged "
            f"{flipped['accuracy']:.4f} -> flip_average={flip}"
        )
    model = EmotionModel(model_path, flip_average=flip)
    images, labels = dataset.split(args.split)
    if len(labels) == 0:
        print(f"error: the dataset has no {args.split} rows", file=sys.stderr)
        return 2
    # Raw probabilities: the accuracy does not depend on calibration (it keeps every face's
    # ranking), and the calibration is fitted and measured on the network's own output.
    raw = predict_probabilities(
        model, images, calibrated=False, progress=count_printer(f"evaluating on {args.split}")
    )
    report = classification_report(labels, raw.argmax(axis=1))
    report["flip_average"] = model.flip_average
    chosen_by = " (the model card's choice)" if flip is None and model.card else ""
    print(
        f"model: {model.path} ({model.backend}"
        f"{', flip-averaged' if model.flip_average else ', not flip-averaged'}{chosen_by})"
    )
    print(f"split: {args.split}")
    print(format_report(report))
    calibration = None
    if args.write_card:
        # Calibration is fitted on PublicTest only; the evaluated split only reports it.
        x_public, y_public = dataset.split("PublicTest")
        if len(y_public):
            public = (
                raw
                if args.split == "PublicTest"
                else predict_probabilities(
                    model,
                    x_public,
                    calibrated=False,
                    progress=count_printer("calibrating on PublicTest"),
                )
            )
            smoothing = _label_smoothing(args.run, previous)
            public_keep: Any = slice(None)  # all faces, or the clear-majority faces' rows
            test_keep: Any = slice(None)
            fit = {}
            if crowd_model and ferplus is not None:
                # A model of the crowd: its temperature is fitted to PublicTest's vote shares
                # (its probabilities mean "the share of people who would call this face X");
                # the uncertain threshold and ECE are read against the clear majority.
                y_public, public_keep = crowd_labels(ferplus, dataset, "PublicTest")
                labels_for_test, test_keep = crowd_labels(ferplus, dataset, args.split)
                shares, emotion_faces = crowd_shares(ferplus, dataset, "PublicTest")
                fit = {"fit_probs": public[emotion_faces], "fit_targets": shares}
            else:
                labels_for_test = labels
            calibration = calibration_report(
                public[public_keep],
                y_public,
                raw[test_keep],
                labels_for_test,
                smoothing=smoothing,
                test_split=args.split,
                **fit,
            )
            if fit:
                calibration["fitted_to"] = "FER+ vote shares (PublicTest)"
                calibration["labels"] = "ferplus-majority"
            else:
                calibration["labels"] = "fer2013"
            print(
                f"calibration (fitted on PublicTest): temperature "
                f"{calibration['temperature']:.3f} after taking off label smoothing "
                f"{smoothing:g}; {args.split} ECE ({calibration['bins']} bins) "
                f"{calibration['test']['ece_before']:.4f} before, "
                f"{calibration['test']['ece_after']:.4f} after; uncertain below "
                f"{calibration['uncertain_below']:.3f}"
            )
    shown = raw
    if calibration is not None:
        shown = calibrate(raw, calibration)
    elif model.card and model.card.calibration:
        shown = calibrate(raw, model.card.calibration)
    held_out = held_out_reports(dataset, args.split, shown, ferplus)
    print(format_held_out(held_out))
    if ferplus is None:
        print(
            "(no FER+ votes: set FERPLUS_PATH or give --ferplus to measure agreement with "
            "the crowd)"
        )
    if args.json:
        write_json(
            args.json,
            {
                "model": str(model.path),
                "split": args.split,
                **report,
                "held_out": held_out,
                **({"calibration": calibration} if calibration else {}),
            },
        )
    if args.write_card:
        stage("measuring latency")
        latency = {
            "batch_1": measure_classifier_latency(model, 1, max_seconds=10),
            "batch_32": measure_classifier_latency(model, 32, repeats=100, max_seconds=10),
        }
        write_model_card(
            model.path,
            report,
            split=args.split,
            flip_average=model.flip_average,
            selection=selection,
            latency=latency,
            data_source=str(dataset.source),
            calibration=calibration,
            held_out=held_out,
            training=training_section(args.run)
            if args.run
            else (previous.training if previous else None),
        )
        print(
            f"model card written beside {model.path.name}; latency batch 1: "
            f"{latency['batch_1']['median_ms']:.3f} ms median ({model.backend})"
        )
    return 0


def _ferplus_votes(path, dataset):
    """FER+'s votes for the loaded FER2013, or None when none are given (never required).
    A file given with --ferplus must fit the dataset; $FERPLUS_PATH, set for the server's
    FER2013, is left out with a note when the dataset is another one."""

    if path:
        return load_ferplus(path, dataset)
    path = os.environ.get("FERPLUS_PATH")
    if not path:
        return None
    try:
        return load_ferplus(path, dataset)
    except DatasetError as exc:
        print(
            f"note: not measuring agreement with the crowd: FERPLUS_PATH does not fit this "
            f"dataset ({terminal_safe(str(exc))})",
            file=sys.stderr,
        )
        return None


def _training_config(run_dir, card: ModelCard | None) -> dict:
    """How the model was trained: its run's config, else its card's training section."""
    if run_dir:
        return Run(Path(run_dir)).config()
    return card.training_config if card else {}


def _trained_labels(run_dir, card: ModelCard | None) -> str:
    """What the model learned: ``fer2013`` or a FER+ label source."""
    return str(_training_config(run_dir, card).get("labels") or "fer2013")


def _label_smoothing(run_dir, card: ModelCard | None) -> float:
    """The label smoothing the model was trained with (0 when unknown: then calibration is a
    plain temperature)."""
    return float(_training_config(run_dir, card).get("label_smoothing") or 0.0)


__all__ = ["add_evaluate_parser", "cmd_evaluate"]
