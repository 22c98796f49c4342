"""Issue 25, item 5: several app processes behind nginx, as deploy/ sets them up (nginx with
deploy/nginx-fer.conf terminating TLS, upgrading the websocket and keeping each browser on one
process; two processes run as deploy/fer-app@.service runs them), in a network namespace that
has only loopback, driven by a real Chromium."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.appserver import (
    NGINX,
    documented_certificate,
    serve_behind_nginx,
    unavailable_reason,
)

FER_TEST = "--host-resolver-rules=MAP fer.test 127.0.0.1"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    if not Path(NGINX).is_file():
        pytest.skip("the deployment test needs nginx (make browser installs it as root)")
    work = tmp_path_factory.mktemp("deploy")
    cert, key = documented_certificate(work / "certs")
    with serve_behind_nginx(work, cert, key, processes=2) as (server, ports):
        yield server, ports, work


def _probe(server, script: str, *args: str) -> str:
    """Run a Python ``script`` inside the server's namespace with nginx's port and ``args``
    as its arguments; what it printed."""
    done = subprocess.run(
        ["ip", "netns", "exec", server.namespace, sys.executable, "-c", script]
        + [server.url.rsplit(":", 1)[1], *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _upstreams(server, count: int, cookie: str | None = None) -> list[str]:
    """Which process answered each of ``count`` page requests through nginx (from inside the
    namespace), each without cookies unless ``cookie`` is given."""
    probe = (
        "import http.client, ssl, sys\n"
        "port, count, cookie = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]\n"
        "for _ in range(count):\n"
        "    c = http.client.HTTPSConnection('127.0.0.1', port, timeout=20,\n"
        "        context=ssl._create_unverified_context())\n"
        "    c.request('GET', '/', headers={'Cookie': cookie} if cookie else {})\n"
        "    r = c.getresponse(); r.read()\n"
        "    print(r.status, r.getheader('X-Fer-Upstream'), r.getheader('Set-Cookie'))\n"
    )
    printed = _probe(server, probe, str(count), cookie or "")
    lines = [line.split(" ", 2) for line in printed.splitlines()]
    assert all(status == "200" for status, _, _ in lines), lines
    assert all(
        "fer_route=" in cookie_header and "Secure" in cookie_header for *_, cookie_header in lines
    )
    return [upstream for _, upstream, _ in lines]


def test_new_browsers_spread_over_the_processes_and_a_route_sticks(cluster):
    server, ports, _ = cluster
    spread = _upstreams(server, 24)
    # 24 random routes on two processes: both serve (all on one: a 1 in 8 million chance).
    assert {u.rsplit(":", 1)[1] for u in spread} == {str(p) for p in ports}, spread
    sticky = _upstreams(server, 12, cookie="fer_route=a-browser-of-its-own")
    assert len(set(sticky)) == 1, sticky


def test_nginx_sends_the_headers_a_shared_web_app_should(cluster):
    """Issue 34 item 7: HSTS, no framing by other sites (CSP frame-ancestors and
    X-Frame-Options), no nginx version; on the page and on an error alike."""
    server, _, _ = cluster
    probe = (
        "import http.client, json, ssl, sys\n"
        "out = {}\n"
        "for path in ('/', '/no-such-page', '/_stcore/health'):\n"
        "    c = http.client.HTTPSConnection('127.0.0.1', int(sys.argv[1]), timeout=20,\n"
        "        context=ssl._create_unverified_context())\n"
        "    c.request('GET', path)\n"
        "    r = c.getresponse(); body = r.read()\n"
        "    out[path] = [r.status, dict((k.lower(), v) for k, v in r.getheaders()),\n"
        "                 body[:2000].decode('latin-1')]\n"
        "print(json.dumps(out))\n"
    )
    import json

    for path, (status, headers, body) in json.loads(_probe(server, probe)).items():
        assert headers.get("strict-transport-security") == "max-age=31536000", (path, headers)
        assert "frame-ancestors 'self'" in headers.get("content-security-policy", ""), path
        assert headers.get("x-frame-options") == "SAMEORIGIN", (path, headers)
        assert headers.get("server") == "nginx", (path, headers)  # no version
        assert "nginx/" not in body, (path, status)


def test_two_browser_sessions_get_results_and_stay_on_their_process(cluster, e2e):
    server, ports, work = cluster
    url = f"https://fer.test:{server.url.rsplit(':', 1)[1]}"
    flags = ("--y4m", str(e2e.media["y4m"]), f"--browser-flag={FER_TEST}", "--accept-certificate")
    sessions = [server.start("sticky", *flags, out=work, url=url) for _ in range(2)]
    results = [server.result(session, timeout=300) for session in sessions]
    for result in results:
        assert not result.get("exceptions") and not result.get("errors"), result
        # Through the proxy the page is HTTPS (X-Forwarded-Proto), so the camera works...
        assert result["certificate"]["secure_context"] is True, result
        assert result["top"] == "happy", result
        # ...and the page and its two reloads came from one process.
        upstreams = result["upstreams"]
        assert None not in upstreams and len(set(upstreams)) == 1, result
        assert upstreams[0].rsplit(":", 1)[1] in {str(p) for p in ports}, result
        assert result["route"], result


def test_an_upload_through_nginx_is_analysed(cluster, e2e):
    """Streamlit's upload and its media (the annotated photo) are separate requests: both
    reach the process that holds the session."""
    server, _, work = cluster
    url = f"https://fer.test:{server.url.rsplit(':', 1)[1]}"
    result = server.run(
        "upload",
        "--photo",
        str(e2e.media["photo"]),
        f"--browser-flag={FER_TEST}",
        "--accept-certificate",
        out=work,
        url=url,
        timeout=240,
    )
    assert not result.get("exceptions") and not result.get("errors"), result
    assert "happy" in result["labels"], result
