"""Dataset explorer: FER2013's classes, samples, mean faces, and its flaws made visible."""

from pathlib import Path

import numpy as np
import streamlit as st

from app_lib.training.data_source import data_path, roots_for, set_data_path
from app_lib.ui.charts import class_counts_figure, confusion_figure
from app_lib.ui.text import escape_markdown, shorten, show_error
from app_lib.uploads.budget import (
    UploadRule,
    expect_uploads,
    forget_replaced_uploaders,
    release_uploads,
    uploader_key,
)
from app_lib.uploads.session_files import (
    check_upload_size,
    discard_upload,
    max_dataset_mb,
    store_upload,
)
from fer_core import EMOTIONS, FerError, load_fer2013
from fer_core.data.explore import class_counts, find_flaws, mean_faces
from fer_core.data.ferplus import default_ferplus_path, disagreement, load_ferplus
from fer_core.data.media import DATASET_SUFFIXES
from fer_core.data.paths import shown_path
from fer_core.recognition.results import frame_to_csv_bytes

PAGE_SIZE = 48
PATH_INPUT_KEY = "dataset_path_input"
UPLOAD_KEY = "dataset_upload"
UPLOAD_GENERATION_KEY = "dataset_upload_generation"
UPLOADED_FILE_KEY = "dataset_uploaded_file"  # the StoredUpload of this tab's uploaded CSV
SOURCE_ERROR_KEY = "dataset_source_error"  # why the last path or upload was refused
UPLOAD_NAME_KEY = "dataset_upload_name"  # the user's name of the uploaded CSV (display only)

st.title("Dataset explorer")
st.caption(
    "FER2013: 35,887 grey 48×48 faces in seven classes, split into Training, PublicTest "
    "(for choosing models) and PrivateTest (for reporting). Look at what a model learns "
    "from, flaws included."
)


def _stamp(path: str) -> tuple:
    target = Path(path).expanduser()
    try:
        stat = target.stat()
    except OSError:
        return (None, None)
    return (stat.st_size, stat.st_mtime_ns)


@st.cache_data(show_spinner=False, max_entries=2)
def load_dataset(path: str, stamp: tuple, within: tuple[str, ...]):
    """Read FER2013 once per path (and file version), with a progress bar. ``within``: the
    allowed folders holding ``path`` (part of the cache key: sessions share a dataset from the
    data folders, and no session reaches another's upload through the cache)."""
    name = escape_markdown(shorten(Path(path).name or path))
    bar = st.progress(0.0, text=f"Reading {name}…")
    try:
        return load_fer2013(
            path,
            skip_bad=True,
            within=[Path(w) for w in within],
            progress=lambda fraction, message: bar.progress(
                min(max(fraction, 0.0), 1.0), text=f"Reading {name}: {message}"
            ),
        )
    finally:
        bar.empty()


@st.cache_data(
    show_spinner="Looking for blank images, duplicates and label conflicts…", max_entries=2
)
def dataset_flaws(path: str, stamp: tuple, within: tuple[str, ...]):
    data = load_dataset(path, stamp, within)
    return find_flaws(data.images, data.labels, data.usage, data.row_numbers)


@st.cache_data(show_spinner="Reading the FER+ votes…", max_entries=2)
def crowd_votes(
    path: str, stamp: tuple, data_path_: str, data_stamp: tuple, within: tuple[str, ...]
):
    """FER+'s votes checked against the loaded FER2013 (cached per both files' versions),
    and where the two disagree."""
    data = load_dataset(data_path_, data_stamp, within)
    votes = load_ferplus(path, data)
    return votes, disagreement(data, votes)


SHORT_SPLIT = {"Training": "train", "PublicTest": "public", "PrivateTest": "private"}


def big(image: np.ndarray, scale: int = 2) -> np.ndarray:
    return np.kron(image, np.ones((scale, scale), dtype=np.uint8))


def stretched(image: np.ndarray) -> np.ndarray:
    """Contrast-stretched to the full 0-255 range (mean faces are low in contrast)."""
    low, high = float(image.min()), float(image.max())
    if high <= low:
        return image
    return np.round((image.astype(np.float32) - low) * 255.0 / (high - low)).astype(np.uint8)


