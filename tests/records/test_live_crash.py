"""A live recording written by the frame callback survives its process being killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer_core.records import Records, Viewer
from fer_core.records import database as store_module

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_a_recording_survives_the_process_being_killed(db_url, monkeypatch):
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.records.live_recording_child", db_url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""},
    )
    session, written, deadline = None, 0, time.monotonic() + 240
    try:
        for line in child.stdout:
            word, number = line.split()
            if word == "session":
                session = int(number)
            elif word == "written":
                written = int(number)
                if written >= 30:  # several batches in: kill it mid-recording
                    break
            if time.monotonic() > deadline:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert session is not None and written >= 30, "the recording never reached the database"

    records = Records(db_url)
    viewer = Viewer("tab-ann")
    info = records.session(session, viewer)
    assert info.rows >= written  # every batch it reported is there (and perhaps one more)
    assert info.faces > 0 and info.person_name == "Ann"
    rows = records.session_rows(session, viewer)
    assert rows["frame"].is_monotonic_increasing and rows["timestamp"].notna().all()
    assert (rows["label"].dropna() == "happy").mean() > 0.5
    # never stopped: shown as interrupted once nobody has written for a while
    assert info.status == "recording"
    monkeypatch.setattr(store_module, "STALE_SECONDS", 0.0)
    assert records.session(session, viewer).status == "interrupted"
    records.close()
