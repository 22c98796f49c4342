"""Photos and videos: every face boxed and labelled, probabilities, tables and downloads."""

import math
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from app_lib.model.model_state import require_active_model
from app_lib.records.shared_store import save_to_history
from app_lib.ui.charts import probability_bars, timeline_figure
from app_lib.ui.detector import detector_choice, no_face_advice, offer_fallback
from app_lib.ui.formatting import duration, percent, table_height
from app_lib.ui.text import escape_markdown, shorten, show_error, user_errors
from app_lib.uploads.analysis import (
    ALL_PHOTO_COLUMNS,
    IMAGE_TYPES,
    PREVIEW_WIDTH,
    RESULT_COLUMNS,
    VIDEO_TYPES,
    PhotoResult,
    analyze_photo,
    analyze_video_file,
    annotated_png,
    explain_photo,
    frames_to_json,
    kind_of,
    photo_recognizer,
    rows_to_csv,
    to_json_bytes,
    video_recognizer,
)
from app_lib.uploads.budget import (
    UploadRule,
    expect_uploads,
    forget_replaced_uploaders,
    release_uploads,
    session_upload_files,
    session_upload_mb,
    take_refusals,
    uploader_key,
)
from app_lib.uploads.session_files import (
    StoredUpload,
    UploadError,
    check_upload_size,
    discard_upload,
    max_photo_mb,
    max_video_mb,
    max_video_seconds,
    session_folder,
    session_id,
    store_upload,
)
from fer_core import EMOTIONS, FerError
from fer_core.data.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, format_names
from fer_core.recognition.results import FaceResult, frame_to_csv_bytes
from fer_core.recognition.timeline import face_summary, segment_summary
from fer_core.recognition.uncertainty import threshold_of

VIDEO_RESULTS_KEY = "video_results"
STORED_KEY = "stored_uploads"  # this tab's uploads: StoredUpload records (files on disk)
UPLOADER_KEY = "upload_files"  # the uploader's key before its first intake
GENERATION_KEY = "upload_generation"  # a new uploader (emptied) after each intake
INTAKE_PROBLEMS_KEY = "upload_intake_problems"
CANCELLED_KEY = "video_cancelled"  # keys of video analyses the visitor cancelled

st.title("Photos & videos")
st.caption(
    f"Upload one or several photos ({format_names(IMAGE_SUFFIXES)}) or videos "
    f"({format_names(VIDEO_SUFFIXES)}). Every face found is boxed and labelled with its most likely "
    "emotion, or as *uncertain* with its two leading emotions when the model is unsure."
)

active = require_active_model()
model = active.model
with st.sidebar:
    detector = detector_choice(st)
model_key = f"{model.path}:{model.path.stat().st_mtime_ns if model.path.exists() else 0}"
threshold = threshold_of(model)  # measured on PublicTest, read from the model card

generation = st.session_state.get(GENERATION_KEY, 0)
forget_replaced_uploaders(UPLOADER_KEY, generation)  # their values held the files' bytes
# A file of another type, or over its kind's cap, is refused as it arrives (not kept).
expect_uploads(
    {suffix: UploadRule(max_photo_mb(), "photo", "FER_MAX_PHOTO_MB") for suffix in IMAGE_SUFFIXES}
    | {suffix: UploadRule(max_video_mb(), "video", "FER_MAX_VIDEO_MB") for suffix in VIDEO_SUFFIXES}
)
incoming = st.file_uploader(
    "Photos or videos",
    type=IMAGE_TYPES + VIDEO_TYPES,
    accept_multiple_files=True,
    key=uploader_key(UPLOADER_KEY, generation),
    max_upload_size=max(1, math.ceil(max(max_photo_mb(), max_video_mb()))),
    help=f"Photos up to {max_photo_mb():g} MB; videos up to {max_video_mb():g} MB and "
    f"{max_video_seconds():g} s. This tab holds at most {session_upload_files()} files "
    f"and {session_upload_mb():g} MB at once; they are kept only while it is open.",
)