# ----------------------------------------------------------------------------- the source


def _path_changed():
    try:
        set_data_path(st.session_state[PATH_INPUT_KEY])
        st.session_state.pop(SOURCE_ERROR_KEY, None)
    except FerError as exc:
        kept = data_path()
        st.session_state[SOURCE_ERROR_KEY] = str(exc) + (
            f" The dataset loaded before ({Path(kept).name}) stays in use." if kept else ""
        )
    st.session_state.pop(UPLOAD_NAME_KEY, None)


def _upload_changed(key: str):
    """Store the uploaded CSV on disk, take it out of the server's memory and point the path
    box at it; the uploader is then emptied (a new one). This runs as the uploader's
    on_change callback, before any widget of the rerun exists: writing the path box's state
    after the box was created raised StreamlitWidgetAlreadyInstantiatedError."""
    uploaded = st.session_state.get(key)
    if uploaded is None:
        return
    try:
        check_upload_size(uploaded, max_dataset_mb(), "dataset", "server.maxUploadSize")
        stored = store_upload(uploaded)
        saved = set_data_path(str(stored.path))
        previous = st.session_state.get(UPLOADED_FILE_KEY)
        if previous is not None and previous.key != stored.key:
            discard_upload(previous)  # one uploaded dataset per tab
        st.session_state[UPLOADED_FILE_KEY] = stored
        st.session_state[PATH_INPUT_KEY] = saved
        st.session_state[UPLOAD_NAME_KEY] = uploaded.name
        st.session_state.pop(SOURCE_ERROR_KEY, None)
    except FerError as exc:
        st.session_state[SOURCE_ERROR_KEY] = str(exc)
    finally:
        release_uploads([uploaded])
        st.session_state[UPLOAD_GENERATION_KEY] = st.session_state.get(UPLOAD_GENERATION_KEY, 0) + 1


if PATH_INPUT_KEY not in st.session_state:
    st.session_state[PATH_INPUT_KEY] = data_path()

path_column, upload_column = st.columns([3, 2], gap="large")
with path_column:
    st.text_input(
        "Path to fer2013.csv, fer2013.csv.gz or a folder with train/ and test/",
        key=PATH_INPUT_KEY,
        on_change=_path_changed,
        placeholder="/data/fer2013/fer2013.csv",
        help="A path on the server, inside the data folders it allows "
        "(FER_DATA_DIRS). The Training page uses it too. An administrator's "
        "choice is also the default for new tabs; FER2013_PATH comes first.",
    )
with upload_column:
    generation = st.session_state.get(UPLOAD_GENERATION_KEY, 0)
    upload_key = uploader_key(UPLOAD_KEY, generation)
    forget_replaced_uploaders(UPLOAD_KEY, generation)  # their values held the files' bytes
    rule = UploadRule(max_dataset_mb(), "dataset", "server.maxUploadSize")
    expect_uploads(dict.fromkeys(DATASET_SUFFIXES, rule))  # anything else: refused on arrival
    st.file_uploader(
        "…or upload fer2013.csv (.gz)",
        type=["csv", "gz"],
        key=upload_key,
        on_change=_upload_changed,
        args=(upload_key,),
        help=f"Up to {max_dataset_mb():g} MB: the uncompressed CSV (301 MB) fits. "
        "Kept only while this browser tab is open.",
    )

if st.session_state.get(SOURCE_ERROR_KEY):
    show_error(st.session_state[SOURCE_ERROR_KEY])

path = data_path()
if not path:
    st.info(
        "Give the path of FER2013 above, upload it, or start the app with FER2013_PATH "
        "set. FER2013 is not shipped with the app: download `fer2013.csv` from the "
        'Kaggle challenge "Challenges in Representation Learning: Facial Expression '
        'Recognition".',
        icon=":material/folder_open:",
    )
    st.stop()

within = roots_for(path)  # the folders this read may touch (part of the cache key)
try:
    data = load_dataset(path, _stamp(path), within)
