"""``fer people``, ``fer sessions`` and ``fer predict --save --person``, as a user runs them
(a real process, a real database file; PostgreSQL is covered by tests/records)."""

import json

import pytest

from fer_core.records import Records, Viewer
from tests.cli.test_cli import _run

ADMIN = Viewer("test", admin=True)


def _fer(db, *args):
    result = _run(*args, "--db", db)
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


def test_people_are_added_listed_renamed_and_deleted(db):
    assert _fer(db, "people", "add", "Ann", "--note", "room 4").returncode == 0
    escaped = _fer(db, "people", "add", "Evil\x1b[31mName")
    assert escaped.returncode == 2 and "control characters" in escaped.stderr
    listed = _fer(db, "people", "list")
    assert "#1" in listed.stdout and "Ann" in listed.stdout and "room 4" in listed.stdout
    assert _fer(db, "people", "rename", "Ann", "Ann Lee").returncode == 0
    unknown = _fer(db, "people", "rename", "Nobody", "x")
    assert unknown.returncode == 2 and "fer people add" in unknown.stderr
    deleted = _fer(db, "people", "delete", "#1")
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

    assert "1 result row" in _fer(db, "sessions", "delete", "2").stdout
    assert "1 session" in _fer(db, "sessions", "list", "--person", "Ann").stdout


def test_predict_save_refuses_an_unknown_person_before_any_work(db, tmp_path, astronaut):
    from PIL import Image

    Image.fromarray(astronaut).save(tmp_path / "photo.png")
    result = _fer(db, "predict", str(tmp_path / "photo.png"), "--save", "--person", "Zed")
    assert result.returncode == 2 and "add them first" in result.stderr
    assert "files:" not in result.stdout
    alone = _run("predict", str(tmp_path / "photo.png"), "--person", "Zed")
    assert alone.returncode == 2 and "add --save" in alone.stderr
