"""A training run's settings: ``TrainConfig``, the single source of its defaults.

A run's ``config.json`` holds its ``TrainConfig``. The command line's flags are generated from
the fields below (their help and any short alias live in the field's metadata), so no default
is written down twice: ``train --run DIR`` reads the folder's ``config.json``, and a flag
given on the command line is the only thing that can change a setting.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from pathlib import Path

from fer_core.data.paths import default_ferplus_path
from fer_core.errors import ConfigError
from fer_core.labels import LABEL_SOURCES, NUM_CLASSES
from fer_core.models.architectures import available_architectures
from fer_core.storage import read_json
from fer_core.training.runs import check_run_name

SCHEDULES = ("cosine", "constant", "plateau")
MIXES = ("none", "mixup", "cutmix")
CLASS_WEIGHTINGS = ("none", "sqrt", "inverse")


def _setting(default, help: str, *aliases: str, choices=None, **extra):
    metadata = {"help": help, "aliases": aliases, "choices": choices}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata={**metadata, **extra})


@dataclass
class TrainConfig:
    architecture: str = _setting(
        "cnn_gru", "registered architecture (fer_core.models.architectures)", "-a"
    )
    model_kwargs: dict = _setting({}, "architecture options as JSON, e.g. '{\"width\": 24}'")
    data_path: str | None = _setting(
        None, "fer2013.csv(.gz) or Kaggle folder (default: $FER2013_PATH)", "--data"
    )
    labels: str = _setting(
        "fer2013",
        "what the model learns: FER2013's own labels, FER+'s "
        "crowd vote shares (soft targets) or the crowd's "
        "most-voted emotion",
        choices=LABEL_SOURCES,
    )
    ferplus_path: str | None = _setting(
        None, "FER+'s fer2013new.csv, for --labels ferplus-* (default: $FERPLUS_PATH)", "--ferplus"
    )
    neutral_vote_weight: float = _setting(
        1.0,
        "FER+ labels: how much each neutral vote counts in a Training face's target "
        "(1: as cast; lower: a face some people saw an expression on teaches that expression)",
    )
    own_label_weight: float = _setting(
        0.0,
        "FER+ labels: mix FER2013's own label into each Training target with this weight "
        "((1 - w) * crowd + w * label; 0: the crowd alone)",
    )
    logit_adjustment: float = _setting(
        0.0,
        "train through softmax(logits + tau * log(class prior of the targets)) and predict "
        "without it (Menon et al., 2021): tau > 0 stops rewarding the commonest class (0: off)",
    )
    epochs: int = _setting(60, "epochs in all (a resumed run trains up to this number)")
    batch_size: int = _setting(64, "global batch size (even)")
    learning_rate: float = _setting(2e-3, "peak learning rate (AdamW)")
    weight_decay: float = _setting(1e-4, "AdamW weight decay")
    warmup_epochs: int = _setting(2, "epochs of linear warm-up")
    schedule: str = _setting(
        "cosine",
        "learning-rate schedule (plateau: the seed's ReduceLROnPlateau)",
        choices=SCHEDULES,
    )
    label_smoothing: float = _setting(0.1, "label smoothing of the cross-entropy")
    class_weighting: str = _setting(
        "sqrt", "class weights: none, 1/sqrt(frequency) or 1/frequency", choices=CLASS_WEIGHTINGS
    )
    train_subset: int | None = _setting(
        None, "train on a stratified subset of this many images", "--subset"
    )
    validation_subset: int | None = _setting(
        None, "validate on a stratified subset", "--val-subset"
    )
    early_stopping_patience: int = _setting(0, "early stopping patience (0: off)", "--patience")
    rotation_degrees: float = _setting(10.0, "augmentation: largest rotation, degrees")
    shift_fraction: float = _setting(0.1, "augmentation: largest shift, fraction of the side")
    zoom_fraction: float = _setting(0.1, "augmentation: largest zoom, fraction")
    horizontal_flip: bool = _setting(True, "augmentation: random horizontal flips")
    path_augment: bool = _setting(
        False,
        "augmentation: what the whole path does to a face "
        "(small faces upscaled, blur, light, noise, "
        "occlusion), on top of the box jitter above",
    )
    mix: str = _setting(
        "none", "mix pairs of training images and their targets: mixup or CutMix", choices=MIXES
    )
    mix_alpha: float = _setting(0.4, "mixup/CutMix: Beta(alpha, alpha) of the kept share")
    teacher: list | None = _setting(
        None,
        "distil from these .keras models (their averaged, "
        "flip-averaged probabilities, computed once and "
        "cached in the run folder)",
        nargs="+",
    )
    distill_temperature: float = _setting(4.0, "distillation: softmax temperature")
    distill_weight: float = _setting(
        0.7, "distillation: weight of the teacher term (the label's cross-entropy has 1 - weight)"
    )
    steps_per_execution: int = _setting(
        1, "training steps per compiled call (more: fewer trips to the host on a GPU)"
    )
    seed: int = _setting(1337, "random seed")
    runs_dir: str = _setting("runs", "folder holding the run folders")
    run_name: str | None = _setting(None, "run folder name (resumes if it exists)", "--name")
    init_from: str | None = _setting(
        None, "fine-tune: start from the weights of this .keras file (same architecture)"
    )
    swa_start: int = _setting(
        0,
        "average the weights of every epoch from this one on (stochastic weight averaging; 0: off)",
    )
    captured_faces: bool = _setting(
        False,
        "add the labelled faces captured on the Live page (the records database: FER_DB_URL, "
        "else records.sqlite in the runs folder) to the Training rows",
    )
    recalibrate_batch_norm: bool = _setting(
        True,
        "when the run ends, recompute best.keras's BatchNorm statistics on the plain "
        "Training images, kept only if validation improves",
        no_flag="--no-recalibrate",
    )

    def validate(self) -> None:
        if self.architecture not in available_architectures():
            raise ConfigError(
                f"Unknown architecture {self.architecture!r}; choose one of "
                f"{', '.join(available_architectures())}."
            )
        for name in ("epochs", "batch_size", "steps_per_execution"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive whole number, got {value!r}.")
        if self.batch_size % 2:
            # TensorFlow 2.21's oneDNN CPU kernels crash the process (SIGSEGV) when training
            # mini_xception on a batch of odd size; every batch is full (see
            # pad_to_full_batches), so an even batch size avoids that.
            raise ConfigError(f"batch_size must be even, got {self.batch_size}.")
        if not (0 < self.learning_rate < 1):
            raise ConfigError(f"learning_rate must lie between 0 and 1, got {self.learning_rate}.")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}.")
        if not isinstance(self.warmup_epochs, int) or self.warmup_epochs < 0:
            raise ConfigError("warmup_epochs must be 0 or more.")
        if not isinstance(self.swa_start, int) or not 0 <= self.swa_start <= self.epochs:
            raise ConfigError(
                f"swa_start must be 0 (off) or an epoch from 1 to {self.epochs}, "
                f"got {self.swa_start!r}."
            )
        if self.init_from is not None and not Path(self.init_from).is_file():
            raise ConfigError(f"init_from: {Path(self.init_from).name} is not a model file.")
        if self.class_weighting not in CLASS_WEIGHTINGS:
            raise ConfigError(f"class_weighting must be one of {', '.join(CLASS_WEIGHTINGS)}.")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError("label_smoothing must lie in [0, 1).")
        for name in ("train_subset", "validation_subset"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < NUM_CLASSES):
                raise ConfigError(f"{name} must be at least {NUM_CLASSES} images, got {value!r}.")
        if self.labels not in LABEL_SOURCES:
            raise ConfigError(f"labels must be one of {', '.join(LABEL_SOURCES)}.")
        for name in ("neutral_vote_weight", "own_label_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ConfigError(f"{name} must lie in [0, 1], got {value!r}.")
            if (
                value != (1.0 if name == "neutral_vote_weight" else 0.0)
                and self.labels == "fer2013"
            ):
                raise ConfigError(f"{name} applies to FER+ labels (--labels ferplus-*) only.")
        if (
            not isinstance(self.logit_adjustment, (int, float))
            or not 0 <= self.logit_adjustment <= 3
        ):
            raise ConfigError(
                f"logit_adjustment must lie in [0, 3], got {self.logit_adjustment!r}."
            )
        if self.labels != "fer2013":
            path = self.ferplus_path or default_ferplus_path()
            if path is None:
                raise ConfigError(
                    f"--labels {self.labels} needs FER+'s fer2013new.csv: give "
                    "--ferplus or set FERPLUS_PATH (download it from the FERPlus "
                    "repository)."
                )
            if not Path(path).is_file():
                raise ConfigError(f"ferplus_path: {Path(path).name} is not a file.")
        if self.mix not in MIXES:
            raise ConfigError(f"mix must be one of {', '.join(MIXES)}.")
        if not self.mix_alpha > 0:
            raise ConfigError("mix_alpha must be above 0.")
        if not self.distill_temperature > 0:
            raise ConfigError("distill_temperature must be above 0.")
        if not 0 <= self.distill_weight <= 1:
            raise ConfigError("distill_weight must lie in [0, 1].")
        if self.teacher is not None:
            if (
                isinstance(self.teacher, str)
                or not isinstance(self.teacher, list)
                or not self.teacher
            ):
                raise ConfigError("teacher must be a list of .keras model files.")
            for item in self.teacher:
                if not isinstance(item, str) or not Path(item).is_file():
                    raise ConfigError(f"teacher: {Path(str(item)).name} is not a model file.")
        if not isinstance(self.model_kwargs, dict):
            raise ConfigError("model_kwargs must be a JSON object.")
        if self.run_name is not None:
            check_run_name(self.run_name)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"Unknown training settings: {', '.join(sorted(unknown))}.")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        values = read_json(path, None)
        if not isinstance(values, dict):
            raise ConfigError(f"{Path(path).name} is not a JSON object of training settings.")
        return cls.from_dict(values)

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes) -> TrainConfig:
        return type(self).from_dict({**self.to_dict(), **changes})


def learning_rate_at(config: TrainConfig, epoch: int) -> float:
    """Cosine (or constant) schedule with linear warm-up, a pure function of the epoch (so
    resume is exact)."""
    if epoch < config.warmup_epochs:
        return config.learning_rate * (epoch + 1) / (config.warmup_epochs + 1)
    if config.schedule == "constant":
        return config.learning_rate
    span = max(config.epochs - config.warmup_epochs, 1)
    progress = (epoch - config.warmup_epochs) / span
    return config.learning_rate * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))


# ----------------------------------------------------------------------------- command line


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _factory_default(item: Field) -> object:
    """The value a field's default factory makes (the field has no plain default)."""
    factory = item.default_factory
    if not callable(factory):
        raise TypeError(f"{item.name} has neither a default nor a default factory")
    return factory()


