"""FER+ crowd votes: reading, checking against FER2013, the targets, agreement, training."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from fer_core.data.fer2013 import Fer2013, duplicates_of_training, load_fer2013
from fer_core.data.ferplus import (
    FERPLUS_COLUMNS,
    FerPlus,
    agreement_report,
    disagreement,
    load_ferplus,
    relabel,
)
from fer_core.errors import DatasetError

HEADER = "Usage,Image name," + ",".join(FERPLUS_COLUMNS)


def write_votes(path: Path, usage: list[str], votes: list[list[int]]) -> Path:
    lines = [HEADER]
    for i, (u, v) in enumerate(zip(usage, votes)):
        lines.append(f"{u},fer{i:07d}.png," + ",".join(map(str, v)))
    path.write_text("\n".join(lines) + "\n")
    return path


def dataset(usage: list[str], labels: list[int]) -> Fer2013:
    n = len(usage)
    rng = np.random.default_rng(0)
    return Fer2013(
        rng.integers(0, 256, (n, 48, 48), dtype=np.uint8),
        np.array(labels),
        np.array(usage),
        source="t.csv",
        row_numbers=np.arange(n),
    )


#            neu hap sur sad ang dis fea con unk NF
VOTES = [
    [0, 9, 0, 0, 0, 0, 0, 0, 1, 0],  # happy, clear
    [4, 0, 0, 3, 0, 0, 0, 0, 3, 0],  # neutral plurality, no clear majority
    [0, 0, 0, 0, 0, 0, 0, 0, 2, 8],  # not a face: leaves training
    [1, 0, 0, 0, 3, 0, 0, 4, 2, 0],  # contempt wins: leaves training
    [0, 0, 6, 0, 0, 0, 4, 0, 0, 0],  # surprise, clear (6 of 10)
    [5, 0, 0, 5, 0, 0, 0, 0, 0, 0],
]  # a tie: no clear majority
USAGE = ["Training", "Training", "Training", "Training", "PublicTest", "PublicTest"]


def test_targets_follow_the_documented_rules(tmp_path):
    votes = load_ferplus(write_votes(tmp_path / "v.csv", USAGE, VOTES))
    assert votes.trainable().tolist() == [True, True, False, False, True, True]
    assert votes.clear_majority().tolist() == [3, -1, -1, -1, 5, -1]
    assert votes.plurality().tolist()[:2] == [3, 6]
    soft = votes.soft_targets()
    assert np.allclose(soft.sum(axis=1)[[0, 1, 4, 5]], 1.0)
    assert soft[1, 6] == pytest.approx(4 / 7) and soft[1, 4] == pytest.approx(3 / 7)
    assert soft[3, 0] == pytest.approx(3 / 4)  # contempt's votes are not in the target


def test_relabel_drops_non_faces_from_training_and_keeps_clear_test_faces(tmp_path):
    votes = load_ferplus(write_votes(tmp_path / "v.csv", USAGE, VOTES))
    data = dataset(USAGE, [3, 4, 0, 0, 5, 6])
    crowd = relabel(data, votes, "ferplus-votes")
    assert crowd.row_numbers.tolist() == [0, 1, 4]
    assert crowd.labels.tolist() == [3, 6, 5]
    assert crowd.soft[1, 6] == pytest.approx(4 / 7)
    assert crowd.soft[2].tolist() == np.eye(7)[5].tolist()  # test faces: the majority
    hard = relabel(data, votes, "ferplus-majority")
    assert hard.soft[1].tolist() == np.eye(7)[6].tolist()


def test_votes_must_describe_the_same_rows(tmp_path):
    data = dataset(USAGE, [3, 4, 0, 0, 5, 6])
    shorter = write_votes(tmp_path / "short.csv", USAGE[:5], VOTES[:5])
    with pytest.raises(DatasetError, match="not the same release"):
        load_ferplus(shorter, data)
    swapped = write_votes(tmp_path / "swap.csv", list(reversed(USAGE)), VOTES)
    with pytest.raises(DatasetError, match="disagree on the Usage"):
        load_ferplus(swapped, data)


@pytest.mark.parametrize(
    "text, message",
    [
        ("Usage,wrong\n", "header"),
        (HEADER + "\nTraining,x.png,1,2,3\n", "fields"),
        (HEADER + "\nSomewhere,x.png," + ",".join("1" * 10) + "\n", "unknown Usage"),
        (HEADER + "\nTraining,x.png," + ",".join(["a"] * 10) + "\n", "not a whole number"),
    ],
)
def test_malformed_files_are_named_not_quoted(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DatasetError, match=message):
        load_ferplus(path)


def test_no_path_says_where_to_get_it(monkeypatch):
    monkeypatch.delenv("FERPLUS_PATH", raising=False)
    with pytest.raises(DatasetError, match="FERPlus repository"):
        load_ferplus(None)


def test_agreement_report_counts_right(tmp_path):
    votes = load_ferplus(write_votes(tmp_path / "v.csv", USAGE, VOTES))
    probs = np.full((6, 7), 0.01)
    probs[0, 3] = probs[1, 6] = probs[4, 2] = probs[5, 4] = 0.9  # row 4 wrong (fear)
    report = agreement_report(probs / probs.sum(1, keepdims=True), votes)
    assert report["clear_faces"] == 2 and report["majority_agreement"] == 0.5
    # plurality: row 5 is a tie, broken towards sad (the first in FER2013 order): right
    assert report["emotion_faces"] == 4 and report["plurality_agreement"] == 0.75


def test_disagreement_table(tmp_path):
    votes = load_ferplus(write_votes(tmp_path / "v.csv", USAGE, VOTES))
    report = disagreement(dataset(USAGE, [3, 4, 0, 0, 5, 6]), votes)
    assert report["Training"]["clear_faces"] == 1
    assert report["Training"]["label_matches_majority"] == 1
    assert report["Training"]["label_got_no_vote"] == 1  # row 2: angry got no vote
    assert report["PublicTest"]["table"][5][5] == 1


def test_duplicates_of_training_are_found_by_pixels():
    data = dataset(["Training", "Training", "PrivateTest", "PrivateTest"], [0, 1, 2, 3])
    data.images[3] = data.images[1]
    assert duplicates_of_training(data, "PrivateTest").tolist() == [False, True]


@pytest.mark.slow
def test_training_on_crowd_votes_end_to_end(tmp_path, monkeypatch):
    """``fer train --labels ferplus-votes --path-augment`` trains on the crowd's shares and
    validates against the clear majority."""
    from fer_core.training.config import TrainConfig
    from fer_core.training.loop import train
    from fer_core.training.runs import Run
    from tests.service.test_jobs import write_fer_csv

    csv = write_fer_csv(tmp_path / "fer.csv", per_class=4)
    data = load_fer2013(csv)
    rng = np.random.default_rng(1)
    votes = []
    for label in data.labels:
        row = [0] * 10
        column = [4, 5, 6, 1, 3, 2, 0][label]
        row[column] = int(rng.integers(6, 10))
        row[8] = 10 - row[column]
        votes.append(row)
    ferplus = write_votes(tmp_path / "votes.csv", list(data.usage), votes)
    config = TrainConfig(
        epochs=1,
        batch_size=16,
        labels="ferplus-votes",
        ferplus_path=str(ferplus),
        path_augment=True,
        runs_dir=str(tmp_path / "runs"),
        run_name="crowd",
        model_kwargs={"width": 8},
        recalibrate_batch_norm=False,
    )
    run = Run(train(config, data))
    assert run.best_model.is_file()
    state = run.state()
    assert state["data"]["labels"] == "ferplus-votes"
    assert run.config()["labels"] == "ferplus-votes"


def test_evaluate_leaves_out_the_servers_votes_for_another_dataset(tmp_path, monkeypatch, capsys):
    """$FERPLUS_PATH describes the server's FER2013; `fer evaluate` on another dataset (the
    Training page's evaluation of a run on the user's CSV) goes on without the crowd, with a
    note. A file given with --ferplus must fit: a clear error, exit 2."""
    from fer_core.cli.main import main
    from tests.service.test_jobs import write_fer_csv

    csv = write_fer_csv(tmp_path / "fer.csv", per_class=2)
    other = write_votes(tmp_path / "other.csv", ["Training"] * 5, [VOTES[0]] * 5)
    monkeypatch.setenv("FERPLUS_PATH", str(other))
    assert main(["evaluate", "--data", str(csv), "--split", "PublicTest"]) == 0
    captured = capsys.readouterr()
    assert (
        "note: not measuring agreement with the crowd: FERPLUS_PATH does not fit" in captured.err
        and "not the same release" in captured.err
    )
    assert "accuracy" in captured.out
    monkeypatch.delenv("FERPLUS_PATH")
    assert (
        main(["evaluate", "--data", str(csv), "--split", "PublicTest", "--ferplus", str(other)])
        == 2
    )
    assert "error: other.csv has 5 rows" in capsys.readouterr().err


def test_crowd_labels_without_votes_is_a_clear_error(monkeypatch):
    from fer_core.errors import ConfigError
    from fer_core.training.config import TrainConfig

    monkeypatch.delenv("FERPLUS_PATH", raising=False)
    with pytest.raises(ConfigError, match="FERPLUS_PATH"):
        TrainConfig(labels="ferplus-votes").validate()


@pytest.mark.real_data
def test_real_ferplus_matches_the_published_facts(fer2013_path):
    path = os.environ.get("FERPLUS_PATH")
    if not path:
        pytest.skip("FERPLUS_PATH is not set (FER+'s fer2013new.csv); .ci/run sets it")
    data = load_fer2013(fer2013_path)
    votes = load_ferplus(path, data)
    report = disagreement(data, votes)["PrivateTest"]
    assert report["clear_faces"] == 2720
    assert report["label_matches_majority"] / report["clear_faces"] == pytest.approx(
        0.722, abs=0.001
    )
    assert int(duplicates_of_training(data, "PrivateTest").sum()) == 288
    assert isinstance(votes, FerPlus) and len(votes) == 35887


def test_neutral_vote_weight_and_own_label_change_only_training_targets(tmp_path):
    votes = load_ferplus(write_votes(tmp_path / "v.csv", USAGE, VOTES))
    data = dataset(USAGE, [3, 4, 0, 0, 5, 6])
    # Row 1: 4 neutral, 3 sad votes. Neutral at half weight: 2 against 3, sad leads.
    half = relabel(data, votes, "ferplus-votes", neutral_vote_weight=0.5)
    assert half.soft[1, 6] == pytest.approx(2 / 5) and half.soft[1, 4] == pytest.approx(3 / 5)
    assert half.labels.tolist() == [3, 4, 5]  # the plurality follows the weighted votes
    assert half.soft[2].tolist() == np.eye(7)[5].tolist()  # a test face: still its majority
    # FER2013's own label (sad, 4) mixed in at 0.5.
    mixed = relabel(data, votes, "ferplus-votes", own_label_weight=0.5)
    assert mixed.soft[1, 4] == pytest.approx(0.5 * 3 / 7 + 0.5)
    assert mixed.soft[1, 6] == pytest.approx(0.5 * 4 / 7)
    assert np.allclose(mixed.soft.sum(axis=1), 1.0)
    assert mixed.soft[2].tolist() == np.eye(7)[5].tolist()
    with pytest.raises(DatasetError, match="own_label_weight"):
        relabel(data, votes, "ferplus-votes", own_label_weight=2.0)


def test_crowd_ece_is_zero_for_the_vote_shares_and_measures_overconfidence(tmp_path):
    votes = load_ferplus(write_votes(tmp_path / "v.csv", USAGE, VOTES))
    shares = votes.soft_targets().astype(np.float64)
    emotion_faces = votes.trainable()
    exact = agreement_report(np.where(emotion_faces[:, None], shares, 1 / 7), votes)
    assert exact["crowd_ece"] == pytest.approx(0.0, abs=1e-9)
    # Certain of the most-voted emotion: off by what the others voted, on average.
    certain = np.eye(7)[votes.plurality()]
    report = agreement_report(certain, votes)
    expected = np.mean(1.0 - shares[emotion_faces].max(axis=1))
    assert report["crowd_ece"] == pytest.approx(expected)
