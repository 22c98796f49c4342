"""A self-signed certificate for serving the app over HTTPS on a LAN, and a check of a
certificate and key before the server starts.

    .venv/bin/python -m app_lib.server.certificate certs            # certs/fer.crt, certs/fer.key
    .venv/bin/python -m app_lib.server.certificate certs --name fer.lab --name 192.168.1.20
    .venv/bin/python -m app_lib.server.certificate --check certs/fer.crt certs/fer.key
    make cert                                                 # the first, from the Makefile

The certificate names this machine as visitors reach it: its host name (short and fully
qualified), ``localhost``, its loopback addresses and every address of its network interfaces,
plus each ``--name``. It is valid for 397 days and made with the ``cryptography`` package the
app already installs; the key is written readable by its owner only. docs/sharing.md says what
each browser shows the first time and how to trust the certificate instead.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from app_lib.server.secure_context import TLS_CERT_ENV, TLS_KEY_ENV, https_command, tls_files
from fer_core.errors import ConfigError

CERT_NAME = "fer.crt"
KEY_NAME = "fer.key"
VALID_DAYS = 397  # browsers refuse longer server certificates from public authorities


def machine_names() -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) by which visitors may reach this machine."""
    names = ["localhost"]
    for name in (socket.gethostname(), socket.getfqdn()):
        if name and name not in names:
            names.append(name)
    addresses = ["127.0.0.1", "::1"]
    try:
        listing = subprocess.run(
            ["ip", "-j", "addr"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
        for interface in json.loads(listing):
            for info in interface.get("addr_info", []):
                addresses.append(str(info.get("local", "")))
    except (OSError, ValueError, subprocess.SubprocessError):
        pass  # no iproute2: the host name's addresses below
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            addresses.append(str(info[4][0]))
    except OSError:
        pass
    seen: list[str] = []
    for address in addresses:
        try:
            parsed = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            continue
        if not parsed.is_link_local and str(parsed) not in seen:
            seen.append(str(parsed))
    return names, seen


def split_names(extra: list[str]) -> tuple[list[str], list[str]]:
    """``--name`` values into (DNS names, IP addresses); ConfigError for a value that is
    neither."""
    names, addresses = [], []
    for value in extra:
        value = value.strip()
        try:
            addresses.append(str(ipaddress.ip_address(value)))
            continue
        except ValueError:
            pass
        labels = value.rstrip(".").split(".")
        if not value or not all(
            0 < len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
            for label in labels
        ):
            raise ConfigError(f"--name {value!r} is neither a host name nor an IP address.")
        names.append(value.lower())
    return names, addresses


def make_certificate(
    folder: str | os.PathLike, extra_names: list[str] | None = None
) -> tuple[Path, Path]:
    """Write ``fer.crt`` and ``fer.key`` into ``folder``; returns their paths. An existing
    pair is never overwritten (ConfigError)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = Path(folder)
    cert_path, key_path = folder / CERT_NAME, folder / KEY_NAME
    for path in (cert_path, key_path):
        if path.exists():
            raise ConfigError(f"{path} already exists; remove it first to make a new pair.")
    names, addresses = machine_names()
    more_names, more_addresses = split_names(extra_names or [])
    names += [n for n in more_names if n not in names]
    addresses += [a for a in more_addresses if a not in addresses]
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, names[-1] if more_names else names[1]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fer-dashboard (self-signed)"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    alternative = [x509.DNSName(n) for n in names] + [
        x509.IPAddress(ipaddress.ip_address(a)) for a in addresses
    ]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _check_key_is_private(key_path: Path) -> None:
    """ConfigError when anyone but the key's owner (and its group) may read it: other users
    of the machine could impersonate the server. (POSIX only; elsewhere nothing to check.)"""
    if os.name != "posix":
        return
    try:
        mode = key_path.stat().st_mode
    except OSError:
        return  # reading it says what is wrong
    if mode & 0o004:
        raise ConfigError(
            f"The key {key_path} is readable by every user of this machine (mode "
            f"{mode & 0o777:o}): anyone who can read it can pose as this server. Make it the "
            f"owner's only: chmod 600 {key_path}"
        )


def check_pair(cert_path: str | os.PathLike, key_path: str | os.PathLike) -> str:
    """A one-line description of a usable certificate; ConfigError saying what is wrong
    otherwise (unreadable, not PEM, expired, or the key is not the certificate's)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert_path, key_path = Path(cert_path), Path(key_path)
    _check_key_is_private(key_path)
    try:
        with open(cert_path, "rb") as handle:
            certificate = x509.load_pem_x509_certificate(handle.read(1 << 20))
    except OSError as exc:
        raise ConfigError(f"The certificate {cert_path} cannot be read ({exc.strerror}).") from None
    except ValueError:
        raise ConfigError(f"{cert_path} is not a PEM certificate.") from None
    try:
        with open(key_path, "rb") as handle:
            key = serialization.load_pem_private_key(handle.read(1 << 20), password=None)
    except OSError as exc:
        raise ConfigError(f"The key {key_path} cannot be read ({exc.strerror}).") from None
    except (ValueError, TypeError):
        raise ConfigError(
            f"{key_path} is not an unencrypted PEM private key (Streamlit cannot ask for a "
            "passphrase)."
        ) from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(
        serialization.Encoding.PEM, public
    ) != certificate.public_key().public_bytes(serialization.Encoding.PEM, public):
        raise ConfigError(f"{key_path} is not the private key of {cert_path}.")
    now = datetime.datetime.now(datetime.UTC)
    if certificate.not_valid_after_utc < now:
        raise ConfigError(
            f"{cert_path} expired on {certificate.not_valid_after_utc:%Y-%m-%d}: make a new one."
        )
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        listed = [str(v) for v in names.get_values_for_type(x509.DNSName)] + [
            str(v) for v in names.get_values_for_type(x509.IPAddress)
        ]
    except x509.ExtensionNotFound:
        listed = []
    return f"{cert_path.name}: valid until {certificate.not_valid_after_utc:%Y-%m-%d}, for " + (
        ", ".join(listed) if listed else "no names (browsers will refuse it)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app_lib.server.certificate",
        description="Make a self-signed certificate for serving the app over HTTPS on a LAN "
        "(fer.crt and fer.key in FOLDER), or check a certificate and key.",
    )
    parser.add_argument("folder", nargs="?", help="where to write fer.crt and fer.key")
    parser.add_argument(
        "--name",
        action="append",
        default=[],
        help="another host name or address visitors use (repeatable)",
    )
    parser.add_argument(
        "--check", nargs=2, metavar=("CERT", "KEY"), help="check a certificate and its key"
    )
    parser.add_argument(
        "--check-env",
        action="store_true",
        help=f"check the pair {TLS_CERT_ENV} and {TLS_KEY_ENV} name (make run does)",
    )
    args = parser.parse_args(argv)
    try:
        if args.check_env:
            pair = tls_files()
            print(check_pair(*pair) if pair else f"{TLS_CERT_ENV} is not set: plain HTTP")
            return 0
        if args.check:
            print(check_pair(*args.check))
            return 0
        if not args.folder:
            parser.error("give a FOLDER to write the certificate into, or --check CERT KEY")
        cert, key = make_certificate(args.folder, args.name)
        print(check_pair(cert, key))
        print(f"Serve over HTTPS with:\n  {https_command(str(cert), str(key))}")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["make_certificate", "check_pair", "machine_names", "split_names", "main"]
