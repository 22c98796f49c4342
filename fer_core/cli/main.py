"""The ``fer`` command (also ``python -m fer_core``): train | evaluate | recalibrate |
export | predict | people | sessions."""

from __future__ import annotations

import argparse
import os
import sys

from fer_core.cli.console import progress_printer
from fer_core.cli.evaluate import add_evaluate_parser
from fer_core.cli.pipeline_command import add_pipeline_parser
from fer_core.cli.predict_command import add_predict_parser
from fer_core.cli.records_command import add_records_parsers
from fer_core.data.fer2013 import load_fer2013
from fer_core.data.paths import default_data_path
from fer_core.errors import FerError
from fer_core.models.inference import export_litert
from fer_core.models.quantize import choose_int8
from fer_core.safe_text import terminal_safe
from fer_core.service.jobs import process_alive
from fer_core.storage import read_json
from fer_core.training.config import TrainConfig, add_config_arguments, given_settings
from fer_core.training.loop import (
    crowd_labelled,
    prepare_splits,
    recalibrate_best,
    train,
    write_run_metrics,
)
from fer_core.training.run_lock import training_lock
from fer_core.training.runs import LOCK, RUNS_DIR_ENV, Run, check_run_name, new_run_name, runs_dir
from fer_core.training.soups import average_models


def _train_config(args) -> TrainConfig:
    """Settings: the run's config.json when it has one (else a --config file, else the
    defaults), changed only by the flags actually given."""
    from pathlib import Path

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
        changed = sorted(
            key
            for key, value in given.items()
            if key not in ("run_name", "runs_dir") and base.get(key) != value
        )
        if changed:
            print(
                f"run {run.name}: changing {', '.join(changed)} from the command line",
                file=sys.stderr,
            )
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

    if getattr(args, "runs_dir", None) is not None or not os.environ.get(RUNS_DIR_ENV):
        return
    if args.config and not (args.run or args.resume):
        if (read_json(args.config, {}) or {}).get("runs_dir"):
            return
    args.runs_dir = os.environ[RUNS_DIR_ENV]


def _is_chief() -> bool:
    """Whether this process writes the run folder: no TF_CONFIG, or the chief of its cluster
    (the other workers write scratch folders of their own; see fer_core.training.distributed)."""
    import json

    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return True
    try:
        config = json.loads(raw)
        task_type, index = config["task"]["type"], int(config["task"]["index"])
        return task_type == "chief" or (
            task_type == "worker" and index == 0 and "chief" not in config["cluster"]
        )
    except (ValueError, KeyError, TypeError):
        return True  # train() reports the bad TF_CONFIG


def _run_to_train(config: TrainConfig):
    """The run folder this command trains: --run/--resume or --name (as train() opens it),
    else a new one (made now, so that it is locked before anything else can see it); None
    for a worker of a multi-worker cluster, which trains no folder of its own."""
    from pathlib import Path

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

    state = run.state()
    if (
        state.get("status") == "running"
        and state.get("pid") != os.getpid()
        and not process_alive(state.get("pid"), expect="")
    ):
        run.update_state(pid=os.getpid())


def _remove_if_untouched(run) -> None:
    """Remove a run folder this command made, if nothing but its lock file is in it (the data
    could not be loaded: no run was started)."""
    import shutil

    if [p.name for p in run.path.iterdir()] in ([], [LOCK]):
        shutil.rmtree(run.path, ignore_errors=True)


def _train_holding_the_run(args) -> int:
    """Train with the run's lock held from before the data is read until the end: a second
    ``fer train`` of the run, or the app's Resume, is refused at once (exit 2: "run R is
    already training (process N)")."""
    import contextlib

    config = _train_config(args)
    config.validate()
    run = _run_to_train(config)
    new_folder = run is not None and (not run.path.is_dir() or not any(run.path.iterdir()))
    with training_lock(run) if run is not None else contextlib.nullcontext():
        if run is not None:
            _claim_state(run)

        try:
            dataset = load_fer2013(
                config.data_path,
                skip_bad=args.skip_bad_rows,
                progress=progress_printer("loading FER2013"),
            )
        except BaseException:
            if new_folder:
                _remove_if_untouched(run)
            raise
        if dataset.skipped:
            print(
                f"skipped {len(dataset.skipped)} bad rows; first: "
                f"{terminal_safe(dataset.skipped[0])}",
                file=sys.stderr,
            )

        def on_epoch(row):
            print(
                f"epoch {int(row['epoch']):3d}/{config.epochs}  loss {row['loss']:.4f}  "
                f"acc {row['accuracy']:.4f}  val_loss {row['val_loss']:.4f}  "
                f"val_acc {row['val_accuracy']:.4f}  lr {row['learning_rate']:.2e}  "
                f"{row['seconds']:.1f}s"
                + (
                    f"  swa_val_acc {row['swa_val_accuracy']:.4f}"
                    if "swa_val_accuracy" in row
                    else ""
                ),
                flush=True,
            )

        run_dir = train(
            config,
            dataset,
            run_dir=None if run is None else run.path,
            on_epoch=on_epoch,
            verbose=2 if args.verbose else 0,
        )
    print(f"run folder: {terminal_safe(run_dir)}")
    return 0


