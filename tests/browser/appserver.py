"""The app served inside a network namespace that has only loopback, and the Chromium
scenarios (driver.py) run next to it. Used by the browser tests (conftest.py) and by
``python -m bench.live_soak``.

Recipe (see the project's BROWSER_TESTS notes): Chromium with a fake webcam from a .y4m file
and ``--allow-loopback-in-peer-connection``; the namespace's ``lo`` also carries 127.0.0.2,
because aioice never offers 127.0.0.1 as an ICE candidate. Nothing leaves loopback, not even
the machine's own address. The namespace is deleted afterwards, also after a failure.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("driver.py")
CHROMIUM = "/usr/bin/chromium"
# The fake webcam shows the astronaut's face, cropped to 4:3 so the face stays large even if
# WebRTC starts the stream at a low resolution.
FACE_CROP = (slice(0, 255), slice(60, 400))


def webcam_frame(width: int = 640, height: int = 480) -> np.ndarray:
    """An RGB frame with the astronaut's smiling face, for the fake webcam."""
    import cv2
    import skimage.data

    face = skimage.data.astronaut()[FACE_CROP]
    return cv2.resize(face, (width, height), interpolation=cv2.INTER_AREA)


def write_y4m(path: Path, rgb, frames: int = 30, fps: int = 30) -> Path:
    """A .y4m for Chromium's fake webcam: one RGB image repeated ``frames`` times, or a list
    of RGB frames (a video) as they are."""
    import cv2

    pictures = [rgb] * frames if isinstance(rgb, np.ndarray) else list(rgb)
    height, width = pictures[0].shape[:2]
    with open(path, "wb") as handle:
        handle.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for picture in pictures:
            handle.write(b"FRAME\n")
            handle.write(
                cv2.cvtColor(
                    cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), cv2.COLOR_BGR2YUV_I420
                ).tobytes()
            )
    return path


def unavailable_reason() -> str | None:
    """Why the app cannot be served in a namespace and driven here, or None."""
    if os.name != "posix" or os.geteuid() != 0:
        return "browser tests need root: they run the app in a network namespace (CI runs as root)"
    if not shutil.which("ip"):
        return "browser tests need the `ip` command (iproute2) for a network namespace"
    if not Path(CHROMIUM).is_file():
        return f"browser tests need Chromium at {CHROMIUM} (make browser installs it)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "browser tests need the playwright Python package (requirements-dev.txt)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AppServer:
    """A running app in its namespace: its URL, process and log; runs driver scenarios."""

    def __init__(self, namespace: str, url: str, process: subprocess.Popen, log: Path):
        self.namespace = namespace
        self.url = url
        self.process = process
        self.log = log

    def run(
        self,
        scenario: str,
        *extra: str,
        out: Path,
        timeout: float = 240.0,
        url: str | None = None,
    ) -> dict:
        """Run a driver scenario to its end and return its JSON result (``url``: the address
        the browser uses, when not the server's own, e.g. http://fer.test:PORT)."""
        return self.result(self.start(scenario, *extra, out=out, url=url), timeout=timeout)

    def start(
        self, scenario: str, *extra: str, out: Path, url: str | None = None
    ) -> subprocess.Popen:
        """Start a driver scenario without waiting; ``result(process)`` collects it."""
        command = [
            "ip",
            "netns",
            "exec",
            self.namespace,
            sys.executable,
            str(DRIVER),
            scenario,
            "--url",
            url or self.url,
            "--out",
            str(out),
            *extra,
        ]
        return subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT)
        )

    def result(self, process: subprocess.Popen, timeout: float | None = None) -> dict:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:  # as subprocess.run: never leave the driver behind
            process.kill()
            process.communicate()
            raise
        return self._result(stdout, stderr, process.returncode)

    @staticmethod
    def _result(stdout: str, stderr: str, returncode: int) -> dict:
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise AssertionError(
                f"driver printed no result (rc {returncode}):\n{stdout[-2000:]}\n{stderr[-3000:]}"
            )
        result = json.loads(lines[-1])
        result["_stderr"] = stderr[-3000:]
        return result

    def fetch(self, path: str) -> tuple[int, bytes]:
        """GET ``path`` (sent as written, no normalisation) from inside the namespace:
        (status, body)."""
        probe = (
            "import http.client, sys\n"
            f"c = http.client.HTTPConnection('127.0.0.1', {self.url.rsplit(':', 1)[1]}, "
            "timeout=20)\n"
            "c.request('GET', sys.argv[1])\n"
            "r = c.getresponse()\n"
            "body = r.read()\n"
            "sys.stdout.buffer.write(str(r.status).encode() + b'\\n' + body)\n"
        )
        completed = subprocess.run(
            ["ip", "netns", "exec", self.namespace, sys.executable, "-c", probe, path],
            capture_output=True,
            timeout=60,
        )
        if completed.returncode != 0:
            raise AssertionError(f"GET {path} failed: {completed.stderr.decode()[-1000:]}")
        status, _, body = completed.stdout.partition(b"\n")
        return int(status), body

    def server_log(self) -> str:
        """What the app's server has printed so far."""
        return self.log.read_text(errors="replace")


