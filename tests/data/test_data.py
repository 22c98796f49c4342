import gzip

import numpy as np
import pytest

from fer_core import DatasetError, load_fer2013
from fer_core.data.fer2013 import stratified_subset
from tests.conftest import synthetic_rows, write_csv


def test_reads_csv_and_gz(tmp_path):
    rows = synthetic_rows(n_per_class=3)
    for compress in (False, True):
        path = write_csv(
            tmp_path / f"f{compress}.csv{'.gz' if compress else ''}", rows, compress=compress
        )
        data = load_fer2013(path)
        assert data.images.shape == (len(rows), 48, 48) and data.images.dtype == np.uint8
        assert list(data.labels[:3]) == [0, 0, 0]
        assert set(data.usage) == {"Training", "PublicTest", "PrivateTest"}
        x, y = data.split("PublicTest")
        assert len(y) == 7 * 3


def test_progress_is_reported(synthetic_csv):
    calls = []
    load_fer2013(synthetic_csv, progress=lambda f, m: calls.append(f))
    assert calls and calls[-1] == 1.0


def _bad(rows, index, row):
    rows = list(rows)
    rows[index] = row
    return rows


@pytest.mark.parametrize(
    "row, message",
    [
        ((0, " ".join(["1"] * 2303), "Training"), "2303 pixel values"),
        ((0, " ".join(["1"] * 2303 + ["x"]), "Training"), "not an integer"),
        ((0, " ".join(["1"] * 2303 + ["300"]), "Training"), "0-255"),
        ((7, " ".join(["1"] * 2304), "Training"), "outside 0-6"),
        ((-1, " ".join(["1"] * 2304), "Training"), "outside 0-6"),
        ((0, " ".join(["1"] * 2304), "Validation"), "Usage"),
    ],
)
def test_malformed_row_reported_with_row_number(tmp_path, row, message):
    rows = _bad(synthetic_rows(n_per_class=2), 5, row)
    path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(DatasetError, match=message) as info:
        load_fer2013(path)
    assert "row 6" in str(info.value)
    # Skipping is a choice, and it is counted.
    data = load_fer2013(path, skip_bad=True)
    assert len(data) == len(rows) - 1 and len(data.skipped) == 1
    assert "row 6" in data.skipped[0]


def test_wrong_header_empty_and_fake_gzip(tmp_path):
    with pytest.raises(DatasetError, match="header"):
        load_fer2013(write_csv(tmp_path / "h.csv", synthetic_rows(1), header="a,b,c"))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DatasetError, match="empty"):
        load_fer2013(tmp_path / "empty.csv")
    (tmp_path / "fake.csv.gz").write_text("emotion,pixels,Usage\n")
    with pytest.raises(DatasetError, match="not a gzip"):
        load_fer2013(tmp_path / "fake.csv.gz")
    truncated = tmp_path / "trunc.csv.gz"
    with gzip.open(truncated, "wt") as handle:
        handle.write(
            "emotion,pixels,Usage\n" + "".join(f"{a},{b},{c}\n" for a, b, c in synthetic_rows(2))
        )
    truncated.write_bytes(truncated.read_bytes()[:-200])
    with pytest.raises(DatasetError, match="corrupt or truncated"):
        load_fer2013(truncated)


def test_missing_path_and_unset_env(tmp_path, monkeypatch):
    with pytest.raises(DatasetError, match="does not exist"):
        load_fer2013(tmp_path / "nope.csv")
    monkeypatch.delenv("FER2013_PATH", raising=False)
    with pytest.raises(DatasetError, match="FER2013_PATH"):
        load_fer2013()


def _make_folder_layout(root, extra=None):
    import cv2

    for split in ("train", "test"):
        for label, emotion in enumerate(["angry", "happy"]):
            folder = root / split / emotion
            folder.mkdir(parents=True)
            for i in range(3):
                cv2.imwrite(str(folder / f"{i}.jpg"), np.full((48, 48), 40 * label, np.uint8))
    if extra:
        extra(root)


def test_folder_layout(tmp_path):
    _make_folder_layout(tmp_path)
    data = load_fer2013(tmp_path)
    assert len(data) == 12
    assert set(data.usage) == {"Training", "PrivateTest"}
    assert set(data.labels) == {0, 3}


@pytest.mark.parametrize(
    "make_bad, message",
    [
        (lambda r: (r / "train" / "contempt").mkdir(), "unknown class folder"),
        (lambda r: (r / "train" / "happy" / "notes.txt").write_text("hi"), "not an image"),
        (lambda r: (r / "train" / "happy" / "zero.jpg").write_bytes(b""), "empty or corrupt"),
    ],
)
def test_folder_layout_problems(tmp_path, make_bad, message):
    _make_folder_layout(tmp_path, make_bad)
    with pytest.raises(DatasetError, match=message):
        load_fer2013(tmp_path)
    data = load_fer2013(tmp_path, skip_bad=True)
    assert len(data.skipped) == 1 and len(data) == 12


def test_stratified_subset_keeps_every_class():
    labels = np.array([0] * 100 + [1] * 5 + [2] * 50)
    idx = stratified_subset(labels, 30, seed=1)
    assert set(labels[idx]) == {0, 1, 2}
    assert abs(len(idx) - 30) <= 2


def test_real_fer2013_counts(fer2013):
    """The full CSV: 35,887 rows with the published per-split class counts."""
    assert fer2013.images.shape == (35887, 48, 48)
    assert not fer2013.skipped
    expected = {
        "Training": [3995, 436, 4097, 7215, 4830, 3171, 4965],
        "PublicTest": [467, 56, 496, 895, 653, 415, 607],
        "PrivateTest": [491, 55, 528, 879, 594, 416, 626],
    }
    for usage, counts in expected.items():
        _, labels = fer2013.split(usage)
        assert np.bincount(labels, minlength=7).tolist() == counts
    # Row 6458 is one of the all-black images.
    assert fer2013.images[6458].max() == 0
