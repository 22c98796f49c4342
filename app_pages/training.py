"""Training: start runs in the background, watch them learn, evaluate, choose the app's model."""

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from app_lib.model.model_state import active_model, choose_for_session, runs_dir
from app_lib.server.access import is_admin, why_not_admin
from app_lib.training.data_source import data_path
from app_lib.training.run_watch import ACTIVE_PHASES, busy_runs
from app_lib.ui.charts import history_figure
from app_lib.ui.formatting import duration, percent, table_height
from app_lib.ui.text import escape_markdown, show_error, user_errors
from fer_core import FerError, available_architectures
from fer_core.data.paths import default_ferplus_path
from fer_core.labels import LABEL_SOURCES
from fer_core.models.card import read_card
from fer_core.service.active import (
    activate_run,
    activation_warning,
    card_public_score,
    check_start_from,
    get_active_model,
    model_sources,
    run_public_score,
    use_shipped_model,
)
from fer_core.service.jobs import (
    resume_training,
    start_evaluation,
    start_training,
    stop_evaluation,
    stop_training,
)
from fer_core.service.status import (
    EvaluationStatus,
    RunStatus,
    evaluation_progress,
    evaluation_status,
    run_status,
    training_pace,
)
from fer_core.training.config import MIXES, TrainConfig
from fer_core.training.runs import list_runs, new_run_name

POLL_SECONDS = 2.0
WATCHED_KEY = "watched_run"
RUN_CHOICE_KEY = "run_choice"
CONFIRM_KEY = "confirm_activation"  # the run whose activation awaits a confirmation
PHASE_ICONS = {
    "starting": ":material/hourglass_top:",
    "training": ":material/play_circle:",
    "stopping": ":material/pause_circle:",
    "finishing": ":material/hourglass_bottom:",
    "finished": ":material/check_circle:",
    "stopped": ":material/stop_circle:",
    "interrupted": ":material/error:",
    "failed": ":material/cancel:",
    "idle": ":material/radio_button_unchecked:",
}
LABEL_CHOICES = {
    "fer2013": "FER2013's labels",
    "ferplus-votes": "FER+ crowd vote shares",
    "ferplus-majority": "FER+ crowd majority",
}
MISSING = "—"  # what a table shows for a value a run does not have (yet)
DEFAULT_EPOCHS = 2  # the new-run form's: a fine-tune of the shipped model
FER2013_TRAINING_IMAGES = 28_709  # FER2013's Training rows (a fact of the dataset)

# The panels below read the page's settings from the script's globals, set before any panel
# is drawn: ``runs`` (the runs folder), ``dataset`` (FER2013's path) and ``admin``.


def captured_faces_count(runs: Path) -> int:
    """Faces captured on the Live page, in the database a run in ``runs`` reads them from."""
    from fer_core.records import ADMIN_CLI, database_url, open_records

    try:
        store = open_records(database_url(runs=runs))
    except FerError:
        return 0
    return sum(store.capture_counts(ADMIN_CLI).values())


def run_panel(status: RunStatus, evaluation: EvaluationStatus) -> None:
    """One run: its state, progress, chart, buttons, evaluation, settings and log."""
    run_dir = Path(status.path)
    show_run_state(status)
    run_buttons(status, evaluation, run_dir)
    show_evaluation(status, evaluation, run_dir)
    if status.config and admin:
        with st.expander("Settings and log"):
            shown = {k: v for k, v in status.config.items() if k not in ("model_kwargs",)}
            st.json(shown, expanded=False)
            if status.log:
                st.code(status.log, language=None)


