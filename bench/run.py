"""Benchmarks: speed and cost of every path a user meets. Writes bench/results.json.

    python -m bench            # everything (about 3 minutes on a 2-core CPU)
    python -m bench --quick    # fewer repeats

Photos for detection quality come from ../shared/data/photos (or FER_PHOTOS_DIR); FER2013 from
FER2013_PATH. Sections whose data is absent are recorded as skipped, with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results.json"
DEFAULT_PHOTOS = ROOT.parent / "shared" / "data" / "photos"


def machine_info() -> dict:
    import cv2
    import keras
    import tensorflow as tf

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
    }


def _stats(times) -> dict:
    times = np.asarray(times) * 1e3
    return {
        "median_ms": round(float(np.median(times)), 3),
        "p90_ms": round(float(np.percentile(times, 90)), 3),
        "runs": int(len(times)),
    }


# The model that the shipped default replaced (v3, FER2013's labels), still shipped as the
# selectable alternative: the benchmark holds the default to its one-face latency.
PREVIOUS_MODEL = ROOT / "models" / "cnn_gru_fer2013.keras"


def bench_classifier(repeats: int) -> dict:
    from fer_core.evaluation.latency import measure_classifier_latency
    from fer_core.models.inference import EmotionModel

    out = {}
    for backend, fast in (("litert", True), ("keras", False)):
        model = EmotionModel(fast=fast, flip_average=False)
        for batch in (1, 32):
            r = measure_classifier_latency(
                model, batch, repeats=repeats if batch == 1 else max(20, repeats // 5)
            )
            out[f"{backend}_batch{batch}"] = {
                k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()
            }
    shipped = EmotionModel()
    out["shipped_setting"] = {
        "flip_average": shipped.flip_average,
        **{
            k: round(v, 4) if isinstance(v, float) else v
            for k, v in measure_classifier_latency(shipped, 1, repeats=repeats).items()
        },
    }
    if PREVIOUS_MODEL.is_file():
        out["against_previous_model"] = compare_with_previous(shipped, repeats)
    return out


def compare_with_previous(shipped, repeats: int, rounds: int = 10) -> dict:
    """One face, as shipped (each model with its own card's flip choice and calibration),
    the shipped model and the one it replaced, timed in turn round by round so that the
    machine's drift falls on both alike."""
    from fer_core.evaluation.latency import measure_classifier_latency
    from fer_core.models.inference import EmotionModel

    previous = EmotionModel(PREVIOUS_MODEL)
    times = {"shipped": [], "previous": []}
    for _ in range(rounds):
        for name, model in (("shipped", shipped), ("previous", previous)):
            times[name].append(
                measure_classifier_latency(model, 1, repeats=max(20, repeats // rounds), warmup=10)[
                    "median_ms"
                ]
            )
    shipped_ms, previous_ms = (float(np.median(times[k])) for k in ("shipped", "previous"))
    return {
        "shipped_ms": round(shipped_ms, 4),
        "previous_ms": round(previous_ms, 4),
        "ratio": round(shipped_ms / previous_ms, 3),
        "rounds": rounds,
        "previous_model": str(PREVIOUS_MODEL.relative_to(ROOT)),
        "previous_flip_average": previous.flip_average,
        "shipped_flip_average": shipped.flip_average,
    }


def synthetic_frame(width: int, height: int, faces: int, face_width: int) -> np.ndarray:
    """A grey frame with ``faces`` copies of the astronaut's face pasted in a row."""
    import cv2
    from skimage import data

    astronaut = data.astronaut()
    face = astronaut[30:250, 130:330]  # head and some margin
    scale = face_width / 110.0  # the face itself is about 110 px wide in that crop
    face = cv2.resize(face, (int(face.shape[1] * scale), int(face.shape[0] * scale)))
    frame = np.full((height, width, 3), 110, np.uint8)
    fh, fw = face.shape[:2]
    for index in range(faces):
        x = int((index + 0.5) * width / faces - fw / 2)
        y = int(height / 2 - fh / 2)
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(width, x + fw), min(height, y + fh)
        frame[y0:y1, x0:x1] = face[y0 - y : y1 - y, x0 - x : x1 - x]
    return frame


def bench_pipeline(repeats: int) -> dict:
    from fer_core import Recognizer

    out = {}
    cases = [
        ("640x480", 640, 480, 1, 200),
        ("640x480", 640, 480, 5, 100),
        ("1280x720", 1280, 720, 1, 300),
        ("1280x720", 1280, 720, 5, 200),
    ]
    for preset in ("live", "photo"):
        recognizer = Recognizer(preset=preset)
        for label, width, height, faces, face_width in cases:
            frame = synthetic_frame(width, height, faces, face_width)
            found = len(recognizer.analyze_stream(frame))
            times = []
            for _ in range(5):
                recognizer.analyze_stream(frame)
            for _ in range(repeats):
                started = time.perf_counter()
                recognizer.analyze_stream(frame)
                times.append(time.perf_counter() - started)
            key = f"{preset}_{label}_{faces}face{'s' if faces > 1 else ''}"
            out[key] = {
                **_stats(times),
                "faces_placed": faces,
                "faces_found": found,
                "face_width_px": face_width,
                "fps_capacity": round(1000.0 / float(np.median(times) * 1e3), 1),
            }
    return out


def smallest_live_face() -> dict:
    """Smallest face width (px, in a 640x480 frame) the live preset still finds."""
    from fer_core import Recognizer

    recognizer = Recognizer(preset="live")
    found_sizes = []
    for width in range(30, 160, 5):
        if len(recognizer.analyze(synthetic_frame(640, 480, 1, width))) == 1:
            found_sizes.append(width)
    return {
        "smallest_found_px": min(found_sizes) if found_sizes else None,
        "always_found_from_px": next(
            (w for w in range(30, 160, 5) if all(s in found_sizes for s in range(w, 160, 5))), None
        ),
    }


def iou(a, b) -> float:
    from fer_core.recognition.recognizer import iou as _iou

    return _iou(a, b)


def bench_detection(photos_dir: Path) -> dict:
    import cv2

    from fer_core import read_image
    from fer_core.faces import DetectorSettings, HaarDetector
    from fer_core.recognition.recognizer import PRESETS

    annotations = photos_dir / "annotations" / "face_boxes.json"
    if not annotations.is_file():
        return {"skipped": f"no labelled photos at {photos_dir}"}
    truth = json.loads(annotations.read_text())
    settings = {
        "seed (1.1, 5, 30x30, full size)": DetectorSettings(1.1, 5, 30, None),
        **{f"preset {name}": s for name, s in PRESETS.items()},
    }
    out = {}
    for name, setting in settings.items():
        detector = HaarDetector(setting)
        tp = fp = fn = 0
        times = []
        for file, info in truth.items():
            image = read_image(photos_dir / file)
            started = time.perf_counter()
            boxes = detector.detect(image)
            times.append(time.perf_counter() - started)
            gt = [tuple(b) for b in info["faces_xywh"]]
            matched = set()
            for box in boxes:
                best = max(range(len(gt)), key=lambda i: iou(box, gt[i]), default=None)
                if best is not None and best not in matched and iou(box, gt[best]) >= 0.4:
                    matched.add(best)
                    tp += 1
                else:
                    fp += 1
            fn += len(gt) - len(matched)
        out[name] = {
            "recall": round(tp / max(tp + fn, 1), 4),
            "precision": round(tp / max(tp + fp, 1), 4),
            "true_positives": tp,
            "false_positives": fp,
            "missed": fn,
            "faces": tp + fn,
            "images": len(truth),
            **_stats(times),
        }
    del cv2
    return out


def bench_training_throughput(steps: int) -> dict:
    import keras

    from fer_core.models.architectures import available_architectures, build_model

    out = {}
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64 * steps, 48, 48, 1)).astype(np.float32)
    y = np.eye(7, dtype=np.float32)[rng.integers(0, 7, len(x))]
    for name in available_architectures():
        model = build_model(name)
        model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="categorical_crossentropy")
        model.fit(x[:128], y[:128], batch_size=64, epochs=1, verbose=0)  # compile/warm up
        started = time.perf_counter()
        model.fit(x, y, batch_size=64, epochs=1, verbose=0)
        seconds = time.perf_counter() - started
        out[name] = {
            "images_per_second": round(len(x) / seconds, 1),
            "parameters": int(model.count_params()),
            "batch_size": 64,
        }
    # The project's own loop (augmentation, class weights, checkpoints, validation), which
    # is what `fer train` and the Training page run: bench.train_speed.
    from bench.train_speed import load_training_data, measure

    loop = measure(load_training_data(None, 64 * steps * 2, 0), 64, 2, 64 * steps * 2, "cnn_gru")
    out["cnn_gru, fer train loop"] = {
        "images_per_second": loop["images_per_second"],
        "batch_size": 64,
        "note": "second epoch, timed from its first finished batch to its last",
    }
    return out


