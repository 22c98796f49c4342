"""Live webcam: faces boxed and labelled on the returned video, emotion bars beside it."""

import functools
import time
from datetime import datetime

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from app_lib.live.limit import (
    LIVE_STREAMS,
    lost_place_message,
    max_live_streams,
    refusal_message,
)
from app_lib.live.processor import (
    ICE_PATIENCE_SECONDS,
    ICE_SERVERS_ENV,
    MAX_BAR_FACES,
    LiveProcessor,
    bar_faces,
    describe_faces,
    faces_too_small,
    frontend_rtc,
    no_connection_message,
    rtc_configuration,
    server_rtc,
    showing_note,
)
from app_lib.live.recording import (
    HISTORY_SECONDS,
    MAX_RECORDED_FRAMES,
    CaptureGuard,
    capture_face,
    start_recording,
)
from app_lib.live.relay import install as install_newest_frame_relay
from app_lib.model.model_state import require_active_model
from app_lib.records.shared_store import (
    NOBODY,
    model_name,
    person_label,
    pick_person,
    records,
    viewer,
)
from app_lib.server.secure_context import insecure_camera_message, page_security
from app_lib.ui.charts import probability_bars, timeline_figure
from app_lib.ui.detector import detector_choice, fallback_note, missing_for, offer_fallback
from app_lib.ui.detector import label as detector_label
from app_lib.ui.settings import keep, kept
from app_lib.ui.text import escape_markdown, user_errors
from fer_core import EMOTIONS, FerError
from fer_core.data.image import encode_png
from fer_core.recognition.uncertainty import threshold_of

PROCESSOR_KEY = "live_processor"
WEBRTC_KEY = "live-emotions"
REFRESH_SECONDS = 0.3  # the panel beside the video refreshes about three times a second
# The recording's count refreshes once a second; the last-minute chart every 2 s (building the
# figure costs tens of milliseconds of the server's time, which the video threads need).
RECORDING_REFRESH_SECONDS = 1.0
HISTORY_REFRESH_SECONDS = 2.0
SNAPSHOT_KEY = "live_snapshot"
CONNECTING_KEY = "live_connecting_since"
TURN_AWAY_KEY = "live_turn_away"  # this session's START was refused: stop the stream
REFUSED_KEY = "live_refused_limit"  # the limit it was refused at, for the message
SAVE_KEY = "live-save"  # the "Save to history" toggle
SAVE_PERSON_KEY = "live-save-person"
THUMBNAILS_KEY = "live-save-thumbnails"  # keep a 48x48 image of each face (off by default)
SAVE_PROBLEM_KEY = "live_save_problem"  # why the last recording could not be saved
CAPTURE_KEY = "live_capture_result"  # what the last capture did
CAPTURE_EMOTION_KEY = "live-capture-emotion"
CAPTURE_GUARD_KEY = "live_capture_guard"  # one capture per press, for this browser session
AUTO = "auto"
MIN_FACE_CHOICES = [AUTO, 20, 30, 40, 60, 80, 120, 160]

st.title("Live webcam")
security = page_security()
if not security.secure_context:
    # navigator.mediaDevices is undefined on such a page: START could only fail.
    st.error(insecure_camera_message(security), icon=":material/no_encryption:")
    st.stop()

st.caption(
    "Press **START** and allow the camera. Each frame is analysed on this machine; when "
    "the model is slower than the camera, frames are skipped (never queued), so what you "
    "see is always the present."
)

active = require_active_model()

try:
    rtc_config = rtc_configuration()
except FerError as exc:
    st.error(
        f"{exc} Using no ICE servers (works when the browser runs on this machine or network).",
        icon=":material/error:",
    )
    rtc_config = {"iceServers": []}