def show_run_state(status: RunStatus) -> None:
    """The run's name, phase and numbers, its progress, why it failed, and its chart."""
    head = st.columns([2, 1, 1, 1])
    head[0].markdown(
        f"**{escape_markdown(status.name)}** · {PHASE_ICONS.get(status.phase, '')} "
        f"{escape_markdown(status.activity)}"
    )
    head[1].metric("Epochs done", f"{status.epochs_done}/{status.epochs or '?'}")
    best = status.best_val_accuracy
    head[2].metric(
        "Best val accuracy",
        percent(best) if best is not None and best >= 0 else "—",
        help=f"epoch {status.best_epoch}" if status.best_epoch else None,
    )
    head[3].metric(
        "Time left",
        duration(status.eta_seconds) if status.phase in ("training", "stopping") else "—",
    )
    if status.phase in ("training", "stopping"):
        epoch = status.epoch or status.epochs_done + 1
        st.progress(
            status.overall_fraction or 0.0,
            text=f"Run: {percent(status.overall_fraction or 0.0, 0)} · "
            f"ETA {duration(status.eta_seconds)}",
        )
        if status.progress:
            st.progress(status.batch_fraction or 0.0, text=escape_markdown(status.activity))
        else:
            st.caption(
                f"Epoch {epoch}/{status.epochs} is running; this run does not "
                "report its batches (it was started outside the app or by an older "
                "version), so progress moves one epoch at a time."
            )
    elif status.phase == "starting":
        st.progress(0.0, text="Loading FER2013 and building the model…")
    elif status.phase == "finishing":
        st.progress(1.0, text=escape_markdown(status.activity))
    if status.phase in ("failed", "interrupted"):
        # The reason the run recorded (a full disk, say) is the run's own message: no
        # server path is in it.
        reason = status.reason
        st.error(
            "The training process ended before finishing"
            + (
                f": {escape_markdown(reason)}."
                if reason
                else " (see the log below)."
                if status.log
                else "."
            )
            + (" Resume it to continue from its last full epoch." if status.epochs_done else ""),
            icon=":material/error:",
        )
    if status.history:
        st.plotly_chart(
            history_figure(status.history),
            key=f"history-{status.name}",
            config={"displayModeBar": False},
        )
    elif status.phase in ACTIVE_PHASES:
        st.caption("The chart appears when the first epoch ends.")


def run_buttons(status: RunStatus, evaluation: EvaluationStatus, run_dir: Path) -> None:
    """Stop or Resume, Evaluate, Use in the app (with a confirmation when the run scores
    lower), and, for a visitor, Use for me."""
    config = status.config
    buttons = [st.container(horizontal=True, gap="small")] * 3
    if status.alive:
        if buttons[0].button(
            "Stop",
            key=f"stop-{status.name}",
            icon=":material/stop:",
            disabled=status.phase in ("stopping", "finishing") or not admin,
            help="Stops after the current batch (or, while it validates or saves an "
            "epoch, once that epoch is saved); the last full epoch is kept, and the run can "
            "be resumed."
            if status.phase != "finishing"
            else "Its epochs are done: it is finishing, in seconds.",
        ):
            outcome = stop_training(run_dir)
            st.toast(
                {
                    "requested": "Stopping after the current batch…",
                    "terminated": "Stopped while loading data.",
                    "not running": "The run had already ended.",
                }[outcome]
            )
    elif status.epochs_done < (status.epochs or 0) and config:
        if buttons[0].button(
            "Resume",
            key=f"resume-{status.name}",
            icon=":material/play_arrow:",
            disabled=not admin,
            help="Continue from the last full epoch, with the run's own "
            "settings (its config.json).",
        ):
            try:
                resume_training(run_dir)
                st.rerun()
            except (FerError, OSError) as exc:
                show_error(
                    str(exc)
                    if isinstance(exc, FerError)
                    else f"Could not resume the run ({type(exc).__name__})."
                )
    # A model is offered to the app once its run has ended (not while it trains: its best
    # model may still change) and no evaluation of it is running.
    can_use_model = status.has_model and not evaluation.alive and not status.alive
    if buttons[1].button(
        "Evaluate on PublicTest",
        key=f"eval-{status.name}",
        icon=":material/fact_check:",
        disabled=not (can_use_model and dataset and admin and not status.alive),
        help="Accuracy, macro-F1, per-class scores and a model card for "
        "this run's best model, in the background; its progress "
        "and time left show here, and it can be cancelled.",
    ):
        try:
            start_evaluation(run_dir, dataset, "PublicTest")
            st.rerun()
        except (FerError, OSError) as exc:
            show_error(
                str(exc)
                if isinstance(exc, FerError)
                else f"Could not start the evaluation ({type(exc).__name__})."
            )
    confirming = st.session_state.get(CONFIRM_KEY) == status.name
    candidate = run_public_score(status, evaluation)
    current_model = active_model()
    current = card_public_score(current_model.card)
    if buttons[2].button(
        "Use in the app",
        key=f"activate-{status.name}",
        icon=":material/published_with_changes:",
        type="secondary" if activation_warning(candidate, current) else "primary",
        disabled=not (can_use_model and admin) or confirming,
        help="Exports the fast path of this run's best model and makes it "
        "the model every page uses, for every visitor. The shipped "
        "model stays as it is.",
    ):
        if activation_warning(candidate, current):
            st.session_state[CONFIRM_KEY] = status.name
            st.rerun()
        activate(run_dir)
    if confirming and admin and can_use_model:
        confirm_activation(status, evaluation, run_dir)
    elif can_use_model:
        st.caption(
            f"Against the app's model: {escape_markdown(status.name)}, "
            f"{describe_score(candidate)}; in use, {escape_markdown(current_model.model.name)}, "
            f"{describe_score(current)}."
        )
    elif status.alive and status.has_model:
        st.caption("*Use in the app* is offered once the run has ended.")
    exported = sorted((run_dir / "export").glob("*.keras")) if not admin else []
    if exported and buttons[2].button(
        "Use for me",
        key=f"session-{status.name}",
        icon=":material/person:",
        help="Use this run's exported model in your own session only.",
    ):
        choose_for_session(exported[-1])
        st.rerun(scope="app")