_TRACEBACK = re.compile(r"^Traceback \(most recent call last\):$", re.MULTILINE)
_CHAINED = re.compile(
    r"(During handling of the above exception|The above exception was)[^\n]*\n\s*$"
)


def assert_no_traceback(log: str, allowed: re.Pattern | None = None) -> None:
    """Fail if the server's log holds a traceback (other than those ``allowed`` matches),
    quoting the first one (with the line before it; a chained one whole) and saying how
    many there were: a message much shorter than the log, so that CI's excerpt still
    reaches the other failures."""
    rest = allowed.sub("", log) if allowed is not None else log
    found = [m.start() for m in _TRACEBACK.finditer(rest)]
    if not found:
        return
    start = rest.rfind("\n", 0, max(0, found[0] - 1)) + 1
    ends = [at for at in found[1:] if not _CHAINED.search(rest[max(0, at - 200) : at])]
    lines = rest[start : ends[0] if ends else len(rest)].splitlines()
    if len(lines) > 30:
        lines = [*lines[:12], "  ...", *lines[-15:]]
    quoted = "\n".join(lines)
    count = len(ends) + 1
    raise AssertionError(f"{count} traceback(s) in the server's log; the first:\n{quoted}")


def _wait_for_server(namespace: str, url: str, process, log: Path, timeout_s: float = 120.0):
    # A server with a self-signed certificate is probed without checking it (only whether it
    # answers; the browser tests check what a browser makes of the certificate).
    probe = (
        "import ssl, sys, urllib.request\n"
        "try:\n"
        f"    urllib.request.urlopen('{url}/_stcore/health', timeout=2, "
        "context=ssl._create_unverified_context()).read()\n"
        "except Exception:\n"
        "    sys.exit(1)\n"
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"streamlit exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            )
        if (
            subprocess.run(
                ["ip", "netns", "exec", namespace, sys.executable, "-c", probe], capture_output=True
            ).returncode
            == 0
        ):
            return
        time.sleep(0.5)
    raise RuntimeError(
        f"streamlit did not answer within {timeout_s:.0f} s:\n{log.read_text()[-3000:]}"
    )


def _stop(process: subprocess.Popen) -> None:
    """Stop a process started in its own session (and its children): TERM, then KILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


_SERVERS = itertools.count()


@contextlib.contextmanager
def serve_app(
    log: Path,
    env: dict | None = None,
    streamlit_args: tuple[str, ...] = (),
    companions: tuple[tuple[list[str], Path], ...] = (),
    addresses: tuple[str, ...] = (),
):
    """Serve the app (``streamlit run app.py``) in a fresh namespace; yield an AppServer.

    ``addresses``: more IPv4 addresses on the namespace's loopback, each its own (a connection
    to one comes from it: several client addresses on one machine); the app then listens on
    every address.

    ``streamlit_args``: more options for ``streamlit run`` (``--server.sslCertFile``...: the
    URL is then https). ``companions``: (command, log) pairs started in the namespace before
    the app (a TURN server) and stopped after it. ``FER_ICE_SERVERS`` is taken from ``env``
    only: the tests never use the machine's own."""
    # One namespace per server: two servers in one test run (a module of its own next to the
    # session's) must not delete each other's.
    namespace = f"fer-e2e-{os.getpid()}-{next(_SERVERS)}"
    subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    process = None
    helpers: list[subprocess.Popen] = []
    try:
        subprocess.run(
            ["ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up"], check=True
        )
        # aioice skips 127.0.0.1 as a host candidate: give lo a second loopback address.
        subprocess.run(
            ["ip", "netns", "exec", namespace, "ip", "addr", "add", "127.0.0.2/8", "dev", "lo"],
            check=True,
        )
        for address in addresses:
            subprocess.run(
                ["ip", "netns", "exec", namespace, "ip", "addr", "add", f"{address}/32"]
                + ["dev", "lo"],
                check=True,
            )
        for command, helper_log in companions:
            with open(helper_log, "wb") as handle:
                helpers.append(
                    subprocess.Popen(
                        ["ip", "netns", "exec", namespace, *command],
                        stdout=handle,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        port = _free_port()
        scheme = "https" if "--server.sslCertFile" in streamlit_args else "http"
        url = f"{scheme}://127.0.0.1:{port}"
        full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        full_env.pop("FER_ICE_SERVERS", None)  # local only: no STUN/TURN, unless env says
        full_env.update(env or {})
        with open(log, "wb") as handle:
            process = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    namespace,
                    sys.executable,
                    "-m",
                    "streamlit",
                    "run",
                    "app.py",
                    "--server.headless",
                    "true",
                    "--server.address",
                    "0.0.0.0" if addresses else "127.0.0.1",
                    "--server.port",
                    str(port),
                    "--browser.gatherUsageStats",
                    "false",
                    "--server.fileWatcherType",
                    "none",
                    *streamlit_args,
                ],
                cwd=str(ROOT),
                env=full_env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_for_server(namespace, url, process, log)
        yield AppServer(namespace, url, process, log)
    finally:
        for running in ([process] if process is not None else []) + helpers:
            _stop(running)
        subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)


