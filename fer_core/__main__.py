"""The ``fer`` command (also ``python -m fer_core``): train | evaluate | recalibrate |
export | predict."""

from __future__ import annotations

import argparse
import os
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
    from .safe_text import terminal_safe

    _runs_dir_from_env(args)
    try:
        return _train_holding_the_run(args)
    except FerError as exc:
        # The message may quote a path (the data file, a run folder); ``fer`` prints it as is.
        exc.args = (terminal_safe(str(exc)),)
        raise


def _runs_dir_from_env(args) -> None:
    """``--runs-dir`` when not given: ``$FER_RUNS_DIR`` (as the app and ``fer average``), unless
    a ``--config`` file names the runs folder; else TrainConfig's default (``runs``)."""
    from .runs import RUNS_DIR_ENV

    if getattr(args, "runs_dir", None) is not None or not os.environ.get(RUNS_DIR_ENV):
        return
    if args.config and not (args.run or args.resume):
        from .runs import read_json

        if (read_json(args.config, {}) or {}).get("runs_dir"):
            return
    args.runs_dir = os.environ[RUNS_DIR_ENV]


def _is_chief() -> bool:
    """Whether this process writes the run folder: no TF_CONFIG, or the chief of its cluster
    (the other workers write scratch folders of their own; see fer_core.distributed)."""
    import json

    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return True
    try:
        config = json.loads(raw)
        task_type, index = config["task"]["type"], int(config["task"]["index"])
        return task_type == "chief" or (task_type == "worker" and index == 0
                                        and "chief" not in config["cluster"])
    except (ValueError, KeyError, TypeError):
        return True  # train() reports the bad TF_CONFIG


def _run_to_train(config: TrainConfig):
    """The run folder this command trains: --run/--resume or --name (as train() opens it),
    else a new one (made now, so that it is locked before anything else can see it); None
    for a worker of a multi-worker cluster, which trains no folder of its own."""
    from pathlib import Path

    from .runs import Run, new_run_name

    if not _is_chief():
        return None
    if config.run_name:
        return Run(Path(config.runs_dir) / config.run_name)
    if os.environ.get("TF_CONFIG"):
        return None  # train() refuses a cluster run without a name
    return Run.create_unique(config.runs_dir, new_run_name(config.architecture))


def _claim_state(run) -> None:
    """A run whose state.json still says "running" for a trainer that died (killed, crashed):
    this process trains it now, so state.json names it until train() rewrites the state."""
    from .jobs import process_alive

    state = run.state()
    if state.get("status") == "running" and state.get("pid") != os.getpid() \
            and not process_alive(state.get("pid"), expect=""):
        run.update_state(pid=os.getpid())


def _remove_if_untouched(run) -> None:
    """Remove a run folder this command made, if nothing but its lock file is in it (the data
    could not be loaded: no run was started)."""
    import shutil

    from .runs import LOCK

    if [p.name for p in run.path.iterdir()] in ([], [LOCK]):
        shutil.rmtree(run.path, ignore_errors=True)


def _train_holding_the_run(args) -> int:
    """Train with the run's lock held from before the data is read until the end: a second
    ``fer train`` of the run, or the app's Resume, is refused at once (exit 2: "run R is
    already training (process N)")."""
    import contextlib

    from .jobs import training_lock
    from .safe_text import terminal_safe

    config = _train_config(args)
    config.validate()
    run = _run_to_train(config)
    new_folder = run is not None and (not run.path.is_dir() or not any(run.path.iterdir()))
    with training_lock(run) if run is not None else contextlib.nullcontext():
        if run is not None:
            _claim_state(run)
        from .data import load_fer2013
        from .train import train

        try:
            dataset = load_fer2013(config.data_path, skip_bad=args.skip_bad_rows,
                                   progress=_progress_printer("loading FER2013"))
        except BaseException:
            if new_folder:
                _remove_if_untouched(run)
            raise
        if dataset.skipped:
            print(f"skipped {len(dataset.skipped)} bad rows; first: "
                  f"{terminal_safe(dataset.skipped[0])}", file=sys.stderr)

        def on_epoch(row):
            print(f"epoch {int(row['epoch']):3d}/{config.epochs}  loss {row['loss']:.4f}  "
                  f"acc {row['accuracy']:.4f}  val_loss {row['val_loss']:.4f}  "
                  f"val_acc {row['val_accuracy']:.4f}  lr {row['learning_rate']:.2e}  "
                  f"{row['seconds']:.1f}s"
                  + (f"  swa_val_acc {row['swa_val_accuracy']:.4f}" if "swa_val_accuracy" in row
                     else ""), flush=True)

        run_dir = train(config, dataset, run_dir=None if run is None else run.path,
                        on_epoch=on_epoch, verbose=2 if args.verbose else 0)
    print(f"run folder: {terminal_safe(run_dir)}")
    return 0


