"""Home: what the app does and which model it uses."""

import streamlit as st

from app_lib.model.card_view import LABEL_NAMES, headline, headline_sentences
from app_lib.model.model_state import active_model
from app_lib.ui.detector import current_detector, label, short_label
from app_lib.ui.formatting import percent
from app_lib.ui.navigation import HOME, PAGES
from app_lib.ui.text import escape_markdown, user_errors

st.title("Facial emotion recognition")
st.markdown(
    "Find the faces in a webcam stream, a photo or a video and read seven emotions from each "
    "one: **angry, disgust, fear, happy, sad, surprise, neutral**. A face detector (OpenCV's "
    "Haar cascade, or MediaPipe's BlazeFace) finds the faces; a small neural network trained "
    "on the FER2013 faces (48×48 grey) gives each face a probability for every emotion. Everything runs on "
    "this machine: no image leaves it."
)

with user_errors():
    active = active_model()
    detector = current_detector()
    numbers = headline(active.card, detector)
    st.subheader("The model in use")
    source = {
        "shipped": "the shipped default model",
        "run": "a model trained in this app",
        "session": "a model chosen for this session",
    }[active.source]
    st.markdown(
        f"**{escape_markdown(active.model.name)}** ({source}, trained on "
        f"{LABEL_NAMES.get(numbers.trained_on, numbers.trained_on)}, architecture "
        f"`{numbers.architecture or '?'}`, backend `{active.model.backend}`)."
    )
    left, middle, right, far = st.columns(4)
    if numbers.crowd_agreement is not None:
        left.metric(
            f"Agrees with people ({numbers.split})",
            percent(numbers.crowd_agreement),
            help="FER+: ten people labelled every FER2013 face. Share of the faces "
            "with a clear majority where the model's top emotion is theirs.",
        )
    else:
        left.metric(
            f"Accuracy, crops ({numbers.split or 'test'})",
            percent(numbers.crop_accuracy),
            help="Share of FER2013's test crops whose top emotion is the label.",
        )
    middle.metric(
        f"Whole path, {short_label(detector)} ({numbers.path_split or '—'})",
        percent(
            numbers.crowd_path_agreement
            if numbers.crowd_agreement is not None
            else numbers.path_accuracy
        ),
        help="The same faces placed in larger frames, found by this detector, cut "
        "out and classified as in the app; a missed face counts as wrong.",
    )
    right.metric(
        "Latency per face",
        f"{numbers.latency_ms:.2f} ms" if numbers.latency_ms is not None else "—",
        help="Median time of one classification (one face), as measured for the model card.",
    )
    far.metric("Parameters", f"{numbers.parameters:,}" if numbers.parameters else "—")
    sentences = headline_sentences(numbers, label(detector))
    if sentences:
        st.markdown("\n".join(f"- {line}" for line in sentences))
    else:
        st.info(
            "This model has no model card yet, so its accuracy is unknown. Evaluate it on "
            "the Training page.",
            icon=":material/info:",
        )
    if numbers.split == "PrivateTest":
        st.caption("PrivateTest never steered training or the choice of model. Chance is 14%.")
    st.caption(
        "The face detector is chosen in the sidebar of the Live and Photos & videos "
        "pages; the numbers above follow it."
    )

st.subheader("What you can do here")
for path, page in PAGES.items():
    if path != HOME:
        with st.container(border=True):
            st.page_link(path, label=page.title, icon=page.icon)
            st.caption(page.what)

st.caption(
    "Emotion recognition from a face is unreliable and culturally loaded: use it to "
    "explore, never to make decisions about people. See the Model card page."
)
