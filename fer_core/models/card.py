"""The model card as a record: ``<model>.card.json`` beside a model, read into ``ModelCard``.

The card is written from measured numbers only (``fer_core.models.card_writer``: ``fer evaluate
--write-card`` and ``fer evaluate-pipeline --write-card``); every page, the command line and
``bench.docs`` read it through this record. Its sections keep the reports as they were written
(an evaluation report, a calibration report, whole-path rows); the questions asked of them in
more than one place (the uncertainty threshold, the labels it learned, a whole-path row, the
latency) are answered here once. ``raw`` is the card as written, keys this version does not
know included, so nothing is lost when a newer card is read and written again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ModelCard:
    name: str
    architecture: str | None = None
    parameters: int | None = None
    flip_average: bool = False  # average with the mirrored face (chosen on PublicTest)
    files: dict = field(default_factory=dict)  # keras / litert: file, bytes, sha256
    training: dict = field(default_factory=dict)  # how it was made (run, config, data, time)
    selection: dict = field(default_factory=dict)  # the PublicTest scores it was chosen by
    test: dict = field(default_factory=dict)  # the test report: split, n, accuracy, per class
    held_out: dict = field(default_factory=dict)  # without copies; FER+'s crowd
    calibration: dict = field(default_factory=dict)  # temperature, uncertain_below, ...
    latency: dict = field(default_factory=dict)  # batch_1 / batch_32: median_ms, ...
    whole_path: dict = field(default_factory=dict)  # by labels: split, faces, rows
    posed: dict = field(default_factory=dict)  # faces made on purpose (bench.posed)
    machine: dict = field(default_factory=dict)  # where the card was written
    raw: dict = field(default_factory=dict, repr=False)  # the card as written

    @classmethod
    def from_json(cls, data: dict) -> ModelCard:
        def section(key: str) -> dict:
            value = data.get(key)
            return value if isinstance(value, dict) else {}

        parameters = data.get("parameters")
        return cls(
            name=str(data.get("name") or ""),
            architecture=data.get("architecture"),
            parameters=int(parameters) if parameters is not None else None,
            flip_average=bool(data.get("flip_average", False)),
            files=section("files"),
            training=section("training"),
            selection=section("selection"),
            test=section("test"),
            held_out=section("held_out"),
            calibration=section("calibration"),
            latency=section("latency"),
            whole_path=section("whole_path"),
            posed=section("posed"),
            machine=section("machine"),
            raw=dict(data),
        )

    def to_json(self) -> dict:
        """The card as written (a copy to edit and write again)."""
        return json.loads(json.dumps(self.raw))

    @property
    def keras_sha256(self) -> str | None:
        """The digest of the Keras file the card describes."""
        return (self.files.get("keras") or {}).get("sha256")

    @property
    def training_config(self) -> dict:
        return self.training.get("config") or {}

    @property
    def trained_labels(self) -> str:
        """The labels the model learned: ``fer2013`` or a FER+ choice (``ferplus-majority``...)."""
        return str(self.training_config.get("labels") or "fer2013")

    @property
    def captured_faces(self) -> int:
        """How many faces captured on the Live page the model was trained on, besides
        FER2013 (0: none)."""
        return int(self.training.get("captured_faces") or 0)

    @property
    def uncertain_below(self) -> float | None:
        """The top probability below which a face is shown as uncertain (measured on
        PublicTest; None for a model without a calibrated card)."""
        value = self.calibration.get("uncertain_below")
        return float(value) if value is not None else None

    def latency_ms(self, batch: int = 1) -> float | None:
        """Median milliseconds per face at batch 1 or 32, as measured for the card."""
        return (self.latency.get(f"batch_{batch}") or {}).get("median_ms")

    def balanced_accuracy(self, which: str = "fer2013") -> float | None:
        """The mean of per-class recall on PrivateTest: ``fer2013`` (FER2013's labels) or
        ``ferplus`` (FER+'s clear majority); from the recorded per-class recall when an older
        card did not record it."""
        report = (
            self.test
            if which == "fer2013"
            else (self.held_out.get("ferplus") or {}).get("majority_report") or {}
        )
        return balanced_of(report)

    def whole_path_row(
        self, labels: str, detector: str, preset: str = "photo", variant: str = "plain"
    ) -> tuple[dict | None, dict]:
        """One whole-path result (``fer evaluate-pipeline``) and the section it is in:
        ``(row or None, section)``; ``labels``: ``fer2013`` or ``ferplus-majority``."""
        section = self.whole_path.get(labels) or {}
        for row in section.get("rows", []):
            if (row.get("detector"), row.get("preset"), row.get("variant", "plain")) == (
                detector,
                preset,
                variant,
            ):
                return row, section
        return None, section


def balanced_of(report: dict) -> float | None:
    """A report's balanced accuracy (the mean of per-class recall over the classes present),
    recorded or derived from its per-class rows (``per_class``) or from its ``recall`` and
    ``support`` by class (bench.wild's muxspace entries)."""
    if report.get("balanced_accuracy") is not None:
        return float(report["balanced_accuracy"])
    support = report.get("support") or {}
    recalls = [
        float(r["recall"]) for r in (report.get("per_class") or {}).values() if r.get("support")
    ] or [float(v) for e, v in (report.get("recall") or {}).items() if support.get(e)]
    return sum(recalls) / len(recalls) if recalls else None


def card_path_for(model_path: str | Path) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".card.json")


def read_card(model_path: str | Path) -> ModelCard | None:
    """The card beside ``model_path``; None when there is none or it is not a JSON object."""
    path = card_path_for(model_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return ModelCard.from_json(data) if isinstance(data, dict) else None


__all__ = ["ModelCard", "balanced_of", "card_path_for", "read_card"]