def take_in(files) -> None:
    """Store each new upload on disk (checked, hashed as it is written) and take it out of
    the server's memory; then empty the uploader. Results are computed from the files."""
    stored = st.session_state.setdefault(STORED_KEY, [])
    problems = st.session_state.setdefault(INTAKE_PROBLEMS_KEY, [])
    try:
        for upload in files:
            kind = kind_of(upload.name)
            try:
                if kind == "image":
                    check_upload_size(upload, max_photo_mb(), "photo", "FER_MAX_PHOTO_MB")
                elif kind == "video":
                    check_upload_size(upload, max_video_mb(), "video", "FER_MAX_VIDEO_MB")
                else:
                    raise UploadError(
                        f"not a supported file type. Upload photos "
                        f"({format_names(IMAGE_SUFFIXES)}) or videos "
                        f"({format_names(VIDEO_SUFFIXES)})."
                    )
                item = store_upload(upload)
            except FerError as exc:
                problems.append(f"{shorten(upload.name)}: {exc}")
                continue
            stored[:] = [s for s in stored if s.key != item.key] + [item]
    finally:
        release_uploads(files)
        st.session_state[GENERATION_KEY] = generation + 1


# What went wrong with uploads: files refused when they arrived (app_lib.uploads.budget) and at
# intake. Kept until dismissed: the browser sends each file as it completes, so one drop of
# several files reruns the page several times, and a run may be cut short by the next file.
problems = st.session_state.setdefault(INTAKE_PROBLEMS_KEY, [])
problems.extend(take_refusals(session_id()))
if incoming:
    take_in(incoming)
    del incoming
    st.rerun()
del problems[:-10]
for problem in problems:
    show_error(problem, icon=":material/block:")
if problems and st.button(
    "Dismiss", key="dismiss_upload_problems", type="tertiary", icon=":material/close:"
):
    problems.clear()
    st.rerun()

with st.expander("Video settings", expanded=False):
    every = st.number_input(
        "Analyse every N-th frame",
        min_value=1,
        max_value=120,
        value=3,
        step=1,
        key="video_every",
        help="1 analyses every frame (slowest); 3 analyses 10 of 30 frames per second.",
    )
    segment_seconds = st.number_input(
        "Segment length for the summary (seconds)",
        min_value=0.2,
        max_value=60.0,
        value=1.0,
        step=0.5,
        key="video_segment",
    )
    write_video = st.checkbox("Make an annotated video to download", value=True, key="video_write")

# This tab's files stay on disk while it is open, and are shown again on return from another
# page. A tab that lost its connection got a new, empty folder: its files are gone.
stored = st.session_state.get(STORED_KEY) or []
uploads: list[StoredUpload] = [item for item in stored if item.exists()]
if len(uploads) != len(stored):
    st.session_state[STORED_KEY] = uploads
    st.info(
        "Files uploaded before this tab lost its connection to the server were removed; "
        "upload them again.",
        icon=":material/cloud_off:",
    )
if uploads:
    held = sum(item.size for item in uploads)
    note = st.container(horizontal=True, vertical_alignment="center")
    note.caption(
        f"This tab holds {len(uploads)} file{'s' if len(uploads) != 1 else ''} "
        f"({held / 2**20:,.1f} MB of {session_upload_mb():g} MB), kept while it is "
        "open. Upload more above; they are added."
    )
    if note.button("Clear all", icon=":material/delete:", key="clear_kept_uploads"):
        for item in uploads:
            discard_upload(item)
        st.session_state.pop(STORED_KEY, None)
        st.session_state.pop(INTAKE_PROBLEMS_KEY, None)
        st.rerun()

if not uploads:
    st.info(
        "Drop photos or videos above. Try a clear, frontal face in good light.",
        icon=":material/upload:",
    )
    st.stop()


@st.cache_data(show_spinner=False, max_entries=64)
def cached_photo(_path: Path, digest: str, name: str, model_key: str, detector: str) -> PhotoResult:
    # Keyed by the content's digest (the path is not hashed); ``model_key`` and ``detector``
    # keep results of different models and detectors apart.
    return analyze_photo(_path.read_bytes(), name, photo_recognizer(model, detector))


def download_stem(name: str) -> str:
    """The user's file name without suffix, cut short, for download names."""
    return shorten(Path(name).stem, 60).replace("…", "")