def bench_loading() -> dict:
    out = {}
    code = (
        "import time; t=time.perf_counter(); import fer_core; m=fer_core.load_model(); "
        "import numpy as np; m.predict_faces(np.zeros((1,48,48),np.uint8)); "
        "print(time.perf_counter()-t)"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    out["model_load_first_prediction_s"] = round(float(result.stdout.strip().splitlines()[-1]), 3)
    path = os.environ.get("FER2013_PATH")
    if path and Path(path).exists():
        from fer_core import load_fer2013

        started = time.perf_counter()
        data = load_fer2013(path)
        out["fer2013_load_s"] = round(time.perf_counter() - started, 2)
        out["fer2013_rows"] = len(data)
        out["fer2013_file"] = Path(path).name
    else:
        out["fer2013_load_s"] = "skipped: FER2013_PATH not set"
    return out


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int, env: dict, output=subprocess.DEVNULL) -> subprocess.Popen:
    """`streamlit run app.py` from the project folder, headless, on 127.0.0.1:``port``, its
    output (stdout and stderr) to ``output``."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
        ],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if output is not subprocess.DEVNULL else subprocess.DEVNULL,
    )


def bench_app_cold_start() -> dict:
    """Seconds from `streamlit run app.py` to the home page rendered in headless Chromium."""
    if not Path("/usr/bin/chromium").exists():
        return {"skipped": "chromium not installed"}
    port = free_port()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    server = start_app(port, env)
    try:
        from playwright.sync_api import sync_playwright

        # Playwright gives each launch a fresh temporary profile of its own.
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                ],
            )
            page = browser.new_page()
            while True:
                try:
                    page.goto(f"http://127.0.0.1:{port}/", timeout=5000)
                    break
                except Exception:  # server not up yet
                    if time.perf_counter() - started > 120:
                        raise
                    time.sleep(0.2)
            page.get_by_text("PrivateTest", exact=False).first.wait_for(timeout=120000)
            seconds = time.perf_counter() - started
            browser.close()
        return {"cold_start_to_home_rendered_s": round(seconds, 2)}
    except Exception as exc:  # recorded, not fatal: the other numbers still count
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def _write_test_video(path: Path, seconds: int, fps: int = 15, size=(320, 240)) -> None:
    """A synthetic clip: the astronaut's face drifting across a grey frame."""
    import av

    frame_rgb = synthetic_frame(size[0] * 2, size[1], 1, 90)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for index in range(seconds * fps):
            offset = int((index % (fps * 8)) / (fps * 8) * size[0])
            image = np.ascontiguousarray(frame_rgb[:, offset : offset + size[0]])
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _peak_rss_during(fn) -> tuple[float, float, object]:
    """(peak RSS MiB, RSS before MiB, result) of fn(), sampling RSS every 20 ms."""
    import threading

    import psutil

    process = psutil.Process()
    before = process.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.wait(0.02):
            peak[0] = max(peak[0], process.memory_info().rss)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        result = fn()
    finally:
        done.set()
        thread.join()
    return peak[0] / 2**20, before / 2**20, result


