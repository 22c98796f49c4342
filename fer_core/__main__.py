"""The ``fer`` command (also ``python -m fer_core``): train | evaluate | recalibrate |
export | predict."""

from __future__ import annotations

import argparse
import sys

from .config import TrainConfig, add_config_arguments, given_settings
from .paths import default_data_path
from .errors import FerError


def _progress_printer(prefix: str):
    def progress(fraction: float, message: str) -> None:
        print(f"\r{prefix}: {fraction * 100:5.1f}%  {message}", end="", file=sys.stderr, flush=True)
        if fraction >= 1.0:
            print(file=sys.stderr)
    return progress


def _train_config(args) -> TrainConfig:
    """Settings: the run's config.json when it has one (else a --config file, else the
    defaults), changed only by the flags actually given."""
    from pathlib import Path

    from .runs import Run

    given = given_settings(args)
    run_dir = args.run or args.resume
    if run_dir:
        run = Run(Path(run_dir))
        given.update(run_name=run.name, runs_dir=str(run.path.parent))
    elif given.get("run_name"):
        run = Run(Path(given.get("runs_dir", "runs")) / given["run_name"])
    else:
        run = None
    if run is not None and run.config_path.is_file():
        base = TrainConfig.from_file(run.config_path).to_dict()
        changed = sorted(key for key, value in given.items()
                         if key not in ("run_name", "runs_dir") and base.get(key) != value)
        if changed:
            print(f"run {run.name}: changing {', '.join(changed)} from the command line",
                  file=sys.stderr)
    elif args.config:
        base = TrainConfig.from_file(args.config).to_dict()
    else:
        base = {}
    config = TrainConfig.from_dict({**base, **given})
    if config.data_path is None:
        config.data_path = default_data_path()
    if config.data_path is not None:
        config.data_path = str(Path(config.data_path).expanduser().resolve())
    return config


def _cmd_train(args) -> int:
    from .data import load_fer2013
    from .train import train

    config = _train_config(args)
    config.validate()
    dataset = load_fer2013(config.data_path, skip_bad=args.skip_bad_rows,
                           progress=_progress_printer("loading FER2013"))
    if dataset.skipped:
        print(f"skipped {len(dataset.skipped)} bad rows; first: {dataset.skipped[0]}", file=sys.stderr)

    def on_epoch(row):
        print(f"epoch {int(row['epoch']):3d}/{config.epochs}  loss {row['loss']:.4f}  "
              f"acc {row['accuracy']:.4f}  val_loss {row['val_loss']:.4f}  "
              f"val_acc {row['val_accuracy']:.4f}  lr {row['learning_rate']:.2e}  "
              f"{row['seconds']:.1f}s"
              + (f"  swa_val_acc {row['swa_val_accuracy']:.4f}" if "swa_val_accuracy" in row
                 else ""), flush=True)

    run_dir = train(config, dataset, on_epoch=on_epoch, verbose=2 if args.verbose else 0)
    print(f"run folder: {run_dir}")
    return 0


