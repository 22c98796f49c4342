"""The server log: one line, not a traceback, when a browser tab goes away mid-answer.

Streamlit 1.67 serves the app with Starlette under uvicorn. When a tab closes (or its network
drops) just after it sent the server a message, and the server's answer to it fails to send,
Starlette marks the connection closed; Streamlit's receive loop then reads from the closed
connection, takes the error for a text frame, tries to close the connection again, and that
raises too. uvicorn logs it as "Exception in ASGI application" with a two-part traceback of
some 60 lines. Nothing is wrong: Streamlit's ``finally`` still ends the tab's session, and the
tab is gone either way. It happens often enough to matter (the Live page's panel sends a
message three times a second, so closing a tab that shows it hits it now and then), and a
traceback in the log says "something broke" to whoever runs the server; our browser tests
fail on any.

The same goes for an upload the browser stopped sending (a tab closed or navigated away, the
upload cancelled, the network gone): Starlette raises ``ClientDisconnect`` while Streamlit
reads the body, and uvicorn logged another ~60-line traceback for each (issue 34). Nothing of
such an upload is kept.

``quiet_gone_tab_errors`` puts a filter on uvicorn's error logger that turns exactly these
errors into one line at INFO level each. Every other error keeps its traceback. The test
(tests/app/test_server_log.py) drives Streamlit's own websocket endpoint into the error, so a
Streamlit that fixes it, or changes how it fails, shows up there.
"""

from __future__ import annotations

import logging
import threading

__all__ = [
    "ABANDONED_UPLOAD_NOTE",
    "GONE_TAB_NOTE",
    "GoneTabFilter",
    "is_abandoned_upload",
    "is_gone_tab_error",
    "quiet_gone_tab_errors",
]

# uvicorn's logger for errors in the application it serves.
UVICORN_ERROR_LOGGER = "uvicorn.error"
GONE_TAB_NOTE = (
    "A browser tab went away while the server was answering it; its session ended "
    "(Streamlit's websocket closed twice; harmless)"
)
ABANDONED_UPLOAD_NOTE = (
    "A browser stopped sending an upload before it was complete (a tab closed, the upload "
    "cancelled, or the network went); nothing of it was kept"
)
# Where the double close happens: Streamlit's websocket endpoint, in this module.
_ENDPOINT_MODULE = "streamlit/web/server/starlette/starlette_websocket.py"
_ENDPOINT = "_websocket_endpoint"


def _raised_in_endpoint(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == _ENDPOINT and code.co_filename.replace("\\", "/").endswith(
            _ENDPOINT_MODULE
        ):
            return True
        tb = tb.tb_next
    return False


def is_gone_tab_error(exc: BaseException | None) -> bool:
    """True for Streamlit's double close: Starlette's "not connected" error, raised by
    ``close()`` in Streamlit's websocket endpoint while it handled the same error from
    reading the closed connection. Anything else, even the same class elsewhere, is not."""
    try:
        from starlette.websockets import WebSocketDisconnected
    except ImportError:  # a Starlette without it cannot raise it
        return False
    if not isinstance(exc, WebSocketDisconnected) or not _raised_in_endpoint(exc):
        return False
    first = exc.__context__
    return (
        isinstance(first, WebSocketDisconnected)
        and "not connected" in str(first)
        and "close message has been sent" in str(exc)
        and _raised_in_endpoint(first)
    )


def is_abandoned_upload(exc: BaseException | None) -> bool:
    """True for Starlette's ``ClientDisconnect``: the browser went away while sending a
    request's body (an upload)."""
    try:
        from starlette.requests import ClientDisconnect
    except ImportError:  # a Starlette without it cannot raise it
        return False
    return isinstance(exc, ClientDisconnect)


class GoneTabFilter(logging.Filter):
    """Rewrites the double-close error record, and that of an upload the browser stopped
    sending, into one INFO line each; passes all others as they are."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        note = (
            GONE_TAB_NOTE
            if is_gone_tab_error(exc)
            else ABANDONED_UPLOAD_NOTE
            if is_abandoned_upload(exc)
            else None
        )
        if note is not None:
            record.msg, record.args = note, ()
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        return True


_install_lock = threading.Lock()


def quiet_gone_tab_errors(logger: logging.Logger | None = None) -> bool:
    """Put the filter on uvicorn's error logger (or ``logger``), once. True if this call put
    it there."""
    logger = logger or logging.getLogger(UVICORN_ERROR_LOGGER)
    with _install_lock:
        if any(isinstance(existing, GoneTabFilter) for existing in logger.filters):
            return False
        logger.addFilter(GoneTabFilter())
        return True
