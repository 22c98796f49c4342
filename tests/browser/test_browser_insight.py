"""Issue 13 in a real browser: a photo of 30 faces, the "uncertain" label, the explanation
overlay, the bars on a 390 px screen, and the calibration diagram on the Model card."""

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from tests.browser.test_browser import _explain
from tests.media import crowd, masked_astronaut

pytestmark = pytest.mark.timeout(600)
ROOT = Path(__file__).resolve().parents[2]


def test_thirty_faces_uncertain_label_explanation_and_calibration(e2e):
    crowd_png, masked_png = e2e.work / "crowd.png", e2e.work / "masked.png"
    Image.fromarray(crowd()).save(crowd_png)
    Image.fromarray(masked_astronaut()).save(masked_png)
    result = e2e.run("insight", "--photos", str(crowd_png), str(masked_png), timeout=500)
    assert result.get("ok"), _explain(result)
    assert result["upload_exceptions"] == [] and result["upload_errors"] == [], _explain(result)
    labels = " ".join(result["labels"])
    assert "#30 happy" in labels, labels  # bug 1: 25+ faces crashed the page
    assert re.search(r"#1 uncertain: [a-z]+/[a-z]+", labels), labels
    assert result["charts"] >= 31  # a panel per face
    # Both photos' downloads, and the all-photos pair: nothing after the crowd went missing.
    assert result["downloads"] == 3 + 3 + 2
    captions = result["explanation_captions"]
    assert "#1 crop" in captions and any(c.startswith("#1 happy") for c in captions), captions
    # The overlay is coloured where the answer rests; the crop is the grey face the model saw.
    assert result["colour_share"]["overlay"] > 0.05 and result["colour_share"]["crop"] < 0.01, \
        result["colour_share"]
    assert result["narrow_overflow"] == [], result["narrow_overflow"]  # bug 7
    card = json.loads((ROOT / "models" / "cnn_gru.card.json").read_text())["calibration"]
    assert result["metrics"]["ECE calibrated"] == f"{card['test']['ece_after']:.3f}"
    assert result["metrics"]["ECE as trained"] == f"{card['test']['ece_before']:.3f}"
    assert any("ECE" in (text or "") for text in result["diagram_legend"]), result
    assert result["exceptions"] == [] and result["errors"] == [], _explain(result)
    assert "Traceback" not in e2e.server_log()
