"""Photos and videos: every face boxed and labelled, probabilities, tables and downloads."""

import hashlib
from dataclasses import replace
from pathlib import Path

import pandas as pd
import streamlit as st

from app_lib.charts import probability_bars, timeline_figure
from app_lib.common import require_active_model, save_upload, user_errors
from app_lib.detector import detector_choice
from app_lib.uploads import (IMAGE_TYPES, PHOTO_DETECTOR, RESULT_COLUMNS, VIDEO_DETECTOR,
                             VIDEO_TYPES, PhotoResult, analyze_photo, annotated_png,
                             frames_to_json, kind_of, rows_to_csv, to_json_bytes)
from fer_core import EMOTIONS, FerError, Recognizer
from fer_core.faces.haar import HAAR_PRESETS
from fer_core.timeline import face_summary, segment_summary

VIDEO_RESULTS_KEY = "video_results"

st.title("Photos & videos")
st.caption("Upload one or several photos (JPEG, PNG, WebP, BMP) or videos (MP4, AVI, MOV, "
           "WebM). Every face found is boxed and labelled with its most likely emotion.")

active = require_active_model()
model = active.model
with st.sidebar:
    detector = detector_choice(st)
model_key = f"{model.path}:{model.path.stat().st_mtime_ns if model.path.exists() else 0}"

uploads = st.file_uploader("Photos or videos", type=IMAGE_TYPES + VIDEO_TYPES,
                           accept_multiple_files=True, key="upload_files")

with st.expander("Video settings", expanded=False):
    every = st.number_input("Analyse every N-th frame", min_value=1, max_value=120, value=3,
                            step=1, key="video_every",
                            help="1 analyses every frame (slowest); 3 analyses 10 of 30 frames "
                                 "per second.")
    segment_seconds = st.number_input("Segment length for the summary (seconds)",
                                      min_value=0.2, max_value=60.0, value=1.0, step=0.5,
                                      key="video_segment")
    write_video = st.checkbox("Make an annotated video to download", value=True,
                              key="video_write")

if not uploads:
    st.info("Drop photos or videos above. Try a clear, frontal face in good light.",
            icon=":material/upload:")
    st.stop()


@st.cache_data(show_spinner=False, max_entries=64)
def cached_photo(data: bytes, name: str, model_key: str, detector: str) -> PhotoResult:
    # ``model_key`` and ``detector`` keep results of different models and detectors apart.
    return analyze_photo(data, name, _recognizer("photo", detector))


def _recognizer(kind: str, detector: str) -> Recognizer:
    """Haar keeps the page's own size limits (app_lib.uploads); other detectors scale the
    image to their input themselves."""
    if detector == "haar":  # the photo preset, within the page's size limits for detection
        limits = PHOTO_DETECTOR if kind == "photo" else VIDEO_DETECTOR
        return Recognizer(model, detector_settings=replace(HAAR_PRESETS["photo"],
                                                           detect_width=limits.detect_width))
    return Recognizer(model, preset="photo", detector=detector)


