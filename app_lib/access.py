"""Who may change what everyone sees: the administrator.

Training, stopping runs, reading their logs and switching the model for every session need
an administrator. Who that is depends on how the app is reached (see the README's threat
model):

- ``FER_ADMIN_PASSWORD`` set: whoever signs in with it in the sidebar (compared in constant
  time), for that browser session only. The sign-in is offered only where the password
  cannot cross a network in clear text: over HTTPS, or on the server's own machine
  (``app_lib.secure_context``; ``FER_ALLOW_HTTP_ADMIN=1`` allows plain HTTP on a network the
  administrator trusts end to end);
- no password, and the server listens on loopback only (``make run``'s default): every
  visitor, since only this machine's own users can reach it;
- no password, and the server listens on a network address: nobody. The app still works
  for everyone, and each visitor may choose a model for their own session.

Password guessing is throttled, never locked out for good:

- per browser session: after ``FREE_FAILURES`` wrong passwords in a row, each further one
  makes the session wait before its next attempt, ``FIRST_WAIT_S`` doubling per failure up
  to ``MAX_WAIT_S``. While it waits, an attempt is refused without the password even being
  compared, and the sidebar says how long is left;
- server-wide (``SERVER_FAILURES``, one per server process, guarded by a lock): wrong
  passwords of every session in the last ``SERVER_WINDOW_S``. Past ``SERVER_FREE_FAILURES``
  of them, every session (a new tab included) waits the same way after the latest one, so
  opening new tabs does not reset the delay. The count decays as failures leave the window.

The wait is always at most ``MAX_WAIT_S`` after the latest failure, so the administrator can
sign in once it has passed. Every failure is logged (never the password tried).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import threading
import time
from collections import deque

import streamlit as st
from streamlit.logger import get_logger

from app_lib import secure_context

ADMIN_PASSWORD_ENV = secure_context.ADMIN_PASSWORD_ENV
_SIGNED_IN = "fer_admin_signed_in"
_FAILURES = "fer_admin_failures"  # session_state: wrong passwords in a row in this session
_LAST_FAILURE = "fer_admin_last_failure"  # session_state: _clock() of the latest one
LOOPBACK = ("127.0.0.1", "localhost", "::1")

FREE_FAILURES = 3  # wrong passwords in a row a session may make before it has to wait
FIRST_WAIT_S = 2.0  # the first wait; it doubles with each further failure ...
MAX_WAIT_S = 60.0  # ... up to this
SERVER_WINDOW_S = 600.0  # the server-wide count keeps failures this long
SERVER_FREE_FAILURES = 10  # server-wide failures in the window before every session waits

_clock = time.monotonic  # what time it is; tests replace it so that they need not sleep
_logger = get_logger("fer_app")


def wait_after(failures: int) -> float:
    """Seconds to wait after the latest of ``failures`` wrong passwords in a row: none before
    the FREE_FAILURES-th, FIRST_WAIT_S after it, doubling with each further one, at most
    MAX_WAIT_S."""
    if failures < FREE_FAILURES:
        return 0.0
    return min(MAX_WAIT_S, FIRST_WAIT_S * 2.0 ** min(failures - FREE_FAILURES, 32))


class FailureCounter:
    """Wrong passwords of every session of this server in the last ``window`` seconds.

    Past ``free`` of them, everyone waits after the latest one as a session does after its
    own (``wait_after``, counted from ``FREE_FAILURES``): the wait grows with the count, is
    at most MAX_WAIT_S, and the count decays as failures leave the window.
    """

    def __init__(
        self, window: float = SERVER_WINDOW_S, free: int = SERVER_FREE_FAILURES, keep: int = 1000
    ):
        self.window, self.free = window, free
        self._times: deque[float] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def _forget_old(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()

    def record(self) -> int:
        """Count a failure now; returns the failures in the window."""
        now = _clock()
        with self._lock:
            self._forget_old(now)
            self._times.append(now)
            return len(self._times)

    def recent(self) -> int:
        with self._lock:
            self._forget_old(_clock())
            return len(self._times)

    def wait(self) -> float:
        """Seconds every session must wait before its next attempt (0: none)."""
        now = _clock()
        with self._lock:
            self._forget_old(now)
            count = len(self._times)
            if count <= self.free:
                return 0.0
            delay = wait_after(FREE_FAILURES + count - self.free - 1)
            return max(0.0, self._times[-1] + delay - now)

    def clear(self) -> None:
        with self._lock:
            self._times.clear()


SERVER_FAILURES = FailureCounter()


def admin_mode() -> str:
    """``"password"``, ``"local"`` (everyone is the administrator) or ``"none"``."""
    if os.environ.get(ADMIN_PASSWORD_ENV):
        return "password"
    address = st.get_option("server.address") or ""
    return "local" if address in LOOPBACK else "none"


def is_admin() -> bool:
    mode = admin_mode()
    if mode == "local":
        return True
    return mode == "password" and st.session_state.get(_SIGNED_IN) is True


def sign_in_wait() -> float:
    """Seconds this session must wait before it may try a password (0: it may now): the
    longer of its own wait and the server-wide one."""
    failures = int(st.session_state.get(_FAILURES, 0))
    own = 0.0
    if failures >= FREE_FAILURES:
        last = float(st.session_state.get(_LAST_FAILURE, 0.0))
        own = max(0.0, last + wait_after(failures) - _clock())
    return max(own, SERVER_FAILURES.wait())


def sign_in(password: str) -> bool:
    """Sign this session in if ``password`` is the administrator's (compared in constant
    time). While the session must wait (``sign_in_wait``) the attempt is refused without
    comparing; a wrong password is counted and logged, never the password itself."""
    return attempt_sign_in(password) == "signed in"


def attempt_sign_in(password: str) -> str:
    """``sign_in``, saying what happened: ``"signed in"``, ``"wrong"`` or ``"refused"`` (the
    session must wait; the password was not compared)."""
    wait = sign_in_wait()
    if wait > 0:
        _logger.info(
            "Administrator sign-in refused without checking: %s must wait %d s more",
            _who(),
            math.ceil(wait),
        )
        return "refused"
    expected = os.environ.get(ADMIN_PASSWORD_ENV, "")
    ok = bool(expected) and hmac.compare_digest(password.encode("utf-8"), expected.encode("utf-8"))
    st.session_state[_SIGNED_IN] = ok
    if ok:
        st.session_state.pop(_FAILURES, None)
        st.session_state.pop(_LAST_FAILURE, None)
        _logger.info("Administrator signed in: %s", _who())
        return "signed in"
    failures = int(st.session_state.get(_FAILURES, 0)) + 1
    st.session_state[_FAILURES] = failures
    st.session_state[_LAST_FAILURE] = _clock()
    on_server = SERVER_FAILURES.record()
    _logger.warning(
        "Administrator sign-in failed: %s, %d wrong in a row in this session, %d "
        "on this server in the last %d min; next attempt allowed in %d s",
        _who(),
        failures,
        on_server,
        round(SERVER_WINDOW_S / 60),
        math.ceil(sign_in_wait()),
    )
    return "wrong"


def _who() -> str:
    """The session, for the log: a digest of its id (the id itself is not for logs) and the
    client's address when Streamlit knows it."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        session = hashlib.sha256(ctx.session_id.encode()).hexdigest()[:10] if ctx else "?"
    except Exception:  # noqa: BLE001 - only for the log line
        session = "?"
    try:
        address = st.context.ip_address
    except Exception:  # noqa: BLE001
        address = None
    return f"session {session}" + (f" from {address}" if isinstance(address, str) else "")