except FerError as exc:
    message = str(exc)
    uploaded_copy = st.session_state.get(UPLOADED_FILE_KEY)
    upload_name = st.session_state.get(UPLOAD_NAME_KEY)
    if uploaded_copy is not None and upload_name and str(uploaded_copy.path) == str(path):
        # The message names the server's copy (a hash name): say the visitor's own file.
        message = message.replace(str(uploaded_copy.path), uploaded_copy.path.name)
        message = message.replace(uploaded_copy.path.name, shorten(upload_name))
    show_error(message)
    st.stop()

splits = data.splits_present()
counts = class_counts(data.labels, data.usage)
metric_columns = st.columns(4)
metric_columns[0].metric("Images", f"{len(data):,}")
metric_columns[1].metric("Splits", len(splits), help=", ".join(splits))
metric_columns[2].metric(
    "Rows skipped",
    f"{len(data.skipped):,}",
    help="Rows that are not valid FER2013 rows (wrong pixel count, bad "
    "label, ...). They are left out and listed below.",
)
metric_columns[3].metric(
    "Rarest class",
    f"{counts[list(EMOTIONS)].sum().idxmin()}",
    f"{counts[list(EMOTIONS)].sum().min() / len(data) * 100:.1f}% of images",
    delta_color="off",
    delta_arrow="off",
)
upload_name = st.session_state.get(UPLOAD_NAME_KEY)
st.caption(
    "Source: "
    + escape_markdown(
        f"{shorten(upload_name)} (uploaded)" if upload_name else shown_path(data.source)
    )
)
if data.skipped:
    with st.expander(f"{len(data.skipped):,} rows skipped"):
        st.code(
            "\n".join(data.skipped[:200]) + ("\n…" if len(data.skipped) > 200 else ""),
            language=None,
        )

classes_tab, samples_tab, mean_tab, flaws_tab, crowd_tab = st.tabs(
    ["Classes", "Samples", "Mean faces", "Flaws", "Crowd labels (FER+)"]
)

# ----------------------------------------------------------------------------- classes

with classes_tab:
    st.plotly_chart(
        class_counts_figure(counts), key="class-counts", config={"displayModeBar": False}
    )
    shares = counts[list(EMOTIONS)].div(counts["total"], axis=0)
    table = counts.copy()
    for emotion in EMOTIONS:
        table[emotion] = [
            f"{c:,} ({s * 100:.1f}%)" for c, s in zip(counts[emotion], shares[emotion])
        ]
    table["total"] = [f"{t:,}" for t in counts["total"]]
    st.dataframe(table)
    overall = counts[list(EMOTIONS)].sum()
    if overall.sum():
        shares_all = overall / overall.sum()
        common, rare = shares_all.idxmax(), shares_all.idxmin()
        balance = (
            "The classes are far from balanced"
            if shares_all[common] > 2 * shares_all[rare]
            else "The classes are about even"
        )
        st.caption(
            f"{balance} in this data: {common} is {shares_all[common] * 100:.1f}% of the "
            f"images and {rare} {shares_all[rare] * 100:.1f}%. Accuracy alone hides how "
            "badly a model does on rare classes; the Model card page reports per-class "
            "recall and macro-F1."
        )

# ----------------------------------------------------------------------------- flaws (computed once)

try:
    flaws = dataset_flaws(path, _stamp(path), within)
except FerError as exc:
    flaws = None
    show_error(exc)

# ----------------------------------------------------------------------------- samples

