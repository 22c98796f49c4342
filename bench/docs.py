"""Write docs/model.md from where its numbers were measured: the shipped models' cards
(``models/*.card.json``) and ``bench/*.json``, and the measured blocks of other pages (between
``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``, e.g. the upload memory in
docs/sharing.md). Nothing in them is typed by hand; tests/test_docs.py fails when a page is
not what this writes.

    python -m bench.docs            # rewrite docs/model.md and the measured blocks
    python -m bench.docs --check    # exit 1 if any is out of date
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from fer_core.faces import BLAZEFACE, DETECTORS, HAAR, detector_info
from fer_core.models.card import ModelCard, balanced_of, read_card

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "model.md"
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# as the tables name them
DETECTOR_NAMES = {name: detector_info(name).short_label for name in DETECTORS}
LABEL_NAMES = {
    "fer2013": "FER2013's labels",
    "ferplus-votes": "FER+ vote shares",
    "ferplus-majority": "FER+ majority",
}


def _load(name: str) -> dict:
    path = ROOT / "bench" / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _pct(value, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def _pt(value) -> str:
    return "—" if value is None else f"{value * 100:+.2f} pt"


def _path_row(card: ModelCard, labels: str, detector: str) -> dict:
    """The photo preset's plain whole-path row ({} when not measured)."""
    return card.whole_path_row(labels, detector)[0] or {}


def _cards() -> dict[str, ModelCard]:
    cards = {}
    for key, stem in (("crowd", "cnn_gru"), ("fer2013", "cnn_gru_fer2013")):
        card = read_card(ROOT / "models" / f"{stem}.keras")
        if card is not None:
            cards[key] = card
    return cards


def shipped_table(cards: dict) -> list[str]:
    lines = [
        "| | "
        + " | ".join(
            f"`{c.name}` ({'default' if k == 'crowd' else 'alternative'})" for k, c in cards.items()
        )
        + " |",
        "|---|" + "---|" * len(cards),
    ]

    def row(label, get):
        lines.append(f"| {label} | " + " | ".join(get(c) for c in cards.values()) + " |")

    row(
        "trained on",
        lambda c: LABEL_NAMES.get(c.trained_labels, "?"),
    )
    row("FER2013 PrivateTest, its labels", lambda c: _pct(c.test["accuracy"], 2))
    row(
        "the same without the test images that copy a Training image",
        lambda c: (
            f"{_pct(c.held_out['without_training_copies']['accuracy'], 2)} "
            f"({c.held_out['without_training_copies']['removed']} removed)"
        ),
    )
    row(
        "agreement with FER+'s clear majority (PrivateTest)",
        lambda c: (
            f"{_pct(c.held_out['ferplus']['majority_agreement'], 2)} of "
            f"{c.held_out['ferplus']['clear_faces']:,}"
        ),
    )
    row(
        "FER+ paper's majority protocol (PrivateTest)",
        lambda c: (
            f"{_pct(c.held_out['ferplus']['plurality_agreement'], 2)} of "
            f"{c.held_out['ferplus']['emotion_faces']:,}"
        ),
    )
    for detector, name in DETECTOR_NAMES.items():
        row(
            f"whole path, {name} photo, end to end, FER+ majority",
            lambda c, d=detector: _pct(_path_row(c, "ferplus-majority", d).get("end_to_end")),
        )
        row(
            "  its framing cost (crop minus path, faces found)",
            lambda c, d=detector: _pt(_path_row(c, "ferplus-majority", d).get("framing_cost")),
        )
        row(
            f"whole path, {name} photo, end to end, FER2013's labels",
            lambda c, d=detector: _pct(_path_row(c, "fer2013", d).get("end_to_end")),
        )
    row(
        "balanced accuracy (mean per-class recall), FER2013's labels",
        lambda c: _pct(c.balanced_accuracy("fer2013"), 2),
    )
    row(
        "balanced accuracy, FER+ clear majority",
        lambda c: _pct(c.balanced_accuracy("ferplus"), 2),
    )
    row(
        "posed faces (CK+48 dev): accuracy / balanced / angry recall",
        lambda c: (
            f"{_pct(c.posed['accuracy'])} / {_pct(c.posed['balanced_accuracy'])} / "
            f"{_pct(c.posed['recall']['angry'])}"
            if c.posed
            else "not measured (`python -m bench.posed --write-card`)"
        ),
    )
    row("macro-F1, FER2013's labels", lambda c: f"{c.test['macro_f1']:.3f}")
    row(
        "macro-F1, FER+ majority",
        lambda c: f"{c.held_out['ferplus']['majority_report']['macro_f1']:.3f}",
    )
    row(
        "calibration against the crowd's vote shares (ECE, 15 bins)",
        lambda c: (
            f"{c.held_out['ferplus']['crowd_ece']:.3f}"
            if c.held_out["ferplus"].get("crowd_ece") is not None
            else "not measured"
        ),
    )
    row(
        "KL(crowd ‖ model), total variation",
        lambda c: (
            f"{c.held_out['ferplus']['crowd_kl']:.3f}, {c.held_out['ferplus']['crowd_tv']:.3f}"
        ),
    )
    row(
        "one face, as shipped (card)",
        lambda c: (
            f"{c.latency['batch_1']['median_ms']:.3f} ms "
            f"({c.latency['batch_1'].get('backend', '?')})"
        ),
    )
    row(
        "files",
        lambda c: " + ".join(
            f"{f['file']} {f['bytes'] / 1e6:.2f} MB"
            + (f" ({f['quantization']})" if f.get("quantization") else "")
            for f in c.files.values()
        ),
    )
    return lines


