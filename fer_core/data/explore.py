"""Looking at FER2013 as it is: class counts, mean faces, and the data's flaws.

Everything here is a pure function of arrays (no files, no Streamlit), so the dataset
explorer, a notebook and the tests get the same numbers::

    from fer_core.data.explore import find_flaws
    report = find_flaws(data.images, data.labels, data.usage, data.row_numbers)
    report.summary()  # {'all_black': 12, 'duplicate_groups': 1516, ...} on the real FER2013

Flaws found:
- all-black images (every pixel 0) and flat images (almost no contrast: standard deviation
  below ``flat_std``, e.g. a uniform grey placeholder);
- exact duplicates: groups of rows whose 2,304 pixels are identical;
- duplicates across splits: groups whose rows sit in more than one ``Usage`` (train/test leakage);
- conflicting labels: duplicate groups whose rows carry different emotions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fer_core.labels import EMOTIONS, NUM_CLASSES, USAGES

if TYPE_CHECKING:
    import pandas as pd

FLAT_STD = 1.0  # grey levels: below this an image is a flat placeholder, not a face


@dataclass
class FlawReport:
    """What is wrong with a set of images. Row numbers are the dataset's own (``row_numbers``
    when given, else 0-based positions)."""

    all_black: np.ndarray  # row numbers of images whose pixels are all 0
    flat: np.ndarray  # row numbers of near-uniform images that are not all black
    groups: pd.DataFrame  # one row per duplicate group (see find_flaws)
    row_flags: pd.DataFrame  # one row per flagged image

    @property
    def duplicate_groups(self) -> int:
        return int(len(self.groups))

    @property
    def duplicate_rows(self) -> int:
        return int(self.groups["size"].sum()) if len(self.groups) else 0

    @property
    def cross_split_groups(self) -> int:
        return int(self.groups["spans_splits"].sum()) if len(self.groups) else 0

    @property
    def conflicting_groups(self) -> int:
        return int(self.groups["conflicting_labels"].sum()) if len(self.groups) else 0

    def summary(self) -> dict:
        return {
            "all_black": int(len(self.all_black)),
            "flat": int(len(self.flat)),
            "duplicate_groups": self.duplicate_groups,
            "duplicate_rows": self.duplicate_rows,
            "cross_split_groups": self.cross_split_groups,
            "conflicting_groups": self.conflicting_groups,
        }


def _as_rows(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim < 2:
        raise ValueError(f"expected (N, H, W) images, got shape {images.shape}")
    width = int(np.prod(images.shape[1:]))
    return np.ascontiguousarray(images.reshape(len(images), width))


def find_flaws(
    images: np.ndarray,
    labels: np.ndarray,
    usage: np.ndarray | None = None,
    row_numbers: np.ndarray | None = None,
    flat_std: float = FLAT_STD,
) -> FlawReport:
    """Find all-black and flat images, exact duplicates, duplicates across splits and
    duplicates with conflicting labels.

    ``groups`` has one row per set of identical images (two or more rows) with columns
    ``group``, ``size``, ``rows`` (list), ``usages`` (sorted list), ``labels`` (sorted list of
    emotion names), ``spans_splits``, ``conflicting_labels``, ``all_black`` and ``first_row``.
    ``row_flags`` has one row per flagged image: ``row``, ``usage``, ``label``, ``all_black``,
    ``flat``, ``duplicate_group`` (-1 if none), ``cross_split``, ``conflicting_label``.
    """
    import pandas as pd

    flat_pixels = _as_rows(images)
    count = len(flat_pixels)
    labels = np.asarray(labels)
    if len(labels) != count:
        raise ValueError(f"{count} images but {len(labels)} labels")
    usage = np.asarray(usage) if usage is not None else np.full(count, "", dtype=object)
    if len(usage) != count:
        raise ValueError(f"{count} images but {len(usage)} usage values")
    rows = np.asarray(row_numbers) if row_numbers is not None else np.arange(count)

    black_mask = flat_pixels.max(axis=1, initial=0) == 0 if count else np.zeros(0, bool)
    std = _row_std(flat_pixels)
    flat_mask = (std < flat_std) & ~black_mask

    # Exact duplicates: group by a 16-byte digest, then confirm byte equality in each group.
    digests = (
        np.array(
            [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat_pixels],
            dtype="S16",
        )
        if count
        else np.zeros(0, "S16")
    )
    order = np.argsort(digests, kind="stable")
    sorted_digests = digests[order]
    boundaries = np.flatnonzero(sorted_digests[1:] != sorted_digests[:-1]) + 1
    group_records: list[dict] = []
    group_of = np.full(count, -1, dtype=np.int64)
    for members in np.split(order, boundaries) if count else []:
        if len(members) < 2:
            continue
        members = np.sort(members)
        reference = flat_pixels[members[0]]
        same = np.all(flat_pixels[members] == reference, axis=1)
        members = members[same]  # (a digest collision would only ever drop rows here)
        if len(members) < 2:
            continue
        group_id = len(group_records)
        group_of[members] = group_id
        member_usages = sorted(
            {str(u) for u in usage[members]},
            key=lambda u: USAGES.index(u) if u in USAGES else len(USAGES),
        )
        member_labels = sorted({int(v) for v in labels[members]})
        group_records.append(
            {
                "group": group_id,
                "size": int(len(members)),
                "first_row": int(rows[members[0]]),
                "rows": [int(r) for r in rows[members]],
                "positions": [int(m) for m in members],
                "usages": member_usages,
                "labels": [_label_name(v) for v in member_labels],
                "spans_splits": len(member_usages) > 1,
                "conflicting_labels": len(member_labels) > 1,
                "all_black": bool(black_mask[members[0]]),
            }
        )
    groups = pd.DataFrame(
        group_records,
        columns=[
            "group",
            "size",
            "first_row",
            "rows",
            "positions",
            "usages",
            "labels",
            "spans_splits",
            "conflicting_labels",
            "all_black",
        ],
    )

    spans = np.array([g["spans_splits"] for g in group_records], dtype=bool)
    conflicts = np.array([g["conflicting_labels"] for g in group_records], dtype=bool)
    in_group = group_of >= 0
    cross_mask = np.zeros(count, bool)
    conflict_mask = np.zeros(count, bool)
    if len(group_records):
        cross_mask[in_group] = spans[group_of[in_group]]
        conflict_mask[in_group] = conflicts[group_of[in_group]]
    flagged = black_mask | flat_mask | in_group
    positions = np.flatnonzero(flagged)
    row_flags = pd.DataFrame(
        {
            "row": rows[positions].astype(np.int64),
            "position": positions.astype(np.int64),
            "usage": usage[positions].astype(str),
            "label": [_label_name(v) for v in labels[positions]],
            "all_black": black_mask[positions],
            "flat": flat_mask[positions],
            "duplicate_group": group_of[positions],
            "cross_split": cross_mask[positions],
            "conflicting_label": conflict_mask[positions],
        }
    )
    return FlawReport(
        all_black=rows[black_mask].astype(np.int64),
        flat=rows[flat_mask].astype(np.int64),
        groups=groups,
        row_flags=row_flags,
    )


def _row_std(flat_pixels: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Per-row standard deviation, in chunks (a float64 copy of FER2013 would be 660 MB)."""
    out = np.empty(len(flat_pixels), dtype=np.float64)
    for start in range(0, len(flat_pixels), chunk):
        out[start : start + chunk] = (
            flat_pixels[start : start + chunk].astype(np.float32).std(axis=1)
        )
    return out


