"""Real-browser tests: the app served inside a network namespace that has only loopback
(appserver.py), driven by Chromium scenarios (driver.py), with a fake webcam.

Needs root (a namespace needs CAP_NET_ADMIN), ``ip`` and /usr/bin/chromium; otherwise the
tests are skipped with that reason. Screenshots go to a temporary folder, or to
``$FER_E2E_SHOTS`` when set.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.browser.appserver import (
    AppServer,
    serve_app,
    unavailable_reason,
    webcam_frame,
    write_y4m,
)


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


class E2E:
    """The served app, the test media, and a way to run driver scenarios next to it."""

    def __init__(self, server: AppServer, work: Path, shots: Path, media: dict):
        self.server = server
        self.url = server.url
        self.work = work
        self.shots = shots
        self.media = media
        self.log_mark = 0

    def run(self, scenario: str, *extra: str, timeout: float = 240.0) -> dict:
        return self.server.run(scenario, *extra, out=self.shots, timeout=timeout)

    def server_log(self) -> str:
        return self.server.server_log()

    def test_log(self) -> str:
        """What the server printed since the running test began (the server serves every
        test: a failure in one must not be blamed on the ones after it)."""
        return self.server_log()[self.log_mark :]

    def publish(self, shot: str, as_name: str, width: int = 1000) -> None:
        """With ``$FER_README_SHOTS`` set (a folder: docs/images for the README), keep a copy of
        one of this run's screenshots there, ``width`` pixels wide. Otherwise nothing."""
        folder = os.environ.get("FER_README_SHOTS")
        if not folder:
            return
        from PIL import Image

        image = Image.open(self.shots / shot).convert("RGB")
        height = round(image.height * width / image.width)
        Path(folder).mkdir(parents=True, exist_ok=True)
        small = image.resize((width, height), Image.LANCZOS).quantize(256)  # a UI: 256 colours
        small.save(Path(folder) / as_name, optimize=True)


@pytest.fixture(scope="session")
def e2e(tmp_path_factory):
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("e2e")
    shots = Path(os.environ.get("FER_E2E_SHOTS") or work / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    import skimage.data
    from PIL import Image

    photo = work / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(photo)
    media = {
        "photo": photo,
        "y4m": write_y4m(work / "face.y4m", webcam_frame()),
        "fer": write_small_fer_csv(work / "fer2013_small.csv"),
    }
    runs = work / "runs"
    runs.mkdir()

    # Uploads in a folder of the test's own, with a folder left by a server that no longer
    # runs: the app must delete that one when it starts.
    uploads = work / "uploads"
    stale = uploads / "999999999-1" / "0123456789abcdef"
    stale.mkdir(parents=True)
    (stale / "old.csv").write_text("left behind\n")
    media["uploads"], media["stale"] = uploads, stale.parent
    env = {
        "FER_RUNS_DIR": str(runs),
        "FER2013_PATH": str(media["fer"]),
        "FER_UPLOAD_DIR": str(uploads),
    }
    with serve_app(work / "streamlit.log", env) as server:
        yield E2E(server, work, shots, media)


@pytest.fixture(autouse=True)
def _e2e_log_mark(request):
    """Where the shared server's log stood when a test that uses it began."""
    if "e2e" in request.fixturenames:
        e2e = request.getfixturevalue("e2e")
        e2e.log_mark = len(e2e.server_log())
    yield
