"""The "Try BlazeFace" offer in a real browser: where the Haar cascade finds no face, on the
Photos & videos page (a photo without a face) and on the Live page (a webcam that has shown
no face for a few seconds), one click switches the sidebar's face detector to BlazeFace.

See conftest.py for the served app and the skip reasons (root, ``ip``, Chromium)."""

import numpy as np
import pytest
from PIL import Image

from app_lib.ui.detector import MISS_SECONDS, label
from tests.browser.appserver import assert_no_traceback, write_y4m
from tests.browser.test_browser import _explain

pytestmark = pytest.mark.timeout(600)
HAAR, BLAZEFACE = label("haar"), label("blazeface")


def grey(width: int = 640, height: int = 480) -> np.ndarray:
    """A plain grey RGB picture: nothing any detector could call a face."""
    return np.full((height, width, 3), 128, np.uint8)


def test_photo_without_a_face_offers_blazeface_and_the_click_switches(e2e, tmp_path):
    photo = tmp_path / "grey.png"
    Image.fromarray(grey()).save(photo)
    result = e2e.run("offer_photo", "--photo", str(photo), timeout=300)
    assert result.get("ok"), _explain(result)
    assert result["exceptions"] == [] and result["errors"] == [], _explain(result)
    assert result["before"] == HAAR, result
    assert "grey.png" in result["message"] and "BlazeFace" in result["message"], result
    assert result["offers"] == 1, result
    # The click switches the session's detector: the sidebar shows it, the photo is looked at
    # again with BlazeFace, and the offer (only made while Haar is the detector) goes.
    assert result["after"] == BLAZEFACE, f"sidebar after the click: {result['after']!r}; {result}"
    assert result["offers_after"] == 0, result
    # ... and the message now says what BlazeFace found (nothing), not to try it.
    assert (
        result["message_after"]
        and "BlazeFace found no face" in result["message_after"]
        and "or BlazeFace" not in result["message_after"]
    ), result
    assert_no_traceback(e2e.test_log())


def test_live_page_offers_blazeface_after_haar_sees_no_face_and_the_click_switches(e2e, tmp_path):
    y4m = write_y4m(tmp_path / "grey.y4m", grey())
    result = e2e.run("offer_live", "--y4m", str(y4m), timeout=300)
    print("START pressed without Playwright's stability check:", result.get("forced_clicks"))
    print("presses of Try BlazeFace until it switched:", result.get("clicks"))
    assert result.get("ok"), _explain(result)
    assert result["exceptions"] == [] and result["errors"] == [], _explain(result)
    assert result["before"] == HAAR, result
    # Not at once: only once Haar has missed for MISS_SECONDS (the panel refreshes every
    # 0.3 s, and the browser notices "No face in view" a little after it is drawn).
    assert result["seconds_no_face_to_offer"] >= MISS_SECONDS - 1.0, result
    assert "Haar cascade has found no face for" in result["caption"], result
    assert result["after"] == BLAZEFACE, (
        f"sidebar after the click: {result['after']!r}, offers still shown: "
        f"{result['offers_after']}; {result}"
    )
    # The running stream switched as well: the panel names the detector of the frames.
    assert result["arriving"] and "BlazeFace" in result["arriving"], result
    assert result["offers_after"] == 0, result
    assert_no_traceback(e2e.test_log())
