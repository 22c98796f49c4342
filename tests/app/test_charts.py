"""app_lib.ui.charts.probability_bars: any number of faces, labels that stay in their panel."""

import numpy as np
import pytest

from app_lib.ui.charts import probability_bars


@pytest.mark.parametrize("faces", [1, 2, 4, 5, 24, 25, 30, 101])
def test_probability_bars_for_any_number_of_faces(faces):
    """Bug 1: 25 faces in 4 columns raised Plotly's 'Vertical spacing cannot be greater
    than (1 / (rows - 1))'."""
    probs = np.random.default_rng(faces).dirichlet(np.ones(7), faces)
    figure = probability_bars(probs, [f"#{i + 1}" for i in range(faces)], columns=4)
    assert len(figure.data) == faces


def test_percentages_are_part_of_the_labels_not_text_beside_the_bars():
    """Bug 7: at 390 px the text beside a bar ran into the next panel ("91%happy")."""
    probs = [[0.02, 0.01, 0.02, 0.91, 0.01, 0.01, 0.02]]
    bar = probability_bars(probs, ["#1"], columns=1).data[0]
    assert bar.text is None
    assert list(bar.y)[3] == "happy 91%"
    assert list(bar.x)[3] == pytest.approx(0.91)


def test_the_timeline_draws_the_faces_it_is_given_in_that_order():
    """Issue item 5: the Live page's last minute lists the faces on screen first; the chart
    keeps that order instead of picking the faces seen longest."""
    import pandas as pd

    from app_lib.ui.charts import timeline_figure
    from fer_core import EMOTIONS

    seen = {1: 50, 2: 40, 7: 3, 9: 2}  # frames per face
    frames = pd.DataFrame(
        [
            {"face_id": face, "time_s": -t, **dict.fromkeys(EMOTIONS, 1 / 7)}
            for face, count in seen.items()
            for t in range(count)
        ]
    )
    default = timeline_figure(frames, max_faces=2)
    assert [a.text for a in default.layout.annotations] == [
        "face #1 (50 frames)",
        "face #2 (40 frames)",
    ]
    chosen = timeline_figure(frames, max_faces=2, faces=[9, 7], titles={9: "nine", 7: "seven"})
    assert [a.text for a in chosen.layout.annotations] == ["nine", "seven"]
    assert {trace.hovertemplate.split()[1] for trace in chosen.data if trace.yaxis == "y"} == {"#9"}
