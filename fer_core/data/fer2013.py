"""Read FER2013 as users download it: ``fer2013.csv``, ``fer2013.csv.gz`` or the Kaggle
folder layout (``train/<class>/*.jpg``, ``test/<class>/*.jpg``).

Every malformed row or file is reported with its row number or path; nothing is silently
dropped or silently kept. With ``skip_bad=True`` bad rows are skipped and counted.
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_core.errors import DatasetError
from fer_core.labels import EMOTIONS, INPUT_SIZE, NUM_CLASSES, USAGES
from fer_core.data.media import IMAGE_SUFFIXES
from fer_core.data.paths import (
    DataPathError,
    default_data_path,
    is_within,
    open_regular_file,
    require_regular_file,
    shown_path,
)
from fer_core.data.paths import resolve_user_path

PIXELS_PER_IMAGE = INPUT_SIZE * INPUT_SIZE
EXPECTED_HEADER = ("emotion", "pixels", "Usage")
# The Kaggle folder layout has no PublicTest/PrivateTest distinction: its test/ folder is
# reported as PrivateTest (the held-out split) and validation is carved from Training.
FOLDER_USAGE = {"train": "Training", "test": "PrivateTest"}
MAX_REPORTED_PROBLEMS = 20
# Bounded reads: a FER2013 row is about 9 KB (2,304 values of up to 3 digits), the header 20
# bytes, the whole CSV 301 MB. Anything far beyond that is not FER2013 and is refused before it
# is read into memory (a newline-free file, a gzip bomb, an endless file).
MAX_HEADER_CHARS = 1024
MAX_LINE_CHARS = 64 * 1024
MAX_CSV_BYTES = 512 * 1024 * 1024  # on disk and, for .gz, after decompression
MAX_IMAGE_FILE_BYTES = 4 * 1024 * 1024  # one image of the folder layout (FER2013's are ~2 KB)
MAX_IMAGE_SIDE = 4096  # decoded width or height of one image of the folder layout
MAX_FOLDER_FILES = 500_000

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
    # (N, 7) float32 training targets when the labels come from elsewhere (FER+'s crowd
    # votes, fer_core.data.ferplus.relabel); None: the one-hot of ``labels``.
    soft: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def split(self, usage: str) -> tuple[np.ndarray, np.ndarray]:
        if usage not in USAGES:
            raise DatasetError(f"Unknown split {usage!r}. Choose one of: {', '.join(USAGES)}.")
        mask = self.usage == usage
        return self.images[mask], self.labels[mask]

    def targets(self, usage: str | None = None) -> np.ndarray:
        """(N, 7) float32 training targets of a split (all rows when ``usage`` is None)."""
        mask = slice(None) if usage is None else self.usage == usage
        if self.soft is not None:
            return self.soft[mask]
        return np.eye(NUM_CLASSES, dtype=np.float32)[self.labels[mask]]

    def splits_present(self) -> list[str]:
        return [u for u in USAGES if np.any(self.usage == u)]


def _open_text(path: Path):
    """A text handle on ``path`` (gzip or plain), opened only if it is a regular file."""
    raw = open_regular_file(path)
    try:
        magic = raw.read(2)
        raw.seek(0)
        if magic == b"\x1f\x8b":
            return io.TextIOWrapper(
                gzip.GzipFile(fileobj=raw, mode="rb"), encoding="utf-8", newline=""
            ), raw
        if path.suffix == ".gz":
            raise DatasetError(
                f"{path.name} ends in .gz but is not a gzip file. Download it again."
            )
        return io.TextIOWrapper(raw, encoding="utf-8", newline=""), raw
    except BaseException:
        raw.close()
        raise


def _bounded_lines(handle, name: str, first_line: int):
    """Lines of ``handle``, each read with a length limit, the total capped at MAX_CSV_BYTES
    characters: nothing unbounded is ever read into memory."""
    total = 0
    number = first_line
    while True:
        line = handle.readline(MAX_LINE_CHARS)
        if not line:
            return
        number += 1
        if len(line) >= MAX_LINE_CHARS and not line.endswith("\n"):
            raise DatasetError(
                f"{name} line {number} is longer than {MAX_LINE_CHARS // 1024} "
                "KB: this is not FER2013 (a row is about 9 KB). Check the file."
            )
        total += len(line)
        if total > MAX_CSV_BYTES:
            raise DatasetError(
                f"{name} holds more than {MAX_CSV_BYTES // 2**20} MB of text; "
                "FER2013 is 301 MB. This is not the FER2013 CSV."
            )
        yield line


def _problem(problems: list[str], message: str, skip_bad: bool) -> None:
    if not skip_bad:
        raise DatasetError(
            message + " Fix or remove that row, or load with skip_bad=True "
            "(CLI: --skip-bad-rows) to skip bad rows and count them."
        )
    problems.append(message)


def _parse_rows(
    lines: Iterable[str],
    name: str,
    skip_bad: bool,
    progress: Progress | None,
    total_bytes: int,
    position: Callable[[], int],
):
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
            _problem(
                problems,
                f"{where}: expected 3 comma-separated fields "
                f"(emotion,pixels,Usage), found {len(parts)}.",
                skip_bad,
            )
            continue
        emotion_text, pixel_text, usage = parts[0].strip(), parts[1], parts[2].strip()
        try:
            emotion = int(emotion_text)
        except ValueError:
            _problem(problems, f"{where}: the emotion field is not an integer 0-6.", skip_bad)
            continue
        if not 0 <= emotion < len(EMOTIONS):
            _problem(problems, f"{where}: emotion {emotion} is outside 0-6.", skip_bad)
            continue
        if usage not in usage_set:
            _problem(
                problems, f"{where}: the Usage field is not one of {', '.join(USAGES)}.", skip_bad
            )
            continue
        tokens = pixel_text.split()
        if len(tokens) != PIXELS_PER_IMAGE:
            _problem(
                problems,
                f"{where}: {len(tokens)} pixel values, expected {PIXELS_PER_IMAGE}.",
                skip_bad,
            )
            continue
        try:
            values = np.array(tokens, dtype=np.int32)
        except ValueError:
            bad = next(i for i, t in enumerate(tokens, start=1) if not t.lstrip("-").isdigit())
            _problem(problems, f"{where}: pixel value number {bad} is not an integer.", skip_bad)
            continue
        if values.min() < 0 or values.max() > 255:
            _problem(
                problems,
                f"{where}: pixel values must lie in 0-255, found {values.min()}..{values.max()}.",
                skip_bad,
            )
            continue
        images.append(values.astype(np.uint8).reshape(INPUT_SIZE, INPUT_SIZE))
        labels.append(emotion)
        usages.append(usage)
        rows.append(row)
        if progress is not None and row % 2000 == 0 and total_bytes:
            progress(min(position() / total_bytes, 1.0), f"Read {row:,} rows")
    return images, labels, usages, rows, problems


def _load_csv(path: Path, skip_bad: bool, progress: Progress | None) -> Fer2013:
    # Messages name the file and the line, never repeat what the file holds (a wrong file could
    # be a secret), and never quote a decoder's message (gzip's quotes the first bytes).
    info = require_regular_file(path)
    if info.st_size == 0:
        raise DatasetError(f"{path.name} is empty (0 bytes). Download FER2013 again.")
    if info.st_size > MAX_CSV_BYTES:
        raise DatasetError(
            f"{path.name} is {info.st_size / 2**20:,.0f} MB; FER2013 is 301 MB "
            f"and files over {MAX_CSV_BYTES // 2**20} MB are refused. Is this the "
            "right file?"
        )
    try:
        handle, raw = _open_text(path)
    except OSError as exc:
        raise DatasetError(
            f"Cannot open {shown_path(path)}: {exc.strerror or type(exc).__name__}."
        ) from exc
    total = info.st_size

    def position() -> int:
        try:
            return raw.tell()  # plain: the file offset; gzip: the compressed stream's
        except (AttributeError, OSError, ValueError):
            return 0

    with raw, handle:  # (a GzipFile does not close the file under it)
        try:
            header = handle.readline(MAX_HEADER_CHARS)
        except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
            raise DatasetError(
                f"{path.name} cannot be read as text ({type(exc).__name__}). "
                "FER2013 is a UTF-8 CSV."
            ) from exc
        if not header.strip():
            raise DatasetError(
                f"{path.name} is empty. It should be the FER2013 CSV "
                "with header emotion,pixels,Usage."
            )
        names = tuple(h.strip().strip('"') for h in header.strip().split(","))
        if not header.endswith("\n") or names != EXPECTED_HEADER:
            raise DatasetError(
                f"{path.name} does not start with FER2013's header line "
                "'emotion,pixels,Usage'. Is this the right file?"
            )
        try:
            images, labels, usages, rows, problems = _parse_rows(
                _bounded_lines(handle, path.name, 1), path.name, skip_bad, progress, total, position
            )
        except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
            raise DatasetError(
                f"{path.name} is corrupt or truncated ({type(exc).__name__}). Download it again."
            ) from exc
    if not labels:
        raise DatasetError(f"{path.name} holds no valid rows.")
    if progress is not None:
        progress(1.0, f"Read {len(labels):,} rows")
    return Fer2013(
        np.stack(images),
        np.array(labels, dtype=np.int64),
        np.array(usages),
        str(path),
        problems,
        np.array(rows, dtype=np.int64),
    )


def _read_image_file(image_path: Path) -> bytes | str:
    """The bytes of one image of the folder layout, or why it is refused (a FIFO, a device,
    a huge file: checked before it is opened, and read with a limit)."""
    try:
        with open_regular_file(image_path) as handle:
            data = handle.read(MAX_IMAGE_FILE_BYTES + 1)
    except DataPathError as exc:
        return str(exc)
    except OSError as exc:
        return f"{shown_path(image_path)}: cannot be read ({exc.strerror or type(exc).__name__})."
    if len(data) > MAX_IMAGE_FILE_BYTES:
        return (
            f"{shown_path(image_path)}: larger than {MAX_IMAGE_FILE_BYTES // 2**20} MB, not a FER2013 "
            "image."
        )
    return data


def _image_too_large(data: bytes) -> bool:
    """Whether the image header declares a size over MAX_IMAGE_SIDE (a decompression bomb)
    or is unreadable; decided without decoding the pixels."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Exception:  # noqa: BLE001 - PIL raises many types; OpenCV decides below
        return False
    return width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE


def _load_folders(
    root: Path, skip_bad: bool, progress: Progress | None, within: Sequence[Path] | None = None
) -> Fer2013:
    import cv2

    split_dirs = [
        (root / name, usage) for name, usage in FOLDER_USAGE.items() if (root / name).is_dir()
    ]
    if not split_dirs:
        raise DatasetError(
            f"{shown_path(root)} holds neither fer2013.csv(.gz) nor train/ and test/ folders. "
            "Point to the FER2013 CSV or the Kaggle folder layout."
        )
    problems: list[str] = []
    files: list[tuple[Path, int, str]] = []
    for split_dir, usage in split_dirs:
        for class_dir in sorted(p for p in split_dir.iterdir()):
            if not class_dir.is_dir():
                continue
            name = class_dir.name.lower()
            if name not in EMOTIONS:
                _problem(
                    problems,
                    f"{shown_path(class_dir)}: unknown class folder {class_dir.name!r}; "
                    f"expected one of {', '.join(EMOTIONS)}.",
                    skip_bad,
                )
                continue
            for image_path in sorted(class_dir.iterdir()):
                files.append((image_path, EMOTIONS.index(name), usage))
                if len(files) > MAX_FOLDER_FILES:
                    raise DatasetError(
                        f"{shown_path(root)} holds more than {MAX_FOLDER_FILES:,} files; "
                        "FER2013 has 35,887 images. Is this the right folder?"
                    )
    images, labels, usages = [], [], []
    for index, (image_path, label, usage) in enumerate(files):
        if image_path.suffix.lower() not in IMAGE_SUFFIXES:
            _problem(problems, f"{shown_path(image_path)}: not an image file.", skip_bad)
            continue
        if within is not None and not is_within(Path(os.path.realpath(image_path)), within):
            _problem(
                problems,
                f"{shown_path(image_path)}: links outside the allowed data folders.",
                skip_bad,
            )
            continue
        data = _read_image_file(image_path)  # each file checked: a FIFO is never opened
        if isinstance(data, str):
            _problem(problems, data, skip_bad)
            continue
        if data and _image_too_large(data):
            _problem(
                problems,
                f"{shown_path(image_path)}: larger than {MAX_IMAGE_SIDE} pixels on a side, "
                "not a FER2013 image.",
                skip_bad,
            )
            continue
        array = np.frombuffer(data, dtype=np.uint8)
        grey = cv2.imdecode(array, cv2.IMREAD_GRAYSCALE) if array.size else None
        if grey is None:
            _problem(problems, f"{shown_path(image_path)}: empty or corrupt image.", skip_bad)
            continue
        if grey.shape != (INPUT_SIZE, INPUT_SIZE):
            grey = cv2.resize(grey, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
        images.append(grey)
        labels.append(label)
        usages.append(usage)
        if progress is not None and index % 1000 == 0:
            progress(index / max(len(files), 1), f"Read {index:,} of {len(files):,} images")
    if not labels:
        raise DatasetError(f"No readable images under {shown_path(root)}.")
    if progress is not None:
        progress(1.0, f"Read {len(labels):,} images")
    return Fer2013(
        np.stack(images), np.array(labels, dtype=np.int64), np.array(usages), str(root), problems
    )


def load_fer2013(
    path: str | os.PathLike | None = None,
    *,
    skip_bad: bool = False,
    progress: Progress | None = None,
    within: Sequence[Path] | None = None,
) -> Fer2013:
    """Load FER2013 from a CSV (optionally gzipped) or a Kaggle-style folder.

    ``path=None`` reads the ``FER2013_PATH`` environment variable. ``progress(fraction,
    message)`` is called while loading. Raises ``DatasetError`` naming the row or file at fault.

    ``within``: resolved folders (see ``fer_core.data.paths.allowed_data_roots``) that the path and
    every file read must lie in, for paths typed by users of a shared app. Outside them the
    refusal does not say whether the path exists. Reads are bounded either way: only regular
    files are opened, lines and files have size limits, and messages never quote file content.
    """
    if path is None:
        path = default_data_path()
        if not path:
            raise DatasetError(
                "No FER2013 path given and FER2013_PATH is not set. Download "
                "fer2013.csv from Kaggle and pass its path."
            )
    if within is not None:

        path = resolve_user_path(str(path), list(within))
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetError(
            f"{shown_path(path)} does not exist. Give the path of fer2013.csv, "
            "fer2013.csv.gz or the folder holding train/ and test/."
        )
    if path.is_dir():
        for candidate in ("fer2013.csv", "fer2013.csv.gz"):
            if (path / candidate).is_file():
                if within is not None and not is_within(
                    Path(os.path.realpath(path / candidate)), within
                ):
                    raise DatasetError(
                        f"{path / candidate} links outside the allowed data folders: refused."
                    )
                return _load_csv(path / candidate, skip_bad, progress)
        return _load_folders(path, skip_bad, progress, within)
    return _load_csv(path, skip_bad, progress)


def duplicates_of_training(dataset: Fer2013, usage: str) -> np.ndarray:
    """(rows of ``usage``,) bool: the images of that split whose pixels are an exact copy of
    a Training image (FER2013 has 288 in PrivateTest: a model can have memorised them)."""
    import hashlib

    def digests(images: np.ndarray) -> list[bytes]:
        return [
            hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).digest()
            for image in images
        ]

    training = set(digests(dataset.images[dataset.usage == "Training"]))
    split = dataset.images[dataset.usage == usage]
    return np.fromiter((d in training for d in digests(split)), dtype=bool, count=len(split))


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