def show_evaluation(status: RunStatus, evaluation: EvaluationStatus, run_dir: Path) -> None:
    """The run's evaluation: its progress and Cancel, or how it ended."""
    if evaluation.phase == "running":
        progress = evaluation.progress or evaluation_progress(None, None)
        eta = progress.eta_seconds
        st.progress(
            progress.fraction,
            text=f"Evaluating on PublicTest: {progress.stage}"
            + (f" · ETA {duration(eta)}" if eta is not None else ""),
        )
        if st.button(
            "Cancel the evaluation",
            key=f"stop-eval-{status.name}",
            icon=":material/cancel:",
            disabled=not admin,
        ):
            stop_evaluation(run_dir)
            st.rerun()
    elif evaluation.phase == "stopped":
        st.info(
            "The evaluation was cancelled; nothing was written. Evaluate again when you like.",
            icon=":material/cancel:",
        )
    elif evaluation.phase == "failed":
        st.error(
            "The evaluation failed" + (": its log follows." if admin else "."),
            icon=":material/error:",
        )
        if admin:
            st.code(evaluation.log or "no output", language=None)
    elif evaluation.phase == "done":
        report = evaluation.report
        st.markdown(
            f"**Evaluation on {report.get('split', 'PublicTest')}** "
            f"({report.get('n', 0):,} images): accuracy "
            f"**{percent(report.get('accuracy'))}**, macro-F1 "
            f"**{report.get('macro_f1', 0):.3f}**"
        )
        per_class = pd.DataFrame(report.get("per_class", {})).T
        if not per_class.empty:
            st.dataframe(
                per_class,
                placeholder=MISSING,
                column_config={
                    c: st.column_config.NumberColumn(format="%.3f")
                    for c in ("precision", "recall", "f1")
                },
            )