def _cmd_evaluate(args) -> int:
    from .data import load_fer2013
    from .card import write_model_card
    from .calibration import calibration_report
    from .evaluate import (classification_report, evaluate_images, format_report,
                           predict_probabilities)
    from .inference import DEFAULT_MODEL, EmotionModel, read_card

    model_path = args.model or DEFAULT_MODEL
    dataset = load_fer2013(args.data, skip_bad=args.skip_bad_rows,
                           progress=_progress_printer("loading FER2013"))
    flip = args.flip  # None: the model card's choice (EmotionModel reads it)
    selection = None
    if args.choose_flip:
        # Decide test-time flip averaging on PublicTest only; PrivateTest never steers it.
        x_val, y_val = dataset.split("PublicTest")
        plain = evaluate_images(EmotionModel(model_path, flip_average=False), x_val, y_val)
        flipped = evaluate_images(EmotionModel(model_path, flip_average=True), x_val, y_val)
        flip = flipped["accuracy"] > plain["accuracy"]
        selection = {"split": "PublicTest", "accuracy_plain": plain["accuracy"],
                     "accuracy_flip_average": flipped["accuracy"],
                     "macro_f1_plain": plain["macro_f1"],
                     "macro_f1_flip_average": flipped["macro_f1"], "flip_average": flip}
        print(f"PublicTest: plain {plain['accuracy']:.4f}, flip-averaged "
              f"{flipped['accuracy']:.4f} -> flip_average={flip}")
    model = EmotionModel(model_path, flip_average=flip)
    images, labels = dataset.split(args.split)
    if len(labels) == 0:
        print(f"error: the dataset has no {args.split} rows", file=sys.stderr)
        return 2
    # Raw probabilities: the accuracy does not depend on calibration (it keeps every face's
    # ranking), and the calibration is fitted and measured on the network's own output.
    raw = predict_probabilities(model, images, calibrated=False,
                                progress=_count_printer(f"evaluating on {args.split}"))
    report = classification_report(labels, raw.argmax(axis=1))
    report["flip_average"] = model.flip_average
    chosen_by = " (the model card's choice)" if flip is None and model.card else ""
    print(f"model: {model.path} ({model.backend}"
          f"{', flip-averaged' if model.flip_average else ', not flip-averaged'}{chosen_by})")
    print(f"split: {args.split}")
    print(format_report(report))
    previous = read_card(model.path) or {}
    calibration = None
    if args.write_card:
        # Calibration is fitted on PublicTest only; the evaluated split only reports it.
        x_public, y_public = dataset.split("PublicTest")
        if len(y_public):
            public = raw if args.split == "PublicTest" else predict_probabilities(
                model, x_public, calibrated=False,
                progress=_count_printer("calibrating on PublicTest"))
            smoothing = _label_smoothing(args.run, previous)
            calibration = calibration_report(public, y_public, raw, labels,
                                             smoothing=smoothing, test_split=args.split)
            print(f"calibration (fitted on PublicTest): temperature "
                  f"{calibration['temperature']:.3f} after taking off label smoothing "
                  f"{smoothing:g}; {args.split} ECE ({calibration['bins']} bins) "
                  f"{calibration['test']['ece_before']:.4f} before, "
                  f"{calibration['test']['ece_after']:.4f} after; uncertain below "
                  f"{calibration['uncertain_below']:.3f}")
    if args.json:
        from .runs import write_json

        write_json(args.json, {"model": str(model.path), "split": args.split, **report,
                               **({"calibration": calibration} if calibration else {})})
    if args.write_card:
        from .latency import measure_classifier_latency

        print("measuring latency", file=sys.stderr, flush=True)
        latency = {"batch_1": measure_classifier_latency(model, 1, max_seconds=10),
                   "batch_32": measure_classifier_latency(model, 32, repeats=100,
                                                          max_seconds=10)}
        write_model_card(model.path, report, split=args.split, flip_average=model.flip_average,
                         selection=selection, run_dir=args.run, latency=latency,
                         data_source=str(dataset.source), calibration=calibration,
                         training=None if args.run else previous.get("training"))
        print(f"model card written beside {model.path.name}; latency batch 1: "
              f"{latency['batch_1']['median_ms']:.3f} ms median ({model.backend})")
    return 0


def _label_smoothing(run_dir, card: dict) -> float:
    """The label smoothing the model was trained with: from its run's config, else from its
    card's training section, else 0 (then calibration is a plain temperature)."""
    if run_dir:
        from pathlib import Path

        from .runs import Run

        config = Run(Path(run_dir)).config()
    else:
        config = (card.get("training") or {}).get("config") or {}
    return float(config.get("label_smoothing") or 0.0)


def _count_printer(prefix: str):
    printer = _progress_printer(prefix)
    return lambda done, total: printer(done / max(total, 1), f"{done:,}/{total:,} images")


def _cmd_recalibrate(args) -> int:
    from pathlib import Path

    from .data import load_fer2013
    from .runs import Run
    from .train import prepare_splits, recalibrate_best, write_run_metrics

    run = Run(Path(args.run))
    if not run.best_model.is_file():
        print(f"error: {run.path} is not a run folder with a {run.best_model.name}",
              file=sys.stderr)
        return 2
    saved = run.config()
    config = TrainConfig.from_dict(saved) if saved else TrainConfig()
    dataset = load_fer2013(args.data or config.data_path, skip_bad=args.skip_bad_rows,
                           progress=_progress_printer("loading FER2013"))
    x_train, _, x_val, y_val, split = prepare_splits(dataset, config)
    result = recalibrate_best(run.path, x_train, x_val, y_val)
    print(f"validation accuracy: {result['val_accuracy_before']:.4f} as trained, "
          f"{result['val_accuracy_after']:.4f} with BatchNorm statistics recomputed on "
          f"{result['training_images']} training images -> "
          + ("kept the recalibrated model" if result["kept"] else "kept the model as it was"))
    if result["kept"]:
        write_run_metrics(run.path, x_val, y_val, split, config.architecture,
                          int(run.state().get("best_epoch", 0)), len(run.history()))
    return 0


