"""Live webcam: faces boxed and labelled on the returned video, emotion bars beside it."""

import time

import streamlit as st

from app_lib.charts import probability_bars
from app_lib.detector import detector_choice
from app_lib.model_state import require_active_model
from app_lib.text import user_errors
from app_lib.live import ICE_SERVERS_ENV, LiveProcessor, describe_faces, rtc_configuration
from fer_core import FerError

PROCESSOR_KEY = "live_processor"
WEBRTC_KEY = "live-emotions"
REFRESH_SECONDS = 0.3  # the panel beside the video refreshes about three times a second

st.title("Live webcam")
st.caption("Press **START** and allow the camera. Each frame is analysed on this machine; when "
           "the model is slower than the camera, frames are skipped (never queued), so what you "
           "see is always the present.")

active = require_active_model()

try:
    rtc_config = rtc_configuration()
except FerError as exc:
    st.error(f"{exc} Using no ICE servers (works when the browser runs on this machine or "
             "network).", icon=":material/error:")
    rtc_config = {"iceServers": []}

with st.sidebar:
    st.markdown("#### Live settings")
    detector = detector_choice(st)
    smoothing = st.slider(
        "Smoothing", min_value=0.0, max_value=0.95, value=0.5, step=0.05, key="live_smoothing",
        help="How much each face's probabilities carry over from the previous frame: 0 shows "
             "every frame's raw output (jittery), 0.9 changes slowly.")

# One processor per viewer; a new one when the active model changes.
processor = st.session_state.get(PROCESSOR_KEY)
if processor is None or processor.model is not active.model:
    processor = LiveProcessor(active.model, smoothing=smoothing, detector=detector)
    st.session_state[PROCESSOR_KEY] = processor
with user_errors():
    processor.set_smoothing(smoothing)
    processor.set_detector(detector)  # switches live: the next frame uses it

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
    context = webrtc_streamer(
        key=WEBRTC_KEY,
        mode=WebRtcMode.SENDRECV,
        rtc_configuration=rtc_config,
        media_stream_constraints={"video": {"width": {"ideal": 640}, "height": {"ideal": 480}},
                                  "audio": False},
        video_frame_callback=processor,
        async_processing=True,  # drop stale frames instead of queueing them
    )
    if rtc_config["iceServers"]:
        st.caption(f"ICE servers from {ICE_SERVERS_ENV}: "
                   + ", ".join(u for s in rtc_config["iceServers"] for u in s["urls"]))
    else:
        st.caption(f"Direct connection only (no STUN/TURN). When the app runs on another "
                   f"network, set {ICE_SERVERS_ENV}, e.g. "
                   '`[{"urls": ["stun:stun.l.google.com:19302"]}]`.')

playing = bool(context.state.playing)
if not playing:
    processor.reset()


@st.fragment(run_every=REFRESH_SECONDS)
def live_panel():
    snapshot = processor.holder.latest()
    fresh = snapshot is not None and time.time() - snapshot.updated < 3.0
    if not playing and not fresh:
        st.info("The camera is off. Press START under the video.", icon=":material/videocam_off:")
        return
    if not fresh:
        st.info("Waiting for video frames…", icon=":material/hourglass_empty:")
        return
    if snapshot.error:
        st.error(f"The last frame could not be analysed: {snapshot.error}")
    fps_col, latency_col, faces_col = st.columns(3)
    # The unit sits in the label: a value like "15.1 fps" is cut to "15.1 …" in a third of
    # the panel.
    fps_col.metric("Frames/s", f"{snapshot.fps:.1f}",
                   help="Frames analysed per second over the last 3 seconds.")
    latency_col.metric("Latency", f"{snapshot.latency_ms:.0f} ms",
                       help=f"One frame: detection {snapshot.detect_ms:.0f} ms, classification "
                            f"{snapshot.classify_ms:.0f} ms, plus drawing.")
    faces_col.metric("Faces", len(snapshot.faces), help=f"Detector: {snapshot.detector}.")
    with st.container(key="live-summary"):
        top = snapshot.top
        if top is None:
            st.markdown("No face in view. Face the camera, in good light.")
        else:
            st.markdown(f"### {top['label']}")
            st.caption(" · ".join(describe_faces(snapshot)))
    if snapshot.faces:
        faces = sorted(snapshot.faces, key=lambda f: f["face_id"] or 0)[:4]
        figure = probability_bars([f["probs"] for f in faces],
                                  [f"face #{f['face_id']}: {f['label']}" for f in faces],
                                  columns=min(len(faces), 2), height_per_row=250)
        st.plotly_chart(figure, key="live-bars", config={"displayModeBar": False})


with panel_column:
    live_panel()

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
        "which works when the browser and the app are on the same machine or network. For a "
        f"deployed app set `{ICE_SERVERS_ENV}` to a JSON list of ICE servers before starting "
        "it, e.g. `[{\"urls\": \"turn:turn.example.org:3478\", \"username\": \"u\", "
        "\"credential\": \"p\"}]`.")
