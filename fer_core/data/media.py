"""Which files are photos, videos and datasets, by suffix: the one list the CLI, the dataset
reader and the app's uploaders share (lower case, with the dot)."""

from __future__ import annotations

from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")  # read_image
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".webm", ".mkv", ".m4v")
DATASET_SUFFIXES = (".csv", ".gz")
# What a person calls each format (several suffixes, one name).
FORMAT_NAMES = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WebP",
    ".bmp": "BMP",
    ".gif": "GIF",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".mp4": "MP4",
    ".avi": "AVI",
    ".mov": "MOV",
    ".webm": "WebM",
    ".mkv": "MKV",
    ".m4v": "M4V",
}


def kind_of(name: str | Path) -> str:
    """``"image"``, ``"video"``, ``"dataset"`` or ``"unknown"`` from a file name's suffix."""
    suffix = Path(str(name)).suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in DATASET_SUFFIXES:
        return "dataset"
    return "unknown"


def format_names(suffixes) -> str:
    """``IMAGE_SUFFIXES`` -> ``"JPEG, PNG, WebP, BMP, GIF, TIFF"``: the formats' names, each
    once, in the list's order (what pages and messages show)."""
    return ", ".join(dict.fromkeys(FORMAT_NAMES[suffix] for suffix in suffixes))


def without_dots(suffixes) -> list[str]:
    """``[".jpg", ...]`` -> ``["jpg", ...]`` (what ``st.file_uploader(type=...)`` takes)."""
    return [suffix.lstrip(".") for suffix in suffixes]


__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "DATASET_SUFFIXES",
    "FORMAT_NAMES",
    "format_names",
    "kind_of",
    "without_dots",
]