def _cmd_recalibrate(args) -> int:
    from pathlib import Path

    run = Run(Path(args.run))
    if not run.best_model.is_file():
        print(
            f"error: {run.path} is not a run folder with a {run.best_model.name}", file=sys.stderr
        )
        return 2
    saved = run.config()
    config = TrainConfig.from_dict(saved) if saved else TrainConfig()
    dataset = load_fer2013(
        args.data or config.data_path,
        skip_bad=args.skip_bad_rows,
        progress=progress_printer("loading FER2013"),
    )
    # A crowd run is judged by the crowd, as when it trained.
    x_train, _, x_val, y_val, split = prepare_splits(crowd_labelled(dataset, config), config)
    result = recalibrate_best(run.path, x_train, x_val, y_val)
    print(
        f"validation accuracy: {result['val_accuracy_before']:.4f} as trained, "
        f"{result['val_accuracy_after']:.4f} with BatchNorm statistics recomputed on "
        f"{result['training_images']} training images -> "
        + ("kept the recalibrated model" if result["kept"] else "kept the model as it was")
    )
    if result["kept"]:
        write_run_metrics(
            run.path,
            x_val,
            y_val,
            split,
            config.architecture,
            int(run.state().get("best_epoch", 0)),
            len(run.history()),
        )
    return 0


def _cmd_average(args) -> int:
    from pathlib import Path

    check_run_name(args.name)
    dataset = load_fer2013(
        args.data, skip_bad=args.skip_bad_rows, progress=progress_printer("loading FER2013")
    )
    run_dir = Path(args.runs_dir or runs_dir("runs")) / args.name
    report = average_models(args.models, dataset, run_dir, data_path=args.data)
    print(
        f"wrote {Run(run_dir).best_model}: the mean of {len(args.models)} models, BatchNorm "
        f"statistics recomputed on Training; {report['split']} accuracy "
        f"{report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.3f} (no flip averaging)"
    )
    return 0


def _cmd_export(args) -> int:
    result = export_litert(args.model)
    print(
        f"wrote {result['path']} ({result['bytes']:,} bytes); max |LiteRT - Keras| = "
        f"{result['max_abs_difference']:.2e} over {result['checked']} inputs"
    )
    if args.int8:
        decision = choose_int8(
            args.model,
            args.data,
            max_loss=args.max_loss,
            record=args.record,
            labels=args.labels,
            progress=progress_printer("loading FER2013"),
        )
        print(decision["summary"])
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="fer", description="Facial emotion recognition on FER2013."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "train",
        help="train a model; writes a resumable run folder",
        description="Train a model. A run's settings live in its config.json: "
        "--run DIR (or --name NAME) of an existing run resumes it "
        "with those settings, and only the flags given change them.",
    )
    p.add_argument("--run", default=None, help="run folder to train: resumes it if it exists")
    p.add_argument("--resume", default=None, help="the same as --run")
    p.add_argument("--config", default=None, help="JSON file of settings for a new run")
    add_config_arguments(p)
    p.add_argument("--skip-bad-rows", action="store_true")
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(func=_cmd_train)

    add_evaluate_parser(sub)

    p = sub.add_parser(
        "recalibrate",
        help="recompute a run's best.keras BatchNorm statistics "
        "on plain Training images; kept only if validation accuracy improves",
    )
    p.add_argument("run", help="the run folder")
    p.add_argument("--data", default=default_data_path(), help="FER2013 (default: $FER2013_PATH)")
    p.add_argument("--skip-bad-rows", action="store_true")
    p.set_defaults(func=_cmd_recalibrate)

    p = sub.add_parser(
        "average",
        help="average the weights of models fine-tuned from one "
        "start (a model soup) into a new run folder",
        description="Average the weights of two or more models of one "
        "architecture (runs fine-tuned from the same start), "
        "recompute the BatchNorm statistics on Training, and score "
        "the result on PublicTest. Writes runs/NAME/best.keras.",
    )
    p.add_argument("models", nargs="+", help=".keras files (a run's best.keras)")
    p.add_argument("--name", required=True, help="the new run folder's name")
    p.add_argument(
        "--runs-dir", default=None, help="folder holding the runs (default: $FER_RUNS_DIR or runs)"
    )
    p.add_argument("--data", default=default_data_path(), help="FER2013 (default: $FER2013_PATH)")
    p.add_argument("--skip-bad-rows", action="store_true")
    p.set_defaults(func=_cmd_average)

    p = sub.add_parser("export", help="export a .keras model to LiteRT (.tflite) beside it")
    p.add_argument("model")
    p.add_argument(
        "--int8",
        action="store_true",
        help="also make a full-integer (int8) LiteRT model and ship it instead if it "
        "loses at most --max-loss of accuracy on PublicTest",
    )
    p.add_argument(
        "--max-loss",
        type=float,
        default=0.003,
        help="int8: the largest PublicTest accuracy loss allowed (default 0.003)",
    )
    p.add_argument("--data", default=default_data_path(), help="FER2013 (default: $FER2013_PATH)")
    p.add_argument(
        "--labels",
        default=None,
        choices=["fer2013", "ferplus-majority"],
        help="int8: judge on PublicTest by these labels (default: those the model "
        "card says it was trained on; ferplus-majority needs $FERPLUS_PATH)",
    )
    p.add_argument(
        "--record",
        default=None,
        help="int8: add the measurement to this JSON file (e.g. bench/int8.json)",
    )
    p.set_defaults(func=_cmd_export)

    add_predict_parser(sub)
    add_pipeline_parser(sub)
    add_records_parsers(sub)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except FerError as exc:
        print(f"error: {terminal_safe(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
