"""The ``fer predict`` command: its flags, and what it prints (every line that names a file
shows it through ``terminal_safe``). The work is ``fer_core.recognition.predict.run_predict``."""

from __future__ import annotations

import sys

from fer_core.cli.records_command import open_database, person_of, save_prediction
from fer_core.errors import FerError
from fer_core.faces import DEFAULT_DETECTOR, DETECTORS, detector_info
from fer_core.recognition.predict import run_predict
from fer_core.safe_text import terminal_safe


def add_predict_parser(sub) -> None:
    p = sub.add_parser("predict", help="emotions of every face in images, folders and videos")
    p.add_argument("paths", nargs="+", help="image files, folders (recursive) or video files")
    p.add_argument("--out", default=None, help="results file: .csv, .json or .parquet")
    p.add_argument("--model", default=None, help="a .keras file (default: the shipped model)")
    p.add_argument("--preset", default="photo", choices=["photo", "live"])
    p.add_argument(
        "--detector",
        default=DEFAULT_DETECTOR,
        choices=list(DETECTORS),
        help="face detector: "
        + ", ".join(f"{name} ({detector_info(name).label})" for name in DETECTORS),
    )
    p.add_argument("--every", type=int, default=1, help="videos: analyse every N-th frame")
    p.add_argument(
        "--explain",
        default=None,
        metavar="DIR",
        help="photos: write, per face, the 48x48 crop the model saw and an "
        "occlusion-sensitivity overlay (where hiding the face changes the "
        "answer most) as PNGs into DIR",
    )
    p.add_argument(
        "--engine",
        default="local",
        choices=["local", "ray"],
        help="ray: photos on Ray Data (a local Ray, or the cluster at $RAY_ADDRESS)",
    )
    p.add_argument(
        "--concurrency", type=int, default=2, help="ray: how many workers, each with its own model"
    )
    p.add_argument(
        "--save",
        action="store_true",
        help="also save the results in the records database as sessions (each video one, "
        "the photos together one); see fer sessions list",
    )
    p.add_argument(
        "--person", default=None, help="--save: whom the sessions are about (number or name)"
    )
    p.add_argument(
        "--db",
        default=None,
        metavar="URL",
        help="--save: the records database (default: $FER_DB_URL)",
    )
    p.set_defaults(func=_cmd_predict)


def _cmd_predict(args) -> int:
    try:
        return _predict_and_report(args)
    except FerError as exc:
        # The message may quote a file name; ``fer``'s handler prints it as it is.
        exc.args = (terminal_safe(str(exc)),)
        raise


def _predict_and_report(args) -> int:
    """``fer predict``: every line that names a file shows it through ``terminal_safe``."""
    if args.person and not args.save:
        raise FerError("--person says whom saved sessions are about: add --save.")
    if args.save:  # before any work: an unknown person or an unreachable database
        records = open_database(args.db)
        if args.person:
            person_of(records, args.person)
    result = run_predict(
        args.paths,
        args.out,
        args.model,
        args.every,
        args.preset,
        detector=args.detector,
        explain=args.explain,
        engine=args.engine,
        concurrency=args.concurrency,
    )
    summary = result["summary"]
    if args.explain:
        print(f"explanations: {len(summary['explanations'])} PNGs in {terminal_safe(args.explain)}")
    if args.out is None:
        for row in result["rows"]:
            if row.get("label"):
                where = f" frame {row['frame']}" if row.get("frame") is not None else ""
                label = (
                    f"uncertain: {row['label']}/{row['second']}"
                    if row.get("uncertain")
                    else row["label"]
                )
                print(
                    f"{terminal_safe(row['file'])}{where}: face at ({row['x']}, {row['y']}, "
                    f"{row['w']}, {row['h']}) -> {label} ({row['confidence'] * 100:.1f}%)"
                )
            elif row.get("faces") == 0:
                print(f"{terminal_safe(row['file'])}: no face found")
    print(
        f"files: {summary['files']}, processed: {summary['processed']}, faces: "
        f"{summary['faces']}, failed: {len(summary['failed'])}"
        + (f", results: {terminal_safe(args.out)}" if args.out else "")
    )
    for path, reason in summary["failed"]:
        print(f"  failed: {terminal_safe(path)}: {terminal_safe(reason)}")
    if args.save:
        saved = save_prediction(
            [row for row in result["rows"] if not row.get("error")],
            person=args.person,
            db=args.db,
            detector=args.detector,
            model=args.model or "shipped",
        )
        for number, what, count in saved:
            print(f"saved session #{number}: {terminal_safe(what)}, {count:,} rows")
    failed = len(summary["failed"])
    if failed:
        print(
            f"{failed} of {summary['files']} input{'s' if summary['files'] != 1 else ''} "
            "failed (listed above).",
            file=sys.stderr,
        )
        return 1
    return 0
