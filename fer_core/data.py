"""Read FER2013 as users download it: ``fer2013.csv``, ``fer2013.csv.gz`` or the Kaggle
folder layout (``train/<class>/*.jpg``, ``test/<class>/*.jpg``).

Every malformed row or file is reported with its row number or path; nothing is silently
dropped or silently kept. With ``skip_bad=True`` bad rows are skipped and counted.
"""

from __future__ import annotations

import gzip
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .errors import DatasetError
from .labels import EMOTIONS, INPUT_SIZE, USAGES

PIXELS_PER_IMAGE = INPUT_SIZE * INPUT_SIZE
EXPECTED_HEADER = ("emotion", "pixels", "Usage")
# The Kaggle folder layout has no PublicTest/PrivateTest distinction: its test/ folder is
# reported as PrivateTest (the held-out split) and validation is carved from Training.
FOLDER_USAGE = {"train": "Training", "test": "PrivateTest"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
MAX_REPORTED_PROBLEMS = 20

Progress = Callable[[float, str], None]


@dataclass
class Fer2013:
    """FER2013 in memory: images (N, 48, 48) uint8, labels (N,) int64, usage (N,) str."""

    images: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    source: str = ""
    skipped: list[str] = field(default_factory=list)  # one message per skipped row/file
    row_numbers: np.ndarray | None = None  # 0-based data-row index in the CSV, if any

    def __len__(self) -> int:
        return len(self.labels)

    def split(self, usage: str) -> tuple[np.ndarray, np.ndarray]:
        if usage not in USAGES:
            raise DatasetError(f"Unknown split {usage!r}. Choose one of: {', '.join(USAGES)}.")
        mask = self.usage == usage
        return self.images[mask], self.labels[mask]

    def splits_present(self) -> list[str]:
        return [u for u in USAGES if np.any(self.usage == u)]


def _open_text(path: Path):
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    if path.suffix == ".gz":
        raise DatasetError(f"{path.name} ends in .gz but is not a gzip file. Download it again.")
    return open(path, "r", encoding="utf-8", newline="")


def _problem(problems: list[str], message: str, skip_bad: bool) -> None:
    if not skip_bad:
        raise DatasetError(message + " Fix or remove that row, or load with skip_bad=True "
                           "(CLI: --skip-bad-rows) to skip bad rows and count them.")
    problems.append(message)


def _parse_rows(lines: Iterable[str], name: str, skip_bad: bool, progress: Progress | None,
                total_bytes: int, position: Callable[[], int]):
    images: list[np.ndarray] = []
    labels: list[int] = []
    usages: list[str] = []
    rows: list[int] = []
    problems: list[str] = []
    usage_set = set(USAGES)
    for row, line in enumerate(lines):
        line = line.strip()
        if not line:
            continue
        parts = line.split(",")
        where = f"{name} row {row + 1} (data row {row}, line {row + 2})"
        if len(parts) != 3:
            _problem(problems, f"{where}: expected 3 comma-separated fields "
                     f"(emotion,pixels,Usage), found {len(parts)}.", skip_bad)
            continue
        emotion_text, pixel_text, usage = parts[0].strip(), parts[1], parts[2].strip()
        try:
            emotion = int(emotion_text)
        except ValueError:
            _problem(problems, f"{where}: emotion {emotion_text!r} is not an integer 0-6.", skip_bad)
            continue
        if not 0 <= emotion < len(EMOTIONS):
            _problem(problems, f"{where}: emotion {emotion} is outside 0-6.", skip_bad)
            continue
        if usage not in usage_set:
            _problem(problems, f"{where}: Usage {usage!r} is not one of {', '.join(USAGES)}.",
                     skip_bad)
            continue
        tokens = pixel_text.split()
        if len(tokens) != PIXELS_PER_IMAGE:
            _problem(problems, f"{where}: {len(tokens)} pixel values, expected {PIXELS_PER_IMAGE}.",
                     skip_bad)
            continue
        try:
            values = np.array(tokens, dtype=np.int32)
        except ValueError:
            bad = next(t for t in tokens if not t.lstrip("-").isdigit())
            _problem(problems, f"{where}: pixel value {bad!r} is not an integer.", skip_bad)
            continue
        if values.min() < 0 or values.max() > 255:
            _problem(problems, f"{where}: pixel values must lie in 0-255, found "
                     f"{values.min()}..{values.max()}.", skip_bad)
            continue
        images.append(values.astype(np.uint8).reshape(INPUT_SIZE, INPUT_SIZE))
        labels.append(emotion)
        usages.append(usage)
        rows.append(row)
        if progress is not None and row % 2000 == 0 and total_bytes:
            progress(min(position() / total_bytes, 1.0), f"Read {row:,} rows")
    return images, labels, usages, rows, problems


def _load_csv(path: Path, skip_bad: bool, progress: Progress | None) -> Fer2013:
    try:
        handle = _open_text(path)
    except OSError as exc:
        raise DatasetError(f"Cannot open {path}: {exc.strerror or exc}.") from exc
    raw = getattr(handle, "buffer", None)
    total = path.stat().st_size

    def position() -> int:
        try:
            # gzip: position of the compressed stream; plain: the file offset.
            inner = getattr(raw, "fileobj", None) or getattr(raw, "raw", None) or raw
            return inner.tell()
        except (AttributeError, OSError, ValueError):
            return 0

    with handle:
        try:
            header = handle.readline()
        except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
            raise DatasetError(f"{path.name} cannot be read as text: {exc}.") from exc
        if not header.strip():
            raise DatasetError(f"{path.name} is empty. It should be the FER2013 CSV "
                               "with header emotion,pixels,Usage.")
        names = tuple(h.strip().strip('"') for h in header.strip().split(","))
        if names != EXPECTED_HEADER:
            raise DatasetError(f"{path.name} has header {','.join(names)!r}; FER2013's is "
                               "'emotion,pixels,Usage'. Is this the right file?")
        try:
            images, labels, usages, rows, problems = _parse_rows(
                handle, path.name, skip_bad, progress, total, position)
        except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
            raise DatasetError(f"{path.name} is corrupt or truncated: {exc}. "
                               "Download it again.") from exc
    if not labels:
        raise DatasetError(f"{path.name} holds no valid rows.")
    if progress is not None:
        progress(1.0, f"Read {len(labels):,} rows")
    return Fer2013(np.stack(images), np.array(labels, dtype=np.int64), np.array(usages),
                   str(path), problems, np.array(rows, dtype=np.int64))


def _load_folders(root: Path, skip_bad: bool, progress: Progress | None) -> Fer2013:
    import cv2

    split_dirs = [(root / name, usage) for name, usage in FOLDER_USAGE.items()
                  if (root / name).is_dir()]
    if not split_dirs:
        raise DatasetError(f"{root} holds neither fer2013.csv(.gz) nor train/ and test/ folders. "
                           "Point to the FER2013 CSV or the Kaggle folder layout.")
    problems: list[str] = []
    files: list[tuple[Path, int, str]] = []
    for split_dir, usage in split_dirs:
        for class_dir in sorted(p for p in split_dir.iterdir()):
            if not class_dir.is_dir():
                continue
            name = class_dir.name.lower()
            if name not in EMOTIONS:
                _problem(problems, f"{class_dir}: unknown class folder {class_dir.name!r}; "
                         f"expected one of {', '.join(EMOTIONS)}.", skip_bad)
                continue
            for image_path in sorted(class_dir.iterdir()):
                files.append((image_path, EMOTIONS.index(name), usage))
    images, labels, usages = [], [], []
    for index, (image_path, label, usage) in enumerate(files):
        if image_path.suffix.lower() not in IMAGE_SUFFIXES:
            _problem(problems, f"{image_path}: not an image file.", skip_bad)
            continue
        data = np.fromfile(image_path, dtype=np.uint8)
        grey = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
        if grey is None:
            _problem(problems, f"{image_path}: empty or corrupt image.", skip_bad)
            continue
        if grey.shape != (INPUT_SIZE, INPUT_SIZE):
            grey = cv2.resize(grey, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
        images.append(grey)
        labels.append(label)
        usages.append(usage)
        if progress is not None and index % 1000 == 0:
            progress(index / max(len(files), 1), f"Read {index:,} of {len(files):,} images")
    if not labels:
        raise DatasetError(f"No readable images under {root}.")
    if progress is not None:
        progress(1.0, f"Read {len(labels):,} images")
    return Fer2013(np.stack(images), np.array(labels, dtype=np.int64), np.array(usages),
                   str(root), problems)


DATA_ENV = "FER2013_PATH"  # the one place that names the environment variable


def default_data_path() -> str | None:
    """The FER2013 path from ``$FER2013_PATH``, or None when it is unset."""
    return os.environ.get(DATA_ENV) or None


def load_fer2013(path: str | os.PathLike | None = None, *, skip_bad: bool = False,
                 progress: Progress | None = None) -> Fer2013:
    """Load FER2013 from a CSV (optionally gzipped) or a Kaggle-style folder.

    ``path=None`` reads the ``FER2013_PATH`` environment variable. ``progress(fraction,
    message)`` is called while loading. Raises ``DatasetError`` naming the row or file at fault.
    """
    if path is None:
        path = default_data_path()
        if not path:
            raise DatasetError("No FER2013 path given and FER2013_PATH is not set. Download "
                               "fer2013.csv from Kaggle and pass its path.")
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetError(f"{path} does not exist. Give the path of fer2013.csv, "
                           "fer2013.csv.gz or the folder holding train/ and test/.")
    if path.is_dir():
        for candidate in ("fer2013.csv", "fer2013.csv.gz"):
            if (path / candidate).is_file():
                return _load_csv(path / candidate, skip_bad, progress)
        return _load_folders(path, skip_bad, progress)
    if path.stat().st_size == 0:
        raise DatasetError(f"{path.name} is empty (0 bytes). Download FER2013 again.")
    return _load_csv(path, skip_bad, progress)


def stratified_subset(labels: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """Indices of a class-stratified random subset of ``size`` rows (every class kept)."""
    if size >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        take = max(1, int(round(size * len(members) / len(labels))))
        chosen.append(rng.choice(members, size=min(take, len(members)), replace=False))
    return np.sort(np.concatenate(chosen))
