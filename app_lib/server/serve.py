"""``python -m app_lib.server.serve run app.py [options]``: ``streamlit run``, as ``make run`` starts
it, without the one outbound connection Streamlit makes by itself.

Served on a wildcard address (``ADDRESS=0.0.0.0``), Streamlit asks a web service
(checkip.amazonaws.com) for the machine's public address, to print an "External URL" at start
and to compare it with the origin of a page from another site that opens a connection. The app
promises that nothing leaves the machine; importing ``app_lib`` replaces that lookup with "no
external address known" before Streamlit starts (``app_lib._no_outbound_lookups``). The start
then prints the local and network URLs only, and cross-site pages are refused as before.
"""

from __future__ import annotations

import sys

import app_lib  # noqa: F401 - the import installs the change


def main(argv: list[str] | None = None) -> int:
    from streamlit.web import cli

    sys.argv = ["streamlit", *(sys.argv[1:] if argv is None else argv)]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
