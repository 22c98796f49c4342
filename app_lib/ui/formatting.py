"""How numbers read on the pages (user-given text: ``app_lib.ui.text``)."""

from __future__ import annotations


def percent(value, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def duration(seconds) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


# st.dataframe's rows and header are 35 px; its "auto" height leaves no room for a horizontal
# scrollbar, which then covers the last row of a table wider than the page (seen: the third
# of three sessions hidden under it, in a Chromium that draws scrollbars).
ROW_PX, SCROLLBAR_PX, MAX_SHOWN_ROWS = 35, 16, 10


def table_height(rows: int, max_rows: int = MAX_SHOWN_ROWS) -> int:
    """A height for ``st.dataframe`` of ``rows`` rows: all of them up to ``max_rows`` (then it
    scrolls), the header, and room for a horizontal scrollbar below the last row."""
    return (min(max(int(rows), 1), max_rows) + 1) * ROW_PX + 3 + SCROLLBAR_PX
