"""Uncertain faces (fer_core.recognition.uncertainty), the explanation maps (fer_core.recognition.explain) and their
CLI (`fer predict --explain DIR`)."""

import re

import numpy as np
import pytest

from fer_core import EMOTIONS, Recognizer
from fer_core.recognition.drawing import UNCERTAIN_COLOUR, draw_results
from fer_core.recognition.results import FACE_COLUMNS, FaceResult, face_rows
from fer_core.recognition.uncertainty import caption, short_label, threshold_of
from tests.synthetic_media import ASTRONAUT_FACE, unsure_face


def probs(**values):
    row = np.array([values.get(e, 0.0) for e in EMOTIONS])
    return row / row.sum()


def test_low_top_probability_is_labelled_uncertain_with_two_emotions():
    unsure = probs(sad=0.4, neutral=0.35, fear=0.25)
    sure = probs(happy=0.9, neutral=0.1)
    assert short_label(unsure, 0.53) == "uncertain: sad/neutral"
    assert caption(unsure, 0.53) == "uncertain: sad 40%/neutral 35%"
    assert short_label(sure, 0.53) == "happy" and caption(sure, 0.53) == "happy 90%"
    assert short_label(unsure, None) == "sad"  # no calibrated card: plain labels


def test_rows_carry_the_uncertainty_columns():
    results = [
        FaceResult((0, 0, 10, 10), probs(sad=0.4, neutral=0.35, fear=0.25), 1),
        FaceResult((20, 0, 10, 10), probs(happy=0.9, neutral=0.1), 2),
    ]
    rows = face_rows(results, file="x.png", uncertain_below=0.53)
    assert list(rows[0]) == ["file", *FACE_COLUMNS]
    assert [(r["uncertain"], r["label"], r["second"]) for r in rows] == [
        (True, "sad", "neutral"),
        (False, "happy", "neutral"),
    ]
    assert face_rows(results, frame=0, time_s=0.0)[0]["uncertain"] is None


def test_uncertain_faces_are_drawn_amber_with_both_emotions():
    canvas = np.zeros((200, 300, 3), np.uint8)
    unsure = FaceResult((50, 60, 80, 80), probs(sad=0.4, neutral=0.35, fear=0.25), 1)
    drawn = draw_results(canvas, [unsure], 0.53)
    amber = (np.abs(drawn.astype(int) - UNCERTAIN_COLOUR).sum(axis=2) < 10).sum()
    assert amber > 300
    plain = draw_results(canvas, [unsure], None)
    assert (np.abs(plain.astype(int) - UNCERTAIN_COLOUR).sum(axis=2) < 10).sum() == 0


def test_the_shipped_model_is_unsure_of_an_ambiguous_face():
    recognizer = Recognizer()
    threshold = threshold_of(recognizer.model)
    assert threshold is not None and 0.3 < threshold < 0.8  # read from the card
    results = recognizer.analyze(unsure_face())
    assert len(results) == 1 and short_label(results[0].probs, threshold).startswith("uncertain")


def test_occlusion_map_points_at_the_face_the_answer_rests_on(astronaut):
    from fer_core.recognition.explain import explain_faces, occlusion_map

    recognizer = Recognizer(framing=None)  # the bare box, as ASTRONAUT_FACE was measured
    items = explain_faces(recognizer, astronaut, [ASTRONAUT_FACE])
    assert len(items) == 1 and items[0]["emotion"] == "happy"
    heat = items[0]["heat"]
    assert heat.shape == (48, 48) and heat.max() == pytest.approx(1.0) and heat.min() >= 0
    # Hiding the mouth (lower third) costs "happy" more than hiding the forehead (top rows).
    assert heat[32:44, 12:36].mean() > heat[0:8, 12:36].mean()
    assert items[0]["overlay_image"].shape == (192, 192, 3)
    assert not np.array_equal(items[0]["overlay_image"], items[0]["crop_image"])
    flat, _, _ = occlusion_map(recognizer.model, np.full((48, 48), 120, np.uint8))
    assert flat.shape == (48, 48) and np.isfinite(flat).all()