def activate(run_dir: Path) -> None:
    st.session_state.pop(CONFIRM_KEY, None)
    try:
        with st.spinner("Exporting the fast path and switching the app's model…"):
            target = activate_run(run_dir, runs)
        choose_for_session(None)
        st.session_state["activation_message"] = f"The app now uses {target.stem}."
        st.rerun(scope="app")
    except (FerError, OSError) as exc:
        show_error(
            str(exc)
            if isinstance(exc, FerError)
            else f"Could not switch the model ({type(exc).__name__})."
        )


def describe_score(score: dict | None) -> str:
    if score is None:
        return "not measured"
    images = f", {score['images']:,} images" if score.get("images") else ""
    return f"{percent(score['accuracy'])} on {score['where']}{images}"


def confirm_activation(status: RunStatus, evaluation: EvaluationStatus, run_dir: Path) -> None:
    """Bug 10: one click replaced a 69% model with an 18% one, with no warning."""
    candidate = run_public_score(status, evaluation)
    current_model = active_model()
    current = card_public_score(current_model.card)
    st.warning(
        f"**{escape_markdown(status.name)}** scores "
        f"{'lower than' if candidate else 'unknown against'} the model every page "
        f"uses now. {escape_markdown(status.name)}: {describe_score(candidate)}. "
        f"{escape_markdown(current_model.model.name)} (in use): "
        f"{describe_score(current)}. Switch every visitor to it anyway?",
        icon=":material/warning:",
    )
    choice = st.container(horizontal=True, gap="small")
    if choice.button(
        "Use it anyway",
        key=f"confirm-{status.name}",
        icon=":material/published_with_changes:",
    ):
        activate(run_dir)
    if choice.button(
        "Keep the current model",
        key=f"cancel-{status.name}",
        type="primary",
        icon=":material/undo:",
    ):
        st.session_state.pop(CONFIRM_KEY, None)
        st.rerun()


st.title("Training")
st.caption(
    "Train a model on FER2013 in a background process: this page stays responsive, and "
    "you can close it and come back. Validation uses PublicTest; PrivateTest is kept "
    "for the final report only."
)

runs = runs_dir()
dataset = data_path()
admin = is_admin()
if not admin:
    st.info(
        why_not_admin() + " You can still follow the runs and choose a trained model for "
        "your own session below.",
        icon=":material/lock:",
    )


def active_run_dir() -> Path | None:
    """The run whose exported model is the app's active model, if any."""
    path = get_active_model(runs)
    if path is None:
        return None
    return path.parent.parent if path.parent.name == "export" else path.parent


def show_pace(architectures, epochs: int) -> None:
    """Before Start: how long an epoch over all of Training takes here, per architecture, as
    measured by a run on this machine (none measured: no estimate, and it says so)."""
    paces = [pace for a in architectures if (pace := training_pace(runs, a)) is not None]
    if not paces:
        st.caption(
            "No run has finished an epoch on this machine yet, so there is no time estimate; "
            "the time left shows once the first batches have run."
        )
        return
    st.caption(
        "On this machine an epoch over all of Training takes about "
        + "; ".join(
            f"{duration(p.seconds(FER2013_TRAINING_IMAGES, 1))} for {p.architecture} "
            f"(measured by run {escape_markdown(p.run)})"
            for p in paces
        )
        + f": {epochs} epochs, about "
        + ", ".join(
            f"{duration(p.seconds(FER2013_TRAINING_IMAGES, epochs))} ({p.architecture})"
            for p in paces
        )
        + ". A subset of the images takes proportionally less."
    )


# ----------------------------------------------------------------------------- new run

