"""The model card: measured quality and speed, how it was trained, and what it cannot do."""

import pandas as pd
import streamlit as st

from app_lib.model.card_view import (
    LABEL_NAMES,
    headline,
    headline_sentences,
    own_labels_report,
    top_confusions,
    training_rows,
    weak_classes,
)
from app_lib.model.held_out import render_held_out, render_whole_path
from app_lib.model.model_state import require_active_model
from app_lib.model.shipped import render_shipped_choice
from app_lib.ui.charts import confusion_figure, per_class_figure, reliability_figure
from app_lib.ui.detector import DETECTOR_KEY, label
from app_lib.ui.formatting import percent
from fer_core import EMOTIONS
from fer_core.faces import DEFAULT_DETECTOR

st.title("Model card")

active = require_active_model()

model = active.model
card = active.card
detector = st.session_state.get(DETECTOR_KEY, DEFAULT_DETECTOR)
numbers = headline(card, detector)
split = numbers.split or "test"

st.markdown(
    f"**{model.name}** · architecture `{numbers.architecture or '?'}` · backend "
    f"`{model.backend}` · "
    + ("shipped with the app" if active.source == "shipped" else "trained in this app")
)

if card is None:
    st.info(
        f"This model has no model card ({model.path.stem}.card.json), so nothing about its "
        "quality has been measured. Evaluate it on the Training page, or run "
        f"`python -m fer_core evaluate --model {model.path} --write-card`.",
        icon=":material/info:",
    )