with st.sidebar:
    st.markdown("#### Live settings")
    detector = detector_choice(st)
    kept("live_smoothing", 0.5, valid=lambda v: isinstance(v, float) and 0.0 <= v <= 0.95)
    smoothing = keep(
        "live_smoothing",
        st.slider(
            "Smoothing",
            min_value=0.0,
            max_value=0.95,
            step=0.05,
            key="live_smoothing",
            help="How much each face's probabilities carry over from the previous frame: 0 shows "
            "every frame's raw output (jittery), 0.9 changes slowly.",
        ),
    )
    kept("live_min_face", AUTO, valid=lambda v: v in MIN_FACE_CHOICES)
    min_face = keep(
        "live_min_face",
        st.select_slider(
            "Smallest face (px)",
            options=MIN_FACE_CHOICES,
            key="live_min_face",
            format_func=lambda v: "detector's own" if v == AUTO else f"{v} px",
            help="Faces smaller than this (box side, in pixels of the video arriving) are not "
            "looked for. The detector's own: Haar looks from 60 px up, BlazeFace has no "
            "limit. Lower it when the browser sends a small picture; raise it to ignore "
            "faces in the background.",
        ),
    )

# One processor per viewer; a new one when the active model changes (the recording and the
# face history move over to it).
processor = st.session_state.get(PROCESSOR_KEY)
if processor is None or processor.model is not active.model:
    processor = LiveProcessor(
        active.model,
        smoothing=smoothing,
        detector=detector,
        recorder=processor.recorder if processor is not None else None,
    )
    st.session_state[PROCESSOR_KEY] = processor
with user_errors():
    processor.set_smoothing(smoothing)
    # switches live: the next frame uses it
    processor.set_detector(detector, None if min_face == AUTO else int(min_face))

video_column, panel_column = st.columns([3, 2], gap="large")
with video_column:
    from streamlit_webrtc import WebRtcMode, webrtc_streamer

    # streamlit-webrtc resets a context that it believes went unrendered for a script run
    # (a visitor who left the page and came back). It decides that from Streamlit's count of
    # finished runs, which the server updates asynchronously; with several sessions streaming
    # at once the count can jump by two between consecutive runs, and the check then kills a
    # stream that has just started: START does nothing (seen in the concurrent-sessions browser
    # test). Returning to this page needs no such check: the browser closes the old
    # connection, whose worker then stops itself, and the component comes back stopped, which
    # streamlit-webrtc's own stop branch cleans up. So the check is switched off here.
    previous = st.session_state.get(WEBRTC_KEY)
    if previous is not None and hasattr(previous, "_last_rendered_run_count"):
        previous._last_rendered_run_count = None
    # Every stream's frames through a relay that keeps the newest, not a queue: a server past
    # its capacity drops frames instead of falling seconds behind (app_lib/live/relay.py).
    install_newest_frame_relay()
    context = webrtc_streamer(
        key=WEBRTC_KEY,
        mode=WebRtcMode.SENDRECV,
        frontend_rtc_configuration=frontend_rtc(rtc_config),
        server_rtc_configuration=server_rtc(rtc_config),
        media_stream_constraints={
            "video": {"width": {"ideal": 640}, "height": {"ideal": 480}},
            "audio": False,
        },
        video_frame_callback=processor,
        # Turned away (FER_MAX_LIVE_STREAMS): the component stops the stream it started.
        desired_playing_state=False if st.session_state.get(TURN_AWAY_KEY) else None,
        async_processing=True,  # drop stale frames instead of queueing them
    )
    if rtc_config["iceServers"]:
        st.caption(
            f"ICE servers from {ICE_SERVERS_ENV}: "
            + ", ".join(u for s in rtc_config["iceServers"] for u in s["urls"])
            + (
                " (every stream through the relay)"
                if rtc_config.get("iceTransportPolicy") == "relay"
                else ""
            )
        )
    else:
        st.caption(
            "Direct connection only (no STUN/TURN): it works when the browser reaches this "
            "server directly (the same machine or network). Across networks the administrator "
            f"sets {ICE_SERVERS_ENV} with a TURN relay (docs/sharing.md)."
        )

playing = bool(context.state.playing)
wants_stream = playing or bool(context.state.signalling)
session_key = get_script_run_ctx().session_id
limit = None  # a setting that cannot be read is shown, and no limit applies
if st.session_state.get(TURN_AWAY_KEY):
    if not wants_stream:  # stopped: START is offered again
        st.session_state.pop(TURN_AWAY_KEY)
        st.rerun()