@st.cache_data(show_spinner=False, max_entries=32)
def cached_preview(
    _path: Path,
    _faces: list[FaceResult],
    digest: str,
    kept: tuple,
    threshold: float | None,
    model_key: str,
    detector: str,
) -> bytes:
    """The page's annotated preview of the faces kept (``kept``: their numbers, after boxes
    were dropped; with the digest, threshold, model and detector, the cache key)."""
    return annotated_png(_path.read_bytes(), _faces, threshold, width=PREVIEW_WIDTH)


@st.cache_data(show_spinner=False, max_entries=32)
def cached_explanations(
    _path: Path,
    _faces: list[FaceResult],
    digest: str,
    name: str,
    kept: tuple,
    model_key: str,
    detector: str,
) -> list[dict]:
    return explain_photo(_path.read_bytes(), name, _faces, photo_recognizer(model, detector))


def show_bars(faces: list[FaceResult], key: str) -> None:
    """One panel per face, four to a row; Streamlit stacks the columns on a narrow screen."""
    per_row = 1 if len(faces) == 1 else 4
    for start in range(0, len(faces), per_row):
        columns = st.columns(per_row)
        for column, face in zip(columns, faces[start : start + per_row]):
            column.plotly_chart(
                probability_bars(
                    [face.probs.tolist()],
                    [f"#{face.number}: {face.shown_label(threshold)}"],
                    columns=1,
                ),
                key=f"{key}-{face.number}",
                config={"displayModeBar": False},
            )


def show_explanations(upload: StoredUpload, faces: list[FaceResult]) -> None:
    with st.spinner("Hiding parts of each face to see what the answer rests on…"):
        items = cached_explanations(
            upload.path,
            faces,
            upload.digest,
            upload.name,
            tuple(face.number for face in faces),
            model_key,
            detector,
        )
    averaged = max((item["framings"] for item in items), default=1)
    st.caption(
        "For each face: the 48×48 crop the model saw (a bad crop — a box on a shirt, "
        "half a face — shows here), then its occlusion sensitivity: where greying out a "
        "square lowers the named emotion's probability most (red: the answer rests "
        "there)."
        + (
            f" With this detector the model averages {averaged} crops of each face (its box "
            "raised, centred and lowered a little); the centred one is shown, and the map "
            "explains the average."
            if averaged > 1
            else ""
        )
    )
    per_row = 4
    for start in range(0, len(items), per_row):
        columns = st.columns(per_row)
        for column, item in zip(columns, items[start : start + per_row]):
            with column:
                st.image(
                    [item["crop_png"], item["overlay_png"]],
                    caption=[f"#{item['face']} crop", f"#{item['face']} {item['emotion']}"],
                    width=144,
                )


def dropped_of(key: str) -> list[int]:
    """The face numbers the visitor dropped from one photo: kept out of every download."""
    return st.session_state.get(f"drop-{key}") or []


def file_heading(upload: StoredUpload) -> None:
    """The file's name, and a button that removes it from this tab (and from the disk)."""

    def remove() -> None:
        discard_upload(upload)
        st.session_state[STORED_KEY] = [
            item for item in st.session_state.get(STORED_KEY, []) if item.key != upload.key
        ]

    heading = st.container(horizontal=True, vertical_alignment="bottom")
    heading.subheader(escape_markdown(shorten(upload.name)), divider="gray")
    heading.button(
        "Remove",
        key=f"remove-{upload.key}",
        icon=":material/close:",
        type="tertiary",
        on_click=remove,
        help="Remove this file from this tab.",
    )