with st.expander("Start a new run", expanded=admin, icon=":material/add_circle:"):
    if dataset and admin:  # where the server keeps its data is the administrator's business
        st.caption("Data (change it on the Dataset page):")
        st.code(dataset, language=None)
    elif dataset:
        st.caption("Data: the dataset chosen on the Dataset page.")
    else:
        st.info(
            "Tell the app where FER2013 is first: on the Dataset page, or with the "
            "FER2013_PATH environment variable.",
            icon=":material/folder_open:",
        )
    architectures = available_architectures()
    sources = {source.key: source for source in model_sources(runs)}
    crowd_file = default_ferplus_path()
    # The defaults fine-tune the shipped model (the labels and augmentation it was trained
    # with) for a few epochs at a low rate: a model worth having in the time shown. From
    # random weights, a few epochs on a subset learn nothing (13.8% on validation: chance).
    shipped = sources.get("shipped")
    shipped_card = read_card(shipped.path) if shipped else None
    shipped_config = (shipped_card.training.get("config") or {}) if shipped_card else {}
    default_labels = (
        shipped_config.get("labels", "fer2013")
        if crowd_file or shipped_config.get("labels") == "fer2013"
        else "fer2013"
    )
    show_pace(architectures, DEFAULT_EPOCHS)
    with st.form("new_run", border=False):
        first = st.columns(4)
        architecture = first[0].selectbox(
            "Architecture",
            architectures,
            index=architectures.index("cnn_gru") if "cnn_gru" in architectures else 0,
            help="cnn_gru: the shipped model's design (CNN features read by a GRU). "
            "mini_xception: smaller and faster. cnn_wide: cnn_gru without the GRU.",
        )
        epochs = first[1].number_input(
            "Epochs", min_value=1, max_value=500, value=DEFAULT_EPOCHS, step=1
        )
        batch_size = first[2].select_slider("Batch size", [16, 32, 64, 128, 256], value=64)
        learning_rate = first[3].number_input(
            "Learning rate",
            min_value=1e-5,
            max_value=0.5,
            value=3e-4 if shipped else 2e-3,
            step=1e-4,
            format="%.4f",
            help="3e-4 suits fine-tuning a trained model; from random weights, about 2e-3.",
        )
        second = st.columns(3)
        subset = second[0].number_input(
            "Training images (0 = all 28,709)",
            min_value=0,
            max_value=30000,
            value=0,
            step=500,
            help="All of Training by default (as the shipped model); a stratified subset "
            "makes a run shorter, and a model from random weights weaker.",
        )
        val_subset = second[1].number_input(
            "Validation images (0 = all 3,589)",
            min_value=0,
            max_value=4000,
            value=0,
            step=100,
            help="A stratified subset of PublicTest, checked after every epoch.",
        )
        name = second[2].text_input(
            "Run name",
            value="",
            placeholder="automatic: architecture-date-time",
            help="Letters, digits, '_', '-' and '.'. Leave it empty for "
            "a name made of the architecture and the time.",
        )
        third = st.columns([2, 2, 1, 1])
        start_from = third[0].selectbox(
            "Start from",
            [None, *sources],
            index=1 + list(sources).index("shipped") if shipped else 0,
            format_func=lambda key: "random weights" if key is None else sources[key].label,
            help="Fine-tune: begin from the weights of the shipped model or of a run's best "
            "model (the same architecture), instead of random weights.",
        )
        teachers = third[1].multiselect(
            "Distil from (teachers)",
            list(sources),
            format_func=lambda key: sources[key].label,
            placeholder="no teacher",
            help="Soft targets from these models (averaged, and with their mirrored faces), "
            "computed once when the run starts and cached in its folder. Any "
            "architecture; a bigger teacher makes a better student, and takes longer "
            "to compute on a CPU.",
        )
        distill_weight = third[2].number_input(
            "Teacher weight",
            min_value=0.0,
            max_value=1.0,
            value=0.7,
            step=0.1,
            help="The share of the loss that follows the teachers (the rest follows the "
            "labels). Used only with a teacher.",
        )
        mix = third[3].selectbox(
            "Image mixing",
            MIXES,
            help="mixup blends two faces and their targets; CutMix "
            "pastes a patch of one face onto another.",
        )
        fourth = st.columns([2, 2, 2])
        captured_count = captured_faces_count(runs)
        labels = fourth[0].selectbox(
            "Labels to learn",
            LABEL_SOURCES,
            index=list(LABEL_SOURCES).index(default_labels),
            format_func=LABEL_CHOICES.get,
            help="FER2013's own labels (one person per face), or FER+'s crowd: ten people's "
            "votes for every face (needs FERPLUS_PATH, FER+'s fer2013new.csv). With the "
            "vote shares, the model's probabilities mean the share of people who would "
            "call a face each emotion.",
        )
        path_augment = fourth[1].checkbox(
            "Augment for the whole path",
            value=bool(shipped_config.get("path_augment")),
            help="Also train on what the detector's crop does to a face: small faces upscaled, "
            "light, noise, a hidden part.",
        )
        add_captured = fourth[2].checkbox(
            f"Add captured faces ({captured_count:,})",
            value=False,
            disabled=not captured_count,
            help="Add the labelled faces people captured on the Live page to the Training "
            "rows, best with Start from a trained model (fine-tuning). The run's model card "
            "says how many were used. Deleting a person deletes their captured faces, but not "
            "what a model already learned from them.",
        )
        submitted = st.form_submit_button(
            "Start training",
            type="primary",
            icon=":material/play_arrow:",
            disabled=not (dataset and admin),
        )
    if submitted:
        name = name.strip() or new_run_name(architecture)
        try:
            # Model files are looked up by key in this server's own list, never taken from
            # the form. One that vanished since the page was drawn is reported, not guessed.
            if (
                start_from is not None
                and start_from not in sources
                or any(key not in sources for key in teachers)
            ):
                raise FerError("A chosen model is no longer available; choose again.")
            check_start_from(sources.get(start_from), architecture)
            if labels != "fer2013" and not crowd_file:
                raise FerError(
                    "Training on the crowd's labels needs FER+'s fer2013new.csv: "
                    "start the app with FERPLUS_PATH set to it (download it from "
                    "the FERPlus repository)."
                )
            # The page writes the run's config.json; the process reads its settings from it.
            start_training(
                TrainConfig(
                    architecture=architecture,
                    epochs=int(epochs),
                    batch_size=int(batch_size),
                    learning_rate=float(learning_rate),
                    train_subset=int(subset) or None,
                    validation_subset=int(val_subset) or None,
                    data_path=dataset,
                    runs_dir=str(runs),
                    run_name=name,
                    init_from=str(sources[start_from].path) if start_from else None,
                    # a trained model needs no warm-up: the rate starts where it was asked
                    warmup_epochs=0 if start_from else TrainConfig.warmup_epochs,
                    teacher=[str(sources[key].path) for key in teachers] or None,
                    distill_weight=float(distill_weight),
                    mix=mix,
                    labels=labels,
                    ferplus_path=crowd_file if labels != "fer2013" else None,
                    path_augment=bool(path_augment),
                    captured_faces=bool(add_captured),
                )
            )
        except (FerError, OSError) as exc:
            show_error(
                str(exc)
                if isinstance(exc, FerError)
                else f"Could not start the run ({type(exc).__name__})."
            )
        else:
            st.session_state[WATCHED_KEY] = name
            st.session_state[RUN_CHOICE_KEY] = name  # show the new run below
            st.success(
                f"Started run {escape_markdown(name)}. It first loads the data (tens of seconds), "
                "then trains.",
                icon=":material/rocket_launch:",
            )
    st.caption(
        f"This machine has {os.cpu_count()} CPU cores; runs started at the same time "
        "share them. Runs are stored in the folder named by FER_RUNS_DIR (default: "
        "`runs` where the app was started)."
    )