else:
    st.subheader("In one sentence each")
    st.markdown(
        "\n".join(f"- {line}" for line in headline_sentences(numbers, label(detector)))
        or "- Nothing measured yet."
    )
    st.caption(
        f"Trained on {LABEL_NAMES.get(numbers.trained_on, numbers.trained_on)}. "
        "FER2013 was labelled by one person per face; FER+ (Microsoft) asked ten people "
        "about every face. FER2013's own label matches the ten people's majority on "
        "only about 72% of the faces where they agree, so above about 72-73% on "
        "FER2013's labels a model learns that one labeller's habits."
    )
    render_shipped_choice(active)
    st.subheader(f"Quality on FER2013 {split} (its own labels)")
    columns = st.columns(5)
    columns[0].metric(
        "Accuracy",
        percent(numbers.crop_accuracy),
        help="Share of images whose most likely emotion is the labelled one.",
    )
    columns[1].metric(
        "Balanced accuracy",
        percent(numbers.crop_balanced),
        help="Recall averaged over the seven classes: a model that answers the commonest "
        "class scores about 14% here, however high its accuracy.",
    )
    columns[2].metric(
        "Macro-F1",
        f"{numbers.crop_macro_f1:.3f}" if numbers.crop_macro_f1 is not None else "—",
        help="F1 averaged over the seven classes: the rare ones count fully.",
    )
    columns[3].metric("Test images", f"{numbers.crop_faces or 0:,}")
    columns[4].metric(
        "Flip averaging",
        "on" if card.flip_average else "off",
        help="Each face is also classified mirrored and the two results are "
        "averaged (decided on PublicTest).",
    )
    if split == "PrivateTest":
        st.caption(
            "PrivateTest was used for this report only: checkpoints and settings were "
            "chosen on PublicTest, as in every published FER2013 result. For scale: "
            "chance is 14%, always answering 'happy' scores 24.5%, human agreement with "
            "the labels is about 65%, and the best published models reach about 73-76%."
        )
    elif split == "PublicTest":
        st.caption(
            "Measured on PublicTest, the split used to choose between runs. The figure "
            "to report is PrivateTest: run `python -m fer_core evaluate --split "
            "PrivateTest --write-card` on the final model."
        )

    st.subheader("Through the whole path, as users get it")
    render_whole_path(card)

    render_held_out(card)

    # Per class and confusions by the labels the model learned (the crowd's for a crowd model).
    own_report, own_labels = own_labels_report(card)
    per_class = own_report.get("per_class") or {}
    if per_class:
        st.subheader(f"Per class ({split}, {own_labels})")
        table = pd.DataFrame([{"emotion": e, **per_class.get(e, {})} for e in EMOTIONS])
        st.dataframe(
            table,
            hide_index=True,
            column_config={
                "emotion": st.column_config.TextColumn("emotion"),
                "precision": st.column_config.ProgressColumn(
                    min_value=0.0, max_value=1.0, format="percent"
                ),
                "recall": st.column_config.ProgressColumn(
                    min_value=0.0, max_value=1.0, format="percent"
                ),
                "f1": st.column_config.ProgressColumn(
                    "F1", min_value=0.0, max_value=1.0, format="%.3f"
                ),
                "support": st.column_config.NumberColumn("test images", format="%d"),
            },
        )
        st.caption(
            "Precision: of the faces the model calls X, the share that are X. "
            "Recall: of the X faces, the share it finds. F1 combines the two."
        )
        st.plotly_chart(
            per_class_figure(per_class), key="per-class", config={"displayModeBar": False}
        )

    matrix = own_report.get("confusion_matrix")
    if matrix:
        st.subheader(f"Confusion matrix ({own_labels})")
        normalise = st.toggle("Show shares of each true class", value=True, key="cm_normalise")
        st.plotly_chart(
            confusion_figure(matrix, normalise), key="confusion", config={"displayModeBar": False}
        )
        confused = top_confusions(matrix, own_report.get("labels") or list(EMOTIONS))
        st.caption(
            "Rows: the labelled emotion; columns: the model's answer. The diagonal is "
            "right; off the diagonal, the largest confusions here are "
            + ", ".join(
                f"{true} taken for {predicted} ({percent(share, 0)})"
                for true, predicted, share in confused
            )
            + "."
        )

    calibration = card.calibration
    calibration_test = calibration.get("test") or {}
    if calibration_test:
        st.subheader("Calibration: can its probabilities be taken at their word?")
        columns = st.columns(3)
        columns[0].metric(
            "ECE as trained",
            f"{calibration_test['ece_before']:.3f}",
            help=f"Expected calibration error on {calibration_test['split']}: "
            "the average gap between how sure the model is and how often "
            f"it is right, over {calibration.get('bins')} bins of its top "
            "probability (0 is perfect).",
        )
        columns[1].metric(
            "ECE calibrated",
            f"{calibration_test['ece_after']:.3f}",
            delta=f"{calibration_test['ece_after'] - calibration_test['ece_before']:+.3f}",
            delta_color="inverse",
            help="With the calibration the app applies to every probability.",
        )
        columns[2].metric(
            "Temperature",
            f"{calibration.get('temperature', 1.0):.2f}",
            help=f"Fitted on {calibration.get('fitted_on')} by minimising the "
            "negative log-likelihood"
            + (
                f", after taking off the floor that label smoothing "
                f"{calibration.get('smoothing'):g} puts under every "
                "probability"
                if calibration.get("smoothing")
                else ""
            )
            + ".",
        )
        st.plotly_chart(
            reliability_figure(calibration), key="reliability", config={"displayModeBar": False}
        )
        threshold = calibration.get("uncertain_below")
        same_split = calibration_test["split"] == calibration.get("fitted_on")
        st.caption(
            f"Reliability on {calibration_test['split']} "
            f"({calibration_test.get('n', 0):,} images); "
            + (
                "the calibration was fitted on these same images, so the calibrated "
                "ECE is optimistic: evaluate on PrivateTest for the figure to report. "
                if same_split
                else f"the calibration was fitted on {calibration.get('fitted_on')} only. "
            )
            + "On the diagonal, a face shown at 70% is right 70% of the time."
            + (
                f" Faces whose top probability is below {percent(threshold, 0)} are "
                "labelled *uncertain* with their two leading emotions: below it, the top "
                f"guess was wrong more often than right on {calibration.get('fitted_on')}."
                if threshold is not None
                else ""
            )
        )

    st.subheader("Speed and size")
    latency = card.latency
    columns = st.columns(4)
    one = latency.get("batch_1") or {}
    many = latency.get("batch_32") or {}
    columns[0].metric(
        "One face",
        f"{one['median_ms']:.2f} ms" if one else "—",
        help=f"Median of {one.get('repeats', '?')} calls; 90% of calls within "
        f"{one.get('p90_ms', 0):.2f} ms."
        if one
        else None,
    )
    columns[1].metric(
        "Per face in a batch of 32", f"{many['median_ms_per_face']:.2f} ms" if many else "—"
    )
    columns[2].metric("Parameters", f"{card.parameters or 0:,}")
    files = card.files
    litert = files.get("litert") or {}
    columns[3].metric(
        "Files",
        f"{(files.get('keras', {}).get('bytes', 0) + litert.get('bytes', 0)) / 1e6:.1f} MB",
        help="The Keras file and the LiteRT fast path"
        + (f" ({litert.get('quantization')})" if litert.get("quantization") else "")
        + " together.",
    )
    machine = card.machine
    st.caption(
        f"Classifier only (face detection comes on top), backend "
        f"`{one.get('backend', '?')}`, measured on {machine.get('processor', '?')} "
        f"({machine.get('platform', '?')})."
    )

    training = card.training
    st.subheader("Training")
    if training:
        rows = training_rows(training)
        st.table(
            pd.DataFrame(list(rows.items()), columns=["setting", "value"]).set_index("setting")
        )
    else:
        st.caption("The card does not say how the model was trained.")
    selection = card.selection
    if selection:
        st.caption(
            f"Flip averaging was chosen on {selection.get('split')}: accuracy "
            f"{percent(selection.get('accuracy_plain'))} plain vs "
            f"{percent(selection.get('accuracy_flip_average'))} flip-averaged."
        )
    with st.expander("The full model card (JSON)"):
        st.json(card.raw, expanded=False)

