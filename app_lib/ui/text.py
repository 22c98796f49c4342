"""User-provided text (file names, typed paths, exception messages) shown as text, never as
Markdown: ``st.error``, ``st.info``, ``st.subheader`` and friends render Markdown, so a file
named ``![](http://example.invalid/x.png).jpg`` would otherwise make the visitor's browser load
an image from anywhere (and ``[click](...)`` would be a link the app seems to vouch for)."""

from __future__ import annotations

import contextlib
import re

import streamlit as st

from fer_core import FerError

# Inline Markdown: emphasis, code, links and images, HTML and autolinks, strikethrough, LaTeX
# ('$'), entities ('&'), tables ('|'), and Streamlit's ':colour[...]' / ':material/...:'
# directives (':'). Block syntax can only start at the text's beginning (line breaks are
# replaced), so a leading '#', '>', '-', '+', '=' or "1." is escaped there.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>!~:$&|])")
_BLOCK_START = re.compile(r"^(\s*)([#>+=-]|\d+(?=[.)]))")
# Bare URLs and e-mail addresses become links after Markdown is parsed (GFM's autolink
# literals search the text, escapes already undone), so a backslash does not stop them: an
# invisible word joiner (U+2060) inside "://", after "www" and after "@" does. The text reads
# the same; it is simply never a link.
WORD_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?i)(\\:)(//)|(\bwww)(\.)|(@)")


def escape_markdown(text) -> str:
    """``text`` with every character Markdown could act on backslash-escaped, and bare URLs
    and e-mail addresses kept from becoming links; line breaks become spaces (a heading or
    list cannot be started on a new line)."""
    text = str(text).replace("\r", " ").replace("\n", " ")
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    # "#" becomes "\#"; "12." becomes "12\." (a backslash escapes punctuation, not digits).
    text = _BLOCK_START.sub(
        lambda m: (
            (m.group(0) + "\\") if m.group(2)[0].isdigit() else m.group(1) + "\\" + m.group(2)
        ),
        text,
    )
    return _AUTOLINK.sub(
        lambda m: (
            WORD_JOINER.join(g for g in m.groups() if g) + (WORD_JOINER if m.group(5) else "")
        ),
        text,
    )


def shorten(name: str, limit: int = 80) -> str:
    """A long user-given name cut to ``limit`` characters for headings and captions."""
    name = str(name)
    return name if len(name) <= limit else name[: limit - 1] + "…"


def show_error(message, icon: str = ":material/error:") -> None:
    st.error(escape_markdown(message), icon=icon)


@contextlib.contextmanager
def user_errors(prefix: str = ""):
    """Show a FerError (a problem the user can fix) with st.error, escaped, instead of a
    traceback."""
    try:
        yield
    except FerError as exc:
        show_error(f"{prefix}{exc}")
