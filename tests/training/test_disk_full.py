"""A full disk is an ordinary error (security issue, item 5).

While training, a checkpoint or history write that fails (ENOSPC, or another OSError) stops
the run with one line naming the file and the cause, marks it failed with that reason in
state.json (the Training page shows "failed" and why), leaves best.keras, last.keras and the
history as they were and no temporary file behind, and the run resumes once there is room.
Storing an upload on a full disk gives the page a message, not a traceback.

The tmpfs tests really fill a small file system; they need root (to mount) and skip without.
"""

import contextlib
import errno
import hashlib
import io
import os
import subprocess
from pathlib import Path

import pytest

from fer_core import load_fer2013
from fer_core.models.architectures import load_keras_model
from fer_core.service.status import run_status
from fer_core.storage import WriteError, atomic_write_text
from fer_core.training.loop import TrainConfig, train
from fer_core.training.runs import Run, read_history
from tests.conftest import synthetic_rows, write_csv

pytestmark = pytest.mark.slow  # training runs on a full disk

DISK_FULL = "disk full while saving {}: free space and resume"


def tiny_config(runs: Path, name: str, **kw) -> TrainConfig:
    values = dict(
        architecture="mini_xception",
        epochs=2,
        batch_size=32,
        runs_dir=str(runs),
        run_name=name,
        rotation_degrees=5,
    )
    values.update(kw)
    return TrainConfig(**values)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def temporary_files(folder: Path) -> list[str]:
    """Leftovers of the atomic writer (``.<stem>.<random>.tmp<suffix>``) or of Keras."""
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name or p.name.startswith("tmp"))


def enospc(path) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


# ----------------------------------------------------------------------------- the writer


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary_file(
    tmp_path, monkeypatch
):
    import fer_core.storage as storage

    target = tmp_path / "history.csv"
    target.write_text("old\n")

    def full(fd):
        raise enospc(target)

    monkeypatch.setattr(storage.os, "fsync", full)
    with pytest.raises(OSError) as info:
        atomic_write_text(target, "new\n" * 1000)
    assert info.value.errno == errno.ENOSPC
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]


def test_write_failure_messages_name_the_file_and_the_cause():
    from fer_core.storage import write_failure_message

    assert write_failure_message("last.keras", enospc("x")) == DISK_FULL.format("last.keras")
    quota = OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
    assert write_failure_message("best.keras", quota) == DISK_FULL.format("best.keras")
    # A library that wraps the disk's error still gives the disk's reason.
    try:
        try:
            raise enospc("x")
        except OSError as exc:
            raise RuntimeError("Unable to synchronously write data") from exc
    except RuntimeError as wrapped:
        assert write_failure_message("swa.keras", wrapped) == DISK_FULL.format("swa.keras")
    denied = OSError(errno.EACCES, os.strerror(errno.EACCES), "/somewhere/.last.x.tmp.keras")
    message = write_failure_message("last.keras", denied)
    assert message == "could not save last.keras (Permission denied, EACCES): fix that and resume"
    error = WriteError("history.csv", enospc("x"), resume="runs/r1")
    assert str(error) == DISK_FULL.format("history.csv") + " (fer train --run runs/r1)"
    assert "\n" not in str(error)


# ----------------------------------------------------------------------------- training


