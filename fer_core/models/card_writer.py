"""Writing the model card, ``<model>.card.json`` beside a model, from measured numbers only.

``python -m fer_core evaluate --write-card`` writes it, ``fer evaluate-pipeline --write-card``
adds the whole path; ``fer_core.models.card.ModelCard`` is what every reader gets.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

from fer_core.errors import ModelError
from fer_core.labels import EMOTIONS
from fer_core.models.architectures import load_keras_model
from fer_core.models.card import card_path_for, read_card
from fer_core.models.inference import DEFAULT_MODEL, file_sha256, litert_path_for
from fer_core.models.quantize import litert_quantization
from fer_core.storage import write_json


def _card_of_this_file(model_path) -> tuple[Path, dict]:
    """The model's path and its card (to add to), refused when there is none or when it
    describes another file."""
    model_path = Path(model_path) if model_path else DEFAULT_MODEL
    previous = read_card(model_path)
    if previous is None:
        raise ModelError(
            f"{model_path.name} has no model card yet: write it first with "
            "`fer evaluate --write-card`."
        )
    if previous.keras_sha256 != file_sha256(model_path):
        raise ModelError(
            f"{card_path_for(model_path).name} describes another file: write "
            "it again with `fer evaluate --write-card` first."
        )
    return model_path, previous.to_json()


def add_whole_path(model_path, result: dict, command: str) -> dict:
    """Add one whole-path evaluation (``fer evaluate-pipeline``'s result) to the card beside
    the model, under the labels it was scored by; rows of the same detector, preset and
    variant are replaced, others kept."""

    model_path, card = _card_of_this_file(model_path)
    sections = card.setdefault("whole_path", {})
    labels = result.get("labels", "fer2013")
    earlier = sections.get(labels) or {}
    if earlier.get("split") not in (None, result["split"]):
        earlier = {}
    key = ("detector", "preset", "variant")
    rows = {tuple(row.get(k) for k in key): row for row in earlier.get("rows", [])}
    for row in result["rows"]:
        rows[tuple(row.get(k) for k in key)] = {k: v for k, v in row.items() if k != "records"}
    commands = [c for c in earlier.get("commands", []) if c != command] + [command]
    sections[labels] = {
        "split": result["split"],
        "labels": labels,
        "faces": result["faces"],
        "date": result.get("date"),
        "commands": commands,
        "rows": list(rows.values()),
    }
    write_json(card_path_for(model_path), card)
    return card


def add_posed(model_path, report: dict, *, dataset: str, command: str) -> dict:
    """Add the posed-faces yardstick (``python -m bench.posed --write-card``: accuracy,
    balanced accuracy and per-class recall on faces made on purpose) to the card beside the
    model; it stays while the card describes the same file."""

    model_path, card = _card_of_this_file(model_path)
    card["posed"] = {
        "set": dataset,
        "date": time.strftime("%Y-%m-%d"),
        "command": command,
        **{k: v for k, v in report.items() if k not in ("model", "sha256")},
    }
    write_json(card_path_for(model_path), card)
    return card


def write_model_card(
    model_path,
    test_report: dict,
    *,
    split: str,
    flip_average: bool,
    selection: dict | None,
    latency: dict | None = None,
    data_source: str = "",
    calibration: dict | None = None,
    training: dict | None = None,
    held_out: dict | None = None,
) -> dict:
    """Write ``<model>.card.json`` beside the model from measured numbers (never by hand).

    ``training``: how the model was made (``fer_core.training.provenance.training_section`` of its run,
    or the model's previous card's when its run folder is gone); ``calibration``:
    ``fer_core.models.calibration``'s report."""
    model_path = Path(model_path)
    keras_model = load_keras_model(model_path)
    training = dict(training or {})
    litert = litert_path_for(model_path)

    previous = read_card(model_path)
    same_file = previous is not None and previous.keras_sha256 == file_sha256(model_path)
    card = {
        "name": model_path.stem,
        "architecture": keras_model.name,
        "parameters": int(keras_model.count_params()),
        "input": "48x48x1 grey, raw 0..255 (normalised inside the model)",
        "classes": list(EMOTIONS),
        "files": {
            "keras": {
                "file": model_path.name,
                "bytes": model_path.stat().st_size,
                "sha256": file_sha256(model_path),
            },
            **(
                {
                    "litert": {
                        "file": litert.name,
                        "bytes": litert.stat().st_size,
                        "sha256": file_sha256(litert),
                        "quantization": litert_quantization(litert),
                    }
                }
                if litert.is_file()
                else {}
            ),
        },
        "training": training,
        "flip_average": bool(flip_average),
        "selection": selection or {},
        "test": {"split": split, **test_report},
        # Beyond FER2013's labels: without the test images that copy a Training image, and
        # agreement with FER+'s ten raters (fer_core.evaluation.reports.held_out_reports).
        **({"held_out": {"split": split, **held_out}} if held_out else {}),
        **({"calibration": calibration} if calibration else {}),
        "latency": latency or {},
        # Whole-path results (fer evaluate-pipeline --write-card) stay while the file does.
        **(
            {"whole_path": previous.whole_path}
            if previous is not None and same_file and previous.whole_path
            else {}
        ),
        # The posed yardstick (python -m bench.posed --write-card) stays while the file does.
        **(
            {"posed": previous.posed}
            if previous is not None and same_file and previous.posed
            else {}
        ),
        "data_source": Path(data_source).name if data_source else "",
        "written_by": "python -m fer_core evaluate --write-card",
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "python": platform.python_version(),
        },
    }
    write_json(card_path_for(model_path), card)
    return card


__all__ = ["write_model_card", "add_whole_path", "add_posed"]
