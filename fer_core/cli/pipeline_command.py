"""The ``fer evaluate-pipeline`` command: the pipeline evaluation (``fer_core.evaluation.whole_path``) per
detector and preset, the framing measurement and sweep, and their results file."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace

from fer_core.data.fer2013 import load_fer2013
from fer_core.data.ferplus import crowd_labels, load_ferplus
from fer_core.errors import ConfigError
from fer_core.evaluation.whole_path import (
    BACKGROUNDS,
    VARIANTS,
    SceneOptions,
    evaluate_pipeline,
    framing_sweep,
    measure_framing,
)
from fer_core.faces import DEFAULT_DETECTOR, DETECTORS
from fer_core.models.card_writer import add_whole_path
from fer_core.recognition.preprocess import Framing
from fer_core.recognition.recognizer import Recognizer


def format_pipeline_row(report: dict) -> str:
    def pct(value):
        return "   n/a" if value is None else f"{value * 100:6.2f}%"

    return (
        f"{report['detector']:<10} {report['preset']:<6} {report.get('variant', 'plain'):<8} "
        f"found {pct(report['found'])}  acc(found) {pct(report['accuracy_found'])}  "
        f"F1(found) {report['macro_f1_found'] or 0:.3f}  end-to-end {pct(report['end_to_end'])}"
        f"  crop(found) {pct(report['crop_accuracy_found'])}  framing cost "
        f"{(report['framing_cost'] or 0) * 100:+.2f} pt  crop(all) {pct(report['crop_accuracy'])}"
        f"  {report['median_ms_per_frame']:.1f} ms/frame"
    )


def _parse_framing(text: str | None):
    if text in (None, "auto"):
        return "auto"
    if text == "none":
        return None
    try:
        scale, dx, dy = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise ConfigError("--framing takes auto, none or SCALE,DX,DY (e.g. 1.19,0,0.05).") from exc
    return Framing(scale, dx, dy)


def run_pipeline_evaluation(args, stream=sys.stderr) -> dict:
    dataset = load_fer2013(args.data, skip_bad=args.skip_bad_rows)
    images, labels = split_with_labels(dataset, args.split, args.labels, args.ferplus)
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    width, height = (int(v) for v in args.frame.lower().split("x"))
    base = SceneOptions(
        scale=args.scale, width=width, height=height, background=args.background, seed=args.seed
    )
    framing = _parse_framing(args.framing)
    rows = []
    framings = {}
    for detector in args.detector:
        for preset in args.preset:
            recognizer = Recognizer(
                args.model,
                preset=preset,
                detector=detector,
                framing=framing,
                margin=args.margin,
                align=args.align,
                min_score=args.min_score,
            )
            for variant in args.variants:
                if variant not in VARIANTS:
                    raise ConfigError(
                        f"Unknown variant {variant!r}; choose from {', '.join(VARIANTS)}."
                    )
                options = replace(base, **VARIANTS[variant])

                def progress(fraction, message, _label=f"{detector}/{preset}/{variant}"):
                    print(
                        f"\r{_label}: {fraction * 100:5.1f}% {message}",
                        end="",
                        file=stream,
                        flush=True,
                    )
                    if fraction >= 1:
                        print(file=stream)

                measure = args.measure_framing and variant == "plain"
                report = evaluate_pipeline(
                    recognizer, images, labels, options, progress, keep_records=measure
                )
                report.update(split=args.split, variant=variant, labels=args.labels)
                if measure:
                    measured, spread = measure_framing(report.pop("records"))
                    framings[f"{detector}/{preset}"] = {**measured.as_dict(), **spread}
                    report["measured_framing"] = framings[f"{detector}/{preset}"]
                rows.append(report)
                print(format_pipeline_row(report), flush=True)
    result = {
        "split": args.split,
        "labels": args.labels,
        "faces": int(len(labels)),
        "model": str(args.model or "shipped"),
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
    }
    if framings:
        result["measured_framings"] = framings
        for key, value in framings.items():
            print(
                f"measured framing {key}: scale {value['scale']}, dx {value['dx']}, "
                f"dy {value['dy']} (box covers {value['box_covers_frame_width_median']:.1%} "
                f"of FER2013's frame width; {value['faces']} faces)"
            )
    if args.write_card:
        add_whole_path(args.model, result, " ".join(["fer", "evaluate-pipeline", *sys.argv[2:]]))
        print(f"whole-path results added to the model card ({args.labels} labels)")
    if args.out:
        tmp = f"{args.out}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1)
            handle.write("\n")
        os.replace(tmp, args.out)
        print(f"wrote {args.out}")
    return result


def split_with_labels(dataset, split: str, labels: str, ferplus_path=None):
    """A split's faces and the labels they are scored by: FER2013's own, or (``ferplus-
    majority``) FER+'s clear majority, on the faces that have one."""
    images, fer_labels = dataset.split(split)
    if labels == "fer2013":
        return images, fer_labels

    majority, keep = crowd_labels(load_ferplus(ferplus_path, dataset), dataset, split)
    return images[keep], majority


