"""A stand-in process for tests that find jobs by their command line."""

from __future__ import annotations

import subprocess
import sys

_SLEEP = "import time; print('ready', flush=True); time.sleep(60)"


def stand_in(*words: str, **popen) -> subprocess.Popen:
    """Start a sleeping Python whose command line ends with ``words`` (as the ``fer`` job it
    stands in for), and return once it runs.

    Returning as soon as ``Popen`` does is not enough: the kernel closes the exec pipe Popen
    waits on before it has set up the new command line, so for a moment ``/proc/PID/cmdline``
    is empty and a search by command line misses the process (seen once in CI)."""
    process = subprocess.Popen(
        [sys.executable, "-c", _SLEEP, *words], stdout=subprocess.PIPE, text=True, **popen
    )
    if process.stdout.readline().strip() != "ready":
        process.kill()
        raise RuntimeError("the stand-in process did not start")
    return process
