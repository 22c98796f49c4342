"""fer_core.data.explore: the dataset explorer's numbers, on generated data (and on the real
FER2013 when FER2013_PATH is set)."""

import numpy as np
import pytest

from fer_core import EMOTIONS
from fer_core.data.explore import class_counts, find_flaws, mean_faces, tile_images


def generated():
    """Ten distinct random images plus planted flaws, with their expected consequences."""
    rng = np.random.default_rng(42)
    images = list(rng.integers(1, 256, (10, 48, 48), dtype=np.uint8))
    labels = [0, 1, 2, 3, 4, 5, 6, 0, 1, 2]
    usage = ["Training"] * 6 + ["PublicTest"] * 2 + ["PrivateTest"] * 2
    # 10, 11: all black (Training, PublicTest): one group spanning two splits, same label.
    images += [np.zeros((48, 48), np.uint8)] * 2
    labels += [6, 6]
    usage += ["Training", "PublicTest"]
    # 12: a flat grey image (a placeholder, not all black).
    flat = np.full((48, 48), 128, np.uint8)
    flat[0, 0] = 129
    images.append(flat)
    labels.append(3)
    usage.append("Training")
    # 13: copy of 0 in Training, same label (duplicate within one split, no conflict).
    images.append(images[0].copy())
    labels.append(0)
    usage.append("Training")
    # 14: copy of 1 in PrivateTest with another label (leak and conflict).
    images.append(images[1].copy())
    labels.append(4)
    usage.append("PrivateTest")
    # 15, 16: copies of 2 (three rows), same split, conflicting labels.
    images += [images[2].copy(), images[2].copy()]
    labels += [2, 5]
    usage += ["Training", "Training"]
    rows = np.arange(len(images)) + 100  # the CSV's own row numbers
    return np.stack(images), np.array(labels), np.array(usage), rows


def test_find_flaws_on_generated_data():
    images, labels, usage, rows = generated()
    report = find_flaws(images, labels, usage, rows)
    assert report.summary() == {
        "all_black": 2,
        "flat": 1,
        "duplicate_groups": 4,
        "duplicate_rows": 9,
        "cross_split_groups": 2,
        "conflicting_groups": 2,
    }
    assert report.all_black.tolist() == [110, 111]
    assert report.flat.tolist() == [112]
    groups = {tuple(g["rows"]): g for _, g in report.groups.iterrows()}
    assert set(groups) == {(100, 113), (101, 114), (102, 115, 116), (110, 111)}
    assert groups[(101, 114)]["usages"] == ["Training", "PrivateTest"]
    assert groups[(101, 114)]["labels"] == ["disgust", "sad"]
    assert groups[(101, 114)]["spans_splits"] and groups[(101, 114)]["conflicting_labels"]
    assert not groups[(100, 113)]["spans_splits"] and not groups[(100, 113)]["conflicting_labels"]
    assert (
        groups[(102, 115, 116)]["conflicting_labels"]
        and not groups[(102, 115, 116)]["spans_splits"]
    )
    assert groups[(110, 111)]["all_black"] and groups[(110, 111)]["spans_splits"]
    flags = report.row_flags.set_index("row")
    assert set(flags.index) == {100, 101, 102, 110, 111, 112, 113, 114, 115, 116}
    assert flags.loc[114, "cross_split"] and flags.loc[114, "conflicting_label"]
    assert flags.loc[112, "flat"] and flags.loc[112, "duplicate_group"] == -1
    assert flags.loc[115, "position"] == 15


def test_find_flaws_clean_and_empty_data():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (20, 48, 48), dtype=np.uint8)
    labels = np.arange(20) % 7
    report = find_flaws(images, labels)  # no usage, no row numbers
    assert report.summary() == {
        "all_black": 0,
        "flat": 0,
        "duplicate_groups": 0,
        "duplicate_rows": 0,
        "cross_split_groups": 0,
        "conflicting_groups": 0,
    }
    assert report.row_flags.empty
    empty = find_flaws(np.zeros((0, 48, 48), np.uint8), np.zeros(0, int), np.zeros(0, str))
    assert empty.summary()["duplicate_groups"] == 0


def test_find_flaws_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        find_flaws(np.zeros((3, 48, 48), np.uint8), np.zeros(2, int))


def test_class_counts_mean_faces_and_tiles():
    images, labels, usage, _ = generated()
    counts = class_counts(labels, usage)
    assert list(counts.index) == ["Training", "PublicTest", "PrivateTest"]
    assert list(counts.columns) == list(EMOTIONS) + ["total"]
    assert counts["total"].sum() == len(labels)
    assert counts.loc["PrivateTest", "sad"] == 1
    faces = mean_faces(images, labels, mask=usage == "PublicTest")
    assert faces["disgust"] is None  # no disgust face in PublicTest
    expected = np.round((images[6].astype(float) + images[11]) / 2).astype(np.uint8)
    np.testing.assert_array_equal(faces["neutral"], expected)
    sheet = tile_images(images[:5], columns=2, scale=2, padding=1)
    assert sheet.shape == (3 * (96 + 1) + 1, 2 * (96 + 1) + 1)
    np.testing.assert_array_equal(sheet[1:97:2, 1:97:2], images[0])


def test_flaws_of_the_real_fer2013(fer2013_path):
    from fer_core import load_fer2013

    data = load_fer2013(fer2013_path)
    report = find_flaws(data.images, data.labels, data.usage, data.row_numbers)
    summary = report.summary()
    assert summary["all_black"] == 12
    assert report.all_black.tolist() == [
        6458,
        7629,
        10423,
        11286,
        13148,
        13402,
        13988,
        15894,
        22198,
        22927,
        28601,
        30002,
    ]
    assert 2171 in report.flat.tolist()
    assert summary["duplicate_groups"] == 1516
    assert summary["duplicate_rows"] == 3369
    assert summary["cross_split_groups"] == 557
    assert summary["conflicting_groups"] == 57