def _value_type(annotation: str):
    base = annotation.replace(" | None", "").strip()
    return {"int": int, "float": float, "str": str, "bool": bool, "dict": dict, "list": list}[base]


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, with no default of its own: a flag that is not given
    leaves the setting to the run's config.json (or to TrainConfig's default for a new run)."""
    for item in fields(TrainConfig):
        kind = _value_type(str(item.type))  # a string: annotations are postponed
        meta = item.metadata
        default = item.default if item.default is not MISSING else _factory_default(item)
        help_text = f"{meta['help']} (default: {default!r})"
        names = [_flag(item.name), *meta.get("aliases", ())]
        if kind is bool:
            parser.add_argument(
                *names,
                dest=item.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
            if meta.get("no_flag"):
                parser.add_argument(
                    meta["no_flag"],
                    dest=item.name,
                    action="store_false",
                    default=argparse.SUPPRESS,
                    help=argparse.SUPPRESS,
                )
        elif kind is list:
            parser.add_argument(
                *names,
                dest=item.name,
                nargs=meta.get("nargs", "+"),
                metavar="MODEL",
                default=argparse.SUPPRESS,
                help=help_text,
            )
        elif kind is dict:
            parser.add_argument(
                *names, dest=item.name, type=_json_object, default=argparse.SUPPRESS, help=help_text
            )
        else:
            parser.add_argument(
                *names,
                dest=item.name,
                type=kind,
                choices=meta.get("choices"),
                default=argparse.SUPPRESS,
                help=help_text,
            )


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def given_settings(args: argparse.Namespace) -> dict:
    """The TrainConfig fields that were given on the command line (and only those)."""
    names = {item.name for item in fields(TrainConfig)}
    return {key: value for key, value in vars(args).items() if key in names}


__all__ = [
    "TrainConfig",
    "learning_rate_at",
    "add_config_arguments",
    "given_settings",
    "SCHEDULES",
    "CLASS_WEIGHTINGS",
    "MIXES",
    "LABEL_SOURCES",
]
