"""Output that a file name cannot forge: the ``fer`` command shows control characters in
names escaped (one line per input, no escape sequence reaches the terminal), and every CSV
the project writes neutralises text cells that a spreadsheet would run as formulas."""

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fer_core.safe_text import csv_safe_cell, csv_safe_frame, terminal_safe

NEWLINE = "new\nline.png"
RED = "red\x1b[31m.png"
TITLE = "title\x1b]0;title\x07.png"
FORMULA = '=HYPERLINK("http://x","y").png'  # a file x","y").png in a folder =HYPERLINK("http:
FORMULA_ROW = str(Path(FORMULA))  # as predict names it: '=HYPERLINK("http:/x","y").png'
CARRIAGE = "carriage\rreturn.png"
MISSING = "missing\x1b[2J\u2028.png"


def _run(*args, cwd, timeout=600):
    """``fer`` with its output as it reaches a terminal: bytes, newlines untranslated."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "fer_core", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=timeout,
    )
    result.stdout = result.stdout.decode("utf-8", "surrogateescape")
    result.stderr = result.stderr.decode("utf-8", "surrogateescape")
    return result


def test_terminal_safe_escapes_controls_like_repr_and_leaves_text_alone():
    assert terminal_safe("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert terminal_safe(RED) == "red\\x1b[31m.png"
    assert terminal_safe(TITLE) == "title\\x1b]0;title\\x07.png"
    assert terminal_safe("a\x85b\x9bc\x7f") == "a\\x85b\\x9bc\\x7f"  # C1 controls and DEL
    assert terminal_safe("a\u2028b\u2029c") == "a\\u2028b\\u2029c"  # line/paragraph separators
    assert terminal_safe("evil\u202egnp.exe") == "evil\\u202egnp.exe"  # a bidi override
    assert terminal_safe("bad\udcff.png") == "bad\\udcff.png"  # a name that is not UTF-8
    for plain in ("photo 1.png", "été 日本 😀.jpg", "back\\slash", FORMULA):
        assert terminal_safe(plain) == plain
    assert terminal_safe(terminal_safe(TITLE)) == terminal_safe(TITLE)  # escaping twice is once


def test_csv_cells_that_look_like_formulas_are_neutralised_numbers_are_not():
    for text in ("=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx", FORMULA):
        assert csv_safe_cell(text) == "'" + text
    for value in ("photo.png", "", None, -0.5, 3, True, "été 日本.png", "a\nb", "a\tb"):
        assert csv_safe_cell(value) == value
    assert csv_safe_cell(RED) == "red\\x1b[31m.png"  # no raw escape sequence in a CSV
    assert csv_safe_cell("=\x1b[2J") == "'=\\x1b[2J"
    frame = pd.DataFrame(
        {
            "file": pd.array([FORMULA, "-x.png", "ok.png", None], "string"),
            "happy": [-0.5, 0.25, -1e-3, float("nan")],
            "x": pd.array([-3, 4, None, 1], "Int64"),
            "mixed": ["@home", -2.5, None, "fine"],
        }
    )
    safe = csv_safe_frame(frame)
    assert list(safe["file"].fillna("<NA>")) == ["'" + FORMULA, "'-x.png", "ok.png", "<NA>"]
    assert list(safe["mixed"]) == ["'@home", -2.5, None, "fine"]
    assert list(safe.dtypes) == list(frame.dtypes)
    pd.testing.assert_series_equal(safe["happy"], frame["happy"])
    pd.testing.assert_series_equal(safe["x"], frame["x"])
    assert frame["file"][0] == FORMULA  # the caller's frame is not changed
    rows = list(csv.reader(io.StringIO(safe.to_csv(index=False))))
    assert rows[1][:3] == ["'" + FORMULA, "-0.5", "-3"]  # negative numbers stay numbers


def test_a_line_break_in_a_csv_cell_cannot_end_its_row():
    """With ``\n`` line ends pandas wrote a lone ``\r`` unquoted: Excel and many readers
    take it for the end of the row, so a file name could forge rows."""
    from fer_core.safe_text import to_safe_csv

    frame = pd.DataFrame({"file": ["a\rb.png", "c\nd.png", "e\r\n=1+1"], "happy": [0.5, -1, 2]})
    text = to_safe_csv(frame)
    assert text == ('file,happy\r\n"a\rb.png",0.5\r\n"c\nd.png",-1.0\r\n"e\r\n=1+1",2.0\r\n')
    assert pd.read_csv(io.StringIO(text))["file"].tolist() == frame["file"].tolist()


def test_the_apps_shared_csv_writer_neutralises_file_names():
    from fer_core.recognition.results import (
        PHOTO_COLUMNS,
        frame_to_csv_bytes,
        rows_to_csv_bytes,
        typed_frame,
    )

    rows = [
        {"file": FORMULA, "faces": 1, "face": 1, "x": -2, "label": "happy", "happy": -0.5},
        {"file": "+cmd.png", "faces": 0},
    ]
    table = pd.read_csv(io.BytesIO(rows_to_csv_bytes(rows, PHOTO_COLUMNS)))
    assert list(table["file"]) == ["'" + FORMULA, "'+cmd.png"]
    assert table["happy"][0] == -0.5 and table["x"][0] == -2  # still numbers
    assert frame_to_csv_bytes(typed_frame(rows, PHOTO_COLUMNS)) == rows_to_csv_bytes(
        rows, PHOTO_COLUMNS
    )


@pytest.fixture
def forged_names(tmp_path, astronaut):
    """The astronaut photo under names that try to forge output; cwd-relative paths."""
    from PIL import Image

    folder = tmp_path / "in"
    folder.mkdir()
    for name in (NEWLINE, CARRIAGE, RED, TITLE, FORMULA):
        (folder / name).parent.mkdir(exist_ok=True)
        Image.fromarray(astronaut).save(folder / name, format="PNG")
    (folder / "broken\x1b[8m.jpg").write_bytes(b"\xff\xd8\xff garbage")
    return folder


def _check_terminal_text(text: str, progress_line: bool = False) -> None:
    """No control character but the line ends (and, on stderr, the progress line's own
    carriage returns), no line or paragraph separator, no bidi control."""
    import unicodedata

    allowed = {"\n", "\r"} if progress_line else {"\n"}
    bad = {
        char
        for char in text
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs") and char not in allowed
    }
    assert not bad, (bad, text)


@pytest.mark.slow  # seconds of real processes: make test runs it, the quick loop does not
@pytest.mark.timeout(600)
def test_predict_shows_forged_names_escaped_and_writes_a_safe_csv(forged_names):
    names = [NEWLINE, CARRIAGE, RED, TITLE, FORMULA, "broken\x1b[8m.jpg", MISSING]
    shown = _run("predict", *names, cwd=forged_names)
    assert shown.returncode == 1, shown.stderr  # the broken and the missing file failed
    _check_terminal_text(shown.stdout)
    _check_terminal_text(shown.stderr, progress_line=True)
    lines = shown.stdout.split("\n")
    for name in (NEWLINE, CARRIAGE, RED, TITLE, FORMULA_ROW):
        # Each input is on exactly one line of its own, its controls shown escaped.
        assert sum(line.startswith(terminal_safe(name) + ":") for line in lines) == 1, lines
    assert "new\\nline.png: face at" in shown.stdout
    assert "carriage\\rreturn.png: face at" in shown.stdout
    assert "red\\x1b[31m.png: face at" in shown.stdout
    assert "title\\x1b]0;title\\x07.png: face at" in shown.stdout
    assert "  failed: missing\\x1b[2J\\u2028.png: does not exist" in lines
    assert any(line.startswith("  failed: broken\\x1b[8m.jpg: ") for line in lines)
    assert "files: 7, processed: 5, faces: 5, failed: 2" in shown.stdout
    # The progress line (stderr) names each file escaped, too: its only carriage returns
    # are its own, one per file found.
    assert shown.stderr.count("\r") == 6
    assert "red\\x1b[31m.png" in shown.stderr and "new\\nline.png" in shown.stderr

    out = forged_names / "results.csv"
    written = _run("predict", *names[:5], "--out", "results.csv", cwd=forged_names)
    assert written.returncode == 0, written.stderr
    _check_terminal_text(written.stdout)
    _check_terminal_text(written.stderr, progress_line=True)
    with open(out, newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    # Line breaks stay (quoted); escape sequences are written escaped, never raw (issue 34
    # item 7: a `cat results.csv` ran them)
    assert [row["file"] for row in table] == [
        NEWLINE,
        CARRIAGE,
        terminal_safe(RED),
        terminal_safe(TITLE),
        "'" + FORMULA_ROW,
    ]
    assert b"\x1b" not in out.read_bytes() and b"\x07" not in out.read_bytes()
    assert all(float(row["happy"]) > 0.5 for row in table)  # numbers are numbers
    json_out = _run("predict", FORMULA, "--out", "results.json", cwd=forged_names)
    assert json_out.returncode == 0, json_out.stderr
    assert pd.read_json(forged_names / "results.json")["file"].tolist() == [FORMULA_ROW]


def test_error_messages_show_forged_names_escaped(tmp_path):
    """Errors that echo a path: a folder with no photo, a bad --out."""
    folder = tmp_path / "holiday\x1b]0;pwned\x07\n"
    folder.mkdir()
    result = _run("predict", folder.name, cwd=tmp_path)
    assert result.returncode == 2
    _check_terminal_text(result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "holiday\\x1b]0;pwned\\x07\\n holds no image" in errors[0]
    (tmp_path / "real.csv").write_text("x\n")
    (tmp_path / "link\x1b[31m.csv").symlink_to(tmp_path / "real.csv")
    result = _run("predict", "a.png", "--out", "link\x1b[31m.csv", cwd=tmp_path)
    assert result.returncode == 2 and "link\\x1b[31m.csv is a symbolic link" in result.stderr
    _check_terminal_text(result.stderr)
