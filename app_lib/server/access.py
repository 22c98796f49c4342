"""Who may change what everyone sees: the administrator.

Training, stopping runs, reading their logs and switching the model for every session need
an administrator. Who that is depends on how the app is reached (see the README's threat
model):

- ``FER_ADMIN_PASSWORD`` set: whoever signs in with it in the sidebar (compared in constant
  time), for that browser session only. The sign-in is offered only where the password
  cannot cross a network in clear text: over HTTPS, or on the server's own machine
  (``app_lib.server.secure_context``; ``FER_ALLOW_HTTP_ADMIN=1`` allows plain HTTP on a network the
  administrator trusts end to end);
- no password, and the server listens on loopback only (``make run``'s default): every
  visitor, since only this machine's own users can reach it;
- no password, and the server listens on a network address: nobody. The app still works
  for everyone, and each visitor may choose a model for their own session.

Password guessing is limited as a rate per client address, never as a lock-out:

- each client address (``client_address``: the browser's address, or behind a proxy on this
  machine the address the proxy saw, from ``X-Forwarded-For``) may make ``FREE_FAILURES``
  wrong passwords; after that each further one makes *that address* wait before its next
  attempt, ``FIRST_WAIT_S`` doubling per failure in the last ``WINDOW_S`` up to
  ``MAX_WAIT_S``. While it waits, its attempts are refused without the password being
  compared, and the sidebar says how long is left. New tabs share their address's wait.
- nobody else waits for it. A server-wide wait (what this module did before) let any
  visitor who kept guessing keep the administrator out: each failure restarted everyone's
  wait, and the guesser was always first when it ended (issue 34).
- the log gets one line per compared wrong password, saying how many attempts from that
  address were refused unchecked since its previous line; refusals themselves are not
  logged, so a guesser polling twice a second writes about one line a minute, not 120.

This slows each address to about one guess a minute; a guesser with many addresses is slowed
per address only, so the password must be long and random (docs/sharing.md).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import os
import threading
import time
from collections import OrderedDict, deque

import streamlit as st
from streamlit.logger import get_logger

from app_lib.server import secure_context

ADMIN_PASSWORD_ENV = secure_context.ADMIN_PASSWORD_ENV
_SIGNED_IN = "fer_admin_signed_in"
LOOPBACK = ("127.0.0.1", "localhost", "::1")

FREE_FAILURES = 3  # wrong passwords an address may make before it has to wait
FIRST_WAIT_S = 2.0  # the first wait; it doubles with each further failure ...
MAX_WAIT_S = 60.0  # ... up to this
WINDOW_S = 600.0  # failures count this long
MAX_CLIENTS = 10_000  # addresses remembered at once (the longest quiet ones are forgotten)
FORWARDED_FOR = "x-forwarded-for"

_clock = time.monotonic  # what time it is; tests replace it so that they need not sleep
_logger = get_logger("fer_app")


def wait_after(failures: int) -> float:
    """Seconds to wait after the latest of ``failures`` wrong passwords: none before the
    FREE_FAILURES-th, FIRST_WAIT_S after it, doubling with each further one, at most
    MAX_WAIT_S."""
    if failures < FREE_FAILURES:
        return 0.0
    return min(MAX_WAIT_S, FIRST_WAIT_S * 2.0 ** min(failures - FREE_FAILURES, 32))


class _Client:
    __slots__ = ("failures", "refused")

    def __init__(self) -> None:
        self.failures: deque[float] = deque(maxlen=64)  # times of wrong passwords
        self.refused = 0  # attempts refused unchecked since the latest logged failure


class SignInLimiter:
    """Wrong passwords per client address in the last ``window`` seconds, and the wait each
    address must keep before its next attempt (``wait_after`` its count). Thread-safe: one
    per server process, shared by its sessions."""

    def __init__(self, window: float = WINDOW_S, max_clients: int = MAX_CLIENTS):
        self.window, self.max_clients = window, max_clients
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, client: _Client, now: float) -> int:
        while client.failures and client.failures[0] <= now - self.window:
            client.failures.popleft()
        return len(client.failures)

    def _wait(self, client: _Client | None, now: float) -> float:
        if client is None:
            return 0.0
        count = self._recent(client, now)
        if count < FREE_FAILURES:
            return 0.0
        return max(0.0, client.failures[-1] + wait_after(count) - now)

    def wait(self, address: str) -> float:
        """Seconds ``address`` must wait before its next attempt (0: it may try now)."""
        with self._lock:
            return self._wait(self._clients.get(address), _clock())

    def try_now(self, address: str) -> float:
        """0 when ``address`` may have a password compared now; else the seconds it must
        still wait (and the refusal is counted for its next log line)."""
        with self._lock:
            client = self._clients.get(address)
            wait = self._wait(client, _clock())
            if wait > 0 and client is not None:
                client.refused += 1
            return wait

    def failed(self, address: str) -> tuple[int, int, float]:
        """Count a wrong password from ``address``: (its failures in the window, attempts
        it had refused unchecked since its previous failure, its wait now)."""
        now = _clock()
        with self._lock:
            client = self._clients.pop(address, None) or _Client()
            self._clients[address] = client  # the most recently active last
            while len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)
            client.failures.append(now)
            refused, client.refused = client.refused, 0
            return self._recent(client, now), refused, self._wait(client, now)

    def succeeded(self, address: str) -> None:
        """The right password from ``address``: its count starts afresh."""
        with self._lock:
            self._clients.pop(address, None)

    def clear(self) -> None:
        with self._lock:
            self._clients.clear()


SIGN_IN_LIMITER = SignInLimiter()


def client_address_of(peer: str | None, headers) -> str:
    """Who is asking, for the limiter: the TCP peer's address; when the peer is this machine
    (a proxy here, as deploy/nginx-fer.conf runs) and it sent ``X-Forwarded-For``, the last
    address in it, which that proxy appended: what it saw. (Entries before it are whatever
    the client sent, so they are never used.) An IPv6 address counts as its /64 network.
    ``"localhost"`` where Streamlit gives no peer (127.0.0.1 and ::1)."""
    local = peer is None or _is_loopback(peer)
    if local:
        forwarded = ""
        for name, value in dict(headers or {}).items():
            if str(name).lower() == FORWARDED_FOR:
                forwarded = str(value)
        last = forwarded.split(",")[-1].strip()
        if _is_address(last):  # a proxy appends an address; anything else is not one
            return _limited_unit(last)
    return _limited_unit(str(peer)) if peer else "localhost"


def _limited_unit(address: str) -> str:
    """What one guesser controls: an IPv4 address, or an IPv6 address's /64 network (one
    machine is commonly given a whole /64, so single IPv6 addresses cost a guesser nothing)."""
    parsed = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        if not parsed.is_loopback:
            return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _is_loopback(address: str) -> bool:
    return _is_address(address) and ipaddress.ip_address(address.split("%", 1)[0]).is_loopback


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return len(text) <= 64


def client_address() -> str:
    """This script run's client address (``client_address_of``)."""
    try:
        peer = st.context.ip_address
        headers = dict(st.context.headers)
    except Exception:  # noqa: BLE001 - no request (a bare script run): this machine
        peer, headers = None, {}
    return client_address_of(peer if isinstance(peer, str) else None, headers)


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
    """Seconds this visitor's address must wait before it may try a password (0: now)."""
    return SIGN_IN_LIMITER.wait(client_address())


