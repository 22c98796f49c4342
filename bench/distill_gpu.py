"""The distillation session on a lent GPU machine, as one command with a deadline.

    python -m bench.distill_gpu --data PACK_DIR --out OUT_DIR --seconds 520

PACK_DIR holds Training and PublicTest as ``../shared/device/pack_fer2013.sh`` packs them
(PrivateTest never travels: it is scored on the CPU machine, after every choice is made).
Every run is ``fer_core.training.loop.train``, the loop ``python -m fer_core train`` runs; the runs of
a phase train side by side (small models leave most of the GPU idle), and a phase that
reaches its deadline asks its runs to stop (each keeps its best checkpoint on PublicTest).

1. Speed: ``cnn_gru`` alone at batch 256 (``bench.train_speed``), with JAX's compile count.
2. Teachers and the student alone: two ``vgg_teacher`` networks from scratch, and the shipped
   student trained on for the same epochs without a teacher (the ablation's baseline).
3. Students distilled from the two teachers' averaged, flip-averaged probabilities, each
   from the shipped student, for the same epochs: plain, with mixup, with CutMix.

OUT_DIR gets ``summary.json`` (every run's settings, epochs done, seconds, best PublicTest
accuracy, and the teachers' PublicTest accuracy alone and together), ``students.tar``
(each student's best.keras and history) and each teacher's best.keras.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "models" / "cnn_gru.keras"

STUDENT = dict(
    architecture="cnn_gru",
    init_from=str(SHIPPED),
    epochs=60,
    batch_size=128,
    learning_rate=1e-3,
    warmup_epochs=2,
    schedule="cosine",
)
TEACHERS = {
    "teacher_a": dict(
        architecture="vgg_teacher",
        model_kwargs={"width": 56},
        epochs=50,
        batch_size=128,
        learning_rate=1e-3,
        warmup_epochs=2,
        seed=1,
    ),
    "teacher_b": dict(
        architecture="vgg_teacher",
        model_kwargs={"width": 48},
        epochs=50,
        batch_size=128,
        learning_rate=1e-3,
        warmup_epochs=2,
        seed=2,
    ),
}


def _students(teachers: list[str]) -> dict:
    kd = dict(STUDENT, teacher=teachers, distill_temperature=4.0, distill_weight=0.7)
    return {
        "student_kd": kd,
        "student_kd_mixup": dict(kd, mix="mixup", mix_alpha=0.4),
        "student_kd_cutmix": dict(kd, mix="cutmix", mix_alpha=1.0),
    }


def worker(args) -> int:
    from bench.train_speed import load_training_data
    from fer_core.training.config import TrainConfig
    from fer_core.training.loop import train

    settings = json.loads(args.settings)
    dataset = load_training_data(args.data, None, 0)
    config = TrainConfig(**settings, runs_dir=args.runs, run_name=args.name)
    train(config, dataset, verbose=0)
    return 0


def _launch(name: str, settings: dict, args, env) -> subprocess.Popen:
    if args.tiny:  # a dry run of the whole session in minutes, on any machine
        settings = dict(settings, epochs=2, train_subset=512, validation_subset=256)
    log = open(Path(args.runs) / f"{name}.log", "w")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.distill_gpu",
            "worker",
            "--name",
            name,
            "--data",
            args.data,
            "--runs",
            args.runs,
            "--settings",
            json.dumps(settings),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _phase(runs: dict, args, env, deadline: float, summary: dict) -> None:
    from fer_core.training.runs import Run

    started = time.time()
    procs = {name: _launch(name, settings, args, env) for name, settings in runs.items()}
    stop_sent = False
    while any(p.poll() is None for p in procs.values()):
        if time.time() > deadline and not stop_sent:
            for name in procs:
                Run(Path(args.runs) / name).request_stop()
            stop_sent = True
        if time.time() > deadline + 45:
            for p in procs.values():
                p.kill()
        time.sleep(2)
    for name, settings in runs.items():
        run = Run(Path(args.runs) / name)
        state = run.state()
        history = run.history_rows()
        summary["runs"][name] = {
            "settings": settings,
            "exit": procs[name].returncode,
            "status": state.get("status"),
            "epochs_done": state.get("epochs_done"),
            "best_epoch": state.get("best_epoch"),
            "best_val_accuracy": state.get("best_val_accuracy"),
            "recalibration": state.get("recalibration"),
            "train_seconds": state.get("train_seconds"),
            "phase_seconds": round(time.time() - started, 1),
            "epoch_seconds": [float(r["seconds"]) for r in history],
            "log_tail": (Path(args.runs) / f"{name}.log").read_text()[-1500:],
        }
    _write(summary, args)


def _write(summary: dict, args) -> None:
    Path(args.out, "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def _teacher_scores(paths: list[str], args) -> dict:
    import numpy as np

    from bench.train_speed import load_training_data
    from fer_core.evaluation.reports import predict_probabilities
    from fer_core.models.architectures import load_keras_model

    dataset = load_training_data(args.data, None, 0)
    x, y = dataset.split("PublicTest")
    scores, together = {}, 0.0
    for path in paths:
        probs = predict_probabilities(load_keras_model(path), x, flip_average=True)
        scores[Path(path).parent.name] = float(np.mean(probs.argmax(1) == y))
        together = together + probs
    scores["ensemble"] = float(np.mean(np.asarray(together).argmax(1) == y))
    return scores


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.distill_gpu")
    parser.add_argument("mode", nargs="?", default="session", choices=["session", "worker"])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", default=".")
    parser.add_argument("--runs", default="/tmp/distill_runs")
    parser.add_argument("--seconds", type=float, default=520)
    parser.add_argument("--name")
    parser.add_argument("--settings")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--tiny", action="store_true", help="2 epochs of 512 images each")
    args = parser.parse_args(argv)
    if args.mode == "worker":
        return worker(args)
    began = time.time()
    Path(args.runs).mkdir(parents=True, exist_ok=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    summary: dict = {"runs": {}, "started": began}
    if not args.skip_speed:
        speed = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.train_speed",
                "--data",
                args.data,
                "--rows",
                "512" if args.tiny else "0",
                "--batch-size",
                "256",
                "--epochs",
                "2" if args.tiny else "4",
                "--out",
                str(Path(args.runs) / "speed.json"),
                "--label",
                "gpu-b256",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=150,
        )
        summary["speed_log_tail"] = (speed.stdout + speed.stderr)[-3000:]
        speed_file = Path(args.runs) / "speed.json"
        summary["speed"] = json.loads(speed_file.read_text()) if speed_file.is_file() else None
        _write(summary, args)
    left = args.seconds - (time.time() - began)
    phase1 = {**TEACHERS, "student_alone": STUDENT}
    _phase(phase1, args, env, time.time() + left * 0.5, summary)
    teachers = [
        str(Path(args.runs) / name / "best.keras")
        for name in TEACHERS
        if (Path(args.runs) / name / "best.keras").is_file()
    ]
    for path in teachers:
        shutil.copyfile(path, Path(args.out) / f"{Path(path).parent.name}.keras")
    if teachers:
        summary["teachers_public_test_flip"] = _teacher_scores(teachers, args)
        _write(summary, args)
        left = args.seconds - (time.time() - began)
        _phase(_students(teachers), args, env, time.time() + left - 40, summary)
    with tarfile.open(Path(args.out) / "students.tar", "w") as tar:
        for name in summary["runs"]:
            if name.startswith("student"):
                for file in ("best.keras", "history.csv", "state.json", "config.json"):
                    path = Path(args.runs) / name / file
                    if path.is_file():
                        tar.add(path, arcname=f"{name}/{file}")
    summary["seconds"] = round(time.time() - began, 1)
    _write(summary, args)
    print(json.dumps({k: v for k, v in summary.items() if k != "speed_log_tail"}, indent=1)[-6000:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
