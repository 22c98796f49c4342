"""Issue 15 in a real browser: a session's uploads are deleted when its tab closes (Streamlit's
own session end, not a simulation), stale upload folders go at server start, and a file name
written as Markdown for a remote image is shown as text (no image, no request)."""

import pytest

from tests.browser.appserver import assert_no_traceback
from tests.browser.test_browser import _explain

pytestmark = pytest.mark.timeout(600)

MARKDOWN_IMAGE_NAME = "![](http://example.invalid/x.png).png"


def test_session_uploads_are_removed_when_the_tab_closes(e2e):
    result = e2e.run(
        "session_end",
        "--photo",
        str(e2e.media["photo"]),
        "--csv",
        str(e2e.media["fer"]),
        "--name",
        MARKDOWN_IMAGE_NAME,
        "--uploads",
        str(e2e.media["uploads"]),
    )
    assert result.get("ok"), _explain(result)
    print(
        "session end:", {k: result[k] for k in ("while_open", "after_close", "seconds_to_removal")}
    )
    assert "#1 happy" in result["labels"]
    # The name is shown as written, as text: no image element, no request for it.
    # (an invisible word joiner keeps its "://" from becoming a link: app_lib.ui.text)
    assert result["subheader"].strip().replace("\u2060", "") == MARKDOWN_IMAGE_NAME
    assert result["remote_images"] == 0 and result["remote_requests"] == []
    # While the tab was open its CSV was in its own folder; once the tab closed, gone.
    assert len(result["while_open"]) == 1 and result["while_open"][0].endswith(".csv")
    assert result["after_close"] == [], result["after_close"]
    # The folder a dead server left was deleted when this server started.
    assert not e2e.media["stale"].exists()
    assert_no_traceback(e2e.test_log())