def show_photo(upload, data: bytes, result: PhotoResult) -> None:
    st.subheader(upload.name, divider="gray")
    if not result.ok:
        st.error(f"{result.error}", icon=":material/broken_image:")
        return
    image_column, side_column = st.columns([3, 2], gap="large")
    with image_column:
        st.image(result.preview_png, caption=f"{upload.name}: {result.width}×{result.height} px, "
                 f"{len(result.faces)} face{'s' if len(result.faces) != 1 else ''}, "
                 f"{result.seconds:.2f} s", width="stretch")
    titles = [f"face #{f['face']}: {f['label']}" for f in result.faces]
    probabilities = [[f[e] for e in EMOTIONS] for f in result.faces]
    with side_column:
        if not result.faces:
            st.info(f"No face found in {upload.name}. The detector finds frontal faces at "
                    "least about 30 pixels wide; try a sharper, frontal, well-lit photo.",
                    icon=":material/face:")
        else:
            labels = ", ".join(f"#{f['face']} {f['label']}" for f in result.faces)
            st.markdown(f"**{labels}**")
            if len(result.faces) == 1:
                st.plotly_chart(probability_bars(probabilities, titles, columns=1),
                                key=f"bars-{upload.file_id}", config={"displayModeBar": False})
    if len(result.faces) > 1:  # several faces: the bars get the full width
        st.plotly_chart(probability_bars(probabilities, titles, columns=4),
                        key=f"bars-{upload.file_id}", config={"displayModeBar": False})
    if result.faces:
        table = pd.DataFrame(result.rows(), columns=RESULT_COLUMNS).drop(columns="file")
        st.dataframe(table, hide_index=True, column_config={
            "confidence": st.column_config.ProgressColumn("confidence", min_value=0.0,
                                                          max_value=1.0, format="percent"),
            **{e: st.column_config.NumberColumn(e, format="%.3f") for e in EMOTIONS}})
    stem = Path(upload.name).stem
    columns = st.columns(3)
    if result.faces:
        columns[0].download_button(
            "Annotated PNG", data=lambda: annotated_png(data, result.faces),
            file_name=f"{stem}_annotated.png", mime="image/png", on_click="ignore",
            key=f"png-{upload.file_id}", icon=":material/image:")
    columns[1].download_button(
        "Results CSV", data=rows_to_csv(result.rows()), file_name=f"{stem}_emotions.csv",
        mime="text/csv", on_click="ignore", key=f"csv-{upload.file_id}",
        icon=":material/table:")
    columns[2].download_button(
        "Results JSON", data=to_json_bytes(result.as_json(model.name)),
        file_name=f"{stem}_emotions.json", mime="application/json", on_click="ignore",
        key=f"json-{upload.file_id}", icon=":material/data_object:")


def analyse_video(upload, data_key: str) -> dict:
    """Analyse an uploaded video once (per settings); results live in session_state."""
    from fer_core.video import analyze_video, video_info
    from fer_core.video_writer import AnnotatedVideoWriter

    store = st.session_state.setdefault(VIDEO_RESULTS_KEY, {})
    key = (data_key, int(every), bool(write_video), model_key, detector)
    if key in store:
        return store[key]
    path = save_upload(upload)
    info = video_info(path)
    progress = st.progress(0.0, text=f"Analysing {upload.name}…")

    def on_progress(fraction: float, message: str) -> None:
        progress.progress(min(max(fraction, 0.0), 1.0), text=f"{upload.name}: {message}")

    writer = None
    if write_video:
        writer = AnnotatedVideoWriter(path.with_name(path.stem + f"_annotated_every{every}"),
                                      fps=(info["fps"] or 25.0) / every)
    try:
        frames = analyze_video(path, recognizer=_recognizer("video", detector), every=int(every),
                               progress=on_progress,
                               on_frame=writer.on_frame if writer else None)
    finally:
        video_path = writer.close() if writer else None
    progress.empty()
    result = {"frames": frames, "info": info,
              "video": video_path.read_bytes() if video_path else None,
              "video_mime": writer.mime if writer else None,
              "video_name": video_path.name if video_path else None}
    store[key] = result
    # Keep the last few videos only (each holds its annotated copy in memory).
    while len(store) > 4:
        store.pop(next(iter(store)))
    return result