def documented_certificate(folder: Path) -> tuple[Path, Path]:
    """The certificate as docs/sharing.md makes it (``make cert NAMES=fer.test``)."""
    made = subprocess.run(
        [sys.executable, "-m", "app_lib.server.certificate", str(folder), "--name", "fer.test"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    return folder / "fer.crt", folder / "fer.key"


NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
DEPLOY_NGINX = ROOT / "deploy" / "nginx-fer.conf"


def nginx_config(work: Path, app_ports: list[int], https_port: int, cert: Path, key: Path) -> Path:
    """deploy/nginx-fer.conf, as docs/sharing.md says to install it, with this test's ports,
    certificate and name substituted, inside a minimal nginx.conf of the test's own; plus one
    test instrument: an ``X-Fer-Upstream`` header naming the process that answered."""
    site = DEPLOY_NGINX.read_text()
    upstream_lines = "".join(f"    server 127.0.0.1:{port};\n" for port in app_ports)
    replaced = {
        "    server 127.0.0.1:8501;\n    server 127.0.0.1:8502;\n": upstream_lines,
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "listen 80;": f"listen 127.0.0.1:{_free_port()};",
        "server_name fer.example.org;": "server_name fer.test;",
        "/etc/fer/certs/fer.crt": str(cert),
        "/etc/fer/certs/fer.key": str(key),
        '        add_header Set-Cookie "fer_route': "        add_header X-Fer-Upstream $upstream_addr always;\n"
        '        add_header Set-Cookie "fer_route',
    }
    for old, new in replaced.items():
        if old not in site:
            raise AssertionError(f"deploy/nginx-fer.conf no longer has {old!r}: update the test")
        site = site.replace(old, new)
    (work / "fer.conf").write_text(site)
    temp = work / "nginx-temp"
    temp.mkdir(exist_ok=True)
    main = work / "nginx.conf"
    main.write_text(
        "user root;\n"
        "worker_processes 1;\n"
        f"pid {work / 'nginx.pid'};\n"
        f"error_log {work / 'nginx-error.log'} info;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"    access_log {work / 'nginx-access.log'};\n"
        f"    client_body_temp_path {temp / 'body'};\n"
        f"    proxy_temp_path {temp / 'proxy'};\n"
        f"    fastcgi_temp_path {temp / 'fastcgi'};\n"
        f"    uwsgi_temp_path {temp / 'uwsgi'};\n"
        f"    scgi_temp_path {temp / 'scgi'};\n"
        f"    include {work / 'fer.conf'};\n"
        "}\n"
    )
    return main


@contextlib.contextmanager
def serve_behind_nginx(work: Path, cert: Path, key: Path, processes: int = 2):
    """``processes`` app processes (each ``streamlit run app.py`` on its own port, as
    deploy/fer-app@.service runs them: one runs folder and cookie secret for all, an upload
    folder each) behind nginx with deploy/nginx-fer.conf, in one fresh namespace. Yields
    (AppServer for https://127.0.0.1:PORT through nginx, the app ports)."""
    namespace = f"fer-e2e-{os.getpid()}-{next(_SERVERS)}"
    subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    running: list[subprocess.Popen] = []
    try:
        subprocess.run(
            ["ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up"], check=True
        )
        subprocess.run(
            ["ip", "netns", "exec", namespace, "ip", "addr", "add", "127.0.0.2/8", "dev", "lo"],
            check=True,
        )
        shared = {
            "FER_RUNS_DIR": str(work / "runs"),
            "STREAMLIT_SERVER_COOKIE_SECRET": "the-same-for-every-process",
        }
        ports = [_free_port() for _ in range(processes)]
        for port in ports:
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1", **shared)
            env.pop("FER_ICE_SERVERS", None)
            env["FER_UPLOAD_DIR"] = str(work / f"uploads-{port}")
            log = work / f"streamlit-{port}.log"
            with open(log, "wb") as handle:
                running.append(
                    subprocess.Popen(
                        ["ip", "netns", "exec", namespace, sys.executable, "-m", "streamlit"]
                        + ["run", "app.py", "--server.headless", "true"]
                        + ["--server.address", "127.0.0.1", "--server.port", str(port)]
                        + ["--browser.gatherUsageStats", "false"]
                        + ["--server.fileWatcherType", "none"],
                        cwd=str(ROOT),
                        env=env,
                        stdout=handle,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            _wait_for_server(namespace, f"http://127.0.0.1:{port}", running[-1], log)
        https_port = _free_port()
        config = nginx_config(work, ports, https_port, cert, key)
        nginx_log = work / "nginx.log"
        with open(nginx_log, "wb") as handle:
            running.append(
                subprocess.Popen(
                    ["ip", "netns", "exec", namespace, NGINX, "-c", str(config)]
                    + ["-p", str(work), "-g", "daemon off;"],
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        url = f"https://127.0.0.1:{https_port}"
        _wait_for_server(namespace, url, running[-1], nginx_log)
        yield AppServer(namespace, url, running[-1], work / "nginx-error.log"), ports
    finally:
        for process in reversed(running):
            _stop(process)
        subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)