def bench_video(every: int) -> dict:
    """Peak memory and speed of video analysis on a 1-minute and a 10-minute clip: memory
    must not grow with the video's length (frames are streamed)."""
    from fer_core import Recognizer
    from fer_core.recognition.video import analyze_video

    recognizer = Recognizer(preset="photo")
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        for minutes in (1, 10):
            path = Path(folder) / f"clip_{minutes}min.mp4"
            _write_test_video(path, minutes * 60)
            started = time.perf_counter()
            peak, before, frame = _peak_rss_during(
                lambda path=path: analyze_video(path, recognizer=recognizer, every=every)
            )
            seconds = time.perf_counter() - started
            out[f"{minutes}min_320x240_15fps"] = {
                "every_nth_frame": every,
                "frames_analysed": int(frame["frame"].nunique()),
                "face_rows": int(len(frame)),
                "seconds": round(seconds, 1),
                "peak_rss_mib": round(peak, 1),
                "rss_growth_mib": round(peak - before, 1),
            }
    return out


def bench_batch_cli(count: int) -> dict:
    """`python -m fer_core predict FOLDER --out results.csv` over ``count`` JPEG files."""
    from PIL import Image

    with tempfile.TemporaryDirectory() as folder:
        base = synthetic_frame(320, 240, 1, 110)
        for index in range(count):
            image = np.roll(base, index % 60, axis=1)
            Image.fromarray(image).save(Path(folder) / f"img_{index:04d}.jpg", quality=90)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        out_file = Path(folder) / "results.csv"
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "fer_core", "predict", folder, "--out", str(out_file)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        seconds = time.perf_counter() - started
        summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    return {
        "images": count,
        "seconds_including_start": round(seconds, 1),
        "images_per_second": round(count / seconds, 1),
        "summary": summary,
        "returncode": result.returncode,
    }