elif wants_stream:
    with user_errors():
        limit = max_live_streams()
    if not LIVE_STREAMS.admit(session_key, limit):
        st.session_state[TURN_AWAY_KEY] = True
        st.session_state[REFUSED_KEY] = limit
        st.rerun()
    st.session_state.pop(REFUSED_KEY, None)
    # Every frame asks again before it is analysed: a stream that paused past HOLD_S and
    # found its place taken is not analysed until one frees.
    processor.admission = functools.partial(LIVE_STREAMS.frame, session_key, limit)
else:
    LIVE_STREAMS.release(session_key)
if not playing:
    processor.reset()
# START pressed, no stream yet: when the connection began (ICE can fail silently).
if context.state.signalling and not playing and not st.session_state.get(TURN_AWAY_KEY):
    st.session_state.setdefault(CONNECTING_KEY, time.time())
else:
    st.session_state.pop(CONNECTING_KEY, None)


@st.fragment(run_every=REFRESH_SECONDS)
def live_panel():
    snapshot = processor.holder.latest()
    fresh = snapshot is not None and time.time() - snapshot.updated < 3.0
    refused_limit = st.session_state.get(REFUSED_KEY)
    if refused_limit is not None and not fresh:
        st.error(refusal_message(refused_limit), icon=":material/group_off:")
        return
    held_back_at = processor.held_back_at
    if limit and held_back_at is not None and time.time() - held_back_at < 3.0 and not fresh:
        st.error(lost_place_message(limit), icon=":material/group_off:")
        return
    connecting_since = st.session_state.get(CONNECTING_KEY)
    if connecting_since is not None and not fresh:
        waited = time.time() - connecting_since
        if waited < ICE_PATIENCE_SECONDS:
            st.info("Connecting to the server…", icon=":material/hourglass_empty:")
        else:
            st.error(no_connection_message(waited, rtc_config), icon=":material/wifi_off:")
        return
    if not playing and not fresh:
        st.info(
            "The camera is off. Press START under the video. If the video area shows an "
            "error instead, the browser refused the camera or found none: allow the camera for "
            "this site (the camera icon in the address bar) or connect one, then press START.",
            icon=":material/videocam_off:",
        )
        return
    if not fresh:
        st.info("Waiting for video frames…", icon=":material/hourglass_empty:")
        return
    if snapshot.error:
        st.error(f"The last frame could not be analysed: {snapshot.error}")
    fps_col, latency_col, faces_col = st.columns(3)
    # The unit sits in the label: a value like "15.1 fps" is cut to "15.1 …" in a third of
    # the panel.
    fps_col.metric(
        "Frames/s",
        f"{snapshot.fps:.1f}",
        help="Frames analysed per second over the last 3 seconds.",
    )
    latency_col.metric(
        "Latency",
        f"{snapshot.latency_ms:.0f} ms",
        help=f"One frame: detection {snapshot.detect_ms:.0f} ms, classification "
        f"{snapshot.classify_ms:.0f} ms, plus drawing.",
    )
    faces_col.metric("Faces", len(snapshot.faces), help=f"Detector: {snapshot.detector}.")
    width, height = snapshot.frame_size
    st.caption(
        f"Video arriving at **{width}×{height}** (browsers lower it under load) · "
        f"detector: {detector_label(snapshot.detector)}."
    )
    if snapshot.skipped:
        st.caption(
            f"{snapshot.skipped} frames of this stream arrived late (the server or the network "
            "was busy) and were not analysed, so that the video stays current instead of "
            "falling behind."
        )
    with st.container(key="live-summary"):
        top = snapshot.top
        if top is None and faces_too_small(snapshot):
            st.warning(
                f"Faces too small at this resolution: the browser sends {width}×{height}, "
                f"and the detector looks for faces of {snapshot.smallest_face} px and "
                "more. Lower **Smallest face** in the sidebar, switch to BlazeFace, or "
                "close other tabs and programs so that the browser sends a larger "
                "picture.",
                icon=":material/photo_size_select_small:",
            )
        elif top is None:
            st.markdown("No face in view. Face the camera, in good light.")
            missing = missing_for(
                st.session_state.setdefault("live_face_clock", {}),
                False,
                snapshot.detector,
                time.time(),
            )
            note = fallback_note(snapshot.detector, missing)
            if note:
                st.caption(note)
                if offer_fallback(st, key="live-try-fallback"):
                    st.rerun(scope="app")
        else:
            missing_for(
                st.session_state.setdefault("live_face_clock", {}),
                True,
                snapshot.detector,
                time.time(),
            )
            st.markdown(f"### {snapshot.shown_label(top)}")  # "uncertain" where the video says so
            st.caption(" · ".join(describe_faces(snapshot)))
    if snapshot.faces:
        faces, note = bar_faces(snapshot)
        figure = probability_bars(
            [f.probs.tolist() for f in faces],
            [f"face #{f.face_id}: {snapshot.shown_label(f)}" for f in faces],
            columns=min(len(faces), 2),
            height_per_row=250,
        )
        st.plotly_chart(figure, key="live-bars", config={"displayModeBar": False})
        if note:
            st.caption(f"Bars of the {MAX_BAR_FACES} most confident faces: {note}.")


