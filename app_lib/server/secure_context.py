"""Whether the visitor's page is a secure context: browsers give a page the camera (and should
be given a password) only over HTTPS or on the visitor's own machine.

Browsers treat ``http://localhost``, ``http://*.localhost``, ``http://127.x.y.z`` and
``http://[::1]`` as potentially trustworthy; any other ``http://`` origin (a LAN address, a
host name such as ``fer.test``) is not, so ``navigator.mediaDevices`` is undefined there and
the Live page's START cannot work. The app serves HTTPS when ``FER_TLS_CERT`` and
``FER_TLS_KEY`` are set (``make run`` passes them to Streamlit's ``server.sslCertFile`` and
``server.sslKeyFile``), or a proxy in front of it terminates TLS and says so with
``X-Forwarded-Proto: https`` (deploy/nginx.conf).

Plain functions of the request's headers and the server's settings (no streamlit here), so
they are tested directly; ``page_security()`` reads them for the current script run.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from fer_core.errors import ConfigError

TLS_CERT_ENV = "FER_TLS_CERT"
TLS_KEY_ENV = "FER_TLS_KEY"
ADMIN_PASSWORD_ENV = "FER_ADMIN_PASSWORD"  # the administrator's password (app_lib.server.access)
# An administrator who really means to sign in over plain HTTP on a network (a lab network
# they trust end to end) can allow it; the password then crosses that network in clear text.
ALLOW_HTTP_ADMIN_ENV = "FER_ALLOW_HTTP_ADMIN"


@dataclass(frozen=True)
class PageSecurity:
    """How the current page reached the visitor."""

    host: str  # the host name the browser used (no port), lower case
    https: bool  # served over HTTPS (by this server, or a proxy in front of it)
    local: bool  # the browser's host is this machine's loopback name or address

    @property
    def secure_context(self) -> bool:
        """Whether the browser treats the page as a secure context (camera allowed)."""
        return self.https or self.local


def host_name(host_header: str | None) -> str:
    """``fer.test:8501`` -> ``fer.test``; ``[::1]:8501`` -> ``::1``; lower case."""
    host = (host_header or "").strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host


def is_loopback_host(host: str) -> bool:
    """Whether browsers count ``host`` as the visitor's own machine (a potentially
    trustworthy origin even over plain HTTP)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def page_security_of(headers, server_tls: bool) -> PageSecurity:
    """``headers``: the request's headers (a mapping; names case-insensitive as Streamlit
    gives them); ``server_tls``: whether this server itself serves HTTPS."""
    lowered = {str(k).lower(): str(v) for k, v in dict(headers or {}).items()}
    forwarded = lowered.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    # Behind a proxy the browser's host is in X-Forwarded-Host, else Host.
    host = host_name(lowered.get("x-forwarded-host", "").split(",")[0] or lowered.get("host"))
    return PageSecurity(
        host=host,
        https=server_tls or forwarded == "https",
        local=is_loopback_host(host),
    )


def page_security() -> PageSecurity:
    """The current script run's ``PageSecurity`` (from ``st.context.headers`` and Streamlit's
    ``server.sslCertFile``)."""
    import streamlit as st

    try:
        headers = dict(st.context.headers)
    except Exception:  # no request (AppTest, bare mode): treat it as this machine
        headers = {}
    if not headers:
        return PageSecurity(host="localhost", https=False, local=True)
    return page_security_of(headers, bool(st.get_option("server.sslCertFile")))


def shown_host(security: PageSecurity) -> str:
    """The host as a Markdown code span, or "this address" for anything a host name cannot
    be (the browser sent it: it is the visitor's text)."""
    host = security.host
    return f"`{host}`" if re.fullmatch(r"[a-z0-9.:-]{1,253}", host or "") else "this address"


def https_command(cert: str = "certs/fer.crt", key: str = "certs/fer.key") -> str:
    """The one command that serves the app over HTTPS to a network, with an administrator
    (``make cert`` writes ``certs/fer.crt`` and ``certs/fer.key``). The README, docs/sharing.md,
    ``make cert`` and the plain-HTTP Live page give this same command (tests/test_docs.py)."""
    return (
        f"{TLS_CERT_ENV}={cert} {TLS_KEY_ENV}={key} {ADMIN_PASSWORD_ENV}=... "
        "make run ADDRESS=0.0.0.0"
    )


def insecure_camera_message(security: PageSecurity) -> str:
    """Why START cannot work on a page served over plain HTTP at a network address, and the
    fix (Markdown)."""
    return (
        f"**The camera cannot work here: this page came over plain HTTP from "
        f"{shown_host(security)}.** Browsers give a page the camera only over HTTPS, or at "
        "`localhost` on the machine that runs the app. The app's administrator can serve it "
        f"over HTTPS in one step: `make cert`, then `{https_command()}` (docs/sharing.md); "
        "then open "
        "this page with `https://` in front. Photos and videos work as they are (the Photos & "
        "videos page)."
    )


def admin_over_http_allowed(environ=None) -> bool:
    environ = os.environ if environ is None else environ
    return (environ.get(ALLOW_HTTP_ADMIN_ENV) or "").strip().lower() in ("1", "true", "yes")


def password_may_cross(security: PageSecurity, environ=None) -> bool:
    """Whether a password typed on this page may be sent to the server: over HTTPS, on this
    machine, or where the administrator allowed plain HTTP (``FER_ALLOW_HTTP_ADMIN=1``)."""
    return security.https or security.local or admin_over_http_allowed(environ)


def tls_files(environ=None) -> tuple[Path, Path] | None:
    """``(certificate, key)`` from ``FER_TLS_CERT`` and ``FER_TLS_KEY``; None when neither is
    set. ConfigError, saying what to do, when only one is set or a file cannot be read."""
    environ = os.environ if environ is None else environ
    cert, key = (environ.get(TLS_CERT_ENV) or "").strip(), (environ.get(TLS_KEY_ENV) or "").strip()
    if not cert and not key:
        return None
    if not cert or not key:
        missing = TLS_KEY_ENV if cert else TLS_CERT_ENV
        raise ConfigError(
            f"{missing} is not set: HTTPS needs both {TLS_CERT_ENV} (the certificate) and "
            f"{TLS_KEY_ENV} (its private key). Make a self-signed pair with "
            "`make cert`."
        )
    paths = Path(cert), Path(key)
    for name, path in zip((TLS_CERT_ENV, TLS_KEY_ENV), paths):
        if not path.is_file():
            raise ConfigError(f"{name}: there is no file {path}.")
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ConfigError(f"{name}: {path} cannot be read ({exc.strerror}).") from None
    return paths


__all__ = [
    "PageSecurity",
    "page_security",
    "page_security_of",
    "host_name",
    "is_loopback_host",
    "password_may_cross",
    "insecure_camera_message",
    "shown_host",
    "admin_over_http_allowed",
    "tls_files",
    "TLS_CERT_ENV",
    "TLS_KEY_ENV",
    "ALLOW_HTTP_ADMIN_ENV",
]