def add_pipeline_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate-pipeline",
        help="accuracy through the whole path (detector, crop, model) on FER2013 "
        "faces placed in larger frames",
    )
    p.add_argument(
        "--data",
        default=os.environ.get("FER2013_PATH"),
        help="FER2013 CSV or folder (default: $FER2013_PATH)",
    )
    p.add_argument("--skip-bad-rows", action="store_true")
    p.add_argument(
        "--split",
        default="PublicTest",
        choices=["PublicTest", "PrivateTest"],
        help="choose settings on PublicTest; report PrivateTest",
    )
    p.add_argument("--model", default=None, help="a .keras file (default: the shipped model)")
    p.add_argument("--detector", nargs="+", default=[DEFAULT_DETECTOR], choices=list(DETECTORS))
    p.add_argument("--preset", nargs="+", default=["photo"], choices=["photo", "live"])
    p.add_argument(
        "--variants",
        nargs="+",
        default=["plain"],
        choices=list(VARIANTS),
        help="plain: centred; rotated: turned +-10 degrees; shifted: random spot",
    )
    p.add_argument("--scale", type=float, default=4.0, help="upscaling of the 48x48 face")
    p.add_argument("--frame", default="640x480", help="frame size, WIDTHxHEIGHT")
    p.add_argument("--background", default="grey", choices=list(BACKGROUNDS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--framing",
        default="auto",
        help="auto (the detector's measured framing), none (the bare box), or SCALE,DX,DY",
    )
    p.add_argument("--margin", type=float, default=0.0, help="extra margin per side")
    p.add_argument("--align", action="store_true", help="level the eyes before cropping")
    p.add_argument(
        "--min-score", type=float, default=None, help="drop faces with a detector score below this"
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N faces (quick runs)")
    p.add_argument(
        "--labels",
        default="fer2013",
        choices=["fer2013", "ferplus-majority"],
        help="score against FER2013's labels, or FER+'s clear majority (the faces that have one)",
    )
    p.add_argument(
        "--ferplus",
        default=os.environ.get("FERPLUS_PATH") or None,
        help="FER+'s fer2013new.csv (default: $FERPLUS_PATH)",
    )
    p.add_argument(
        "--measure-framing",
        action="store_true",
        help="also measure how the detector's box relates to FER2013's frame",
    )
    p.add_argument(
        "--sweep-framing",
        action="store_true",
        help="instead of evaluating, score a grid of framings (PublicTest only)",
    )
    p.add_argument("--out", default=None, help="write the results as JSON")
    p.add_argument(
        "--write-card",
        action="store_true",
        help="add the results to the model's card (whole_path, under the labels "
        "scored), which the app's pages read",
    )
    p.set_defaults(func=_cmd_pipeline)


def _cmd_pipeline(args) -> int:
    if args.sweep_framing:
        return _cmd_sweep(args)
    run_pipeline_evaluation(args)
    return 0


def _cmd_sweep(args) -> int:
    if args.split != "PublicTest":
        raise ConfigError("Framings are chosen on PublicTest; PrivateTest must not steer them.")
    images, labels = load_fer2013(args.data, skip_bad=args.skip_bad_rows).split(args.split)
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    width, height = (int(v) for v in args.frame.lower().split("x"))
    options = SceneOptions(
        scale=args.scale, width=width, height=height, background=args.background, seed=args.seed
    )
    out = {}
    for detector in args.detector:
        for preset in args.preset:
            recognizer = Recognizer(
                args.model,
                preset=preset,
                detector=detector,
                margin=args.margin,
                min_score=args.min_score,
            )
            result = framing_sweep(recognizer, images, labels, options)
            out[f"{detector}/{preset}"] = result
            print(
                f"{detector}/{preset}: {result['found']}/{result['faces']} found; original "
                f"crops {result['crop_accuracy_found']:.4f}, FER2013's frame cut from the "
                f"scene {result['oracle_frame_accuracy_found']:.4f}"
            )
            for row in sorted(result["grid"], key=lambda r: -r["accuracy_found"])[:8]:
                print(
                    f"  scale {row['scale']:.2f} dy {row['dy']:+.2f}: {row['accuracy_found']:.4f}"
                )
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(out, handle, indent=1)
    return 0


__all__ = ["add_pipeline_parser", "run_pipeline_evaluation", "format_pipeline_row"]