@st.fragment(run_every=HISTORY_REFRESH_SECONDS)
def history_panel():
    history = processor.recorder.history(max_faces=MAX_BAR_FACES)
    if history is None:
        return
    st.markdown("##### Last minute")
    faces = list(history["face_id"].unique())  # those on screen first, then the latest gone
    note = showing_note(len(faces), history.attrs["faces_seen"])
    if note:
        st.caption(f"The faces seen most recently: {note}.")
    figure = timeline_figure(
        history,
        max_faces=MAX_BAR_FACES,
        x_title="seconds before now",
        titles={f: f"face #{f}" for f in faces},
        faces=faces,
    )
    figure.update_xaxes(range=[-HISTORY_SECONDS, 0])
    # the colours are the bars' above, which name them: no legend to squeeze the chart
    figure.update_layout(
        showlegend=False,
        height=min(figure.layout.height, 180 * len(history["face_id"].unique()) + 60),
    )
    st.plotly_chart(figure, key="live-history", config={"displayModeBar": False})


def _take_snapshot() -> None:
    snapshot = processor.holder.latest()
    if snapshot is None or snapshot.image is None:
        st.session_state[SNAPSHOT_KEY] = None
        return
    st.session_state[SNAPSHOT_KEY] = (encode_png(snapshot.image), datetime.now())


def _start_recording(threshold) -> None:
    """Record; with "Save to history" on, also save every recorded frame to the records
    database while it records (a new session, written in batches by a thread of its own)."""
    store = records() if st.session_state.get(SAVE_KEY) else None
    start = start_recording(
        processor.recorder,
        threshold,
        store,
        viewer(),
        thumbnails=bool(st.session_state.get(THUMBNAILS_KEY)),
        saving_for=_saving_for(store) if store is not None else "",
        person_id=st.session_state.get(SAVE_PERSON_KEY),
        detector=processor.detector,
        model=model_name(active.model),
    )
    if start.problem:
        st.session_state[SAVE_PROBLEM_KEY] = start.problem
    elif start.started:
        st.session_state.pop(SAVE_PROBLEM_KEY, None)


def _saving_for(store) -> str:
    """Whom Record saves for, in words: the chosen person, or nobody in particular."""
    person_id = st.session_state.get(SAVE_PERSON_KEY)
    people = {p.id: p for p in store.people(viewer())} if person_id is not None else {}
    person = people.get(person_id)
    return person_label(person) if person else f"{NOBODY} in particular"


def _plan_line(store) -> str:
    """Beside Record: whether the next recording is saved to history, and for whom."""
    if store is None:
        return ""
    if not st.session_state.get(SAVE_KEY):
        return (
            'Recordings are not saved to history ("Save recordings to history" is off, '
            "below): only this page's downloads keep them."
        )
    return f"Recordings are saved to history for {_saving_for(store)}."


def _saving_line(writer, whom: str) -> str:
    line = (
        "Saving to history"
        + (f" for {whom}" if whom else "")
        + f" as session #{writer.session_id}: {writer.written:,} rows written."
    )
    if writer.error:
        line += f" The database refused the last batch ({writer.error}); retrying."
    if writer.dropped:
        line += f" {writer.dropped:,} frames could not be kept (the database fell behind)."
    return line