def show_video(upload) -> None:
    st.subheader(upload.name, divider="gray")
    digest = hashlib.sha256(upload.getbuffer()).hexdigest()
    try:
        result = analyse_video(upload, digest)
    except FerError as exc:
        st.error(str(exc), icon=":material/broken_image:")
        return
    frames, info = result["frames"], result["info"]
    duration = info.get("duration_s")
    st.caption(f"{info['width']}×{info['height']} px, {info['fps']:.2f} fps"
               + (f", {duration:.1f} s" if duration else "")
               + f"; analysed every {int(every)} frame{'s' if every > 1 else ''}.")
    if frames.empty:
        st.info(f"No face found in any analysed frame of {upload.name}.", icon=":material/face:")
    else:
        faces = face_summary(frames)
        st.markdown("**Faces** (ids follow a face from frame to frame)")
        st.dataframe(faces, hide_index=True, column_config={
            "mean_probability": st.column_config.NumberColumn(format="%.2f"),
            "first_s": st.column_config.NumberColumn("first seen (s)", format="%.2f"),
            "last_s": st.column_config.NumberColumn("last seen (s)", format="%.2f")})
        st.plotly_chart(timeline_figure(frames), key=f"timeline-{upload.file_id}",
                        config={"displayModeBar": False})
    segments = segment_summary(frames, float(segment_seconds), start_s=0.0)
    if not frames.empty:
        st.markdown(f"**Dominant emotion per {float(segment_seconds):g} s segment**")
        st.dataframe(segments, hide_index=True, column_config={
            "start_s": st.column_config.NumberColumn("start (s)", format="%.2f"),
            "end_s": st.column_config.NumberColumn("end (s)", format="%.2f"),
            "mean_probability": st.column_config.NumberColumn(format="%.2f"),
            **{e: st.column_config.NumberColumn(e, format="%.2f") for e in EMOTIONS}})
    if result["video"]:
        with st.expander("Annotated video", expanded=not frames.empty):
            st.video(result["video"], format=result["video_mime"])
    stem = Path(upload.name).stem
    columns = st.columns(3)
    columns[0].download_button(
        "Per-frame CSV", data=frames.to_csv(index=False).encode(),
        file_name=f"{stem}_frames.csv", mime="text/csv", on_click="ignore",
        key=f"vcsv-{upload.file_id}", icon=":material/table:")
    columns[1].download_button(
        "Results JSON", data=frames_to_json(frames, info, segments, model.name, int(every)),
        file_name=f"{stem}_emotions.json", mime="application/json", on_click="ignore",
        key=f"vjson-{upload.file_id}", icon=":material/data_object:")
    if result["video"]:
        columns[2].download_button(
            "Annotated video", data=result["video"], file_name=result["video_name"],
            mime=result["video_mime"], on_click="ignore", key=f"vvid-{upload.file_id}",
            icon=":material/movie:")


photo_results: list[PhotoResult] = []
for upload in uploads:
    kind = kind_of(upload.name)
    with user_errors(f"{upload.name}: "):
        if kind == "image":
            data = upload.getvalue()
            with st.spinner(f"Analysing {upload.name}…"):
                result = cached_photo(data, upload.name, model_key, detector)
            photo_results.append(result)
            show_photo(upload, data, result)
        elif kind == "video":
            show_video(upload)
        else:
            st.error(f"{upload.name}: not a supported file type. Upload photos "
                     f"({', '.join(IMAGE_TYPES)}) or videos ({', '.join(VIDEO_TYPES)}).")

if len(photo_results) > 1:
    st.subheader("All photos", divider="gray")
    rows = [row for result in photo_results for row in result.rows()]
    summary = pd.DataFrame([{"file": r.name, "faces": len(r.faces) if r.ok else None,
                             "labels": ", ".join(f["label"] for f in r.faces) if r.ok else "",
                             "problem": r.error or ("no face found" if not r.faces else "")}
                            for r in photo_results])
    st.dataframe(summary, hide_index=True)
    left, right = st.columns(2)
    left.download_button("All results CSV", data=rows_to_csv(rows), file_name="emotions.csv",
                         mime="text/csv", on_click="ignore", key="all-csv",
                         icon=":material/table:")
    right.download_button("All results JSON",
                          data=to_json_bytes([r.as_json(model.name) for r in photo_results]),
                          file_name="emotions.json", mime="application/json",
                          on_click="ignore", key="all-json", icon=":material/data_object:")
