"""Home: what the app does and which model it uses."""

import streamlit as st

from app_lib.formatting import percent
from app_lib.text import user_errors
from app_lib.model_state import active_model, card_metrics
from app_lib.navigation import PAGES

st.title("Facial emotion recognition")
st.markdown(
    "Find the faces in a webcam stream, a photo or a video and read seven emotions from each "
    "one: **angry, disgust, fear, happy, sad, surprise, neutral**. A face detector (OpenCV's "
    "Haar cascade) finds the faces; a small neural network trained on the FER2013 dataset "
    "(48×48 grey faces) gives each face a probability for every emotion. Everything runs on "
    "this machine: no image leaves it.")

with user_errors():
    active = active_model()
    metrics = card_metrics(active.card)
    st.subheader("The model in use")
    left, middle, right, far = st.columns(4)
    split = metrics["split"] or "test"
    left.metric(f"Accuracy ({split})", percent(metrics["accuracy"]),
                help="Share of test faces whose top emotion is the labelled one.")
    middle.metric(f"Macro-F1 ({split})",
                  f"{metrics['macro_f1']:.3f}" if metrics["macro_f1"] is not None else "—",
                  help="F1 averaged over the 7 classes, so rare classes (disgust) count as "
                       "much as common ones (happy).")
    right.metric("Latency per face", f"{metrics['latency_ms']:.1f} ms"
                 if metrics["latency_ms"] is not None else "—",
                 help="Median time of one classification (batch of one face), as measured "
                      "for the model card.")
    far.metric("Parameters", f"{metrics['parameters']:,}" if metrics["parameters"] else "—")
    source = {"shipped": "the shipped default model", "run": "a model trained in this app",
              "session": "a model chosen for this session"}[active.source]
    st.markdown(f"**{active.model.name}** ({source}, architecture "
                f"`{metrics['architecture'] or '?'}`, backend `{active.model.backend}`).")
    if metrics["accuracy"] is None:
        st.info("This model has no model card yet, so its accuracy is unknown. Evaluate it on "
                "the Training page.", icon=":material/info:")
    elif metrics["split"] == "PrivateTest":
        st.caption(f"Measured on the {metrics['n'] or 3589:,} FER2013 PrivateTest images, "
                   "which never steered training or model choice. Chance is 14%; humans agree "
                   "with FER2013's labels about 65% of the time.")
    else:
        st.caption(f"Measured on FER2013 {metrics['split']} ({metrics['n'] or 0:,} images).")

st.subheader("What you can do here")
descriptions = {
    "app_pages/live.py": "Your webcam, analysed live: boxes, labels and emotion bars per face.",
    "app_pages/upload.py": "Photos (JPEG, PNG, WebP, BMP) and videos (MP4, AVI, MOV, WebM): "
                       "annotated images, an emotion timeline, CSV and JSON downloads.",
    "app_pages/dataset.py": "FER2013 itself: class balance, samples, mean faces and its flaws "
                        "(blank images, duplicates, train/test leakage, conflicting labels).",
    "app_pages/training.py": "Train a model in the background, watch it learn, evaluate it and "
                         "make it the app's model.",
    "app_pages/model.py": "The model card: per-class scores, confusion matrix, speed, and what "
                      "the model cannot do.",
}
for path, text in descriptions.items():
    title, icon, _ = PAGES[path]
    with st.container(border=True):
        st.page_link(path, label=title, icon=icon)
        st.caption(text)

st.caption("Emotion recognition from a face is unreliable and culturally loaded: use it to "
           "explore, never to make decisions about people. See the Model card page.")
