"""fer_core.data.paths and the bounded reads of fer_core.data.fer2013: what a path typed into a shared app
may read, and that nothing read from it can exhaust memory, block, or leak its content."""

import os
import threading
import time

import numpy as np
import psutil
import pytest

from fer_core import DatasetError, load_fer2013
from fer_core.data.paths import (
    PROJECT_DATA_DIR,
    DataPathError,
    allowed_data_roots,
    resolve_user_path,
)
from tests.conftest import synthetic_rows, write_csv

SECRET = "FER_TEST_SECRET_TOKEN=hunter2-do-not-echo"


def call_with_timeout(function, seconds=10.0):
    """Run ``function`` in a thread; fail (not hang) if it blocks, e.g. on a FIFO."""
    outcome = {}

    def target():
        try:
            outcome["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"blocked for more than {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@pytest.fixture
def fifo_unblocker():
    """FIFOs made by a test; each is opened for writing at the end so that a reader stuck on
    it (the bug this guards against) wakes up instead of keeping the process alive."""
    made = []
    yield made
    for path in made:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass


@pytest.fixture
def roots(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("FER_DATA_DIRS", str(data))
    monkeypatch.delenv("FER2013_PATH", raising=False)
    return allowed_data_roots()


def test_default_roots_are_the_project_data_folder_and_fer2013_path(tmp_path):
    csv = tmp_path / "fer2013.csv"
    assert allowed_data_roots({}) == [PROJECT_DATA_DIR]
    assert allowed_data_roots({"FER2013_PATH": str(csv)}) == [PROJECT_DATA_DIR, csv]
    # "/" is never a root, even when listed; empty entries are ignored.
    listed = allowed_data_roots({"FER_DATA_DIRS": os.pathsep.join(["/", "", str(tmp_path)])})
    assert listed == [tmp_path.resolve()]


def test_outside_paths_are_refused_without_content_or_existence_hint(tmp_path, roots):
    outside = tmp_path / "outside"
    outside.mkdir()
    env_file = outside / ".env"
    env_file.write_text(SECRET + "\n")
    messages = {}
    for label, path in {
        "passwd": "/etc/passwd",
        "env": str(env_file),
        "missing": str(outside / ".env-missing"),
        "dotdot": str(roots[0] / ".." / "outside" / ".env"),
    }.items():
        with pytest.raises(DataPathError) as info:
            load_fer2013(path, within=roots)
        messages[label] = str(info.value).replace(path, "<PATH>")
    for message in messages.values():
        assert "hunter2" not in message and "root:" not in message
        assert "exist" not in message
    # An existing and a missing file get exactly the same answer.
    assert messages["env"] == messages["missing"] == messages["passwd"] == messages["dotdot"]
    # A symlink inside an allowed folder that points outside is refused the same way.
    link = roots[0] / "fer2013.csv"
    link.symlink_to(env_file)
    with pytest.raises(DataPathError, match="not inside a data folder"):
        load_fer2013(link, within=roots)


def test_wrong_files_are_never_quoted(tmp_path):
    """Even where a file may be read (the CLI reads any path), its content is not echoed."""
    env_file = tmp_path / ".env"
    env_file.write_text(SECRET + "\n1,2,3\n")
    with pytest.raises(DatasetError) as info:
        load_fer2013(env_file)
    assert "hunter2" not in str(info.value) and "header" in str(info.value)
    gz = tmp_path / "secret.csv.gz"
    gz.write_bytes(b"\x1f\x8b" + SECRET.encode())
    with pytest.raises(DatasetError) as info:
        load_fer2013(gz)
    assert "hunter2" not in str(info.value) and "FER_TEST" not in str(info.value)
    # Field values of bad rows are not quoted either (skip_bad lists these messages).
    rows = synthetic_rows(n_per_class=1)
    rows[3] = ("hunter2", rows[3][1], "Training")
    rows[4] = (0, rows[4][1], "hunter2")
    rows[5] = (0, " ".join(["1"] * 2303 + ["hunter2"]), "Training")
    data = load_fer2013(write_csv(tmp_path / "rows.csv", rows), skip_bad=True)
    assert len(data.skipped) == 3
    assert not any("hunter2" in m for m in data.skipped), data.skipped


def test_huge_newline_free_file_is_refused_fast_in_bounded_memory(roots):
    big = roots[0] / "fer2013.csv"
    with open(big, "wb") as handle:
        handle.truncate(256 * 2**20)  # 256 MB of zero bytes, no newline (sparse on disk)
    process = psutil.Process()
    peak = [process.memory_info().rss]
    start_rss = peak[0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    try:
        with pytest.raises(DatasetError) as info:
            load_fer2013(str(big), within=roots, skip_bad=True)
    finally:
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
    peak[0] = max(peak[0], process.memory_info().rss)
    assert "header" in str(info.value)
    assert elapsed < 1.0, f"took {elapsed:.2f} s"
    assert peak[0] - start_rss < 50 * 2**20, f"RSS grew {(peak[0] - start_rss) / 2**20:.0f} MB"
    # The same with a valid header and one endless line after it.
    with open(big, "r+b") as handle:
        handle.write(b"emotion,pixels,Usage\n0,")
    started = time.perf_counter()
    with pytest.raises(DatasetError, match="longer than"):
        load_fer2013(str(big), within=roots, skip_bad=True)
    assert time.perf_counter() - started < 1.0


def test_fifo_is_refused_as_a_path_and_inside_a_folder_dataset(roots, fifo_unblocker):
    import cv2

    fifo = roots[0] / "fer2013.csv"
    os.mkfifo(fifo)
    fifo_unblocker.append(fifo)
    with pytest.raises(DataPathError, match="FIFO"):
        call_with_timeout(lambda: load_fer2013(str(fifo), within=roots))
    with pytest.raises(DataPathError, match="FIFO"):
        call_with_timeout(lambda: load_fer2013(str(fifo)))  # the CLI's way, too
    fifo.unlink()

    folder = roots[0] / "kaggle"
    for split in ("train", "test"):
        (folder / split / "happy").mkdir(parents=True)
        for i in range(2):
            cv2.imwrite(
                str(folder / split / "happy" / f"{i}.jpg"), np.full((48, 48), 100, np.uint8)
            )
    pipe = folder / "train" / "happy" / "pipe.jpg"
    os.mkfifo(pipe)
    fifo_unblocker.append(pipe)
    with pytest.raises(DatasetError, match="FIFO"):
        call_with_timeout(lambda: load_fer2013(str(folder), within=roots))
    data = call_with_timeout(lambda: load_fer2013(str(folder), within=roots, skip_bad=True))
    assert len(data) == 4 and len(data.skipped) == 1 and "FIFO" in data.skipped[0]


def test_resolve_user_path_accepts_inside_and_extra_roots(tmp_path, roots):
    inside = roots[0] / "sub" / "fer2013.csv"
    assert resolve_user_path(str(inside), roots) == inside
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    with pytest.raises(DataPathError):
        resolve_user_path(str(uploads / "a.csv"), roots)
    assert resolve_user_path(str(uploads / "a.csv"), roots + [uploads]) == uploads / "a.csv"
    with pytest.raises(DataPathError, match="Give the path"):
        resolve_user_path("  ", roots)


def test_inside_allowed_folder_real_data_still_loads(tmp_path, monkeypatch):
    rows = synthetic_rows(n_per_class=2)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_csv(data_dir / "fer2013.csv.gz", rows, compress=True)
    monkeypatch.setenv("FER_DATA_DIRS", str(data_dir))
    data = load_fer2013(str(data_dir), within=allowed_data_roots())
    assert len(data) == len(rows)


def test_real_fer2013_through_the_allowed_folders(fer2013_path, monkeypatch):
    monkeypatch.delenv("FER_DATA_DIRS", raising=False)
    monkeypatch.setenv("FER2013_PATH", str(fer2013_path))
    data = load_fer2013(str(fer2013_path), within=allowed_data_roots())
    assert len(data) == 35887 and not data.skipped


def test_messages_name_files_as_a_visitor_knows_them_never_by_server_path(
    tmp_path, roots, monkeypatch, fifo_unblocker
):
    """Item 6: refusals of files inside the data folder or a session's uploads said
    "/srv/.../data/sub/fer2013.csv is a FIFO" (or the upload folder's absolute path): they
    now say "sub/fer2013.csv in the data folder", "<file> in your uploads"."""
    from fer_core.data.paths import require_regular_file, shown_path

    fifo = roots[0] / "sub" / "fer2013.csv"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    fifo_unblocker.append(fifo)
    with pytest.raises(DataPathError) as info:
        call_with_timeout(lambda: load_fer2013(str(fifo), within=roots))
    message = str(info.value)
    assert "sub/fer2013.csv in the data folder is a FIFO" in message
    assert str(tmp_path) not in message and str(roots[0]) not in message

    uploads = tmp_path / "uploads"
    monkeypatch.setenv("FER_UPLOAD_DIR", str(uploads))
    import app_lib.training.data_source  # noqa: F401 - registers the upload folder as "your uploads"

    session = uploads / "123-456" / "0123abcd"
    session.mkdir(parents=True)
    upload_fifo = session / "5f2c9e0d1a2b3c4d.csv"
    os.mkfifo(upload_fifo)
    fifo_unblocker.append(upload_fifo)
    with pytest.raises(DataPathError) as info:
        call_with_timeout(lambda: load_fer2013(str(upload_fifo), within=roots + [session]))
    message = str(info.value)
    assert message.startswith("5f2c9e0d1a2b3c4d.csv in your uploads is a FIFO"), message
    assert str(tmp_path) not in message and "0123abcd" not in message
    folder = session / "fer2013.csv"
    upload_fifo.unlink()
    folder.mkdir()
    with pytest.raises(DataPathError) as info:
        require_regular_file(folder)
    assert str(info.value).startswith("fer2013.csv in your uploads is a folder")
    assert app_lib.training.data_source.shown(session / "x.csv") == "x.csv in your uploads"

    # Elsewhere: the name alone; a path typed as a relative one (the command line): as typed.
    assert shown_path("/srv/secret/place/fer2013.csv") == "fer2013.csv"
    assert shown_path("data/fer2013.csv") == "data/fer2013.csv"
