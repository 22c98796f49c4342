"""Batch prediction over files and folders, and a callable predictor for batch engines.

``FacePredictor`` loads the model once per worker and maps a batch of images to a batch of
results, so it fits ``ray.data.Dataset.map_batches`` as well as the CLI::

    python -m fer_core predict photos/ clip.mp4 --out results.csv

File names come from anywhere (a folder of someone else's photos): every line printed names
them through ``terminal_safe`` (a newline or an escape sequence in a name is shown escaped),
and a CSV written with ``--out`` has its formula-like text cells neutralised
(``fer_core.safe_text.to_safe_csv``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from fer_core.data.image import read_image
from fer_core.data.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from fer_core.errors import ConfigError, FerError
from fer_core.faces import DEFAULT_DETECTOR
from fer_core.recognition.batch import TABLE_COLUMNS, FacePredictor, as_table, predict_with_ray  # noqa: F401 (part of this API)
from fer_core.recognition.explain import write_explanations
from fer_core.recognition.results import FILE_VIDEO_COLUMNS, PHOTO_COLUMNS
from fer_core.recognition.video import analyze_video
from fer_core.safe_text import terminal_safe, to_safe_csv
from fer_core.storage import atomic_writer, temporary_beside

OUT_SUFFIXES = (".csv", ".json", ".parquet")


def collect_inputs(paths: Iterable[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand folders (recursively) into files; report paths that do not exist. A folder
    with no photo or video in it is refused (FerError) before any work: "files: 0" and a
    success would hide a wrong path or an unread format."""
    files: list[Path] = []
    missing: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES
            )
            if not found:
                raise FerError(
                    f"The folder {terminal_safe(raw)} holds no image or video "
                    "files, nor do its subfolders; predict reads files ending in "
                    f"{', '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)}. Give a folder "
                    "of photos or videos, or name the files."
                )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            missing.append((raw, "does not exist"))
    return files, missing


def check_out(out: str | os.PathLike) -> Path:
    """Check ``--out`` before any work starts: a results file name (.csv, .json, .parquet)
    that is not a folder, not a symbolic link, not a FIFO or device, in a folder this process
    can create files in (made if missing). Raises FerError saying what to do."""
    path = Path(out)
    if path.suffix.lower() not in OUT_SUFFIXES:
        raise FerError(f"--out must end in .csv, .json or .parquet, not {path.name!r}.")
    shown = terminal_safe(path)
    if path.is_symlink():
        raise FerError(
            f"--out {shown} is a symbolic link; it is not replaced (it could point "
            "anywhere). Remove the link or give another file name."
        )
    if path.is_dir():
        raise FerError(
            f"--out {shown} is a folder; give a file name, e.g. "
            f"{terminal_safe(path / 'results.csv')}."
        )
    if path.exists() and not path.is_file():
        raise FerError(
            f"--out {shown} exists and is not a regular file (a FIFO or device?); "
            "give another file name."
        )
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FerError(
            f"Cannot create the folder {terminal_safe(folder)} for --out: "
            f"{exc.strerror or type(exc).__name__}. Choose another --out."
        ) from None
    try:  # a real probe: access() says yes to root even on a read-only file system
        with temporary_beside(folder / ".fer-out-check"):
            pass
    except OSError as exc:
        raise FerError(
            f"Cannot write in {terminal_safe(folder)} "
            f"({exc.strerror or type(exc).__name__}). Give an --out in a folder you "
            "may write to."
        ) from None
    return path


def write_table(rows: list[dict], out: Path, columns: list[str]) -> None:
    """Write the results through a unique temporary file in ``out``'s folder, renamed into
    place: ``out`` is either the complete new table or untouched, and the temporary file is
    removed whatever happens (a full disk included). A symbolic link is never replaced. In a
    CSV, text cells that a spreadsheet would run as formulas get a leading single quote and
    cells holding line breaks are quoted (``fer_core.safe_text.to_safe_csv``); numbers, JSON
    and Parquet are written as they are."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)
    suffix = out.suffix.lower()
    if suffix not in OUT_SUFFIXES:
        raise FerError(f"Unknown output format {suffix!r}; use .csv, .json or .parquet.")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_writer(out, "wb") as handle:
            if suffix == ".csv":
                to_safe_csv(frame, handle)
            elif suffix == ".json":
                handle.write(frame.to_json(orient="records", indent=1).encode("utf-8"))
            else:
                frame.to_parquet(handle, index=False)
    except ConfigError as exc:  # the target is (or became) a symbolic link
        raise FerError(
            f"--out {terminal_safe(out)}: {exc} Remove the link and run again."
        ) from None
    except OSError as exc:
        raise FerError(
            f"Could not write the results to {terminal_safe(out)}: "
            f"{exc.strerror or type(exc).__name__}. Nothing was written there; "
            "free some space or choose another --out."
        ) from None


def check_explain(folder: str | os.PathLike) -> Path:
    """Check ``--explain DIR`` before any work: a folder (made if missing), not a file."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise FerError(
            f"--explain {terminal_safe(path)} is not a folder; give a folder for the PNGs."
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FerError(
            f"Cannot create the folder {terminal_safe(path)} for --explain: "
            f"{exc.strerror or type(exc).__name__}. Choose another folder."
        ) from None
    return path


