"""``python -m fer_core``: the ``fer`` command (``fer_core.cli.main``)."""

import sys

from fer_core.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