@pytest.mark.timeout(600)
@pytest.mark.parametrize("failing", ["checkpoint", "history.csv"])
def test_disk_full_while_training_fails_the_run_which_then_resumes(tmp_path, monkeypatch, failing):
    """ENOSPC injected into the atomic writer in epoch 2: at the first checkpoint written
    (last.keras), or at history.csv (after last.keras, before best.keras)."""
    import fer_core.models.architectures as architectures
    import fer_core.storage as storage

    data = load_fer2013(write_csv(tmp_path / "d.csv", synthetic_rows(8)))
    config = tiny_config(tmp_path / "runs", "full")
    run = Run(tmp_path / "runs" / "full")
    real_atomic_path = storage.atomic_path
    armed, failed, kept = [False], [], {}

    def after_epoch(row):
        if int(row["epoch"]) == 1:
            kept.update(
                {
                    name: digest(run.file(name))
                    for name in ("best.keras", "last.keras", "history.csv")
                }
            )
            armed[0] = True

    @contextlib.contextmanager
    def full_disk(path):
        with real_atomic_path(path) as tmp:
            yield tmp  # the caller writes the temporary file, then the disk is "full"
            name = Path(path).name
            if (
                armed[0]
                and not failed
                and (name == failing or (failing == "checkpoint" and name.endswith(".keras")))
            ):
                failed.append((name, Path(tmp)))
                assert Path(tmp).stat().st_size > 0  # a partly written file to clean up
                raise enospc(tmp)

    # The atomic writer, where it is defined and where checkpoints are saved through it.
    for module in (storage, architectures):
        monkeypatch.setattr(module, "atomic_path", full_disk)
    with pytest.raises(WriteError) as info:
        train(config, data, on_epoch=after_epoch)
    ((name, tmp),) = failed
    message = str(info.value)
    assert message == f"{DISK_FULL.format(name)} (fer train --run {run.path})"
    assert "\n" not in message
    assert not tmp.exists() and temporary_files(run.path) == []
    state = run.state()
    assert state["status"] == "failed" and state["reason"] == DISK_FULL.format(name)
    assert state["epochs_done"] == 1 and "pid" not in state
    assert [int(r["epoch"]) for r in read_history(run.path)] == [1]
    if failing == "checkpoint":
        # Nothing of epoch 2 reached the disk: the checkpoints and history are epoch 1's.
        assert {n: digest(run.file(n)) for n in kept} == kept
        assert state["best_epoch"] == 1
    else:
        assert digest(run.file("history.csv")) == kept["history.csv"]
        # best.keras is written after the history row (issue 34 item 7: it used to be
        # written first, and state.json then said best epoch 2 of 1 done)
        assert state["best_epoch"] == 1
        assert digest(run.file("best.keras")) == kept["best.keras"]
    assert state["best_epoch"] <= state["epochs_done"]
    load_keras_model(run.best_model)
    status = run_status(run.path)
    assert status.phase == "failed" and status.reason == DISK_FULL.format(name)
    assert DISK_FULL.format(name) in status.log

    # Space again: the run resumes from its last full epoch and finishes.
    for module in (storage, architectures):
        monkeypatch.setattr(module, "atomic_path", real_atomic_path)
    train(config, data)
    assert [int(r["epoch"]) for r in read_history(run.path)] == [1, 2]
    state = run.state()
    assert state["status"] == "finished" and state["epochs_done"] == 2
    assert "reason" not in state
    assert run_status(run.path).phase == "finished"
    load_keras_model(run.best_model)
    assert temporary_files(run.path) == []


def test_a_run_that_failed_on_a_write_shows_failed_and_why(tmp_path):
    import json
    import time

    from tests.service.test_jobs import dead_pid, fake_run

    folder = fake_run(
        tmp_path,
        "full",
        status="running",
        epochs_done=1,
        epochs=3,
        job_pid=dead_pid(),
        job_started=time.time() - 60,
    )
    state = json.loads((folder / "state.json").read_text())
    state.update(status="failed", reason=DISK_FULL.format("last.keras"))
    (folder / "state.json").write_text(json.dumps(state))
    status = run_status(folder)
    assert status.phase == "failed" and status.reason == DISK_FULL.format("last.keras")
    assert status.log.endswith(DISK_FULL.format("last.keras"))
    assert status.epochs_done == 1  # the page offers Resume
    # The app's own job wrote the command line's error to train.log: not repeated.
    (folder / "train.log").write_text(
        f"epoch 1/3\nerror: {DISK_FULL.format('last.keras')} (fer train --run {folder})\n"
    )
    assert run_status(folder).log.count("disk full") == 1


def test_training_page_shows_a_failed_run_and_its_reason(tmp_path, monkeypatch):
    import json

    from tests.app.test_pages import assert_clean, fake_finished_run, listening_on, run_page, texts

    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv("FER_RUNS_DIR", str(runs))
    monkeypatch.delenv("FER_ADMIN_PASSWORD", raising=False)
    folder = fake_finished_run(runs, "full-disk")
    state = json.loads((folder / "state.json").read_text())
    state.update(status="failed", epochs_done=1, reason=DISK_FULL.format("last.keras"))
    (folder / "state.json").write_text(json.dumps(state))
    with listening_on("127.0.0.1"):
        at = run_page("app_pages/training.py")
        at.selectbox(key="run_choice").set_value("full-disk").run()
    assert_clean(at)
    assert "failed" in texts(at.markdown)
    assert "ended before finishing" in texts(at.error)
    assert DISK_FULL.format("last.keras") in texts(at.error)  # the banner says why
    assert DISK_FULL.format("last.keras") in texts(at.code)
    assert [b for b in at.button if b.label == "Resume"]


# ----------------------------------------------------------------------------- a real full disk


@contextlib.contextmanager
def small_tmpfs(folder: Path, size: str):
    """``folder`` as a tmpfs of ``size``; always unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip(
            "mounting a tmpfs needs root (os.geteuid() != 0): the real full-disk "
            "test runs only as root"
        )
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here, even as root (no CAP_SYS_ADMIN?): {mounted.stderr.strip()}"
        )
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def remount(folder: Path, size: str) -> None:
    subprocess.run(
        ["mount", "-o", f"remount,size={size}", str(folder)], check=True, capture_output=True
    )


def fill(folder: Path, leave: int) -> Path:
    """A file that takes all of ``folder``'s free space but ``leave`` bytes."""
    info = os.statvfs(folder)
    size = info.f_bavail * info.f_frsize - leave
    filler = folder / "filler"
    with open(filler, "wb") as handle:
        block = b"\0" * (1 << 20)
        while size > 0:
            size -= handle.write(block[: min(size, len(block))])
    return filler