def show_photo(upload: StoredUpload, result: PhotoResult) -> list[dict]:
    """Show one photo's results; returns its result rows (the faces the user kept)."""
    file_heading(upload)
    if not result.ok:
        show_error(result.error, icon=":material/broken_image:")
        return result.rows()
    drop_key, kept_key = f"drop-{upload.key}", f"dropped-{upload.key}"
    if drop_key not in st.session_state and kept_key in st.session_state:
        # The box widget's state goes when the visitor visits another page; the choice stays.
        st.session_state[drop_key] = st.session_state[kept_key]
    dropped = dropped_of(upload.key)
    st.session_state[kept_key] = list(dropped)
    faces = result.kept(dropped)
    image_column, side_column = st.columns([3, 2], gap="large")
    with image_column:
        preview_png = (
            cached_preview(
                upload.path,
                faces,
                upload.digest,
                tuple(face.number for face in faces),
                threshold,
                model_key,
                detector,
            )
            if dropped
            else result.preview_png
        )
        st.image(
            preview_png,
            caption=f"{result.width}×{result.height} px, "
            f"{len(faces)} face{'s' if len(faces) != 1 else ''}"
            + (f" ({len(result.faces) - len(faces)} dropped)" if dropped else "")
            + f", {result.seconds:.2f} s",
            width="stretch",
        )
    with side_column:
        if not result.faces:
            st.info(
                f"No face found in {escape_markdown(shorten(upload.name))}. "
                + no_face_advice(detector),
                icon=":material/face:",
            )
            offer_fallback(st, key=f"try-fallback-{upload.key}")
        else:
            labels = ", ".join(f"#{f.number} {f.shown_label(threshold)}" for f in faces)
            st.markdown(f"**{escape_markdown(labels)}**" if labels else "*All boxes dropped.*")
            if any(f.uncertain(threshold) for f in faces):
                st.caption(
                    f"*uncertain*: the most likely emotion has a probability below "
                    f"{percent(threshold, 0)}; below that, this model's top guess was "
                    "wrong more often than right on PublicTest (model card: "
                    + (
                        "against the FER+ crowd's majority"
                        if active.card is not None
                        and active.card.calibration.get("labels") == "ferplus-majority"
                        else "against FER2013's labels"
                    )
                    + "). "
                    "The two leading emotions are named."
                )
            st.multiselect(
                "Not a face? Drop these boxes before downloading",
                [f.number for f in result.faces],
                key=f"drop-{upload.key}",
                format_func=lambda number: f"#{number}",
                help="Dropped boxes leave the picture, the table and every download.",
            )
            if len(faces) == 1:
                show_bars(faces, f"bars-{upload.key}")
    if len(faces) > 1:  # several faces: the bars get the full width
        show_bars(faces, f"bars-{upload.key}")
    if faces:
        table = pd.DataFrame(result.rows(dropped), columns=RESULT_COLUMNS).drop(columns="file")
        st.dataframe(
            table,
            hide_index=True,
            height=table_height(len(table)),
            column_config={
                "confidence": st.column_config.ProgressColumn(
                    "confidence", min_value=0.0, max_value=1.0, format="percent"
                ),
                **{e: st.column_config.NumberColumn(e, format="%.3f") for e in EMOTIONS},
            },
        )
        if st.toggle(
            "Why? Show the crop the model saw and what its answer rests on",
            key=f"explain-{upload.key}",
        ):
            show_explanations(upload, faces)
    stem = download_stem(upload.name)
    columns = st.columns(3)
    if faces:
        columns[0].download_button(
            "Annotated PNG",  # drawn from the file when clicked, not now
            data=lambda: annotated_png(upload.path.read_bytes(), faces, threshold),
            file_name=f"{stem}_annotated.png",
            mime="image/png",
            on_click="ignore",
            key=f"png-{upload.key}",
            icon=":material/image:",
        )
    columns[1].download_button(
        "Results CSV",
        data=rows_to_csv(result.rows(dropped), ALL_PHOTO_COLUMNS),
        file_name=f"{stem}_emotions.csv",
        mime="text/csv",
        on_click="ignore",
        key=f"csv-{upload.key}",
        icon=":material/table:",
    )
    columns[2].download_button(
        "Results JSON",
        data=to_json_bytes(result.as_json(model.name, dropped)),
        file_name=f"{stem}_emotions.json",
        mime="application/json",
        on_click="ignore",
        key=f"json-{upload.key}",
        icon=":material/data_object:",
    )
    return result.rows(dropped)


class AnalysisCancelled(Exception):
    def __init__(self, key):
        super().__init__("cancelled")
        self.key = key