# ----------------------------------------------------------------------------- runs table


def runs_table(statuses: dict, evaluations: dict) -> None:
    current_active = active_run_dir()
    table = pd.DataFrame(
        [
            {
                "run": name,
                "active": current_active is not None
                and Path(status.path).resolve() == current_active.resolve(),
                "status": status.activity,
                "architecture": status.config.get("architecture", "?"),
                "epochs done": f"{status.epochs_done}/{status.epochs or '?'}",
                "best val acc": status.best_val_accuracy
                if (status.best_val_accuracy or -1) >= 0
                else None,
                "val macro-F1": (status.metrics or {}).get("macro_f1"),
                "PublicTest acc": (
                    (evaluations[name].report or {}).get("accuracy")
                    if evaluations[name].phase == "done"
                    else None
                ),
                # text throughout: a column of numbers and "all" is not one Arrow type
                "train images": str(status.config.get("train_subset") or "all"),
            }
            for name, status in statuses.items()
        ]
    )
    st.dataframe(
        table,
        hide_index=True,
        height=table_height(len(table)),
        placeholder=MISSING,
        column_config={
            "active": st.column_config.CheckboxColumn("app model", width="small"),
            "status": st.column_config.TextColumn("status", width="large"),
            "best val acc": st.column_config.NumberColumn(format="percent"),
            "val macro-F1": st.column_config.NumberColumn(format="%.3f"),
            "PublicTest acc": st.column_config.NumberColumn(format="percent"),
        },
    )