@pytest.mark.timeout(900)
def test_a_real_full_disk_fails_the_run_with_one_line_and_it_resumes(tmp_path, capsys):
    """The runs folder is a tmpfs. Epoch 1 is trained and the run stopped; the file system is
    then filled but for 192 KiB, and ``fer train --run`` resumes it: epoch 2's checkpoint
    (best.keras 0.4 MB, last.keras 0.9 MB) cannot be written. The file system is remounted
    bigger and the same command finishes the run."""
    from fer_core.cli.main import main

    csv = write_csv(tmp_path / "d.csv", synthetic_rows(8))
    with small_tmpfs(tmp_path / "mnt", "16m") as mnt:
        config = tiny_config(mnt, "full", data_path=str(csv))
        run = Run(mnt / "full")
        train(config, load_fer2013(csv), should_stop=lambda: len(read_history(run.path)) >= 1)
        assert run.state()["epochs_done"] == 1
        kept = {
            name: digest(run.file(name)) for name in ("best.keras", "last.keras", "history.csv")
        }
        fill(mnt, leave=192 << 10)
        capsys.readouterr()
        assert main(["train", "--run", str(run.path)]) == 2
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "Traceback" not in err, err
        name = "best.keras" if "best.keras" in errors[0] else "last.keras"
        assert errors[0] == f"error: {DISK_FULL.format(name)} (fer train --run {run.path})"
        state = run.state()
        assert state["status"] == "failed" and state["reason"] == DISK_FULL.format(name)
        assert state["epochs_done"] == 1
        assert {n: digest(run.file(n)) for n in kept} == kept
        assert temporary_files(mnt) == []
        status = run_status(run.path)
        assert status.phase == "failed" and status.reason == DISK_FULL.format(name)

        remount(mnt, "64m")  # room again (the filler stays)
        assert main(["train", "--run", str(run.path)]) == 0
        assert [int(r["epoch"]) for r in read_history(run.path)] == [1, 2]
        state = run.state()
        assert state["status"] == "finished" and "reason" not in state
        load_keras_model(run.best_model)
        assert temporary_files(mnt) == []


# ----------------------------------------------------------------------------- uploads


class FakeUpload(io.BytesIO):
    def __init__(self, data: bytes, name: str):
        super().__init__(data)
        self.name = name
        self.size = len(data)


def test_saving_an_upload_on_a_full_disk_says_so(tmp_path, monkeypatch):
    from app_lib.uploads import session_files
    from app_lib.uploads.session_files import UploadError, save_upload

    def full(*args, **kwargs):
        raise enospc(tmp_path / ".incoming.x.tmp.csv")

    monkeypatch.setattr(session_files, "store_by_digest", full)
    with pytest.raises(UploadError) as info:
        save_upload(FakeUpload(b"x" * (3 * 2**20), "fer2013.csv"), tmp_path)
    message = str(info.value)
    assert "disk is full" in message and "3.0 MB" in message and "FER_UPLOAD_DIR" in message
    assert str(tmp_path) not in message  # no server path for a visitor

    def denied(*args, **kwargs):
        raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path))

    monkeypatch.setattr(session_files, "store_by_digest", denied)
    with pytest.raises(UploadError, match="could not be stored.*Permission denied"):
        save_upload(FakeUpload(b"x", "clip.mp4"), tmp_path)


def test_a_real_full_upload_folder_leaves_nothing_behind(tmp_path):
    from app_lib.uploads.session_files import UploadError, save_upload

    with small_tmpfs(tmp_path / "uploads", "1m") as folder:
        with pytest.raises(UploadError, match="disk is full"):
            save_upload(FakeUpload(os.urandom(2 * 2**20), "clip.mp4"), folder)
        assert list(folder.iterdir()) == []
        small = save_upload(FakeUpload(b"fits", "clip.mp4"), folder)  # room for a small one
        assert small.read_bytes() == b"fits"


def test_dataset_page_upload_on_a_full_disk_shows_a_message(tmp_path, monkeypatch):
    from app_lib.uploads import session_files
    from tests.app.test_pages import assert_clean, texts, write_fer_csv
    from tests.app.test_pages_security import end_apptest_session, page

    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("FER_DATA_DIRS", str(tmp_path / "data"))
    monkeypatch.setenv("FER_UPLOAD_DIR", str(tmp_path / "uploads"))
    monkeypatch.delenv("FER2013_PATH", raising=False)
    monkeypatch.delenv("FER_ADMIN_PASSWORD", raising=False)
    monkeypatch.setattr(session_files, "_server_folder_path", None)

    def full(*args, **kwargs):
        raise enospc("x")

    monkeypatch.setattr(session_files, "store_by_digest", full)
    csv = write_fer_csv(tmp_path / "mine.csv")
    end_apptest_session()
    try:
        at = page("app_pages/dataset.py")
        at.file_uploader(key="dataset_upload").set_value(
            [("fer2013.csv", csv.read_bytes(), "text/csv")]
        )
        at.run()
        assert_clean(at)
        assert "disk is full" in texts(at.error)
    finally:
        end_apptest_session()
