"""Issue 15, roles, in a real browser: with FER_ADMIN_PASSWORD set, a visitor cannot start
training until they sign in with the right password."""

import pytest

from tests.browser.appserver import serve_app, unavailable_reason
from tests.browser.test_browser import _explain

pytestmark = pytest.mark.timeout(600)
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    from tests.browser.conftest import write_small_fer_csv

    work = tmp_path_factory.mktemp("roles")
    (work / "runs").mkdir()
    env = {
        "FER_RUNS_DIR": str(work / "runs"),
        "FER_ADMIN_PASSWORD": PASSWORD,
        "FER2013_PATH": str(write_small_fer_csv(work / "fer.csv")),
        "FER_UPLOAD_DIR": str(work / "uploads"),
    }
    with serve_app(work / "streamlit.log", env) as server:
        yield server, work


def test_only_a_signed_in_administrator_may_start_training(guarded):
    server, work = guarded
    result = server.run("roles", "--name", PASSWORD, out=work / "shots", timeout=240)
    assert result.get("ok"), _explain(result)
    assert result["exceptions"] == [], _explain(result)
    assert result["visitor_disabled"] is True
    assert result["wrong"] == {"wrong": True, "disabled": True}
    assert result["right"]["disabled"] is False and result["signed_in"]
    assert PASSWORD not in server.server_log()