def _label_name(value) -> str:
    value = int(value)
    return EMOTIONS[value] if 0 <= value < NUM_CLASSES else str(value)


def class_counts(labels: np.ndarray, usage: np.ndarray):
    """A DataFrame: one row per split present (Training, PublicTest, PrivateTest order), one
    column per emotion (EMOTIONS order) plus ``total``."""
    import pandas as pd

    labels = np.asarray(labels)
    usage = np.asarray(usage)
    splits = [u for u in USAGES if np.any(usage == u)]
    splits += sorted({str(u) for u in np.unique(usage)} - set(USAGES))
    table = {
        split: np.bincount(labels[usage == split], minlength=NUM_CLASSES)[:NUM_CLASSES]
        for split in splits
    }
    frame = pd.DataFrame.from_dict(table, orient="index", columns=list(EMOTIONS))
    frame.index.name = "split"
    frame["total"] = frame.sum(axis=1)
    return frame


def mean_faces(
    images: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None
) -> dict[str, np.ndarray | None]:
    """The average image of each class (uint8 48x48), or None for a class with no images.
    ``mask`` restricts the images used (e.g. one split, or excluding flawed rows)."""
    images = np.asarray(images)
    labels = np.asarray(labels)
    if mask is not None:
        images, labels = images[mask], labels[mask]
    faces: dict[str, np.ndarray | None] = {}
    for index, emotion in enumerate(EMOTIONS):
        members = images[labels == index]
        faces[emotion] = (
            np.round(members.mean(axis=0, dtype=np.float64)).astype(np.uint8)
            if len(members)
            else None
        )
    return faces


def tile_images(
    images: np.ndarray, columns: int = 8, scale: int = 2, padding: int = 2, background: int = 255
) -> np.ndarray:
    """Lay grey images out on a grid (for sample sheets and reports); returns uint8 grey."""
    images = np.asarray(images, dtype=np.uint8)
    if images.ndim != 3:
        raise ValueError(f"expected (N, H, W) images, got shape {images.shape}")
    count = len(images)
    if count == 0:
        return np.full((1, 1), background, np.uint8)
    height, width = images.shape[1] * scale, images.shape[2] * scale
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    sheet = np.full(
        (rows * (height + padding) + padding, columns * (width + padding) + padding),
        background,
        np.uint8,
    )
    for index, image in enumerate(images):
        r, c = divmod(index, columns)
        y, x = padding + r * (height + padding), padding + c * (width + padding)
        sheet[y : y + height, x : x + width] = np.kron(image, np.ones((scale, scale), np.uint8))
    return sheet


__all__ = ["FlawReport", "find_flaws", "class_counts", "mean_faces", "tile_images", "FLAT_STD"]