@pytest.mark.parametrize("detector", ["haar", "blazeface"])
def test_the_crop_explained_is_the_crop_classified(astronaut, detector):
    """Issue 22: "Why?" re-cropped a face from its box without the recognizer's framing, so
    with Haar it showed none of the three crops averaged and with BlazeFace a crop the model
    never saw. The explanation now crops through the recognizer: the probabilities it explains
    are the recognizer's answer, and the crop shown is one the recognizer classified."""
    from fer_core.faces import to_grey
    from fer_core.recognition.explain import explain_faces
    from fer_core.recognition.preprocess import crop_faces

    recognizer = Recognizer(detector=detector)
    results = recognizer.analyze(astronaut)
    assert results, f"{detector} found no face in the astronaut"
    boxes = [r.box for r in results]
    items = explain_faces(recognizer, astronaut, boxes)
    classified = recognizer.face_crops(to_grey(astronaut), boxes)
    framings = 3 if detector == "haar" else 1  # Haar's photo preset averages three framings
    assert classified.shape == (framings, len(boxes), 48, 48)
    for index, (result, item) in enumerate(zip(results, items)):
        np.testing.assert_allclose(item["probs"], result.probs, atol=1e-5)
        assert item["emotion"] == result.label
        np.testing.assert_array_equal(item["crops"], classified[:, index])
        assert any(np.array_equal(item["crop"], crop) for crop in classified[:, index])
        # ... and not the bare box the page used to show.
        bare = crop_faces(to_grey(astronaut), [result.box])[0]
        assert not np.array_equal(item["crop"], bare)


def test_predict_explain_writes_a_crop_and_an_overlay_per_face(astronaut, tmp_path, capsys):
    from PIL import Image

    from fer_core.cli.main import main

    Image.fromarray(astronaut).save(tmp_path / "astro naut.png")
    Image.fromarray(np.full((80, 80, 3), 90, np.uint8)).save(tmp_path / "wall.png")
    out = tmp_path / "why"
    assert (
        main(
            [
                "predict",
                str(tmp_path / "astro naut.png"),
                str(tmp_path / "wall.png"),
                "--explain",
                str(out),
            ]
        )
        == 0
    )
    names = sorted(p.name for p in out.iterdir())
    assert names == ["001_astro_naut_face1_crop.png", "001_astro_naut_face1_happy_occlusion.png"]
    assert Image.open(out / names[0]).size == (192, 192)
    assert "explanations: 2 PNGs" in capsys.readouterr().out
    (tmp_path / "afile").write_text("x")
    assert main(["predict", str(tmp_path / "wall.png"), "--explain", str(tmp_path / "afile")]) == 2


def test_predict_prints_an_unsure_face_as_uncertain(tmp_path, capsys):
    from PIL import Image

    from fer_core.cli.main import main

    Image.fromarray(unsure_face()).save(tmp_path / "unsure.png")
    out = tmp_path / "rows.csv"
    assert main(["predict", str(tmp_path / "unsure.png")]) == 0
    assert re.search(r"-> uncertain: [a-z]+/[a-z]+ \(", capsys.readouterr().out)
    assert main(["predict", str(tmp_path / "unsure.png"), "--out", str(out)]) == 0
    import pandas as pd

    table = pd.read_csv(out)
    assert list(table["uncertain"]) == [True] and table["second"].iloc[0] in EMOTIONS


def test_annotated_video_draws_unsure_faces_amber(tmp_path):
    from fer_core.recognition.video import iter_frames
    from fer_core.recognition.video_writer import AnnotatedVideoWriter

    canvas = np.full((240, 320, 3), 30, np.uint8)
    unsure = FaceResult((80, 60, 120, 120), probs(sad=0.4, neutral=0.35, fear=0.25), 1)
    counts = {}
    for threshold in (0.53, None):
        writer = AnnotatedVideoWriter(
            tmp_path / f"clip{threshold}", fps=5, uncertain_below=threshold
        )
        for _ in range(3):
            writer.write(canvas, [unsure])
        path = writer.close()
        _, _, frame = next(iter(iter_frames(path)))
        counts[threshold] = int(
            (np.abs(frame.astype(int) - UNCERTAIN_COLOUR).sum(axis=2) < 80).sum()
        )
    assert counts[0.53] > 300 and counts[None] < 20, counts