def _cmd_average(args) -> int:
    from pathlib import Path

    from .data import load_fer2013
    from .runs import Run, check_run_name, runs_dir
    from .soup import average_models

    check_run_name(args.name)
    dataset = load_fer2013(args.data, skip_bad=args.skip_bad_rows,
                           progress=_progress_printer("loading FER2013"))
    run_dir = Path(args.runs_dir or runs_dir("runs")) / args.name
    report = average_models(args.models, dataset, run_dir, data_path=args.data)
    print(f"wrote {Run(run_dir).best_model}: the mean of {len(args.models)} models, BatchNorm "
          f"statistics recomputed on Training; {report['split']} accuracy "
          f"{report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.3f} (no flip averaging)")
    return 0


def _cmd_export(args) -> int:
    from .inference import export_litert

    result = export_litert(args.model)
    print(f"wrote {result['path']} ({result['bytes']:,} bytes); max |LiteRT - Keras| = "
          f"{result['max_abs_difference']:.2e} over {result['checked']} inputs")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fer",
                                     description="Facial emotion recognition on FER2013.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model; writes a resumable run folder",
                       description="Train a model. A run's settings live in its config.json: "
                                   "--run DIR (or --name NAME) of an existing run resumes it "
                                   "with those settings, and only the flags given change them.")
    p.add_argument("--run", default=None, help="run folder to train: resumes it if it exists")
    p.add_argument("--resume", default=None, help="the same as --run")
    p.add_argument("--config", default=None, help="JSON file of settings for a new run")
    add_config_arguments(p)
    p.add_argument("--skip-bad-rows", action="store_true")
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="accuracy, macro-F1, per-class report, confusion matrix")
    p.add_argument("--model", default=None, help="a .keras file (default: the shipped model)")
    p.add_argument("--data", default=default_data_path(), help="FER2013 (default: $FER2013_PATH)")
    p.add_argument("--split", default="PrivateTest",
                   choices=["Training", "PublicTest", "PrivateTest"])
    flip = p.add_mutually_exclusive_group()
    flip.add_argument("--flip", dest="flip", action="store_const", const=True, default=None,
                      help="average with the mirrored face (default: as the model card chose, "
                           "i.e. the model as users get it)")
    flip.add_argument("--no-flip", dest="flip", action="store_const", const=False,
                      help="the plain model, without averaging with the mirrored face")
    flip.add_argument("--choose-flip", action="store_true",
                      help="decide flip averaging on PublicTest before evaluating")
    p.add_argument("--json", default=None, help="also write the report to this JSON file")
    p.add_argument("--write-card", action="store_true",
                   help="write the model card (<model>.card.json) from this evaluation")
    p.add_argument("--run", default=None, help="run folder the model came from (for the card)")
    p.add_argument("--skip-bad-rows", action="store_true")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("recalibrate", help="recompute a run's best.keras BatchNorm statistics "
                       "on plain Training images; kept only if validation accuracy improves")
    p.add_argument("run", help="the run folder")
    p.add_argument("--data", default=default_data_path(), help="FER2013 (default: $FER2013_PATH)")
    p.add_argument("--skip-bad-rows", action="store_true")
    p.set_defaults(func=_cmd_recalibrate)

    p = sub.add_parser("average", help="average the weights of models fine-tuned from one "
                       "start (a model soup) into a new run folder",
                       description="Average the weights of two or more models of one "
                                   "architecture (runs fine-tuned from the same start), "
                                   "recompute the BatchNorm statistics on Training, and score "
                                   "the result on PublicTest. Writes runs/NAME/best.keras.")
    p.add_argument("models", nargs="+", help=".keras files (a run's best.keras)")
    p.add_argument("--name", required=True, help="the new run folder's name")
    p.add_argument("--runs-dir", default=None, help="folder holding the runs (default: "
                                                     "$FER_RUNS_DIR or runs)")
    p.add_argument("--data", default=default_data_path(), help="FER2013 (default: $FER2013_PATH)")
    p.add_argument("--skip-bad-rows", action="store_true")
    p.set_defaults(func=_cmd_average)

    p = sub.add_parser("export", help="export a .keras model to LiteRT (.tflite) beside it")
    p.add_argument("model")
    p.set_defaults(func=_cmd_export)

    from .predict import add_predict_parser

    from .pipeline_cli import add_pipeline_parser

    add_predict_parser(sub)
    add_pipeline_parser(sub)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except FerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
