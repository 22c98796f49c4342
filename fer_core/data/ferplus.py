"""FER+: ten crowd votes for every FER2013 image (Barsoum et al., 2016; Microsoft, MIT licence).

Users download ``fer2013new.csv`` from the FERPlus repository themselves and point
``$FERPLUS_PATH`` (or the Dataset page) at it; nothing here requires it. Its rows are in
FER2013's order, so row *i* describes FER2013's row *i*; ``load_ferplus`` checks that against
the loaded FER2013 (row count and the Usage column) before any vote is used.

Columns: ``Usage, Image name`` then ten vote counts, ``neutral, happiness, surprise, sadness,
anger, disgust, fear, contempt, unknown, NF`` (NF: not a face). How the votes become targets:

- the seven emotions are mapped to FER2013's order; **contempt**, **unknown** and **NF** votes
  are dropped from the target (contempt has no FER2013 class);
- a face leaves the training set when one of contempt, unknown or NF has at least as many
  votes as the most-voted emotion (the FER+ paper drops the faces where unknown or NF wins);
- ``ferplus-votes``: the target is the seven emotions' vote shares (a soft label: "the share
  of people who would call this face X"); ``ferplus-majority``: the most-voted emotion;
- a **clear majority**: one emotion holds more than half of the row's votes. Agreement with
  the crowd is scored on the faces that have one (2,720 of PrivateTest's 3,589).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_core.errors import DatasetError
from fer_core.labels import EMOTIONS, LABEL_SOURCES, NUM_CLASSES, USAGES
from fer_core.data.paths import default_ferplus_path, open_regular_file
from fer_core.data.fer2013 import Fer2013

FERPLUS_COLUMNS = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
# FER2013 order (angry, disgust, fear, happy, sad, surprise, neutral) -> FER+ column index.
TO_FER2013 = (4, 5, 6, 1, 3, 2, 0)
OTHER_COLUMNS = (7, 8, 9)  # contempt, unknown, NF
NEUTRAL = EMOTIONS.index("neutral")  # in FER2013's order
# fer2013new.csv is 1.6 MB (35,887 rows of about 45 bytes); far beyond that is not FER+.
MAX_FERPLUS_BYTES = 16 * 1024 * 1024
MAX_LINE_CHARS = 1024


@dataclass
class FerPlus:
    """FER+ votes in FER2013's row order: votes (N, 10) int16 in FERPLUS_COLUMNS order,
    usage (N,) str."""

    votes: np.ndarray
    usage: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return len(self.usage)

    def emotion_votes(self) -> np.ndarray:
        """(N, 7) vote counts in FER2013's class order."""
        return self.votes[:, TO_FER2013]

    def trainable(self) -> np.ndarray:
        """(N,) bool: the most-voted emotion beats contempt, unknown and "not a face"."""
        emotions = self.emotion_votes().max(axis=1)
        others = self.votes[:, OTHER_COLUMNS].max(axis=1)
        return emotions > others

    def _weighted_votes(self, neutral_weight: float) -> np.ndarray:
        """(N, 7) float32 emotion votes, each neutral vote counting ``neutral_weight``."""
        counts = self.emotion_votes().astype(np.float32)
        counts[:, NEUTRAL] *= neutral_weight
        return counts

    def soft_targets(self, neutral_weight: float = 1.0) -> np.ndarray:
        """(N, 7) float32: each emotion's share of the row's emotion votes (zeros where no
        emotion got a vote), a neutral vote counting ``neutral_weight``."""
        counts = self._weighted_votes(neutral_weight)
        totals = counts.sum(axis=1, keepdims=True)
        return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)

    def plurality(self, neutral_weight: float = 1.0) -> np.ndarray:
        """(N,) int64: the most-voted emotion (ties: the first in FER2013's order), a neutral
        vote counting ``neutral_weight``."""
        return self._weighted_votes(neutral_weight).argmax(axis=1).astype(np.int64)

    def clear_majority(self) -> np.ndarray:
        """(N,) int64: the emotion holding more than half of all the row's votes, or -1."""
        counts = self.emotion_votes()
        totals = self.votes.sum(axis=1)
        best = counts.argmax(axis=1)
        clear = counts[np.arange(len(counts)), best] * 2 > totals
        return np.where(clear & (totals > 0), best, -1).astype(np.int64)


