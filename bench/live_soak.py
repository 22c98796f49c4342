"""Memory of the app's server over a long live-webcam session, in a real browser.

    python -m bench.live_soak                # 10 minutes; writes bench/live_soak.json
    python -m bench.live_soak --minutes 2

The app runs in a loopback-only network namespace (as in the browser tests; needs root and
Chromium) and one Chromium tab streams a 30 fps 640x480 fake webcam of a smiling face to the
Live page. Every 5 s the server process's resident memory is sampled; every 10 s the page's
own frame rate and latency are read. After a 60 s warm-up, memory should stay flat: the
slope of a least-squares line through the samples is reported in MiB per minute.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # run as `python -m bench.live_soak` from here

import numpy as np  # noqa: E402

from tests.browser.appserver import serve_app, unavailable_reason, webcam_frame, write_y4m  # noqa: E402

OUTPUT = Path(__file__).resolve().parent / "live_soak.json"
WARM_UP_S = 60.0


def _rss_mib(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def soak(minutes: float, out_dir: Path) -> dict:
    y4m = write_y4m(out_dir / "face.y4m", webcam_frame())
    seconds = minutes * 60
    with serve_app(out_dir / "streamlit.log", {"FER_RUNS_DIR": str(out_dir / "runs")}) as server:
        idle_rss = _rss_mib(server.process.pid)
        driver = server.start("soak", "--y4m", str(y4m), "--seconds", str(seconds), out=out_dir)
        started = time.monotonic()
        samples = []
        while driver.poll() is None:
            samples.append(
                (round(time.monotonic() - started, 1), round(_rss_mib(server.process.pid), 1))
            )
            time.sleep(5)
        result = server.result(driver)
        log = server.server_log()
    if not result.get("ok"):
        raise SystemExit(
            f"the soak scenario failed: {result.get('error')}\n{result.get('_stderr', '')[-2000:]}"
        )
    steady = [(t, rss) for t, rss in samples if t >= WARM_UP_S]
    slope = (
        float(np.polyfit([t for t, _ in steady], [r for _, r in steady], 1)[0] * 60)
        if len(steady) >= 3
        else None
    )
    fps = [float(r["Frames/s"]) for r in result["readings"] if "Frames/s" in r]
    latency = [float(r["Latency"].split()[0]) for r in result["readings"] if "Latency" in r]
    tops = [r.get("top") for r in result["readings"]]
    return {
        "minutes": minutes,
        "server_rss_mib": {
            "idle_before_streaming": round(idle_rss, 1),
            "after_warm_up": steady[0][1] if steady else None,
            "end": samples[-1][1] if samples else None,
            "max": max(r for _, r in samples) if samples else None,
            "slope_mib_per_minute_after_warm_up": round(slope, 2) if slope is not None else None,
        },
        "page_frames_per_second": {
            "median": statistics.median(fps) if fps else None,
            "min": min(fps) if fps else None,
        },
        "page_latency_ms_median": statistics.median(latency) if latency else None,
        "top_emotion_happy_share": (sum(t == "happy" for t in tops) / len(tops)) if tops else None,
        "seconds_to_first_result": result["first"]["seconds_to_result"],
        "tracebacks_in_server_log": log.count("Traceback"),
        "page_exceptions": result["exceptions"],
        "samples": samples,
        "readings": result["readings"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--output", default=str(OUTPUT))
    args = parser.parse_args(argv)
    reason = unavailable_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="fer-soak-") as folder:
        report = soak(args.minutes, Path(folder))
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    summary = {k: v for k, v in report.items() if k not in ("samples", "readings")}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