def _safe_stem(index: int, path: Path) -> str:
    """A file-name stem for explanation PNGs: numbered (two inputs may share a name) and made
    of safe characters only."""
    import re

    return f"{index:03d}_" + (re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem)[:60] or "image")


def run_predict(
    paths: list[str],
    out: str | None,
    model: str | None,
    every: int,
    preset: str,
    stream=None,
    explain: str | None = None,
    engine: str = "local",
    detector: str = DEFAULT_DETECTOR,
    concurrency: int = 1,
) -> dict:
    stream = stream or sys.stderr  # at call time: a default bound at import goes stale
    out_path = check_out(out) if out else None  # before any work: refuse a bad --out now
    explain_dir = check_explain(explain) if explain else None
    explained: list[Path] = []
    files, failures = collect_inputs(paths)
    if engine == "ray":
        if explain_dir is not None:
            raise FerError("--explain works with --engine local only.")
        return _run_on_ray(files, failures, out_path, model, preset, concurrency, detector)
    predictor = FacePredictor(model, preset=preset, detector=detector)
    rows: list[dict] = []
    faces = 0
    done = 0
    columns = FILE_VIDEO_COLUMNS
    for index, path in enumerate(files, start=1):
        try:
            if path.suffix.lower() in VIDEO_SUFFIXES:
                frame = analyze_video(path, recognizer=predictor.recognizer, every=every)
                rows.extend({"file": str(path), **record} for record in frame.to_dict("records"))
                faces += int(frame["face_id"].notna().sum()) if len(frame) else 0
            else:
                rgb = read_image(path)
                new_rows = predictor.rows_for(str(path), rgb)
                faces += sum(1 for r in new_rows if r.get("face") is not None)
                if explain_dir is not None:
                    boxes = [
                        (r["x"], r["y"], r["w"], r["h"])
                        for r in new_rows
                        if r.get("face") is not None
                    ]
                    explained += write_explanations(
                        predictor.recognizer, rgb, boxes, explain_dir, _safe_stem(index, path)
                    )
                rows.extend(new_rows)
            done += 1
        except FerError as exc:
            failures.append((str(path), str(exc)))
        shown = terminal_safe(path.name)[:60]
        print(f"\r[{index}/{len(files)}] {shown:<60}", end="", file=stream, flush=True)
    if files:
        print(file=stream)
    if out_path is not None:
        write_table(rows, out_path, columns)
    summary = {
        "files": len(files) + sum(1 for f in failures if f[1] == "does not exist"),
        "processed": done,
        "faces": faces,
        "failed": failures,
        "explanations": [str(p) for p in explained],
    }
    return {"summary": summary, "rows": rows}


def _run_on_ray(files, failures, out_path, model, preset, concurrency, detector) -> dict:
    videos = [f for f in files if f.suffix.lower() in VIDEO_SUFFIXES]
    failures += [(str(f), "videos are analysed with --engine local") for f in videos]
    photos = [f for f in files if f not in videos]
    table, timing = (
        predict_with_ray(photos, model, preset, concurrency, detector=detector)
        if photos
        else (as_table([]), {"seconds": 0.0, "seconds_after_start": 0.0})
    )
    broken = table["error"].notna()
    failures += [
        (str(f), str(e)) for f, e in zip(table.loc[broken, "file"], table.loc[broken, "error"])
    ]
    table = table[~broken].drop(columns="error")
    if out_path is not None:
        write_table(table.to_dict("records"), out_path, PHOTO_COLUMNS)
    rows = [
        {k: (None if v is None or v != v else v) for k, v in row.items()}
        for row in table.astype(object).to_dict("records")
    ]
    summary = {
        "files": len(files) + sum(1 for f in failures if f[1] == "does not exist"),
        "processed": len(photos) - int(broken.sum()),
        "faces": int(table["face"].notna().sum()),
        "failed": failures,
        **timing,
    }
    return {"summary": summary, "rows": rows}