def analyze_video_upload(upload: StoredUpload, data_key: str) -> dict:
    """Analyse an uploaded video once (per settings); results live in session_state, the
    annotated video in the session's folder on disk (never its bytes in memory)."""
    store = st.session_state.setdefault(VIDEO_RESULTS_KEY, {})
    key = (data_key, int(every), bool(write_video), model_key, detector)
    if key in store and (store[key].video_path is None or store[key].video_path.exists()):
        return store[key]
    cancelled = st.session_state.setdefault(CANCELLED_KEY, set())
    name = escape_markdown(shorten(upload.name, 60))
    if key in cancelled:
        raise AnalysisCancelled(key)
    path = upload.path
    progress = st.progress(0.0, text=f"Analysing {name}…")
    # A click stops this script run at its next progress update (Streamlit reruns at once);
    # the rerun sees the flag and skips the analysis. The partial annotated video is deleted.
    cancel_slot = st.empty()
    cancel_slot.button(
        "Cancel the analysis",
        key=f"cancel-{upload.key}",
        icon=":material/cancel:",
        on_click=cancelled.add,
        args=(key,),
    )
    started = time.monotonic()

    def on_progress(fraction: float, message: str) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        elapsed = time.monotonic() - started
        eta = (
            f" · {duration(elapsed / fraction * (1 - fraction))} left"
            if 0.02 <= fraction < 1
            else ""
        )
        progress.progress(fraction, text=f"{name}: {message}{eta}")

    try:
        result = analyze_video_file(
            path,
            session_folder(),
            video_recognizer(model, detector),
            every=int(every),
            write_video=bool(write_video),
            progress=on_progress,
            max_seconds=max_video_seconds(),
        )
    finally:
        progress.empty()
        cancel_slot.empty()
    store[key] = result
    # Keep the last few results only; an evicted result's annotated video is deleted.
    while len(store) > 4:
        evicted = store.pop(next(iter(store)))
        if evicted.video_path is not None:
            evicted.video_path.unlink(missing_ok=True)
    return result


def show_video(upload: StoredUpload) -> None:
    file_heading(upload)
    try:
        result = analyze_video_upload(upload, upload.digest)
    except AnalysisCancelled as cancelled:
        st.info("Analysis cancelled.", icon=":material/cancel:")
        if st.button("Analyse it", key=f"again-{upload.key}", icon=":material/replay:"):
            st.session_state[CANCELLED_KEY].discard(cancelled.key)
            st.rerun()
        return
    except FerError as exc:  # named as the visitor named it, not as it is stored
        show_error(
            str(exc).replace(upload.path.name, shorten(upload.name)), icon=":material/broken_image:"
        )
        return
    frames, info = result.frames, result.info
    if result.cut_short:
        st.warning(escape_markdown(result.cut_short), icon=":material/warning:")
    duration = info.get("duration_s")
    st.caption(
        f"{info['width']}×{info['height']} px, {info['fps']:.2f} fps"
        + (f", {duration:.1f} s" if duration else "")
        + f"; analysed every {int(every)} frame{'s' if every > 1 else ''}."
    )
    if frames.empty:
        st.info(
            f"No face found in any analysed frame of {escape_markdown(shorten(upload.name))}.",
            icon=":material/face:",
        )
    else:
        faces = face_summary(frames)
        st.markdown("**Faces** (ids follow a face from frame to frame)")
        st.dataframe(
            faces,
            hide_index=True,
            column_config={
                "mean_probability": st.column_config.NumberColumn(format="%.2f"),
                "first_s": st.column_config.NumberColumn("first seen (s)", format="%.2f"),
                "last_s": st.column_config.NumberColumn("last seen (s)", format="%.2f"),
            },
        )
        st.plotly_chart(
            timeline_figure(frames),
            key=f"timeline-{upload.key}",
            config={"displayModeBar": False},
        )
    segments = segment_summary(frames, float(segment_seconds), start_s=0.0)
    if not frames.empty:
        st.markdown(f"**Dominant emotion per {float(segment_seconds):g} s segment**")
        st.dataframe(
            segments,
            hide_index=True,
            column_config={
                "start_s": st.column_config.NumberColumn("start (s)", format="%.2f"),
                "end_s": st.column_config.NumberColumn("end (s)", format="%.2f"),
                "mean_probability": st.column_config.NumberColumn(format="%.2f"),
                **{e: st.column_config.NumberColumn(e, format="%.2f") for e in EMOTIONS},
            },
        )
    video_path = result.video_path
    if video_path is not None:
        with st.expander("Annotated video", expanded=not frames.empty):
            st.video(video_path, format=result.video_mime)  # a file on disk
    stem = download_stem(upload.name)
    columns = st.columns(3)
    columns[0].download_button(
        "Per-frame CSV",
        data=frame_to_csv_bytes(frames),
        file_name=f"{stem}_frames.csv",
        mime="text/csv",
        on_click="ignore",
        key=f"vcsv-{upload.key}",
        icon=":material/table:",
    )
    columns[1].download_button(
        "Results JSON",
        data=frames_to_json(frames, info, segments, model.name, int(every)),
        file_name=f"{stem}_emotions.json",
        mime="application/json",
        on_click="ignore",
        key=f"vjson-{upload.key}",
        icon=":material/data_object:",
    )
    if video_path is not None:
        columns[2].download_button(
            "Annotated video",
            data=video_path.read_bytes,  # read when clicked, not now
            file_name=f"{stem}_annotated{video_path.suffix}",
            mime=result.video_mime,
            on_click="ignore",
            key=f"vvid-{upload.key}",
            icon=":material/movie:",
        )
    save_to_history(
        frames.to_dict("records"),
        "video",
        upload.name,
        key=f"video-{upload.digest}-{model_key}-{detector}-{int(every)}",
        detector=detector,
        model=model,
    )


