"""Issue 25 in a real Chromium: the app shared on a network, camera included.

- At ``http://fer.test:PORT`` (a non-localhost origin made on loopback by Chromium's
  ``--host-resolver-rules``) the browser has no camera API: the Live page names HTTPS as the
  fix instead of offering START.
- At ``https://fer.test:PORT``, served with a certificate made by the documented command
  (``python -m app_lib.server.certificate DIR``, what ``make cert`` runs), a visitor clicks through
  Chromium's warning (Advanced, Proceed), and a fake webcam of a smiling face shows "happy".
- When no network path exists (the browser must relay, and the relay is not there), START
  says "Connecting…", then that the browser could not connect, and names the fix.
- With ``FER_MAX_LIVE_STREAMS=1`` a second tab's START is turned away with a message while
  the first streams, and admitted once the first stops; a stream paused past its hold gives
  its place up and, resumed, is not analysed until a place frees.
- With the browser forced to relay (``FER_ICE_SERVERS`` with ``"iceTransportPolicy":
  "relay"``) through a coturn started here, with a shared secret, the same works, and coturn
  says it relayed.

Everything runs in network namespaces that have only loopback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import socket
from pathlib import Path

import pytest

from tests.browser.appserver import (
    ROOT,
    assert_no_traceback,
    documented_certificate,
    serve_app,
    unavailable_reason,
)

FER_TEST = "--host-resolver-rules=MAP fer.test 127.0.0.1"
TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"


def _port(url: str) -> str:
    return url.rsplit(":", 1)[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_plain_http_on_a_network_name_names_https_as_the_fix(e2e):
    url = f"http://fer.test:{_port(e2e.url)}"
    result = e2e.server.run(
        "insecure_live", f"--browser-flag={FER_TEST}", out=e2e.shots, url=url, timeout=180
    )
    assert not result["exceptions"], result
    # The premise: Chromium gives this origin no camera API at all...
    assert result["secure_context"] is False and result["media_devices"] == "undefined"
    # ...so the page says why and what to do, and offers no START that could only fail.
    assert "plain HTTP" in result["message"] and "fer.test" in result["message"]
    assert "https://" in result["message"] and "make cert" in result["message"]
    assert result["webrtc_frames"] == 0
    assert not any("Press START" in info for info in result["infos"])


@pytest.fixture(scope="module")
def https_app(tmp_path_factory):
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("https")
    cert, key = documented_certificate(work / "certs")
    with serve_app(
        work / "streamlit.log",
        streamlit_args=("--server.sslCertFile", str(cert), "--server.sslKeyFile", str(key)),
    ) as server:
        yield server, cert, work


def test_https_with_the_documented_certificate_gives_the_camera(https_app, e2e):
    server, cert, work = https_app
    url = f"https://fer.test:{_port(server.url)}"
    result = server.run(
        "live",
        "--y4m",
        str(e2e.media["y4m"]),
        f"--browser-flag={FER_TEST}",
        "--accept-certificate",
        out=work,
        url=url,
        timeout=240,
    )
    assert not result.get("exceptions") and not result.get("errors"), result
    # Chromium warned about the self-signed certificate; past it, the page is a secure context.
    assert "ERR_CERT_AUTHORITY_INVALID" in result["certificate"]["warning"], result
    assert result["certificate"]["secure_context"] is True, result
    assert result["certificate"]["media_devices"] == "object", result
    assert result["top"] == "happy", result
    assert result["box_pixels"] > 200, result


def test_a_stream_that_cannot_connect_says_so(tmp_path, e2e):
    from app_lib.live.processor import ICE_PATIENCE_SECONDS

    dead = {
        "iceServers": [{"urls": [f"turn:127.0.0.1:{_free_port()}"], "secret": "nobody-listens"}],
        "iceTransportPolicy": "relay",
    }
    with serve_app(tmp_path / "streamlit.log", env={"FER_ICE_SERVERS": json.dumps(dead)}) as app:
        result = app.run("live_unreachable", "--y4m", str(e2e.media["y4m"]), out=tmp_path)
    assert not result["exceptions"], result
    assert result["seconds_to_message"] >= ICE_PATIENCE_SECONDS - 1, result
    assert "did not help either" in result["message"], result  # a relay was configured
    assert not any("Press START" in info for info in result["infos"]), result


def test_the_stream_beyond_the_limit_is_turned_away(tmp_path, e2e):
    """FER_MAX_LIVE_STREAMS=1: the second tab's START is refused with the page's message, the
    first keeps streaming, and after the first stops the second is admitted."""
    with serve_app(tmp_path / "streamlit.log", env={"FER_MAX_LIVE_STREAMS": "1"}) as app:
        result = app.run("live_refused", "--y4m", str(e2e.media["y4m"]), out=tmp_path, timeout=400)
        log = app.server_log()
    assert "error" not in result, result
    assert result["streaming"]["top"] == "happy", result
    assert "already analysing 1 live stream, its limit" in result["message"], result
    assert result["seconds_to_refusal"] < 30, result
    assert result["still"]["top"] == "happy", result  # the first stream was not disturbed
    assert result["admitted"]["top"] == "happy", result
    assert not result["exceptions"] and not result["errors"], result
    # The turned-away stream is stopped while its connection may still be starting; aiortc
    # then logs, from a task of its own, that the ICE transport it was starting is closed
    # (aiortc 1.16). That one is the refusal working; any other traceback is a failure.
    closed_while_connecting = re.compile(
        r"Task exception was never retrieved\nfuture: <Task finished [^\n]*"
        r"RTCPeerConnection\.__connect\(\)[^\n]*\nTraceback \(most recent call last\):\n"
        r"(?:[ \t][^\n]*\n)+aiortc\.exceptions\.InvalidStateError: RTCIceTransport is closed"
    )
    assert_no_traceback(log, allowed=closed_while_connecting)


def test_a_paused_stream_that_lost_its_place_is_not_analysed(tmp_path, e2e):
    """Issue 34 item 3, FER_MAX_LIVE_STREAMS=1: a stream that sends no video for longer than
    HOLD_S gives its place up; a second tab takes it; the first, resumed, is not analysed
    (and says why) while the second streams, and is analysed again once the second stops.
    Before, the resumed stream was analysed beside the second: two streams at a limit of
    one."""
    from app_lib.live.limit import HOLD_S

    with serve_app(tmp_path / "streamlit.log", env={"FER_MAX_LIVE_STREAMS": "1"}) as app:
        result = app.run(
            "live_paused",
            "--y4m",
            str(e2e.media["y4m"]),
            "--seconds",
            str(HOLD_S + 2),
            out=tmp_path,
            timeout=400,
        )
        log = app.server_log()
    assert "error" not in result, result
    assert result["streaming"]["top"] == "happy", result
    assert result["admitted"]["top"] == "happy", result  # the place the pause gave up
    assert "lost its place" in result["message"] and "limit of 1" in result["message"], result
    assert result["still"]["top"] == "happy", result
    assert result["held_back_later"] is True, result
    assert result["back"]["top"] == "happy", result
    assert not result["exceptions"] and not result["errors"], result
    assert_no_traceback(log)


@pytest.fixture(scope="module")
def relayed_app(tmp_path_factory):
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    if not Path(TURNSERVER).is_file():
        pytest.skip("the relay test needs coturn's turnserver (make browser installs it as root)")
    work = tmp_path_factory.mktemp("relay")
    cert, key = documented_certificate(work / "certs")
    secret = base64.b64encode(hashlib.sha256(str(work).encode()).digest()).decode()[:32]
    turn_port = _free_port()
    # deploy/turnserver.conf as docs/sharing.md tells to install it; the command line sets
    # what a deployment sets in the file (secret, realm) and what only this test needs: loopback
    # addresses, a free port, and --allow-loopback-peers (the app is on loopback too).
    turn = [
        TURNSERVER,
        "-c",
        str(ROOT / "deploy" / "turnserver.conf"),
        "--listening-ip=127.0.0.1",
        f"--listening-port={turn_port}",
        "--relay-ip=127.0.0.1",
        f"--static-auth-secret={secret}",
        "--realm=fer.test",
        "--allow-loopback-peers",
        "--log-file=stdout",
        "--verbose",
    ]
    ice = {
        "iceServers": [{"urls": [f"turn:127.0.0.1:{turn_port}?transport=udp"], "secret": secret}],
        "iceTransportPolicy": "relay",
    }
    turn_log = work / "turnserver.log"
    with serve_app(
        work / "streamlit.log",
        env={"FER_ICE_SERVERS": json.dumps(ice)},
        streamlit_args=("--server.sslCertFile", str(cert), "--server.sslKeyFile", str(key)),
        companions=((turn, turn_log),),
    ) as server:
        yield server, cert, work, turn_log, secret


def test_a_browser_forced_to_relay_through_coturn_gets_results(relayed_app, e2e):
    server, cert, work, turn_log, secret = relayed_app
    url = f"https://fer.test:{_port(server.url)}"
    result = server.run(
        "live",
        "--y4m",
        str(e2e.media["y4m"]),
        f"--browser-flag={FER_TEST}",
        "--accept-certificate",
        out=work,
        url=url,
        timeout=240,
    )
    log = turn_log.read_text(errors="replace")
    assert not result.get("exceptions") and not result.get("errors"), (result, log[-3000:])
    assert result["top"] == "happy", (result, log[-3000:])
    # The stream went through the relay: coturn allocated relay addresses with credentials
    # minted from its secret (the secret itself never reached the browser).
    assert "ALLOCATE processed, success" in log, log[-3000:]
    assert "CREATE_PERMISSION processed, success" in log, log[-3000:]
    assert "realm=<fer.test>" in log
    assert secret not in server.server_log()