def print_table(results: dict) -> None:
    print(
        f"\nmachine: {results['machine']['cpu']} ({results['machine']['cores']} cores), "
        f"{results['machine']['date']}"
    )
    print("\nclassifier (per call)")
    for key, r in results["classifier"].items():
        if key == "against_previous_model":
            print(
                f"  as shipped, 1 face: {r['shipped_ms']:.3f} ms against the previous "
                f"model's {r['previous_ms']:.3f} ms (x{r['ratio']:.2f}, interleaved)"
            )
            continue
        print(
            f"  {key:<18} median {r['median_ms']:8.3f} ms  p90 {r['p90_ms']:8.3f} ms  "
            f"per face {r['median_ms_per_face']:.4f} ms"
        )
    print("\npipeline per frame (detect + crop + classify + smoothing)")
    for key, r in results["pipeline"].items():
        print(
            f"  {key:<28} median {r['median_ms']:7.2f} ms  p90 {r['p90_ms']:7.2f} ms  "
            f"{r['fps_capacity']:6.1f} fps  faces {r['faces_found']}/{r['faces_placed']}"
        )
    print(f"  smallest face the live preset finds in 640x480: {results['live_smallest_face']}")
    print("\ndetection on labelled photos (IoU >= 0.4)")
    for key, r in results["detection"].items():
        if isinstance(r, dict):
            print(
                f"  {key:<34} recall {r['recall']:.3f}  precision {r['precision']:.3f}  "
                f"median {r['median_ms']:.1f} ms/image"
            )
        else:
            print(f"  {key}: {r}")
    print("\ntraining throughput (batch 64)")
    for key, r in results["training"].items():
        params = f"  ({r['parameters']:,} params)" if "parameters" in r else ""
        print(f"  {key:<24} {r['images_per_second']:8.1f} images/s{params}")
    print("\nvideo analysis (streamed; peak memory)")
    for key, r in results.get("video", {}).items():
        print(
            f"  {key:<22} {r['frames_analysed']} frames in {r['seconds']} s, peak RSS "
            f"{r['peak_rss_mib']} MiB (+{r['rss_growth_mib']} MiB)"
        )
    batch = results.get("batch_cli", {})
    if batch:
        print(
            f"\nbatch CLI: {batch['images']} images, {batch['images_per_second']} images/s "
            f"({batch['summary']})"
        )
    print("\nloading")
    for key, value in {**results["loading"], **results["app"]}.items():
        print(f"  {key}: {value}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--photos", default=os.environ.get("FER_PHOTOS_DIR", str(DEFAULT_PHOTOS)))
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--no-app", action="store_true", help="skip the app cold-start timing")
    args = parser.parse_args(argv)
    repeats = 100 if args.quick else 400
    started = time.perf_counter()
    results = {"machine": machine_info()}
    print("classifier latency...", flush=True)
    results["classifier"] = bench_classifier(repeats)
    print("pipeline...", flush=True)
    results["pipeline"] = bench_pipeline(30 if args.quick else 100)
    results["live_smallest_face"] = smallest_live_face()
    print("detection quality...", flush=True)
    results["detection"] = bench_detection(Path(args.photos))
    print("training throughput...", flush=True)
    results["training"] = bench_training_throughput(4 if args.quick else 12)
    print("video...", flush=True)
    results["video"] = bench_video(every=5)
    print("batch CLI...", flush=True)
    results["batch_cli"] = bench_batch_cli(1000)
    print("loading...", flush=True)
    results["loading"] = bench_loading()
    results["app"] = {"skipped": "--no-app"} if args.no_app else bench_app_cold_start()
    results["bench_seconds"] = round(time.perf_counter() - started, 1)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"\nwrote {args.out} in {results['bench_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
