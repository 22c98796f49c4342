"""Real-browser tests: the app served inside a network namespace that has only loopback.

Recipe (see the project's BROWSER_TESTS notes): Chromium with a fake webcam from a .y4m file
and ``--allow-loopback-in-peer-connection``; the namespace's ``lo`` also carries 127.0.0.2,
because aioice never offers 127.0.0.1 as an ICE candidate. Nothing leaves loopback, not even
the machine's own address. The namespace is deleted after the tests, also after a failure.

Needs root (a namespace needs CAP_NET_ADMIN), ``ip`` and /usr/bin/chromium; otherwise the
tests are skipped with that reason. Screenshots go to a temporary folder, or to
``$FER_E2E_SHOTS`` when set.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("driver.py")
CHROMIUM = "/usr/bin/chromium"
# The astronaut's face, cropped to 4:3 so the face stays large even if WebRTC starts the
# stream at a low resolution.
FACE_CROP = (slice(0, 255), slice(60, 400))


def _skip_reason() -> str | None:
    if os.name != "posix" or os.geteuid() != 0:
        return "browser tests need root: they run the app in a network namespace (CI runs as root)"
    if not shutil.which("ip"):
        return "browser tests need the `ip` command (iproute2) for a network namespace"
    if not Path(CHROMIUM).is_file():
        return f"browser tests need Chromium at {CHROMIUM} (make browser installs it)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "browser tests need the playwright Python package (requirements-dev.txt)"
    return None


def webcam_frame(width: int = 640, height: int = 480) -> np.ndarray:
    """An RGB frame with the astronaut's smiling face, for the fake webcam."""
    import cv2
    import skimage.data

    face = skimage.data.astronaut()[FACE_CROP]
    return cv2.resize(face, (width, height), interpolation=cv2.INTER_AREA)


def write_y4m(path: Path, rgb: np.ndarray, frames: int = 30, fps: int = 30) -> Path:
    import cv2

    height, width = rgb.shape[:2]
    planes = cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), cv2.COLOR_BGR2YUV_I420).tobytes()
    with open(path, "wb") as handle:
        handle.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            handle.write(b"FRAME\n")
            handle.write(planes)
    return path


def write_small_fer_csv(path: Path, per_class: int = 4) -> Path:
    """A tiny FER2013-format CSV (all splits, all classes, one duplicate pair and one
    all-black row), so the dataset page has something real to show in seconds."""
    rng = np.random.default_rng(0)
    lines = ["emotion,pixels,Usage"]
    images = []
    for usage in ("Training", "PublicTest", "PrivateTest"):
        for label in range(7):
            for _ in range(per_class):
                image = rng.integers(0, 256, 48 * 48)
                images.append(image)
                lines.append(f"{label},{' '.join(map(str, image))},{usage}")
    lines.append(f"3,{' '.join(map(str, images[0]))},PublicTest")  # leaked duplicate, new label
    lines.append(f"6,{' '.join(['0'] * 2304)},Training")  # all black
    path.write_text("\n".join(lines) + "\n")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class E2E:
    """The app running in a namespace, and a way to run driver scenarios next to it."""

    def __init__(self, namespace: str, url: str, work: Path, shots: Path, media: dict,
                 log: Path):
        self.namespace = namespace
        self.log = log
        self.url = url
        self.work = work
        self.shots = shots
        self.media = media

    def run(self, scenario: str, *extra: str, timeout: float = 240.0) -> dict:
        command = ["ip", "netns", "exec", self.namespace, sys.executable, str(DRIVER), scenario,
                   "--url", self.url, "--out", str(self.shots), *extra]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                   cwd=str(ROOT))
        lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise AssertionError(f"driver printed no result (rc {completed.returncode}):\n"
                                 f"{completed.stdout[-2000:]}\n{completed.stderr[-3000:]}")
        result = json.loads(lines[-1])
        result["_stderr"] = completed.stderr[-3000:]
        return result

    def server_log(self) -> str:
        """What the app's server has printed so far."""
        return self.log.read_text(errors="replace")


def _wait_for_server(namespace: str, url: str, process, log: Path, timeout_s: float = 120.0):
    probe = ("import sys, urllib.request\n"
             "try:\n"
             f"    urllib.request.urlopen('{url}/_stcore/health', timeout=2).read()\n"
             "except Exception:\n"
             "    sys.exit(1)\n")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}:\n"
                               f"{log.read_text()[-3000:]}")
        if subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c", probe],
                          capture_output=True).returncode == 0:
            return
        time.sleep(0.5)
    raise RuntimeError(f"streamlit did not answer within {timeout_s:.0f} s:\n"
                       f"{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def e2e(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("e2e")
    shots = Path(os.environ.get("FER_E2E_SHOTS") or work / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    import skimage.data
    from PIL import Image

    photo = work / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(photo)
    media = {"photo": photo, "y4m": write_y4m(work / "face.y4m", webcam_frame()),
             "fer": write_small_fer_csv(work / "fer2013_small.csv")}
    runs = work / "runs"
    runs.mkdir()

    namespace = f"fer-e2e-{os.getpid()}"
    subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    process = None
    log = work / "streamlit.log"
    try:
        subprocess.run(["ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up"],
                       check=True)
        # aioice skips 127.0.0.1 as a host candidate: give lo a second loopback address.
        subprocess.run(["ip", "netns", "exec", namespace, "ip", "addr", "add", "127.0.0.2/8",
                        "dev", "lo"], check=True)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, FER_RUNS_DIR=str(runs), FER2013_PATH=str(media["fer"]),
                   TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        env.pop("FER_ICE_SERVERS", None)  # local only: no STUN/TURN
        with open(log, "wb") as handle:
            process = subprocess.Popen(
                ["ip", "netns", "exec", namespace, sys.executable, "-m", "streamlit", "run",
                 "app.py", "--server.headless", "true", "--server.address", "127.0.0.1",
                 "--server.port", str(port), "--browser.gatherUsageStats", "false",
                 "--server.fileWatcherType", "none"],
                cwd=str(ROOT), env=env, stdout=handle, stderr=subprocess.STDOUT,
                start_new_session=True)
        _wait_for_server(namespace, url, process, log)
        yield E2E(namespace, url, work, shots, media, log)
    finally:
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)