def wait_message(seconds: float) -> str:
    return f"Too many wrong passwords: sign-in is paused. Try again in {math.ceil(seconds)} s."


def sign_out() -> None:
    st.session_state.pop(_SIGNED_IN, None)


def why_not_admin() -> str:
    """Why this visitor cannot change what everyone sees, and what would change it."""
    if admin_mode() == "password":
        return (
            "Only an administrator can do this: sign in with the administrator password "
            "in the sidebar."
        )
    return (
        f"Only an administrator can do this, and this server has none: it listens on a "
        f"network address without {ADMIN_PASSWORD_ENV} set. Start it with "
        f"{ADMIN_PASSWORD_ENV}=..., or on 127.0.0.1 only."
    )


def render_admin_panel() -> None:
    """The sidebar's sign-in (only where a password is configured)."""
    if admin_mode() != "password":
        return
    security = secure_context.page_security()
    if not is_admin() and not secure_context.password_may_cross(security):
        # The password would cross the network in clear text: no field to type it into.
        st.caption(
            f"Administrator sign-in is off on this page: it came over plain HTTP from "
            f"{secure_context.shown_host(security)}, so a password would cross the network unencrypted. "
            "Open the app over HTTPS (docs/sharing.md), or at `localhost` on the server."
        )
        return
    if is_admin():
        st.caption("Signed in as administrator.")
        if st.button("Sign out", key="admin_sign_out"):
            sign_out()
            st.rerun()
        return
    with st.form("admin_sign_in", border=False):
        password = st.text_input("Administrator password", type="password")
        outcome = attempt_sign_in(password) if st.form_submit_button("Sign in") else None
        if outcome == "signed in":
            st.rerun()
        wait = sign_in_wait()
        if outcome == "refused":
            st.error(f"Not checked. {wait_message(wait)}")
        elif outcome == "wrong":
            st.error("Wrong password.")
        if wait > 0 and outcome != "refused":
            st.warning(wait_message(wait))