def training_section(card: ModelCard) -> list[str]:
    training = card.training
    config = training.get("config") or {}
    base = (training.get("initialised_from") or {}).get("file")
    return [
        f"- Started from `{Path(str(base)).name}`" if base else "- Trained from random weights",
        f"- Labels: {LABEL_NAMES.get(config.get('labels', 'fer2013'))} "
        f"({training.get('data')}); chosen on {training.get('selection_split')}",
        f"- {training.get('epochs_done')} epochs, batch {config.get('batch_size')}, AdamW at "
        f"{config.get('learning_rate')} ({config.get('schedule')}, {config.get('warmup_epochs')} "
        f"warm-up), label smoothing {config.get('label_smoothing')}, class weighting "
        f"{config.get('class_weighting')}, weight averaging from epoch {config.get('swa_start')}",
        f"- Augmentation: flip, rotation ±{config.get('rotation_degrees')}°, shift "
        f"±{config.get('shift_fraction')}, zoom ±{config.get('zoom_fraction')}"
        + (
            ", and the whole path's damage (`--path-augment`: small faces upscaled, light, "
            "noise, a hidden part)"
            if config.get("path_augment")
            else ""
        ),
        f"- Best epoch {training.get('best_epoch')} ({training.get('best_kind')}); "
        f"{training.get('train_seconds', 0) / 60:.0f} minutes of training on "
        f"{card.machine.get('processor', '?')}",
        f"- Flip averaging: {'on' if card.flip_average else 'off'} (chosen on "
        f"{card.selection.get('split', '?')}, judged by "
        f"{card.selection.get('judged_by', 'FER2013 labels')})",
        f"- Calibration: temperature {card.calibration['temperature']:.3f}, fitted to "
        f"{card.calibration.get('fitted_to', card.calibration['fitted_on'])}; "
        f"*uncertain* below {_pct(card.calibration['uncertain_below'], 0)}",
    ]


def per_class(card: ModelCard) -> list[str]:
    crowd = card.held_out["ferplus"]["majority_report"]["per_class"]
    fer = card.test["per_class"]
    lines = [
        "| class | recall, FER+ majority | recall, FER2013's labels | faces (FER+) |",
        "|---|---|---|---|",
    ]
    for emotion in EMOTIONS:
        lines.append(
            f"| {emotion} | {_pct(crowd[emotion]['recall'])} | "
            f"{_pct(fer[emotion]['recall'])} | {crowd[emotion]['support']:,} |"
        )
    return lines


