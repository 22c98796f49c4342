"""Issue 24, item 1, in a real browser: one drop of more than a tab may hold is cut to the
budget at arrival, with a message naming the file that was not accepted; what fits is stored
on disk and analysed."""

import os
import re
import time

import pytest

from tests.browser.appserver import serve_app, unavailable_reason
from tests.browser.test_browser import _explain

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def small_budget(tmp_path_factory):
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("budget")
    env = {
        "FER_UPLOAD_DIR": str(work / "uploads"),
        "FER_SESSION_UPLOAD_MB": "3",
        "FER_UPLOAD_BUDGET_MB": "100",
        "FER_RUNS_DIR": str(work / "runs"),
    }
    with serve_app(work / "streamlit.log", env) as server:
        yield server, work


def test_one_drop_beyond_the_tabs_budget_is_refused_with_a_message(small_budget):
    server, work = small_budget
    names = [f"clip{i}.mp4" for i in range(3)]
    for name in names:  # 1.2 MB each: two fit in 3 MB, the third does not
        (work / name).write_bytes(os.urandom(1_200_000))
    result = server.run(
        "upload_budget",
        "--photos",
        *[str(work / n) for n in names],
        out=work / "shots",
        timeout=300,
    )
    assert result.get("ok"), _explain(result)
    assert result["exceptions"] == [], _explain(result)
    refused = [e for e in result["errors"] if "was not accepted" in e]
    assert len(refused) == 1, result["errors"]
    assert "more than the 3 MB one tab may hold at once (FER_SESSION_UPLOAD_MB)" in refused[0]
    refused_name = re.search(r"(clip\d\.mp4) \(1\.1 MB\) was not accepted", refused[0]).group(1)
    kept = [name for name in names if name != refused_name]
    assert refused_name in names and sorted(result["files"]) == kept
    assert result["holds"].startswith("This tab holds 2 files (2.3 MB of 3 MB)")
    assert "upload refused (1.1 MB)" in server.server_log()
    # The tab is closed: the files it held on disk go with it.
    deadline = time.monotonic() + 30
    while list((work / "uploads").rglob("*.mp4")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert list((work / "uploads").rglob("*.mp4")) == []