def sign_in(password: str) -> bool:
    """Sign this session in if ``password`` is the administrator's (compared in constant
    time). While the address must wait (``sign_in_wait``) the attempt is refused without
    comparing; a wrong password is counted and logged, never the password itself."""
    return attempt_sign_in(password) == "signed in"


def attempt_sign_in(password: str) -> str:
    """``sign_in``, saying what happened: ``"signed in"``, ``"wrong"`` or ``"refused"`` (the
    address must wait; the password was not compared, nothing is logged)."""
    address = client_address()
    if SIGN_IN_LIMITER.try_now(address) > 0:
        return "refused"
    expected = os.environ.get(ADMIN_PASSWORD_ENV, "")
    ok = bool(expected) and hmac.compare_digest(password.encode("utf-8"), expected.encode("utf-8"))
    st.session_state[_SIGNED_IN] = ok
    if ok:
        SIGN_IN_LIMITER.succeeded(address)
        _logger.info("Administrator signed in: %s", _who(address))
        return "signed in"
    failures, refused, wait = SIGN_IN_LIMITER.failed(address)
    _logger.warning(
        "Administrator sign-in failed: %s, %d wrong from this address in the last %d min, "
        "%d attempts refused unchecked since its previous one; next attempt allowed in %d s",
        _who(address),
        failures,
        round(WINDOW_S / 60),
        refused,
        math.ceil(wait),
    )
    return "wrong"


def _who(address: str) -> str:
    """The session, for the log: a digest of its id (the id itself is not for logs) and the
    client's address."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        session = hashlib.sha256(ctx.session_id.encode()).hexdigest()[:10] if ctx else "?"
    except Exception:  # noqa: BLE001 - only for the log line
        session = "?"
    return f"session {session} from {address}"


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