def _cmd_evaluate(args) -> int:
    from .data import load_fer2013
    from .card import write_model_card
    from .calibration import calibration_report
    from .evaluate import (classification_report, evaluate_images, format_held_out,
                           format_report, held_out_reports, predict_probabilities)
    from .inference import DEFAULT_MODEL, EmotionModel, read_card

    model_path = args.model or DEFAULT_MODEL
    dataset = load_fer2013(args.data, skip_bad=args.skip_bad_rows,
                           progress=_progress_printer("loading FER2013"))
    flip = args.flip  # None: the model card's choice (EmotionModel reads it)
    selection = None
    ferplus = _ferplus_votes(args.ferplus, dataset)
    previous = read_card(model_path) or {}
    crowd_model = _trained_labels(args.run, previous) != "fer2013"
    if args.choose_flip:
        # Decide test-time flip averaging on PublicTest only; PrivateTest never steers it.
        # A crowd model is judged by the crowd (the faces with a clear FER+ majority).
        x_val, y_val = dataset.split("PublicTest")
        judged_by = "FER2013 labels"
        if crowd_model and ferplus is not None:
            y_val, keep = _crowd_labels(dataset, ferplus, "PublicTest")
            x_val, judged_by = x_val[keep], "FER+ majority (clear faces)"
        plain = evaluate_images(EmotionModel(model_path, flip_average=False), x_val, y_val)
        flipped = evaluate_images(EmotionModel(model_path, flip_average=True), x_val, y_val)
        flip = flipped["accuracy"] > plain["accuracy"]
        selection = {"split": "PublicTest", "judged_by": judged_by,
                     "accuracy_plain": plain["accuracy"],
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
    calibration = None
    if args.write_card:
        # Calibration is fitted on PublicTest only; the evaluated split only reports it.
        x_public, y_public = dataset.split("PublicTest")
        if len(y_public):
            public = raw if args.split == "PublicTest" else predict_probabilities(
                model, x_public, calibrated=False,
                progress=_count_printer("calibrating on PublicTest"))
            smoothing = _label_smoothing(args.run, previous)
            public_keep, test_keep = slice(None), slice(None)
            fit = {}
            if crowd_model and ferplus is not None:
                # A model of the crowd: its temperature is fitted to PublicTest's vote shares
                # (its probabilities mean "the share of people who would call this face X");
                # the uncertain threshold and ECE are read against the clear majority.
                y_public, public_keep = _crowd_labels(dataset, ferplus, "PublicTest")
                labels_for_test, test_keep = _crowd_labels(dataset, ferplus, args.split)
                shares, emotion_faces = _crowd_shares(dataset, ferplus, "PublicTest")
                fit = {"fit_probs": public[emotion_faces], "fit_targets": shares}
            else:
                labels_for_test = labels
            calibration = calibration_report(public[public_keep], y_public,
                                             raw[test_keep], labels_for_test,
                                             smoothing=smoothing, test_split=args.split, **fit)
            if fit:
                calibration["fitted_to"] = "FER+ vote shares (PublicTest)"
                calibration["labels"] = "ferplus-majority"
            else:
                calibration["labels"] = "fer2013"
            print(f"calibration (fitted on PublicTest): temperature "
                  f"{calibration['temperature']:.3f} after taking off label smoothing "
                  f"{smoothing:g}; {args.split} ECE ({calibration['bins']} bins) "
                  f"{calibration['test']['ece_before']:.4f} before, "
                  f"{calibration['test']['ece_after']:.4f} after; uncertain below "
                  f"{calibration['uncertain_below']:.3f}")
    shown = raw
    if calibration is not None:
        from .calibration import calibrate

        shown = calibrate(raw, calibration)
    elif model.card and model.card.get("calibration"):
        from .calibration import calibrate

        shown = calibrate(raw, model.card["calibration"])
    held_out = held_out_reports(dataset, args.split, shown, ferplus)
    print(format_held_out(held_out))
    if ferplus is None:
        print("(no FER+ votes: set FERPLUS_PATH or give --ferplus to measure agreement with "
              "the crowd)")
    if args.json:
        from .runs import write_json

        write_json(args.json, {"model": str(model.path), "split": args.split, **report,
                               "held_out": held_out,
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
                         held_out=held_out,
                         training=None if args.run else previous.get("training"))
        print(f"model card written beside {model.path.name}; latency batch 1: "
              f"{latency['batch_1']['median_ms']:.3f} ms median ({model.backend})")
    return 0


def _ferplus_votes(path, dataset):
    """FER+'s votes for the loaded FER2013, or None when none are given (never required)."""
    if not path:
        return None
    from .ferplus import load_ferplus

    return load_ferplus(path, dataset)


def _crowd_labels(dataset, ferplus, split: str):
    """A split's clear FER+ majority labels and the mask of its rows that have one."""
    from .ferplus import FerPlus, aligned

    votes = aligned(ferplus, dataset)
    inside = dataset.usage == split
    majority = FerPlus(votes.votes[inside], votes.usage[inside]).clear_majority()
    keep = majority >= 0
    return majority[keep], keep


def _crowd_shares(dataset, ferplus, split: str):
    """A split's FER+ vote shares on the faces whose votes are mostly for an emotion, and the
    mask of those faces."""
    from .ferplus import FerPlus, aligned

    votes = aligned(ferplus, dataset)
    inside = dataset.usage == split
    split_votes = FerPlus(votes.votes[inside], votes.usage[inside])
    keep = split_votes.trainable()
    return split_votes.soft_targets()[keep], keep


def _trained_labels(run_dir, card: dict) -> str:
    """What the model learned: ``fer2013`` or a FER+ label source (run config, else card)."""
    if run_dir:
        from pathlib import Path

        from .runs import Run

        config = Run(Path(run_dir)).config()
    else:
        config = (card.get("training") or {}).get("config") or {}
    return str(config.get("labels") or "fer2013")


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
    from .train import crowd_labelled, prepare_splits, recalibrate_best, write_run_metrics

    run = Run(Path(args.run))
    if not run.best_model.is_file():
        print(f"error: {run.path} is not a run folder with a {run.best_model.name}",
              file=sys.stderr)
        return 2
    saved = run.config()
    config = TrainConfig.from_dict(saved) if saved else TrainConfig()
    dataset = load_fer2013(args.data or config.data_path, skip_bad=args.skip_bad_rows,
                           progress=_progress_printer("loading FER2013"))
    # A crowd run is judged by the crowd, as when it trained.
    x_train, _, x_val, y_val, split = prepare_splits(crowd_labelled(dataset, config), config)
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
    if args.int8:
        from .quantize import choose_int8

        decision = choose_int8(args.model, args.data, max_loss=args.max_loss,
                               record=args.record, labels=args.labels,
                               progress=_progress_printer("loading FER2013"))
        print(decision["summary"])
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
    p.add_argument("--ferplus", default=os.environ.get("FERPLUS_PATH") or None,
                   help="FER+'s fer2013new.csv: also measure agreement with the crowd "
                        "(default: $FERPLUS_PATH)")
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
    p.add_argument("--int8", action="store_true",
                   help="also make a full-integer (int8) LiteRT model and ship it instead if it "
                        "loses at most --max-loss of accuracy on PublicTest")
    p.add_argument("--max-loss", type=float, default=0.003,
                   help="int8: the largest PublicTest accuracy loss allowed (default 0.003)")
    p.add_argument("--data", default=default_data_path(), help="FER2013 (default: $FER2013_PATH)")
    p.add_argument("--labels", default=None, choices=["fer2013", "ferplus-majority"],
                   help="int8: judge on PublicTest by these labels (default: those the model "
                        "card says it was trained on; ferplus-majority needs $FERPLUS_PATH)")
    p.add_argument("--record", default=None,
                   help="int8: add the measurement to this JSON file (e.g. bench/int8.json)")
    p.set_defaults(func=_cmd_export)

    from .predict import add_predict_parser

    from .pipeline_cli import add_pipeline_parser

    add_predict_parser(sub)
    add_pipeline_parser(sub)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except FerError as exc:
        from .safe_text import terminal_safe

        print(f"error: {terminal_safe(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
