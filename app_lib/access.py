"""Who may change what everyone sees: the administrator.

Training, stopping runs, reading their logs and switching the model for every session need
an administrator. Who that is depends on how the app is reached (see the README's threat
model):

- ``FER_ADMIN_PASSWORD`` set: whoever signs in with it in the sidebar (compared in constant
  time), for that browser session only;
- no password, and the server listens on loopback only (``make run``'s default): every
  visitor, since only this machine's own users can reach it;
- no password, and the server listens on a network address: nobody. The app still works
  for everyone, and each visitor may choose a model for their own session.
"""

from __future__ import annotations

import hmac
import os

import streamlit as st

ADMIN_PASSWORD_ENV = "FER_ADMIN_PASSWORD"
_SIGNED_IN = "fer_admin_signed_in"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


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


def sign_in(password: str) -> bool:
    expected = os.environ.get(ADMIN_PASSWORD_ENV, "")
    ok = bool(expected) and hmac.compare_digest(password.encode("utf-8"),
                                                expected.encode("utf-8"))
    st.session_state[_SIGNED_IN] = ok
    return ok


def sign_out() -> None:
    st.session_state.pop(_SIGNED_IN, None)


def why_not_admin() -> str:
    """Why this visitor cannot change what everyone sees, and what would change it."""
    if admin_mode() == "password":
        return "Only an administrator can do this: sign in with the administrator password " \
               "in the sidebar."
    return (f"Only an administrator can do this, and this server has none: it listens on a "
            f"network address without {ADMIN_PASSWORD_ENV} set. Start it with "
            f"{ADMIN_PASSWORD_ENV}=..., or on 127.0.0.1 only.")


def render_admin_panel() -> None:
    """The sidebar's sign-in (only where a password is configured)."""
    if admin_mode() != "password":
        return
    if is_admin():
        st.caption("Signed in as administrator.")
        if st.button("Sign out", key="admin_sign_out"):
            sign_out()
            st.rerun()
        return
    with st.form("admin_sign_in", border=False):
        password = st.text_input("Administrator password", type="password")
        if st.form_submit_button("Sign in"):
            if sign_in(password):
                st.rerun()
            st.error("Wrong password.")
