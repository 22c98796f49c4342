"""``fer people``, ``fer sessions`` and ``fer predict --save --person``, as a user runs them
(a real process, a real database file; PostgreSQL is covered by tests/records)."""

import json

import numpy as np
import pytest

from fer_core.records import Records, Viewer
from tests.cli.test_cli import _run

ADMIN = Viewer("test", admin=True)


def _fer(db, *args):
    result = _run(*args, "--db", db)  # stdin: no terminal
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def db(tmp_path):
    return f"sqlite:///{tmp_path / 'records.sqlite'}"


def _clip(path, astronaut, frames=12):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 512, 512, "yuv420p"
        for _ in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(astronaut, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.slow  # seconds of real processes: make test runs it, the quick loop does not
def test_people_are_added_listed_renamed_and_deleted(db):
    assert _fer(db, "people", "add", "Ann", "--note", "room 4").returncode == 0
    escaped = _fer(db, "people", "add", "Evil\x1b[31mName")
    assert escaped.returncode == 2 and "control characters" in escaped.stderr
    listed = _fer(db, "people", "list")
    assert "#1" in listed.stdout and "Ann" in listed.stdout and "room 4" in listed.stdout
    assert _fer(db, "people", "rename", "Ann", "Ann Lee").returncode == 0
    unknown = _fer(db, "people", "rename", "Nobody", "x")
    assert unknown.returncode == 2 and "fer people add" in unknown.stderr
    deleted = _fer(db, "people", "delete", "#1", "--yes")
    assert deleted.returncode == 0 and "deleted #1 Ann Lee: 1 person" in deleted.stdout
    assert "0 people" in _fer(db, "people", "list").stdout


@pytest.mark.slow
def test_predict_save_person_then_sessions_list_export_delete(db, tmp_path, astronaut):
    from PIL import Image

    assert _fer(db, "people", "add", "Ann").returncode == 0
    clip = _clip(tmp_path / "clip.mp4", astronaut)
    Image.fromarray(astronaut).save(tmp_path / "photo.png")
    result = _fer(
        db, "predict", str(clip), str(tmp_path / "photo.png"), "--save", "--person", "Ann"
    )
    assert result.returncode == 0, result.stderr
    assert "saved session #1: clip.mp4, 12 rows" in result.stdout
    assert "saved session #2: photo.png, 1 rows" in result.stdout

    listed = _fer(db, "sessions", "list")
    lines = [line for line in listed.stdout.splitlines() if line.startswith("#")]
    assert len(lines) == 2 and "rows: 12" in lines[1] and "person: Ann" in lines[1]
    assert "video" in lines[1] and "complete" in lines[1] and "clip.mp4" in lines[1]

    records = Records(db)
    rows = records.session_rows(1, ADMIN)
    assert set(rows["label"]) == {"happy"} and len(rows) == 12
    records.close()

    out = tmp_path / "session.csv"
    assert _fer(db, "sessions", "export", "1", "--out", str(out)).returncode == 0
    assert out.read_text().count("happy") >= 12
    person = tmp_path / "ann.json"
    assert _fer(db, "people", "export", "Ann", "--out", str(person)).returncode == 0
    data = json.loads(person.read_text())
    assert (
        data["person"]["name"] == "Ann" and len(data["rows"]) == 13 and len(data["sessions"]) == 2
    )

    assert "1 result row" in _fer(db, "sessions", "delete", "2", "--yes").stdout
    assert "1 session" in _fer(db, "sessions", "list", "--person", "Ann").stdout


def test_predict_save_refuses_an_unknown_person_before_any_work(db, tmp_path, astronaut):
    from PIL import Image

    Image.fromarray(astronaut).save(tmp_path / "photo.png")
    result = _fer(db, "predict", str(tmp_path / "photo.png"), "--save", "--person", "Zed")
    assert result.returncode == 2 and "add them first" in result.stderr
    assert "files:" not in result.stdout
    alone = _run("predict", str(tmp_path / "photo.png"), "--person", "Zed")
    assert alone.returncode == 2 and "add --save" in alone.stderr


def _on_a_terminal(db, answer: str, *args):
    """``fer ARGS --db DB`` with a terminal as its input, answering ``answer``: (exit code,
    what it printed)."""
    import os
    import pty
    import subprocess
    import sys

    from tests.conftest import ROOT

    leader, follower = pty.openpty()
    try:
        os.write(leader, answer.encode() + b"\n")
        done = subprocess.run(
            [sys.executable, "-m", "fer_core", *args, "--db", db],
            cwd=ROOT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        os.close(follower)
        os.close(leader)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.slow  # seconds of real processes: make test runs it, the quick loop does not
def test_deleting_a_person_asks_first_and_scripts_say_yes(db):
    """Issue 33 item 8: ``fer people delete NAME`` deleted at once, while the page asks for a
    tick. On a terminal it says what goes and asks; without a terminal it deletes nothing
    unless given ``--yes`` (and ``--help`` says so). ``fer sessions delete`` likewise."""
    assert _fer(db, "people", "add", "Ann").returncode == 0
    records = Records(db)
    try:
        ann = records.person_by_name("Ann", ADMIN).id
        records.add_capture(ann, "happy", np.zeros((48, 48), np.uint8), ADMIN)
        refused = _fer(db, "people", "delete", "Ann")
        assert refused.returncode == 2 and "add --yes" in refused.stderr, refused.stderr
        assert "#1 Ann with 0 sessions (0 result rows) and 1 captured face" in refused.stderr
        code, said = _on_a_terminal(db, "n", "people", "delete", "Ann")
        assert code == 1 and "Delete? [y/N]" in said and "Nothing was deleted." in said, said
        assert [p.name for p in records.people(ADMIN)] == ["Ann"]
        code, said = _on_a_terminal(db, "y", "people", "delete", "Ann")
        assert code == 0 and "deleted #1 Ann: 1 person" in said, said
        assert records.people(ADMIN) == []
        helped = _run("people", "delete", "--help")
        assert "--yes" in helped.stdout and "asks on a terminal" in helped.stdout
        assert "--yes" in _run("sessions", "delete", "--help").stdout
        sessions_refused = _fer(db, "sessions", "delete", "1")
        assert sessions_refused.returncode == 2, sessions_refused.stderr
    finally:
        records.close()


def test_a_bad_database_url_is_one_clear_line_and_creates_nothing(tmp_path):
    """Issue 34 item 5: a file that is not a database gave a raw DatabaseError traceback,
    sqlite:////proc/x.sqlite a FileNotFoundError traceback, and a URL into a missing folder
    silently made the folders and an empty database."""
    junk = tmp_path / "notes.sqlite"
    junk.write_bytes(b"not a database, only text " * 200)
    missing = tmp_path / "no-such-folder" / "deeper" / "records.sqlite"
    cases = {
        f"sqlite:///{junk}": "file is not a database",
        "sqlite:////proc/fer-records.sqlite": "Cannot create the SQLite database",
        f"sqlite:///{missing}": "in a folder that does not exist",
    }
    for url, said in cases.items():
        result = _fer(url, "people", "list")  # no traceback: checked by _fer
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert lines[0].startswith("error: ") and said in lines[0], lines
    assert not (tmp_path / "no-such-folder").exists()
    assert junk.read_bytes().startswith(b"not a database")  # left as it was