@st.fragment(run_every=RECORDING_REFRESH_SECONDS)
def recording_status(store):
    """While recording: the count, once a second, and the stop button. When the recording
    ends (stopped, or full), the whole page is drawn again with its downloads."""
    recorder = processor.recorder
    if not recorder.recording:
        st.rerun()
    st.button(
        "Stop recording",
        icon=":material/stop_circle:",
        key="live-record-stop",
        on_click=recorder.stop,
        type="primary",
    )
    st.caption(f":red[●] Recording: {recorder.frame_count:,} frames, {recorder.seconds():.0f} s.")
    if recorder.sink is not None:
        st.caption(escape_markdown(_saving_line(recorder.sink, recorder.saving_for)))
    elif store is not None:
        st.caption("Not being saved to history: only this page's downloads will keep it.")


def _capture(store, person_id, emotion, guard) -> None:
    """Store the face now on screen, labelled, for the chosen person (to fine-tune on), once
    per press."""
    done = capture_face(guard, processor.face_crop(), store, person_id, emotion, viewer())
    if done.stored or CAPTURE_KEY not in st.session_state:  # a repeat keeps the first's word
        st.session_state[CAPTURE_KEY] = (done.kind, done.message)


def save_panel(store):
    """Save to history (for whom), and capture labelled faces for that person."""
    if store is None:
        return
    me = viewer()
    with st.expander(
        "Save to history · capture faces", expanded=bool(st.session_state.get(SAVE_KEY))
    ):
        person = pick_person(store, me, key=SAVE_PERSON_KEY, label="Person in front of the camera")
        keep(SAVE_PERSON_KEY, None if person is None else person.id)
        saving = st.toggle(
            "Save recordings to history",
            key=SAVE_KEY,
            disabled=processor.recorder.recording,
            help="Each recording is also saved as a session (boxes, probabilities and labels, "
            "no images) while it records, so a closed tab or a stopped server keeps it. "
            "See it on the People & history page.",
        )
        keep(SAVE_KEY, saving)
        thumbnails = st.checkbox(
            "Also keep a 48x48 image of each face",
            key=THUMBNAILS_KEY,
            disabled=processor.recorder.recording or not st.session_state.get(SAVE_KEY),
            help="Off by default: a saved session holds boxes and probabilities only. On, each "
            "saved row also keeps the small grey face the model saw (about 2 KB a face), "
            "shown on the People & history page and deleted with the session.",
        )
        keep(THUMBNAILS_KEY, thumbnails)
        if not store.people(me):
            st.caption("Add people on the People & history page to save sessions for them.")
        emotion_col, button_col = st.columns([3, 2], vertical_alignment="bottom")
        emotion = keep(
            CAPTURE_EMOTION_KEY,
            emotion_col.selectbox(
                "The emotion they are showing", EMOTIONS, key=CAPTURE_EMOTION_KEY
            ),
        )
        button_col.button(
            "Capture face",
            icon=":material/add_a_photo:",
            key="live-capture",
            disabled=not playing or person is None,
            on_click=_capture,
            args=(
                store,
                None if person is None else person.id,
                emotion,
                st.session_state.setdefault(CAPTURE_GUARD_KEY, CaptureGuard()),
            ),
            help="Stores the 48x48 face the model sees, labelled with the emotion chosen, for "
            "this person (their data: deleting them deletes it). The Training page can add "
            "captured faces to FER2013 to fine-tune a model.",
        )
        if person is None:
            st.caption("Choose a person to capture faces for.")
        else:
            counts = store.capture_counts(me, person_id=person.id)
            total = sum(counts.values())
            if total:
                st.caption(
                    f"Captured for {escape_markdown(person.name)}: "
                    + ", ".join(f"{e} {n}" for e, n in counts.items() if n)
                )
        result = st.session_state.pop(CAPTURE_KEY, None)
        if result:
            kind, message = result
            getattr(st, kind)(escape_markdown(message))