photo_results: list[PhotoResult] = []
photo_rows: list[dict] = []
photo_ids: list[str] = []
for upload in uploads:
    kind = kind_of(upload.name)
    with user_errors(f"{shorten(upload.name)}: "):
        if kind == "image":
            with st.spinner(f"Analysing {escape_markdown(shorten(upload.name))}…"):
                result = cached_photo(upload.path, upload.digest, upload.name, model_key, detector)
            photo_results.append(result)
            photo_ids.append(upload.key)
            photo_rows.extend(show_photo(upload, result))
        elif kind == "video":
            show_video(upload)
        else:
            show_error(
                f"{shorten(upload.name)}: not a supported file type. Upload photos "
                f"({format_names(IMAGE_SUFFIXES)}) or videos ({format_names(VIDEO_SUFFIXES)})."
            )

if len(photo_results) > 1:
    st.subheader("All photos", divider="gray")
    summary = pd.DataFrame(
        [
            {
                "file": r.name,
                "faces": len(kept) if r.ok else None,
                "labels": ", ".join(f.shown_label(threshold) for f in kept) if r.ok else "",
                "problem": r.error
                or ("no face found" if not r.faces else "all boxes dropped" if not kept else ""),
            }
            for r, kept in ((r, r.kept(dropped_of(i))) for r, i in zip(photo_results, photo_ids))
        ]
    )
    st.dataframe(summary, hide_index=True, height=table_height(len(summary)))
    left, right = st.columns(2)
    # Every photo has rows here: one per face kept, or one saying why it has none.
    left.download_button(
        "All results CSV",
        data=rows_to_csv(photo_rows, ALL_PHOTO_COLUMNS),
        file_name="emotions.csv",
        mime="text/csv",
        on_click="ignore",
        key="all-csv",
        icon=":material/table:",
    )
    right.download_button(
        "All results JSON",
        data=to_json_bytes(
            [r.as_json(model.name, dropped_of(i)) for r, i in zip(photo_results, photo_ids)]
        ),
        file_name="emotions.json",
        mime="application/json",
        on_click="ignore",
        key="all-json",
        icon=":material/data_object:",
    )
if photo_results:
    save_to_history(
        photo_rows,
        "photos",
        photo_results[0].name if len(photo_results) == 1 else f"{len(photo_results)} photos",
        key="photos-" + "-".join(photo_ids) + f"-{model_key}-{detector}",
        detector=detector,
        model=model,
    )