def load_ferplus(path: str | os.PathLike | None = None, dataset=None) -> FerPlus:
    """Read ``fer2013new.csv`` (bounded; every malformed row named by its line number) and,
    given the loaded FER2013, check that it describes the same rows."""
    if path is None:
        path = default_ferplus_path()
    if path is None:
        raise DatasetError(
            "No FER+ votes given. Download fer2013new.csv from the FERPlus "
            "repository and set FERPLUS_PATH to it (or give --ferplus)."
        )
    path = Path(path)
    name = path.name
    with open_regular_file(path) as raw:
        data = raw.read(MAX_FERPLUS_BYTES + 1)
    if len(data) > MAX_FERPLUS_BYTES:
        raise DatasetError(
            f"{name} is larger than {MAX_FERPLUS_BYTES // 2**20} MB; FER+'s "
            "fer2013new.csv is 1.6 MB. This is not the FER+ file."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{name} is not a text file (byte {exc.start} is not UTF-8). "
            "Choose FER+'s fer2013new.csv."
        ) from exc
    result = _parse(text, name)
    if dataset is not None:
        check_against(result, dataset)
    return result


def _parse(text: str, name: str) -> FerPlus:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    expected = ["Usage", "Image name", *FERPLUS_COLUMNS]
    if header is None or [h.strip() for h in header] != expected:
        raise DatasetError(
            f"{name} does not start with FER+'s header "
            f"({','.join(expected)}). Choose FER+'s fer2013new.csv."
        )
    votes: list[list[int]] = []
    usage: list[str] = []
    known = set(USAGES)
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(expected):
            raise DatasetError(f"{name} line {line} has {len(row)} fields, not {len(expected)}.")
        if row[0] not in known:
            raise DatasetError(
                f"{name} line {line}: unknown Usage (expected one of {', '.join(USAGES)})."
            )
        try:
            counts = [int(value) for value in row[2:]]
        except ValueError:
            raise DatasetError(f"{name} line {line}: a vote count is not a whole number.") from None
        if any(c < 0 or c > 100 for c in counts):
            raise DatasetError(f"{name} line {line}: vote counts must lie between 0 and 100.")
        if any(len(value) > MAX_LINE_CHARS for value in row):
            raise DatasetError(f"{name} line {line} is too long for FER+.")
        usage.append(row[0])
        votes.append(counts)
    if not votes:
        raise DatasetError(f"{name} holds no rows.")
    return FerPlus(np.asarray(votes, dtype=np.int16), np.asarray(usage), source=name)


def check_against(ferplus: FerPlus, dataset) -> None:
    """FER+ and FER2013 describe the same rows: the same count and the same Usage per row."""
    rows = dataset.row_numbers
    if rows is None or len(rows) != len(dataset):
        raise DatasetError(
            "FER+ votes can be matched only to FER2013 read from its CSV "
            "(the folder layout has no row order)."
        )
    if int(rows.max()) >= len(ferplus) or (not dataset.skipped and len(dataset) != len(ferplus)):
        raise DatasetError(
            f"{ferplus.source} has {len(ferplus):,} rows but the FER2013 file "
            f"has {int(rows.max()) + 1:,}: they are not the same release."
        )
    mismatched = np.flatnonzero(ferplus.usage[rows] != dataset.usage)
    if len(mismatched):
        first = int(rows[mismatched[0]])
        raise DatasetError(
            f"{ferplus.source} and FER2013 disagree on the Usage of "
            f"{len(mismatched):,} rows (first: row {first}): they do not "
            "describe the same images."
        )