def record_panel(store):
    """Record / stop, snapshot and the downloads. The downloads are drawn once per page run,
    not refreshed: a button redrawn while it is clicked loses the click."""
    recorder = processor.recorder
    st.markdown("##### Session history")
    problem = st.session_state.get(SAVE_PROBLEM_KEY)
    if problem:
        st.warning(escape_markdown(problem), icon=":material/database:")
    if recorder.recording:
        recording_status(store)
        return
    record_col, snapshot_col = st.columns(2)
    record_col.button(
        "Record",
        icon=":material/radio_button_checked:",
        key="live-record",
        on_click=_start_recording,
        args=(threshold_of(active.model),),
        disabled=not playing,
        help="Records every analysed frame (time, face id, box, all seven probabilities, "
        f"label) until you stop, at most {MAX_RECORDED_FRAMES:,} frames. Recording does "
        "not slow the video.",
    )
    snapshot_col.button(
        "Snapshot",
        icon=":material/photo_camera:",
        key="live-snapshot",
        on_click=_take_snapshot,
        disabled=not playing,
        help="The annotated frame now on screen, as a PNG.",
    )
    plan = _plan_line(store)
    if plan:
        record_col.caption(escape_markdown(plan))
    frames = recorder.frame_count
    if frames:
        note = f" It stopped by itself at {MAX_RECORDED_FRAMES:,} frames." if recorder.full else ""
        st.caption(
            f"Recorded {frames:,} frames over {recorder.seconds():.1f} s.{note} "
            "Downloading keeps it; a new recording replaces it."
        )
        writer = recorder.last_sink
        if writer is not None:
            if writer.finished.wait(5.0):
                st.caption(
                    f"Saved to history as session #{writer.session_id}: {writer.written:,} rows"
                    + (f" ({writer.error})" if writer.error else "")
                    + "."
                )
                st.page_link(
                    "app_pages/people.py", label="People & history", icon=":material/group:"
                )
            else:
                st.caption(escape_markdown(_saving_line(writer, recorder.saving_for)))
        stamp = recorder.started_at.strftime("%Y%m%d-%H%M%S")
        csv_col, json_col = st.columns(2)
        csv_col.download_button(
            "Session CSV",
            recorder.csv_bytes(),
            f"live-{stamp}.csv",
            mime="text/csv",
            on_click="ignore",
            key="live-csv",
            icon=":material/download:",
        )
        json_col.download_button(
            "Session JSON",
            recorder.json_bytes(),
            f"live-{stamp}.json",
            mime="application/json",
            on_click="ignore",
            key="live-json",
            icon=":material/data_object:",
        )
    shot = st.session_state.get(SNAPSHOT_KEY)
    if shot:
        png, taken = shot
        st.download_button(
            f"Snapshot PNG ({taken:%H:%M:%S})",
            png,
            f"live-snapshot-{taken:%Y%m%d-%H%M%S}.png",
            mime="image/png",
            on_click="ignore",
            key="live-snapshot-png",
            icon=":material/image:",
        )


with panel_column:
    live_panel()
    history_panel()

# Whether and for whom recordings are saved: kept for the browser session like the other
# settings (Streamlit forgets a widget's value on a visit to another page). Restored before
# Record's panel, which says what the next recording will do.
kept(SAVE_KEY, False)
kept(THUMBNAILS_KEY, False)
kept(SAVE_PERSON_KEY, None)
kept(CAPTURE_EMOTION_KEY, EMOTIONS[0], valid=lambda v: v in EMOTIONS)
with video_column:
    records_store = records()
    record_panel(records_store)
    save_panel(records_store)

with st.expander("How it works"):
    st.markdown(
        "- The browser sends the camera over WebRTC to this app; each frame goes through the "
        "face detector (downscaled to 320 px wide for speed) and the emotion model, and comes "
        "back with boxes and labels drawn on it.\n"
        "- **Smoothing** averages each tracked face's probabilities over time (an exponential "
        "moving average), so labels do not flicker.\n"
        "- **Processing fps** counts analysed frames. When analysis is slower than the camera, "
        "streamlit-webrtc hands the callback only the newest frame and drops the ones that "
        "arrived meanwhile, so latency never builds up.\n"
        f"- Connections: by default no STUN/TURN server is used (`{ICE_SERVERS_ENV}` unset), "
        "which works when the browser and the app are on the same machine or network. Across "
        f"networks, set `{ICE_SERVERS_ENV}` before starting the app, e.g. "
        '`[{"urls": ["turn:turn.example.org:3478"], "secret": "..."}]` for a coturn relay '
        "(docs/sharing.md gives a tested set-up; the secret never reaches the browser).\n"
        "- The camera works only over HTTPS, or at `localhost` on the machine that runs the app."
    )
