"""One trainer per run, from anywhere: ``fer train`` holds the run's lock (the one the app's
Start, Resume and Stop take) for as long as it trains; a second trainer is refused at once
with exit status 2 and the trainer's pid; a lock left by a killed trainer is taken over."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer_core.errors import ConfigError
from fer_core.service.jobs import resume_training, stop_training, training_pid
from fer_core.service.status import run_status
from fer_core.training.config import TrainConfig
from fer_core.training.run_lock import lock_holder
from fer_core.training.runs import Run, read_history
from tests.conftest import ROOT
from tests.service.test_jobs import fake_run, write_fer_csv

pytestmark = pytest.mark.slow  # trainers in their own processes

# A tiny, fast run: 14 training faces, a narrow network, no end-of-run recalibration.
TINY = [
    "-a",
    "mini_xception",
    "--model-kwargs",
    '{"width": 4}',
    "--batch-size",
    "8",
    "--warmup-epochs",
    "0",
    "--no-recalibrate",
]

# A process that holds a run's training lock the way `fer train` does, then sleeps.
_HOLDER = (
    "import sys, time\n"
    "from fer_core.training.run_lock import training_lock\n"
    "from fer_core.training.runs import Run\n"
    "with training_lock(Run(sys.argv[1])):\n"
    "    print('ready', flush=True)\n"
    "    time.sleep(600)\n"
)


def _env(**extra):
    env = {key: value for key, value in os.environ.items() if key != "FER_RUNS_DIR"}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def _fer(*args, cwd=ROOT, env=None, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "fer_core", *args],
        cwd=cwd,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _hold(run_dir: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(run_dir)],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    if process.stdout.readline().strip() != "ready":
        process.kill()
        raise RuntimeError("the lock holder did not start")
    return process


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


@pytest.mark.timeout(900)
def test_two_trainers_started_at_once_train_the_run_once(tmp_path):
    data = write_fer_csv(tmp_path / "fer.csv", per_class=2)
    run_dir = tmp_path / "runs" / "R"
    command = [
        sys.executable,
        "-m",
        "fer_core",
        "train",
        "--run",
        str(run_dir),
        "--data",
        str(data),
        "--epochs",
        "2",
        *TINY,
    ]
    both = [
        subprocess.Popen(
            command, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    try:
        outputs = [process.communicate(timeout=600) for process in both]
    finally:
        for process in both:
            if process.poll() is None:
                process.kill()
    codes = sorted(process.returncode for process in both)
    assert codes == [0, 2], [(p.returncode, out[1][-2000:]) for p, out in zip(both, outputs)]
    winner = next(p for p in both if p.returncode == 0)
    loser_out, loser_err = outputs[both.index(next(p for p in both if p.returncode == 2))]
    assert f"run R is already training (process {winner.pid})" in loser_err
    assert "epoch" not in loser_out and "loading FER2013" not in loser_err  # refused at once
    assert [row["epoch"] for row in read_history(run_dir)] == [1.0, 2.0]  # no duplicates
    state = json.loads((run_dir / "state.json").read_text())
    assert state["status"] == "finished" and state["epochs_done"] == 2 and "pid" not in state
    assert lock_holder(Run(run_dir)) is None  # the record goes with the lock


@pytest.mark.timeout(900)
def test_a_lock_left_by_a_killed_trainer_is_taken_over(tmp_path):
    """The app records a trainer's pid in job.json and state.json; when it is killed, both
    stay behind. The kernel releases its lock; the next `fer train --name R` (which finds the
    run through $FER_RUNS_DIR, not ./runs) trains, and the state names the right process."""
    data = write_fer_csv(tmp_path / "fer.csv", per_class=2)
    runs = tmp_path / "elsewhere"
    run_dir = fake_run(runs, "R", status="running", epochs_done=0, epochs=1)
    Run(run_dir).write_config(
        TrainConfig(
            data_path=str(data),
            runs_dir=str(runs),
            run_name="R",
            epochs=1,
            architecture="mini_xception",
            model_kwargs={"width": 4},
            batch_size=8,
            warmup_epochs=0,
            recalibrate_batch_norm=False,
        ).to_dict()
    )
    (run_dir / "history.csv").unlink()
    env = _env(FER_RUNS_DIR=str(runs))
    holder = _hold(run_dir)
    try:
        for field in ("job.json", "state.json"):  # as the app records a trainer it started
            record = json.loads((run_dir / field).read_text()) if field == "state.json" else {}
            record.update(pid=holder.pid, started=time.time(), updated=time.time(), kind="train")
            (run_dir / field).write_text(json.dumps(record))
        refused = _fer("train", "--name", "R", cwd=tmp_path, env=env, timeout=120)
        assert refused.returncode == 2, refused.stderr
        assert f"run R is already training (process {holder.pid})" in refused.stderr
        assert training_pid(Run(run_dir)) == holder.pid
    finally:
        _kill(holder)
    assert lock_holder(Run(run_dir)) is None  # its record is left, but names a dead process
    assert run_status(run_dir).phase == "interrupted"
    result = _fer("train", "--name", "R", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "runs").exists()  # $FER_RUNS_DIR, not ./runs
    assert [row["epoch"] for row in read_history(run_dir)] == [1.0]
    state = json.loads((run_dir / "state.json").read_text())
    assert state["status"] == "finished" and "pid" not in state
    assert run_status(run_dir).phase == "finished"


def test_train_name_finds_the_run_in_fer_runs_dir(tmp_path):
    """`fer train --name R` resolves R under $FER_RUNS_DIR (it used ./runs whatever was set):
    the trainer holding R there is found, and the command is refused before any work."""
    runs = tmp_path / "shared-runs"
    run_dir = fake_run(runs, "R", status="running", epochs_done=1, epochs=3)
    holder = _hold(run_dir)
    try:
        result = _fer(
            "train",
            "--name",
            "R",
            "--data",
            str(tmp_path / "missing.csv"),
            cwd=tmp_path,
            env=_env(FER_RUNS_DIR=str(runs)),
            timeout=120,
        )
    finally:
        _kill(holder)
    assert result.returncode == 2
    assert f"run R is already training (process {holder.pid})" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_the_apps_resume_and_stop_do_not_wait_for_a_training_cli_run(tmp_path):
    """While `fer train` holds the run's lock, Resume is refused at once (it used to wait
    30 s for the lock and say "busy"), and Stop reaches the trainer."""
    data = write_fer_csv(tmp_path / "fer.csv", per_class=1)
    runs = tmp_path / "runs"
    run_dir = fake_run(runs, "R", status="stopped", epochs_done=1, epochs=3)
    Run(run_dir).write_config(
        TrainConfig(data_path=str(data), runs_dir=str(runs), run_name="R", epochs=3).to_dict()
    )
    holder = _hold(run_dir)
    try:
        started = time.monotonic()
        with pytest.raises(ConfigError, match="training already"):
            resume_training(run_dir, python=sys.executable)
        assert stop_training(run_dir) == "requested"
        assert (run_dir / "STOP").exists()
        assert time.monotonic() - started < 5
        assert run_status(run_dir).pid == holder.pid
    finally:
        _kill(holder)
    # The lock is free again (the kernel released it): a resume would start now.
    assert lock_holder(Run(run_dir)) is None and training_pid(Run(run_dir)) is None


def test_the_training_lock_in_one_process(tmp_path):
    """The holder's pid is readable while it trains and gone after; the thread holding it may
    take it again; any other thread (or process) is refused at once with that pid."""
    from concurrent.futures import ThreadPoolExecutor

    from fer_core.training.run_lock import RunBusy, training_lock

    run = Run(tmp_path / "runs" / "R")
    with training_lock(run):
        assert lock_holder(run) == os.getpid() == training_pid(run)
        with training_lock(run):  # re-entered by the same thread
            assert lock_holder(run) == os.getpid()

        def second_trainer():
            started = time.monotonic()
            try:
                with training_lock(run):
                    return "trained"
            except RunBusy as exc:
                return exc.pid, str(exc), time.monotonic() - started

        with ThreadPoolExecutor(1) as pool:
            pid, message, seconds = pool.submit(second_trainer).result()
        assert pid == os.getpid() and seconds < 2
        assert message == f"run R is already training (process {os.getpid()})"
    assert lock_holder(run) is None and (run.path / ".lock").read_text() == ""

    def take_and_release():
        with training_lock(run):
            return lock_holder(run)

    with ThreadPoolExecutor(1) as pool:  # free again, for any thread
        assert pool.submit(take_and_release).result() == os.getpid()