def aligned(ferplus: FerPlus, dataset) -> FerPlus:
    """The votes of the dataset's rows, in the dataset's order (after skipped rows)."""
    check_against(ferplus, dataset)
    rows = dataset.row_numbers
    return FerPlus(ferplus.votes[rows], ferplus.usage[rows], ferplus.source)


def split_votes(ferplus: FerPlus, dataset, split: str) -> FerPlus:
    """The votes of one split's rows of the dataset, in the dataset's order."""
    votes = aligned(ferplus, dataset)
    inside = dataset.usage == split
    return FerPlus(votes.votes[inside], votes.usage[inside], votes.source)


def crowd_labels(ferplus: FerPlus, dataset, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A split's clear-majority labels (the agreement protocol) and the mask of the split's
    faces that have one."""
    majority = split_votes(ferplus, dataset, split).clear_majority()
    keep = majority >= 0
    return majority[keep], keep


def crowd_shares(ferplus: FerPlus, dataset, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A split's vote shares over the seven emotions on the faces whose most-voted answer
    is an emotion, and the mask of those faces."""
    votes = split_votes(ferplus, dataset, split)
    keep = votes.trainable()
    return votes.soft_targets()[keep], keep


def relabel(
    dataset,
    ferplus: FerPlus,
    mode: str,
    neutral_vote_weight: float = 1.0,
    own_label_weight: float = 0.0,
):
    """A copy of ``dataset`` labelled by the crowd, for training: rows whose most-voted
    answer is contempt, unknown or "not a face" leave Training; PublicTest and PrivateTest
    keep the faces with a clear majority, labelled by it (the agreement protocol). Labels
    are the plurality (Training) or the majority (the test splits); ``soft`` holds the vote
    shares (``ferplus-votes``) or the one-hot label (``ferplus-majority``).

    Two choices change only the Training rows' targets (the test splits are always scored
    against the clear majority):

    - ``neutral_vote_weight``: each *neutral* vote counts this much before the shares are
      taken (1: as cast). A face on which four of ten people saw anger and six saw nothing
      teaches "mostly neutral" at 1; at 0.5 it teaches anger and neutral about equally;
    - ``own_label_weight``: the target becomes ``(1 - w) * crowd + w * FER2013's own label``
      (one-hot), so the single labeller's reading of a subtle expression is not outvoted
      entirely (0: the crowd alone).
    """

    if mode not in LABEL_SOURCES[1:]:
        raise DatasetError(f"labels must be one of {', '.join(LABEL_SOURCES)}.")
    if not 0.0 <= neutral_vote_weight <= 1.0:
        raise DatasetError("neutral_vote_weight must lie in [0, 1].")
    if not 0.0 <= own_label_weight <= 1.0:
        raise DatasetError("own_label_weight must lie in [0, 1].")
    votes = aligned(ferplus, dataset)
    training = dataset.usage == "Training"
    majority = votes.clear_majority()
    keep = np.where(training, votes.trainable(), majority >= 0)
    labels = np.where(training, votes.plurality(neutral_vote_weight), majority)[keep]
    soft = (
        votes.soft_targets(neutral_vote_weight)[keep]
        if mode == "ferplus-votes"
        else np.eye(NUM_CLASSES, dtype=np.float32)[labels]
    )
    if own_label_weight:
        own = np.eye(NUM_CLASSES, dtype=np.float32)[np.asarray(dataset.labels)[keep]]
        soft = (1.0 - own_label_weight) * soft + own_label_weight * own
    # A test face is scored against its majority: its soft target is that one-hot label.
    soft[~training[keep]] = np.eye(NUM_CLASSES, dtype=np.float32)[labels[~training[keep]]]
    rows = dataset.row_numbers[keep] if dataset.row_numbers is not None else None
    return Fer2013(
        dataset.images[keep],
        labels,
        dataset.usage[keep],
        source=dataset.source,
        skipped=list(dataset.skipped),
        row_numbers=rows,
        soft=soft.astype(np.float32),
    )


def agreement_report(probabilities: np.ndarray, votes: FerPlus) -> dict:
    """How a model's distributions agree with the crowd's, on the given rows.

    - ``majority_agreement``: top class = the clear majority, on the faces that have one;
    - ``plurality_agreement``: top class = the most-voted emotion, on the faces whose votes
      are mostly for an emotion (the FER+ paper's majority protocol keeps those);
    - ``crowd_kl`` / ``crowd_tv``: KL(crowd || model) and total variation between the vote
      shares and the model's probabilities, on the same faces;
    - ``majority_ece``: calibration of the top class against the clear majority (15 bins);
    - ``crowd_ece``: calibration against the crowd itself: in each of 15 bins of the top
      probability, its mean against the mean share of people who chose that emotion, on the
      faces whose votes are mostly for an emotion (0: a face shown at 70% is one that 70% of
      people would call so).
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    majority = votes.clear_majority()
    clear = majority >= 0
    trainable = votes.trainable()
    guess = probabilities.argmax(axis=1)
    shares = votes.soft_targets().astype(np.float64)
    eps = 1e-7
    kl = np.sum(
        shares * (np.log(np.clip(shares, eps, 1)) - np.log(np.clip(probabilities, eps, 1))), axis=1
    )
    tv = 0.5 * np.abs(shares - probabilities).sum(axis=1)
    report = {
        "clear_faces": int(clear.sum()),
        "majority_agreement": float(np.mean(guess[clear] == majority[clear]))
        if clear.any()
        else None,
        "emotion_faces": int(trainable.sum()),
        "plurality_agreement": float(np.mean(guess[trainable] == votes.plurality()[trainable]))
        if trainable.any()
        else None,
        "crowd_kl": float(kl[trainable].mean()) if trainable.any() else None,
        "crowd_tv": float(tv[trainable].mean()) if trainable.any() else None,
        "majority_ece": _ece(probabilities[clear], guess[clear] == majority[clear])
        if clear.any()
        else None,
        # Each face's outcome is the share of people who chose the model's top emotion.
        "crowd_ece": _ece(
            probabilities[trainable], np.take_along_axis(shares, guess[:, None], 1)[trainable, 0]
        )
        if trainable.any()
        else None,
    }
    return report


def _ece(probabilities: np.ndarray, outcome: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the top class against each face's ``outcome``: right or
    wrong (0/1), or graded (the share of people who chose the top class)."""
    confidence = probabilities.max(axis=1)
    correct = np.asarray(outcome, dtype=np.float64)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def disagreement(dataset, votes: FerPlus) -> dict:
    """Where FER2013's single label and the crowd disagree, per split: the faces with a
    clear majority, how many of their FER2013 labels match it, how many FER2013 labels got
    no vote at all, and a (FER2013 label x crowd majority) count table."""
    aligned_votes = aligned(votes, dataset)
    majority = aligned_votes.clear_majority()
    emotion = aligned_votes.emotion_votes()
    result = {}
    for usage in USAGES:
        inside = dataset.usage == usage
        if not inside.any():
            continue
        clear = inside & (majority >= 0)
        labels = dataset.labels
        table = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
        np.add.at(table, (labels[clear], majority[clear]), 1)
        no_vote = emotion[inside, :][np.arange(int(inside.sum())), labels[inside]] == 0
        result[usage] = {
            "faces": int(inside.sum()),
            "clear_faces": int(clear.sum()),
            "label_matches_majority": int((labels[clear] == majority[clear]).sum()),
            "label_got_no_vote": int(no_vote.sum()),
            "not_trainable": int((inside & ~aligned_votes.trainable()).sum()),
            "table": table.tolist(),
        }
    return result


__all__ = [
    "FerPlus",
    "load_ferplus",
    "default_ferplus_path",
    "check_against",
    "aligned",
    "split_votes",
    "crowd_labels",
    "crowd_shares",
    "relabel",
    "agreement_report",
    "disagreement",
    "LABEL_SOURCES",
    "FERPLUS_COLUMNS",
]
