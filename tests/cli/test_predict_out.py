"""python -m fer_core predict --out: checked before any work, written through a unique
temporary file that never stays behind, never through a symbolic link; failures counted."""

import errno
import os
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import ROOT


def _run(*args, timeout=600):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "fer_core", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def photo(tmp_path, astronaut):
    from PIL import Image

    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    return path


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.slow  # seconds of real processes: make test runs it, the quick loop does not
def test_bad_out_is_refused_before_any_work(tmp_path, photo):
    folder_out = tmp_path / "results.csv"
    folder_out.mkdir()
    target = tmp_path / "precious.csv"
    target.write_text("keep me\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "nowhere.json")
    unwritable = "/proc/fer_results.csv" if os.geteuid() == 0 else None
    if unwritable is None:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        unwritable = str(locked / "results.csv")
    cases = {
        str(folder_out): "is a folder",
        str(link): "symbolic link",
        str(dangling): "symbolic link",
        unwritable: "Cannot write in",
    }
    for out, message in cases.items():
        result = _run("predict", str(photo), "--out", out)
        assert result.returncode == 2, (out, result.stdout, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
        assert "files:" not in result.stdout and "[1/1]" not in result.stderr  # no work done
    assert target.read_text() == "keep me\n" and link.is_symlink()
    assert not leftovers(tmp_path)


def test_any_failed_input_makes_the_exit_status_non_zero(tmp_path, photo):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    out = tmp_path / "out" / "results.csv"
    out.parent.mkdir()
    out.write_text("old results\n")
    result = _run(
        "predict",
        str(photo),
        str(tmp_path / "broken.jpg"),
        str(tmp_path / "missing.png"),
        "--out",
        str(out),
    )
    assert result.returncode == 1, result.stderr
    assert "2 of 3 inputs failed" in result.stderr
    assert "files: 3, processed: 1, faces: 1, failed: 2" in result.stdout
    table = pd.read_csv(out)  # the results of the inputs that worked were still written
    assert list(table["label"]) == ["happy"]
    assert (out.stat().st_mode & 0o777) == 0o666 & ~_umask()  # not mkstemp's 0600
    assert not leftovers(out.parent)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_full_disk_leaves_no_temporary_file_and_the_old_results(tmp_path, monkeypatch, photo):
    from fer_core.cli.main import main

    out = tmp_path / "results.csv"
    out.write_text("old results\n")

    def to_csv_on_a_full_disk(self, handle=None, *args, **kwargs):
        if isinstance(handle, (str, os.PathLike)):
            with open(handle, "wb") as opened:  # (how the code before this fix wrote)
                opened.write(b"emotion,half a row")
        else:
            handle.write(b"emotion,half a row")  # some bytes land, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pd.DataFrame, "to_csv", to_csv_on_a_full_disk)
    status = main(["predict", str(photo), "--out", str(out)])
    assert status == 2
    assert out.read_text() == "old results\n"
    assert not leftovers(tmp_path), leftovers(tmp_path)


def test_write_table_never_replaces_a_symlink_made_during_the_run(tmp_path):
    from fer_core import FerError
    from fer_core.recognition.predict import write_table

    target = tmp_path / "elsewhere.csv"
    target.write_text("not yours\n")
    out = tmp_path / "results.csv"
    out.symlink_to(target)
    with pytest.raises(FerError, match="symbolic link"):
        write_table([{"file": "a", "faces": 0}], out, ["file", "faces"])
    assert target.read_text() == "not yours\n" and out.is_symlink()
    assert not leftovers(tmp_path)
    out.unlink()
    write_table([{"file": "a", "faces": 0}], out, ["file", "faces"])
    assert pd.read_csv(out).to_dict("records") == [{"file": "a", "faces": 0}]
