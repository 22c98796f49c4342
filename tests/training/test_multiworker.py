"""Two training workers on loopback under MultiWorkerMirroredStrategy (TF_CONFIG)."""

import json
import os
import socket
import subprocess
import sys

import pytest

from fer_core.models.architectures import load_keras_model
from fer_core.training.runs import read_history
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # two trainers in their own processes


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_pair(fer2013_path, runs, trace, epochs, **env_extra):
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = []
    for index in range(2):
        env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "FER_TRACE_WEIGHTS": str(trace),
            **env_extra,
            "TF_CONFIG": json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            ),
        }
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "fer_core",
                    "train",
                    "--data",
                    str(fer2013_path),
                    "-a",
                    "mini_xception",
                    "--epochs",
                    str(epochs),
                    "--subset",
                    "400",
                    "--val-subset",
                    "200",
                    "--batch-size",
                    "32",
                    "--runs-dir",
                    str(runs),
                    "--name",
                    "pair",
                    "--no-recalibrate",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    return processes


def _finish(processes, timeout=600, expect=(0, 0)):
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=timeout)[0])
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for index, process in enumerate(processes):
        if expect[index] is not None:
            assert process.returncode == expect[index], f"worker {index}:\n{outputs[index][-3000:]}"
    return outputs


def _wait_for_second_epoch(run, trace, processes):
    import time

    deadline = time.time() + 600
    while time.time() < deadline:
        if read_history(run) and any(
            int(epoch) == 2 and int(step) >= 2 for epoch, step, _ in _trace(trace, 0)
        ):
            return
        if any(process.poll() is not None for process in processes):
            return
        time.sleep(0.2)


def _trace(trace, index):
    path = trace / f"worker{index}.csv"
    return (
        [tuple(line.split(",")) for line in path.read_text().splitlines()] if path.is_file() else []
    )


def test_two_workers_stop_together_and_resume_in_step(fer2013_path, tmp_path):
    """A stop request during the second epoch ends both workers after the same batch (no
    worker left waiting in an all-reduce); resuming both trains the second epoch again from
    the first epoch's checkpoint, and after every step both workers hold identical weights."""
    runs, trace = tmp_path / "runs", tmp_path / "trace"
    trace.mkdir()
    run = runs / "pair"
    processes = _start_pair(fer2013_path, runs, trace, epochs=2)
    _wait_for_second_epoch(run, trace, processes)
    (run / "STOP").touch()
    _finish(processes)
    first, second = _trace(trace, 0), _trace(trace, 1)
    assert first and first == second  # the same steps, the same weights, the same last batch
    assert int(first[-1][0]) == 2 and int(first[-1][1]) < 13  # stopped inside epoch 2
    assert [int(r["epoch"]) for r in read_history(run)] == [1]
    stopped_at = len(first)

    _finish(_start_pair(fer2013_path, runs, trace, epochs=2))  # the same command: resume
    first, second = _trace(trace, 0), _trace(trace, 1)
    assert first == second and len(first) == stopped_at + 13
    assert [(int(e), int(s)) for e, s, _ in first[stopped_at:]] == [(2, s) for s in range(1, 14)]
    assert [int(r["epoch"]) for r in read_history(run)] == [1, 2]  # no gap, no repeat
    load_keras_model(run / "best.keras")
    assert not (runs / ".pair.worker1").exists()  # the worker's scratch folder is gone


def test_a_killed_worker_ends_the_run_on_the_other_and_both_resume(fer2013_path, tmp_path):
    """Killing a worker mid-epoch does not leave the chief waiting forever: it gives up after
    the collective timeout with a message, keeps the last full epoch, and both resume."""
    import signal

    runs, trace = tmp_path / "runs", tmp_path / "trace"
    trace.mkdir()
    run = runs / "pair"
    processes = _start_pair(fer2013_path, runs, trace, epochs=2, FER_COLLECTIVE_TIMEOUT="20")
    _wait_for_second_epoch(run, trace, processes)
    processes[1].send_signal(signal.SIGKILL)
    outputs = _finish(processes, timeout=300, expect=(2, None))
    assert "Another worker stopped answering" in outputs[0] and "Traceback" not in outputs[0]
    assert [int(r["epoch"]) for r in read_history(run)] == [1]
    (trace / "resumed").mkdir()
    _finish(_start_pair(fer2013_path, runs, trace / "resumed", epochs=2))
    assert [int(r["epoch"]) for r in read_history(run)] == [1, 2]
    resumed = _trace(trace / "resumed", 0)
    assert resumed == _trace(trace / "resumed", 1) and len(resumed) == 13
