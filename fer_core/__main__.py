"""Command line: python -m fer_core train | evaluate | predict."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .errors import FerError


def _progress_printer(prefix: str):
    def progress(fraction: float, message: str) -> None:
        print(f"\r{prefix}: {fraction * 100:5.1f}%  {message}", end="", file=sys.stderr, flush=True)
        if fraction >= 1.0:
            print(file=sys.stderr)
    return progress


def _cmd_train(args) -> int:
    from .data import load_fer2013
    from .train import TrainConfig, train

    config = TrainConfig(architecture=args.architecture, data_path=args.data, epochs=args.epochs,
                         batch_size=args.batch_size, learning_rate=args.learning_rate,
                         train_subset=args.subset, validation_subset=args.val_subset,
                         seed=args.seed, runs_dir=args.runs_dir, run_name=args.name,
                         schedule=args.schedule, label_smoothing=args.label_smoothing,
                         class_weighting=args.class_weighting,
                         early_stopping_patience=args.patience,
                         weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
                         init_from=args.init_from, swa_start=args.swa_start,
                         recalibrate_batch_norm=not args.no_recalibrate,
                         model_kwargs=json.loads(args.model_kwargs) if args.model_kwargs else {})
    config.validate()
    dataset = load_fer2013(args.data, skip_bad=args.skip_bad_rows,
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

    run_dir = train(config, dataset, run_dir=args.resume, on_epoch=on_epoch,
                    verbose=2 if args.verbose else 0)
    print(f"run folder: {run_dir}")
    return 0


def _cmd_evaluate(args) -> int:
    from .data import load_fer2013
    from .evaluate import evaluate_images, format_report, write_model_card
    from .inference import DEFAULT_MODEL, EmotionModel

    model_path = args.model or DEFAULT_MODEL
    dataset = load_fer2013(args.data, skip_bad=args.skip_bad_rows,
                           progress=_progress_printer("loading FER2013"))
    flip = args.flip
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
    report = evaluate_images(model, images, labels)
    report["flip_average"] = model.flip_average
    print(f"model: {model.path} ({model.backend}{', flip-averaged' if model.flip_average else ''})")
    print(f"split: {args.split}")
    print(format_report(report))
    if args.json:
        from .train import write_json

        write_json(args.json, {"model": str(model.path), "split": args.split, **report})
    if args.write_card:
        from .latency import measure_classifier_latency

        latency = {"batch_1": measure_classifier_latency(model, 1),
                   "batch_32": measure_classifier_latency(model, 32, repeats=100)}
        write_model_card(model.path, report, split=args.split, flip_average=model.flip_average,
                         selection=selection, run_dir=args.run, latency=latency,
                         data_source=str(dataset.source))
        print(f"model card written beside {model.path.name}; latency batch 1: "
              f"{latency['batch_1']['median_ms']:.3f} ms median")
    return 0


def _cmd_recalibrate(args) -> int:
    from pathlib import Path

    import numpy as np

    from .data import load_fer2013
    from .train import (TrainConfig, prepare_splits, read_history, read_json, recalibrate_best,
                        write_run_metrics)

    run = Path(args.run)
    if not (run / "best.keras").is_file():
        print(f"error: {run} is not a run folder with a best.keras", file=sys.stderr)
        return 2
    saved = read_json(run / "config.json", {}) or {}
    config = TrainConfig.from_dict(saved) if saved else TrainConfig()
    dataset = load_fer2013(args.data or config.data_path, skip_bad=args.skip_bad_rows,
                           progress=_progress_printer("loading FER2013"))
    x_train, _, x_val, y_val = prepare_splits(dataset, config)
    result = recalibrate_best(run, x_train, x_val, y_val)
    print(f"validation accuracy: {result['val_accuracy_before']:.4f} as trained, "
          f"{result['val_accuracy_after']:.4f} with BatchNorm statistics recomputed on "
          f"{result['training_images']} training images -> "
          + ("kept the recalibrated model" if result["kept"] else "kept the model as it was"))
    if result["kept"]:
        state = read_json(run / "state.json", {}) or {}
        split = "PublicTest" if np.any(dataset.usage == "PublicTest") else "Training (held out)"
        write_run_metrics(run, x_val, y_val, split, config.architecture,
                          int(state.get("best_epoch", 0)), len(read_history(run)))
    return 0


def _cmd_export(args) -> int:
    from .inference import export_litert

    result = export_litert(args.model)
    print(f"wrote {result['path']} ({result['bytes']:,} bytes); max |LiteRT - Keras| = "
          f"{result['max_abs_difference']:.2e} over {result['checked']} inputs")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_core",
                                     description="Facial emotion recognition on FER2013.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model; writes a resumable run folder")
    p.add_argument("--data", default=os.environ.get("FER2013_PATH"),
                   help="fer2013.csv(.gz) or Kaggle folder (default: $FER2013_PATH)")
    p.add_argument("--architecture", "-a", default="cnn_gru")
    p.add_argument("--model-kwargs", default=None, help='JSON, e.g. \'{"width": 24}\'')
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--schedule", choices=["cosine", "constant", "plateau"], default="cosine")
    p.add_argument("--warmup-epochs", type=int, default=2)
    p.add_argument("--init-from", default=None,
                   help="fine-tune: start from the weights of this .keras file")
    p.add_argument("--swa-start", type=int, default=0,
                   help="average the weights of every epoch from this one on (SWA; 0: off)")
    p.add_argument("--no-recalibrate", action="store_true",
                   help="keep best.keras's BatchNorm statistics as training left them")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--class-weighting", choices=["none", "sqrt", "inverse"], default="sqrt")
    p.add_argument("--patience", type=int, default=0, help="early stopping patience (0: off)")
    p.add_argument("--subset", type=int, default=None, help="train on a stratified subset")
    p.add_argument("--val-subset", type=int, default=None)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--name", default=None, help="run folder name (resumes if it exists)")
    p.add_argument("--resume", default=None, help="run folder to resume")
    p.add_argument("--skip-bad-rows", action="store_true")
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="accuracy, macro-F1, per-class report, confusion matrix")
    p.add_argument("--model", default=None, help="a .keras file (default: the shipped model)")
    p.add_argument("--data", default=os.environ.get("FER2013_PATH"))
    p.add_argument("--split", default="PrivateTest",
                   choices=["Training", "PublicTest", "PrivateTest"])
    p.add_argument("--flip", action="store_true", help="average with the mirrored face")
    p.add_argument("--choose-flip", action="store_true",
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
    p.add_argument("--data", default=os.environ.get("FER2013_PATH"))
    p.add_argument("--skip-bad-rows", action="store_true")
    p.set_defaults(func=_cmd_recalibrate)

    p = sub.add_parser("export", help="export a .keras model to LiteRT (.tflite) beside it")
    p.add_argument("model")
    p.set_defaults(func=_cmd_export)

    from .predict import add_predict_parser

    add_predict_parser(sub)
    from .pipeline import add_pipeline_parser; add_pipeline_parser(sub)  # noqa: E702

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
