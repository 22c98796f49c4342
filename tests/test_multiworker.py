"""Two training workers on loopback under MultiWorkerMirroredStrategy (TF_CONFIG)."""

import json
import os
import socket
import subprocess
import sys

from fer_core.model import load_keras_model
from fer_core.runs import read_history
from tests.conftest import ROOT


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_one_short_epoch_on_real_data(fer2013_path, tmp_path):
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    runs = tmp_path / "runs"
    processes = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
               "TF_CONFIG": json.dumps({"cluster": cluster,
                                        "task": {"type": "worker", "index": index}})}
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "fer_core", "train", "--data", str(fer2013_path),
             "-a", "mini_xception", "--epochs", "1", "--subset", "400", "--val-subset", "200",
             "--batch-size", "32", "--runs-dir", str(runs), "--name", "pair"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=600)[0])
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for index, process in enumerate(processes):
        assert process.returncode == 0, f"worker {index}:\n{outputs[index][-3000:]}"
        assert "epoch   1/1" in outputs[index]
    run = runs / "pair"
    assert [int(r["epoch"]) for r in read_history(run)] == [1]
    load_keras_model(run / "best.keras")
    assert not (runs / ".pair.worker1").exists()  # the worker's scratch folder is gone
