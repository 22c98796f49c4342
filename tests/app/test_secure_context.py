"""Issue 25: HTTPS in one step. Which pages are secure contexts (camera allowed, password
may be typed), the TLS settings, and the self-signed certificate (made and checked for real
with the cryptography package)."""

import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app_lib.server.certificate import check_pair, make_certificate, split_names
from app_lib.server.secure_context import (
    PageSecurity,
    host_name,
    insecure_camera_message,
    is_loopback_host,
    page_security_of,
    password_may_cross,
    tls_files,
)
from fer_core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("fer.test:8501", "fer.test"),
        ("FER.Test", "fer.test"),
        ("[::1]:8501", "::1"),
        ("192.168.1.20:8501", "192.168.1.20"),
        ("", ""),
        (None, ""),
    ],
)
def test_host_name(header, host):
    assert host_name(header) == host


def test_which_hosts_browsers_trust_over_plain_http():
    for host in ("localhost", "app.localhost", "127.0.0.1", "127.8.9.10", "::1"):
        assert is_loopback_host(host), host
    for host in ("fer.test", "192.168.1.20", "10.0.0.5", "0.0.0.0", "localhost.example.org", ""):
        assert not is_loopback_host(host), host


def test_page_security_from_the_request_and_the_server():
    plain_lan = page_security_of({"Host": "fer.test:8501"}, server_tls=False)
    assert plain_lan == PageSecurity(host="fer.test", https=False, local=False)
    assert not plain_lan.secure_context and not password_may_cross(plain_lan, {})
    assert password_may_cross(plain_lan, {"FER_ALLOW_HTTP_ADMIN": "1"})
    local = page_security_of({"host": "127.0.0.1:8501"}, server_tls=False)
    assert local.secure_context and password_may_cross(local, {})
    served_tls = page_security_of({"Host": "fer.test:8501"}, server_tls=True)
    assert served_tls.https and served_tls.secure_context
    # Behind a proxy that terminates TLS: the browser's host and scheme come forwarded.
    proxied = page_security_of(
        {"Host": "127.0.0.1:8502", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "fer.lab"},
        server_tls=False,
    )
    assert proxied == PageSecurity(host="fer.lab", https=True, local=False)


def test_the_insecure_page_message_never_renders_what_the_browser_sent():
    odd = PageSecurity(host="[x](javascript:alert(1))", https=False, local=False)
    message = insecure_camera_message(odd)
    assert "javascript" not in message and "this address" in message
    assert "`fer.test`" in insecure_camera_message(PageSecurity("fer.test", False, False))


def test_tls_settings_say_what_is_missing(tmp_path):
    assert tls_files({}) is None
    with pytest.raises(ConfigError, match="FER_TLS_KEY is not set"):
        tls_files({"FER_TLS_CERT": "x.crt"})
    with pytest.raises(ConfigError, match="FER_TLS_CERT is not set"):
        tls_files({"FER_TLS_KEY": "x.key"})
    with pytest.raises(ConfigError, match="there is no file"):
        tls_files({"FER_TLS_CERT": str(tmp_path / "no.crt"), "FER_TLS_KEY": str(tmp_path)})


def test_a_self_signed_certificate_names_this_machine_and_checks(tmp_path):
    from cryptography import x509

    cert, key = make_certificate(tmp_path / "certs", ["fer.test", "192.0.2.44"])
    assert tls_files({"FER_TLS_CERT": str(cert), "FER_TLS_KEY": str(key)}) == (cert, key)
    assert key.stat().st_mode & 0o777 == 0o600  # the private key: its owner only
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = names.get_values_for_type(x509.DNSName)
    addresses = [str(a) for a in names.get_values_for_type(x509.IPAddress)]
    assert {"localhost", "fer.test"} <= set(dns)
    assert {"127.0.0.1", "::1", "192.0.2.44"} <= set(addresses)
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert datetime.timedelta(days=390) < lifetime < datetime.timedelta(days=398)
    assert "fer.test" in check_pair(cert, key)
    with pytest.raises(ConfigError, match="already exists"):  # never overwritten
        make_certificate(tmp_path / "certs")
    other_cert, other_key = make_certificate(tmp_path / "other")
    with pytest.raises(ConfigError, match="is not the private key"):
        check_pair(cert, other_key)
    with pytest.raises(ConfigError, match="not a PEM certificate"):
        check_pair(key, key)
    with pytest.raises(ConfigError, match="readable by every user"):  # a certificate is
        check_pair(cert, other_cert)
    other_cert.chmod(0o600)
    with pytest.raises(ConfigError, match="not an unencrypted PEM private key"):
        check_pair(cert, other_cert)
    # Issue 34 item 7: a key anyone on the machine may read is refused, saying how to fix it.
    assert key.stat().st_mode & 0o777 == 0o600
    key.chmod(0o644)
    with pytest.raises(ConfigError, match=r"readable by every user .*chmod 600"):
        check_pair(cert, key)
    key.chmod(0o640)  # the owner's group (ssl-cert on Debian) may read it
    assert "fer.test" in check_pair(cert, key)


def test_names_given_for_the_certificate_are_checked():
    assert split_names(["fer.lab", "10.0.0.5", "::1"]) == (["fer.lab"], ["10.0.0.5", "::1"])
    for bad in ("", "bad name", "a..b", "<script>"):
        with pytest.raises(ConfigError):
            split_names([bad])


def test_the_certificate_command(tmp_path):
    env = dict(os.environ)  # python -m runs it from the project folder (cwd)
    made = subprocess.run(
        [sys.executable, "-m", "app_lib.server.certificate", str(tmp_path), "--name", "fer.test"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    assert "fer.test" in made.stdout and "FER_TLS_CERT=" in made.stdout
    check = subprocess.run(
        [sys.executable, "-m", "app_lib.server.certificate", "--check-env"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**env, "FER_TLS_CERT": str(tmp_path / "fer.crt")},
        timeout=120,
    )
    assert check.returncode == 2 and "FER_TLS_KEY is not set" in check.stderr
    assert "Traceback" not in check.stderr