def ablation_section(ablation: dict) -> list[str]:
    if not ablation.get("runs"):
        return ["Not measured yet: `python -m bench.crowd_ablation --train`."]
    lines = [
        f"Every run: `fer train --init-from {ablation['start']} {ablation['recipe']}` "
        f"(only the labels and `--path-augment` differ); measured {ablation['date']}. "
        f"Whole path: the first {ablation['whole_path_faces']:,} PublicTest faces with a "
        "clear FER+ majority.",
        "",
        "| labels | path augmentation | PublicTest: FER+ majority | PublicTest: FER2013 | "
        "PrivateTest: FER+ majority | PrivateTest: FER2013 | framing cost Haar | "
        "framing cost BlazeFace | minutes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in ablation["runs"].values():
        path = entry["whole_path_PublicTest"]
        lines.append(
            f"| {LABEL_NAMES[entry['labels']]} | {'yes' if entry['path_augment'] else 'no'} | "
            f"{_pct(entry['PublicTest']['ferplus_majority_agreement'], 2)} | "
            f"{_pct(entry['PublicTest']['fer2013_accuracy'], 2)} | "
            f"{_pct(entry['PrivateTest']['ferplus_majority_agreement'], 2)} | "
            f"{_pct(entry['PrivateTest']['fer2013_accuracy'], 2)} | "
            f"{_pt(path[HAAR.name]['framing_cost'])} | {_pt(path[BLAZEFACE.name]['framing_cost'])} | "
            f"{entry['train_seconds'] / 60:.0f} |"
        )
    return lines


def posed_section(cards: dict) -> list[str]:
    """Faces made on purpose (CK+48's development subjects), from each card's ``posed``."""
    measured = {k: c for k, c in cards.items() if c.posed}
    if not measured:
        return ["Not measured yet: `python -m bench.posed --write-card`."]
    first = next(iter(measured.values())).posed
    classes = list(first["recall"])
    lines = [
        f"{first['set']}: expressions at their peak, posed in a studio and labelled by "
        "FACS-trained coders; no model here trained on any CK+ face, and these subjects only "
        "choose (the other CK+48 subjects are held out elsewhere). Each crop goes to the model "
        f"as it is (`{first['command']}`, {first['date']}).",
        "",
        "| model | accuracy | balanced accuracy | said *neutral* (no face is) | "
        + " | ".join(f"recall {e}" for e in classes)
        + " |",
        "|---|---|---|---|" + "---|" * len(classes),
    ]
    for card in measured.values():
        posed = card.posed
        lines.append(
            f"| `{card.name}` | {_pct(posed['accuracy'])} | {_pct(posed['balanced_accuracy'])} | "
            f"{_pct(posed['called_neutral'])} | "
            + " | ".join(_pct(posed["recall"].get(e)) for e in classes)
            + " |"
        )
    lines.append("| faces | | | | " + " | ".join(str(first["support"][e]) for e in classes) + " |")
    return lines


def why_neutral_section(why: dict) -> list[str]:
    if not why:
        return []
    mass, prior = why["target_mass"], why["fer2013_prior"]
    lines = [
        f"Why the crowd's model pulls to *neutral*, read off its {why['faces']:,} Training "
        "targets: FER+'s vote shares put "
        f"{_pct(mass['neutral'])} of all target mass on neutral (FER2013's labels: "
        f"{_pct(prior['neutral'])}) and {_pct(mass['angry'])} on angry ({_pct(prior['angry'])}). "
        "Where FER2013's labeller saw an expression, the crowd often saw none:",
        "",
        "| FER2013's label | faces | the crowd's most-voted answer is neutral | mean neutral "
        "share of the target | mean share of the labelled expression |",
        "|---|---|---|---|---|",
    ]
    for emotion, row in why["by_fer2013_label"].items():
        lines.append(
            f"| {emotion} | {row['faces']:,} | {_pct(row['crowd_says_neutral'])} | "
            f"{_pct(row['mean_neutral_share'])} | {_pct(row['mean_own_share'])} |"
        )
    conflict = why.get("public_neutral_with_expression_votes") or {}
    lines += [
        "",
        "A subtle frown is what most of these faces show, so a net fitted to these targets "
        "learns that a subtle frown is mostly neutral: exactly what a posed angry face is.",
    ]
    if conflict:
        lines += [
            "",
            "Reading *only* those faces as the expression would cost little agreement with the "
            "crowd, because its test faces are scored only where most people agree: of "
            f"PublicTest's {why['public_clear_faces']:,} faces with a clear majority, "
            f"{why['public_neutral_majority']:,} are neutral, and among those, the faces on "
            "which at least two (three) people saw an expression are: "
            + ", ".join(
                f"{e} {row['at_least_2']} ({row['at_least_3']})" for e, row in conflict.items()
            )
            + ". That is a bound for a model that moves those faces alone; the runs below "
            "show how far each setting moved the rest" + ".",
        ]
    return lines + [""]


def posed_ablation_section(ablation: dict) -> list[str]:
    if not ablation.get("runs"):
        return ["Not measured yet: `python -m bench.posed_ablation --train`."]
    lines = [
        *why_neutral_section(ablation.get("why") or {}),
        f"Every run: `fer train --init-from {ablation['start']} {ablation['recipe']}` plus the "
        f"settings named; measured {ablation['date']}. Flip-averaged. PublicTest: agreement "
        "with FER+'s clear majority and its balanced accuracy; posed dev: CK+48's development "
        "subjects; muxspace: balanced accuracy of its 13,672 crops; GENKI-4K: "
        f"{ablation['genki_photos']:,} photos spread evenly over the set, through the whole "
        "path (Haar), happy or not, end to end.",
        "",
        "| run | what differs | PublicTest: FER+ majority | PublicTest: balanced | "
        "PublicTest: said neutral | posed dev: accuracy | posed dev: balanced | posed dev: "
        "angry recall | muxspace: balanced | GENKI-4K: end to end (balanced, found) | minutes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in ablation["runs"].items():
        public, posed = entry["PublicTest"], entry["posed_dev"]
        minutes = entry.get("minutes")
        lines.append(
            f"| `{name}` | {entry['what']}"
            + (f" (`{entry['flags']}`)" if entry.get("flags") else "")
            + f" | {_pct(public['ferplus_majority_agreement'], 2)} | "
            f"{_pct(public['ferplus_balanced_accuracy'])} | {_pct(public['called_neutral'])} | "
            f"{_pct(posed['accuracy'])} | {_pct(posed['balanced_accuracy'])} | "
            f"{_pct(posed['recall']['angry'])} | {_pct(entry['muxspace']['balanced_accuracy'])} | "
            f"{_pct(entry['genki4k_haar']['end_to_end_accuracy'])} "
            f"({_pct(entry['genki4k_haar']['balanced_on_found'])}) | "
            + ("—" if minutes is None else f"{minutes:.0f}")
            + " |"
        )
    reference = ablation.get("reference") or {}
    lines += [
        "",
        f"Choice rule, written before any run was scored: {ablation['choice_rule']} "
        f"The reference's PublicTest agreement: "
        f"{_pct(reference.get('ferplus_majority_agreement'), 2)}. "
        f"Chosen: **{ablation.get('chosen') or 'none'}** ({ablation.get('chosen_how', '')}).",
    ]
    if ablation.get("ship_rule"):
        verdict = {True: "it ships as the default", False: "v4 stays the default"}.get(
            ablation.get("ship"), "not decided (v4 not scored)"
        )
        lines += ["", f"Then: {ablation['ship_rule']} Outcome: **{verdict}**."]
    return lines


def wild_section(wild: dict, cards: dict) -> list[str]:
    models = wild.get("models") or {}
    lines = [
        "| model | GENKI-4K, Haar: found / right on found (balanced) / end to end | GENKI-4K, "
        "BlazeFace: found / right on found (balanced) / end to end | muxspace crops: accuracy, "
        "balanced accuracy, macro-F1 |",
        "|---|---|---|---|",
    ]
    shown = False
    for card in cards.values():
        entry = models.get(card.keras_sha256)
        if not entry:
            continue
        shown = True
        cells = []
        for detector in DETECTORS:
            g = entry["genki4k"][detector]
            cells.append(
                f"{_pct(g['found'])} / {_pct(g['on_found']['accuracy'])} "
                f"({_pct(g['on_found'].get('balanced_accuracy'))}) / "
                f"{_pct(g['end_to_end_accuracy'])}"
            )
        mux = entry["muxspace"]
        lines.append(
            f"| `{card.name}` | {cells[0]} | {cells[1]} | "
            f"{_pct(mux['accuracy'])}, {_pct(balanced_of(mux))}, "
            f"{mux['macro_f1']:.3f} |"
        )
    peer = ((wild.get("peer") or {}).get("genki4k")) or {}
    if peer and not peer.get("missing"):
        lines.append(
            f"| the `fer` package | {_pct(peer['found'])} / "
            f"{_pct(peer['on_found']['accuracy'])} "
            f"({_pct(peer['on_found'].get('balanced_accuracy'))}) / "
            f"{_pct(peer['end_to_end_accuracy'])} (its own Haar) | | |"
        )
    if not shown:
        return ["Not measured for the shipped files yet: `python -m bench.wild --peer`."]
    recall_lines = [
        "",
        "muxspace recall per class (one student labelled each crop):",
        "",
        "| model | " + " | ".join(EMOTIONS) + " |",
        "|---|" + "---|" * len(EMOTIONS),
    ]
    for card in cards.values():
        entry = models.get(card.keras_sha256)
        if entry:
            recall = entry["muxspace"]["recall"]
            recall_lines.append(
                f"| `{card.name}` | " + " | ".join(_pct(recall[e]) for e in EMOTIONS) + " |"
            )
    support = next(iter(models.values()))["muxspace"]["support"]
    recall_lines.append("| faces | " + " | ".join(f"{support[e]:,}" for e in EMOTIONS) + " |")
    return lines + recall_lines


def choice_section(choice: dict) -> list[str]:
    if not choice:
        return ["Not measured yet: `python -m bench.model_choice`."]
    lines = [
        f"Rule: {choice['rule']}, on {choice['split']} ({choice['date']}). "
        f"Default: **{choice['default']}**.",
        "",
        "| model | trained on | FER+ majority, Haar | FER+ majority, BlazeFace | "
        "FER2013, Haar | FER2013, BlazeFace |",
        "|---|---|---|---|---|---|",
    ]
    for key, entry in choice["models"].items():
        rows = entry["rows"]
        lines.append(
            f"| `{entry['model']}` ({key}) | {LABEL_NAMES[entry['trained_on']]} | "
            + " | ".join(
                _pct(rows[f"{labels}/{d}"]["end_to_end"])
                for labels in ("ferplus-majority", "fer2013")
                for d in DETECTORS
            )
            + " |"
        )
    return lines


def int8_section(int8: dict) -> list[str]:
    lines = []
    for entry in int8.values():
        lines.append(f"- `{entry['model']}`: {entry['summary']} (measured {entry['measured_at']})")
    return lines or ["Not measured yet: `fer export MODEL --int8 --record bench/int8.json`."]


def latency_section(latency: dict) -> list[str]:
    if not latency:
        return ["Not measured yet: `python -m bench.latency_vs_previous`."]
    return [
        f"One face as shipped (flip averaging as each card chose), timed in turn over "
        f"{latency['rounds']} rounds in one run on {latency['date']} "
        f"({latency['cpus']} cores): `{latency['shipped_model']}` "
        f"({latency['shipped_backend']}) {latency['shipped_ms']:.3f} ms, "
        f"`{Path(latency['previous_model']).name}` {latency['previous_ms']:.3f} ms: "
        f"×{latency['ratio']:.2f} (`python -m bench.latency_vs_previous`)."
    ]


def check_section(check: dict) -> list[str]:
    return [
        f"- `{name}` on {entry['split']}: {_pct(entry['agreement_with_majority'], 2)} "
        f"agreement with the clear majority ({entry['clear_faces']:,} faces), "
        f"{_pct(entry['fer2013_accuracy'], 2)} on FER2013's labels ({entry['date']})"
        for name, entry in check.items()
    ] or ["Not run yet: `python -m bench.crowd_check`."]


def render() -> str:
    cards = _cards()
    default = cards["crowd"]
    parts = [
        "# The model and its measurements",
        "",
        "<!-- Written by `python -m bench.docs` from models/*.card.json and bench/*.json. "
        "Do not edit: tests/test_docs.py fails when this page and those files disagree. -->",
        "",
        "Two models ship inside the package, both the same `cnn_gru` network (a "
        "mini-Xception-style CNN whose features at four depths are read, low to high level, by "
        "a bidirectional GRU). The **default** learned from FER+: ten people's votes for every "
        "FER2013 face, so its probabilities mean *the share of people who would call this face "
        "each emotion*. The **alternative** learned FER2013's own labels (one person per "
        "face); it is the one to compare with published FER2013 results. The Model page "
        "switches between them.",
        "",
        "## The shipped models, four numbers each",
        "",
        "All on FER2013 PrivateTest, measured once per final model after every choice was made "
        "on PublicTest (`fer evaluate --split PrivateTest --write-card`, `fer evaluate-pipeline "
        "--split PrivateTest --detector haar blazeface --preset photo live --labels "
        "ferplus-majority|fer2013 --write-card`).",
        "",
        *shipped_table(cards),
        "",
        "What each number means:",
        "",
        "- *FER2013's labels*: one person labelled each face; above about 72-73% a model "
        "learns that labeller's habits (FER2013's label matches the ten-person majority on only "
        "72% of the faces where they agree), and a perfect model of the crowd scores lower here.",
        "- *without the copies*: PrivateTest holds exact pixel copies of Training images; a "
        "model may have memorised those.",
        "- *FER+ clear majority*: the faces on which more than half of ten people chose one "
        "emotion; the share where the model's top emotion is theirs.",
        "- *FER+ paper's protocol*: the most-voted emotion, faces where *unknown* or *not a "
        "face* win dropped (Barsoum et al., 2016); comparable with published FER+ numbers.",
        "- *whole path*: each test face placed in a larger frame, found by the detector, cut "
        "out and classified as in the app; a missed face counts as wrong. The framing cost is "
        "what the detector's crop costs on the faces it finds.",
        "",
        "## How the default was made",
        "",
        *training_section(default),
        "",
        "How FER+'s votes become targets (`fer_core/data/ferplus.py`): the seven emotions' vote "
        "shares are the target (`--labels ferplus-votes`) or the most-voted emotion "
        "(`ferplus-majority`); *contempt*, *unknown* and *not a face* votes are left out of "
        "the target; a face leaves the training set when one of those three has at least as "
        "many votes as the most-voted emotion. Validation and every agreement number use the "
        "faces with a clear majority.",
        "",
        "Per class (PrivateTest):",
        "",
        *per_class(default),
        "",
        "## Choosing the default on PublicTest",
        "",
        *choice_section(_load("model_choice.json")),
        "",
        "## Ablation: labels and path augmentation at one budget (`bench/crowd_ablation.json`)",
        "",
        *ablation_section(_load("crowd_ablation.json")),
        "",
        "## Faces made on purpose (the models' cards, `bench.posed`)",
        "",
        *posed_section(cards),
        "",
        "## Ablation: what makes the crowd's model read a frown as a frown "
        "(`bench/posed_ablation.json`)",
        "",
        *posed_ablation_section(_load("posed_ablation.json")),
        "",
        "## Real faces labelled by other people (`bench/wild.json`)",
        "",
        "GENKI-4K (4,000 web photos, smiling or not, through the whole path; scored as "
        "*happy or not*) and muxspace (13,672 tight crops, one student each). Neither was used "
        "to train; `python -m bench.wild --peer`.",
        "",
        *wild_section(_load("wild.json"), cards),
        "",
        "## The fast path: full-integer LiteRT (`bench/int8.json`)",
        "",
        *int8_section(_load("int8.json")),
        "",
        "## Speed against the model it replaced (`bench/latency_vs_previous.json`)",
        "",
        *latency_section(_load("latency_vs_previous.json")),
        "",
        "## An outside check (`bench/crowd_check.json`)",
        "",
        "FER2013 and FER+ read with pandas alone, the model called through "
        "`fer_core.load_model().predict_faces` (`python -m bench.crowd_check`):",
        "",
        *check_section(_load("crowd_check.json")),
        "",
    ]
    return "\n".join(parts)


def upload_memory_section(report: dict) -> list[str]:
    """The server's memory while visitors upload (bench/upload_memory.json)."""
    if not report:
        return ["Not measured yet: `python -m bench.upload_memory`."]
    settings = report["settings"]
    lines = [
        f"Measured by `{report['command']}` on {report['when'][:10]} ({report['machine']}): a "
        f"real Chromium uploads {report['files']} to the Photos & videos page of `streamlit run "
        f"app.py`, with the default budgets ({settings['FER_SESSION_UPLOAD_MB']} MB and "
        f"{settings['FER_SESSION_UPLOAD_FILES']} files per tab, {settings['FER_UPLOAD_BUDGET_MB']} "
        f"MB of upload bytes in the server's memory). The server's memory with the model "
        f"loaded and no visitor: {report['idle_mb']:,} MB.",
        "",
        "| | accepted | refused | peak memory | above idle | held while the tabs stay open "
        "| after every tab closed |",
        "|---|---|---|---|---|---|---|",
    ]
    phases = [("one tab", "one_tab"), ("three tabs at once", "three_tabs")]
    if "refused_photos" in report:
        phases.append(("one tab, files over the photo cap", "refused_photos"))
    for label, key in phases:
        phase = report[key]
        after = phase["after_closing"]
        held = phase.get("held_while_open_mb")
        lines.append(
            f"| {label} | {phase['accepted']} | {phase['refused']} | {phase['peak_mb']:,} MB | "
            f"{phase['peak_above_idle_mb']:,} MB | "
            + ("—" if held is None else f"{held:+,} MB")
            + f" | {after['above_idle_mb']:,} MB above idle "
            f"{after['seconds_after_closing']:g} s later |"
        )
    if "refused_photos" in report:
        refused = report["refused_photos"]
        lines += [
            "",
            f"The last row: {refused['files']}. Each is refused as it arrives, before "
            "Streamlit keeps it (the page's own rules, `expect_uploads`); what the open tab "
            f"holds afterwards, beyond what the server held before: {refused['held_while_open_mb']:+,} MB. "
            "The peak is the one file in flight, which the web server reads whole before the "
            "upload handler sees it.",
        ]
    checks = report["checks"]
    lines += [
        "",
        f"The peak stays within idle + the {settings['FER_UPLOAD_BUDGET_MB']} MB budget + "
        f"{checks['margin_mb']} MB for uploads in flight: "
        f"{'yes' if checks['peak_within_idle_budget_margin'] else '**no**'}; memory is back "
        f"within 300 MB of idle once the grace period "
        f"({settings['server.disconnectedSessionTTL']} s) and the janitor's next pass "
        f"({settings['janitor_seconds']:g} s) have passed: "
        f"{'yes' if checks['back_within_300_mb_of_idle'] else '**no**'}. "
        f"Before the budget ({report['before']}).",
    ]
    return lines


def _latency(step: dict | None) -> str:
    if not step or step["latency_ms"]["median"] is None:
        return "—"
    return f"{step['latency_ms']['median']:.0f} / {step['latency_ms']['p95']:.0f} ms"


def _analysed(step: dict) -> str:
    """Analysed frames/s per stream of a step: mean, lowest."""
    analysed = step["fps_analysed_per_stream"]
    return f"{analysed['mean']:.1f}, {analysed['min']:.1f}"


def _arena_note(report: dict) -> str:
    """The allocator setting the server ran with, and what it held after the streams."""
    arenas = report.get("malloc_arena_max")
    if arenas is None:
        return ""
    after = ", ".join(
        f"{run['detector']} {run['fps']} fps {run['rss_after_mb']:,.0f} MB"
        for run in report["runs"]
        if "rss_after_mb" in run
    )
    return (
        f" The server ran with `MALLOC_ARENA_MAX={arenas}`, as `make run` and the systemd unit "
        "start the app (glibc's default gives each thread that allocates an arena of its own). "
        f"Idle again after each series: {after} (idle at start: "
        f"{report['runs'][0]['idle_rss_mb']:,.0f} MB)."
    )


def capacity_table(report: dict) -> list[str]:
    """Per detector and frame rate: streams held, per core, latency at capacity and beyond
    it, memory per stream (the README's table and docs/sharing.md's)."""
    cores = report["cores"]
    lines = [
        "| detector | frames/s | streams held | streams per core | latency at capacity | "
        "beyond capacity: analysed/s per stream, latency | memory per stream |",
        "|---|---|---|---|---|---|---|",
    ]
    first_of_detector = {}
    for index, run in enumerate(report["runs"]):
        first_of_detector.setdefault(run["detector"], index)
    for index, run in enumerate(report["runs"]):
        steps = {step["streams"]: step for step in run["steps"]}
        held = steps.get(run["capacity"])
        beyond = [s for s in run["steps"] if s["streams"] > run["capacity"]]
        # the first step beyond capacity, and the last one measured
        shown = beyond if len(beyond) <= 1 else [beyond[0], beyond[-1]]
        beyond_text = (
            "; ".join(
                f"{b['streams']} streams: {b['fps_analysed_per_stream']['mean']:.1f} "
                f"(min {b['fps_analysed_per_stream']['min']:.1f}), {_latency(b)}"
                for b in shown
            )
            or "not reached"
        )
        # Memory per stream only on a fresh server: the later runs start above idle.
        memory = (
            held["rss_per_stream_mb"]
            if held and first_of_detector[run["detector"]] == index
            else None
        )
        lines.append(
            f"| {DETECTOR_NAMES[run['detector']]} | {run['fps']} | "
            f"{run['capacity']} | {run['capacity'] / cores:.1f} | {_latency(held)} | "
            f"{beyond_text} | {f'{memory:,.0f} MB' if memory is not None else '—'} |"
        )
    return lines


def live_capacity_summary(report: dict) -> list[str]:
    """The README's short version: the table, where it was measured, where the rest is."""
    if not report:
        return ["Not measured yet: `python -m bench.live_capacity`."]
    return [
        f"Measured by `python -m bench.live_capacity` on {report['date']} ({report['cores']} "
        f"CPU cores, {report['cpu']}; the clients on the same machine). Latency: a frame's "
        "sending to its annotated copy's arrival, median / 95th percentile. Every step and how "
        "it is measured: [docs/sharing.md](docs/sharing.md).",
        "",
        *capacity_table(report),
    ]


def live_capacity_section(report: dict) -> list[str]:
    """How many live streams one server holds (bench/live_capacity.json)."""
    if not report:
        return ["Not measured yet: `python -m bench.live_capacity`."]
    cores = report["cores"]
    lines = [
        f"Measured by `python -m bench.live_capacity` on {report['date']} ({cores} CPU cores, "
        f"{report['cpu']}): headless WebRTC clients stream a smiling face (640x480, VP8) to the "
        "app's own live processing, one processor per stream over one model"
        + (
            ", through the app's relay (each reader gets the newest frame), "
            if report.get("relay") == "newest"
            else ", "
        )
        + f"{'in a network namespace with only loopback' if report['in_namespace'] else 'on this machine'}."
        f" Each step runs {report['warmup_s']:g} s, then is measured for {report['measure_s']:g} s. "
        "The clients decode what comes back on the same machine, so they take some of the "
        "server's CPU. A stream is *held* when every stream gets at least 90% of its frames "
        "analysed. Latency is from a frame's sending to its annotated copy's arrival, median / "
        "95th percentile.",
        "",
    ]
    lines += capacity_table(report)
    lines += [
        "",
        "Every step (analysed frames/s per stream, mean and lowest; latency; the server's "
        "CPU in cores and memory):",
        "",
        "| detector | frames/s | streams | analysed/s (mean, min) | latency | cores | memory |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        for step in run["steps"]:
            lines.append(
                f"| {run['detector']} | {run['fps']} | {step['streams']} | "
                f"{_analysed(step)} | {_latency(step)} | "
                f"{step['cores_busy']:.2f} | {step['rss_mb']:,.0f} MB |"
            )
    lines += [
        "",
        "Memory per stream is the server's memory during the step above its idle size, "
        "divided by the streams, in each detector's first series (the smaller steps ran "
        "before it on the same server). The server does not give memory back when streams "
        "end, so the later series start well above idle and show none." + _arena_note(report),
    ]
    haar = next((r for r in report["runs"] if r["detector"] == HAAR.name and r["fps"] == 15), None)
    if haar:
        lines += [
            "",
            f"`FER_MAX_LIVE_STREAMS` defaults to this measurement: {haar['capacity']} streams "
            f"on {cores} cores with Haar at 15 frames/s, that is "
            f"{haar['capacity'] / cores:g} per core, times the cores of the machine the app "
            "runs on.",
        ]
    return lines


def _relay_cells(step: dict) -> str:
    """A step's analysed frames/s, latency and server memory, as three table cells."""
    return f"{_analysed(step)} | {_latency(step)} | {step['rss_mb']:,.0f} MB"


def live_relay_section(report: dict, buffered: dict) -> list[str]:
    """Beyond capacity, with streamlit-webrtc's own relay and with the app's, on the same
    server at the same steps (bench/live_capacity_buffered.json beside live_capacity.json)."""
    if not report or not buffered:
        return [
            "Not measured yet: `python -m bench.live_capacity --relay buffered --detector haar "
            "--fps 15 --steps 6 8 10 12 --out bench/live_capacity_buffered.json`."
        ]
    base = buffered["runs"][0]
    ours = next(
        (r for r in report["runs"] if (r["detector"], r["fps"]) == (base["detector"], base["fps"])),
        None,
    )
    if ours is None:
        return ["The two measurements have no detector and frame rate in common."]
    ours_steps = {step["streams"]: step for step in ours["steps"]}
    lines = [
        f"{DETECTOR_NAMES[base['detector']]} at {base['fps']} frames/s, "
        f"measured on {buffered['date']} by `python -m bench.live_capacity --relay buffered "
        f"--detector {base['detector']} --fps {base['fps']} --steps "
        f"{' '.join(str(s['streams']) for s in base['steps'])} --out "
        "bench/live_capacity_buffered.json`, beside the app's relay from the table above "
        "(analysed frames/s per stream, mean and lowest; latency median / 95th percentile; "
        "the server's memory):",
        "",
        "| streams | streamlit-webrtc's relay: analysed/s | latency | memory | "
        "the app's relay: analysed/s | latency | memory |",
        "|---|---|---|---|---|---|---|",
    ]
    for step in base["steps"]:
        mine = ours_steps.get(step["streams"])
        cells = [_relay_cells(step), _relay_cells(mine) if mine else "— | — | —"]
        lines.append(f"| {step['streams']} | {' | '.join(cells)} |")
    return lines


# page -> {block name: its lines}; each block sits between <!-- bench:NAME --> markers.
def blocks() -> dict[Path, dict[str, list[str]]]:
    return {
        ROOT / "README.md": {
            "live-capacity-summary": live_capacity_summary(_load("live_capacity.json")),
        },
        ROOT / "docs" / "sharing.md": {
            "upload-memory": upload_memory_section(_load("upload_memory.json")),
            "live-capacity": live_capacity_section(_load("live_capacity.json")),
            "live-relay": live_relay_section(
                _load("live_capacity.json"), _load("live_capacity_buffered.json")
            ),
        },
    }


def fill_blocks(text: str, filled: dict[str, list[str]]) -> str:
    for name, lines in filled.items():
        pattern = re.compile(
            rf"(<!-- bench:{re.escape(name)} -->\n)(?:.*?\n)?(<!-- /bench:"
            rf"{re.escape(name)} -->)",
            re.S,
        )
        if not pattern.search(text):
            raise SystemExit(f"the markers of the block {name} are missing")
        text = pattern.sub(
            lambda m, lines=lines: m.group(1) + "".join(f"{line}\n" for line in lines) + m.group(2),
            text,
        )
    return text


def pages() -> dict[Path, str]:
    """Every page this writes, with what it should hold."""
    written = {PAGE: render()}
    for page, filled in blocks().items():
        written[page] = fill_blocks(page.read_text(encoding="utf-8"), filled)
    return written


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    stale = []
    for page, text in pages().items():
        current = page.read_text(encoding="utf-8") if page.is_file() else ""
        if current == text:
            continue
        if "--check" in argv:
            stale.append(page)
            continue
        page.parent.mkdir(exist_ok=True)
        page.write_text(text, encoding="utf-8")
        print(f"wrote {page.relative_to(ROOT)}")
    for page in stale:
        print(f"{page.relative_to(ROOT)} is out of date: run python -m bench.docs", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
