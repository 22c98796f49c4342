"""Fine-tuning on faces captured on the Live page: they join the Training rows, and the run
and its model card say how many."""

import subprocess
import sys

import numpy as np
import pytest

from fer_core import ConfigError, load_fer2013
from fer_core.models.card import read_card
from fer_core.records import ADMIN_CLI, Records, database_url
from fer_core.training.loop import train
from fer_core.training.provenance import training_section
from fer_core.training.runs import Run
from tests.conftest import ROOT, synthetic_rows, write_csv
from tests.training.test_train import _tiny_config

pytestmark = pytest.mark.slow


def test_a_fine_tuning_run_with_captured_faces_records_their_count_in_its_card(tmp_path):
    csv = write_csv(tmp_path / "d.csv", synthetic_rows(8))
    data = load_fer2013(csv)
    runs = tmp_path / "runs"
    base = train(_tiny_config(tmp_path, run_name="base", epochs=1), data)

    with pytest.raises(ConfigError, match="No captured faces"):
        train(_tiny_config(tmp_path, run_name="empty", epochs=1, captured_faces=True), data)

    records = Records(database_url(runs=runs))
    person = records.add_person("Ann", ADMIN_CLI)
    faces = np.random.default_rng(1).integers(0, 255, (5, 48, 48), dtype=np.uint8)
    for face, emotion in zip(faces, ["happy", "happy", "sad", "surprise", "neutral"]):
        records.add_capture(person.id, emotion, face, ADMIN_CLI)
    records.close()

    config = _tiny_config(
        tmp_path,
        run_name="tuned",
        epochs=1,
        captured_faces=True,
        init_from=str(base / "best.keras"),
    )
    tuned = train(config, data)
    state = Run(tuned).state()
    plain = int((data.usage == "Training").sum())
    assert state["data"]["captured_faces"] == 5
    assert state["data"]["training_images"] == plain + 5
    section = training_section(tuned)
    assert section["captured_faces"] == 5
    assert f"{plain:,} images, and 5 faces captured on the Live page" in section["data"]

    # the card written by `fer evaluate --write-card --run` says so too
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fer_core",
            "evaluate",
            "--model",
            str(tuned / "best.keras"),
            "--data",
            str(csv),
            "--split",
            "PrivateTest",
            "--write-card",
            "--run",
            str(tuned),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    card = read_card(tuned / "best.keras")
    assert card.captured_faces == 5
    assert (
        read_card(base / "best.keras") is None or read_card(base / "best.keras").captured_faces == 0
    )
