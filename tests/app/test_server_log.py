"""The server log when a tab goes away mid-answer (app_lib/server/server_log.py): Streamlit's own
websocket endpoint, on Starlette's own WebSocket, is driven into its double close the way a
closing tab does it; the filter turns that one error into a line and leaves every other
traceback alone."""

import asyncio
import io
import logging

import pytest

from app_lib.server.server_log import (
    ABANDONED_UPLOAD_NOTE,
    GONE_TAB_NOTE,
    GoneTabFilter,
    is_gone_tab_error,
    quiet_gone_tab_errors,
)

pytest.importorskip("starlette.websockets")


class FakeRuntime:
    """What the endpoint needs of Streamlit's runtime: a session, and an answer to each
    message the tab sends (one ForwardMsg, queued on the tab's client as the runtime does)."""

    def __init__(self):
        self.disconnected = []

    def connect_session(self, client, user_info, existing_session_id=None):
        self.client = client
        return "session-1"

    def handle_backmsg(self, session_id, back_msg, client):
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
        from streamlit.runtime.session_manager import SessionClientDisconnectedError

        msg = ForwardMsg()
        msg.script_finished = ForwardMsg.FINISHED_SUCCESSFULLY
        try:
            client.write_forward_msg(msg)
        except SessionClientDisconnectedError:  # the runtime lets a gone client be
            pass

    def disconnect_session(self, session_id, client=None):
        self.disconnected.append(session_id)


def _rerun_bytes():
    from streamlit.proto.BackMsg_pb2 import BackMsg

    msg = BackMsg()
    msg.rerun_script.query_string = ""
    return msg.SerializeToString()


async def _tab_that_goes_away(runtime):
    """The tab sends two messages and is gone before the answer to the first leaves: the
    server's send fails (uvicorn raises an OSError for a closed transport), and the second
    message was already on its way."""
    from starlette.websockets import WebSocket
    from streamlit.web.server.starlette.starlette_websocket import create_websocket_handler

    incoming = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "bytes": _rerun_bytes()},
        {"type": "websocket.receive", "bytes": _rerun_bytes()},
    ]

    async def receive():
        if len(incoming) == 1:
            await asyncio.sleep(0.05)  # the server's answer is being sent meanwhile
        return incoming.pop(0)

    async def send(message):
        if message["type"] == "websocket.send":
            raise OSError("the tab is gone")  # what uvicorn's ClientDisconnected is

    scope = {
        "type": "websocket",
        "path": "/_stcore/stream",
        "headers": [(b"host", b"127.0.0.1:8501"), (b"origin", b"http://127.0.0.1:8501")],
        "query_string": b"",
        "subprotocols": [],
    }
    endpoint = create_websocket_handler(runtime)
    try:
        await endpoint(WebSocket(scope, receive, send))
    except Exception as exc:  # noqa: BLE001 - what uvicorn would log
        return exc
    return None


def _log_through_filter(exc, filtered=True):
    """Log ``exc`` as uvicorn does (logger.exception in its run_asgi) and return the text."""
    logger = logging.getLogger(f"test.server_log.{id(exc)}.{filtered}")
    logger.propagate = False
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    if filtered:
        quiet_gone_tab_errors(logger)
    try:
        raise exc
    except BaseException:
        logger.exception("Exception in ASGI application\n")
    return stream.getvalue()


def test_streamlit_closes_twice_when_the_tab_goes_away_and_the_log_says_one_line():
    runtime = FakeRuntime()
    exc = asyncio.run(_tab_that_goes_away(runtime))
    # Streamlit still ends the session (its finally), then the double close escapes.
    assert runtime.disconnected == ["session-1"]
    assert exc is not None, "Streamlit no longer fails here: app_lib/server/server_log.py can go"
    assert is_gone_tab_error(exc), repr(exc)

    plain = _log_through_filter(exc, filtered=False)
    assert "Traceback" in plain and "ERROR Exception in ASGI application" in plain

    quiet = _log_through_filter(exc)
    assert quiet.strip() == f"INFO {GONE_TAB_NOTE}", quiet
    assert "Traceback" not in quiet


async def _upload_the_browser_stops_sending():
    """Starlette reading a multipart upload (as Streamlit's upload route does) whose browser
    goes away after the first chunk: the error it raises."""
    from starlette.requests import Request

    messages = [
        {
            "type": "http.request",
            "body": b"--x\r\nContent-Disposition: form-data; ",
            "more_body": True,
        },
        {"type": "http.disconnect"},
    ]

    async def receive():
        return messages.pop(0)

    scope = {
        "type": "http",
        "method": "PUT",
        "headers": [(b"content-type", b"multipart/form-data; boundary=x")],
    }
    try:
        await Request(scope, receive).form()
    except BaseException as exc:  # noqa: BLE001 - what uvicorn would log
        return exc
    return None


def test_an_upload_the_browser_stops_sending_is_one_line():
    """Issue 34 item 7: each upload a browser aborted logged a ~60-line ClientDisconnect
    traceback; now one INFO line."""
    exc = asyncio.run(_upload_the_browser_stops_sending())
    assert type(exc).__name__ == "ClientDisconnect", repr(exc)
    assert "Traceback" in _log_through_filter(exc, filtered=False)
    quiet = _log_through_filter(exc)
    assert quiet.strip() == f"INFO {ABANDONED_UPLOAD_NOTE}", quiet


def test_other_errors_keep_their_traceback():
    from starlette.websockets import WebSocketDisconnected

    # The same class raised outside Streamlit's endpoint, and an unrelated error.
    for exc in (
        WebSocketDisconnected('Cannot call "send" once a close message has been sent.'),
        ValueError("a real bug"),
    ):
        assert not is_gone_tab_error(exc)
        text = _log_through_filter(exc)
        assert text.startswith("ERROR Exception in ASGI application") and "Traceback" in text
    assert not is_gone_tab_error(None)


def test_the_filter_is_put_on_uvicorns_error_logger_once():
    logger = logging.getLogger("test.server_log.once")
    assert quiet_gone_tab_errors(logger) is True
    assert quiet_gone_tab_errors(logger) is False
    assert sum(isinstance(f, GoneTabFilter) for f in logger.filters) == 1