def runs_section(busy_when_drawn: dict) -> None:
    """The runs table, the run picker and the chosen run's panel, drawn from one reading of
    every run's folder (``run_status``), so that the three never disagree (they did: the
    panel said "training, epoch 1/10" while the picker said "starting"). While a run is busy
    this is drawn again every ``POLL_SECONDS``; when a run starts or ends, the whole page is
    (its buttons and the app's model below change with it)."""
    summaries = list_runs(runs)
    statuses = {s["name"]: run_status(s["path"]) for s in summaries}
    evaluations = {name: evaluation_status(status.path) for name, status in statuses.items()}
    busy = busy_runs(statuses, evaluations)
    if busy != busy_when_drawn:  # a run started or ended, or a phase changed
        st.rerun()
    if not statuses:
        st.info("No runs yet. Start one above.", icon=":material/model_training:")
        return
    st.subheader("Runs")
    runs_table(statuses, evaluations)
    names = list(statuses)
    watched = st.session_state.get(WATCHED_KEY)
    default = (
        names.index(watched)
        if watched in names
        else next((i for i, n in enumerate(names) if statuses[n].phase in ACTIVE_PHASES), 0)
    )
    if st.session_state.get(RUN_CHOICE_KEY) not in names:
        st.session_state[RUN_CHOICE_KEY] = names[default]
    chosen = st.selectbox(
        "Run", names, key=RUN_CHOICE_KEY, format_func=lambda n: f"{n} ({statuses[n].phase})"
    )
    with st.container(border=True):
        run_panel(statuses[chosen], evaluations[chosen])


def _busy_now() -> dict:
    statuses = {s["name"]: run_status(s["path"]) for s in list_runs(runs)}
    return busy_runs(statuses, {n: evaluation_status(s.path) for n, s in statuses.items()})


busy_at_start = _busy_now()
(st.fragment(runs_section, run_every=POLL_SECONDS) if busy_at_start else runs_section)(
    busy_at_start
)

# ----------------------------------------------------------------------------- app model

st.subheader("The app's model")
message = st.session_state.pop("activation_message", None)
if message:
    st.success(message, icon=":material/check_circle:")
with user_errors():
    active = active_model()
    if active.source == "run":
        st.markdown(f"The app uses **{escape_markdown(active.model.name)}**, trained here.")
        if st.button("Back to the shipped model", icon=":material/undo:", disabled=not admin):
            use_shipped_model(runs)
            st.session_state["activation_message"] = "The app uses the shipped model again."
            st.rerun()
    else:
        st.markdown(
            f"The app uses the shipped model **{escape_markdown(active.model.name)}**. "
            "Train a run and press *Use in the app* to switch; you can always come back."
        )
    if active.source == "session":
        st.markdown(
            f"This session uses **{escape_markdown(active.model.name)}**, chosen for "
            "this session only."
        )
        if st.button("Use what everyone uses", icon=":material/undo:"):
            choose_for_session(None)
            st.rerun(scope="app")
