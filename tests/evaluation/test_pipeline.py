"""The pipeline evaluation: scenes, matching, framing measurement and the CLI entry."""

import argparse

import numpy as np
import pytest

from fer_core import ConfigError, Recognizer
from fer_core.cli.pipeline_command import add_pipeline_parser
from fer_core.evaluation.whole_path import (
    SceneOptions,
    evaluate_pipeline,
    make_scene,
    measure_framing,
)
from fer_core.recognition.preprocess import Framing


@pytest.fixture(scope="module")
def astronaut_faces(astronaut):
    """Four FER2013-like 48x48 crops of the astronaut's face (a loose square around it)."""
    import cv2

    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    crops = [
        cv2.resize(
            grey[45 + d : 175 + d, 160 + d : 290 + d], (48, 48), interpolation=cv2.INTER_AREA
        )
        for d in (0, 3, -3, 5)
    ]
    return np.stack(crops)


def test_scene_places_the_face_where_it_says(astronaut_faces):
    import cv2

    options = SceneOptions(scale=4, width=640, height=480)
    frame, (x, y, w, h) = make_scene(astronaut_faces[0], options)
    assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
    assert (x, y, w, h) == (224, 144, 192, 192)
    placed = cv2.resize(frame[y : y + h, x : x + w, 0], (48, 48), interpolation=cv2.INTER_AREA)
    assert np.abs(placed.astype(int) - astronaut_faces[0]).mean() < 3
    assert (frame[:100, :100] == 128).all()  # grey background
    shifted, box = make_scene(astronaut_faces[0], SceneOptions(placement="random", seed=3), 1)
    assert 0 <= box[0] <= 640 - 192 and 0 <= box[1] <= 480 - 192
    rotated, _ = make_scene(astronaut_faces[0], SceneOptions(angle=10, background="noise"), 0)
    assert rotated.shape == (480, 640, 3)


def test_scene_options_are_checked():
    with pytest.raises(ConfigError):
        SceneOptions(scale=12).validate()  # 576 px does not fit in 480
    with pytest.raises(ConfigError):
        SceneOptions(background="plaid").validate()


def test_measure_framing_recovers_a_known_mapping():
    # boxes 160 px wide, FER frame 192 px whose centre lies 8 px right and 16 px below
    records = [
        {"box": [100 + i, 100, 160, 160], "truth": [100 + i - 16 + 8, 100 - 16 + 16, 192, 192]}
        for i in range(5)
    ]
    framing, spread = measure_framing(records)
    assert framing == Framing(scale=1.2, dx=0.05, dy=0.1)
    assert spread["box_covers_frame_width_median"] == pytest.approx(160 / 192, abs=1e-3)
    cx, cy, side = framing.region((100, 100, 160, 160))
    assert (cx, cy, side) == pytest.approx((100 + 80 + 8, 100 + 80 + 16, 192))


@pytest.mark.parametrize("detector", ["haar", "blazeface"])
def test_evaluate_pipeline_finds_and_scores_faces(astronaut_faces, detector):
    recognizer = Recognizer(detector=detector)
    labels = np.array([3, 3, 3, 3])  # she smiles
    report = evaluate_pipeline(
        recognizer, astronaut_faces, labels, SceneOptions(scale=4), keep_records=True
    )
    assert report["faces"] == 4 and report["found"] == 1.0
    assert report["end_to_end"] == report["accuracy_found"]
    assert report["framing_cost"] == pytest.approx(
        report["crop_accuracy_found"] - report["accuracy_found"]
    )
    assert len(report["records"]) == 4 and report["detector"] == detector
    framing, _ = measure_framing(report["records"])
    assert 1.0 < framing.scale < 1.6  # detector boxes are tighter than FER2013's frame


def test_missed_faces_count_as_wrong():
    recognizer = Recognizer()
    blank = np.full((3, 48, 48), 128, np.uint8)
    report = evaluate_pipeline(recognizer, blank, np.array([0, 1, 2]))
    assert report["found"] == 0.0 and report["end_to_end"] == 0.0
    assert report["accuracy_found"] is None


def test_cli_parser_registers_evaluate_pipeline():
    parser = argparse.ArgumentParser()
    add_pipeline_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "evaluate-pipeline",
            "--detector",
            "haar",
            "blazeface",
            "--preset",
            "live",
            "--split",
            "PrivateTest",
            "--limit",
            "10",
        ]
    )
    assert args.detector == ["haar", "blazeface"] and args.preset == ["live"]
    assert args.split == "PrivateTest" and args.limit == 10 and callable(args.func)


def test_pipeline_on_real_fer2013_faces(fer2013):
    images, labels = fer2013.split("PublicTest")
    report = evaluate_pipeline(Recognizer(detector="blazeface"), images[:60], labels[:60])
    assert report["found"] > 0.8 and report["end_to_end"] > 0.4


def test_framing_sweep_scores_every_framing_and_the_oracle(astronaut_faces):
    from fer_core.evaluation.whole_path import framing_sweep

    result = framing_sweep(
        Recognizer(), astronaut_faces, np.array([3, 3, 3, 3]), scales=[1.0, 1.2], dys=[0.0]
    )
    assert result["found"] == 4 and len(result["grid"]) == 2
    assert result["best"] in result["grid"]
    assert 0.0 <= result["oracle_frame_accuracy_found"] <= 1.0


def test_sweep_refuses_private_test():
    from fer_core.cli.pipeline_command import _cmd_sweep

    parser = argparse.ArgumentParser()
    add_pipeline_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["evaluate-pipeline", "--sweep-framing", "--split", "PrivateTest"])
    with pytest.raises(ConfigError):
        _cmd_sweep(args)