st.subheader("What this model cannot do")
weak_report, judged_by = own_labels_report(card)
weak = weak_classes(weak_report)
weak = (
    f"- **Some classes are weak.** The lowest recall on the test split ({judged_by}): "
    + "; ".join(weak)
    + "."
    if weak
    else "- **Some classes may be weak.** This model has no per-class report yet."
)
st.markdown(f"""
- **It reads expressions, not feelings.** A smile is labelled *happy* whether or not the person
  is happy. People mask, exaggerate and differ in how they show emotion.
- **It learnt from FER2013**: 48×48 grey images gathered by a web image search, many of them
  posed or acted, mostly frontal, with a small age range and a skew towards lighter skin. Faces
  unlike these — in profile, tilted, in dim or harsh light, partly hidden by hands, masks,
  glasses or hair, very young or old — are classified less reliably, and the face detector
  may not find them at all (the default Haar cascade looks for frontal faces; BlazeFace finds
  more tilted, small and backlit ones: the whole-path table above says how many of each).
- **Seven categories are a simplification.** Real expressions are mixed and subtle; the model
  must always pick among seven, and *neutral* absorbs much that is not.
{weak}
- **The labels themselves are noisy.** FER2013's label was given by one person per face; ten
  other people (FER+) agree with it on only about 72% of the faces where most of them agree,
  and the data holds blank images, duplicates and contradicting labels (see the Dataset page),
  so no score here is exact. A model trained on the crowd's votes reports how many people would
  choose each emotion; where people disagree, it does too.
- **Expressions differ across cultures and people.** Labels given by one group of annotators
  do not transfer evenly to everyone.
- **Not for decisions about people.** Do not use it to judge job candidates, students,
  patients, suspects or customers, to infer anyone's mental state, or for surveillance. It is a
  tool to learn and explore with.
""")