with samples_tab:
    filter_columns = st.columns(3)
    split_choice = filter_columns[0].selectbox("Split", ["all"] + splits, key="sample_split")
    emotion_choice = filter_columns[1].selectbox(
        "Class", ["all"] + list(EMOTIONS), key="sample_class"
    )
    flag_options = {
        "all images": None,
        "all-black or flat": "blank",
        "exact duplicates": "duplicate",
        "duplicates across splits": "cross",
        "conflicting labels": "conflict",
    }
    flag_choice = filter_columns[2].selectbox(
        "Show", list(flag_options), key="sample_flag", disabled=flaws is None
    )
    mask = np.ones(len(data), dtype=bool)
    if split_choice != "all":
        mask &= data.usage == split_choice
    if emotion_choice != "all":
        mask &= data.labels == EMOTIONS.index(emotion_choice)
    flag = flag_options[flag_choice]
    if flag and flaws is not None:
        flags = flaws.row_flags
        wanted = {
            "blank": flags["all_black"] | flags["flat"],
            "duplicate": flags["duplicate_group"] >= 0,
            "cross": flags["cross_split"],
            "conflict": flags["conflicting_label"],
        }[flag]
        selected = np.zeros(len(data), dtype=bool)
        selected[flags.loc[wanted, "position"].to_numpy()] = True
        mask &= selected
    positions = np.flatnonzero(mask)
    if flag in ("duplicate", "cross", "conflict") and flaws is not None and len(positions):
        # Keep the copies of one image next to each other.
        group_of = dict(zip(flaws.row_flags["position"], flaws.row_flags["duplicate_group"]))
        positions = np.array(sorted(positions, key=lambda p: (group_of.get(p, -1), p)))
    pages = max(1, -(-len(positions) // PAGE_SIZE))
    st.caption(f"{len(positions):,} images match.")
    if len(positions):
        page = st.pagination(
            pages, key=f"sample_page-{split_choice}-{emotion_choice}-{flag}", max_visible_pages=9
        )
        shown = positions[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        row_numbers = data.row_numbers if data.row_numbers is not None else np.arange(len(data))
        group_of = (
            dict(zip(flaws.row_flags["position"], flaws.row_flags["duplicate_group"]))
            if flaws is not None
            else {}
        )
        captions = []
        for position in shown:
            caption = f"#{row_numbers[position]} {EMOTIONS[data.labels[position]]}"
            if split_choice == "all":
                caption += f" · {SHORT_SPLIT.get(data.usage[position], data.usage[position])}"
            if group_of.get(position, -1) >= 0:
                caption += f" · dup {group_of[position]}"
            captions.append(caption)
        st.image([big(data.images[p]) for p in shown], caption=captions, width=96)
        st.caption(
            "Caption: row number in the CSV (0-based data row), label, split, and the "
            "duplicate group an image belongs to."
        )

# ----------------------------------------------------------------------------- mean faces

with mean_tab:
    mean_columns = st.columns(2)
    mean_split = mean_columns[0].selectbox("Split", ["all"] + splits, key="mean_split")
    exclude = mean_columns[1].checkbox(
        "Leave out blank images and extra copies of duplicates",
        value=True,
        key="mean_exclude",
        disabled=flaws is None,
    )
    stretch = mean_columns[1].checkbox("Stretch contrast", value=True, key="mean_stretch")
    mask = np.ones(len(data), dtype=bool) if mean_split == "all" else data.usage == mean_split
    if exclude and flaws is not None:
        flagged = flaws.row_flags
        blank = flagged.loc[flagged["all_black"] | flagged["flat"], "position"].to_numpy()
        copies = [p for positions in flaws.groups["positions"] for p in positions[1:]]
        mask[blank] = False
        mask[np.asarray(copies, dtype=np.int64)] = False
    faces = mean_faces(data.images, data.labels, mask)
    members = np.bincount(data.labels[mask], minlength=len(EMOTIONS))
    shown = [(emotion, face) for emotion, face in faces.items() if face is not None]
    if shown:
        st.image(
            [big(stretched(face) if stretch else face, 3) for _, face in shown],
            caption=[
                f"{emotion} (n={members[EMOTIONS.index(emotion)]:,})" for emotion, face in shown
            ],
            width=124,
        )
    st.caption(
        "The average of every face in a class. Faces are roughly aligned in FER2013, so "
        "the averages keep the class's typical expression: an open smile for happy, "
        "raised brows and open mouth for surprise, a frown for angry."
    )

# ----------------------------------------------------------------------------- flaws

with flaws_tab:
    if flaws is None:
        st.info("The flaw analysis is not available for this data.")
    else:
        summary = flaws.summary()
        flaw_columns = st.columns(5)
        flaw_columns[0].metric(
            "All-black images",
            summary["all_black"],
            help="Every pixel is 0: nothing to learn, yet labelled.",
        )
        flaw_columns[1].metric(
            "Flat images", summary["flat"], help="Almost no contrast (a uniform grey placeholder)."
        )
        flaw_columns[2].metric(
            "Duplicate groups",
            f"{summary['duplicate_groups']:,}",
            f"{summary['duplicate_rows']:,} rows",
            delta_color="off",
            delta_arrow="off",
            help="Sets of rows with byte-identical pixels.",
        )
        flaw_columns[3].metric(
            "Across splits",
            f"{summary['cross_split_groups']:,}",
            help="Duplicate groups with rows in more than one split: a test "
            "image the model has already seen in training.",
        )
        flaw_columns[4].metric(
            "Conflicting labels",
            f"{summary['conflicting_groups']:,}",
            help="Identical images labelled with different emotions.",
        )
        st.markdown(
            "What this means for a model: blank images teach nothing and cap accuracy; "
            "duplicates across splits make test scores look better than they are (the model "
            "has seen those faces); conflicting labels are a floor on the error any model must "
            "make. Some images are not faces at all (text, drawings, placeholders): browse "
            "the samples to see them."
        )
        if summary["all_black"] or summary["flat"]:
            st.markdown("**All-black and flat images**")
            blank = flaws.row_flags[flaws.row_flags["all_black"] | flaws.row_flags["flat"]]
            st.image(
                [big(data.images[p]) for p in blank["position"]],
                caption=[
                    f"#{r} {lab} · {SHORT_SPLIT.get(u, u)}"
                    for r, lab, u in zip(blank["row"], blank["label"], blank["usage"])
                ],
                width=96,
            )
        conflicting = flaws.groups[flaws.groups["conflicting_labels"]]
        if len(conflicting):
            st.markdown(
                f"**Identical images with different labels** "
                f"(first {min(len(conflicting), 16)} of {len(conflicting)})"
            )
            first = conflicting.head(16)
            st.image(
                [big(data.images[g["positions"][0]]) for _, g in first.iterrows()],
                caption=[" / ".join(g["labels"]) for _, g in first.iterrows()],
                width=96,
            )
        groups = flaws.groups.drop(columns=["positions"]).copy()
        groups["rows"] = groups["rows"].map(lambda rows: ", ".join(map(str, rows)))
        groups["usages"] = groups["usages"].map(", ".join)
        groups["labels"] = groups["labels"].map(", ".join)
        st.markdown("**Duplicate groups**")
        only = st.radio(
            "Groups",
            ["across splits", "conflicting labels", "all"],
            horizontal=True,
            key="group_filter",
            label_visibility="collapsed",
        )
        view = groups
        if only == "across splits":
            view = groups[groups["spans_splits"]]
        elif only == "conflicting labels":
            view = groups[groups["conflicting_labels"]]
        st.dataframe(
            view,
            hide_index=True,
            height=300,
            column_config={
                "group": st.column_config.NumberColumn("group", format="%d"),
                "first_row": st.column_config.NumberColumn("first row", format="%d"),
            },
        )
        report = flaws.row_flags.drop(columns=["position"])
        st.download_button(
            "Download the flagged rows (CSV)",
            data=frame_to_csv_bytes(report),
            file_name="fer2013_flaws.csv",
            mime="text/csv",
            on_click="ignore",
            icon=":material/download:",
            help="One line per flagged row: row number, split, label and "
            "flags. Use it to clean the data before training.",
        )

# ----------------------------------------------------------------------------- crowd labels

FERPLUS_INPUT_KEY = "ferplus_path_input"


def _crowd_path() -> str:
    """The FER+ file this tab reads: the one typed here (inside the allowed folders, as the
    dataset path), else $FERPLUS_PATH."""
    from app_lib.training.data_source import allowed_roots
    from fer_core.data.paths import resolve_user_path

    typed = (st.session_state.get(FERPLUS_INPUT_KEY) or "").strip()
    if typed:
        return str(resolve_user_path(typed, allowed_roots()))
    return default_ferplus_path() or ""


with crowd_tab:
    st.caption(
        "FER2013 was labelled by one person per face. FER+ (Microsoft, MIT licence) "
        "asked ten people about every face. Download `fer2013new.csv` from the FERPlus "
        "repository and give its path here or in FERPLUS_PATH; the app never requires "
        "it."
    )
    st.text_input(
        "Path to FER+'s fer2013new.csv",
        key=FERPLUS_INPUT_KEY,
        placeholder=default_ferplus_path() or "/data/ferplus/fer2013new.csv",
    )
    typed_crowd = bool((st.session_state.get(FERPLUS_INPUT_KEY) or "").strip())
    try:
        crowd_path = _crowd_path()
        crowd = (
            crowd_votes(crowd_path, _stamp(crowd_path), path, _stamp(path), within)
            if crowd_path
            else None
        )
    except FerError as exc:
        crowd = None
        if typed_crowd:
            show_error(exc)
        else:  # the server's FER+ belongs to another dataset than the one loaded here
            st.warning(
                escape_markdown(
                    f"The FER+ votes this server was given (FERPLUS_PATH) "
                    f"do not fit the dataset loaded here: {exc} Load the "
                    "FER2013 they describe, or give the matching "
                    "fer2013new.csv above."
                ),
                icon=":material/info:",
            )
    if crowd is not None:
        votes, report = crowd
        rows = [
            {
                "split": usage,
                "faces": f"{r['faces']:,}",
                "clear majority": f"{r['clear_faces']:,}",
                "FER2013 label = majority": f"{r['label_matches_majority']:,} "
                f"({r['label_matches_majority'] / max(r['clear_faces'], 1) * 100:.1f}%)",
                "FER2013 label got no vote": f"{r['label_got_no_vote']:,} "
                f"({r['label_got_no_vote'] / max(r['faces'], 1) * 100:.1f}%)",
                "mostly unknown / not a face / contempt": f"{r['not_trainable']:,}",
            }
            for usage, r in report.items()
        ]
        st.dataframe(rows, hide_index=True)
        st.caption(
            "A clear majority: more than half of the ten people chose one of the seven "
            "emotions. Where FER2013's label and that majority differ, at least one of "
            "them is wrong; a model trained on FER2013's labels learns its labeller's "
            "habits too."
        )
        crowd_split = st.selectbox("Split", list(report), key="crowd_split")
        table = np.asarray(report[crowd_split]["table"])
        st.plotly_chart(
            confusion_figure(
                table.tolist(), True, rows="FER2013's label", columns="the crowd's majority"
            ),
            key="crowd-table",
            config={"displayModeBar": False},
        )
        st.caption(
            "Rows: FER2013's label; columns: the crowd's majority (faces with a clear "
            "majority), as shares of each row."
        )
        from fer_core.data.ferplus import aligned

        aligned_votes = aligned(votes, data)
        majority = aligned_votes.clear_majority()
        emotion_votes = aligned_votes.emotion_votes()
        pick = st.columns(2)
        fer_class = pick[0].selectbox("FER2013 says", list(EMOTIONS), key="crowd_fer_class")
        crowd_class = pick[1].selectbox(
            "The crowd says", list(EMOTIONS), index=6, key="crowd_crowd_class"
        )
        wanted = np.flatnonzero(
            (data.usage == crowd_split)
            & (data.labels == EMOTIONS.index(fer_class))
            & (majority == EMOTIONS.index(crowd_class))
        )
        st.caption(
            f"{len(wanted):,} {crowd_split} faces labelled {fer_class} by FER2013 and "
            f"{crowd_class} by most of the ten people."
        )
        if len(wanted):
            shown = wanted[:PAGE_SIZE]
            row_numbers = data.row_numbers if data.row_numbers is not None else np.arange(len(data))
            st.image(
                [big(data.images[p]) for p in shown],
                caption=[
                    f"#{row_numbers[p]} · {crowd_class} "
                    f"{emotion_votes[p, EMOTIONS.index(crowd_class)]}/10"
                    for p in shown
                ],
                width=96,
            )
