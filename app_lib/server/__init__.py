"""The server around the pages: administrator sign-in and its limits, the secure-context check, the
certificate command, ``python -m app_lib.server.serve`` and the server log."""
